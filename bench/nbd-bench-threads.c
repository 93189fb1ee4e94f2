/* nbd-bench-threads: T threads share ONE connected handle, and each does
 * blocking nbd_pread calls at random offsets as fast as it can.  This
 * measures how well an implementation lets blocking callers on one
 * handle overlap: if the handle lock is held across the whole wait, the
 * threads take turns and T threads run about as fast as one.
 *
 * Public libnbd API only, so the same binary runs against any
 * libnbd.so.0 (pick one with LD_LIBRARY_PATH); --which-lib says which
 * one the dynamic linker mapped.
 *
 * Output is one machine-readable line, e.g.
 *   workload=randread-threads bs=4096 threads=16 ops=400000 seconds=2.00 \
 *   ops_per_sec=200000 mib_per_sec=781.2 min_thread_ops=24000 max_thread_ops=26000
 * (min/max_thread_ops show whether some threads were starved.)
 */

#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <string.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <time.h>

#include <libnbd.h>

#include "bench-common.h"

#define MAX_THREADS 1024

struct shared {
  struct nbd_handle *h;
  uint64_t bs;
  uint64_t nblocks;             /* export size / bs */
  uint64_t max_ops;             /* 0: run until stop is set */
  pthread_barrier_t start;      /* every worker plus main */
  atomic_bool stop;
  atomic_uint_fast64_t claimed; /* ops handed out, with --ops */
  pthread_mutex_t err_lock;
  char *first_error;            /* first failure, for main to report */
};

struct worker {
  struct shared *sh;
  pthread_t tid;
  uint64_t rng;
  uint64_t ops;
};

/* Errors are per thread in libnbd, so the failing worker must copy its
 * message before main can print it.
 */
static void
record_failure (struct shared *sh)
{
  const char *msg = nbd_get_error ();
  char *copy = NULL;

  if (asprintf (&copy, "nbd_pread: %s (errno %d)",
                msg ? msg : "(no error message)", nbd_get_errno ()) == -1)
    copy = NULL;
  pthread_mutex_lock (&sh->err_lock);
  if (!sh->first_error) {
    sh->first_error = copy;
    copy = NULL;
  }
  pthread_mutex_unlock (&sh->err_lock);
  free (copy);
  atomic_store (&sh->stop, true);
}

static bool
may_issue (struct shared *sh)
{
  if (atomic_load_explicit (&sh->stop, memory_order_relaxed))
    return false;
  if (sh->max_ops)
    return atomic_fetch_add (&sh->claimed, 1) < sh->max_ops;
  return true;
}

static void *
worker_main (void *arg)
{
  struct worker *w = arg;
  struct shared *sh = w->sh;
  void *buf = NULL;

  if (posix_memalign (&buf, 4096, sh->bs) != 0) {
    buf = NULL;
    pthread_mutex_lock (&sh->err_lock);
    if (!sh->first_error)
      sh->first_error = strdup ("out of memory");
    pthread_mutex_unlock (&sh->err_lock);
    atomic_store (&sh->stop, true);
  }
  pthread_barrier_wait (&sh->start);

  while (buf && may_issue (sh)) {
    uint64_t off = bench_rng_next (&w->rng) % sh->nblocks * sh->bs;
    if (nbd_pread (sh->h, buf, sh->bs, off, 0) == -1) {
      record_failure (sh);
      break;
    }
    w->ops++;
  }
  free (buf);
  return NULL;
}

static void
sleep_seconds (double s)
{
  struct timespec ts = { .tv_sec = (time_t) s };
  ts.tv_nsec = (long) ((s - (double) ts.tv_sec) * 1e9);
  while (nanosleep (&ts, &ts) == -1 && errno == EINTR)
    ;
}

static void __attribute__ ((noreturn))
usage (FILE *fp, int status)
{
  fprintf (fp,
"usage: nbd-bench-threads --socket PATH [--threads T] [--bs N]\n"
"                         (--seconds S | --ops N) [--seed N]\n"
"       nbd-bench-threads --which-lib\n"
"T threads (default 1) share one handle, each doing blocking random\n"
"nbd_pread of N bytes (default 4096).  --ops N is the total over all\n"
"threads.\n");
  exit (status);
}

int
main (int argc, char *argv[])
{
  static const struct option longopts[] = {
    { "socket",    required_argument, NULL, 's' },
    { "threads",   required_argument, NULL, 'T' },
    { "bs",        required_argument, NULL, 'b' },
    { "seconds",   required_argument, NULL, 't' },
    { "ops",       required_argument, NULL, 'n' },
    { "seed",      required_argument, NULL, 'S' },
    { "which-lib", no_argument,       NULL, 'L' },
    { "help",      no_argument,       NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *sock = NULL;
  unsigned long nthreads = 1;
  uint64_t bs = 4096, max_ops = 0, seed = 0x6e62642d74687264ULL;
  double seconds = 0;
  int c;

  while ((c = getopt_long (argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case 's': sock = optarg; break;
    case 'T': nthreads = strtoul (optarg, NULL, 0); break;
    case 'b': bs = strtoull (optarg, NULL, 0); break;
    case 't': seconds = strtod (optarg, NULL); break;
    case 'n': max_ops = strtoull (optarg, NULL, 0); break;
    case 'S': seed = strtoull (optarg, NULL, 0); break;
    case 'L': return bench_which_lib ();
    case 'h': usage (stdout, EXIT_SUCCESS);
    default: usage (stderr, EXIT_FAILURE);
    }
  }
  if (!sock || optind != argc) usage (stderr, EXIT_FAILURE);
  if ((seconds > 0) == (max_ops > 0))
    bench_die ("exactly one of --seconds or --ops must be given");
  if (nthreads < 1 || nthreads > MAX_THREADS)
    bench_die ("--threads must be between 1 and 1024");
  if (bs < 1 || bs > 64 * 1024 * 1024)
    bench_die ("--bs must be between 1 and 64 MiB");

  struct shared sh = { .bs = bs, .max_ops = max_ops };
  atomic_init (&sh.stop, false);
  atomic_init (&sh.claimed, 0);
  pthread_mutex_init (&sh.err_lock, NULL);

  sh.h = nbd_create ();
  if (!sh.h) bench_die_nbd ("nbd_create");
  if (nbd_connect_unix (sh.h, sock) == -1)
    bench_die_nbd ("nbd_connect_unix");
  int64_t size = nbd_get_size (sh.h);
  if (size == -1) bench_die_nbd ("nbd_get_size");
  if ((uint64_t) size < bs) bench_die ("export is smaller than the block size");
  sh.nblocks = (uint64_t) size / bs;

  struct worker *ws = calloc (nthreads, sizeof *ws);
  if (!ws) bench_die ("out of memory");
  if (pthread_barrier_init (&sh.start, NULL, (unsigned) nthreads + 1) != 0)
    bench_die ("pthread_barrier_init failed");
  for (unsigned long i = 0; i < nthreads; ++i) {
    ws[i].sh = &sh;
    /* Distinct non-zero streams per thread, reproducible from --seed. */
    ws[i].rng = (seed ^ ((i + 1) * UINT64_C (0x9E3779B97F4A7C15))) | 1;
    int err = pthread_create (&ws[i].tid, NULL, worker_main, &ws[i]);
    if (err != 0) {
      errno = err;
      perror ("nbd-bench-threads: pthread_create");
      exit (EXIT_FAILURE);
    }
  }

  pthread_barrier_wait (&sh.start);
  double start = bench_now ();
  if (seconds > 0) {
    sleep_seconds (seconds);
    atomic_store (&sh.stop, true);
  }
  for (unsigned long i = 0; i < nthreads; ++i)
    pthread_join (ws[i].tid, NULL);
  /* Commands in flight at the stop are counted and waited for. */
  double end = bench_now ();

  if (sh.first_error) {
    fprintf (stderr, "nbd-bench-threads: %s\n", sh.first_error);
    exit (EXIT_FAILURE);
  }
  if (nbd_shutdown (sh.h, 0) == -1)
    bench_die_nbd ("nbd_shutdown");
  nbd_close (sh.h);

  uint64_t total = 0, lo = UINT64_MAX, hi = 0;
  for (unsigned long i = 0; i < nthreads; ++i) {
    total += ws[i].ops;
    if (ws[i].ops < lo) lo = ws[i].ops;
    if (ws[i].ops > hi) hi = ws[i].ops;
  }
  double elapsed = end - start;
  double ops_s = total / elapsed;
  printf ("workload=randread-threads bs=%" PRIu64 " threads=%lu ops=%" PRIu64
          " seconds=%.2f ops_per_sec=%.0f mib_per_sec=%.1f"
          " min_thread_ops=%" PRIu64 " max_thread_ops=%" PRIu64 "\n",
          bs, nthreads, total, elapsed, ops_s,
          ops_s * bs / (1024.0 * 1024.0), lo, hi);

  pthread_barrier_destroy (&sh.start);
  pthread_mutex_destroy (&sh.err_lock);
  free (ws);
  return EXIT_SUCCESS;
}
