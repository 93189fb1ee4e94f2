/* Test NBD URIs: nbd_connect_uri, nbd_get_uri, nbd_is_uri and the
 * URI restrictions, against nbdkit (skipped if nbdkit is missing).
 */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <libnbd.h>

#include "checks.h"
#include "server.h"

static char tmpdir[] = "/tmp/test-uri-XXXXXX";
static char sock[256], pidfile_unix[256], pidfile_tcp[256];
static pid_t pids[2];
static int nr_pids;

static void
cleanup (void)
{
  int i;

  for (i = 0; i < nr_pids; ++i) {
    if (pids[i] > 0) {
      kill (pids[i], SIGTERM);
      /* nbdkit -P forks into the background: it is not our child. */
      waitpid (pids[i], NULL, WNOHANG);
    }
  }
  unlink (sock);
  unlink (pidfile_unix);
  unlink (pidfile_tcp);
  rmdir (tmpdir);
}

/* Run nbdkit with args (it daemonizes) and wait for the pidfile. */
static int
start_nbdkit (char **argv, const char *pidfile)
{
  pid_t pid = fork ();
  int status, i;
  FILE *fp;

  if (pid == -1) {
    perror ("fork");
    return -1;
  }
  if (pid == 0) {
    execvp (argv[0], argv);
    _exit (127);
  }
  if (waitpid (pid, &status, 0) == -1 || !WIFEXITED (status)
      || WEXITSTATUS (status) != 0) {
    if (WIFEXITED (status) && WEXITSTATUS (status) == 127)
      return -2;
    fprintf (stderr, "test-uri: nbdkit failed to start\n");
    return -1;
  }
  for (i = 0; i < 100; ++i) {
    fp = fopen (pidfile, "r");
    if (fp) {
      long p = 0;
      if (fscanf (fp, "%ld", &p) == 1 && p > 0) {
        fclose (fp);
        pids[nr_pids++] = (pid_t) p;
        return 0;
      }
      fclose (fp);
    }
    usleep (100000);
  }
  fprintf (stderr, "test-uri: nbdkit did not write %s\n", pidfile);
  return -1;
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

/* Connect to uri, check size and export name, return the handle. */
static struct nbd_handle *
connect_ok (const char *uri, const char *export)
{
  struct nbd_handle *h = nbd_create ();
  int64_t size;
  char *name;

  if (h == NULL) {
    FAIL ("nbd_create: %s", nbd_get_error ());
    return NULL;
  }
  if (nbd_connect_uri (h, uri) == -1) {
    FAIL ("nbd_connect_uri %s: %s", uri, nbd_get_error ());
    nbd_close (h);
    return NULL;
  }
  size = nbd_get_size (h);
  if (size != 1048576)
    FAIL ("%s: size %lld != 1048576", uri, (long long) size);
  name = nbd_get_export_name (h);
  if (name == NULL || strcmp (name, export) != 0)
    FAIL ("%s: export name '%s' != '%s'", uri, name ? name : "(null)", export);
  free (name);
  return h;
}

/* Shut down and close a handle from connect_ok (NULL: nothing to do). */
static void
disconnect (struct nbd_handle *h)
{
  if (h) {
    nbd_shutdown (h, 0);
    nbd_close (h);
  }
}

/* nbd_get_uri must give a URI that reconnects to the same export. */
static void
check_get_uri (struct nbd_handle *h, const char *export, const char *want)
{
  char *u = nbd_get_uri (h);

  if (u == NULL) {
    FAIL ("nbd_get_uri: %s", nbd_get_error ());
    return;
  }
  printf ("test-uri: nbd_get_uri: %s\n", u);
  if (want && strcmp (u, want) != 0)
    FAIL ("nbd_get_uri returned %s, expected %s", u, want);
  if (!nbd_is_uri (h, u))
    FAIL ("nbd_is_uri (%s) is false", u);
  disconnect (connect_ok (u, export));
  free (u);
}

/* connect_ok to uri, and nbd_get_uri must give uri back. */
static void
check_round_trip (const char *uri, const char *export)
{
  struct nbd_handle *h = connect_ok (uri, export);

  if (h) {
    check_get_uri (h, export, uri);
    disconnect (h);
  }
}

/* A connect_uri that must fail with errno err. */
static void
connect_fails (const char *uri, int err, uint32_t transports)
{
  struct nbd_handle *h = nbd_create ();

  if (h == NULL) {
    FAIL ("nbd_create: %s", nbd_get_error ());
    return;
  }
  if (transports && nbd_set_uri_allow_transports (h, transports) == -1)
    FAIL ("nbd_set_uri_allow_transports: %s", nbd_get_error ());
  if (nbd_connect_uri (h, uri) != -1)
    FAIL ("nbd_connect_uri %s unexpectedly succeeded", uri);
  else if (nbd_get_errno () != err)
    FAIL ("nbd_connect_uri %s: errno %d (%s), expected %d (%s)",
          uri, nbd_get_errno (), nbd_get_error (), err, strerror (err));
  else
    printf ("test-uri: %.80s%s failed as expected: %.200s\n",
            uri, strlen (uri) > 80 ? "..." : "", nbd_get_error ());
  nbd_close (h);
}

int
main (void)
{
  char uri[512], want[512];
  char port_str[16];
  struct nbd_handle *h;
  int r;
  size_t i;
  static const struct { const char *s; bool is; } is_cases[] = {
    { "nbd://example.com", true },
    { "nbds://example.com:10810/disk", true },
    { "nbd+unix:///?socket=/tmp/sock", true },
    { "nbds+unix:///x?socket=s", true },
    { "nbd+vsock:///", true },
    { "NBD://example.com/", true },
    { "nbd+ssh://example.com/", true },
    { "nbds+ssh://alice@example.com:2222/disk?socket=/s", true },
    /* Only the hierarchical scheme://... form names an export. */
    { "nbd:", false },
    { "nbd:foo", false },
    { "nbd:/foo", false },
    { "http://example.com/", false },
    { "nbdx://example.com/", false },
    { "/tmp/disk.img", false },
    { "disk.img", false },
    { "", false },
    { "nbd", false },
    { "file:nbd://x", false },
  };

  if (system ("nbdkit --version >/dev/null 2>&1") != 0) {
    fprintf (stderr, "test-uri: nbdkit not found, skipping\n");
    exit (77);
  }
  if (mkdtemp (tmpdir) == NULL) {
    perror ("mkdtemp");
    exit (1);
  }
  snprintf (sock, sizeof sock, "%s/sock", tmpdir);
  snprintf (pidfile_unix, sizeof pidfile_unix, "%s/unix.pid", tmpdir);
  snprintf (pidfile_tcp, sizeof pidfile_tcp, "%s/tcp.pid", tmpdir);
  atexit (cleanup);

  /* nbd_is_uri and nbd_supports_uri need no server. */
  h = nbd_create ();
  if (h == NULL) {
    fprintf (stderr, "nbd_create: %s\n", nbd_get_error ());
    exit (1);
  }
#ifdef HAVE_LIBXML2
  if (nbd_supports_uri (h) != 1)
    FAIL ("nbd_supports_uri is not true");
#else
  /* Built without libxml2: no URI support, and every URI call says so. */
  if (nbd_supports_uri (h) != 0)
    FAIL ("nbd_supports_uri is true in a build without libxml2");
  if (nbd_is_uri (h, "nbd://localhost/") != -1 || nbd_get_errno () != ENOTSUP)
    FAIL ("nbd_is_uri without libxml2: %s", nbd_get_error ());
  if (nbd_aio_connect_uri (h, "nbd://localhost/") != -1
      || nbd_get_errno () != ENOTSUP)
    FAIL ("nbd_aio_connect_uri without libxml2: %s", nbd_get_error ());
  if (nbd_connect_uri (h, "nbd://localhost/") != -1
      || nbd_get_errno () != ENOTSUP)
    FAIL ("nbd_connect_uri without libxml2: %s", nbd_get_error ());
  nbd_close (h);
  if (check_status ("test-uri") != EXIT_SUCCESS)
    exit (1);
  fprintf (stderr, "test-uri: built without libxml2: URI calls give ENOTSUP, "
           "the rest is skipped\n");
  exit (77);
#endif
  for (i = 0; i < sizeof is_cases / sizeof is_cases[0]; ++i) {
    r = nbd_is_uri (h, is_cases[i].s);
    if (r != is_cases[i].is)
      FAIL ("nbd_is_uri (\"%s\") = %d, expected %d",
            is_cases[i].s, r, is_cases[i].is);
  }
  nbd_close (h);

  /* Errors that need no server. */
  connect_fails ("http://example.com/", EINVAL, 0);
  connect_fails ("not a uri", EINVAL, 0);
  connect_fails ("nbd+unix:///", EINVAL, 0);
  connect_fails ("nbd://localhost/?socket=/tmp/x", EINVAL, 0);
  connect_fails ("nbd://localhost:port/", EINVAL, 0);
  connect_fails ("nbd://localhost:99999/", EINVAL, 0);
  connect_fails ("nbd://localhost/%zz", EINVAL, 0);
  connect_fails ("nbd+unix:///?socket=/nonexistent/sock", ENOENT, 0);
  connect_fails ("nbd+unix:///?socket=/tmp/sock",
                 EPERM, LIBNBD_ALLOW_TRANSPORT_TCP);
  connect_fails ("nbd://localhost/", EPERM, LIBNBD_ALLOW_TRANSPORT_UNIX);
  {
    /* nbds URIs need TLS support (test-tls connects with them). */
    struct nbd_handle *t = nbd_create ();
    int tls = t ? nbd_supports_tls (t) : 0;
    nbd_close (t);
    if (tls != 1) {
      connect_fails ("nbds://localhost/", ENOTSUP, 0);
      connect_fails ("nbds+unix:///?socket=/tmp/sock", ENOTSUP, 0);
    }
  }
  connect_fails ("nbds://localhost/?tls-psk-file=/tmp/keys.psk", EPERM, 0);
  connect_fails ("nbds://localhost/?tls-certificates=/tmp/certs", EPERM, 0);

  /* TLS policy. */
  h = nbd_create ();
  if (nbd_set_uri_allow_tls (h, LIBNBD_TLS_REQUIRE) == -1)
    FAIL ("nbd_set_uri_allow_tls: %s", nbd_get_error ());
  if (nbd_connect_uri (h, "nbd://localhost/") != -1 || nbd_get_errno () != EPERM)
    FAIL ("nbd: URI with TLS required: expected EPERM, got %s",
          nbd_get_error ());
  nbd_close (h);
  h = nbd_create ();
  if (nbd_set_uri_allow_tls (h, LIBNBD_TLS_DISABLE) == -1)
    FAIL ("nbd_set_uri_allow_tls: %s", nbd_get_error ());
  if (nbd_connect_uri (h, "nbds://localhost/") != -1 || nbd_get_errno () != EPERM)
    FAIL ("nbds: URI with TLS disabled: expected EPERM, got %s",
          nbd_get_error ());
  nbd_close (h);

  /* tls-priority= needs nbd_set_uri_allow_tls_priority. */
  h = nbd_create ();
  if (nbd_connect_uri (h, "nbds://localhost/?tls-priority=NORMAL") != -1
      || nbd_get_errno () != EPERM
      || strcmp (nbd_get_error (), "nbd_connect_uri: overriding TLS priority "
                 "(tls-priority) is not allowed, call "
                 "nbd_set_uri_allow_tls_priority to enable this") != 0)
    FAIL ("tls-priority= without permission: %s", nbd_get_error ());
  nbd_close (h);

  /* vsock ports are 32-bit, beyond what the authority can carry. */
  connect_fails ("nbd+vsock://1/?nbd-port=4294967296", EINVAL, 0);
  connect_fails ("nbd+vsock://1/?nbd-port=-1", EINVAL, 0);
  connect_fails ("nbd+vsock://x/", EINVAL, 0);
  h = nbd_create ();
  if (nbd_connect_uri (h, "nbd+vsock://1/?nbd-port=4294967295") != -1
      || nbd_get_errno () == EINVAL)
    FAIL ("nbd+vsock with nbd-port=4294967295: %s", nbd_get_error ());
  nbd_close (h);

  /* Bad booleans. */
  connect_fails ("nbd://localhost/?tls-verify-peer=perhaps", EINVAL, 0);
  connect_fails ("nbd+ssh://localhost/?compress=perhaps", EINVAL, 0);

  /* Export name too long. */
  {
    char *longuri = malloc (5000 + 64);
    strcpy (longuri, "nbd+unix:///");
    memset (longuri + strlen (longuri), 'a', 5000);
    strcpy (longuri + strlen ("nbd+unix:///") + 5000, "?socket=/tmp/s");
    connect_fails (longuri, ENAMETOOLONG, 0);
    free (longuri);
  }

  /* ---- Unix domain socket ---- */
  {
    char *argv[] = { "nbdkit", "-U", sock, "-P", pidfile_unix,
                     "-e", "myexport", "memory", "1M", NULL };
    r = start_nbdkit (argv, pidfile_unix);
    if (r == -2) {
      fprintf (stderr, "test-uri: nbdkit not found, skipping\n");
      exit (77);
    }
    if (r == -1)
      exit (1);
  }

  snprintf (uri, sizeof uri, "nbd+unix:///myexport?socket=%s", sock);
  h = connect_ok (uri, "myexport");
  if (h) {
    check_get_uri (h, "myexport", uri);
    nbd_shutdown (h, 0);
    /* After shutdown the URI is still known. */
    check_get_uri (h, "myexport", NULL);
    nbd_close (h);
  }

  /* Percent-encoding, unknown parameters ignored, '&'-separated query. */
  snprintf (uri, sizeof uri,
            "nbd+unix:///my%%65xport?x-unknown=1&socket=%s&foo", sock);
  disconnect (connect_ok (uri, "myexport"));

  /* Query parameter names are not case sensitive. */
  snprintf (uri, sizeof uri, "nbd+unix:///myexport?SOCKET=%s", sock);
  disconnect (connect_ok (uri, "myexport"));
  snprintf (uri, sizeof uri, "nbd+unix:///myexport?Socket=%s&foo=1", sock);
  disconnect (connect_ok (uri, "myexport"));

  /* The user info is written back as given, ':' and all; tls-username=
   * overrides it as the TLS user name.
   */
  snprintf (uri, sizeof uri, "nbd+unix://alice:secret@/myexport?socket=%s",
            sock);
  check_round_trip (uri, "myexport");
  snprintf (uri, sizeof uri,
            "nbd+unix://alice@/myexport?socket=%s&TLS-USERNAME=bob", sock);
  h = connect_ok (uri, "myexport");
  if (h) {
    char *user = nbd_get_tls_username (h);
    if (user == NULL || strcmp (user, "bob") != 0)
      FAIL ("tls-username=bob: TLS user name is %s", user ? user : "(null)");
    free (user);
    snprintf (want, sizeof want, "nbd+unix://bob@/myexport?socket=%s", sock);
    check_get_uri (h, "myexport", want);
    disconnect (h);
  }

  /* nbd_get_uri after nbd_connect_unix. */
  h = nbd_create ();
  if (nbd_set_export_name (h, "myexport") == -1
      || nbd_connect_unix (h, sock) == -1)
    FAIL ("nbd_connect_unix: %s", nbd_get_error ());
  else {
    snprintf (want, sizeof want, "nbd+unix:///myexport?socket=%s", sock);
    check_get_uri (h, "myexport", want);
    nbd_shutdown (h, 0);
  }
  nbd_close (h);

  /* nbd_get_uri after a connect that failed: the handle is dead, but as
   * libnbd it still names the address it was asked to connect to, and a
   * URI that failed to connect is written back in canonical form (the
   * unknown parameter dropped, the last socket= kept, %2F decoded).
   */
  {
    static const struct { const char *uri, *want; } failed[] = {
      { NULL, "nbd+unix:///myexport?socket=%s/missing" },
      { "nbd+unix:///myexport?socket=%s/missing&foo=bar",
        "nbd+unix:///myexport?socket=%s/missing" },
      { "nbd+unix:///a%%2Fb?socket=/x&socket=%s/missing",
        "nbd+unix:///a/b?socket=%s/missing" },
    };
    for (size_t i = 0; i < sizeof failed / sizeof failed[0]; i++) {
      char missing[300];
      int r;

      h = nbd_create ();
      snprintf (missing, sizeof missing, "%s/missing", tmpdir);
      if (failed[i].uri) {
        snprintf (uri, sizeof uri, failed[i].uri, tmpdir);
        r = nbd_connect_uri (h, uri);
      }
      else
        r = nbd_set_export_name (h, "myexport") == -1
          ? 0 : nbd_connect_unix (h, missing);
      if (r != -1 || nbd_get_errno () != ENOENT)
        FAIL ("connect to %s: expected ENOENT, got %d: %s", missing, r,
              nbd_get_error ());
      snprintf (want, sizeof want, failed[i].want, tmpdir);
      {
        char *u = nbd_get_uri (h);
        if (u == NULL || strcmp (u, want) != 0)
          FAIL ("nbd_get_uri after a failed connect: %s, expected %s",
                u ? u : nbd_get_error (), want);
        free (u);
      }
      nbd_close (h);
    }
  }

  /* nbd_get_uri after nbd_connect_socket: as libnbd, no URI (EINVAL),
   * although this socket's peer is a named Unix socket.
   */
  h = nbd_create ();
  {
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    char *u;

    snprintf (sun.sun_path, sizeof sun.sun_path, "%s", sock);
    if (fd == -1 || connect (fd, (struct sockaddr *) &sun, sizeof sun) == -1) {
      perror ("connect");
      exit (EXIT_FAILURE);
    }
    if (nbd_connect_socket (h, fd) == -1)
      FAIL ("nbd_connect_socket: %s", nbd_get_error ());
    else if ((u = nbd_get_uri (h)) != NULL) {
      FAIL ("nbd_get_uri after nbd_connect_socket gave %s", u);
      free (u);
    }
    else if (nbd_get_errno () != EINVAL)
      FAIL ("nbd_get_uri after nbd_connect_socket: errno %d: %s",
            nbd_get_errno (), nbd_get_error ());
  }
  nbd_close (h);

  /* Option mode: the export name can be overridden after connect_uri. */
  h = nbd_create ();
  snprintf (uri, sizeof uri, "nbd+unix:///wrong?socket=%s", sock);
  if (nbd_set_opt_mode (h, true) == -1 || nbd_connect_uri (h, uri) == -1)
    FAIL ("nbd_connect_uri (opt mode): %s", nbd_get_error ());
  else if (!nbd_aio_is_negotiating (h))
    FAIL ("nbd_connect_uri in option mode did not stop in the negotiating "
          "state (state: %s)", nbd_aio_is_ready (h) ? "ready" : "other");
  else if (nbd_set_export_name (h, "myexport") == -1 || nbd_opt_go (h) == -1)
    FAIL ("nbd_opt_go: %s", nbd_get_error ());
  else if (nbd_get_size (h) != 1048576)
    FAIL ("opt mode: wrong size");
  else
    nbd_shutdown (h, 0);
  nbd_close (h);

  /* ---- TCP ---- */
  snprintf (port_str, sizeof port_str, "%d", free_port ());
  {
    char *argv[] = { "nbdkit", "-p", port_str, "-i", "127.0.0.1",
                     "-P", pidfile_tcp, "memory", "1M", NULL };
    if (start_nbdkit (argv, pidfile_tcp) != 0)
      exit (1);
  }
  snprintf (uri, sizeof uri, "nbd://127.0.0.1:%s/", port_str);
  check_round_trip (uri, "");
  snprintf (uri, sizeof uri, "nbd://localhost:%s", port_str);
  disconnect (connect_ok (uri, ""));
  /* Export name with characters needing encoding: round trip. */
  snprintf (uri, sizeof uri, "nbd://127.0.0.1:%s/a%%20b%%3Fc%%25d%%23e", port_str);
  check_round_trip (uri, "a b?c%d#e");
  /* IPv6 literal (skip quietly if ::1 is not usable). */
  snprintf (uri, sizeof uri, "nbd://[::1]:%s/", port_str);
  h = nbd_create ();
  if (nbd_connect_uri (h, uri) == -1 && nbd_get_errno () == EINVAL)
    FAIL ("%s: parse error: %s", uri, nbd_get_error ());
  nbd_close (h);

  /* nbd_get_uri after nbd_connect_tcp: the host as given, also once the
   * connection is closed.
   */
  {
    static const char *const hosts[] = { "127.0.0.1", "localhost" };
    for (i = 0; i < 2; ++i) {
      h = nbd_create ();
      if (nbd_connect_tcp (h, hosts[i], port_str) == -1)
        FAIL ("nbd_connect_tcp %s: %s", hosts[i], nbd_get_error ());
      else {
        snprintf (want, sizeof want, "nbd://%s:%s/", hosts[i], port_str);
        check_get_uri (h, "", want);
        nbd_shutdown (h, 0);
        check_get_uri (h, "", want);
      }
      nbd_close (h);
    }
  }
  snprintf (uri, sizeof uri, "nbd://localhost:%s/", port_str);
  check_round_trip (uri, "");

  /* nbd-port= overrides the authority's port. */
  snprintf (uri, sizeof uri, "nbd://localhost:1/?nbd-port=%s", port_str);
  h = connect_ok (uri, "");
  if (h) {
    snprintf (want, sizeof want, "nbd://localhost:%s/", port_str);
    check_get_uri (h, "", want);
    disconnect (h);
  }
  connect_fails ("nbd://localhost/?nbd-port=x", EINVAL, 0);
  connect_fails ("nbd://localhost/?nbd-port=65536", EINVAL, 0);

  /* A TLS URI against a server without TLS fails, but the handle keeps
   * what the URI set: nbd_get_uri writes it back, tls-verify-peer=false
   * included, and the tls-priority= that was allowed.
   */
  h = nbd_create ();
  if (nbd_supports_tls (h) == 1) {
    snprintf (uri, sizeof uri, "nbds+unix://alice@/myexport?socket=%s"
              "&tls-verify-peer=false&tls-priority=NORMAL:-VERS-TLS1.0", sock);
    if (nbd_set_uri_allow_tls_priority (h, true) == -1)
      FAIL ("nbd_set_uri_allow_tls_priority: %s", nbd_get_error ());
    if (nbd_connect_uri (h, uri) != -1)
      FAIL ("%s: connected to a server without TLS", uri);
    else {
      char *u = nbd_get_uri (h), *prio = nbd_get_tls_priority (h);
      snprintf (want, sizeof want, "nbds+unix://alice@/myexport?socket=%s"
                "&tls-verify-peer=false&tls-priority=NORMAL:-VERS-TLS1.0",
                sock);
      if (u == NULL || strcmp (u, want) != 0)
        FAIL ("nbd_get_uri after a failed TLS connect: %s, expected %s",
              u ? u : nbd_get_error (), want);
      if (prio == NULL || strcmp (prio, "NORMAL:-VERS-TLS1.0") != 0)
        FAIL ("tls-priority= was not applied: %s", prio ? prio : "(null)");
      if (nbd_get_tls_verify_peer (h) != 0)
        FAIL ("tls-verify-peer=false was not applied");
      free (u);
      free (prio);
    }
  }
  nbd_close (h);

  if (check_status ("test-uri") != EXIT_SUCCESS)
    exit (1);
  printf ("test-uri: PASS\n");
  exit (0);
}
