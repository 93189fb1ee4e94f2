/* Helpers for the command tests (test-commands, test-structured,
 * test-strict, test-closures, test-threads, test-errors): start nbdkit
 * in the foreground on a unix socket, connect, and record failures.
 */
#ifndef TESTS_CMDTEST_H
#define TESTS_CMDTEST_H

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libnbd.h>

#include "common.h"
#include "server.h"

static int failures;
static struct server *servers_to_stop[8];
static int nr_servers_to_stop;

#define FAIL(...)                                                       \
  do {                                                                  \
    fprintf (stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);              \
    fprintf (stderr, __VA_ARGS__);                                      \
    fprintf (stderr, "\n");                                             \
    failures++;                                                         \
  } while (0)

#define CHECK(cond, ...)                                                \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf (stderr, "%s:%d: FAIL: %s: ", __FILE__, __LINE__, #cond); \
      fprintf (stderr, __VA_ARGS__);                                    \
      fprintf (stderr, "\n");                                           \
      failures++;                                                       \
    }                                                                   \
  } while (0)

/* The last call failed with errnum, its message starts with
 * "context: " and contains substr (if not NULL).
 */
#define CHECK_ERR(errnum, context, substr)                              \
  do {                                                                  \
    const char *m_ = error_mismatch ((errnum), (context), (substr));    \
    if (m_)                                                             \
      FAIL ("%s", m_);                                                  \
  } while (0)

/* Call must fail (-1) with errnum. */
#define EXPECT_FAIL(call, errnum, context, substr)                      \
  do {                                                                  \
    int64_t r_ = (call);                                                \
    if (r_ != -1)                                                       \
      FAIL ("%s returned %" PRIi64 ", expected -1", #call, r_);         \
    else                                                                \
      CHECK_ERR ((errnum), (context), (substr));                        \
  } while (0)

/* Call must not fail. */
#define EXPECT_OK(call)                                                 \
  do {                                                                  \
    if ((call) == -1)                                                   \
      FAIL ("%s failed: %s (errno %d)", #call, nbd_get_error (),        \
            nbd_get_errno ());                                          \
  } while (0)

static void
stop_all_servers (void)
{
  for (int i = 0; i < nr_servers_to_stop; i++)
    server_stop (servers_to_stop[i]);
  nr_servers_to_stop = 0;
}

static inline void
skip_unless_nbdkit (const char *prog)
{
  if (system ("nbdkit --version >/dev/null 2>&1") != 0) {
    fprintf (stderr, "%s: nbdkit not found, skipping\n", prog);
    exit (77);
  }
  atexit (stop_all_servers);
}

/* Start a server: argv is a NULL-terminated template (see server.h).
 * Exits with failure if it does not start (nbdkit is known present).
 */
static inline void
start_server (struct server *s, const char *const *argv)
{
  if (server_start (s, argv) == -1) {
    fprintf (stderr, "FAIL: could not start %s\n", argv[0]);
    exit (EXIT_FAILURE);
  }
  if (nr_servers_to_stop < 8)
    servers_to_stop[nr_servers_to_stop++] = s;
}

static inline void
stop_server (struct server *s)
{
  for (int i = 0; i < nr_servers_to_stop; i++)
    if (servers_to_stop[i] == s) {
      servers_to_stop[i] = servers_to_stop[--nr_servers_to_stop];
      break;
    }
  server_stop (s);
}

/* Connect a new handle to s; meta: add base:allocation first. */
static inline struct nbd_handle *
connect_server (struct server *s, bool meta)
{
  struct nbd_handle *h = nbd_create ();

  if (h == NULL) {
    fprintf (stderr, "FAIL: nbd_create: %s\n", nbd_get_error ());
    exit (EXIT_FAILURE);
  }
  if (meta && nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1) {
    fprintf (stderr, "FAIL: nbd_add_meta_context: %s\n", nbd_get_error ());
    exit (EXIT_FAILURE);
  }
  if (nbd_connect_unix (h, s->sock) == -1) {
    fprintf (stderr, "FAIL: nbd_connect_unix %s: %s\n", s->sock,
             nbd_get_error ());
    exit (EXIT_FAILURE);
  }
  return h;
}

static inline void
close_handle (struct nbd_handle *h)
{
  if (nbd_shutdown (h, 0) == -1)
    FAIL ("nbd_shutdown: %s", nbd_get_error ());
  nbd_close (h);
}

/* Run the handle until no command is in flight (or an error). */
static inline int
drain (struct nbd_handle *h)
{
  while (nbd_aio_in_flight (h) > 0)
    if (nbd_poll (h, -1) == -1)
      return -1;
  return 0;
}

static inline int
finish (const char *prog)
{
  stop_all_servers ();
  if (failures) {
    fprintf (stderr, "%s: %d failure(s)\n", prog, failures);
    return EXIT_FAILURE;
  }
  printf ("%s: PASS\n", prog);
  return EXIT_SUCCESS;
}

#endif /* TESTS_CMDTEST_H */
