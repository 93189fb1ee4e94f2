/* nbd_set_pread_initialize: whatever the server does, a read never leaves
 * the caller's old bytes in the buffer (the library clears, at completion,
 * every byte the server did not fill); with the setting off, a failed read
 * leaves the buffer alone.  Against tests/nbd-test-server with faults.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libnbd.h>

#include "checks.h"
#include "server.h"

#define SIZE 65536

static int
count_byte (const char *buf, size_t len, char c)
{
  int n = 0;
  for (size_t i = 0; i < len; i++)
    n += buf[i] == c;
  return n;
}

/* Read 8 KiB at 4 KiB from a --pattern server with FAULT, after filling
 * the buffer with 0xaa; returns the nbd_pread result.
 */
static int
faulty_read (const char *fault, bool initialize, bool structured, char *buf)
{
  struct server s;
  const char *args[8];
  int n = 0, r = -2;
  struct nbd_handle *h;

  args[n++] = "--pattern";
  args[n++] = "--size";
  args[n++] = "65536";
  if (fault) {
    args[n++] = "--fault";
    args[n++] = fault;
  }
  if (!structured)
    args[n++] = "--no-structured-replies";
  args[n] = NULL;
  if (test_server_start (&s, args) == -1)
    exit (77);
  h = nbd_create ();
  if (!h || nbd_set_pread_initialize (h, initialize) == -1
      || nbd_connect_unix (h, s.sock) == -1) {
    fprintf (stderr, "setup (%s): %s\n", fault ? fault : "none", nbd_get_error ());
    failures++;
  }
  else {
    memset (buf, 0xaa, 8192);
    r = nbd_pread (h, buf, 8192, 4096, 0);
  }
  nbd_close (h);
  server_stop (&s);
  return r;
}

int
main (void)
{
  char buf[8192];
  int r;

  alarm (60);
  if (access (test_server_path (), X_OK) != 0) {
    fprintf (stderr, "%s not built: skipping\n", test_server_path ());
    return 77;
  }

  /* A good read: the server's bytes, nothing else. */
  r = faulty_read (NULL, true, true, buf);
  CHECK (r == 0, "plain read failed: %s", nbd_get_error ());
  CHECK ((unsigned char) buf[0] == (4096 & 0xff) && (unsigned char) buf[1] == 1,
         "pattern data wrong");
  CHECK (count_byte (buf, sizeof buf, (char) 0xaa) == 32, /* pattern has 0xaa at 32 offsets */
         "unexpected 0xaa count %d", count_byte (buf, sizeof buf, (char) 0xaa));

  /* The server answers only the first half, then says done: the read fails
   * and the unanswered half reads as zeros, the answered half as data.
   */
  r = faulty_read ("gap-chunks", true, true, buf);
  CHECK (r == -1 && nbd_get_errno () == EIO, "gap read: r=%d errno=%d", r, nbd_get_errno ());
  CHECK (count_byte (buf + 4096, 4096, 0) == 4096, "gap not cleared");
  CHECK ((unsigned char) buf[1] == 1, "answered half lost");

  /* Every read fails: nothing of the old buffer survives. */
  r = faulty_read ("error-reply", true, true, buf);
  CHECK (r == -1 && nbd_get_errno () == EIO, "error read: r=%d", r);
  CHECK (count_byte (buf, sizeof buf, 0) == sizeof buf, "failed read not cleared");
  r = faulty_read ("error-reply", true, false, buf);
  CHECK (r == -1, "simple error read: r=%d", r);
  CHECK (count_byte (buf, sizeof buf, 0) == sizeof buf, "failed simple read not cleared");

  /* The connection dies before the reply. */
  r = faulty_read ("close-before-reply", true, true, buf);
  CHECK (r == -1, "read after close: r=%d", r);
  CHECK (count_byte (buf, sizeof buf, 0) == sizeof buf, "aborted read not cleared");

  /* With the setting off, a failed read leaves the buffer as it was. */
  r = faulty_read ("error-reply", false, true, buf);
  CHECK (r == -1, "error read: r=%d", r);
  CHECK (count_byte (buf, sizeof buf, (char) 0xaa) == sizeof buf,
         "buffer changed although pread_initialize is off");

  return check_status ("test-pread-initialize");
}
