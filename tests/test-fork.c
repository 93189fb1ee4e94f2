/* fork(2) while other threads are inside blocking calls on a handle: the
 * child (which has only the forking thread) can create a new handle,
 * connect and read, and the parent's calls finish as if nothing
 * happened.
 *
 *  1. Two threads read from one handle on an nbdkit whose reads take
 *     0.8 s: one polls the socket with the handle lock released (the
 *     leader), the other sleeps on the handle's condition variable (a
 *     follower).  The main thread forks while both are waiting.
 *  2. A thread is in nbd_connect_unix, retrying a socket that does not
 *     exist (the connect timeout): it holds the handle lock while it
 *     sleeps between attempts.  The main thread forks then.
 *
 *  3. The child calls nbd_ext_cancel on the handle it inherited (as an
 *     inherited signal handler might): the parent's connection, which
 *     the child's copy shares, must live on.
 *
 * In cases 1 and 2 the child makes a new handle, connects to nbdkit, reads
 * and checks the data, also over TLS (a pre-shared key) when nbdkit and
 * psktool can do that, and exits; the parent checks the child's status
 * and its own threads' results.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libnbd-ext.h>

#include "hs-helpers.h"

#define PROG "test-fork"
#define LEN 4096

static struct server plain, psk;
static bool have_psk;
static char pskfile[128];

/* What the parent writes at the start of the export, for everyone to
 * read back.
 */
static char pattern[LEN];

static void
cleanup (void)
{
  server_stop (&plain);
  server_stop (&psk);
}

/* ---- The child ---- */

/* New handle, connect, read, compare: NULL on success, else what broke. */
static const char *
child_read (const char *sock, bool tls, char *why, size_t len)
{
  struct nbd_handle *h = nbd_create ();
  static char buf[LEN];

  if (!h)
    return snprintf (why, len, "nbd_create: %s", nbd_get_error ()), why;
  if (tls && (nbd_set_tls (h, LIBNBD_TLS_REQUIRE) == -1
              || nbd_set_tls_username (h, "alice") == -1
              || nbd_set_tls_psk_file (h, pskfile) == -1)) {
    snprintf (why, len, "TLS settings: %s", nbd_get_error ());
    nbd_close (h);
    return why;
  }
  if (nbd_connect_unix (h, sock) == -1) {
    snprintf (why, len, "nbd_connect_unix%s: %s", tls ? " (TLS)" : "",
              nbd_get_error ());
    nbd_close (h);
    return why;
  }
  memset (buf, 0, sizeof buf);
  if (nbd_pread (h, buf, sizeof buf, 0, 0) == -1) {
    snprintf (why, len, "nbd_pread%s: %s", tls ? " (TLS)" : "", nbd_get_error ());
    nbd_close (h);
    return why;
  }
  if (tls ? nbd_get_tls_negotiated (h) != 1
      : memcmp (buf, pattern, sizeof buf) != 0) {
    snprintf (why, len, tls ? "TLS not negotiated" : "wrong data read");
    nbd_close (h);
    return why;
  }
  if (nbd_shutdown (h, 0) == -1) {
    snprintf (why, len, "nbd_shutdown: %s", nbd_get_error ());
    nbd_close (h);
    return why;
  }
  nbd_close (h);
  return NULL;
}

struct child {
  pid_t pid;
  int result_fd;                /* the child writes 'y' here on success */
};

/* Forks a child that does its reads, writes 'y' to a pipe if they all
 * worked (else says why on stderr), and then kills itself: the blocks of
 * the parent's other threads it inherited (their thread-local state) are
 * not its leaks, and no exit-time leak check (valgrind, LeakSanitizer)
 * may count them.
 */
static struct child
fork_reader (const char *what)
{
  struct child c;
  int fds[2];

  REQUIRE (pipe (fds) == 0, "pipe");
  c.pid = fork ();
  REQUIRE (c.pid != -1, "fork");
  if (c.pid == 0) {
    char why[512];
    const char *err;

    close (fds[0]);
    alarm (30);                 /* a hang in the child is a failure too */
    err = child_read (plain.sock, false, why, sizeof why);
    if (!err && have_psk)
      err = child_read (psk.sock, true, why, sizeof why);
    if (err)
      fprintf (stderr, "%s: child [%s]: %s\n", PROG, what, err);
    else if (write (fds[1], "y", 1) != 1)
      fprintf (stderr, "%s: child [%s]: write: %m\n", PROG, what);
    raise (SIGKILL);
  }
  close (fds[1]);
  c.result_fd = fds[0];
  return c;
}

static void
check_child (struct child c, const char *what)
{
  char result = 0;
  int status;

  CHECK (read (c.result_fd, &result, 1) == 1 && result == 'y',
         "[%s] the child did not report success", what);
  close (c.result_fd);
  REQUIRE (waitpid (c.pid, &status, 0) == c.pid, "waitpid");
  CHECK (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL,
         "[%s] the child ended otherwise than by its own SIGKILL (status 0x%x)",
         what, status);
}

/* ---- 1. Fork while threads wait for replies ---- */

struct reader {
  struct nbd_handle *h;
  uint64_t offset;
  int r;
  char err[256];
  char buf[LEN];
};

static void *
read_thread (void *arg)
{
  struct reader *t = arg;

  t->r = nbd_pread (t->h, t->buf, sizeof t->buf, t->offset, 0);
  if (t->r == -1)
    snprintf (t->err, sizeof t->err, "%s", nbd_get_error ());
  return NULL;
}

static void
fork_during_reads (void)
{
  struct nbd_handle *h = new_handle ();
  struct reader t[2] = { { .h = h, .offset = 0 }, { .h = h, .offset = 0 } };
  pthread_t th[2];
  struct child child;
  double t0;

  check_case = "fork while two threads wait for replies";
  REQUIRE (nbd_connect_unix (h, plain.sock) == 0, "connect");
  REQUIRE (nbd_pwrite (h, pattern, sizeof pattern, 0, 0) == 0, "pwrite");
  for (int i = 0; i < 2; i++)
    REQUIRE (pthread_create (&th[i], NULL, read_thread, &t[i]) == 0,
             "pthread_create");
  /* Both requests are out (so both threads are in their wait) well
   * before the server's 0.8 s delay ends.
   */
  t0 = monotonic_seconds ();
  while (nbd_aio_in_flight (h) < 2 && monotonic_seconds () - t0 < 5) {
    struct timespec ts = { 0, 1000000 };
    nanosleep (&ts, NULL);
  }
  CHECK (nbd_aio_in_flight (h) == 2, "%d commands in flight",
         nbd_aio_in_flight (h));

  child = fork_reader (check_case);
  check_child (child, check_case);

  for (int i = 0; i < 2; i++) {
    pthread_join (th[i], NULL);
    CHECK (t[i].r == 0, "thread %d: nbd_pread: %s", i, t[i].err);
    CHECK (t[i].r != 0 || memcmp (t[i].buf, pattern, LEN) == 0,
           "thread %d: wrong data", i);
  }
  CHECK (nbd_shutdown (h, 0) == 0, "nbd_shutdown: %s", nbd_get_error ());
  nbd_close (h);
}

/* ---- 2. Fork while a thread holds the handle lock ---- */

static atomic_bool retrying;

static int
watch_retries (void *user_data, const char *context, const char *msg)
{
  if (strstr (msg, "trying again"))
    atomic_store (&retrying, true);
  return 0;
}

struct connector {
  struct nbd_handle *h;
  const char *path;
  int r, err;
};

static void *
connect_thread (void *arg)
{
  struct connector *c = arg;

  c->r = nbd_connect_unix (c->h, c->path);
  c->err = nbd_get_errno ();
  return NULL;
}

static void
fork_during_connect (void)
{
  struct nbd_handle *h = new_handle ();
  char path[256];
  struct connector c = { .h = h, .path = path };
  pthread_t th;
  struct child child;
  double t0;

  check_case = "fork while a thread retries a connect";
  snprintf (path, sizeof path, "%s/not-there-yet", plain.dir);
  REQUIRE (nbd_set_debug_callback (h, (nbd_debug_callback) {
                                          .callback = watch_retries })
           == 0, "nbd_set_debug_callback");
  REQUIRE (nbd_set_debug (h, true) == 0, "nbd_set_debug");
  REQUIRE (nbd_ext_set_connect_timeout (h, 1500) == 0, "connect timeout");
  REQUIRE (pthread_create (&th, NULL, connect_thread, &c) == 0, "pthread_create");
  t0 = monotonic_seconds ();
  while (!atomic_load (&retrying) && monotonic_seconds () - t0 < 5) {
    struct timespec ts = { 0, 1000000 };
    nanosleep (&ts, NULL);
  }
  CHECK (atomic_load (&retrying), "the connect never retried");

  child = fork_reader (check_case);
  check_child (child, check_case);

  pthread_join (th, NULL);
  CHECK (c.r == -1 && c.err == ETIMEDOUT,
         "nbd_connect_unix returned %d, errno %d (expected ETIMEDOUT)", c.r, c.err);
  nbd_close (h);
}

/* ---- 3. The child cancels its copy of the parent's handle ---- */

static void
child_cancels_inherited (void)
{
  struct nbd_handle *h = nbd_create ();
  char buf[LEN];
  pid_t pid;
  int status;

  check_case = "the child cancels its copy";
  REQUIRE (h != NULL, "nbd_create");
  if (nbd_connect_unix (h, plain.sock) == -1) {
    FAIL ("nbd_connect_unix: %s", nbd_get_error ());
    nbd_close (h);
    return;
  }
  pid = fork ();
  REQUIRE (pid != -1, "fork");
  if (pid == 0) {
    nbd_ext_cancel (h);
    raise (SIGKILL);            /* (as fork_reader: no exit-time checks) */
  }
  REQUIRE (waitpid (pid, &status, 0) == pid, "waitpid");
  CHECK (nbd_pread (h, buf, sizeof buf, 0, 0) == 0,
         "the parent's read failed: %s", nbd_get_error ());
  CHECK (memcmp (buf, pattern, sizeof buf) == 0, "wrong data");
  CHECK (nbd_shutdown (h, 0) == 0, "nbd_shutdown: %s",
         nbd_get_error ());
  nbd_close (h);
  check_case = NULL;
}

int
main (void)
{
  if (!have_program ("nbdkit")) {
    fprintf (stderr, "%s: nbdkit missing: skipped\n", PROG);
    return 77;
  }
  for (size_t i = 0; i < sizeof pattern; i++)
    pattern[i] = (char) (i * 7 + 3);
  atexit (cleanup);
  REQUIRE (start_nbdkit (&plain, "--filter=delay", "memory", "1M",
                         "delay-read=800ms", NULL) == 0, "nbdkit");
  REQUIRE (server_wait_accepting (&plain) == 0, "nbdkit");
  snprintf (pskfile, sizeof pskfile, "%s/keys.psk", plain.dir);
  {
    int r = start_nbdkit_psk (&psk, pskfile);
    REQUIRE (r != -1, "nbdkit with TLS-PSK");
    have_psk = r == 0;
    if (!have_psk)
      fprintf (stderr, "%s: no TLS-PSK: the child reads without TLS only\n", PROG);
  }

  fork_during_reads ();
  fork_during_connect ();
  child_cancels_inherited ();
  return check_status (PROG);
}
