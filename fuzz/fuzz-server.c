/* Fuzz target: a hostile server.  The input's first byte picks the
 * client's settings (see harness.h); the rest is everything the server
 * says, from the greeting on, in segments (struct feed in harness.h).  The client goes through the handshake,
 * the options (nbd_opt_* in opt mode) and a fixed mix of commands while
 * the harness checks the promises about closures and callbacks.
 */
#include <config.h>

#include "harness.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct nbd_handle *h;
  struct feed feed;
  unsigned settings;

  if (size < 1)
    return 0;
  settings = data[0];
  h = server_session_handle (settings);
  feed_start (&feed, NULL, 0, data + 1, size - 1);
  harness_use_feed (&feed);
  server_session_run (h, feed.client_fd, settings);
  feed_done (&feed);
  return 0;
}
