/* Soak: random commands from 4 threads on one shared handle, against
 * nbdkit with the error filter (EIO at random) and the delay filter
 * (replies late, so commands overlap).
 *
 * Each thread owns a quarter of the disk and keeps a shadow copy of
 * it, so every successful read is checked byte for byte; a failed
 * command must fail with EIO and change nothing (the error filter fails
 * it before the plugin sees it).  Every closure handed to the library
 * must be called and freed exactly once.  A global alarm turns a hang
 * into a failure.
 *
 * Duration: CONFORMANCE_SOAK_SECONDS (default 600).  soak.sh runs it on
 * the library just built (CONFORMANCE_SOAK_VALGRIND=1: under valgrind).
 */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>

#include "probe.h"

#define THREADS 4
#define DISK (64 * 1024 * 1024)
#define REGION (DISK / THREADS)
#define MAXLEN (128 * 1024)

static struct nbd_handle *h;
static double deadline;
static atomic_long closures_made, closures_freed, completions;
static atomic_long ops, injected, failures;

struct worker {
  int id;
  unsigned seed;
  uint64_t base;
  unsigned char *shadow;
  unsigned char *buf;
  long writes, reads, zeroes, trims, flushes, statuses, aio;
};

static void __attribute__ ((format (printf, 2, 3)))
fail (struct worker *w, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fprintf (stderr, "soak: thread %d: ", w->id);
  vfprintf (stderr, fmt, ap);
  fprintf (stderr, "\n");
  va_end (ap);
  atomic_fetch_add (&failures, 1);
  exit (EXIT_FAILURE);
}

/* A command's result: 0 done, or -1 with EIO (injected). */
static bool
succeeded (struct worker *w, const char *what, int64_t r)
{
  atomic_fetch_add (&ops, 1);
  if (r != -1)
    return true;
  if (nbd_get_errno () != EIO)
    fail (w, "%s failed with errno %d (not the injected EIO): %s", what,
          nbd_get_errno (), nbd_get_error ());
  atomic_fetch_add (&injected, 1);
  return false;
}

static void
check_data (struct worker *w, const char *what, uint64_t off, size_t len,
            const unsigned char *data)
{
  const unsigned char *want = w->shadow + (off - w->base);
  if (memcmp (data, want, len) != 0) {
    size_t i = 0;
    while (data[i] == want[i])
      i++;
    fail (w, "%s at %" PRIu64 "+%zu: byte %zu is 0x%02x, wrote 0x%02x",
          what, off, len, i, data[i], want[i]);
  }
}

/* ---- closures ---- */

struct aio_ctx {
  atomic_int called, freed;
  int error;
  int retire;                   /* completion's return value */
};

static int
aio_done (void *ud, int *error)
{
  struct aio_ctx *c = ud;
  c->error = *error;
  atomic_fetch_add (&c->called, 1);
  atomic_fetch_add (&completions, 1);
  return c->retire;
}

static void
aio_free (void *ud)
{
  struct aio_ctx *c = ud;
  atomic_fetch_add (&c->freed, 1);
  atomic_fetch_add (&closures_freed, 1);
}

struct chunk_ctx {
  struct worker *w;
  uint64_t off;
  size_t len;
  size_t covered;
  atomic_int freed;
};

static int
chunk_check (void *ud, const void *subbuf, size_t count, uint64_t offset,
             unsigned status, int *error)
{
  struct chunk_ctx *c = ud;
  (void) error;
  if (offset < c->off || offset + count > c->off + c->len)
    fail (c->w, "chunk %" PRIu64 "+%zu outside the read %" PRIu64 "+%zu",
          offset, count, c->off, c->len);
  if (status == LIBNBD_READ_DATA)
    check_data (c->w, "structured read chunk", offset, count, subbuf);
  else if (status == LIBNBD_READ_HOLE) {
    for (size_t i = 0; i < count; i++)
      if (((const unsigned char *) subbuf)[i])
        fail (c->w, "hole chunk with non-zero bytes");
    check_data (c->w, "hole chunk", offset, count, subbuf);
  }
  c->covered += count;
  return 0;
}

static void
chunk_free (void *ud)
{
  struct chunk_ctx *c = ud;
  atomic_fetch_add (&c->freed, 1);
  atomic_fetch_add (&closures_freed, 1);
}

struct extent_ctx {
  struct worker *w;
  uint64_t off;
  int calls;
};

static int
extent_check (void *ud, const char *metacontext, uint64_t offset,
              uint32_t *entries, size_t nr, int *error)
{
  struct extent_ctx *c = ud;
  (void) error;
  if (strcmp (metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
    fail (c->w, "extent for context %s", metacontext);
  if (offset != c->off || nr == 0 || nr % 2 != 0)
    fail (c->w, "extent callback at %" PRIu64 " (asked %" PRIu64 "), %zu entries",
          offset, c->off, nr);
  for (size_t i = 0; i < nr; i += 2)
    if (entries[i] == 0)
      fail (c->w, "zero-length extent");
  c->calls++;
  return 0;
}

/* Waits for an aio command: by nbd_aio_command_completed if it stays
 * until retired, else by the completion flag.  Returns true if it
 * succeeded; a failure must be the injected EIO, whether it is seen in
 * the completion's error or in nbd_aio_command_completed's.
 */
static bool
aio_wait (struct worker *w, const char *what, int64_t cookie, struct aio_ctx *c)
{
  for (;;) {
    if (c->retire) {
      if (atomic_load (&c->called)) {
        atomic_fetch_add (&ops, 1);
        if (c->error == 0)
          return true;
        if (c->error != EIO)
          fail (w, "%s: completion saw error %d, not the injected EIO", what,
                c->error);
        atomic_fetch_add (&injected, 1);
        return false;
      }
    }
    else {
      int r = nbd_aio_command_completed (h, cookie);
      if (r == 1)
        return succeeded (w, what, 0);
      if (r == -1) {
        if (c->error != EIO)
          fail (w, "%s: completion saw error %d, not the injected EIO", what,
                c->error);
        return succeeded (w, what, -1);
      }
    }
    if (nbd_poll (h, 20) == -1)
      fail (w, "nbd_poll: %s", nbd_get_error ());
  }
}

static void
fill_random (struct worker *w, unsigned char *p, size_t len)
{
  for (size_t i = 0; i < len; i++)
    p[i] = rand_r (&w->seed);
}

static void
random_range (struct worker *w, uint64_t *off, size_t *len)
{
  *len = (1 + rand_r (&w->seed) % (MAXLEN / 512)) * 512;
  *off = w->base + (rand_r (&w->seed) % ((REGION - *len) / 512 + 1)) * 512;
}

static void
one_command (struct worker *w)
{
  uint64_t off;
  size_t len;
  unsigned char *shadow_at;

  random_range (w, &off, &len);
  shadow_at = w->shadow + (off - w->base);
  switch (rand_r (&w->seed) % 10) {
  case 0: case 1:               /* write */
    fill_random (w, w->buf, len);
    if (succeeded (w, "pwrite", nbd_pwrite (h, w->buf, len, off,
                                            rand_r (&w->seed) % 4 ? 0 : LIBNBD_CMD_FLAG_FUA)))
      memcpy (shadow_at, w->buf, len);
    w->writes++;
    break;
  case 2: case 3:               /* read */
    if (succeeded (w, "pread", nbd_pread (h, w->buf, len, off, 0)))
      check_data (w, "pread", off, len, w->buf);
    w->reads++;
    break;
  case 4: {                     /* structured read with chunk checks */
    struct chunk_ctx c = { .w = w, .off = off, .len = len };
    nbd_chunk_callback cb = { .callback = chunk_check, .user_data = &c,
                              .free = chunk_free };
    atomic_fetch_add (&closures_made, 1);
    if (succeeded (w, "pread_structured",
                   nbd_pread_structured (h, w->buf, len, off, cb, 0))) {
      check_data (w, "pread_structured", off, len, w->buf);
      if (c.covered != len)
        fail (w, "chunks covered %zu of %zu bytes", c.covered, len);
    }
    if (atomic_load (&c.freed) != 1)
      fail (w, "chunk closure freed %d times", atomic_load (&c.freed));
    w->reads++;
    break;
  }
  case 5:                       /* zero */
    if (succeeded (w, "zero", nbd_zero (h, len, off, 0)))
      memset (shadow_at, 0, len);
    w->zeroes++;
    break;
  case 6:                       /* trim: the memory plugin reads zeroes after it */
    if (succeeded (w, "trim", nbd_trim (h, len, off, 0)))
      memset (shadow_at, 0, len);
    w->trims++;
    break;
  case 7: {                     /* block status, or flush */
    if (rand_r (&w->seed) % 2) {
      struct extent_ctx c = { .w = w, .off = off };
      nbd_extent_callback cb = { .callback = extent_check, .user_data = &c };
      if (succeeded (w, "block_status", nbd_block_status (h, len, off, cb, 0)) &&
          c.calls != 1)
        fail (w, "block status: %d extent callbacks", c.calls);
      w->statuses++;
    }
    else {
      succeeded (w, "flush", nbd_flush (h, 0));
      w->flushes++;
    }
    break;
  }
  default: {                    /* aio write then aio read, closures counted */
    struct aio_ctx wc = { .retire = rand_r (&w->seed) % 2 };
    struct aio_ctx rc = { .retire = rand_r (&w->seed) % 2 };
    nbd_completion_callback wcb = { .callback = aio_done, .user_data = &wc,
                                    .free = aio_free };
    nbd_completion_callback rcb = { .callback = aio_done, .user_data = &rc,
                                    .free = aio_free };
    int64_t c;

    fill_random (w, w->buf, len);
    atomic_fetch_add (&closures_made, 1);
    c = nbd_aio_pwrite (h, w->buf, len, off, wcb, 0);
    if (c == -1)
      fail (w, "aio_pwrite: %s", nbd_get_error ());
    if (aio_wait (w, "aio_pwrite", c, &wc))
      memcpy (shadow_at, w->buf, len);
    atomic_fetch_add (&closures_made, 1);
    c = nbd_aio_pread (h, w->buf, len, off, rcb, 0);
    if (c == -1)
      fail (w, "aio_pread: %s", nbd_get_error ());
    if (aio_wait (w, "aio_pread", c, &rc))
      check_data (w, "aio_pread", off, len, w->buf);
    /* Retired now, either way: the closures were called and freed. */
    if (wc.called != 1 || wc.freed != 1 || rc.called != 1 || rc.freed != 1)
      fail (w, "aio closures: write called %d freed %d, read called %d freed %d",
            wc.called, wc.freed, rc.called, rc.freed);
    w->aio++;
    break;
  }
  }
}

static void *
work (void *arg)
{
  struct worker *w = arg;
  while (now_seconds () < deadline)
    one_command (w);
  /* The whole region, read back in pieces, must match. */
  for (uint64_t off = w->base; off < w->base + REGION; off += MAXLEN) {
    int tries = 0;
    while (nbd_pread (h, w->buf, MAXLEN, off, 0) == -1) {
      succeeded (w, "final pread", -1);
      if (++tries > 50)
        fail (w, "final pread keeps failing");
    }
    check_data (w, "final read", off, MAXLEN, w->buf);
  }
  return NULL;
}

int
main (void)
{
  const char *env = getenv ("CONFORMANCE_SOAK_SECONDS");
  int seconds = env && atoi (env) > 0 ? atoi (env) : 600;
  const char *args[] = { "--filter=error", "--filter=delay", "memory", "64M",
                         "error=EIO", "error-rate=3%", "rdelay=1ms",
                         "wdelay=1ms", NULL };
  struct server s;
  struct worker w[THREADS];
  pthread_t t[THREADS];
  long total[7] = { 0 };

  /* The soak runs on one library only (soak.sh says which); no
   * CONFORMANCE_LIB check, but the same no-rpath build as the probes.
   */
  signal (SIGPIPE, SIG_IGN);
  alarm (seconds + 180);        /* no hang: SIGALRM ends the run */
  start_nbdkit (&s, args);

  h = new_handle ();
  nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION);
  if (nbd_connect_unix (h, s.sock) == -1) {
    fprintf (stderr, "soak: connect: %s\n", nbd_get_error ());
    return EXIT_FAILURE;
  }
  deadline = now_seconds () + seconds;
  for (int i = 0; i < THREADS; i++) {
    w[i] = (struct worker) { .id = i, .seed = 1234 + i, .base = (uint64_t) i * REGION };
    w[i].shadow = calloc (1, REGION);
    w[i].buf = malloc (MAXLEN);
    if (!w[i].shadow || !w[i].buf)
      return EXIT_FAILURE;
    pthread_create (&t[i], NULL, work, &w[i]);
  }
  for (int i = 0; i < THREADS; i++) {
    pthread_join (t[i], NULL);
    total[0] += w[i].writes; total[1] += w[i].reads; total[2] += w[i].zeroes;
    total[3] += w[i].trims; total[4] += w[i].flushes; total[5] += w[i].statuses;
    total[6] += w[i].aio;
    free (w[i].shadow);
    free (w[i].buf);
  }
  if (nbd_aio_in_flight (h) != 0) {
    fprintf (stderr, "soak: %d commands still in flight\n", nbd_aio_in_flight (h));
    return EXIT_FAILURE;
  }
  if (nbd_shutdown (h, 0) == -1) {
    fprintf (stderr, "soak: shutdown: %s\n", nbd_get_error ());
    return EXIT_FAILURE;
  }
  nbd_close (h);
  server_stop (&s);

  printf ("soak: %d s, %ld commands (%ld writes, %ld reads, %ld zeroes, %ld trims, "
          "%ld flushes, %ld block status, %ld aio pairs), %ld injected EIO\n",
          seconds, (long) ops, total[0], total[1], total[2], total[3], total[4],
          total[5], total[6], (long) injected);
  printf ("soak: closures made %ld, freed %ld, completions %ld\n",
          (long) closures_made, (long) closures_freed, (long) completions);
  if (closures_made != closures_freed || failures) {
    fprintf (stderr, "soak: closures leaked or freed twice\n");
    return EXIT_FAILURE;
  }
  if (injected == 0 || ops < 100) {
    fprintf (stderr, "soak: too little happened (filters not working?)\n");
    return EXIT_FAILURE;
  }
  return 0;
}
