/* State queries on a newly created handle.
 *
 * Not in TESTS yet: the state machine (lib/states.c) is being written,
 * and until it is these calls fail with ENOTSUP.  Add it to TESTS
 * (tests/Makefile.am) once nbd_aio_is_* are implemented.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "common.h"

#define EXPECT_STATE(call, expected)                                    \
  do {                                                                  \
    int r_ = call (h);                                                  \
    CHECK_OR_EXIT (r_ == (expected), "%s returned %d, expected %d: %s", \
                   #call, r_, (expected),                               \
                   r_ == -1 ? nbd_get_error () : "");                   \
  } while (0)

int
main (void)
{
  struct nbd_handle *h = nbd_create ();
  const char *s;
  char buf[512];

  CHECK_OR_EXIT (h != NULL, "%s", nbd_get_error ());

  EXPECT_STATE (nbd_aio_is_created, 1);
  EXPECT_STATE (nbd_aio_is_connecting, 0);
  EXPECT_STATE (nbd_aio_is_negotiating, 0);
  EXPECT_STATE (nbd_aio_is_ready, 0);
  EXPECT_STATE (nbd_aio_is_processing, 0);
  EXPECT_STATE (nbd_aio_is_dead, 0);
  EXPECT_STATE (nbd_aio_is_closed, 0);

  s = nbd_connection_state (h);
  CHECK_OR_EXIT (s != NULL, "nbd_connection_state: %s", nbd_get_error ());
  CHECK_OR_EXIT (strncmp (s, "START", 5) == 0 || strstr (s, "reated") != NULL,
                 "nbd_connection_state is \"%s\"", s);

  /* Calls that need a connection fail with ENOTCONN before connecting. */
  CHECK_OR_EXIT (nbd_get_size (h) == -1, "nbd_get_size succeeded");
  EXPECT_ERROR_OR_EXIT (ENOTCONN, "nbd_get_size", NULL);
  CHECK_OR_EXIT (nbd_pread (h, buf, sizeof buf, 0, 0) == -1,
                 "nbd_pread succeeded");
  EXPECT_ERROR_OR_EXIT (ENOTCONN, "nbd_pread", NULL);
  CHECK_OR_EXIT (nbd_opt_go (h) == -1, "nbd_opt_go succeeded");
  EXPECT_ERROR_OR_EXIT (ENOTCONN, "nbd_opt_go", NULL);

  nbd_close (h);
  return EXIT_SUCCESS;
}
