/* Non-fatal checks for the plain C tests: each failed check prints
 * "FILE:LINE: FAIL: ..." and counts a failure; at the end the test
 * returns check_status (PROG).  REQUIRE is the fatal form.
 */
#ifndef TESTS_CHECKS_H
#define TESTS_CHECKS_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "common.h"

static int failures;

/* The case being run, if the test sets it: printed as "FAIL [case]". */
static const char *check_case;

/* Prints the start of a failure message and counts the failure; cond is
 * the text of the failed condition, or NULL.
 */
static inline void
check_failed (const char *file, int line, const char *cond)
{
  fprintf (stderr, "%s:%d: FAIL", file, line);
  if (check_case)
    fprintf (stderr, " [%s]", check_case);
  fprintf (stderr, ": ");
  if (cond)
    fprintf (stderr, "%s: ", cond);
  failures++;
}

/* An unconditional failure. */
#define FAIL(...)                                                       \
  do {                                                                  \
    check_failed (__FILE__, __LINE__, NULL);                            \
    fprintf (stderr, __VA_ARGS__);                                      \
    fprintf (stderr, "\n");                                             \
  } while (0)

#define CHECK(cond, ...)                                                \
  do {                                                                  \
    if (!(cond)) {                                                      \
      check_failed (__FILE__, __LINE__, #cond);                         \
      fprintf (stderr, __VA_ARGS__);                                    \
      fprintf (stderr, "\n");                                           \
    }                                                                   \
  } while (0)

/* Fatal: stop the test (connection setup failed etc). */
#define REQUIRE(cond, ...)                                              \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf (stderr, "%s:%d: FATAL: %s: ", __FILE__, __LINE__, #cond); \
      fprintf (stderr, __VA_ARGS__);                                    \
      fprintf (stderr, " (%s)\n", nbd_get_error () ? nbd_get_error () : ""); \
      exit (EXIT_FAILURE);                                              \
    }                                                                   \
  } while (0)

/* The last libnbd error is errnum, its message starts with "context: "
 * and contains substr (if not NULL); see error_mismatch.
 */
#define CHECK_ERR(errnum, context, substr)                              \
  do {                                                                  \
    const char *m_ = error_mismatch ((errnum), (context), (substr));    \
    if (m_)                                                             \
      FAIL ("%s", m_);                                                  \
  } while (0)

/* Call must fail (-1) with the given error. */
#define CHECK_FAILS(call, errnum, context, substr)                      \
  do {                                                                  \
    int64_t r_ = (int64_t) (call);                                      \
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

/* The exit status of the test: failure (saying how many) if any check
 * failed.
 */
static inline int
check_status (const char *prog)
{
  if (failures) {
    fprintf (stderr, "%s: %d failure(s)\n", prog, failures);
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}

#endif /* TESTS_CHECKS_H */
