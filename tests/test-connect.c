/* Test every connect transport against real nbdkit servers: Unix
 * socket, TCP (IPv4, IPv6, fallback over addresses, failure), an
 * already connected socket, a subprocess (connect_command),
 * systemd socket activation (and the LISTEN_FDNAMES the server sees),
 * nbd_aio_connect, the subprocess helpers (nbd_kill_subprocess only
 * signals; nbd_close reaps), a script without "#!" run through /bin/sh,
 * and the TLS host name a connection puts in effect.  Skips (77) if
 * nbdkit is not installed.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "libnbd.h"

#include "checks.h"

#define SIZE (1024 * 1024)

static char tmpdir[] = "/tmp/test-connectXXXXXX";
static char sockpath[256];
static pid_t servers[8];
static char pidfiles[8][256];
static int nr_servers;

static void
cleanup (void)
{
  int i;

  for (i = 0; i < nr_servers; ++i) {
    if (servers[i] > 0)
      kill (servers[i], SIGTERM);
    unlink (pidfiles[i]);
  }
  unlink (sockpath);
  rmdir (tmpdir);
}

/* Start a daemonized nbdkit with the given listening arguments; wait for
 * its pidfile.  Returns 0 or -1.
 */
static int
start_nbdkit (const char *listen_args)
{
  char cmd[1024];
  char *pidfile = pidfiles[nr_servers];
  FILE *fp;
  int i, pid = 0;

  snprintf (pidfile, 256, "%s/pid%d", tmpdir, nr_servers);
  snprintf (cmd, sizeof cmd, "nbdkit %s -P %s memory %d",
            listen_args, pidfile, SIZE);
  if (system (cmd) != 0) {
    fprintf (stderr, "could not run: %s\n", cmd);
    return -1;
  }
  for (i = 0; i < 600; ++i) {
    fp = fopen (pidfile, "r");
    if (fp) {
      if (fscanf (fp, "%d", &pid) == 1 && pid > 0) {
        fclose (fp);
        servers[nr_servers++] = pid;
        return 0;
      }
      fclose (fp);
    }
    usleep (50000);
  }
  fprintf (stderr, "nbdkit did not write its pidfile: %s\n", cmd);
  return -1;
}

static int
free_port (int family)
{
  int fd, port = -1;
  struct sockaddr_storage ss;
  socklen_t len;

  fd = socket (family, SOCK_STREAM, 0);
  if (fd == -1)
    return -1;
  memset (&ss, 0, sizeof ss);
  if (family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    len = sizeof *sin;
  }
  else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = in6addr_loopback;
    len = sizeof *sin6;
  }
  if (bind (fd, (struct sockaddr *) &ss, len) == 0 &&
      getsockname (fd, (struct sockaddr *) &ss, &len) == 0)
    port = ntohs (family == AF_INET
                  ? ((struct sockaddr_in *) &ss)->sin_port
                  : ((struct sockaddr_in6 *) &ss)->sin6_port);
  close (fd);
  return port;
}

/* Check a connected handle: size and a write/read round trip. */
static void
check_handle (struct nbd_handle *h, const char *what)
{
  int64_t size;
  char wbuf[512], rbuf[512];

  size = nbd_get_size (h);
  if (size != SIZE) {
    FAIL ("%s: nbd_get_size: %" PRIi64 " (%s)", what, size, nbd_get_error ());
    return;
  }
  memset (wbuf, 0xab, sizeof wbuf);
  if (nbd_pwrite (h, wbuf, sizeof wbuf, 4096, 0) == -1) {
    FAIL ("%s: nbd_pwrite: %s", what, nbd_get_error ());
    return;
  }
  memset (rbuf, 0, sizeof rbuf);
  if (nbd_pread (h, rbuf, sizeof rbuf, 4096, 0) == -1) {
    FAIL ("%s: nbd_pread: %s", what, nbd_get_error ());
    return;
  }
  if (memcmp (wbuf, rbuf, sizeof wbuf) != 0)
    FAIL ("%s: data read back differs", what);
}

/* call (described by what_call) returned r on h: it must have
 * connected, and the connection must work (check_handle).  Closes h.
 */
static void
check_connected (struct nbd_handle *h, int r, const char *what_call,
                 const char *what)
{
  if (r == -1)
    FAIL ("%s: %s", what_call, nbd_get_error ());
  else
    check_handle (h, what);
  nbd_shutdown (h, 0);
  nbd_close (h);
}

static struct nbd_handle *
create (void)
{
  struct nbd_handle *h = nbd_create ();
  if (!h) {
    fprintf (stderr, "nbd_create: %s\n", nbd_get_error ());
    exit (EXIT_FAILURE);
  }
  return h;
}

/* nbd_get_tls_hostname on h must return expected. */
static void
check_tls_hostname (struct nbd_handle *h, const char *expected,
                    const char *what)
{
  char *s = nbd_get_tls_hostname (h);

  if (s == NULL)
    FAIL ("%s: nbd_get_tls_hostname: %s", what, nbd_get_error ());
  else if (strcmp (s, expected) != 0)
    FAIL ("%s: nbd_get_tls_hostname is \"%s\", expected \"%s\"",
          what, s, expected);
  free (s);
}

static void
test_unix (void)
{
  struct nbd_handle *h = create ();
  char longpath[300];
  int r;

  /* A Unix socket has no host name. */
  r = nbd_connect_unix (h, sockpath);
  check_tls_hostname (h, "", "unix");
  check_connected (h, r, "nbd_connect_unix", "unix");

  /* Nonexistent socket. */
  h = create ();
  if (nbd_connect_unix (h, "/nonexistent/sock") != -1)
    FAIL ("nbd_connect_unix to nonexistent socket succeeded");
  else if (nbd_get_errno () != ENOENT)
    FAIL ("nbd_connect_unix nonexistent: errno %d, expected ENOENT",
          nbd_get_errno ());
  nbd_close (h);

  /* Too long. */
  h = create ();
  memset (longpath, 'a', sizeof longpath - 1);
  longpath[sizeof longpath - 1] = '\0';
  if (nbd_connect_unix (h, longpath) != -1)
    FAIL ("nbd_connect_unix with a long path succeeded");
  else if (nbd_get_errno () != ENAMETOOLONG)
    FAIL ("nbd_connect_unix long path: errno %d, expected ENAMETOOLONG",
          nbd_get_errno ());
  nbd_close (h);
}

static void
test_tcp (const char *host, int port, const char *what)
{
  struct nbd_handle *h = create ();
  char portstr[16], call[128];
  int r;

  snprintf (portstr, sizeof portstr, "%d", port);
  snprintf (call, sizeof call, "nbd_connect_tcp %s %s", host, portstr);
  check_tls_hostname (h, "", "before connecting");
  r = nbd_connect_tcp (h, host, portstr);
  /* nbd_get_tls_hostname(3): "the effective TLS hostname": without an
   * override, the host the connection was made to.
   */
  check_tls_hostname (h, host, what);
  check_connected (h, r, call, what);

  /* An override wins over the connection's host. */
  h = create ();
  if (nbd_set_tls_hostname (h, "server.example.com") == -1)
    FAIL ("nbd_set_tls_hostname: %s", nbd_get_error ());
  r = nbd_connect_tcp (h, host, portstr);
  check_tls_hostname (h, "server.example.com", what);
  check_connected (h, r, call, what);
}

static void
test_tcp_refused (void)
{
  struct nbd_handle *h = create ();
  char portstr[16];
  int port = free_port (AF_INET);

  snprintf (portstr, sizeof portstr, "%d", port);
  if (nbd_connect_tcp (h, "127.0.0.1", portstr) != -1)
    FAIL ("nbd_connect_tcp to a closed port succeeded");
  else {
    if (nbd_get_errno () != ECONNREFUSED)
      FAIL ("nbd_connect_tcp closed port: errno %d (%s), expected ECONNREFUSED",
            nbd_get_errno (), nbd_get_error ());
    /* As libnbd: out of addresses, the handle is created again and the
     * connect may be retried.
     */
    if (!nbd_aio_is_created (h))
      FAIL ("handle not back in the created state after a failed connect_tcp: %s",
            nbd_connection_state (h));
    if (nbd_connect_tcp (h, "127.0.0.1", portstr) != -1 || nbd_get_errno () != ECONNREFUSED)
      FAIL ("second nbd_connect_tcp: errno %d (%s)", nbd_get_errno (), nbd_get_error ());
  }
  nbd_close (h);

  h = create ();
  if (nbd_connect_tcp (h, "nonexistent.invalid", "10809") != -1)
    FAIL ("nbd_connect_tcp to an invalid host name succeeded");
  nbd_close (h);
}

static void
test_aio_connect (int port)
{
  struct nbd_handle *h = create ();
  struct sockaddr_in sin;
  int i;

  memset (&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons (port);
  sin.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (nbd_aio_connect (h, (struct sockaddr *) &sin, sizeof sin) == -1) {
    FAIL ("nbd_aio_connect: %s", nbd_get_error ());
    nbd_close (h);
    return;
  }
  for (i = 0; i < 10000 && nbd_aio_is_connecting (h); ++i) {
    if (nbd_poll (h, 1000) == -1) {
      FAIL ("nbd_poll: %s", nbd_get_error ());
      break;
    }
  }
  if (!nbd_aio_is_ready (h))
    FAIL ("nbd_aio_connect: handle not ready (%s)",
          nbd_connection_state (h));
  else
    check_handle (h, "aio_connect");
  nbd_shutdown (h, 0);
  nbd_close (h);
}

static void
test_socket (void)
{
  struct nbd_handle *h = create ();
  struct sockaddr_un sun;
  int fd;

  fd = socket (AF_UNIX, SOCK_STREAM, 0);
  memset (&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  strcpy (sun.sun_path, sockpath);
  if (fd == -1 || connect (fd, (struct sockaddr *) &sun, sizeof sun) == -1) {
    perror ("test_socket: connect");
    failures++;
    nbd_close (h);
    return;
  }
  check_connected (h, nbd_connect_socket (h, fd), "nbd_connect_socket",
                   "socket");

  /* The handle owned and closed the socket. */
  if (fcntl (fd, F_GETFD) != -1)
    FAIL ("nbd_close did not close the socket passed to nbd_connect_socket");
}

/* A call that only sends a signal must not wait for the process. */
static void
check_prompt (double t0, const char *what)
{
  double elapsed = monotonic_seconds () - t0;

  if (elapsed > 5)
    FAIL ("%s took %.1f s", what, elapsed);
}

static bool
process_gone (pid_t pid)
{
  return kill (pid, 0) == -1 && errno == ESRCH;
}

/* h is connected to a subprocess (kind): check the connection, close h
 * and check that the subprocess is gone.
 */
static void
check_subprocess (struct nbd_handle *h, const char *what, const char *kind)
{
  int64_t pid;

  check_handle (h, what);
  pid = nbd_get_subprocess_pid (h);
  if (pid <= 0)
    FAIL ("nbd_get_subprocess_pid: %s", nbd_get_error ());
  nbd_shutdown (h, 0);
  nbd_close (h);
  if (pid > 0 && !process_gone (pid))
    FAIL ("%s subprocess %" PRIi64 " still exists after nbd_close", kind, pid);
}

static void
test_command (void)
{
  struct nbd_handle *h = create ();
  char size[32];
  char *argv[] = { "nbdkit", "-s", "--exit-with-parent",
                   "memory", size, NULL };
  char *empty[] = { NULL };
  int64_t pid;
  double t0;

  snprintf (size, sizeof size, "%d", SIZE);

  if (nbd_get_subprocess_pid (h) != -1 || nbd_get_errno () != ESRCH)
    FAIL ("nbd_get_subprocess_pid without a subprocess did not fail with ESRCH");
  if (nbd_kill_subprocess (h, 0) != -1 || nbd_get_errno () != ESRCH)
    FAIL ("nbd_kill_subprocess without a subprocess did not fail with ESRCH");
  if (nbd_connect_command (h, empty) != -1 || nbd_get_errno () != EINVAL)
    FAIL ("nbd_connect_command with empty argv did not fail with EINVAL");

  if (nbd_connect_command (h, argv) == -1) {
    FAIL ("nbd_connect_command: %s", nbd_get_error ());
    nbd_close (h);
    return;
  }
  check_subprocess (h, "command", "command");

  /* nbd_kill_subprocess only sends the signal and returns: nbdkit -s
   * finishes its connection before acting on SIGTERM, and SIGSTOP does
   * not end the child at all, so waiting would hang.  The child is
   * reaped by nbd_close, after the socket is closed.  The alarm turns a
   * hang into a failure.
   */
  h = create ();
  if (nbd_connect_command (h, argv) == -1) {
    FAIL ("nbd_connect_command: %s", nbd_get_error ());
    nbd_close (h);
    return;
  }
  pid = nbd_get_subprocess_pid (h);
  if (nbd_kill_subprocess (h, -1) != -1 || nbd_get_errno () != EINVAL)
    FAIL ("nbd_kill_subprocess (-1) did not fail with EINVAL");
  alarm (60);
  t0 = monotonic_seconds ();
  if (nbd_kill_subprocess (h, SIGSTOP) == -1)
    FAIL ("nbd_kill_subprocess (SIGSTOP): %s", nbd_get_error ());
  check_prompt (t0, "nbd_kill_subprocess (SIGSTOP)");
  if (pid > 0) {
    int status;
    /* Reports the stop without reaping the child. */
    if (waitpid (pid, &status, WUNTRACED) != pid || !WIFSTOPPED (status))
      FAIL ("the subprocess was not stopped by SIGSTOP");
  }
  if (nbd_get_subprocess_pid (h) != pid)
    FAIL ("nbd_get_subprocess_pid changed after nbd_kill_subprocess");
  if (nbd_kill_subprocess (h, SIGCONT) == -1)
    FAIL ("nbd_kill_subprocess (SIGCONT): %s", nbd_get_error ());
  t0 = monotonic_seconds ();
  if (nbd_kill_subprocess (h, 0) == -1)
    FAIL ("nbd_kill_subprocess (0): %s", nbd_get_error ());
  check_prompt (t0, "nbd_kill_subprocess (0)");
  /* Not reaped yet: the pid still names the (possibly exited) child. */
  if (pid > 0 && process_gone (pid))
    FAIL ("subprocess %" PRIi64 " reaped before nbd_close", pid);
  nbd_close (h);
  alarm (0);
  if (pid > 0 && !process_gone (pid))
    FAIL ("subprocess %" PRIi64 " still exists after nbd_close", pid);

  /* Signal 0 means SIGTERM: a subprocess that dies of it at once (the
   * handshake never completes, so only the aio form is used).
   */
  h = create ();
  {
    char *sleeper[] = { "sleep", "60", NULL };
    if (nbd_aio_connect_command (h, sleeper) == -1)
      FAIL ("nbd_aio_connect_command (sleep): %s", nbd_get_error ());
    else {
      pid = nbd_get_subprocess_pid (h);
      alarm (60);
      if (nbd_kill_subprocess (h, 0) == -1)
        FAIL ("nbd_kill_subprocess (0): %s", nbd_get_error ());
      nbd_close (h);
      h = NULL;
      alarm (0);
      if (pid > 0 && !process_gone (pid))
        FAIL ("subprocess %" PRIi64 " still exists after SIGTERM and "
              "nbd_close", pid);
    }
  }
  nbd_close (h);

  /* A program that does not exist: the connection fails (EOF), and, as
   * libnbd, the child says why on the stderr it inherited.
   */
  h = create ();
  {
    char *bad[] = { "/nonexistent/program", NULL };
    char errpath[300], text[256] = "";
    int saved = dup (STDERR_FILENO), fd;
    ssize_t n;

    snprintf (errpath, sizeof errpath, "%s/child-stderr", tmpdir);
    fd = open (errpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (saved == -1 || fd == -1 || dup2 (fd, STDERR_FILENO) == -1) {
      perror ("redirecting stderr");
      exit (EXIT_FAILURE);
    }
    if (nbd_connect_command (h, bad) != -1)
      FAIL ("nbd_connect_command of a missing program succeeded");
    dup2 (saved, STDERR_FILENO);
    close (saved);
    n = pread (fd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    close (fd);
    unlink (errpath);
    if (strcmp (text, "/nonexistent/program: No such file or directory\n") != 0)
      FAIL ("the child reported \"%s\"", text);
  }
  nbd_close (h);
}

/* Write an executable file in tmpdir; returns its path (static). */
static const char *
write_script (const char *name, const char *text)
{
  static char path[300];
  FILE *fp;

  snprintf (path, sizeof path, "%s/%s", tmpdir, name);
  fp = fopen (path, "w");
  if (fp == NULL || fputs (text, fp) == EOF || fclose (fp) == EOF
      || chmod (path, 0755) == -1) {
    perror (path);
    exit (EXIT_FAILURE);
  }
  return path;
}

/* A script without "#!": execve fails with ENOEXEC, and like execvp the
 * library runs it with /bin/sh, passing the arguments on.
 */
static void
test_command_script (void)
{
  struct nbd_handle *h;
  char size[32];
  const char *script;
  char *argv[] = { NULL, size, NULL };
  const char *oldpath = getenv ("PATH");
  char *newpath;

  snprintf (size, sizeof size, "%d", SIZE);
  script = write_script ("noshebang",
                         "exec nbdkit -s --exit-with-parent memory \"$1\"\n");

  h = create ();
  argv[0] = (char *) script;
  if (nbd_connect_command (h, argv) == -1) {
    FAIL ("nbd_connect_command of a script without #!: %s", nbd_get_error ());
    nbd_close (h);
  }
  else
    check_subprocess (h, "script without #!", "command");

  /* The same found through PATH. */
  if (asprintf (&newpath, "%s:%s", tmpdir, oldpath ? oldpath : "/usr/bin:/bin")
      == -1) {
    perror ("asprintf");
    exit (EXIT_FAILURE);
  }
  setenv ("PATH", newpath, 1);
  h = create ();
  argv[0] = (char *) "noshebang";
  if (nbd_connect_command (h, argv) == -1) {
    FAIL ("nbd_connect_command of a script without #! in PATH: %s",
          nbd_get_error ());
    nbd_close (h);
  }
  else
    check_subprocess (h, "script without #! in PATH", "command");
  if (oldpath)
    setenv ("PATH", oldpath, 1);
  else
    unsetenv ("PATH");
  free (newpath);
  unlink (script);
}

/* Socket activation through a script that records the LISTEN_FDNAMES it
 * was given.  name: set before connecting (after another name, so that
 * "" shows that the empty string clears it), or NULL for the default;
 * the server must see expect_fdnames.
 */
static void
test_sact (const char *name, const char *expect_fdnames)
{
  struct nbd_handle *h = create ();
  char text[1024], record[300], seen[300] = "";
  const char *script;
  char *argv[] = { NULL, NULL };
  FILE *fp;

  snprintf (record, sizeof record, "%s/fdnames", tmpdir);
  unlink (record);
  snprintf (text, sizeof text,
            "#!/bin/sh\n"
            "printf '%%s\\n' \"${LISTEN_FDNAMES-(unset)}\" > '%s'\n"
            "exec nbdkit --exit-with-parent memory %d\n", record, SIZE);
  script = write_script ("sact", text);
  argv[0] = (char *) script;

  if (name && (nbd_set_socket_activation_name (h, "earlier") == -1
               || nbd_set_socket_activation_name (h, name) == -1))
    FAIL ("nbd_set_socket_activation_name: %s", nbd_get_error ());
  if (nbd_connect_systemd_socket_activation (h, argv) == -1) {
    FAIL ("nbd_connect_systemd_socket_activation: %s", nbd_get_error ());
    nbd_close (h);
    return;
  }
  /* As libnbd: the URI names the private socket the server listens on. */
  {
    char *u = nbd_get_uri (h);
    if (u == NULL || strncmp (u, "nbd+unix:///?socket=/", 21) != 0)
      FAIL ("nbd_get_uri after socket activation: %s",
            u ? u : nbd_get_error ());
    free (u);
  }
  check_subprocess (h, name ? "socket activation (named)" : "socket activation",
                    "socket activation");

  fp = fopen (record, "r");
  if (fp == NULL || fgets (seen, sizeof seen, fp) == NULL)
    FAIL ("socket activation: the server left no record of LISTEN_FDNAMES");
  if (fp)
    fclose (fp);
  seen[strcspn (seen, "\n")] = '\0';
  if (strcmp (seen, expect_fdnames) != 0)
    FAIL ("socket activation name %s%s%s: the server saw LISTEN_FDNAMES=%s, "
          "expected %s", name ? "\"" : "", name ? name : "(default)",
          name ? "\"" : "", seen, expect_fdnames);
  unlink (record);
  unlink (script);
}

int
main (void)
{
  int port4, port6 = -1;
  char args[512];
  bool have_ipv6;
  int fd;

  if (system ("nbdkit --version >/dev/null 2>&1") != 0) {
    fprintf (stderr, "%s: nbdkit not found, skipping\n", __FILE__);
    exit (77);
  }
  signal (SIGPIPE, SIG_IGN);

  if (mkdtemp (tmpdir) == NULL) {
    perror ("mkdtemp");
    exit (EXIT_FAILURE);
  }
  atexit (cleanup);
  snprintf (sockpath, sizeof sockpath, "%s/sock", tmpdir);

  snprintf (args, sizeof args, "-U %s", sockpath);
  if (start_nbdkit (args) == -1)
    exit (EXIT_FAILURE);

  port4 = free_port (AF_INET);
  snprintf (args, sizeof args, "-i 127.0.0.1 -p %d", port4);
  if (start_nbdkit (args) == -1)
    exit (EXIT_FAILURE);

  fd = socket (AF_INET6, SOCK_STREAM, 0);
  have_ipv6 = fd >= 0;
  if (fd >= 0)
    close (fd);
  if (have_ipv6)
    port6 = free_port (AF_INET6);
  have_ipv6 = port6 > 0;
  if (have_ipv6) {
    snprintf (args, sizeof args, "-i ::1 -p %d", port6);
    if (start_nbdkit (args) == -1)
      exit (EXIT_FAILURE);
  }
  else
    fprintf (stderr, "IPv6 loopback not available, skipping ::1 tests\n");

  test_unix ();
  test_tcp ("127.0.0.1", port4, "tcp 127.0.0.1");
  /* "localhost" may resolve to ::1 first: then the IPv4 server is only
   * reached by falling back to the next address.
   */
  test_tcp ("localhost", port4, "tcp localhost (IPv4 server)");
  if (have_ipv6) {
    test_tcp ("::1", port6, "tcp ::1");
  }
  test_tcp_refused ();
  test_aio_connect (port4);
  test_socket ();
  test_command ();
  test_command_script ();
  /* nbd_set_socket_activation_name(3): with the empty string (the
   * default) "the name "unknown" will be seen by the server".
   */
  test_sact (NULL, "unknown");
  test_sact ("myname", "myname");
  test_sact ("", "unknown");

  if (check_status (__FILE__) != EXIT_SUCCESS)
    exit (EXIT_FAILURE);
  printf ("%s: all tests passed\n", __FILE__);
  exit (EXIT_SUCCESS);
}
