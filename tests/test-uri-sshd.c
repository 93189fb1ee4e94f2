/* nbd+ssh:// through a real OpenSSH: an sshd started here on a loopback
 * port with its own host key and configuration (public keys only), the
 * real ssh client (first on PATH is a wrapper adding "-F" with this
 * test's client configuration: key, known hosts, batch mode), and the
 * remote "nc -U" reaching nbdkit.
 *
 * Skipped (77) without sshd, ssh, ssh-keygen, nc or nbdkit, or when
 * sshd cannot run here (as root it needs /run/sshd, which the test only
 * provides inside a private mount namespace).
 */
#include <config.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "checks.h"
#include "server.h"

static char dir[] = "/tmp/test-uri-sshd-XXXXXX";
static pid_t sshd_pid;
static struct server nbdkit;

static int
run (const char *fmt, ...)
{
  char cmd[4096];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (cmd, sizeof cmd, fmt, ap);
  va_end (ap);
  return system (cmd);
}

static void
cleanup (void)
{
  if (sshd_pid > 0) {
    kill (sshd_pid, SIGTERM);
    waitpid (sshd_pid, NULL, 0);
  }
  server_stop (&nbdkit);
  run ("rm -rf '%s'", dir);
}

static void
skip (const char *why)
{
  fprintf (stderr, "test-uri-sshd: %s: skipped\n", why);
  exit (77);
}

static int
free_port (void)
{
  int port = free_loopback_port ();

  if (port < 0) {
    perror ("bind");
    exit (1);
  }
  return port;
}

static bool
accepting (int port)
{
  struct sockaddr_in sin = { .sin_family = AF_INET };
  int fd = socket (AF_INET, SOCK_STREAM, 0), r;

  sin.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  sin.sin_port = htons (port);
  r = connect (fd, (struct sockaddr *) &sin, sizeof sin);
  close (fd);
  return r == 0;
}

static void
write_file (const char *name, const char *content)
{
  char path[256];
  FILE *fp;

  snprintf (path, sizeof path, "%s/%s", dir, name);
  fp = fopen (path, "w");
  REQUIRE (fp != NULL, "fopen %s", path);
  fputs (content, fp);
  fclose (fp);
}

static void
start_sshd (int port)
{
  char config[2048], cmd[1024], path[256];
  struct stat st;
  int status;

  snprintf (config, sizeof config,
            "Port %d\n"
            "ListenAddress 127.0.0.1\n"
            "HostKey %s/host_key\n"
            "AuthorizedKeysFile %s/authorized_keys\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "StrictModes no\n"
            "UsePAM no\n"
            "PidFile none\n",
            port, dir, dir);
  write_file ("sshd_config", config);
  snprintf (path, sizeof path, "%s/sshd_config", dir);
  snprintf (cmd, sizeof cmd, "exec /usr/sbin/sshd -D -E '%s/sshd.log' -f '%s'",
            dir, path);

  sshd_pid = fork ();
  REQUIRE (sshd_pid >= 0, "fork");
  if (sshd_pid == 0) {
    if (geteuid () == 0 && stat ("/run/sshd", &st) == -1) {
      /* sshd running as root insists on its privilege separation
       * directory; make one where only this sshd sees it.
       */
      char wrapped[1200];
      snprintf (wrapped, sizeof wrapped,
                "mount -t tmpfs tmpfs /run && mkdir /run/sshd && %s", cmd);
      execlp ("unshare", "unshare", "-m", "sh", "-c", wrapped, (char *) NULL);
      _exit (126);
    }
    execl ("/bin/sh", "sh", "-c", cmd, (char *) NULL);
    _exit (126);
  }
  for (int i = 0; i < 1000; i++) {
    if (accepting (port))
      return;
    if (waitpid (sshd_pid, &status, WNOHANG) == sshd_pid) {
      sshd_pid = 0;
      run ("cat '%s/sshd.log' >&2", dir);
      skip ("sshd cannot run here");
    }
    usleep (10000);
  }
  skip ("sshd did not start listening");
}

static void
check_tunnel (const char *uri)
{
  struct nbd_handle *h = nbd_create ();
  char wbuf[65536], rbuf[65536], *got;

  REQUIRE (h != NULL, "nbd_create");
  if (nbd_connect_uri (h, uri) == -1) {
    FAIL ("%s: %s", uri, nbd_get_error ());
    run ("cat '%s/sshd.log' >&2", dir);
    nbd_close (h);
    return;
  }
  CHECK_EQ (nbd_get_size (h), 1048576);
  for (size_t i = 0; i < sizeof wbuf; i++)
    wbuf[i] = (char) (i * 7 + strlen (uri));
  EXPECT_OK (nbd_pwrite (h, wbuf, sizeof wbuf, 65536, 0));
  EXPECT_OK (nbd_pread (h, rbuf, sizeof rbuf, 65536, 0));
  CHECK (memcmp (wbuf, rbuf, sizeof wbuf) == 0, "%s: read back differs", uri);
  got = nbd_get_uri (h);
  CHECK_STREQ (got, uri);
  free (got);
  CHECK_EQ (nbd_shutdown (h, 0), 0);
  nbd_close (h);
}

int
main (void)
{
  char path[512], content[2048], ssh[256], uri[512];
  struct passwd *pw;
  FILE *fp;
  int port, fd;

  alarm (120);
#ifndef HAVE_LIBXML2
  fprintf (stderr, "test-uri-sshd: built without libxml2 (no URI support): skipped\n");
  exit (77);
#endif
  if (access ("/usr/sbin/sshd", X_OK) != 0)
    skip ("no /usr/sbin/sshd (openssh-server)");
  if (run ("command -v ssh-keygen >/dev/null 2>&1") != 0
      || run ("command -v nc >/dev/null 2>&1") != 0
      || run ("nbdkit --version >/dev/null 2>&1") != 0)
    skip ("ssh-keygen, nc or nbdkit missing");
  fp = popen ("command -v ssh", "r");
  if (fp == NULL || fgets (ssh, sizeof ssh, fp) == NULL || ssh[0] != '/')
    skip ("no ssh client");
  pclose (fp);
  ssh[strcspn (ssh, "\n")] = '\0';
  pw = getpwuid (geteuid ());
  REQUIRE (pw != NULL, "getpwuid");

  REQUIRE (mkdtemp (dir) != NULL, "mkdtemp");
  atexit (cleanup);
  REQUIRE (run ("cd '%s' && ssh-keygen -q -t ed25519 -N '' -f host_key "
                "&& ssh-keygen -q -t ed25519 -N '' -f user_key "
                "&& cp user_key.pub authorized_keys && mkdir bin", dir) == 0,
           "ssh-keygen");

  port = free_port ();
  start_sshd (port);

  /* The client side: trust exactly this host key, use exactly this key. */
  snprintf (path, sizeof path, "%s/host_key.pub", dir);
  fp = fopen (path, "r");
  REQUIRE (fp != NULL && fgets (content, sizeof content, fp), "host key");
  fclose (fp);
  {
    char line[2200];
    snprintf (line, sizeof line, "[127.0.0.1]:%d %s", port, content);
    write_file ("known_hosts", line);
  }
  snprintf (content, sizeof content,
            "Host *\n"
            "  IdentityFile %s/user_key\n"
            "  IdentitiesOnly yes\n"
            "  UserKnownHostsFile %s/known_hosts\n"
            "  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n"
            "  BatchMode yes\n"
            "  LogLevel ERROR\n",
            dir, dir);
  write_file ("ssh_config", content);
  snprintf (content, sizeof content,
            "#!/bin/sh\nexec '%s' -F '%s/ssh_config' \"$@\"\n", ssh, dir);
  snprintf (path, sizeof path, "%s/bin/ssh", dir);
  fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0700);
  REQUIRE (fd >= 0 && write (fd, content, strlen (content))
           == (ssize_t) strlen (content), "write %s", path);
  close (fd);
  snprintf (content, sizeof content, "%s/bin:%s", dir,
            getenv ("PATH") ? getenv ("PATH") : "/usr/bin:/bin");
  setenv ("PATH", content, 1);

  {
    const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                           "memory", "1M", NULL };
    REQUIRE (server_start (&nbdkit, argv) == 0, "nbdkit");
    REQUIRE (server_wait_accepting (&nbdkit) == 0, "nbdkit");
  }

  snprintf (uri, sizeof uri, "nbd+ssh://%s@127.0.0.1:%d/?socket=%s",
            pw->pw_name, port, nbdkit.sock);
  check_tunnel (uri);
  snprintf (uri, sizeof uri, "nbd+ssh://%s@127.0.0.1:%d/?socket=%s"
            "&compress=true", pw->pw_name, port, nbdkit.sock);
  check_tunnel (uri);

  /* A user the server does not know: ssh fails, so does the connect. */
  {
    struct nbd_handle *h = nbd_create ();
    REQUIRE (h != NULL, "nbd_create");
    snprintf (uri, sizeof uri, "nbd+ssh://no-such-user-here@127.0.0.1:%d/"
              "?socket=%s", port, nbdkit.sock);
    CHECK_EQ (nbd_connect_uri (h, uri), -1);
    nbd_close (h);
  }

  return check_status ("test-uri-sshd");
}
