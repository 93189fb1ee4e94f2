/* Helpers shared by the C tests.  Plain C, no test framework: a Check
 * test wraps them in ck_assert_msg, a plain test in CHECK_OR_EXIT.
 */
#ifndef TESTS_COMMON_H
#define TESTS_COMMON_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libnbd.h>

/* Checks the calling thread's last libnbd error: nbd_get_errno () must
 * be errnum and nbd_get_error () must start with "CONTEXT: " and, if
 * substr is not NULL, contain substr.  Returns NULL if all holds, else a
 * description of the mismatch (in a thread-local buffer).
 */
static inline const char *
error_mismatch (int errnum, const char *context, const char *substr)
{
  static __thread char buf[1024];
  const char *msg = nbd_get_error ();
  int e = nbd_get_errno ();
  size_t clen = strlen (context);

  if (e != errnum)
    snprintf (buf, sizeof buf, "errno is %d (%s), expected %d (%s); message: %s",
              e, strerror (e), errnum, strerror (errnum),
              msg ? msg : "(null)");
  else if (msg == NULL)
    snprintf (buf, sizeof buf, "nbd_get_error () is NULL");
  else if (strncmp (msg, context, clen) != 0 || strncmp (msg + clen, ": ", 2) != 0)
    snprintf (buf, sizeof buf, "message \"%s\" does not start with \"%s: \"",
              msg, context);
  else if (substr && strstr (msg, substr) == NULL)
    snprintf (buf, sizeof buf, "message \"%s\" does not contain \"%s\"",
              msg, substr);
  else
    return NULL;
  return buf;
}

/* For tests without a framework. */
#define CHECK_OR_EXIT(cond, ...)                                        \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf (stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, \
               #cond);                                                  \
      fprintf (stderr, __VA_ARGS__);                                    \
      fprintf (stderr, "\n");                                           \
      exit (EXIT_FAILURE);                                              \
    }                                                                   \
  } while (0)

#define EXPECT_ERROR_OR_EXIT(errnum, context, substr)                   \
  do {                                                                  \
    const char *mismatch_ = error_mismatch ((errnum), (context), (substr)); \
    CHECK_OR_EXIT (mismatch_ == NULL, "%s", mismatch_);                 \
  } while (0)

/* A closure's .free counter: user_data points to an int. */
static inline void
count_free (void *user_data)
{
  int *count = user_data;
  (*count)++;
}

/* Seconds on the monotonic clock, for measuring how long a call took. */
static inline double
monotonic_seconds (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif /* TESTS_COMMON_H */
