/* Fuzz target: the reply decoder.  A handshake that follows the protocol
 * (harness.c) puts the client in transmission with simple replies,
 * structured replies or extended headers, chosen by the input's first
 * byte (whose top bit closes the handle with commands in flight); the rest of the input is the reply stream (in segments: struct
 * feed in harness.h), answering the fixed mix of commands the client
 * sends.
 */
#include <config.h>

#include "harness.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  enum reply_mode mode;
  struct nbd_handle *h;
  struct feed feed;
  uint8_t handshake[256];
  size_t len;

  if (size < 1)
    return 0;
  mode = (enum reply_mode) ((data[0] & ~(CLOSE_EARLY | CONTEXT_ID_0)) % NR_MODES);
  len = replies_canned_handshake (mode, data[0] & CONTEXT_ID_0 ? 0 : 1, handshake);
  h = replies_session_handle (mode);
  /* The handshake goes out at once: the client reads it by exact sizes. */
  feed_start (&feed, handshake, len, data + 1, size - 1);
  harness_use_feed (&feed);
  /* The canned handshake is valid: only the replies can fail. */
  CHECK (replies_session_connect (h, feed.client_fd));
  replies_session_commands (h, mode, (data[0] & CLOSE_EARLY) != 0);
  feed_done (&feed);
  return 0;
}
