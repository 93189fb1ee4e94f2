/* nbd_get_handle_size follows what the handle holds: it grows with the
 * strings set on the handle, with meta context requests and with the
 * commands in flight against nbdkit, shrinks back when they go, and
 * answers in every state.  nbd_get_version_extra answers in every state
 * too, always with the same static string.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "cmdtest.h"

#define PROG "test-handle-size"

static ssize_t
size_of (struct nbd_handle *h)
{
  ssize_t n = nbd_get_handle_size (h);
  REQUIRE (n > 0, "nbd_get_handle_size returned %zd", n);
  return n;
}

/* The extra version: the configured string, the same pointer each time. */
static void
check_version_extra (struct nbd_handle *h, const char *state)
{
  static const char *first;
  const char *extra = nbd_get_version_extra (h);

  check_case = state;
  CHECK_STREQ (extra, LIBNBD_VERSION_EXTRA);
  if (first == NULL)
    first = extra;
  CHECK (extra == first, "nbd_get_version_extra returned a different pointer");
  check_case = NULL;
}

static void
test_settings (void)
{
  struct nbd_handle *h = nbd_create ();
  char name[4001];
  ssize_t fresh, n;

  REQUIRE (h != NULL, "nbd_create");
  fresh = size_of (h);
  /* At least the handle itself: its cookie table alone is 2 KiB. */
  CHECK (fresh >= 2048 && fresh < 1024 * 1024, "fresh handle: %zd bytes", fresh);
  check_version_extra (h, "created");

  /* A long export name is counted, and forgotten once replaced. */
  memset (name, 'e', sizeof name - 1);
  name[sizeof name - 1] = 0;
  EXPECT_OK (nbd_set_export_name (h, name));
  n = size_of (h);
  CHECK (n >= fresh + 4000, "4000 byte export name: %zd -> %zd", fresh, n);
  EXPECT_OK (nbd_set_export_name (h, ""));
  CHECK_EQ (size_of (h), fresh);

  /* Other strings kept by the handle. */
  EXPECT_OK (nbd_set_handle_name (h, name));
  EXPECT_OK (nbd_set_tls_certificates (h, name));
  EXPECT_OK (nbd_set_tls_priority (h, name));
  n = size_of (h);
  /* (The handle name replaced the default "nbd1", 5 bytes.) */
  CHECK (n >= fresh + 12000 - 5, "three 4000 byte strings: %zd -> %zd", fresh, n);

  /* Meta context requests. */
  {
    ssize_t before = size_of (h);
    char ctx[64];
    for (int i = 0; i < 100; i++) {
      snprintf (ctx, sizeof ctx, "test:context-number-%03d-with-a-long-name", i);
      EXPECT_OK (nbd_add_meta_context (h, ctx));
    }
    n = size_of (h);
    CHECK (n >= before + 100 * 40, "100 meta contexts: %zd -> %zd", before, n);
    EXPECT_OK (nbd_clear_meta_contexts (h));
    CHECK (size_of (h) <= n - 100 * 40, "cleared contexts still counted");
  }
  nbd_close (h);
}

static void
test_commands (void)
{
  const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                         "memory", "1M", NULL };
  struct server s;
  struct nbd_handle *h;
  static char bufs[64][4096];
  int64_t cookies[64];
  ssize_t idle, busy, retired;

  start_server (&s, argv);
  h = connect_server (&s, true);
  check_version_extra (h, "connected");
  idle = size_of (h);

  /* 64 reads issued and not yet retired: 64 command records more. */
  for (int i = 0; i < 64; i++) {
    cookies[i] = nbd_aio_pread (h, bufs[i], sizeof bufs[i], 4096 * i,
                                NBD_NULL_COMPLETION, 0);
    REQUIRE (cookies[i] > 0, "nbd_aio_pread");
  }
  busy = size_of (h);
  CHECK (busy >= idle + 64 * 64, "64 reads in flight: %zd -> %zd", idle, busy);

  REQUIRE (drain (h) == 0, "drain");
  /* Completed but not retired: still held. */
  CHECK_EQ (size_of (h), busy);
  for (int i = 0; i < 64; i++)
    CHECK_EQ (nbd_aio_command_completed (h, cookies[i]), 1);
  retired = size_of (h);
  CHECK (retired >= idle && retired <= busy,
         "retired: idle %zd, busy %zd, now %zd", idle, busy, retired);

  EXPECT_OK (nbd_shutdown (h, 0));
  check_version_extra (h, "closed");
  size_of (h);
  nbd_close (h);

  /* Negotiating (opt mode): the export list arrives into the handle. */
  h = nbd_create ();
  REQUIRE (h != NULL, "nbd_create");
  EXPECT_OK (nbd_set_opt_mode (h, true));
  REQUIRE (nbd_connect_unix (h, s.sock) == 0, "nbd_connect_unix");
  CHECK (nbd_aio_is_negotiating (h) == 1, "not negotiating");
  check_version_extra (h, "negotiating");
  size_of (h);
  EXPECT_OK (nbd_opt_abort (h));
  nbd_close (h);

  /* A dead handle answers too. */
  h = connect_server (&s, false);
  /* SIGKILL: nbdkit may wait for its open connection on SIGTERM. */
  kill (s.pid, SIGKILL);
  stop_server (&s);
  if (nbd_pread (h, bufs[0], 512, 0, 0) != -1)
    FAIL ("nbd_pread after the server died succeeded");
  CHECK (nbd_aio_is_dead (h) == 1, "handle is not dead");
  check_version_extra (h, "dead");
  size_of (h);
  nbd_close (h);
}

int
main (void)
{
  static void (*const tests[]) (void) = { test_settings, test_commands, NULL };
  return run_tests (PROG, tests);
}
