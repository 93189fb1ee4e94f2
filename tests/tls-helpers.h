/* Shared by the TLS tests: running shell commands (certtool, psktool)
 * and deciding whether TLS can be tested at all.
 */
#ifndef TESTS_TLS_HELPERS_H
#define TESTS_TLS_HELPERS_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The test's own directory, for the certificates and keys it makes. */
static inline char *
tls_workdir_path (void)
{
  static char path[64];
  return path;
}

static inline void
tls_workdir_remove (void)
{
  if (tls_workdir_path ()[0])
    run ("rm -rf '%s'", tls_workdir_path ());
}

/* Makes the directory /tmp/PREFIX-XXXXXX, removed with its contents when
 * the test exits; returns its path, or NULL with errno set.
 */
static inline const char *
tls_workdir_create (const char *prefix)
{
  char *path = tls_workdir_path ();

  snprintf (path, 64, "/tmp/%s-XXXXXX", prefix);
  if (mkdtemp (path) == NULL) {
    path[0] = '\0';
    return NULL;
  }
  atexit (tls_workdir_remove);
  return path;
}

/* Writes text to the file dir/name (a certtool template, say); failing
 * that, the test fails.
 */
static inline void
write_file_or_exit (const char *dir, const char *name, const char *text)
{
  char path[512];
  FILE *fp;

  snprintf (path, sizeof path, "%s/%s", dir, name);
  fp = fopen (path, "w");
  if (fp == NULL || fputs (text, fp) == EOF || fclose (fp) != 0) {
    fprintf (stderr, "writing %s: %s\n", path, strerror (errno));
    exit (EXIT_FAILURE);
  }
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
