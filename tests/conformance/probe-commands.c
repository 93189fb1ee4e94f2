/* Conformance probe: commands and replies (issue 7 items 5, 15, 17, 19).
 *
 * A chunk callback failing on a simple-reply server, reads of holes
 * with extended headers, pread_initialize on refused calls, requests
 * larger than the server's maximum block size, and the PAYLOAD_LEN flag.
 */
#include <config.h>

#include "probe.h"

static const char *
all_bytes (const unsigned char *buf, size_t len, unsigned char v)
{
  for (size_t i = 0; i < len; i++)
    if (buf[i] != v)
      return "no";
  return "yes";
}

static int
chunk_fails (void *ud, const void *subbuf, size_t count, uint64_t offset,
             unsigned status, int *error)
{
  int *calls = ud;
  (void) subbuf; (void) count; (void) offset; (void) status;
  (*calls)++;
  *error = EIO;
  return -1;
}

/* Item 5: the chunk callback of nbd_pread_structured returns -1 and the
 * server only sends simple replies: oldstyle, or structured replies
 * not requested.
 */
static void
chunk_error_simple_reply (const char *name, bool oldstyle)
{
  struct server s;
  struct nbd_handle *h = new_handle ();
  static unsigned char buf[65536];
  int calls = 0, r;
  char key[128];
  nbd_chunk_callback cb = { .callback = chunk_fails, .user_data = &calls };

  if (oldstyle) {
    const char *args[] = { "--oldstyle", "--pattern", NULL };
    start_test_server (&s, "probe-commands", args);
  }
  else {
    const char *args[] = { "pattern", "1M", NULL };
    start_nbdkit (&s, args);
    nbd_set_request_structured_replies (h, false);
  }
  step ("connect");
  if (nbd_connect_unix (h, s.sock) == -1)
    probe_fail ("connect_unix: %s", nbd_get_error ());
  /* At offset 0 and past it: the ranges left uncovered by the failed
   * chunk are zeroed relative to the buffer, not to the disk.
   */
  snprintf (key, sizeof key, "%s: pread_structured, chunk returns -1", name);
  step (key);
  r = nbd_pread_structured (h, buf, sizeof buf, 0, cb, 0);
  say (key, "%s, chunk called %d", rv (r), calls);
  calls = 0;
  snprintf (key, sizeof key, "%s: pread_structured at 4096, chunk returns -1", name);
  step (key);
  r = nbd_pread_structured (h, buf, 4096, 4096, cb, 0);
  say (key, "%s, chunk called %d", rv (r), calls);
  calls = 0;
  snprintf (key, sizeof key, "%s: pread_structured at 512K, chunk returns -1", name);
  step (key);
  r = nbd_pread_structured (h, buf, sizeof buf, 512 * 1024, cb, 0);
  say (key, "%s, chunk called %d", rv (r), calls);
  snprintf (key, sizeof key, "%s: pread afterwards", name);
  step (key);
  say (key, "%s", rv (nbd_pread (h, buf, 512, 0, 0)));
  nbd_close (h);
  server_stop (&s);
}

static void chunk_error_oldstyle (void) { chunk_error_simple_reply ("oldstyle", true); }
static void chunk_error_no_sr (void) { chunk_error_simple_reply ("no structured replies", false); }

/* Item 15: holes read through the project's test server, which speaks
 * extended headers (1.14 cannot, so it reads them with plain structured
 * replies; the data must be the same).
 */
static void
hole_reads (void)
{
  struct server s;
  const char *args[] = { NULL };
  struct nbd_handle *h = new_handle ();
  int (*eh_negotiated) (struct nbd_handle *) =
    NEWER (nbd_get_extended_headers_negotiated);
  static unsigned char buf[131072];
  int r;

  start_test_server (&s, "probe-commands", args);
  step ("hole: connect");
  if (nbd_connect_unix (h, s.sock) == -1)
    probe_fail ("connect_unix: %s", nbd_get_error ());
  /* nbd_set_request_extended_headers(3): "By default, libnbd tries to
   * negotiate extended headers with the server" (1.18).
   */
  if (eh_negotiated)
    want ("hole: extended headers negotiated", "1", "%s", rv (eh_negotiated (h)));
  else
    want ("hole: extended headers negotiated", "1", "not in this library");
  memset (buf, 0xff, sizeof buf);
  step ("hole: pread");
  r = nbd_pread (h, buf, sizeof buf, 0, 0);
  say ("hole: pread of a hole", "%s, zeroes %s", rv (r), all_bytes (buf, sizeof buf, 0));
  step ("hole: pread again");
  say ("hole: connection still usable", "%s", rv (nbd_pread (h, buf, 4096, 65536, 0)));
  nbd_close (h);
  server_stop (&s);
}

/* Item 17: with pread_initialize (the default) the buffer is zeroed
 * before any check, also when the call is refused.
 */
static void
pread_initialize_refused (void)
{
  struct nbd_handle *h = new_handle ();
  static unsigned char buf[4096];
  int cb_calls = 0;
  nbd_chunk_callback cb = { .callback = chunk_fails, .user_data = &cb_calls };
  int64_t r;

  say ("pread_initialize default", "%s", rv (nbd_get_pread_initialize (h)));
  memset (buf, 0xff, sizeof buf);
  r = nbd_pread (h, buf, sizeof buf, 0, 0);
  say ("pread on a created handle", "%s, zeroed %s", rv (r), all_bytes (buf, sizeof buf, 0));
  memset (buf, 0xff, sizeof buf);
  r = nbd_aio_pread (h, buf, sizeof buf, 0, NBD_NULL_COMPLETION, 0);
  say ("aio_pread on a created handle", "%s, zeroed %s", rv (r), all_bytes (buf, sizeof buf, 0));
  memset (buf, 0xff, sizeof buf);
  r = nbd_pread_structured (h, buf, sizeof buf, 0, cb, 0);
  say ("pread_structured on a created handle", "%s, zeroed %s", rv (r),
       all_bytes (buf, sizeof buf, 0));
  memset (buf, 0xff, sizeof buf);
  r = nbd_pread (h, buf, sizeof buf, 0, 0x10000);
  say ("pread with a bogus flag", "%s, zeroed %s", rv (r), all_bytes (buf, sizeof buf, 0));
  nbd_set_pread_initialize (h, false);
  memset (buf, 0xff, sizeof buf);
  r = nbd_pread (h, buf, sizeof buf, 0, 0);
  say ("pread, initialize off", "%s, untouched %s", rv (r),
       all_bytes (buf, sizeof buf, 0xff));
  nbd_close (h);
}

/* Item 19: more than the server's maximum block size. */
static void
over_maximum (void)
{
  struct server s;
  const char *args[] = { "--filter=blocksize-policy", "memory", "64M",
                         "blocksize-maximum=32M", NULL };
  struct nbd_handle *h = new_handle ();
  size_t big = 33 * 1024 * 1024;
  unsigned char *buf = calloc (1, big);
  int64_t r;

  start_nbdkit (&s, args);
  step ("max: connect");
  if (nbd_connect_unix (h, s.sock) == -1)
    probe_fail ("connect_unix: %s", nbd_get_error ());
  say ("max: block size maximum", "%s", rv (nbd_get_block_size (h, LIBNBD_SIZE_MAXIMUM)));
  step ("max: pwrite 33M");
  r = nbd_pwrite (h, buf, big, 0, 0);
  /* nbd_pwrite(3) (1.16 on): "libnbd defaults to enforcing a maximum
   * write buffer of the lesser of 64MiB or any maximum payload size
   * advertised by the server; attempts to exceed this will generally
   * result in a client-side ERANGE error".  1.14 sends the request.
   */
  want ("max: pwrite 33M", "-1 ERANGE", "%s", rv (r));
  step ("max: pread 33M");
  r = nbd_pread (h, buf, big, 0, 0);
  /* nbd_pread(3) says the same of the read buffer. */
  want ("max: pread 33M", "-1 ERANGE", "%s", rv (r));
  step ("max: aio_pwrite 33M");
  r = nbd_aio_pwrite (h, buf, big, 0, NBD_NULL_COMPLETION, 0);
  want ("max: aio_pwrite 33M", "-1 ERANGE", "%s", r > 0 ? "cookie" : rv (r));
  while (nbd_aio_in_flight (h) > 0)
    if (nbd_poll (h, 2000) == -1)
      break;
  step ("max: pwrite 32M");
  say ("max: pwrite 32M", "%s", rv (nbd_pwrite (h, buf, 32 * 1024 * 1024, 0, 0)));
  say ("max: state", "%s", state_of (h));
  free (buf);
  nbd_close (h);
  server_stop (&s);
}

/* Item 19: LIBNBD_CMD_FLAG_PAYLOAD_LEN (1.18).  nbd_set_strict_mode(3),
 * LIBNBD_STRICT_AUTO_FLAG (on by default): libnbd sets or clears the
 * flag itself according to whether extended headers are in use, so a
 * write with it succeeds with or without them.  1.14 does not know the
 * flag (EINVAL).
 */
static void
payload_len_flag (const char *name, bool extended)
{
  struct server s;
  struct nbd_handle *h = new_handle ();
  static unsigned char buf[4096], back[4096];
  char key[128];
  int r;

  if (extended) {
    const char *args[] = { NULL };
    start_test_server (&s, "probe-commands", args);
  }
  else {
    const char *args[] = { "memory", "1M", NULL };
    start_nbdkit (&s, args);
  }
  step ("payload_len: connect");
  if (nbd_connect_unix (h, s.sock) == -1)
    probe_fail ("connect_unix: %s", nbd_get_error ());
  memset (buf, 0x5a, sizeof buf);
  snprintf (key, sizeof key, "%s: pwrite with PAYLOAD_LEN", name);
  step (key);
  r = nbd_pwrite (h, buf, sizeof buf, 0, LIBNBD_CMD_FLAG_PAYLOAD_LEN);
  want (key, "0", "%s", rv (r));
  snprintf (key, sizeof key, "%s: aio_pwrite with PAYLOAD_LEN", name);
  {
    int64_t c = nbd_aio_pwrite (h, buf, sizeof buf, 4096, NBD_NULL_COMPLETION,
                                LIBNBD_CMD_FLAG_PAYLOAD_LEN);
    while (c > 0 && nbd_aio_in_flight (h) > 0)
      if (nbd_poll (h, 2000) == -1)
        break;
    want (key, "1", "%s", c > 0 ? rv (nbd_aio_command_completed (h, c)) : rv (c));
  }
  snprintf (key, sizeof key, "%s: pread back", name);
  r = nbd_pread (h, back, sizeof back, 0, 0);
  want (key, "0 same yes", "%s same %s", rv (r), memcmp (buf, back, sizeof buf) ? "no" : "yes");
  say ("payload_len: pwrite with FUA|bogus flag 0x100", "%s",
       rv (nbd_pwrite (h, buf, sizeof buf, 0, 0x100)));
  nbd_close (h);
  server_stop (&s);
}

static void payload_len_plain (void) { payload_len_flag ("nbdkit", false); }
static void payload_len_extended (void) { payload_len_flag ("test server", true); }

int
main (void)
{
  probe_begin ();
  section ("chunk error, oldstyle", chunk_error_oldstyle);
  section ("chunk error, no structured replies", chunk_error_no_sr);
  section ("hole reads", hole_reads);
  section ("pread_initialize", pread_initialize_refused);
  section ("over the maximum block size", over_maximum);
  section ("PAYLOAD_LEN without extended headers", payload_len_plain);
  section ("PAYLOAD_LEN with extended headers", payload_len_extended);
  return 0;
}
