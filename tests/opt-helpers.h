/* Helpers shared by the option-mode tests (test-opt-mode.c,
 * test-opt-negotiation.c, test-opt-starttls.c): a two-export nbdkit,
 * counting completion closures, driving an aio option to its end.
 */
#ifndef TESTS_OPT_HELPERS_H
#define TESTS_OPT_HELPERS_H

#include <string.h>

#include "hs-helpers.h"

/* nbdkit (eval plugin) serving exports "a" (1M, description "desc") and
 * "b" (2M, "desc-b"), both writable and flushable (writes are dropped,
 * reads return zeroes); any other name is refused.
 */
static inline int
start_nbdkit_two_exports (struct server *s)
{
  return start_nbdkit (s, "eval",
                       "list_exports=echo INTERLEAVED; echo a; echo desc; echo b; echo desc-b",
                       "default_export=echo a",
                       "open=case \"$3\" in a|b) echo \"$3\" ;; *) echo ENOENT unknown export >&2; exit 1 ;; esac",
                       "get_size=if [ \"$2\" = b ]; then echo 2M; else echo 1M; fi",
                       "export_description=echo desc",
                       "pread=dd if=/dev/zero count=$3 iflag=count_bytes 2>/dev/null",
                       "pwrite=cat >/dev/null",
                       "flush=:", "trim=:", "zero=:",
                       "can_write=exit 0", "can_flush=exit 0",
                       NULL);
}

/* The start of each such test: skip (77) without nbdkit, fail if the
 * two-export server does not start.
 */
static inline void
start_two_exports_or_exit (struct server *s, const char *prog)
{
  if (!have_program ("nbdkit")) {
    fprintf (stderr, "%s: nbdkit not found, skipping\n", prog);
    exit (77);
  }
  if (start_nbdkit_two_exports (s) == -1) {
    fprintf (stderr, "%s: could not start nbdkit\n", prog);
    exit (EXIT_FAILURE);
  }
}

/* A completion closure that counts: how often it was called, the last
 * *error it saw, how often it was freed.
 */
struct completion_data {
  int calls;
  int error;
  int frees;
};

static inline int
completion_cb (void *opaque, int *error)
{
  struct completion_data *d = opaque;
  d->calls++;
  d->error = *error;
  return 1;
}

static inline void
completion_free (void *opaque)
{
  struct completion_data *d = opaque;
  d->frees++;
}

/* A completion closure counting into *c, which is cleared first. */
static inline nbd_completion_callback
completion (struct completion_data *c)
{
  memset (c, 0, sizeof *c);
  return (nbd_completion_callback) { .callback = completion_cb,
                                     .user_data = c,
                                     .free = completion_free };
}

/* Drive an aio option request until the handle is no longer connecting. */
static inline void
wait_not_connecting (struct nbd_handle *h)
{
  int i;
  for (i = 0; i < 1000 && nbd_aio_is_connecting (h); i++)
    if (nbd_poll (h, 5000) == -1) {
      fprintf (stderr, "nbd_poll: %s\n", nbd_get_error ());
      break;
    }
  CHECK (!nbd_aio_is_connecting (h), "still connecting after polling");
}

#endif /* TESTS_OPT_HELPERS_H */
