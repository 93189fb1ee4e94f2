/* One handle shared by several threads against nbdkit memory: 4 threads
 * each issue 1000 blocking nbd_pwrite/nbd_pread on their own region and
 * verify the data; then threads that fail calls in different ways
 * concurrently each see their own nbd_get_errno/nbd_get_error.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libnbd.h>

#include "cmdtest.h"

#define PROG "test-threads"
#define NTHREADS 4
#define OPS 1000
#define REGION (256 * 1024)

static struct nbd_handle *h;

struct thread_result {
  int id;
  int errors;
  char msg[1400];
};

static void *
io_thread (void *arg)
{
  struct thread_result *t = arg;
  uint64_t base = (uint64_t) t->id * REGION;
  char *wbuf = malloc (8192), *rbuf = malloc (8192);
  unsigned seed = 1234 + t->id;

  for (int op = 0; op < OPS && t->errors == 0; op++) {
    size_t len = 1 + rand_r (&seed) % 8192;
    uint64_t off = base + rand_r (&seed) % (REGION - len);
    if (op % 2 == 0) {
      for (size_t i = 0; i < len; i++)
        wbuf[i] = (char) (t->id * 37 + op + i);
      if (nbd_pwrite (h, wbuf, len, off, 0) == -1) {
        snprintf (t->msg, sizeof t->msg, "pwrite: %s", nbd_get_error ());
        t->errors++;
      }
    }
    else {
      memset (rbuf, 0, len);
      if (nbd_pread (h, rbuf, len, off, 0) == -1) {
        snprintf (t->msg, sizeof t->msg, "pread: %s", nbd_get_error ());
        t->errors++;
      }
    }
  }

  /* Deterministic write/read-back pairs. */
  for (int op = 0; op < OPS / 2 && t->errors == 0; op++) {
    size_t len = 512 + (op * 97) % 4096;
    uint64_t off = base + (op * 4099) % (REGION - len);
    for (size_t i = 0; i < len; i++)
      wbuf[i] = (char) (t->id * 131 + op * 7 + i);
    if (nbd_pwrite (h, wbuf, len, off, 0) == -1
        || nbd_pread (h, rbuf, len, off, 0) == -1) {
      snprintf (t->msg, sizeof t->msg, "pwrite/pread: %s", nbd_get_error ());
      t->errors++;
    }
    else if (memcmp (wbuf, rbuf, len) != 0) {
      snprintf (t->msg, sizeof t->msg, "data mismatch at %" PRIu64 "+%zu op %d",
                off, len, op);
      t->errors++;
    }
  }
  free (wbuf);
  free (rbuf);
  return NULL;
}

static int
no_extent (void *user_data, const char *metacontext, uint64_t offset,
           nbd_extent *entries, size_t nr_entries, int *error)
{
  (void) user_data; (void) metacontext; (void) offset; (void) entries;
  (void) nr_entries; (void) error;
  return 0;
}

/* Each thread fails in its own way, many times, checking the error it
 * sees is its own.
 */
static void *
error_thread (void *arg)
{
  struct thread_result *t = arg;
  char buf[512];
  const uint64_t size = NTHREADS * REGION;

  for (int i = 0; i < 300 && t->errors == 0; i++) {
    const char *m;
    switch (t->id) {
    case 0:
      if (nbd_pread (h, buf, 512, size, 0) != -1) goto unexpected;
      m = error_mismatch (EINVAL, "nbd_pread", "out of bounds");
      break;
    case 1:
      if (nbd_pwrite (h, buf, 512, size, 0) != -1) goto unexpected;
      m = error_mismatch (ENOSPC, "nbd_pwrite", "out of bounds");
      break;
    case 2:
      if (nbd_trim (h, 0, 0, 0) != -1) goto unexpected;
      m = error_mismatch (EINVAL, "nbd_trim", "count cannot be 0");
      break;
    default:
      if (nbd_block_status_64 (h, 512, 0,
                               (nbd_extent64_callback) { .callback = no_extent },
                               0) != -1) goto unexpected;
      m = error_mismatch (ENOTSUP, "nbd_block_status_64", "metadata context");
      break;
    }
    if (m) {
      snprintf (t->msg, sizeof t->msg, "iteration %d: %s", i, m);
      t->errors++;
    }
    /* A successful call in between, interleaved with the others. */
    if (nbd_pread (h, buf, 512, t->id * 512, 0) == -1) {
      snprintf (t->msg, sizeof t->msg, "pread: %s", nbd_get_error ());
      t->errors++;
    }
  }
  return NULL;

 unexpected:
  snprintf (t->msg, sizeof t->msg, "call unexpectedly succeeded");
  t->errors++;
  return NULL;
}

static void
run_threads (void *(*fn) (void *), const char *what)
{
  pthread_t th[NTHREADS];
  struct thread_result res[NTHREADS];

  for (int i = 0; i < NTHREADS; i++) {
    memset (&res[i], 0, sizeof res[i]);
    res[i].id = i;
    if (pthread_create (&th[i], NULL, fn, &res[i]) != 0) {
      FAIL ("pthread_create");
      exit (EXIT_FAILURE);
    }
  }
  for (int i = 0; i < NTHREADS; i++) {
    pthread_join (th[i], NULL);
    if (res[i].errors)
      FAIL ("%s thread %d: %s", what, i, res[i].msg);
  }
}

int
main (void)
{
  struct server s;
  char size[32];
  static char big[NTHREADS * REGION];

  alarm (30);
  skip_unless_nbdkit (PROG);
  snprintf (size, sizeof size, "%d", NTHREADS * REGION);
  {
    const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                           "memory", size, NULL };
    start_server (&s, argv);
  }
  h = connect_server (&s, false);

  run_threads (io_thread, "I/O");

  /* The regions are disjoint: every thread's last deterministic write
   * is intact.  Check one byte pattern per thread.
   */
  EXPECT_OK (nbd_pread (h, big, sizeof big, 0, 0));
  for (int t = 0; t < NTHREADS; t++) {
    int op = OPS / 2 - 1;
    size_t len = 512 + (op * 97) % 4096;
    uint64_t off = (uint64_t) t * REGION + (op * 4099) % (REGION - len);
    for (size_t i = 0; i < len; i++)
      if (big[off + i] != (char) (t * 131 + op * 7 + i)) {
        FAIL ("thread %d final data differs at %" PRIu64, t, off + i);
        break;
      }
  }

  run_threads (error_thread, "error");

  /* Errors of other threads do not leak into this one. */
  EXPECT_OK (nbd_pread (h, big, 512, 0, 0));
  CHECK (nbd_aio_in_flight (h) == 0, "in flight %d", nbd_aio_in_flight (h));

  close_handle (h);
  stop_server (&s);
  return finish (PROG);
}
