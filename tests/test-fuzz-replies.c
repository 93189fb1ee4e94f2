/* Robustness: a fake server on a socketpair performs a valid
 * fixed-newstyle handshake and answers the client's requests with
 * replies built from valid templates, then mutated (fields, bits,
 * lengths, cookies, types, flags, truncation, garbage).  Some iterations
 * mutate the handshake instead.  The library must never crash, hang,
 * leak, read or write out of bounds, nor call a callback with arguments
 * outside the request; every call must return a defined result; every
 * closure's .free must run exactly once.
 *
 * Deterministic: iteration i uses a PRNG seeded from FUZZ_SEED (fixed
 * default) and i.  Environment:
 *   FUZZ_ITERATIONS  number of iterations (default 3000)
 *   FUZZ_SEED        base seed
 *   FUZZ_ONLY        run only this iteration (in-process; with
 *                    LIBNBD_DEBUG=1 to see what the library did)
 *   FUZZ_NOFORK      run everything in-process (default: batches of
 *                    iterations run in forked children, so a crash is
 *                    counted, named by iteration, and the rest still runs)
 *   FUZZ_HANG        seconds one iteration may take before it counts as
 *                    a hang (default 20)
 *   FUZZ_VERBOSE     print every iteration's parameters
 *
 * Iterations with no mutation at all ("clean") also check that every
 * call succeeds, which keeps the fake server honest.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <libnbd.h>

#include "checks.h"

#define EXPORT_SIZE (1024 * 1024)
#define CTX_NAME "base:allocation"

/* Shared with the parent when batches run in children. */
struct shared {
  volatile long cur_iter;
  volatile int failures;
  volatile long iterations_done;
  volatile int batch_complete;  /* the child ran all its iterations */
};
static struct shared *sh;
static struct shared sh_local;

static uint64_t base_seed = 0x6e62642d66757a7aULL; /* "nbd-fuzz" */
static bool verbose;
static unsigned hang_seconds = 20;

/* ---- PRNG (splitmix64) ---- */

static uint64_t
rnd (uint64_t *s)
{
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static uint64_t
rndn (uint64_t *s, uint64_t n)
{
  return n ? rnd (s) % n : 0;
}

/* true with probability pct % */
static bool
chance (uint64_t *s, unsigned pct)
{
  return rndn (s, 100) < pct;
}

/* ---- Big-endian helpers ---- */

static void
put16 (unsigned char *p, uint16_t v)
{
  p[0] = v >> 8; p[1] = v;
}
static void
put32 (unsigned char *p, uint32_t v)
{
  for (int i = 3; i >= 0; i--) { p[i] = v; v >>= 8; }
}
static void
put64 (unsigned char *p, uint64_t v)
{
  for (int i = 7; i >= 0; i--) { p[i] = v; v >>= 8; }
}
static uint16_t
get16 (const unsigned char *p)
{
  return (uint16_t) (p[0] << 8 | p[1]);
}
static uint32_t
get32 (const unsigned char *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}
static uint64_t
get64 (const unsigned char *p)
{
  return (uint64_t) get32 (p) << 32 | get32 (p + 4);
}

/* ---- Growable output buffer ---- */

struct obuf {
  unsigned char *p;
  size_t len, cap;
};

static unsigned char *
ob_grow (struct obuf *o, size_t n)
{
  if (o->len + n > o->cap) {
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + n)
      cap *= 2;
    o->p = realloc (o->p, cap);
    if (!o->p) {
      perror ("realloc");
      exit (EXIT_FAILURE);
    }
    o->cap = cap;
  }
  o->len += n;
  return o->p + o->len - n;
}
static void ob_u16 (struct obuf *o, uint16_t v) { put16 (ob_grow (o, 2), v); }
static void ob_u32 (struct obuf *o, uint32_t v) { put32 (ob_grow (o, 4), v); }
static void ob_u64 (struct obuf *o, uint64_t v) { put64 (ob_grow (o, 8), v); }
static void ob_mem (struct obuf *o, const void *p, size_t n) { if (n) memcpy (ob_grow (o, n), p, n); }
static void
ob_rand (struct obuf *o, uint64_t *s, size_t n)
{
  unsigned char *p = ob_grow (o, n);
  for (size_t i = 0; i < n; i++)
    p[i] = (unsigned char) rnd (s);
}

/* ---- The fake server ---- */

#define NBD_MAGIC 0x4e42444d41474943ULL
#define IHAVEOPT 0x49484156454F5054ULL
#define REP_MAGIC 0x3e889045565a9ULL
#define REQ_MAGIC 0x25609513
#define EREQ_MAGIC 0x21e41c71
#define SIMPLE_MAGIC 0x67446698
#define SR_MAGIC 0x668e33ef
#define ER_MAGIC 0x6e8a278c

enum mode { M_SIMPLE, M_SR, M_EH };
static const char *const mode_names[] = { "simple", "structured", "extended" };

struct req {
  uint16_t flags, type;
  uint64_t cookie, offset, count;
};

struct srv {
  int fd;
  uint64_t rng;
  enum mode max_mode;           /* what the server is willing to negotiate */
  bool sr, eh;                  /* what it negotiated */
  unsigned hs_mut;              /* % per option reply to mutate (0: none) */
  unsigned mut;                 /* % per reply chunk to mutate (0: none) */
  bool mutated;                 /* something mutated went out */
  bool no_errors;               /* clean: no error replies either */
  uint32_t ctx_id;
  uint16_t eflags;
  uint64_t old_cookies[16];
  size_t nr_old;
  /* Stats. */
  unsigned requests, replies;
};

/* Wait up to ms for fd to be readable; -1 on timeout or error. */
static int
wait_readable (int fd, int ms)
{
  struct pollfd pfd = { .fd = fd, .events = POLLIN };
  int r;
  do
    r = poll (&pfd, 1, ms);
  while (r == -1 && errno == EINTR);
  return r == 1 ? 0 : -1;
}

/* The client is slow only when it waits for bytes the mutation ate: then
 * give up quickly.  Otherwise it always answers promptly.
 */
static int
idle_ms (struct srv *s)
{
  return s->mutated ? 20 : 5000;
}

static int
read_full (struct srv *s, void *buf, size_t n)
{
  size_t done = 0;
  while (done < n) {
    ssize_t r;
    if (wait_readable (s->fd, idle_ms (s)) == -1)
      return -1;
    r = read (s->fd, (char *) buf + done, n - done);
    if (r <= 0)
      return -1;
    done += (size_t) r;
  }
  return 0;
}

static int
send_all (struct srv *s, const unsigned char *p, size_t n)
{
  bool split = chance (&s->rng, 20);
  while (n > 0) {
    size_t piece = n;
    ssize_t r;
    if (split && n > 1)
      piece = 1 + rndn (&s->rng, n < 64 ? n : 64);
    r = send (s->fd, p, piece, MSG_NOSIGNAL);
    if (r <= 0) {
      if (r == -1 && errno == EINTR)
        continue;
      return -1;
    }
    p += r;
    n -= (size_t) r;
    if (split && chance (&s->rng, 10))
      sched_yield ();
  }
  return 0;
}

/* Byte-level damage to a buffer about to go out: returns true if the
 * stream must be closed right after it (truncation).
 */
static bool
damage (struct srv *s, struct obuf *o)
{
  uint64_t *r = &s->rng;
  bool close_after = false;

  switch (rndn (r, 6)) {
  case 0: case 1: {             /* flip bits */
    unsigned n = 1 + rndn (r, 3);
    for (unsigned i = 0; i < n && o->len; i++)
      o->p[rndn (r, o->len)] ^= (unsigned char) (1u << rndn (r, 8));
    break;
  }
  case 2: {                     /* overwrite bytes */
    unsigned n = 1 + rndn (r, 4);
    static const unsigned char vals[] = { 0, 0xff, 0x80, 0x7f, 1 };
    for (unsigned i = 0; i < n && o->len; i++)
      o->p[rndn (r, o->len)] = chance (r, 50) ? vals[rndn (r, 5)]
        : (unsigned char) rnd (r);
    break;
  }
  case 3:                       /* truncate and close */
    o->len = rndn (r, o->len + 1);
    close_after = true;
    break;
  case 4:                       /* append garbage */
    ob_rand (o, r, 1 + rndn (r, 64));
    break;
  case 5:                       /* append a random header-like thing */
    if (s->eh) {
      ob_u32 (o, chance (r, 80) ? ER_MAGIC : (uint32_t) rnd (r));
      ob_u16 (o, (uint16_t) rnd (r));
      ob_u16 (o, (uint16_t) rndn (r, 8));
      ob_u64 (o, chance (r, 50) && s->nr_old ? s->old_cookies[rndn (r, s->nr_old)]
              : rnd (r));
      ob_u64 (o, rnd (r));
      ob_u64 (o, rndn (r, 64));
    }
    else {
      ob_u32 (o, chance (r, 50) ? SR_MAGIC : SIMPLE_MAGIC);
      ob_u32 (o, (uint32_t) rndn (r, 0x10000));
      ob_u64 (o, chance (r, 50) && s->nr_old ? s->old_cookies[rndn (r, s->nr_old)]
              : rnd (r));
      ob_u32 (o, (uint32_t) rndn (r, 64));
    }
    ob_rand (o, r, rndn (r, 64));
    break;
  }
  s->mutated = true;
  return close_after;
}

/* -- Handshake -- */

static int
opt_reply (struct srv *s, uint32_t opt, uint32_t type, const void *payload,
           uint32_t len)
{
  struct obuf o = { 0 };
  uint64_t *r = &s->rng;
  bool close_after = false;
  int ret;

  ob_u64 (&o, REP_MAGIC);
  ob_u32 (&o, opt);
  ob_u32 (&o, type);
  ob_u32 (&o, len);
  ob_mem (&o, payload, len);
  if (s->hs_mut && chance (r, s->hs_mut)) {
    s->mutated = true;
    switch (rndn (r, 10)) {
    case 0: put64 (o.p, chance (r, 50) ? rnd (r) : REP_MAGIC ^ 1); break;
    case 1: put32 (o.p + 8, chance (r, 50) ? (uint32_t) rndn (r, 12) : (uint32_t) rnd (r)); break;
    case 2: {
      static const uint32_t types[] = { 1, 2, 3, 4, 0x80000001, 0x80000006,
                                        0x80000003, 0x8000000a, 5, 0x7fffffff };
      put32 (o.p + 12, chance (r, 80) ? types[rndn (r, 10)] : (uint32_t) rnd (r));
      break;
    }
    case 3: {                   /* length field lies */
      static const uint32_t lens[] = { 0, 1, 2, 3, 4, 11, 13, 0xffffffff,
                                       1024 * 1024, 1024 * 1024 + 1 };
      put32 (o.p + 16, chance (r, 70) ? lens[rndn (r, 10)]
             : len + (uint32_t) rndn (r, 9) - 4);
      break;
    }
    case 4: {                   /* a huge INFO payload, consistent length */
      uint32_t n = chance (r, 50) ? 70000 : (uint32_t) rndn (r, 1024 * 1024 + 16);
      o.len = 0;
      ob_u64 (&o, REP_MAGIC);
      ob_u32 (&o, opt);
      ob_u32 (&o, 3);           /* NBD_REP_INFO */
      ob_u32 (&o, n);
      if (n >= 2) {
        ob_u16 (&o, (uint16_t) rndn (r, 5));
        ob_rand (&o, r, n - 2);
      }
      else
        ob_rand (&o, r, n);
      break;
    }
    case 5: {                   /* an extra unexpected reply before this one */
      struct obuf x = { 0 };
      uint32_t n = (uint32_t) rndn (r, 40);
      ob_u64 (&x, REP_MAGIC);
      ob_u32 (&x, opt);
      ob_u32 (&x, (uint32_t) rndn (r, 6));
      ob_u32 (&x, n);
      ob_rand (&x, r, n);
      ob_mem (&x, o.p, o.len);
      free (o.p);
      o = x;
      break;
    }
    default:
      close_after = damage (s, &o);
    }
  }
  ret = send_all (s, o.p, o.len);
  free (o.p);
  if (close_after)
    return -1;
  return ret;
}

/* Returns 0 once the handshake is over (transmission), -1 to close. */
static int
server_handshake (struct srv *s)
{
  uint64_t *r = &s->rng;
  unsigned char hdr[16], cflags[4], *data = NULL;
  struct obuf g = { 0 };

  ob_mem (&g, "NBDMAGIC", 8);
  ob_u64 (&g, IHAVEOPT);
  ob_u16 (&g, 3);                 /* FIXED_NEWSTYLE | NO_ZEROES */
  if (s->hs_mut && chance (r, 10)) {
    if (damage (s, &g)) {
      send_all (s, g.p, g.len);
      free (g.p);
      return -1;
    }
  }
  if (send_all (s, g.p, g.len) == -1) {
    free (g.p);
    return -1;
  }
  free (g.p);
  if (read_full (s, cflags, 4) == -1)
    return -1;

  for (;;) {
    uint32_t opt, len;
    unsigned char pl[64];

    if (read_full (s, hdr, 16) == -1)
      goto fail;
    if (get64 (hdr) != IHAVEOPT)
      goto fail;
    opt = get32 (hdr + 8);
    len = get32 (hdr + 12);
    if (len > 65536)
      goto fail;
    free (data);
    data = malloc (len + 1);
    if (!data || read_full (s, data, len) == -1)
      goto fail;

    switch (opt) {
    case 11:                    /* EXTENDED_HEADERS */
      if (s->max_mode == M_EH) {
        if (opt_reply (s, opt, 1, NULL, 0) == -1) goto fail;
        s->eh = s->sr = true;
      }
      else if (opt_reply (s, opt, 0x80000001, NULL, 0) == -1) goto fail;
      break;
    case 8:                     /* STRUCTURED_REPLY */
      if (s->max_mode >= M_SR) {
        if (opt_reply (s, opt, 1, NULL, 0) == -1) goto fail;
        s->sr = true;
      }
      else if (opt_reply (s, opt, 0x80000001, NULL, 0) == -1) goto fail;
      break;
    case 9: case 10:            /* LIST/SET_META_CONTEXT */
      if (s->sr) {
        put32 (pl, s->ctx_id);
        memcpy (pl + 4, CTX_NAME, strlen (CTX_NAME));
        if (opt_reply (s, opt, 4, pl, 4 + strlen (CTX_NAME)) == -1
            || opt_reply (s, opt, 1, NULL, 0) == -1)
          goto fail;
      }
      else if (opt_reply (s, opt, 0x80000001, NULL, 0) == -1) goto fail;
      break;
    case 6: case 7:             /* INFO, GO */
      put16 (pl, 0);
      put64 (pl + 2, EXPORT_SIZE);
      put16 (pl + 10, s->eflags);
      if (opt_reply (s, opt, 3, pl, 12) == -1)
        goto fail;
      if (chance (r, 30)) {
        put16 (pl, 3);          /* BLOCK_SIZE */
        put32 (pl + 2, 1);
        put32 (pl + 6, 4096);
        put32 (pl + 10, 32 * 1024 * 1024);
        if (opt_reply (s, opt, 3, pl, 14) == -1)
          goto fail;
      }
      if (chance (r, 20)) {
        put16 (pl, chance (r, 50) ? 1 : 2);   /* NAME or DESCRIPTION */
        memcpy (pl + 2, "fuzz", 4);
        if (opt_reply (s, opt, 3, pl, 6) == -1)
          goto fail;
      }
      if (opt_reply (s, opt, 1, NULL, 0) == -1)
        goto fail;
      if (opt == 7) {
        free (data);
        return 0;
      }
      break;
    case 2:                     /* ABORT */
      goto fail;
    default:
      if (opt_reply (s, opt, 0x80000001, NULL, 0) == -1) goto fail;
    }
  }
 fail:
  free (data);
  return -1;
}

/* -- Transmission -- */

static void
remember_cookie (struct srv *s, uint64_t c)
{
  if (s->nr_old < 16)
    s->old_cookies[s->nr_old++] = c;
  else
    s->old_cookies[rndn (&s->rng, 16)] = c;
}

/* A reply chunk: header fields, payload; mutate, then serialize. */
static void
emit_chunk (struct srv *s, struct obuf *o, const struct req *q,
            const struct req *pending, size_t nr_pending,
            uint16_t flags, uint16_t type, struct obuf *pl)
{
  uint64_t *r = &s->rng;
  uint64_t cookie = q->cookie, len;
  uint32_t magic = s->eh ? ER_MAGIC : SR_MAGIC;

  if (s->mut && chance (r, s->mut)) {
    s->mutated = true;
    switch (rndn (r, 11)) {
    case 0:                     /* cookie */
      switch (rndn (r, 3)) {
      case 0: cookie = rnd (r); break;
      case 1: if (s->nr_old) cookie = s->old_cookies[rndn (r, s->nr_old)]; break;
      case 2: cookie = pending[rndn (r, nr_pending)].cookie; break;
      }
      break;
    case 1: {                   /* type */
      static const uint16_t types[] = { 0, 1, 2, 5, 6, 0x8001, 0x8002, 3,
                                        0x8000, 0x8003, 0x7fff, 0xffff };
      type = chance (r, 80) ? types[rndn (r, 12)] : (uint16_t) rnd (r);
      break;
    }
    case 2:                     /* flags: DONE missing / extra / random */
      flags = chance (r, 70) ? flags ^ 1 : (uint16_t) rnd (r);
      break;
    case 3:                     /* magic */
      magic = chance (r, 50) ? (s->eh ? SR_MAGIC : ER_MAGIC)
        : chance (r, 50) ? SIMPLE_MAGIC : (uint32_t) rnd (r);
      break;
    case 4: case 5:             /* length field lies (stream desyncs) */
      /* handled below */
      break;
    case 6:                     /* first 8 payload bytes: an edge offset */
      if (pl->len >= 8) {
        static const int64_t d[] = { -1, 0, 1, 512 };
        switch (rndn (r, 4)) {
        case 0: put64 (pl->p, q->offset + q->count + (uint64_t) d[rndn (r, 4)]); break;
        case 1: put64 (pl->p, q->offset - 1); break;
        case 2: put64 (pl->p, UINT64_MAX - rndn (r, 4)); break;
        case 3: put64 (pl->p, rnd (r)); break;
        }
      }
      break;
    case 7:                     /* bytes 4..7 (hole length, msglen, count) */
      if (pl->len >= 8) {
        static const uint32_t v[] = { 0, 1, 0xffff, 0xffffffff, 0x80000000 };
        put32 (pl->p + 4, chance (r, 60) ? v[rndn (r, 5)] : (uint32_t) rnd (r));
      }
      else if (pl->len >= 6)
        put16 (pl->p + 4, (uint16_t) rnd (r));
      break;
    case 8:                     /* payload shortened, length consistent */
      pl->len = rndn (r, pl->len + 1);
      break;
    case 9:                     /* payload lengthened, length consistent */
      ob_rand (pl, r, 1 + rndn (r, 40));
      break;
    case 10:                    /* random payload word */
      if (pl->len >= 4) {
        size_t at = rndn (r, pl->len - 3);
        put32 (pl->p + at, chance (r, 50) ? 0xffffffff : (uint32_t) rnd (r));
      }
      break;
    }
  }
  len = pl->len;
  /* Length lies. */
  if (s->mutated && chance (r, s->mut / 4 + 1)) {
    static const uint64_t lens[] = { 0, 1, 7, 8, 9, 11, 12, 0xffffffff,
                                     0x8000000000000000ULL, UINT64_MAX,
                                     64 * 1024 * 1024 + 4096 + 8,
                                     64 * 1024 * 1024 + 4096 + 9 };
    switch (rndn (r, 3)) {
    case 0: len = lens[rndn (r, 12)]; break;
    case 1: len = pl->len + rndn (r, 17) - 8; break;
    case 2: len = rnd (r) >> rndn (r, 64); break;
    }
  }
  if (magic == ER_MAGIC || (magic != SR_MAGIC && s->eh)) {
    ob_u32 (o, magic);
    ob_u16 (o, flags);
    ob_u16 (o, type);
    ob_u64 (o, cookie);
    ob_u64 (o, q->offset);
    ob_u64 (o, len);
  }
  else {
    ob_u32 (o, magic);
    ob_u16 (o, flags);
    ob_u16 (o, type);
    ob_u64 (o, cookie);
    ob_u32 (o, (uint32_t) len);
  }
  ob_mem (o, pl->p, pl->len);
  pl->len = 0;
  s->replies++;
}

static void
emit_simple (struct srv *s, struct obuf *o, const struct req *q, uint32_t error)
{
  uint64_t *r = &s->rng;
  uint64_t cookie = q->cookie;
  uint32_t magic = SIMPLE_MAGIC;
  bool with_data = q->type == 0 && error == 0;

  if (s->mut && chance (r, s->mut)) {
    s->mutated = true;
    switch (rndn (r, 5)) {
    case 0: cookie = chance (r, 50) || !s->nr_old ? rnd (r)
        : s->old_cookies[rndn (r, s->nr_old)]; break;
    case 1: error = chance (r, 50) ? (uint32_t) rnd (r) : (uint32_t) rndn (r, 120); break;
    case 2: magic = chance (r, 50) ? SR_MAGIC : (uint32_t) rnd (r); break;
    case 3: with_data = !with_data; break;
    case 4: error = 0; with_data = q->type == 0; break;
    }
  }
  ob_u32 (o, magic);
  ob_u32 (o, error);
  ob_u64 (o, cookie);
  if (with_data && q->count <= 64 * 1024 * 1024)
    ob_rand (o, r, q->count);
  s->replies++;
}

static uint32_t
random_nbd_error (uint64_t *r)
{
  static const uint32_t errs[] = { 1, 5, 12, 22, 28, 75, 95, 108, 0, 999 };
  return errs[rndn (r, 10)];
}

static void
error_payload (struct srv *s, struct obuf *pl, uint32_t err, bool with_offset,
               uint64_t off)
{
  uint64_t *r = &s->rng;
  size_t n = rndn (r, 20);
  ob_u32 (pl, err);
  ob_u16 (pl, (uint16_t) n);
  for (size_t i = 0; i < n; i++)
    *ob_grow (pl, 1) = 'a' + rndn (r, 26);
  if (with_offset)
    ob_u64 (pl, off);
}

/* All the reply bytes for one request. */
static void
build_reply (struct srv *s, struct obuf *o, const struct req *q,
             const struct req *pending, size_t nr_pending)
{
  uint64_t *r = &s->rng;
  struct obuf pl = { 0 };

  if (!s->sr) {
    emit_simple (s, o, q, !s->no_errors && chance (r, 5) ? random_nbd_error (r) | 1 : 0);
    goto out;
  }
  /* A simple error reply is valid with structured replies. */
  if (!s->eh && !s->no_errors && chance (r, 5)) {
    emit_simple (s, o, q, 5);
    goto out;
  }

  if (q->type == 0) {           /* READ */
    unsigned v = s->no_errors ? 0 : rndn (r, 100);
    bool df = q->flags & 4;
    if (v < 75) {
      /* Cover the read with DATA and HOLE pieces in random order. */
      uint64_t cuts[6];
      size_t k = df ? 1 : 1 + rndn (r, 4), n = 0;
      size_t order[6];
      bool trailing_none = chance (r, 40);
      cuts[n++] = 0;
      for (size_t i = 1; i < k; i++)
        if (q->count > 1)
          cuts[n++] = 1 + rndn (r, q->count - 1);
      cuts[n++] = q->count;
      /* sort and dedup */
      for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
          if (cuts[j] < cuts[i]) { uint64_t t = cuts[i]; cuts[i] = cuts[j]; cuts[j] = t; }
      {
        size_t m = 1;
        for (size_t i = 1; i < n; i++)
          if (cuts[i] != cuts[m - 1])
            cuts[m++] = cuts[i];
        n = m;
      }
      for (size_t i = 0; i + 1 < n; i++)
        order[i] = i;
      for (size_t i = n - 1; i > 1; i--) {
        size_t j = rndn (r, i);
        size_t t = order[i - 1]; order[i - 1] = order[j]; order[j] = t;
      }
      for (size_t i = 0; i + 1 < n; i++) {
        size_t seg = order[i];
        uint64_t lo = cuts[seg], hi = cuts[seg + 1];
        bool last = i + 2 == n;
        uint16_t fl = last && !trailing_none ? 1 : 0;
        if (!df && chance (r, 30)) {
          /* A hole is 64-bit offset + 32-bit length in every mode. */
          ob_u64 (&pl, q->offset + lo);
          ob_u32 (&pl, (uint32_t) (hi - lo));
          emit_chunk (s, o, q, pending, nr_pending, fl, 2, &pl);
        }
        else {
          ob_u64 (&pl, q->offset + lo);
          ob_rand (&pl, r, hi - lo);
          emit_chunk (s, o, q, pending, nr_pending, fl, 1, &pl);
        }
      }
      if (trailing_none)
        emit_chunk (s, o, q, pending, nr_pending, 1, 0, &pl);
    }
    else if (v < 88) {
      error_payload (s, &pl, random_nbd_error (r), false, 0);
      emit_chunk (s, o, q, pending, nr_pending, 1, 0x8001, &pl);
    }
    else {
      /* Some data, then an error at an offset inside, then DONE. */
      uint64_t at = rndn (r, q->count);
      if (at) {
        ob_u64 (&pl, q->offset);
        ob_rand (&pl, r, at);
        emit_chunk (s, o, q, pending, nr_pending, 0, 1, &pl);
      }
      error_payload (s, &pl, random_nbd_error (r), true, q->offset + at);
      emit_chunk (s, o, q, pending, nr_pending, 0, 0x8002, &pl);
      emit_chunk (s, o, q, pending, nr_pending, 1, 0, &pl);
    }
  }
  else if (q->type == 7) {      /* BLOCK_STATUS */
    if (!s->no_errors && chance (r, 10)) {
      error_payload (s, &pl, random_nbd_error (r), false, 0);
      emit_chunk (s, o, q, pending, nr_pending, 1, 0x8001, &pl);
    }
    else {
      size_t n = (q->flags & 8) ? 1 : 1 + rndn (r, 4);
      uint64_t left = q->count;
      ob_u32 (&pl, s->ctx_id);
      if (s->eh)
        ob_u32 (&pl, (uint32_t) n);
      for (size_t i = 0; i < n; i++) {
        uint64_t len = i + 1 == n || left <= 1 ? left : 1 + rndn (r, left - 1);
        if (len == 0)
          len = 512;
        left -= len < left ? len : left;
        if (s->eh) {
          ob_u64 (&pl, len);
          ob_u64 (&pl, rndn (r, 4));
        }
        else {
          ob_u32 (&pl, (uint32_t) len);
          ob_u32 (&pl, (uint32_t) rndn (r, 4));
        }
      }
      emit_chunk (s, o, q, pending, nr_pending, 1, s->eh ? 6 : 5, &pl);
    }
  }
  else {                        /* FLUSH and anything else */
    if (!s->eh && chance (r, 50))
      emit_simple (s, o, q, 0);
    else
      emit_chunk (s, o, q, pending, nr_pending, 1, 0, &pl);
  }
 out:
  free (pl.p);
}

/* Read one request; -1 at EOF, DISC or error. */
static int
read_request (struct srv *s, struct req *q)
{
  unsigned char h[32];

  if (s->eh) {
    if (read_full (s, h, 32) == -1 || get32 (h) != EREQ_MAGIC)
      return -1;
    q->count = get64 (h + 24);
  }
  else {
    if (read_full (s, h, 28) == -1 || get32 (h) != REQ_MAGIC)
      return -1;
    q->count = get32 (h + 24);
  }
  q->flags = get16 (h + 4);
  q->type = get16 (h + 6);
  q->cookie = get64 (h + 8);
  q->offset = get64 (h + 16);
  s->requests++;
  if (q->type == 2)             /* DISC */
    return -1;
  if (q->type == 1 || (q->flags & 0x20)) {   /* payload: discard */
    char junk[4096];
    uint64_t left = q->count;
    if (left > 64 * 1024 * 1024)
      return -1;
    while (left) {
      size_t n = left < sizeof junk ? left : sizeof junk;
      if (read_full (s, junk, n) == -1)
        return -1;
      left -= n;
    }
  }
  return 0;
}

static void
server_transmission (struct srv *s)
{
  uint64_t *r = &s->rng;
  struct req pending[16];
  /* A clean server answers until the client disconnects. */
  unsigned budget = s->no_errors ? UINT_MAX : 8 + rndn (r, 24);

  while (budget--) {
    size_t n = 0;
    struct obuf o = { 0 };
    bool close_after = false;

    if (read_request (s, &pending[n]) == -1)
      return;
    n++;
    /* Take whatever else is already queued, to answer out of order. */
    while (n < 16 && wait_readable (s->fd, chance (r, 50) ? 0 : 1) == 0) {
      if (read_request (s, &pending[n]) == -1) {
        /* The client disconnected or closed: still answer what came,
         * then close.
         */
        budget = 0;
        break;
      }
      n++;
    }
    /* Shuffle. */
    if (chance (r, 50))
      for (size_t i = n; i > 1; i--) {
        size_t j = rndn (r, i);
        struct req t = pending[i - 1]; pending[i - 1] = pending[j]; pending[j] = t;
      }
    for (size_t i = 0; i < n; i++) {
      build_reply (s, &o, &pending[i], pending, n);
      remember_cookie (s, pending[i].cookie);
    }
    if (s->mut && chance (r, s->mut / 3))
      close_after = damage (s, &o);
    if (send_all (s, o.p, o.len) == -1)
      close_after = true;
    free (o.p);
    if (close_after)
      return;
    /* After a mutation, sometimes close at once. */
    if (s->mutated && chance (r, 30))
      return;
  }
}

static void *
server_thread (void *arg)
{
  struct srv *s = arg;
  char junk[4096];

  if (server_handshake (s) == 0)
    server_transmission (s);
  /* Always close eventually: the client may be waiting for bytes that
   * will never come.
   */
  if (chance (&s->rng, 50)) {
    shutdown (s->fd, SHUT_WR);
    /* Drain until the client closes (bounded). */
    for (int i = 0; i < 200; i++) {
      if (wait_readable (s->fd, 10) == -1)
        continue;
      if (read (s->fd, junk, sizeof junk) <= 0)
        break;
    }
  }
  close (s->fd);
  return NULL;
}

/* ---- The client ---- */

/* One closure's bookkeeping, for chunk, extent and completion callbacks. */
struct cl {
  const char *what;
  unsigned char *buf;           /* read buffer */
  uint64_t offset, count;       /* the request */
  bool bs32;                    /* 32-bit extent callback */
  int calls, frees;
  int completions, completion_frees;
  int completion_err;
  int64_t cookie;
  bool is_bs;
  bool clean;
};

static volatile unsigned sink;
static long iter;               /* for messages */

#define VIOLATION(...)                                                  \
  do {                                                                  \
    fprintf (stderr, "iteration %ld: ", iter);                          \
    FAIL (__VA_ARGS__);                                                 \
  } while (0)

static int
chunk_cb (void *user_data, const void *subbuf, size_t count, uint64_t offset,
          unsigned status, int *error)
{
  struct cl *c = user_data;
  const unsigned char *p = subbuf;

  c->calls++;
  if (error == NULL)
    VIOLATION ("%s: chunk callback with a NULL error pointer", c->what);
  if (status != LIBNBD_READ_DATA && status != LIBNBD_READ_HOLE
      && status != LIBNBD_READ_ERROR)
    VIOLATION ("%s: chunk status %u", c->what, status);
  if (p < c->buf || p > c->buf + c->count || count > c->count
      || (size_t) (p - c->buf) > c->count - count) {
    VIOLATION ("%s: subbuf %p+%zu outside the buffer %p+%" PRIu64,
               c->what, subbuf, count, (void *) c->buf, c->count);
    return 0;
  }
  if (offset < c->offset || count > c->count
      || offset - c->offset > c->count - count)
    VIOLATION ("%s: chunk [%" PRIu64 ", +%zu) outside the request [%" PRIu64
               ", +%" PRIu64 ")", c->what, offset, count, c->offset, c->count);
  else if ((uint64_t) (p - c->buf) != offset - c->offset)
    VIOLATION ("%s: subbuf at buffer offset %td for chunk offset %" PRIu64
               " (request offset %" PRIu64 ")", c->what, p - c->buf, offset,
               c->offset);
  if (status == LIBNBD_READ_HOLE) {
    for (size_t i = 0; i < count; i++)
      if (p[i] != 0) {
        VIOLATION ("%s: hole chunk not zeroed at %zu", c->what, i);
        break;
      }
  }
  else {
    unsigned sum = 0;
    for (size_t i = 0; i < count; i++)
      sum += p[i];
    sink += sum;
  }
  if (status == LIBNBD_READ_ERROR && count != 0)
    sink++;
  return 0;
}

static void
check_entries_common (struct cl *c, const char *metacontext, uint64_t offset,
                      size_t nr_entries, int *error)
{
  if (error == NULL)
    VIOLATION ("%s: extent callback with a NULL error pointer", c->what);
  /* The name is the server's (a mutated handshake may rename it). */
  if (metacontext == NULL)
    VIOLATION ("%s: NULL metacontext", c->what);
  else if (c->clean && strcmp (metacontext, CTX_NAME) != 0)
    VIOLATION ("%s: metacontext %s", c->what, metacontext);
  else
    sink += (unsigned) strlen (metacontext);
  if (offset != c->offset)
    VIOLATION ("%s: extent offset %" PRIu64 ", request %" PRIu64, c->what,
               offset, c->offset);
  if (nr_entries == 0)
    VIOLATION ("%s: extent callback with no entries", c->what);
}

static int
extent32_cb (void *user_data, const char *metacontext, uint64_t offset,
             uint32_t *entries, size_t nr_entries, int *error)
{
  struct cl *c = user_data;
  unsigned sum = 0;

  c->calls++;
  check_entries_common (c, metacontext, offset, nr_entries, error);
  if (nr_entries % 2)
    VIOLATION ("%s: odd number of 32-bit entries %zu", c->what, nr_entries);
  if (nr_entries > 2 * (64 * 1024 * 1024 / 8))
    VIOLATION ("%s: %zu entries", c->what, nr_entries);
  else
    for (size_t i = 0; i < nr_entries; i++)
      sum += entries[i];
  sink += sum;
  return 0;
}

static int
extent64_cb (void *user_data, const char *metacontext, uint64_t offset,
             nbd_extent *entries, size_t nr_entries, int *error)
{
  struct cl *c = user_data;
  uint64_t sum = 0;

  c->calls++;
  check_entries_common (c, metacontext, offset, nr_entries, error);
  if (nr_entries > 64 * 1024 * 1024 / 8)
    VIOLATION ("%s: %zu entries", c->what, nr_entries);
  else
    for (size_t i = 0; i < nr_entries; i++)
      sum += entries[i].length + entries[i].flags;
  sink += (unsigned) sum;
  return 0;
}

static void
free_cb (void *user_data)
{
  struct cl *c = user_data;
  c->frees++;
}

static int
completion_cb (void *user_data, int *error)
{
  struct cl *c = user_data;
  c->completions++;
  if (error == NULL)
    VIOLATION ("%s: completion with a NULL error pointer", c->what);
  else
    c->completion_err = *error;
  return 0;
}

static void
completion_free_cb (void *user_data)
{
  struct cl *c = user_data;
  c->completion_frees++;
}

/* A call returned r: 0 (or a cookie > 0) or -1 with an error set. */
static void
check_result (const char *what, int64_t r, bool clean)
{
  if (r == -1) {
    /* (errno 0 is allowed: as libnbd, a protocol violation or an end of
     * stream in the middle of a message carries only a message.)
     */
    if (nbd_get_error () == NULL)
      VIOLATION ("%s failed without a message", what);
    if (clean)
      VIOLATION ("%s failed with a valid server: %s (errno %d)", what,
                 nbd_get_error (), nbd_get_errno ());
  }
  else if (r < 0)
    VIOLATION ("%s returned %" PRIi64, what, r);
}

#define MAX_CL 16

static void
pick_range (uint64_t *r, uint64_t *offset, uint64_t *count, bool big_ok)
{
  uint64_t max = big_ok && chance (r, 10) ? 300 * 1024 : chance (r, 30) ? 24 * 1024 : 4096;
  *count = 1 + rndn (r, max);
  *offset = rndn (r, EXPORT_SIZE - *count + 1);
}

static void
run_iteration (long i)
{
  uint64_t seed = base_seed ^ ((uint64_t) i * 0x9e3779b97f4a7c15ULL);
  uint64_t crng = seed ^ 0xc11e47ULL, *r = &crng;
  struct srv s = { 0 };
  pthread_t t;
  int sv[2];
  struct nbd_handle *h;
  struct cl cls[MAX_CL];
  unsigned char *bufs[MAX_CL];
  size_t ncl = 0;
  bool clean, can_bs, can_df, connected;
  int64_t rr;
  unsigned nops;

  iter = i;
  memset (cls, 0, sizeof cls);
  memset (bufs, 0, sizeof bufs);
  s.rng = seed;
  rnd (&s.rng);
  s.max_mode = (enum mode) rndn (r, 3);
  s.ctx_id = chance (r, 50) ? 1 : (uint32_t) rnd (r);
  s.eflags = 1 | 4 | 8 | 0x80 | 0x100 | 0x400;   /* HAS_FLAGS FLUSH FUA DF MULTI CACHE */
  switch (rndn (r, 10)) {
  case 0: case 1:               /* clean */
    break;
  case 2: case 3:               /* the handshake */
    s.hs_mut = 5 + rndn (r, 30);
    break;
  default:
    s.mut = 3 + rndn (r, 40);
  }
  clean = s.hs_mut == 0 && s.mut == 0;
  s.no_errors = clean;
  for (size_t k = 0; k < MAX_CL; k++)
    cls[k].clean = clean;
  if (verbose)
    fprintf (stderr, "iteration %ld: mode %s, hs_mut %u, mut %u\n", i,
             mode_names[s.max_mode], s.hs_mut, s.mut);

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
    perror ("socketpair");
    exit (EXIT_FAILURE);
  }
  s.fd = sv[1];
  h = nbd_create ();
  if (!h) {
    fprintf (stderr, "nbd_create: %s\n", nbd_get_error ());
    exit (EXIT_FAILURE);
  }
  if (chance (r, 25))
    nbd_set_request_extended_headers (h, false);
  if (chance (r, 90))
    nbd_add_meta_context (h, CTX_NAME);
  if (pthread_create (&t, NULL, server_thread, &s) != 0) {
    perror ("pthread_create");
    exit (EXIT_FAILURE);
  }
  alarm (hang_seconds);

  rr = nbd_connect_socket (h, sv[0]);
  check_result ("nbd_connect_socket", rr, clean);
  connected = rr == 0;
  if (!connected && !nbd_aio_is_dead (h) && !nbd_aio_is_closed (h))
    VIOLATION ("connect failed but the handle is %s", nbd_connection_state (h));

  can_bs = connected && nbd_can_meta_context (h, CTX_NAME) == 1;
  can_df = connected && nbd_can_df (h) == 1;
  nops = connected ? 1 + rndn (r, 8) : 2;
  for (unsigned op = 0; op < nops; op++) {
    uint64_t off, cnt;
    unsigned kind = rndn (r, 6);

    if (ncl + 6 > MAX_CL)
      break;
    pick_range (r, &off, &cnt, true);
    switch (kind) {
    case 0: {                   /* nbd_pread */
      struct cl *c = &cls[ncl];
      c->what = "nbd_pread";
      c->buf = bufs[ncl++] = malloc (cnt);
      c->offset = off; c->count = cnt;
      rr = nbd_pread (h, c->buf, cnt, off, 0);
      check_result (c->what, rr, clean);
      break;
    }
    case 1: {                   /* nbd_pread_structured */
      struct cl *c = &cls[ncl];
      uint32_t fl = can_df && chance (r, 30) ? LIBNBD_CMD_FLAG_DF : 0;
      c->what = "nbd_pread_structured";
      c->buf = bufs[ncl++] = malloc (cnt);
      c->offset = off; c->count = cnt;
      rr = nbd_pread_structured (h, c->buf, cnt, off,
                                 (nbd_chunk_callback) { .callback = chunk_cb,
                                                        .user_data = c,
                                                        .free = free_cb }, fl);
      check_result (c->what, rr, clean);
      c->completion_frees = 1;  /* no completion closure */
      c->completions = 1;
      break;
    }
    case 2: case 3: {           /* nbd_block_status(_64) */
      struct cl *c = &cls[ncl++];
      uint32_t fl = chance (r, 20) ? LIBNBD_CMD_FLAG_REQ_ONE : 0;
      c->offset = off; c->count = cnt; c->is_bs = true;
      c->completion_frees = 1;
      c->completions = 1;
      if (kind == 2) {
        c->what = "nbd_block_status_64";
        rr = nbd_block_status_64 (h, cnt, off,
                                  (nbd_extent64_callback) { .callback = extent64_cb,
                                                            .user_data = c,
                                                            .free = free_cb }, fl);
      }
      else {
        c->what = "nbd_block_status";
        c->bs32 = true;
        rr = nbd_block_status (h, cnt, off,
                               (nbd_extent_callback) { .callback = extent32_cb,
                                                       .user_data = c,
                                                       .free = free_cb }, fl);
      }
      check_result (c->what, rr, clean && can_bs);
      break;
    }
    case 4:
      check_result ("nbd_flush", nbd_flush (h, 0), clean);
      break;
    case 5: {                   /* a few aio commands in flight */
      unsigned n = 2 + rndn (r, 4);
      size_t first = ncl;
      time_t deadline;
      for (unsigned k = 0; k < n && ncl < MAX_CL; k++) {
        struct cl *c = &cls[ncl];
        nbd_completion_callback comp = { .callback = completion_cb,
                                         .user_data = c,
                                         .free = completion_free_cb };
        unsigned which = rndn (r, 4);
        pick_range (r, &off, &cnt, false);
        c->offset = off; c->count = cnt;
        if (which == 0) {
          c->what = "nbd_aio_pread";
          c->buf = bufs[ncl] = malloc (cnt);
          c->frees = 1;         /* no other closure */
          c->cookie = nbd_aio_pread (h, c->buf, cnt, off, comp, 0);
        }
        else if (which == 1) {
          c->what = "nbd_aio_pread_structured";
          c->buf = bufs[ncl] = malloc (cnt);
          c->cookie = nbd_aio_pread_structured (h, c->buf, cnt, off,
                        (nbd_chunk_callback) { .callback = chunk_cb,
                                               .user_data = c,
                                               .free = free_cb }, comp, 0);
        }
        else if (which == 2) {
          c->what = "nbd_aio_block_status_64";
          c->is_bs = true;
          c->cookie = nbd_aio_block_status_64 (h, cnt, off,
                        (nbd_extent64_callback) { .callback = extent64_cb,
                                                  .user_data = c,
                                                  .free = free_cb }, comp, 0);
        }
        else {
          c->what = "nbd_aio_block_status";
          c->is_bs = true;
          c->bs32 = true;
          c->cookie = nbd_aio_block_status (h, cnt, off,
                        (nbd_extent_callback) { .callback = extent32_cb,
                                                .user_data = c,
                                                .free = free_cb }, comp, 0);
        }
        ncl++;
        check_result (c->what, c->cookie, clean && (!c->is_bs || can_bs));
        /* The completion may already have run (the request could not be
         * sent and the connection died): not for a refused call.
         */
        if (c->cookie == -1 && c->completions != 0)
          VIOLATION ("%s: refused, but its completion ran", c->what);
      }
      /* Drive the engine until they are all done or the handle dies. */
      deadline = time (NULL) + hang_seconds;
      for (;;) {
        bool all = true;
        int pr;
        for (size_t k = first; k < ncl; k++)
          if (cls[k].cookie > 0 && cls[k].completions == 0)
            all = false;
        if (all)
          break;
        if (time (NULL) > deadline) {
          VIOLATION ("aio commands not complete after %u s (state %s)",
                     hang_seconds, nbd_connection_state (h));
          break;
        }
        pr = nbd_poll (h, 1000);
        if (pr == -1) {
          check_result ("nbd_poll", pr, clean);
          /* Dead: every command in flight must have completed. */
          for (size_t k = first; k < ncl; k++)
            if (cls[k].cookie > 0 && cls[k].completions == 0)
              VIOLATION ("%s: nbd_poll failed (%s) but the command never completed",
                         cls[k].what, nbd_get_error ());
          break;
        }
      }
      for (size_t k = first; k < ncl; k++) {
        struct cl *c = &cls[k];
        int cr;
        if (c->cookie <= 0)
          continue;
        if (c->completions > 1)
          VIOLATION ("%s: completion called %d times", c->what, c->completions);
        cr = nbd_aio_command_completed (h, (uint64_t) c->cookie);
        if (c->completions == 1 && cr != 1 && cr != -1)
          VIOLATION ("%s: nbd_aio_command_completed returned %d after completion",
                     c->what, cr);
        if (cr == -1) {
          check_result ("nbd_aio_command_completed", cr, clean);
          if (c->completion_err == 0 && c->completions == 1)
            VIOLATION ("%s: retired with an error (%s) but the completion saw none",
                       c->what, nbd_get_error ());
        }
        if (cr == 1 && c->completion_err != 0)
          VIOLATION ("%s: completion saw error %d, retired as success",
                     c->what, c->completion_err);
      }
      break;
    }
    }
    if (!connected && op > 0)
      break;
  }

  if (connected && chance (r, 50))
    check_result ("nbd_shutdown", nbd_shutdown (h, 0), clean);
  nbd_close (h);
  pthread_join (t, NULL);
  alarm (0);

  /* The handle owned sv[0]: it must be closed now. */
  if (fcntl (sv[0], F_GETFD) != -1)
    VIOLATION ("socket fd %d still open after nbd_close", sv[0]);

  for (size_t k = 0; k < ncl; k++) {
    struct cl *c = &cls[k];
    bool has_closure = strcmp (c->what, "nbd_pread") != 0;
    bool aio = strncmp (c->what, "nbd_aio_", 8) == 0;
    if (has_closure && c->frees != 1)
      VIOLATION ("%s: .free ran %d times", c->what, c->frees);
    if (aio && c->completion_frees != 1)
      VIOLATION ("%s: completion .free ran %d times", c->what, c->completion_frees);
    if (aio && c->cookie > 0 && c->completions != 1)
      VIOLATION ("%s: completion ran %d times", c->what, c->completions);
    free (bufs[k]);
  }
  if (verbose)
    fprintf (stderr, "iteration %ld: %u requests, %u replies, mutated %d\n",
             i, s.requests, s.replies, s.mutated);
}

static void
on_alarm (int sig)
{
  char msg[128];
  int n;
  (void) sig;
  n = snprintf (msg, sizeof msg,
                "test-fuzz-replies: FAIL: iteration %ld hung (more than %u s)\n",
                iter, hang_seconds);
  if (write (2, msg, (size_t) n) < 0) { /* nothing to do */ }
  _exit (3);
}

static long
env_long (const char *name, long def)
{
  const char *v = getenv (name);
  return v && *v ? strtol (v, NULL, 0) : def;
}

static int
run_range (long from, long to)
{
  for (long i = from; i < to; i++) {
    sh->cur_iter = i;
    run_iteration (i);
    sh->iterations_done++;
  }
  sh->batch_complete = 1;
  sh->failures += failures;
  return failures ? 1 : 0;
}

int
main (void)
{
  long iterations = env_long ("FUZZ_ITERATIONS", 3000);
  long only = env_long ("FUZZ_ONLY", -1);
  bool nofork = getenv ("FUZZ_NOFORK") != NULL;
  const long batch = 250;
  struct timespec t0, t1;
  int crashes = 0;

  if (getenv ("FUZZ_SEED"))
    base_seed = strtoull (getenv ("FUZZ_SEED"), NULL, 0);
  verbose = getenv ("FUZZ_VERBOSE") != NULL;
  hang_seconds = (unsigned) env_long ("FUZZ_HANG", 20);
  signal (SIGALRM, on_alarm);
  clock_gettime (CLOCK_MONOTONIC, &t0);

  if (only >= 0) {
    sh = &sh_local;
    run_range (only, only + 1);
    return check_status ("test-fuzz-replies");
  }
  if (nofork) {
    sh = &sh_local;
    run_range (0, iterations);
  }
  else {
    sh = mmap (NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
               -1, 0);
    if (sh == MAP_FAILED) {
      perror ("mmap");
      exit (EXIT_FAILURE);
    }
    for (long from = 0; from < iterations; ) {
      long to = from + batch < iterations ? from + batch : iterations;
      int status;
      pid_t pid;
      int before = sh->failures;

      fflush (stderr);
      sh->cur_iter = from;
      sh->batch_complete = 0;
      pid = fork ();
      if (pid == -1) {
        perror ("fork");
        exit (EXIT_FAILURE);
      }
      if (pid == 0)
        exit (run_range (from, to));   /* exit: leak checkers run */
      if (waitpid (pid, &status, 0) == -1) {
        perror ("waitpid");
        exit (EXIT_FAILURE);
      }
      if (WIFEXITED (status) && WEXITSTATUS (status) == 0) {
        from = to;
        continue;
      }
      if (WIFEXITED (status) && WEXITSTATUS (status) == 1
          && sh->failures > before) {
        from = to;              /* checks failed; already reported */
        continue;
      }
      /* A crash, a hang, or a sanitizer / valgrind error: name the
       * iteration and go on after it.
       */
      crashes++;
      if (WIFSIGNALED (status))
        fprintf (stderr, "test-fuzz-replies: FAIL: iteration %ld (seed 0x%" PRIx64
                 "): killed by signal %d\n", sh->cur_iter, base_seed,
                 WTERMSIG (status));
      else if (sh->batch_complete)
        fprintf (stderr, "test-fuzz-replies: FAIL: batch %ld..%ld exited with "
                 "status %d after its last iteration (a leak?  seed 0x%" PRIx64
                 ")\n", from, to - 1, WEXITSTATUS (status), base_seed);
      else
        fprintf (stderr, "test-fuzz-replies: FAIL: iteration %ld (seed 0x%" PRIx64
                 ") exited with status %d (crash, hang or memory error; rerun "
                 "with FUZZ_ONLY=%ld)\n", sh->cur_iter, base_seed,
                 WEXITSTATUS (status), sh->cur_iter);
      /* Go on after the iteration that failed (after the batch if the
       * error came at exit, as a leak does).
       */
      from = sh->batch_complete || sh->cur_iter + 1 > to ? to : sh->cur_iter + 1;
    }
    failures += sh->failures + crashes;
  }
  clock_gettime (CLOCK_MONOTONIC, &t1);
  fprintf (stderr, "test-fuzz-replies: %ld iterations in %.1f s, %d failure(s)\n",
           sh->iterations_done, (double) (t1.tv_sec - t0.tv_sec)
           + (t1.tv_nsec - t0.tv_nsec) / 1e9, failures);
  return check_status ("test-fuzz-replies");
}
