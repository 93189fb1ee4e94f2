/* nbd-bench: small throughput benchmark written against the public
 * libnbd API only.  It keeps a fixed number of asynchronous commands
 * in flight (the queue depth) and drives the handle with nbd_poll.
 *
 * The same binary can be run against any libnbd.so.0 implementation
 * (select it with LD_LIBRARY_PATH); --which-lib reports which shared
 * object the dynamic linker actually loaded.
 *
 * Output is a single machine-readable line, e.g.
 *   workload=randread bs=4096 qd=64 ops=123456 seconds=2.00 ops_per_sec=61728 mib_per_sec=241.1
 */

#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>
#include <errno.h>
#include <getopt.h>

#include <libnbd.h>

#include "bench-common.h"

enum workload { W_RANDREAD, W_RANDWRITE, W_SEQREAD, W_BLOCKSTATUS };

static const char *workload_names[] = {
  "randread", "randwrite", "seqread", "blockstatus",
};

struct slot {
  struct bench *b;
  unsigned idx;
  char *buf;
};

struct bench {
  struct nbd_handle *h;
  enum workload w;
  uint64_t size;
  uint64_t bs;
  unsigned qd;
  uint64_t nblocks;         /* size / bs */
  uint64_t seq_next;        /* next block for sequential workloads */
  uint64_t rng;             /* xorshift64* state */

  struct slot *slots;
  unsigned *free_stack;     /* indices of idle slots */
  unsigned nfree;

  uint64_t issued;
  uint64_t completed;
  uint64_t extents_seen;
  int failed_errno;         /* first error reported through a callback */
};

static int
completion_cb (void *user_data, int *error)
{
  struct slot *s = user_data;
  struct bench *b = s->b;

  if (*error && !b->failed_errno)
    b->failed_errno = *error;
  b->completed++;
  b->free_stack[b->nfree++] = s->idx;
  return 1;                     /* auto-retire the command */
}

static int
extent_cb (void *user_data, const char *metacontext, uint64_t offset,
           uint32_t *entries, size_t nr_entries, int *error)
{
  struct slot *s = user_data;
  struct bench *b = s->b;
  (void) offset; (void) entries;

  if (*error && !b->failed_errno)
    b->failed_errno = *error;
  if (strcmp (metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) == 0)
    b->extents_seen += nr_entries / 2;
  return 0;
}

static uint64_t
next_offset (struct bench *b)
{
  uint64_t blk;
  switch (b->w) {
  case W_RANDREAD:
  case W_RANDWRITE:
    blk = bench_rng_next (&b->rng) % b->nblocks;
    break;
  default:
    blk = b->seq_next++;
    if (b->seq_next >= b->nblocks)
      b->seq_next = 0;
    break;
  }
  return blk * b->bs;
}

static void
issue_one (struct bench *b)
{
  unsigned idx = b->free_stack[--b->nfree];
  struct slot *s = &b->slots[idx];
  uint64_t off = next_offset (b);
  nbd_completion_callback cc = { .callback = completion_cb, .user_data = s };
  int64_t cookie;

  switch (b->w) {
  case W_RANDREAD:
  case W_SEQREAD:
    cookie = nbd_aio_pread (b->h, s->buf, b->bs, off, cc, 0);
    break;
  case W_RANDWRITE:
    cookie = nbd_aio_pwrite (b->h, s->buf, b->bs, off, cc, 0);
    break;
  case W_BLOCKSTATUS: {
    nbd_extent_callback ec = { .callback = extent_cb, .user_data = s };
    cookie = nbd_aio_block_status (b->h, b->bs, off, ec, cc, 0);
    break;
  }
  default:
    abort ();
  }
  if (cookie == -1)
    bench_die_nbd ("issuing command");
  b->issued++;
}

static void __attribute__ ((noreturn))
usage (FILE *fp, int status)
{
  fprintf (fp,
"usage: nbd-bench --socket PATH --workload W [--bs N] [--qd N]\n"
"                 (--seconds S | --ops N) [--seed N]\n"
"       nbd-bench --which-lib\n"
"workloads: randread randwrite (default bs 4096),\n"
"           seqread blockstatus (default bs 1048576)\n");
  exit (status);
}

int
main (int argc, char *argv[])
{
  static const struct option longopts[] = {
    { "socket",    required_argument, NULL, 's' },
    { "workload",  required_argument, NULL, 'w' },
    { "bs",        required_argument, NULL, 'b' },
    { "qd",        required_argument, NULL, 'q' },
    { "seconds",   required_argument, NULL, 't' },
    { "ops",       required_argument, NULL, 'n' },
    { "seed",      required_argument, NULL, 'S' },
    { "which-lib", no_argument,       NULL, 'L' },
    { "help",      no_argument,       NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *sock = NULL;
  int w = -1;
  uint64_t bs = 0, max_ops = 0, seed = 0x6e62642d62656e63ULL;
  unsigned qd = 1;
  double seconds = 0;
  int c;

  while ((c = getopt_long (argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case 's': sock = optarg; break;
    case 'w':
      for (size_t i = 0; i < sizeof workload_names / sizeof *workload_names; ++i)
        if (strcmp (optarg, workload_names[i]) == 0)
          w = i;
      if (w < 0) bench_die ("unknown workload");
      break;
    case 'b': bs = strtoull (optarg, NULL, 0); break;
    case 'q': qd = strtoul (optarg, NULL, 0); break;
    case 't': seconds = strtod (optarg, NULL); break;
    case 'n': max_ops = strtoull (optarg, NULL, 0); break;
    case 'S': seed = strtoull (optarg, NULL, 0); break;
    case 'L': return bench_which_lib ();
    case 'h': usage (stdout, EXIT_SUCCESS);
    default: usage (stderr, EXIT_FAILURE);
    }
  }
  if (!sock || w < 0 || optind != argc) usage (stderr, EXIT_FAILURE);
  if ((seconds > 0) == (max_ops > 0))
    bench_die ("exactly one of --seconds or --ops must be given");
  if (qd < 1 || qd > 4096) bench_die ("--qd must be between 1 and 4096");
  if (bs == 0)
    bs = (w == W_RANDREAD || w == W_RANDWRITE) ? 4096 : 1024 * 1024;

  struct bench b = { .w = w, .bs = bs, .qd = qd, .rng = seed ? seed : 1 };

  b.h = nbd_create ();
  if (!b.h) bench_die_nbd ("nbd_create");
  if (w == W_BLOCKSTATUS &&
      nbd_add_meta_context (b.h, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1)
    bench_die_nbd ("nbd_add_meta_context");
  if (nbd_connect_unix (b.h, sock) == -1)
    bench_die_nbd ("nbd_connect_unix");

  int64_t size = nbd_get_size (b.h);
  if (size == -1) bench_die_nbd ("nbd_get_size");
  b.size = size;
  if (b.size < bs) bench_die ("export is smaller than the block size");
  b.nblocks = b.size / bs;

  if (w == W_RANDWRITE) {
    int ro = nbd_is_read_only (b.h);
    if (ro == -1) bench_die_nbd ("nbd_is_read_only");
    if (ro) bench_die ("export is read-only");
  }
  if (w == W_BLOCKSTATUS) {
    int r = nbd_can_meta_context (b.h, LIBNBD_CONTEXT_BASE_ALLOCATION);
    if (r == -1) bench_die_nbd ("nbd_can_meta_context");
    if (r == 0) bench_die ("server did not agree to base:allocation");
  }

  b.slots = calloc (qd, sizeof *b.slots);
  b.free_stack = calloc (qd, sizeof *b.free_stack);
  if (!b.slots || !b.free_stack) bench_die ("out of memory");
  for (unsigned i = 0; i < qd; ++i) {
    b.slots[i].b = &b;
    b.slots[i].idx = i;
    if (w != W_BLOCKSTATUS) {
      if (posix_memalign ((void **) &b.slots[i].buf, 4096, bs) != 0)
        bench_die ("out of memory");
      /* Non-zero, slot-specific data so writes are not trivially sparse. */
      memset (b.slots[i].buf, 0x5a ^ (i & 0xff), bs);
    }
    b.free_stack[b.nfree++] = qd - 1 - i;
  }

  double start = bench_now (), deadline = start + seconds, end;
  bool stop = false;

  for (;;) {
    if (!stop) {
      if (max_ops ? b.issued >= max_ops : bench_now () >= deadline)
        stop = true;
    }
    while (!stop && b.nfree > 0) {
      issue_one (&b);
      if (max_ops && b.issued >= max_ops)
        stop = true;
    }
    if (b.failed_errno) {
      fprintf (stderr, "nbd-bench: command failed: %s\n",
               strerror (b.failed_errno));
      exit (EXIT_FAILURE);
    }
    if (b.issued == b.completed) {
      if (stop)
        break;
      continue;
    }
    if (nbd_poll (b.h, -1) == -1)
      bench_die_nbd ("nbd_poll");
  }
  end = bench_now ();
  if (b.failed_errno) {
    fprintf (stderr, "nbd-bench: command failed: %s\n",
             strerror (b.failed_errno));
    exit (EXIT_FAILURE);
  }

  if (nbd_shutdown (b.h, 0) == -1)
    bench_die_nbd ("nbd_shutdown");
  nbd_close (b.h);

  double elapsed = end - start;
  double ops_s = b.completed / elapsed;
  printf ("workload=%s bs=%" PRIu64 " qd=%u ops=%" PRIu64
          " seconds=%.2f ops_per_sec=%.0f mib_per_sec=%.1f",
          workload_names[w], bs, qd, b.completed, elapsed, ops_s,
          ops_s * bs / (1024.0 * 1024.0));
  if (w == W_BLOCKSTATUS)
    printf (" extents=%" PRIu64, b.extents_seen);
  printf ("\n");

  for (unsigned i = 0; i < qd; ++i)
    free (b.slots[i].buf);
  free (b.slots);
  free (b.free_stack);
  return EXIT_SUCCESS;
}
