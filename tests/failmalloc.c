/* The malloc interposer described in failmalloc.h. */
#include <config.h>

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failmalloc.h"

#if FAILMALLOC_AVAILABLE

/* glibc's own allocator, under the names it exports for replacements. */
extern void *__libc_malloc (size_t size);
extern void *__libc_calloc (size_t n, size_t size);
extern void *__libc_realloc (void *p, size_t size);
extern void __libc_free (void *p);

/* Per thread: counting is on between failmalloc_begin and _end. */
static __thread bool counting;
static __thread bool inside;            /* in backtrace(): pass through */
static __thread unsigned long seen, fail_at;
static __thread bool fail_after;
static __thread bool fired;
static __thread void *fired_frames[FAILMALLOC_FRAMES];
static __thread int fired_nframes;

/* The record of live blocks allocated while counting: open addressing
 * with linear probing, deletion by shifting back, in static storage
 * (an allocator cannot allocate its own bookkeeping).
 */
#define SLOTS (1u << 16)
struct block {
  void *p;
  size_t size;
  unsigned long nr;             /* allocation number, from 1 */
  void *caller;
};
static struct block blocks[SLOTS];
static size_t nr_blocks;
static pthread_mutex_t blocks_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t
slot_of (const void *p)
{
  uint64_t x = (uint64_t) (uintptr_t) p;
  x ^= x >> 29;
  x *= UINT64_C (0x9e3779b97f4a7c15);
  return (size_t) (x >> 48) & (SLOTS - 1);
}

static void
record (void *p, size_t size, void *caller)
{
  size_t i;

  pthread_mutex_lock (&blocks_lock);
  if (nr_blocks >= SLOTS / 2) {
    /* More live blocks than any scenario here makes: a runaway. */
    fputs ("failmalloc: too many live blocks\n", stderr);
    abort ();
  }
  for (i = slot_of (p); blocks[i].p; i = (i + 1) & (SLOTS - 1))
    ;
  blocks[i] = (struct block) { p, size, seen, caller };
  nr_blocks++;
  pthread_mutex_unlock (&blocks_lock);
}

static void
forget (void *p)
{
  size_t i, j;

  if (!p || __atomic_load_n (&nr_blocks, __ATOMIC_RELAXED) == 0)
    return;
  pthread_mutex_lock (&blocks_lock);
  for (i = slot_of (p); blocks[i].p && blocks[i].p != p; i = (i + 1) & (SLOTS - 1))
    ;
  if (blocks[i].p) {
    /* Close the gap: move later entries of the run back if their home
     * slot does not lie between the gap and them.
     */
    blocks[i].p = NULL;
    nr_blocks--;
    for (j = (i + 1) & (SLOTS - 1); blocks[j].p; j = (j + 1) & (SLOTS - 1)) {
      size_t home = slot_of (blocks[j].p);
      bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (!stays) {
        blocks[i] = blocks[j];
        blocks[j].p = NULL;
        i = j;
      }
    }
  }
  pthread_mutex_unlock (&blocks_lock);
}

/* Code ranges whose allocations are spared (failmalloc_spare). */
#define MAX_SPARED 8
static struct { uintptr_t lo, hi; } spared[MAX_SPARED];
static size_t nr_spared;

struct spare_search {
  const char *name;
  bool found;
};

static int
spare_object (struct dl_phdr_info *info, size_t size, void *arg)
{
  struct spare_search *s = arg;

  if (!info->dlpi_name || !strstr (info->dlpi_name, s->name))
    return 0;
  for (int i = 0; i < info->dlpi_phnum && nr_spared < MAX_SPARED; i++) {
    const ElfW (Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
      spared[nr_spared].lo = info->dlpi_addr + ph->p_vaddr;
      spared[nr_spared].hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
      nr_spared++;
      s->found = true;
    }
  }
  return 0;
}

bool
failmalloc_spare (const char *name)
{
  struct spare_search s = { name, false };

  dl_iterate_phdr (spare_object, &s);
  return s.found;
}

/* Whether the spared code is among the innermost callers: libraries
 * reach malloc through their users' hooks too (GnuTLS gives GMP its
 * own allocation functions).
 */
static bool
is_spared (void)
{
  void *frames[6];
  int n;

  if (nr_spared == 0)
    return false;
  inside = true;
  n = backtrace (frames, 6);
  inside = false;
  for (int f = 1; f < n; f++)
    for (size_t i = 0; i < nr_spared; i++)
      if (spared[i].lo <= (uintptr_t) frames[f] && (uintptr_t) frames[f] < spared[i].hi)
        return true;
  return false;
}

/* Counts one allocation; true if it is the one to fail. */
static bool
should_fail (void)
{
  if (!counting || inside || is_spared ())
    return false;
  seen++;
  if (fail_at == 0 || seen < fail_at || (seen > fail_at && !fail_after))
    return false;
  if (fired)
    return true;
  fired = true;
  inside = true;
  fired_nframes = backtrace (fired_frames, FAILMALLOC_FRAMES);
  inside = false;
  return true;
}

static void *
after (void *p, size_t size, void *caller)
{
  if (p && counting && !inside)
    record (p, size, caller);
  return p;
}

void *
malloc (size_t size)
{
  if (should_fail ()) {
    errno = ENOMEM;
    return NULL;
  }
  return after (__libc_malloc (size), size, __builtin_return_address (0));
}

void *
calloc (size_t n, size_t size)
{
  if (should_fail ()) {
    errno = ENOMEM;
    return NULL;
  }
  return after (__libc_calloc (n, size), n * size, __builtin_return_address (0));
}

void *
realloc (void *p, size_t size)
{
  void *q;

  if (p && size == 0) {         /* glibc: frees p */
    forget (p);
    return __libc_realloc (p, 0);
  }
  if (should_fail ()) {
    errno = ENOMEM;
    return NULL;                /* p is untouched, as a real failure leaves it */
  }
  q = __libc_realloc (p, size);
  if (q) {
    forget (p);
    after (q, size, __builtin_return_address (0));
  }
  return q;
}

void *
reallocarray (void *p, size_t n, size_t size)
{
  size_t total;

  if (__builtin_mul_overflow (n, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc (p, total);
}

void
free (void *p)
{
  forget (p);
  __libc_free (p);
}

void
failmalloc_begin (unsigned long nth, bool and_after)
{
  static bool primed;
  void *frame[1];

  /* backtrace() loads the unwinder on first use: not in a counted call. */
  if (!primed) {
    backtrace (frame, 1);
    primed = true;
  }
  seen = 0;
  fail_at = nth;
  fail_after = and_after;
  fired = false;
  fired_nframes = 0;
  counting = true;
}

void
failmalloc_end (void)
{
  counting = false;
}

unsigned long
failmalloc_count (void)
{
  return seen;
}

bool
failmalloc_fired (void **frames, int *nframes)
{
  if (fired && frames && nframes) {
    memcpy (frames, fired_frames, sizeof fired_frames);
    *nframes = fired_nframes;
  }
  return fired;
}

void
failmalloc_describe (const void *addr, char *buf, size_t len)
{
  Dl_info info;

  if (dladdr (addr, &info) && info.dli_fname) {
    const char *obj = strrchr (info.dli_fname, '/');
    obj = obj ? obj + 1 : info.dli_fname;
    if (info.dli_sname)
      snprintf (buf, len, "%s(%s+0x%tx)", obj, info.dli_sname,
                (const char *) addr - (const char *) info.dli_saddr);
    else
      snprintf (buf, len, "%s(+0x%tx)", obj,
                (const char *) addr - (const char *) info.dli_fbase);
  }
  else
    snprintf (buf, len, "%p", addr);
}

size_t
failmalloc_leaks (char *buf, size_t len)
{
  size_t n, out = 0, shown = 0;

  pthread_mutex_lock (&blocks_lock);
  n = nr_blocks;
  if (len)
    buf[0] = 0;
  for (size_t i = 0; i < SLOTS; i++) {
    if (!blocks[i].p)
      continue;
    if (shown < 8 && out + 200 < len) {
      char where[160];
      failmalloc_describe (blocks[i].caller, where, sizeof where);
      out += (size_t) snprintf (buf + out, len - out,
                                "  allocation #%lu, %zu bytes, from %s\n",
                                blocks[i].nr, blocks[i].size, where);
      shown++;
    }
    blocks[i].p = NULL;
  }
  nr_blocks = 0;
  pthread_mutex_unlock (&blocks_lock);
  return n;
}

#else /* !FAILMALLOC_AVAILABLE: the control calls exist, nothing fails */

void failmalloc_begin (unsigned long nth, bool and_after) { }
void failmalloc_end (void) { }
bool failmalloc_spare (const char *name) { return false; }
unsigned long failmalloc_count (void) { return 0; }
bool failmalloc_fired (void **frames, int *nframes) { return false; }
size_t failmalloc_leaks (char *buf, size_t len) { return 0; }

void
failmalloc_describe (const void *addr, char *buf, size_t len)
{
  snprintf (buf, len, "%p", addr);
}

#endif /* FAILMALLOC_AVAILABLE */
