/* Shared by the TLS tests: running shell commands (certtool, psktool)
 * and deciding whether TLS can be tested at all.
 */
#ifndef TESTS_TLS_HELPERS_H
#define TESTS_TLS_HELPERS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <libnbd.h>

/* system() of a printf-formatted command line. */
static inline int __attribute__ ((format (printf, 1, 2)))
run (const char *fmt, ...)
{
  char cmd[4096];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (cmd, sizeof cmd, fmt, ap);
  va_end (ap);
  return system (cmd);
}

/* True if this library has TLS, nbdkit has TLS, and the given tools
 * (a shell "command -v" list such as "certtool psktool") exist; else
 * says why (the test then exits 77).
 */
static inline bool
tls_prerequisites (const char *tools)
{
  struct nbd_handle *h = nbd_create ();
  int tls;

  if (h == NULL) {
    fprintf (stderr, "nbd_create: %s\n", nbd_get_error ());
    exit (EXIT_FAILURE);
  }
  tls = nbd_supports_tls (h);
  nbd_close (h);
  if (tls != 1) {
    fprintf (stderr, "libnbd built without TLS: skipped\n");
    return false;
  }
  if (run ("for t in %s; do command -v $t >/dev/null || exit 1; done", tools) != 0) {
    fprintf (stderr, "one of %s missing: skipped\n", tools);
    return false;
  }
  if (run ("nbdkit --dump-config 2>/dev/null | grep -q '^tls=yes'") != 0) {
    fprintf (stderr, "nbdkit missing or without TLS: skipped\n");
    return false;
  }
  return true;
}

#endif /* TESTS_TLS_HELPERS_H */
