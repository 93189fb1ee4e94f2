/* nbd+ssh:// and nbds+ssh:// URIs with a stand-in "ssh" first on PATH.
 *
 * The stand-in records its argv, one argument per line.  In "record"
 * mode it then behaves like a careless ssh would if the library got the
 * command line wrong: an -oProxyCommand=CMD (or -o ProxyCommand=CMD)
 * before "--" is run, and the remote command is given to sh -c with nc
 * as a no-op, so an injected option or shell command leaves a file
 * behind.  In "tunnel" mode it drops the ssh options and the server name
 * and runs the remote command locally through sh -c, as sshd would
 * through the user's shell: with nc from netcat-openbsd this is a real
 * tunnel to nbdkit.
 *
 * Skipped (77) without nbdkit or nc.
 */
#include <config.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "checks.h"
#include "server.h"

static char dir[] = "/tmp/test-uri-ssh-XXXXXX";
static char bindir[128], logfile[128], victim[128], pskfile[128];

static const char fake_ssh[] =
  "#!/bin/sh\n"
  "for a in \"${0##*/}\" \"$@\"; do printf '%s\\n' \"$a\"; done > \"$FAKE_SSH_LOG.tmp\"\n"
  "mv \"$FAKE_SSH_LOG.tmp\" \"$FAKE_SSH_LOG\"\n"
  "if [ \"$FAKE_SSH_MODE\" = tunnel ]; then\n"
  "  while [ $# -gt 0 ] && [ \"$1\" != -- ]; do shift; done\n"
  "  shift 2\n"
  /* -N: pass the client's EOF on, so that nbdkit and nc end with it. */
  "  exec sh -c \"nc() { command nc -N \\\"\\$@\\\"; }; $*\"\n"
  "fi\n"
  "while [ $# -gt 0 ] && [ \"$1\" != -- ]; do\n"
  "  case \"$1\" in\n"
  "    -oProxyCommand=*) sh -c \"${1#-oProxyCommand=}\" ;;\n"
  "    -o) case \"$2\" in ProxyCommand=*) sh -c \"${2#ProxyCommand=}\" ;; esac ;;\n"
  "  esac\n"
  "  shift\n"
  "done\n"
  "shift 2\n"
  "sh -c \"nc() { :; }; $*\"\n"
  "exit 1\n";

static void
cleanup (void)
{
  char cmd[256];

  snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system (cmd) != 0)
    fprintf (stderr, "could not remove %s\n", dir);
}

static bool
exists (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0;
}

/* The argv the stand-in recorded, compared with want (NULL-terminated). */
static void
check_argv (const char *uri, const char *const *want)
{
  FILE *fp = fopen (logfile, "r");
  char line[1024];
  size_t i = 0, n;

  if (fp == NULL) {
    FAIL ("%s: ssh was not run", uri);
    return;
  }
  while (fgets (line, sizeof line, fp)) {
    n = strlen (line);
    if (n && line[n-1] == '\n')
      line[n-1] = '\0';
    if (want[i] == NULL) {
      FAIL ("%s: extra ssh argument '%s'", uri, line);
      break;
    }
    if (strcmp (line, want[i]) != 0)
      FAIL ("%s: ssh argument %zu is '%s', expected '%s'", uri, i, line,
            want[i]);
    i++;
  }
  if (want[i])
    FAIL ("%s: ssh argument %zu '%s' missing", uri, i, want[i]);
  fclose (fp);
}

/* Record mode: connect (which fails, the stand-in exits 1) and check
 * the command line.
 */
static void
expect_argv (const char *uri, const char *const *want)
{
  struct nbd_handle *h = nbd_create ();

  REQUIRE (h != NULL, "nbd_create");
  unlink (logfile);
  setenv ("FAKE_SSH_MODE", "record", 1);
  if (nbd_connect_uri (h, uri) == 0)
    FAIL ("%s: connected through a stand-in that exits", uri);
  check_argv (uri, want);
  nbd_close (h);
  if (exists (victim))
    FAIL ("%s: an injected command ran (%s exists)", uri, victim);
  unlink (victim);
}

/* Refused before anything runs. */
static void
expect_refused (const char *uri, int err, const char *substr)
{
  struct nbd_handle *h = nbd_create ();

  REQUIRE (h != NULL, "nbd_create");
  unlink (logfile);
  setenv ("FAKE_SSH_MODE", "record", 1);
  CHECK_FAILS (nbd_connect_uri (h, uri), err, "nbd_connect_uri", substr);
  if (exists (logfile))
    FAIL ("%s: ssh was run although the URI was refused", uri);
  if (exists (victim))
    FAIL ("%s: an injected command ran (%s exists)", uri, victim);
  unlink (victim);
  nbd_close (h);
}

/* The injections run in the test's directory: "touch pwned" makes victim. */
static void
expect_argv_injection (void)
{
  {
    const char *want[] = { "ssh", "-p", "22", "--",
                           "-oProxyCommand=touch pwned",
                           "nc", "localhost", "10809", NULL };
    expect_argv ("nbd+ssh://-oProxyCommand=touch%20pwned/", want);
    expect_argv ("nbd+ssh://-oProxyCommand=touch%20pwned", want);
  }
  {
    const char *want[] = { "ssh", "-p", "22", "--", "-o",
                           "nc", "localhost", "10809", NULL };
    expect_argv ("nbd+ssh://-o/?ProxyCommand=touch%20pwned", want);
  }
  {
    /* The user stays inside its one -o argument. */
    const char *want[] = { "ssh", "-p", "22",
                           "-o", "User=-oProxyCommand=touch pwned", "--",
                           "server", "nc", "localhost", "10809", NULL };
    expect_argv ("nbd+ssh://-oProxyCommand=touch%20pwned@server/", want);
  }
}

static void
test_command_lines (void)
{
  char uri[512];
  const char *p;

  {
    const char *want[] = { "ssh", "-p", "22", "--", "example.com",
                           "nc", "localhost", "10809", NULL };
    expect_argv ("nbd+ssh://example.com", want);
    expect_argv ("nbd+ssh://example.com/", want);
    expect_argv ("nbd+ssh://example.com:0/", want);
  }
  {
    const char *want[] = { "ssh", "-C", "-p", "2222", "-o", "User=alice",
                           "--", "example.com", "nc", "-U", "/run/nbd.sock",
                           NULL };
    expect_argv ("nbd+ssh://alice@example.com:2222/disk"
                 "?socket=/run/nbd.sock&compress=true", want);
    /* Parameter names in any case; the last one wins. */
    expect_argv ("NBD+SSH://alice@example.com:2222/disk"
                 "?SOCKET=/tmp/x&Socket=/run/nbd.sock&COMPRESS=yes", want);
  }
  {
    /* nbd-port is the far side's NBD port; the authority's stays ssh's. */
    const char *want[] = { "ssh", "-p", "2022", "--", "server",
                           "nc", "localhost", "10900", NULL };
    expect_argv ("nbd+ssh://server:2022/?nbd-port=10900&compress=false", want);
  }
  {
    const char *want[] = { "ssh", "-p", "22", "--", "::1",
                           "nc", "localhost", "10809", NULL };
    expect_argv ("nbd+ssh://[::1]/", want);
  }

  /* CVE-2025-14946: a host name that looks like an option stays a host
   * name, after "--".
   */
  expect_argv_injection ();
  expect_refused ("nbd+ssh://%25r@server/", EINVAL, "'%'");
  expect_refused ("nbd+ssh://a%0Ab@server/", EINVAL, "control character");
  expect_refused ("nbd+ssh:///", EINVAL, "SSH transport requires a server name");
  expect_refused ("nbd+ssh://alice@/", EINVAL,
                  "SSH transport requires a server name");

  /* What reaches the remote shell: socket= and nbd-port=. */
  snprintf (uri, sizeof uri, "nbd+ssh://server/?socket=/tmp/a;touch %s",
            victim);
  expect_refused (uri, EINVAL, "unable to parse URI");   /* raw space */
  snprintf (uri, sizeof uri,
            "nbd+ssh://server/?socket=/tmp/a%%3Btouch%%20%s", victim);
  expect_refused (uri, EINVAL,
                  "parameter 'socket' rejected because it contains shell "
                  "metacharacters");
  snprintf (uri, sizeof uri,
            "nbd+ssh://server/?nbd-port=10809%%3Btouch%%20%s", victim);
  expect_refused (uri, EINVAL,
                  "parameter 'nbd-port' rejected because it contains shell "
                  "metacharacters");
  snprintf (uri, sizeof uri, "nbd+ssh://server/?socket=%%24(touch%%20%s)",
            victim);
  expect_refused (uri, EINVAL, "shell metacharacters");
  snprintf (uri, sizeof uri, "nbd+ssh://server/?socket=%%60touch%%20%s%%60",
            victim);
  expect_refused (uri, EINVAL, "shell metacharacters");
  expect_refused ("nbd+ssh://server/?socket=-lk", EINVAL, "starts with '-'");
  expect_refused ("nbd+ssh://server/?nbd-port=99999", EINVAL, "out of range");
  expect_refused ("nbd+ssh://server/?nbd-port=ten", EINVAL, "must be a number");
  expect_refused ("nbd+ssh://server/?compress=maybe", EINVAL,
                  "cannot parse boolean");
  for (p = "\\\"`$';&|<>!(){}[]*?~ \t\n\x01\x7f"; *p; ++p) {
    snprintf (uri, sizeof uri, "nbd+ssh://server/?socket=/tmp/a%%%02Xb",
              (unsigned char) *p);
    expect_refused (uri, EINVAL, "shell metacharacters");
    snprintf (uri, sizeof uri, "nbd+ssh://server/?nbd-port=1%%%02X2",
              (unsigned char) *p);
    expect_refused (uri, EINVAL, "shell metacharacters");
  }
  /* Outside ssh no shell is involved: such a socket name is only a name. */
  {
    struct nbd_handle *h = nbd_create ();
    REQUIRE (h != NULL, "nbd_create");
    CHECK_FAILS (nbd_connect_uri (h, "nbd+unix:///?socket=/nonexistent/a%3Bb"),
                 ENOENT, "nbd_connect_uri", "/nonexistent/a;b");
    nbd_close (h);
  }

  /* The transport allow-list. */
  {
    struct nbd_handle *h = nbd_create ();
    REQUIRE (h != NULL, "nbd_create");
    EXPECT_OK (nbd_set_uri_allow_transports (h, LIBNBD_ALLOW_TRANSPORT_MASK
                                             & ~LIBNBD_ALLOW_TRANSPORT_SSH));
    unlink (logfile);
    CHECK_FAILS (nbd_connect_uri (h, "nbd+ssh://server/"), EPERM,
                 "nbd_connect_uri", "not permitted");
    if (exists (logfile))
      FAIL ("ssh was run for a transport that is not allowed");
    nbd_close (h);
  }
}

/* Tunnel mode against nbdkit: I/O, nbd_get_uri, and a reconnect with
 * the URI nbd_get_uri gave.
 */
static struct nbd_handle *
tunnel_connect (const char *uri, bool tls)
{
  struct nbd_handle *h = nbd_create ();

  REQUIRE (h != NULL, "nbd_create");
  setenv ("FAKE_SSH_MODE", "tunnel", 1);
  if (tls) {
    EXPECT_OK (nbd_set_uri_allow_local_file (h, true));
  }
  if (nbd_connect_uri (h, uri) == -1) {
    FAIL ("%s: %s", uri, nbd_get_error ());
    nbd_close (h);
    return NULL;
  }
  return h;
}

static void
check_io (struct nbd_handle *h, const char *uri)
{
  char wbuf[4096], rbuf[4096];

  memset (wbuf, 0x5a, sizeof wbuf);
  memcpy (wbuf, uri, strlen (uri) < sizeof wbuf ? strlen (uri) : sizeof wbuf);
  CHECK_EQ (nbd_get_size (h), 1048576);
  EXPECT_OK (nbd_pwrite (h, wbuf, sizeof wbuf, 8192, 0));
  EXPECT_OK (nbd_pread (h, rbuf, sizeof rbuf, 8192, 0));
  CHECK (memcmp (wbuf, rbuf, sizeof wbuf) == 0, "%s: read back differs", uri);
}

static void
tunnel_round_trip (const char *uri, const char *want_uri, bool tls)
{
  struct nbd_handle *h = tunnel_connect (uri, tls);
  char *got;

  if (h == NULL)
    return;
  check_io (h, uri);
  if (tls)
    CHECK_EQ (nbd_get_tls_negotiated (h), 1);
  got = nbd_get_uri (h);
  CHECK_STREQ (got, want_uri);
  CHECK_EQ (nbd_shutdown (h, 0), 0);
  nbd_close (h);
  if (got) {
    h = nbd_create ();
    REQUIRE (h != NULL, "nbd_create");
    CHECK_EQ (nbd_is_uri (h, got), 1);
    nbd_close (h);
    h = tunnel_connect (got, tls);
    if (h) {
      check_io (h, got);
      CHECK_EQ (nbd_shutdown (h, 0), 0);
      nbd_close (h);
    }
  }
  free (got);
}

/* nbdkit on a free loopback TCP port (written to port); its pid. */
static pid_t
start_tcp_nbdkit (char *port, size_t size)
{
  char pidfile[256];
  int p = free_loopback_port ();
  pid_t pid;

  REQUIRE (p > 0, "no free port");
  snprintf (port, size, "%d", p);
  snprintf (pidfile, sizeof pidfile, "%s/tcp.pid", dir);
  pid = fork ();
  REQUIRE (pid >= 0, "fork");
  if (pid == 0) {
    execlp ("nbdkit", "nbdkit", "-f", "-p", port, "-i", "127.0.0.1",
            "-P", pidfile, "memory", "1M", (char *) NULL);
    _exit (127);
  }
  for (int i = 0; i < 1000 && !exists (pidfile); i++)
    usleep (10000);
  REQUIRE (exists (pidfile), "nbdkit on port %s did not start", port);
  return pid;
}

static void
test_tunnel (void)
{
  struct server s, psk;
  char uri[512];
  char port[16];
  pid_t tcp_pid;
  int r;

  {
    const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                           "memory", "1M", NULL };
    if (server_start (&s, argv) == -1) {
      fprintf (stderr, "test-uri-ssh: cannot start nbdkit\n");
      exit (EXIT_FAILURE);
    }
  }
  snprintf (uri, sizeof uri, "nbd+ssh://localhost/?socket=%s", s.sock);
  tunnel_round_trip (uri, uri, false);
  {
    const char *want_argv[] = { "ssh", "-p", "22", "--", "localhost",
                                "nc", "-U", s.sock, NULL };
    check_argv (uri, want_argv);
  }
  /* SSH user, port and compression are kept; the export name too. */
  snprintf (uri, sizeof uri,
            "nbd+ssh://bob@localhost:2222/?socket=%s&compress=true", s.sock);
  tunnel_round_trip (uri, uri, false);
  {
    const char *want_argv[] = { "ssh", "-C", "-p", "2222", "-o", "User=bob",
                                "--", "localhost", "nc", "-U", s.sock, NULL };
    check_argv (uri, want_argv);
  }

  /* nbd-port: nbdkit on TCP, reached with "nc localhost PORT". */
  tcp_pid = start_tcp_nbdkit (port, sizeof port);
  snprintf (uri, sizeof uri, "nbd+ssh://localhost/?nbd-port=%s", port);
  tunnel_round_trip (uri, uri, false);
  {
    const char *want_argv[] = { "ssh", "-p", "22", "--", "localhost",
                                "nc", "localhost", port, NULL };
    check_argv (uri, want_argv);
  }
  kill (tcp_pid, SIGTERM);
  waitpid (tcp_pid, NULL, 0);

  /* nbds+ssh: TLS end to end through the tunnel; the SSH user (carol)
   * and the TLS user (alice) are separate.
   */
  r = start_nbdkit_psk (&psk, pskfile);
  REQUIRE (r != -1, "nbdkit with TLS-PSK did not start");
  if (r == 0) {
    snprintf (uri, sizeof uri,
              "nbds+ssh://carol@localhost/?socket=%s&tls-username=alice"
              "&tls-psk-file=%s", psk.sock, pskfile);
    tunnel_round_trip (uri, uri, true);
    {
      const char *want_argv[] = { "ssh", "-p", "22", "-o", "User=carol",
                                  "--", "localhost", "nc", "-U", psk.sock,
                                  NULL };
      check_argv (uri, want_argv);
    }
    /* Without tls-username the TLS user is not the SSH user. */
    snprintf (uri, sizeof uri,
              "nbds+ssh://alice@localhost/?socket=%s&tls-psk-file=%s",
              psk.sock, pskfile);
    {
      struct nbd_handle *h = nbd_create ();
      char *user;
      REQUIRE (h != NULL, "nbd_create");
      EXPECT_OK (nbd_set_uri_allow_local_file (h, true));
      EXPECT_OK (nbd_set_tls_username (h, "nobody-here"));
      CHECK_EQ (nbd_connect_uri (h, uri), -1);
      user = nbd_get_tls_username (h);
      CHECK_STREQ (user, "nobody-here");
      free (user);
      nbd_close (h);
    }
    server_stop (&psk);
  }
  else
    fprintf (stderr, "test-uri-ssh: no TLS or psktool, nbds+ssh not tested\n");
  server_stop (&s);
}

int
main (void)
{
  char path[4096];
  int fd;

  alarm (120);
#ifndef HAVE_LIBXML2
  fprintf (stderr, "test-uri-ssh: built without libxml2 (no URI support): skipped\n");
  exit (77);
#endif
  if (system ("nbdkit --version >/dev/null 2>&1") != 0
      || system ("command -v nc >/dev/null 2>&1") != 0) {
    fprintf (stderr, "test-uri-ssh: nbdkit or nc missing, skipping\n");
    exit (77);
  }
  REQUIRE (mkdtemp (dir) != NULL, "mkdtemp");
  atexit (cleanup);
  snprintf (bindir, sizeof bindir, "%s/bin", dir);
  snprintf (logfile, sizeof logfile, "%s/ssh-argv", dir);
  snprintf (victim, sizeof victim, "%s/pwned", dir);
  snprintf (pskfile, sizeof pskfile, "%s/keys.psk", dir);
  REQUIRE (mkdir (bindir, 0700) == 0, "mkdir");
  snprintf (path, sizeof path, "%s/ssh", bindir);
  fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0700);
  REQUIRE (fd >= 0, "open %s", path);
  REQUIRE (write (fd, fake_ssh, strlen (fake_ssh)) == (ssize_t) strlen (fake_ssh),
           "write");
  close (fd);
  snprintf (path, sizeof path, "%s:%s", bindir,
            getenv ("PATH") ? getenv ("PATH") : "/usr/bin:/bin");
  setenv ("PATH", path, 1);
  setenv ("FAKE_SSH_LOG", logfile, 1);
  /* A relative injected "touch x" would land here. */
  REQUIRE (chdir (dir) == 0, "chdir");

  test_command_lines ();
  test_tunnel ();

  if (exists (victim))
    FAIL ("an injected command ran (%s exists)", victim);
  return check_status ("test-uri-ssh");
}
