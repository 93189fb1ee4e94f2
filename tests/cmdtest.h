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

#include "checks.h"
#include "server.h"

static struct server *servers_to_stop[8];
static int nr_servers_to_stop;

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
  if (check_status (prog) != EXIT_SUCCESS)
    return EXIT_FAILURE;
  printf ("%s: PASS\n", prog);
  return EXIT_SUCCESS;
}

/* The main of a command test: under a 120 s alarm (valgrind is slow), skip without nbdkit,
 * run each test of the NULL-terminated list, then finish.
 */
static inline int
run_tests (const char *prog, void (*const *tests) (void))
{
  alarm (120);
  skip_unless_nbdkit (prog);
  for (; *tests; tests++)
    (*tests) ();
  return finish (prog);
}

#endif /* TESTS_CMDTEST_H */
