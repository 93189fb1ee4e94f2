/* Helpers for the conformance probes.
 *
 * A probe is one binary, built against this project's <libnbd.h> but
 * linked without an rpath, that the driver (differ.sh) runs twice: on
 * Debian's libnbd 1.14 and on ours, LD_LIBRARY_PATH choosing which.  It
 * prints one line per observation on stdout; the driver compares the two
 * outputs line by line.  Two kinds of line:
 *
 *   say ("key", "fmt", ...)         "key: value"
 *     must be the same on both libraries;
 *
 *   want ("key", "expected", "fmt", ...)  "key:<TAB>value [want expected]"
 *     for calls newer than 1.14 (looked up with dlsym, absent there) and
 *     for behaviour where 1.14 is known to differ from later upstream:
 *     only our library is held to the expected value.  Every call site
 *     carries a comment naming the man page sentence (or the upstream
 *     fix) that the expected value comes from.
 *
 * Calls that 1.14 does not have must never be referenced directly:
 * the binary would not load there (missing symbol version).  Use NEWER.
 *
 * The probe checks, before anything else, that the libnbd.so.0 it has
 * mapped is the one the driver asked for (CONFORMANCE_LIB), so a run
 * can never silently test the wrong library.
 */
#ifndef CONFORMANCE_PROBE_H
#define CONFORMANCE_PROBE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

/* Not every probe uses every helper. */
#pragma GCC diagnostic ignored "-Wunused-function"

#include "../server.h"

/* A call newer than 1.14: NULL there.  Usage:
 *   int (*set_name) (struct nbd_handle *, const char *) = NEWER (nbd_set_socket_activation_name);
 */
#define NEWER(fn) ((__typeof__ (&fn)) dlsym (RTLD_DEFAULT, #fn))

static void
probe_fail (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fprintf (stderr, "probe: ");
  vfprintf (stderr, fmt, ap);
  fputc ('\n', stderr);
  va_end (ap);
  exit (99);
}

/* ---- which library is mapped ---- */

static void
check_mapped_library (void)
{
  const char *wanted = getenv ("CONFORMANCE_LIB");
  char want_real[PATH_MAX], line[PATH_MAX + 256], found[PATH_MAX] = "";
  FILE *fp;

  if (!wanted)
    probe_fail ("CONFORMANCE_LIB is not set: run me through differ.sh");
  if (!realpath (wanted, want_real))
    probe_fail ("%s: %s", wanted, strerror (errno));
  fp = fopen ("/proc/self/maps", "r");
  if (!fp)
    probe_fail ("/proc/self/maps: %s", strerror (errno));
  while (fgets (line, sizeof line, fp)) {
    char *path = strchr (line, '/');
    if (!path || !strstr (path, "/libnbd.so"))
      continue;
    path[strcspn (path, "\n")] = 0;
    if (!realpath (path, found))
      snprintf (found, sizeof found, "%s", path);
    break;
  }
  fclose (fp);
  if (!found[0])
    probe_fail ("no libnbd.so is mapped");
  if (strcmp (found, want_real) != 0)
    probe_fail ("mapped %s, expected %s", found, want_real);
  fprintf (stderr, "probe: running on %s\n", found);
}

/* ---- output ---- */

/* The observation being made, printed as "KEY: hang" if the watchdog
 * fires while it is in progress.
 */
static char current_key[256] = "start";
static unsigned watchdog_seconds = 8;

static void
watchdog_fired (int sig)
{
  char buf[320];
  int n;
  (void) sig;
  n = snprintf (buf, sizeof buf, "%s: hang (no answer in %u s)\n",
                current_key, watchdog_seconds);
  /* Nothing to do about a failed write here: the driver sees the gap. */
  n = write (STDOUT_FILENO, buf, n);
  _exit (0);
}

/* Announce the next observation and (re)arm the watchdog for it: a call
 * that hangs becomes a "hang" line and the probe ends, so the driver
 * reports it instead of waiting forever.
 */
static void
step (const char *key)
{
  snprintf (current_key, sizeof current_key, "%s", key);
  alarm (watchdog_seconds);
}

static void __attribute__ ((format (printf, 2, 3)))
say (const char *key, const char *fmt, ...)
{
  va_list ap;
  printf ("%s: ", key);
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  putchar ('\n');
  fflush (stdout);
}

static void __attribute__ ((format (printf, 3, 4)))
want (const char *key, const char *expected, const char *fmt, ...)
{
  va_list ap;
  /* The tab marks where the key ends, for the driver. */
  printf ("%s:\t", key);
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  printf (" [want %s]\n", expected);
  fflush (stdout);
}

/* True on the run against Debian's 1.14 (the driver says which run is
 * which).  Only for behaviour 1.14 cannot even be observed on (it
 * deadlocks or crashes where later upstream fails cleanly): the caller
 * then prints its want lines as "not observed on 1.14".
 */
static bool
reference_run (void)
{
  const char *role = getenv ("CONFORMANCE_ROLE");
  return role && strcmp (role, "reference") == 0;
}

/* "0", "1", or "-1 EINVAL": a return value with errno when it failed. */
static const char *
rv (int64_t r)
{
  static __thread char buf[8][96];
  static __thread int slot;
  char *b = buf[slot++ % 8];
  if (r == -1) {
    int e = nbd_get_errno ();
    snprintf (b, 96, "-1 %s", e ? strerrorname_np (e) : "errno=0");
  }
  else
    snprintf (b, 96, "%" PRIi64, r);
  return b;
}

/* The handle's state, as the nbd_aio_is_* calls see it. */
static const char *
state_of (struct nbd_handle *h)
{
  if (nbd_aio_is_dead (h) == 1) return "dead";
  if (nbd_aio_is_closed (h) == 1) return "closed";
  if (nbd_aio_is_processing (h) == 1) return "processing";
  if (nbd_aio_is_ready (h) == 1) return "ready";
  if (nbd_aio_is_negotiating (h) == 1) return "negotiating";
  if (nbd_aio_is_connecting (h) == 1) return "connecting";
  if (nbd_aio_is_created (h) == 1) return "created";
  return "unknown";
}

static double
now_seconds (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct nbd_handle *
new_handle (void)
{
  struct nbd_handle *h = nbd_create ();
  if (!h)
    probe_fail ("nbd_create: %s", nbd_get_error ());
  return h;
}

static void
probe_begin (void)
{
  struct sigaction sa = { .sa_handler = watchdog_fired };
  const char *w = getenv ("CONFORMANCE_WATCHDOG");

  check_mapped_library ();
  if (w && atoi (w) > 0)
    watchdog_seconds = atoi (w);
  sigaction (SIGALRM, &sa, NULL);
  signal (SIGPIPE, SIG_IGN);
  setvbuf (stdout, NULL, _IOLBF, 0);
}

/* Runs one group of observations in a child process, so that a hang
 * (cut short by the watchdog) or a crash in it is itself one line and
 * the groups after it are still observed.
 */
static void
section (const char *name, void (*fn) (void))
{
  pid_t pid;
  int status;

  fflush (stdout);
  pid = fork ();
  if (pid == -1)
    probe_fail ("fork: %s", strerror (errno));
  if (pid == 0) {
    snprintf (current_key, sizeof current_key, "%s", name);
    fn ();
    fflush (stdout);
    _exit (0);
  }
  if (waitpid (pid, &status, 0) == -1)
    probe_fail ("waitpid: %s", strerror (errno));
  alarm (0);
  if (WIFSIGNALED (status))
    say (name, "crashed (signal %s)", sigabbrev_np (WTERMSIG (status)) ?: "?");
  else if (WEXITSTATUS (status) != 0)
    say (name, "exited with status %d", WEXITSTATUS (status));
}

/* ---- servers ---- */

/* nbdkit on a unix socket with extra arguments (NULL-terminated list,
 * filters and plugin included); the probe is skipped (77) without it.
 */
static void
start_nbdkit (struct server *s, const char *const *args)
{
  const char *argv[40] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID" };
  size_t n = 6;
  while (*args && n < 39)
    argv[n++] = *args++;
  argv[n] = NULL;
  if (server_start (s, argv) == -1) {
    fprintf (stderr, "probe: nbdkit did not start: skipping\n");
    exit (77);
  }
}

/* A scripted server written in the probe itself, for byte sequences no
 * real server sends: a child process listens on a unix socket in a
 * fresh directory, serves one connection with script(fd), and reports
 * what it saw on a pipe (read with raw_server_report).
 */
struct raw_server {
  struct server s;
  int report_fd;                /* parent's end */
};

static int raw_report_fd = -1;  /* child's end */

static void __attribute__ ((format (printf, 1, 2)))
raw_report (const char *fmt, ...)
{
  char buf[256];
  va_list ap;
  int n;
  /* Truncated to fit: reports are short. */
  va_start (ap, fmt);
  n = vsnprintf (buf, sizeof buf - 1, fmt, ap);
  va_end (ap);
  if (n < 0)
    return;
  if (n > (int) sizeof buf - 2)
    n = sizeof buf - 2;
  buf[n++] = '\n';
  /* A lost report shows up as a missing observation. */
  n = write (raw_report_fd, buf, n);
  (void) n;
}

static void
raw_server_start (struct raw_server *r, void (*script) (int fd))
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int pipefd[2], lfd;

  memset (r, 0, sizeof *r);
  strcpy (r->s.dir, "/tmp/libnbd-conf-XXXXXX");
  if (!mkdtemp (r->s.dir))
    probe_fail ("mkdtemp: %s", strerror (errno));
  snprintf (r->s.sock, sizeof r->s.sock, "%s/sock", r->s.dir);
  if (strlen (r->s.sock) >= sizeof addr.sun_path)
    probe_fail ("socket path too long: %s", r->s.sock);
  memcpy (addr.sun_path, r->s.sock, strlen (r->s.sock) + 1);
  lfd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd == -1 || bind (lfd, (struct sockaddr *) &addr, sizeof addr) == -1 ||
      listen (lfd, 1) == -1)
    probe_fail ("raw server socket: %s", strerror (errno));
  if (pipe2 (pipefd, O_CLOEXEC) == -1)
    probe_fail ("pipe: %s", strerror (errno));
  fflush (stdout);
  r->s.pid = fork ();
  if (r->s.pid == -1)
    probe_fail ("fork: %s", strerror (errno));
  if (r->s.pid == 0) {
    int fd;
    alarm (30);
    close (pipefd[0]);
    raw_report_fd = pipefd[1];
    fd = accept (lfd, NULL, NULL);
    if (fd == -1)
      _exit (1);
    script (fd);
    _exit (0);
  }
  close (lfd);
  close (pipefd[1]);
  r->report_fd = pipefd[0];
}

/* Everything the raw server reported, once it has exited (or after
 * the watchdog); kills it first if kill_first.
 */
static const char *
raw_server_report (struct raw_server *r, bool kill_first)
{
  static char buf[4096];
  size_t n = 0;
  ssize_t k;

  if (kill_first && r->s.pid > 0)
    kill (r->s.pid, SIGKILL);
  while (n < sizeof buf - 1 &&
         (k = read (r->report_fd, buf + n, sizeof buf - 1 - n)) > 0)
    n += k;
  buf[n] = 0;
  while (n > 0 && buf[n - 1] == '\n')
    buf[--n] = 0;
  for (size_t i = 0; i < n; i++)
    if (buf[i] == '\n')
      buf[i] = ';';
  return buf;
}

static void
raw_server_stop (struct raw_server *r)
{
  if (r->s.pid > 0)
    kill (r->s.pid, SIGKILL);
  server_stop (&r->s);
  if (r->report_fd > 0)
    close (r->report_fd);
  r->report_fd = -1;
}

/* Byte helpers for the raw servers. */
static void
put_be (uint8_t *p, uint64_t v, int bytes)
{
  for (int i = bytes - 1; i >= 0; i--, v >>= 8)
    p[i] = v & 0xff;
}

static uint64_t
get_be (const uint8_t *p, int bytes)
{
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++)
    v = (v << 8) | p[i];
  return v;
}

static bool
read_all (int fd, void *buf, size_t len)
{
  uint8_t *p = buf;
  while (len) {
    ssize_t k = read (fd, p, len);
    if (k <= 0)
      return false;
    p += k;
    len -= k;
  }
  return true;
}

static void
write_all (int fd, const void *buf, size_t len)
{
  const uint8_t *p = buf;
  while (len) {
    ssize_t k = write (fd, p, len);
    if (k <= 0)
      return;
    p += k;
    len -= k;
  }
}

/* The oldstyle greeting: magic, size, flags (HAS_FLAGS | SEND_FLUSH),
 * 124 bytes of zeroes.
 */
static void
send_oldstyle_greeting (int fd, uint64_t size)
{
  uint8_t g[152] = { 0 };
  memcpy (g, "NBDMAGIC", 8);
  put_be (g + 8, UINT64_C (0x00420281861253), 8);
  put_be (g + 16, size, 8);
  put_be (g + 24, 1 | 4, 4);
  write_all (fd, g, sizeof g);
}

/* Reads one 28-byte simple request; false at EOF. */
struct raw_request {
  uint16_t flags, type;
  uint64_t cookie, offset;
  uint32_t count;
};

static bool
read_request (int fd, struct raw_request *rq)
{
  uint8_t b[28];
  if (!read_all (fd, b, sizeof b))
    return false;
  rq->flags = get_be (b + 4, 2);
  rq->type = get_be (b + 6, 2);
  rq->cookie = get_be (b + 8, 8);
  rq->offset = get_be (b + 16, 8);
  rq->count = get_be (b + 24, 4);
  return true;
}

static void
simple_reply_header (uint8_t *b, uint32_t error, uint64_t cookie)
{
  put_be (b, 0x67446698, 4);
  put_be (b + 4, error, 4);
  put_be (b + 8, cookie, 8);
}

#endif /* CONFORMANCE_PROBE_H */
