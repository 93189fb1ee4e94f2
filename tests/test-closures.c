/* Closure lifetimes for commands against nbdkit: on every path (success,
 * server error, callback failure, nbd_close with commands in flight,
 * server killed with commands in flight, client-side refusal) each
 * .free runs exactly once, and the callbacks run the documented number
 * of times with the documented error.
 */
/* This test passes NULL on purpose to check the EFAULT errors, so the
 * header's nonnull attributes (which would make GCC warn and UBSan
 * abort) are switched off, as <libnbd.h> allows.
 */
#define LIBNBD_ATTRIBUTE_NONNULL(...)

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libnbd.h>

#include "cmdtest.h"

#define PROG "test-closures"

struct counts {
  int calls;                    /* completion callback */
  int frees;                    /* completion .free */
  int err;                      /* last *error seen by completion */
  int ret;                      /* completion returns this */
  int set_err;                  /* completion stores this into *error */
  int chunk_calls, chunk_frees;
  int extent_calls, extent_frees;
};

static int
completion_cb (void *user_data, int *error)
{
  struct counts *c = user_data;
  c->calls++;
  c->err = *error;
  if (c->set_err)
    *error = c->set_err;
  return c->ret;
}

static void
completion_free (void *user_data)
{
  ((struct counts *) user_data)->frees++;
}

static int
chunk_cb (void *user_data, const void *subbuf, size_t count, uint64_t offset,
          unsigned status, int *error)
{
  (void) subbuf; (void) count; (void) offset; (void) status; (void) error;
  ((struct counts *) user_data)->chunk_calls++;
  return 0;
}

static void
chunk_free (void *user_data)
{
  ((struct counts *) user_data)->chunk_frees++;
}

static int
extent_cb (void *user_data, const char *metacontext, uint64_t offset,
           nbd_extent *entries, size_t nr_entries, int *error)
{
  (void) metacontext; (void) offset; (void) entries; (void) nr_entries;
  (void) error;
  ((struct counts *) user_data)->extent_calls++;
  return 0;
}

static void
extent_free (void *user_data)
{
  ((struct counts *) user_data)->extent_frees++;
}

#define COMPLETION(c) \
  ((nbd_completion_callback) { .callback = completion_cb, .user_data = (c), \
                               .free = completion_free })
#define CHUNK(c) \
  ((nbd_chunk_callback) { .callback = chunk_cb, .user_data = (c),       \
                          .free = chunk_free })
#define EXTENT(c) \
  ((nbd_extent64_callback) { .callback = extent_cb, .user_data = (c),   \
                             .free = extent_free })

static char buf[65536];

/* A 4 KiB read (or write) at 0 whose completion counts into *c (cleared
 * first) and returns ret, storing set_err (if not 0) into *error; run
 * until nothing is in flight.  Returns the cookie.
 */
static int64_t
run_rw (struct nbd_handle *h, bool is_write, struct counts *c, int ret,
        int set_err)
{
  int64_t ck;

  memset (c, 0, sizeof *c);
  c->ret = ret;
  c->set_err = set_err;
  if (is_write)
    ck = nbd_aio_pwrite (h, buf, 4096, 0, COMPLETION (c), 0);
  else
    ck = nbd_aio_pread (h, buf, 4096, 0, COMPLETION (c), 0);
  EXPECT_OK (drain (h));
  return ck;
}

static void
test_success_and_errors (void)
{
  struct server s;
  const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                         "--filter=error", "memory", "1M",
                         "error-pwrite=EIO", "error-pwrite-rate=1", NULL };
  struct nbd_handle *h;
  struct counts c;
  int64_t ck;

  start_server (&s, argv);
  h = connect_server (&s, true);

  /* Success: completion once with 0, chunk called, each .free once. */
  memset (&c, 0, sizeof c);
  ck = nbd_aio_pread_structured (h, buf, 4096, 0, CHUNK (&c), COMPLETION (&c), 0);
  CHECK (ck > 0, "aio_pread_structured: %s", nbd_get_error ());
  EXPECT_OK (drain (h));
  CHECK (c.calls == 1 && c.err == 0, "completion %d calls, error %d",
         c.calls, c.err);
  CHECK (c.chunk_calls >= 1, "chunk not called");
  CHECK (nbd_aio_command_completed (h, ck) == 1, "completed");
  CHECK (c.frees == 1, "completion .free %d", c.frees);
  CHECK (c.chunk_frees == 1, "chunk .free %d", c.chunk_frees);

  /* Block status. */
  memset (&c, 0, sizeof c);
  ck = nbd_aio_block_status_64 (h, 65536, 0, EXTENT (&c), COMPLETION (&c), 0);
  CHECK (ck > 0, "aio_block_status_64: %s", nbd_get_error ());
  EXPECT_OK (drain (h));
  CHECK (nbd_aio_command_completed (h, ck) == 1, "completed");
  CHECK (c.calls == 1 && c.extent_calls == 1, "calls %d extent %d", c.calls,
         c.extent_calls);
  CHECK (c.frees == 1 && c.extent_frees == 1, "frees %d extent %d", c.frees,
         c.extent_frees);

  /* Auto-retired by returning 1: .free once, no need to retire. */
  ck = run_rw (h, false, &c, 1, 0);
  CHECK (c.calls == 1 && c.frees == 1, "auto-retire: calls %d frees %d",
         c.calls, c.frees);
  CHECK (nbd_aio_command_completed (h, ck) == 0, "auto-retired still found");

  /* .callback NULL with .free: free once, nothing else. */
  memset (&c, 0, sizeof c);
  ck = nbd_aio_pread (h, buf, 4096, 0,
                      (nbd_completion_callback) { .callback = NULL,
                                                  .user_data = &c,
                                                  .free = completion_free }, 0);
  EXPECT_OK (drain (h));
  CHECK (nbd_aio_command_completed (h, ck) == 1, "completed");
  CHECK (c.calls == 0 && c.frees == 1, "NULL callback: calls %d frees %d",
         c.calls, c.frees);

  /* Server error: completion sees EIO, command fails with EIO. */
  ck = run_rw (h, true, &c, 0, 0);
  CHECK (c.calls == 1 && c.err == EIO, "server error: calls %d error %d",
         c.calls, c.err);
  CHECK_FAILS (nbd_aio_command_completed (h, ck), EIO,
               "nbd_aio_command_completed", NULL);
  CHECK (c.frees == 1, "server error: .free %d", c.frees);

  /* Completion callback failing: -1 with *error replaces the result. */
  ck = run_rw (h, false, &c, -1, EXDEV);
  CHECK (c.calls == 1, "calls %d", c.calls);
  CHECK_FAILS (nbd_aio_command_completed (h, ck), EXDEV,
               "nbd_aio_command_completed", NULL);
  CHECK (c.frees == 1, ".free %d", c.frees);

  /* -1 on a failed command: the callback's error wins too. */
  ck = run_rw (h, true, &c, -1, EXDEV);
  CHECK (c.err == EIO, "error in %d", c.err);
  CHECK_FAILS (nbd_aio_command_completed (h, ck), EXDEV,
               "nbd_aio_command_completed", NULL);

  /* Assignments into *error are ignored unless the callback fails. */
  ck = run_rw (h, false, &c, 0, EXDEV);
  CHECK (nbd_aio_command_completed (h, ck) == 1,
         "error stored by a callback returning 0 was not ignored: %s",
         nbd_get_error ());

  /* Early failure (strict refusal): no callback, each .free once. */
  memset (&c, 0, sizeof c);
  CHECK_FAILS (nbd_aio_pread_structured (h, buf, 0, 0, CHUNK (&c),
                                         COMPLETION (&c), 0),
               EINVAL, "nbd_aio_pread_structured", NULL);
  CHECK (c.calls == 0 && c.chunk_calls == 0, "callbacks called on refusal");
  CHECK (c.frees == 1 && c.chunk_frees == 1,
         "refusal: completion .free %d chunk .free %d", c.frees, c.chunk_frees);
  memset (&c, 0, sizeof c);
  CHECK_FAILS (nbd_aio_pread (h, buf, 512, 0, COMPLETION (&c), 0x100), EINVAL,
               "nbd_aio_pread", "flag");
  CHECK (c.calls == 0 && c.frees == 1, "flag refusal: calls %d frees %d",
         c.calls, c.frees);
  memset (&c, 0, sizeof c);
  CHECK_FAILS (nbd_aio_block_status_64 (h, 0, 0, EXTENT (&c), COMPLETION (&c), 0),
               EINVAL, "nbd_aio_block_status_64", NULL);
  CHECK (c.calls == 0 && c.extent_calls == 0, "callbacks called on refusal");
  CHECK (c.frees == 1 && c.extent_frees == 1,
         "refusal: completion .free %d extent .free %d", c.frees,
         c.extent_frees);
  memset (&c, 0, sizeof c);
  CHECK_FAILS (nbd_pread_structured (h, buf, 512, 1 << 20, CHUNK (&c), 0),
               EINVAL, "nbd_pread_structured", "bounds");
  CHECK (c.chunk_calls == 0 && c.chunk_frees == 1,
         "blocking refusal: chunk calls %d frees %d", c.chunk_calls,
         c.chunk_frees);
  /* A buffer of NULL is refused by the API layer: .free still once. */
  memset (&c, 0, sizeof c);
  CHECK_FAILS (nbd_aio_pread (h, NULL, 512, 0, COMPLETION (&c), 0), EFAULT,
               "nbd_aio_pread", NULL);
  CHECK (c.calls == 0 && c.frees == 1, "NULL buf: calls %d frees %d",
         c.calls, c.frees);

  close_handle (h);

  /* Refusal on a handle that is not connected. */
  h = nbd_create ();
  memset (&c, 0, sizeof c);
  CHECK_FAILS (nbd_aio_pread (h, buf, 512, 0, COMPLETION (&c), 0), ENOTCONN,
               "nbd_aio_pread", NULL);
  CHECK (c.calls == 0 && c.frees == 1, "not connected: calls %d frees %d",
         c.calls, c.frees);
  nbd_close (h);

  stop_server (&s);
}

/* nbd_close with commands in flight: no completion call, .free once. */
static void
test_close_in_flight (void)
{
  struct server s;
  const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                         "--filter=delay", "memory", "1M", "delay-read=3",
                         NULL };
  struct nbd_handle *h;
  struct counts c[4];

  start_server (&s, argv);
  h = connect_server (&s, true);
  memset (c, 0, sizeof c);
  CHECK (nbd_aio_pread (h, buf, 4096, 0, COMPLETION (&c[0]), 0) > 0, "issue 0");
  CHECK (nbd_aio_pread_structured (h, buf + 4096, 4096, 4096, CHUNK (&c[1]),
                                   COMPLETION (&c[1]), 0) > 0, "issue 1");
  CHECK (nbd_aio_pread (h, buf + 8192, 4096, 8192, COMPLETION (&c[2]), 0) > 0,
         "issue 2");
  CHECK (nbd_aio_block_status_64 (h, 4096, 0, EXTENT (&c[3]),
                                  COMPLETION (&c[3]), 0) > 0, "issue 3");
  /* Make sure they were sent and a little time passes. */
  CHECK (nbd_poll (h, 100) >= 0, "poll: %s", nbd_get_error ());
  CHECK (nbd_aio_in_flight (h) >= 3, "in flight %d", nbd_aio_in_flight (h));
  nbd_close (h);
  for (int i = 0; i < 3; i++) {
    CHECK (c[i].calls == 0, "close: command %d completion called %d times",
           i, c[i].calls);
    CHECK (c[i].frees == 1, "close: command %d completion .free %d", i,
           c[i].frees);
  }
  CHECK (c[1].chunk_frees == 1 && c[1].chunk_calls == 0,
         "close: chunk calls %d frees %d", c[1].chunk_calls, c[1].chunk_frees);
  /* The block status was not delayed: it may have completed. */
  CHECK (c[3].calls <= 1 && c[3].frees == 1 && c[3].extent_frees == 1,
         "close: block status calls %d frees %d/%d", c[3].calls, c[3].frees,
         c[3].extent_frees);
  stop_server (&s);
}

/* The server dies with commands in flight. */
static void
test_server_killed (bool poll_first)
{
  struct server s;
  /* With one thread nbdkit reads one request, then sleeps: the others
   * stay unread, so the kill resets the connection (ECONNRESET): the
   * handle is dead.  With 16 threads it has read them all, so the kill
   * is a plain end of stream where a reply would start: as libnbd, the
   * handle is closed (not dead) and the commands fail all the same.
   */
  const char *end_state = poll_first ? "CLOSED" : "DEAD";
  const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                         "-t", poll_first ? "16" : "1",
                         "--filter=delay", "memory", "1M", "delay-read=5",
                         NULL };
  struct nbd_handle *h;
  struct counts c[3];
  int64_t ck[3];
  int r = 0;

  start_server (&s, argv);
  h = connect_server (&s, false);
  memset (c, 0, sizeof c);
  for (int i = 0; i < 3; i++) {
    ck[i] = i == 1
      ? nbd_aio_pread_structured (h, buf, 4096, 0, CHUNK (&c[i]),
                                  COMPLETION (&c[i]), 0)
      : nbd_aio_pread (h, buf, 4096, 0, COMPLETION (&c[i]), 0);
    CHECK (ck[i] > 0, "issue %d: %s", i, nbd_get_error ());
  }
  CHECK (nbd_poll (h, 200) >= 0, "poll: %s", nbd_get_error ());
  CHECK (nbd_aio_in_flight (h) == 3, "in flight %d", nbd_aio_in_flight (h));
  kill (s.pid, SIGKILL);
  while (nbd_aio_in_flight (h) > 0 && (r = nbd_poll (h, -1)) >= 0)
    ;
  if (poll_first)
    CHECK (r >= 0 && nbd_aio_is_closed (h) == 1, "poll %d, %s", r,
           nbd_connection_state (h));
  else
    CHECK (r == -1 && nbd_aio_is_dead (h) == 1, "poll %d, %s", r,
           nbd_connection_state (h));
  CHECK (nbd_aio_in_flight (h) == 0, "in flight %d after death",
         nbd_aio_in_flight (h));
  for (int i = 0; i < 3; i++) {
    CHECK (c[i].calls == 1, "killed: command %d completion called %d times",
           i, c[i].calls);
    CHECK (c[i].err == ENOTCONN,
           "killed: command %d completion error %d (%s), expected ENOTCONN "
           "as libnbd", i, c[i].err, strerror (c[i].err));
    CHECK (c[i].frees <= 1, "killed: .free %d", c[i].frees);
  }
  CHECK (c[1].chunk_calls == 0, "chunk called");
  /* The failed commands are still there to retire, with their error. */
  {
    int64_t p = nbd_aio_peek_command_completed (h);
    CHECK (p == ck[0] || p == ck[1] || p == ck[2], "peek %" PRIi64, p);
  }
  CHECK_FAILS (nbd_aio_command_completed (h, ck[0]), ENOTCONN,
               "nbd_aio_command_completed", NULL);
  /* New commands are refused; .free still once. */
  {
    struct counts d;
    memset (&d, 0, sizeof d);
    CHECK_FAILS (nbd_aio_pread (h, buf, 512, 0, COMPLETION (&d), 0), EINVAL,
                 "nbd_aio_pread", end_state);
    CHECK (d.calls == 0 && d.frees == 1, "dead: calls %d frees %d", d.calls,
           d.frees);
    CHECK_FAILS (nbd_pread (h, buf, 512, 0, 0), EINVAL, "nbd_pread", end_state);
  }
  nbd_close (h);
  for (int i = 0; i < 3; i++)
    CHECK (c[i].frees == 1, "killed: command %d .free %d after close", i,
           c[i].frees);
  CHECK (c[1].chunk_frees == 1, "killed: chunk .free %d", c[1].chunk_frees);
  stop_server (&s);
}

static void
test_server_killed_polling (void)
{
  test_server_killed (true);
}

static void
test_server_killed_closing (void)
{
  test_server_killed (false);
}

int
main (void)
{
  static void (*const tests[]) (void) = {
    test_success_and_errors, test_close_in_flight,
    test_server_killed_polling, test_server_killed_closing, NULL
  };

  return run_tests (PROG, tests);
}
