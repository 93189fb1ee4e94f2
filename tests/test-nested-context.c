/* Calls nest: a callback may call the API on the same handle.  An error
 * set by the outer call after the nested one returns must still carry the
 * outer call's name, and the nested call's own error its own.
 */
#include <errno.h>
#include <stdbool.h>
#include <unistd.h>

#include "checks.h"
#include "hs-helpers.h"

static struct nbd_handle *h;
static int nested_errno;
static char nested_msg[256];

static int
chunk (void *user_data, const void *subbuf, size_t count, uint64_t offset,
       unsigned status, int *error)
{
  (void) user_data; (void) subbuf; (void) count; (void) offset; (void) status;
  /* A nested call that fails: not allowed once connected. */
  if (nbd_set_export_name (h, "other") == -1) {
    nested_errno = nbd_get_errno ();
    snprintf (nested_msg, sizeof nested_msg, "%s", nbd_get_error ());
  }
  *error = EPROTO;
  return -1;
}

int
main (void)
{
  struct server s;
  char buf[512];

  alarm (30);
  if (!have_program ("nbdkit"))
    return 77;
  REQUIRE (start_nbdkit (&s, "memory", "1M", NULL) == 0, "nbdkit did not start");
  h = nbd_create ();
  REQUIRE (h && nbd_connect_unix (h, s.sock) == 0, "connect: %s", nbd_get_error ());

  CHECK_FAILS (nbd_pread_structured (h, buf, sizeof buf, 0,
                                     (nbd_chunk_callback) { .callback = chunk }, 0),
               EPROTO, "nbd_pread_structured", "command failed");
  CHECK (nested_errno == EINVAL, "nested errno %d", nested_errno);
  CHECK (strncmp (nested_msg, "nbd_set_export_name: ", 21) == 0,
         "nested message: %s", nested_msg);

  nbd_close (h);
  server_stop (&s);
  return check_status ("test-nested-context");
}
