/* What the fuzz targets share: handing the client a byte stream as if a
 * server had sent it, the fixed client sessions the targets (and the
 * seed recorder) run, and the checks of the API's promises about
 * closures and callbacks.  A broken promise calls abort(), which
 * libFuzzer reports as a crash, like a sanitizer finding.
 */
#ifndef FUZZ_HARNESS_H
#define FUZZ_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libnbd.h>

/* Largest segment (see struct feed). */
#define MAX_SEGMENT 65535

/* The libFuzzer entry point each target defines. */
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* Stop with a message naming the broken promise. */
#define CHECK(cond) \
  ((cond) ? (void) 0 : contract_failed (__FILE__, __LINE__, #cond))
void contract_failed (const char *file, int line, const char *what)
  __attribute__ ((noreturn));

/* The server's side of a fuzzed connection.  The input is a list of
 * segments, each a 16-bit big-endian length and that many bytes (a short
 * last one is cut to what is there).  A segment goes out only when the
 * client has read everything sent so far and waits for more, as if the
 * server answered each thing the client said: a client keeps reading
 * while it has requests in flight, so a conforming server never has
 * more to say than what was asked.  After the last segment the server
 * shuts its side (end-of-file).  The client's bytes are read and
 * discarded.  One thread, no timing: the same run every time.
 */
struct feed {
  int client_fd, server_fd;
  const uint8_t *data;
  size_t size, pos;
  bool eof_sent;
};

/* A socketpair for `data'; first, if prefix_len, send the prefix
 * (a canned handshake) at once.  feed.client_fd goes to
 * nbd_aio_connect_socket.
 */
void feed_start (struct feed *f, const uint8_t *prefix, size_t prefix_len,
                 const uint8_t *data, size_t size);
void feed_done (struct feed *f);

/* The feed the sessions pump, or NULL with a real server (the
 * recorder): then the sessions just wait for the socket.
 */
void harness_use_feed (struct feed *f);

/* ---- The hostile-server session (fuzz-server and the recorder) ----
 *
 * The first input byte: which settings the client uses.
 */
enum {
  SET_STRUCTURED = 0x01,        /* request structured replies */
  SET_EXTENDED = 0x02,          /* request extended headers */
  SET_OPT_MODE = 0x04,          /* negotiate with the nbd_opt_* calls */
  SET_META = 0x08,              /* ask for meta contexts */
  SET_NOT_STRICT = 0x10,        /* nbd_set_strict_mode (0) */
  SET_FULL_INFO = 0x20,         /* nbd_set_full_info (true) */
  SET_TLS_ALLOW = 0x40,         /* LIBNBD_TLS_ALLOW, else DISABLE */
  SET_OLD_FLAGS = 0x80,         /* client handshake flags 0 */
};

struct nbd_handle *server_session_handle (unsigned settings);
/* Connect over `fd' (nbd_aio_connect_socket: `h' owns it), negotiate,
 * run the command mix, close `h'.
 */
void server_session_run (struct nbd_handle *h, int fd, unsigned settings);

/* ---- The reply-decoder session (fuzz-replies and the recorder) ---- */

/* fuzz-replies' first byte: the mode (low bits % NR_MODES), CLOSE_EARLY
 * and CONTEXT_ID_0.
 */
enum reply_mode { MODE_SIMPLE, MODE_STRUCTURED, MODE_EXTENDED, NR_MODES };
#define CLOSE_EARLY 0x80

#define REPLIES_EXPORT_SIZE (1024 * 1024)
/* The meta context id the canned handshake gives base:allocation: 1 (as
 * nbdkit and nbd-test-server do), or with CONTEXT_ID_0 in the first byte
 * 0 (as qemu-nbd does), so that recorded block-status replies name it.
 */
#define CONTEXT_ID_0 0x40

struct nbd_handle *replies_session_handle (enum reply_mode mode);
/* What a server following the protocol sends before transmission to a
 * client made by replies_session_handle (mode).  Returns its length;
 * `buf' must hold 256 bytes.
 */
size_t replies_canned_handshake (enum reply_mode mode, uint32_t context_id,
                                 uint8_t *buf);
/* Connect over `fd' and run the handshake; true if it succeeded. */
bool replies_session_connect (struct nbd_handle *h, int fd);
/* After the handshake: the command mix, then close `h' (close_early:
 * with the last batch of commands still in flight).
 */
void replies_session_commands (struct nbd_handle *h, enum reply_mode mode,
                               bool close_early);

#endif /* FUZZ_HARNESS_H */
