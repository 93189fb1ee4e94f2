/* Helpers shared by test-handshake.c, test-opt-mode.c, test-event-loop.c
 * and test-servers.c: the checks of checks.h, starting nbdkit in the
 * foreground on a unix socket (server.h), new handles and connecting.
 */
#ifndef TESTS_HS_HELPERS_H
#define TESTS_HS_HELPERS_H

#include <stdarg.h>
#include <stdint.h>
#include <inttypes.h>

#include "checks.h"
#include "server.h"

/* Does the program exist on $PATH? */
static inline bool
have_program (const char *prog)
{
  char cmd[256];
  snprintf (cmd, sizeof cmd, "command -v '%s' >/dev/null 2>&1", prog);
  return system (cmd) == 0;
}

/* Start "nbdkit -f -U $SOCK -P $PID ARGS..." (NULL-terminated varargs).
 * nbdkit writes the pid file once it listens, so the start waits for that.
 */
static inline int
start_nbdkit (struct server *s, ...)
{
  const char *argv[64] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID" };
  size_t n = 6;
  va_list ap;
  const char *a;

  va_start (ap, s);
  while ((a = va_arg (ap, const char *)) != NULL && n < 62)
    argv[n++] = a;
  va_end (ap);
  argv[n] = NULL;
  return server_start (s, argv);
}

/* New handle or exit. */
static inline struct nbd_handle *
new_handle (void)
{
  struct nbd_handle *h = nbd_create ();
  if (h == NULL) {
    fprintf (stderr, "nbd_create: %s\n", nbd_get_error ());
    exit (EXIT_FAILURE);
  }
  return h;
}

/* Connect or count a failure; returns 0 on success. */
static inline int
connect_or_fail (struct nbd_handle *h, const char *sock, const char *what)
{
  if (nbd_connect_unix (h, sock) == -1) {
    fprintf (stderr, "FAIL: %s: nbd_connect_unix: %s (errno %d)\n",
             what, nbd_get_error (), nbd_get_errno ());
    failures++;
    return -1;
  }
  return 0;
}

#endif /* TESTS_HS_HELPERS_H */
