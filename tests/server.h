/* Start and stop an NBD server for a test: on a unix socket in a fresh
 * temporary directory, killed by PID at the end.
 *
 *   struct server s;
 *   const char *argv[] = { "nbdkit", "-U", "$SOCK", "-P", "$PID", "memory", "1M", NULL };
 *   if (server_start (&s, argv) == -1) exit (77);   // skip: server missing
 *   ... nbd_connect_unix (h, s.sock) ...
 *   server_stop (&s);
 *
 * "$SOCK", "$PID" and "$DIR" in argv are replaced by the socket path, the
 * pid file path and the directory.  The server counts as started once
 * the socket (if "$SOCK" was used) and the pid file (if "$PID" was used)
 * exist.
 *
 * For a TCP server, "$PORT" is replaced by a free port on 127.0.0.1,
 * left in s.port; "$PID" is then needed (the server must write its pid
 * file once it listens, as nbdkit does).
 */
#ifndef TESTS_SERVER_H
#define TESTS_SERVER_H

#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <libnbd.h>

struct server {
  pid_t pid;
  char dir[64];
  char sock[128];
  char pidfile[128];
  char port[16];                /* for "$PORT" */
};

static inline int free_loopback_port (void);

/* Path of the project's own test server, built beside the tests. */
static inline const char *
test_server_path (void)
{
  const char *d = getenv ("abs_top_builddir");
  static char path[4096];
  snprintf (path, sizeof path, "%s/tests/nbd-test-server", d ? d : ".");
  return path;
}

static inline int
server_start (struct server *s, const char *const *argv_template)
{
  char *argv[64];
  bool want_sock = false, want_pidfile = false, want_port = false;
  size_t n = 0;
  struct timespec ts = { 0, 10 * 1000 * 1000 };

  memset (s, 0, sizeof *s);
  strcpy (s->dir, "/tmp/libnbd-test-XXXXXX");
  if (!mkdtemp (s->dir)) {
    perror ("mkdtemp");
    return -1;
  }
  snprintf (s->sock, sizeof s->sock, "%s/sock", s->dir);
  snprintf (s->pidfile, sizeof s->pidfile, "%s/pid", s->dir);
  for (; argv_template[n] && n < 63; n++) {
    const char *a = argv_template[n];
    if (strcmp (a, "$SOCK") == 0) {
      argv[n] = s->sock;
      want_sock = true;
    }
    else if (strcmp (a, "$PID") == 0) {
      argv[n] = s->pidfile;
      want_pidfile = true;
    }
    else if (strcmp (a, "$PORT") == 0) {
      argv[n] = s->port;
      want_port = true;
    }
    else if (strcmp (a, "$DIR") == 0)
      argv[n] = s->dir;
    else
      argv[n] = (char *) a;
  }
  argv[n] = NULL;
  if (want_port && !want_pidfile) {
    fprintf (stderr, "server_start: \"$PORT\" without \"$PID\": "
             "no way to tell when the server listens\n");
    return -1;
  }

  /* A port found free can be taken by another program before the server
   * binds it; the server then exits, and another port is tried.
   */
  for (int attempt = 0; attempt < (want_port ? 5 : 1); attempt++) {
    bool exited = false;

    if (want_port) {
      int port = free_loopback_port ();
      if (port < 0) {
        perror ("free_loopback_port");
        return -1;
      }
      snprintf (s->port, sizeof s->port, "%d", port);
    }
    s->pid = fork ();
    if (s->pid == -1) {
      perror ("fork");
      return -1;
    }
    if (s->pid == 0) {
      execvp (argv[0], argv);
      _exit (127);
    }
    /* Up to 10 seconds for the socket and pid file to appear. */
    for (int i = 0; i < 1000 && !exited; i++) {
      struct stat st;
      int status;
      if ((!want_sock || stat (s->sock, &st) == 0)
          && (!want_pidfile || stat (s->pidfile, &st) == 0))
        return 0;
      if (waitpid (s->pid, &status, WNOHANG) == s->pid) {
        fprintf (stderr, "server %s exited before listening%s%s\n", argv[0],
                 want_port ? " on port " : "", s->port);
        s->pid = 0;
        exited = true;
      }
      else
        nanosleep (&ts, NULL);
    }
    if (!exited) {
      fprintf (stderr, "server %s did not start\n", argv[0]);
      kill (s->pid, SIGKILL);
      waitpid (s->pid, NULL, 0);
      s->pid = 0;
      return -1;
    }
  }
  return -1;
}

/* Start the project's test server on "$SOCK" with pid file "$PID" and
 * the extra arguments args (NULL-terminated); returns as server_start.
 */
static inline int
test_server_start (struct server *s, const char *const *args)
{
  const char *argv[32] = { test_server_path (), "--unix", "$SOCK",
                           "--pidfile", "$PID" };
  size_t n = 5;

  while (*args && n < 31)
    argv[n++] = *args++;
  argv[n] = NULL;
  return server_start (s, argv);
}

/* test_server_start, or exit: 77 (skip) if the test server is not
 * built, failure if it does not start.  prog names the test.
 */
static inline void
start_test_server (struct server *s, const char *prog,
                   const char *const *args)
{
  if (access (test_server_path (), X_OK) != 0) {
    fprintf (stderr, "%s: %s not built: skipping\n", prog, test_server_path ());
    exit (77);
  }
  if (test_server_start (s, args) == -1) {
    fprintf (stderr, "%s: cannot start %s\n", prog, test_server_path ());
    exit (EXIT_FAILURE);
  }
}

/* For servers that accept more than one connection: the socket file
 * appears at bind(), before listen(), so wait until a connect succeeds.
 * (Do not use it with one-shot servers: the probe is a connection.)
 */
static inline int
socket_wait_accepting (const char *path)
{
  struct timespec ts = { 0, 10 * 1000 * 1000 };
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  size_t len = strlen (path);

  if (len >= sizeof addr.sun_path)
    return -1;
  memcpy (addr.sun_path, path, len + 1);
  for (int i = 0; i < 1000; i++) {
    int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r;
    if (fd == -1)
      return -1;
    r = connect (fd, (struct sockaddr *) &addr, sizeof addr);
    close (fd);
    if (r == 0)
      return 0;
    nanosleep (&ts, NULL);
  }
  fprintf (stderr, "server never accepted connections on %s\n", path);
  return -1;
}

static inline int
server_wait_accepting (struct server *s)
{
  return socket_wait_accepting (s->sock);
}

static inline void
server_stop (struct server *s)
{
  char cmd[256];

  if (s->pid > 0) {
    kill (s->pid, SIGTERM);
    waitpid (s->pid, NULL, 0);
    s->pid = 0;
  }
  if (s->dir[0]) {
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", s->dir);
    if (system (cmd) != 0)
      fprintf (stderr, "could not remove %s\n", s->dir);
    s->dir[0] = 0;
  }
}

/* A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0,
 * read back, released), or -1.
 */
static inline int
free_loopback_port (void)
{
  struct sockaddr_in sin = { .sin_family = AF_INET };
  socklen_t len = sizeof sin;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

  sin.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (fd >= 0 && bind (fd, (struct sockaddr *) &sin, sizeof sin) == 0
      && getsockname (fd, (struct sockaddr *) &sin, &len) == 0)
    port = ntohs (sin.sin_port);
  if (fd >= 0)
    close (fd);
  return port;
}

/* nbdkit "memory 1M" requiring TLS with a pre-shared key for user
 * "alice", written by psktool to pskfile.  0 started; 1 if this library,
 * nbdkit or psktool cannot do TLS-PSK (the caller skips); -1 failure.
 */
static inline int
start_nbdkit_psk (struct server *s, const char *pskfile)
{
  struct nbd_handle *h = nbd_create ();
  bool tls = h && nbd_supports_tls (h) == 1;
  char cmd[512];

  nbd_close (h);
  if (!tls || system ("command -v psktool >/dev/null 2>&1") != 0
      || system ("nbdkit --dump-config 2>/dev/null | grep -q '^tls=yes'") != 0)
    return 1;
  snprintf (cmd, sizeof cmd, "psktool -u alice -p '%s' >/dev/null", pskfile);
  if (system (cmd) != 0)
    return -1;
  {
    const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                           "--tls=require", "--tls-psk", pskfile,
                           "memory", "1M", NULL };
    if (server_start (s, argv) == -1)
      return -1;
  }
  return server_wait_accepting (s);
}

#endif
