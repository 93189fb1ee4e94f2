/* Helpers shared by test-handshake.c, test-opt-mode.c, test-event-loop.c
 * and test-servers.c: non-fatal checks that count failures, error checks
 * and starting nbdkit in the foreground on a unix socket (server.h).
 */
#ifndef TESTS_HS_HELPERS_H
#define TESTS_HS_HELPERS_H

#include <stdarg.h>
#include <stdint.h>
#include <inttypes.h>

#include "common.h"
#include "server.h"

static int failures;

/* Non-fatal check: prints and counts a failure. */
#define CHECK(cond, ...)                                                \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf (stderr, "%s:%d: FAIL: %s: ", __FILE__, __LINE__, #cond); \
      fprintf (stderr, __VA_ARGS__);                                    \
      fprintf (stderr, "\n");                                           \
      failures++;                                                       \
    }                                                                   \
  } while (0)

/* The last libnbd error must be errnum, from context, containing substr. */
#define CHECK_ERR(errnum, context, substr)                              \
  do {                                                                  \
    const char *mm_ = error_mismatch ((errnum), (context), (substr));   \
    CHECK (mm_ == NULL, "%s", mm_);                                     \
  } while (0)

/* A call returning -1 must fail with the given error. */
#define CHECK_FAILS(call, errnum, context, substr)                      \
  do {                                                                  \
    int64_t r_ = (int64_t) (call);                                      \
    CHECK (r_ == -1, "%s returned %" PRIi64 ", expected -1", #call, r_); \
    if (r_ == -1)                                                       \
      CHECK_ERR ((errnum), (context), (substr));                        \
  } while (0)

/* A call must return exactly `expected`. */
#define CHECK_EQ(call, expected)                                        \
  do {                                                                  \
    int64_t r_ = (int64_t) (call);                                      \
    int64_t e_ = (int64_t) (expected);                                  \
    CHECK (r_ == e_, "%s returned %" PRIi64 ", expected %" PRIi64 " (%s)", \
           #call, r_, e_, r_ == -1 ? nbd_get_error () : "no error");    \
  } while (0)

#define CHECK_STREQ(got, expected)                                      \
  do {                                                                  \
    const char *g_ = (got), *x_ = (expected);                           \
    CHECK (g_ != NULL && strcmp (g_, x_) == 0,                          \
           "%s is \"%s\", expected \"%s\" (%s)", #got,                  \
           g_ ? g_ : "(null)", x_, g_ ? "" : nbd_get_error ());         \
  } while (0)

/* Does the program exist on $PATH? */
static inline bool
have_program (const char *prog)
{
  char cmd[256];
  snprintf (cmd, sizeof cmd, "command -v '%s' >/dev/null 2>&1", prog);
  return system (cmd) == 0;
}

/* Start "nbdkit -f -U $SOCK ARGS..." (NULL-terminated varargs). */
static inline int
start_nbdkit (struct server *s, ...)
{
  const char *argv[64] = { "nbdkit", "-f", "-U", "$SOCK" };
  size_t n = 4;
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
