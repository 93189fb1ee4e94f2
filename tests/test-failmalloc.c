/* Allocation failures (failmalloc.h): one scenario, run again and again
 * with the 1st, 2nd, 3rd ... allocation of its thread failing, until a
 * run gets through without reaching the failing allocation; once with
 * only that allocation failing, once with every allocation from it on
 * failing too (memory gone for good: the error message itself cannot be
 * allocated any more).
 *
 * The scenario: nbd_create, TLS with a pre-shared key, two meta contexts,
 * opt mode, nbd_connect_unix to nbdkit, nbd_opt_list,
 * nbd_opt_list_meta_context, nbd_opt_go, nbd_pread, an nbd_aio_pread_
 * structured with chunk and completion callbacks, nbd_block_status_64,
 * nbd_block_status, nbd_shutdown, nbd_close; with a debug callback
 * installed, so the debug and trace paths allocate too.
 *
 * Every run must hold to:
 *  - a call that fails reports ENOMEM and a message (nbd_get_error not
 *    NULL); the run stops there and closes the handle;
 *  - a call that succeeds returns right results (the data and the map of
 *    nbdkit's data plugin, the export list, the contexts): an allocation
 *    failure the library absorbs must not change what it returns;
 *  - each closure given to the library is freed exactly once by the end
 *    of nbd_close, and never called after its free;
 *  - nothing the run allocated is still allocated after its thread ends.
 *
 * A first run without failures sets up what GnuTLS and the C library
 * allocate once per process or thread, and is not checked for leaks.  Skipped (77) in sanitizer builds (they own malloc), and
 * without TLS-PSK (nbdkit, psktool).
 */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failmalloc.h"
#include "hs-helpers.h"

#define PROG "test-failmalloc"

/* FAILMALLOC_VERBOSE=1: describe every run. */
static bool verbose;

static struct server srv;
static char pskdir[] = "/tmp/libnbd-failmalloc-XXXXXX";
static char pskfile[200];

/* What nbdkit's data plugin serves (see start_server): data at
 * 64 KiB (bytes 1 2 3 4, in a 32 KiB page) and 192 KiB (64 KiB of 0x55).
 */
#define EXPORT_SIZE (1024 * 1024)
static const struct { uint64_t offset, length; uint32_t flags; } map[] = {
  { 0, 65536, 3 }, { 65536, 32768, 0 }, { 98304, 98304, 3 },
  { 196608, 65536, 0 }, { 262144, 786432, 3 },
};
#define MAP_LEN (sizeof map / sizeof map[0])

/* ---- One run ---- */

/* A closure's user data: calls and frees, in static storage so that the
 * test itself allocates nothing while the library is being tested.
 */
struct closure_log {
  const char *name;
  int calls, frees;
  bool called_after_free;
  bool passed;                  /* handed to the library */
};

enum { CL_LIST, CL_CONTEXT, CL_CHUNK, CL_COMPLETION, CL_EXTENT64, CL_EXTENT,
       CL_DEBUG, NR_CLOSURES };

struct run {
  unsigned long nth;            /* the allocation that fails, 0 none */
  bool completed;
  const char *failed_call;      /* NULL if no call failed */
  int failed_errno;
  char failed_msg[512];
  char problem[1024];           /* a broken rule, "" if none */
  unsigned long allocations;
  struct closure_log cl[NR_CLOSURES];
  /* Scenario results. */
  int exports_seen, contexts_seen, base_allocation_seen;
  int extents64_ok, extents_ok;
  char buf[4096], buf2[4096];
};

static void problem (struct run *r, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

static void
problem (struct run *r, const char *fmt, ...)
{
  va_list ap;
  size_t len = strlen (r->problem);

  if (len + 2 >= sizeof r->problem)
    return;
  if (len)
    r->problem[len++] = ';', r->problem[len++] = ' ';
  va_start (ap, fmt);
  vsnprintf (r->problem + len, sizeof r->problem - len, fmt, ap);
  va_end (ap);
}

static void
log_free (void *user_data)
{
  struct closure_log *c = user_data;
  c->frees++;
}

static bool
log_call (struct closure_log *c)
{
  if (c->frees)
    c->called_after_free = true;
  c->calls++;
  return true;
}

static struct run *current;     /* the run in progress (callbacks) */

static int
list_cb (void *user_data, const char *name, const char *description)
{
  log_call (user_data);
  if (name && strcmp (name, "") == 0)
    current->exports_seen++;
  return 0;
}

static int
context_cb (void *user_data, const char *name)
{
  log_call (user_data);
  current->contexts_seen++;
  if (strcmp (name, LIBNBD_CONTEXT_BASE_ALLOCATION) == 0)
    current->base_allocation_seen++;
  return 0;
}

static int
chunk_cb (void *user_data, const void *subbuf, size_t count, uint64_t offset,
          unsigned status, int *error)
{
  log_call (user_data);
  return 0;
}

static int
completion_cb (void *user_data, int *error)
{
  log_call (user_data);
  return 0;                     /* nbd_aio_command_completed retires it */
}

/* The map of base:allocation from `offset` on must be a prefix of map[]
 * (the last extent may be cut short).
 */
static bool
extents_match (const char *metacontext, uint64_t offset,
               const nbd_extent *e, size_t n)
{
  size_t k = 0;

  if (strcmp (metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
    return false;
  while (k < MAP_LEN && map[k].offset + map[k].length <= offset)
    k++;
  for (size_t i = 0; i < n; i++, k++) {
    uint64_t end;
    if (k >= MAP_LEN)
      return false;
    end = map[k].offset + map[k].length;
    if (e[i].flags != map[k].flags || offset + e[i].length > end
        || (i + 1 < n && offset + e[i].length != end))
      return false;
    offset += e[i].length;
  }
  return n > 0;
}

static int
extent64_cb (void *user_data, const char *metacontext, uint64_t offset,
             nbd_extent *entries, size_t nr_entries, int *error)
{
  log_call (user_data);
  if (extents_match (metacontext, offset, entries, nr_entries))
    current->extents64_ok++;
  return 0;
}

static int
extent_cb (void *user_data, const char *metacontext, uint64_t offset,
           uint32_t *entries, size_t nr_entries, int *error)
{
  nbd_extent e[MAP_LEN];

  log_call (user_data);
  if (nr_entries % 2 || nr_entries / 2 > MAP_LEN)
    return 0;
  for (size_t i = 0; i < nr_entries / 2; i++)
    e[i] = (nbd_extent) { entries[2 * i], entries[2 * i + 1] };
  if (extents_match (metacontext, offset, e, nr_entries / 2))
    current->extents_ok++;
  return 0;
}

static int
debug_cb (void *user_data, const char *context, const char *msg)
{
  log_call (user_data);
  return 0;
}

/* Hand closure i to the library: its user data is the log. */
#define CLOSURE(r, i, fn) \
  { .callback = (fn), .user_data = &(r)->cl[(i)], .free = log_free }
#define PASS(r, i) ((r)->cl[(i)].passed = true)

/* Note a failed call, which may have failed with ENOMEM or `also`;
 * returns false (stop the run).
 */
static bool
failed_with (struct run *r, const char *call, int also)
{
  const char *msg = nbd_get_error ();

  r->failed_call = call;
  r->failed_errno = nbd_get_errno ();
  snprintf (r->failed_msg, sizeof r->failed_msg, "%s", msg ? msg : "(null)");
  if (r->failed_errno != ENOMEM && (also == 0 || r->failed_errno != also))
    problem (r, "%s failed with errno %d (%s), expected ENOMEM: %s", call,
             r->failed_errno, strerror (r->failed_errno), r->failed_msg);
  else if (msg == NULL)
    problem (r, "%s failed with ENOMEM but no message", call);
  return false;
}

static bool
failed (struct run *r, const char *call)
{
  return failed_with (r, call, 0);
}

#define TRY(r, call) ((call) != -1 || failed ((r), #call))

static bool
scenario (struct run *r, struct nbd_handle *h)
{
  int64_t cookie;
  bool dead_at_issue;
  int c;

  {
    nbd_debug_callback d = CLOSURE (r, CL_DEBUG, debug_cb);
    PASS (r, CL_DEBUG);
    if (!TRY (r, nbd_set_debug_callback (h, d))
        || !TRY (r, nbd_set_debug (h, true)))
      return false;
  }
  if (!TRY (r, nbd_set_tls (h, LIBNBD_TLS_REQUIRE))
      || !TRY (r, nbd_set_tls_username (h, "alice"))
      || !TRY (r, nbd_set_tls_psk_file (h, pskfile))
      || !TRY (r, nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION))
      || !TRY (r, nbd_add_meta_context (h, "nbdkit:no-such-context"))
      || !TRY (r, nbd_set_opt_mode (h, true))
      || !TRY (r, nbd_connect_unix (h, srv.sock)))
    return false;
  if (nbd_get_tls_negotiated (h) != 1)
    problem (r, "TLS not negotiated");

  {
    nbd_list_callback l = CLOSURE (r, CL_LIST, list_cb);
    PASS (r, CL_LIST);
    if (!TRY (r, nbd_opt_list (h, l)))
      return false;
    if (r->exports_seen != 1)
      problem (r, "nbd_opt_list: the default export seen %d times",
               r->exports_seen);
  }
  {
    nbd_context_callback m = CLOSURE (r, CL_CONTEXT, context_cb);
    PASS (r, CL_CONTEXT);
    if (!TRY (r, nbd_opt_list_meta_context (h, m)))
      return false;
    if (r->base_allocation_seen != 1)
      problem (r, "nbd_opt_list_meta_context: base:allocation seen %d times "
               "(%d contexts)", r->base_allocation_seen, r->contexts_seen);
  }
  if (!TRY (r, nbd_opt_go (h)))
    return false;
  c = nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION);
  if (c == -1)
    return failed (r, "nbd_can_meta_context");
  if (c != 1)
    problem (r, "base:allocation not negotiated");
  if (nbd_get_size (h) != EXPORT_SIZE)
    problem (r, "export size %" PRIi64, nbd_get_size (h));

  /* Replies of one TLS record: nbdkit 1.32 with GnuTLS 3.7 can abort
   * (an assertion in nettle's ChaCha20-Poly1305) when the client goes
   * away while it is still sending a reply of several records.
   */
  if (!TRY (r, nbd_pread (h, r->buf, sizeof r->buf, 65536, 0)))
    return false;
  if (memcmp (r->buf, "\1\2\3\4", 4) != 0 || r->buf[4] != 0
      || r->buf[sizeof r->buf - 1] != 0)
    problem (r, "nbd_pread: wrong data");

  {
    nbd_chunk_callback ch = CLOSURE (r, CL_CHUNK, chunk_cb);
    nbd_completion_callback co = CLOSURE (r, CL_COMPLETION, completion_cb);
    PASS (r, CL_CHUNK);
    PASS (r, CL_COMPLETION);
    cookie = nbd_aio_pread_structured (h, r->buf2, sizeof r->buf2, 196608,
                                       ch, co, 0);
    if (cookie == -1)
      return failed (r, "nbd_aio_pread_structured");
    /* As libnbd, the cookie is returned even if sending the request
     * killed the connection; the command then fails with ENOTCONN, the
     * errno of every command lost with the connection.
     */
    dead_at_issue = nbd_aio_is_dead (h) == 1;
    for (;;) {
      int done = nbd_aio_command_completed (h, cookie);
      if (done == -1)
        return failed_with (r, "nbd_aio_command_completed",
                            dead_at_issue ? ENOTCONN : 0);
      if (done)
        break;
      if (nbd_poll (h, -1) == -1)
        return failed (r, "nbd_poll");
    }
    for (size_t i = 0; i < sizeof r->buf2; i++)
      if (r->buf2[i] != 0x55) {
        problem (r, "nbd_aio_pread_structured: wrong data at %zu", i);
        break;
      }
  }

  {
    nbd_extent64_callback e = CLOSURE (r, CL_EXTENT64, extent64_cb);
    PASS (r, CL_EXTENT64);
    if (!TRY (r, nbd_block_status_64 (h, EXPORT_SIZE, 0, e, 0)))
      return false;
    if (r->extents64_ok != 1)
      problem (r, "nbd_block_status_64: wrong map");
  }
  {
    nbd_extent_callback e = CLOSURE (r, CL_EXTENT, extent_cb);
    PASS (r, CL_EXTENT);
    if (!TRY (r, nbd_block_status (h, EXPORT_SIZE - 65536, 65536, e, 0)))
      return false;
    if (r->extents_ok != 1)
      problem (r, "nbd_block_status: wrong map");
  }
  if (!TRY (r, nbd_shutdown (h, 0)))
    return false;
  return true;
}

/* A handle made before the runs, for clear_last_error. */
static struct nbd_handle *spare;

/* The library keeps the thread's last error message until the next
 * error: give it a new one, made outside the counted part, so that the
 * one the run left behind is freed.
 */
static void
clear_last_error (void)
{
  REQUIRE (nbd_get_size (spare) == -1, "nbd_get_size on a new handle");
}

/* Runs the scenario with allocation nth failing (0: none); returns
 * whether the failing allocation was reached.
 */
/* How allocations fail in a run. */
enum mode {
  WARM_UP,                      /* none, and what is left is not checked */
  NONE,                         /* none */
  ONLY_NTH,                     /* the nth, then memory is there again */
  FROM_NTH,                     /* the nth and all later ones */
};

static bool
run_once (struct run *r, enum mode mode, unsigned long nth)
{
  struct nbd_handle *h;
  char leaks[2048], where[160];
  size_t nr_leaks;
  void *frames[FAILMALLOC_FRAMES];
  int nframes = 0;
  bool fired;
  static const char *const names[NR_CLOSURES] = {
    "list", "context", "chunk", "completion", "extent64", "extent", "debug",
  };

  memset (r, 0, sizeof *r);
  r->nth = nth;
  for (int i = 0; i < NR_CLOSURES; i++)
    r->cl[i].name = names[i];
  current = r;

  failmalloc_begin (mode == ONLY_NTH || mode == FROM_NTH ? nth : 0,
                    mode == FROM_NTH);
  h = nbd_create ();
  if (h == NULL)
    failed (r, "nbd_create");
  else {
    r->completed = scenario (r, h);
    nbd_close (h);
  }
  r->allocations = failmalloc_count ();
  failmalloc_end ();
  clear_last_error ();
  fired = failmalloc_fired (frames, &nframes);

  for (int i = 0; i < NR_CLOSURES; i++) {
    struct closure_log *c = &r->cl[i];
    if (c->frees != (c->passed ? 1 : 0))
      problem (r, "the %s closure was freed %d times", c->name, c->frees);
    if (c->called_after_free)
      problem (r, "the %s closure was called after its free", c->name);
  }
  nr_leaks = failmalloc_leaks (leaks, sizeof leaks);
  if (nr_leaks && mode != WARM_UP)
    problem (r, "%zu blocks leaked:\n%s", nr_leaks, leaks);
  if (!fired && !r->completed)
    problem (r, "the run failed without an allocation failure");

  if (verbose)
    fprintf (stderr, "%s: allocation %lu%s of %lu failing: %s%s%s\n", PROG, nth,
             mode == FROM_NTH ? " and later" : "", r->allocations,
             fired ? "" : "not reached, ",
             r->failed_call ? r->failed_call : "no call failed",
             r->failed_call ? r->failed_msg : "");
  if (r->problem[0] || (verbose && fired)) {
    if (r->problem[0])
      FAIL ("allocation %lu%s of %lu failing: %s", nth,
            mode == FROM_NTH ? " and later" : "", r->allocations, r->problem);
    if (fired) {
      fprintf (stderr, "  the failed allocation:\n");
      for (int i = 1; i < nframes; i++) {
        failmalloc_describe (frames[i], where, sizeof where);
        fprintf (stderr, "    %s\n", where);
      }
    }
  }
  return fired;
}

/* Runs the scenario with allocation 1, 2, 3 ... failing until the
 * failing allocation is not reached.
 */
static void
sweep (struct run *r, enum mode mode)
{
  unsigned long failed_calls = 0, absorbed = 0;
  double t0 = monotonic_seconds ();

  for (unsigned long nth = 1; run_once (r, mode, nth); nth++) {
    if (r->failed_call)
      failed_calls++;
    else
      absorbed++;
  }
  fprintf (stderr, "%s: %lu runs with %s: %lu failed a call with ENOMEM, "
           "%lu were absorbed (the calls succeeded with right results); "
           "%.1f s\n", PROG, failed_calls + absorbed,
           mode == ONLY_NTH ? "one allocation failing"
           : "every allocation failing from one on", failed_calls, absorbed,
           monotonic_seconds () - t0);
}

static void
cleanup (void)
{
  char cmd[200];

  server_stop (&srv);
  snprintf (cmd, sizeof cmd, "rm -rf '%s'", pskdir);
  if (system (cmd) != 0)
    fprintf (stderr, "%s: could not remove %s\n", PROG, pskdir);
}

int
main (void)
{
  struct run *r = calloc (1, sizeof *r);
  struct nbd_handle *h;
  bool tls;

  verbose = getenv ("FAILMALLOC_VERBOSE") != NULL;
  if (!FAILMALLOC_AVAILABLE) {
    fprintf (stderr, "%s: the sanitizers own malloc: skipped\n", PROG);
    return 77;
  }
  h = nbd_create ();
  REQUIRE (h != NULL, "nbd_create");
  tls = nbd_supports_tls (h) == 1;
  nbd_close (h);
  if (!tls || !have_program ("psktool") || !have_program ("nbdkit")
      || system ("nbdkit --dump-config 2>/dev/null | grep -q '^tls=yes'") != 0) {
    fprintf (stderr, "%s: no TLS-PSK (library, nbdkit or psktool): skipped\n",
             PROG);
    return 77;
  }

  {
    char cmd[512];
    REQUIRE (mkdtemp (pskdir) != NULL, "mkdtemp");
    atexit (cleanup);
    snprintf (pskfile, sizeof pskfile, "%s/keys.psk", pskdir);
    snprintf (cmd, sizeof cmd, "psktool -u alice -p '%s' >/dev/null", pskfile);
    REQUIRE (system (cmd) == 0, "psktool");
    REQUIRE (start_nbdkit (&srv, "--log=null", "--tls=require",
                           "--tls-psk", pskfile, "data",
                           "data=@0x10000 1 2 3 4 @0x30000 (0x55)*65536",
                           "size=1M", NULL) == 0, "nbdkit");
    REQUIRE (server_wait_accepting (&srv) == 0, "nbdkit");
  }

  /* GMP (under GnuTLS's key exchange) aborts the process when an
   * allocation fails, by design: nobody can handle that, so its own
   * allocations are left alone.
   */
  failmalloc_spare ("libgmp.so");
  spare = nbd_create ();
  REQUIRE (spare != NULL, "nbd_create");
  /* Warm-up: what GnuTLS and the C library allocate once per process or
   * per thread (GnuTLS keeps a random generator state per thread until
   * the process ends) is allocated here, outside any counted run.
   */
  run_once (r, WARM_UP, 0);
  REQUIRE (r->completed && !r->problem[0], "the scenario fails without "
           "allocation failures: %s (%s)", r->failed_msg, r->problem);
  /* The reference run: no failure, nothing left behind. */
  run_once (r, NONE, 0);
  REQUIRE (r->completed && !r->problem[0], "the scenario fails without "
           "allocation failures: %s %s", r->problem, r->failed_msg);
  if (r->allocations == 0) {
    /* valgrind replaces malloc in the program too, unless told not to
     * (make check-valgrind does: --soname-synonyms=somalloc=nouserintercepts).
     */
    fprintf (stderr, "%s: the allocations do not go through failmalloc.c "
             "(valgrind?): skipped\n", PROG);
    nbd_close (spare);
    free (r);
    return 77;
  }
  fprintf (stderr, "%s: the scenario makes %lu allocations\n", PROG,
           r->allocations);

  sweep (r, ONLY_NTH);
  sweep (r, FROM_NTH);
  nbd_close (spare);
  free (r);
  return check_status (PROG);
}
