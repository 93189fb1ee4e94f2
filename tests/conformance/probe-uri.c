/* Conformance probe: connecting and URIs (issue 7 items 22, 24, 25, 27).
 *
 * Blocking TCP connects (refused addresses, "localhost" with only IPv4
 * listening), nbd_get_uri, nbd_get_tls_hostname, case of URI query
 * parameter names, nbd_is_uri.
 */
#include <config.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "probe.h"

static struct server tcp;       /* nbdkit on 127.0.0.1 */
static struct server unx;       /* nbdkit on a unix socket */
static int port;

/* A port the kernel just handed out on 127.0.0.1. */
static int
free_port (void)
{
  struct sockaddr_in a = { .sin_family = AF_INET,
                           .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof a;
  int fd = socket (AF_INET, SOCK_STREAM, 0), p;
  if (fd == -1 || bind (fd, (struct sockaddr *) &a, sizeof a) == -1 ||
      getsockname (fd, (struct sockaddr *) &a, &len) == -1)
    probe_fail ("free port: %s", strerror (errno));
  p = ntohs (a.sin_port);
  close (fd);
  return p;
}

static bool
tcp_accepting (int p)
{
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons (p),
                           .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  int fd = socket (AF_INET, SOCK_STREAM, 0);
  bool ok = connect (fd, (struct sockaddr *) &a, sizeof a) == 0;
  close (fd);
  return ok;
}

static void
start_tcp_nbdkit (void)
{
  char portstr[16];
  struct timespec ts = { 0, 20 * 1000 * 1000 };

  port = free_port ();
  snprintf (portstr, sizeof portstr, "%d", port);
  memset (&tcp, 0, sizeof tcp);
  tcp.pid = fork ();
  if (tcp.pid == 0) {
    execlp ("nbdkit", "nbdkit", "-f", "-i", "127.0.0.1", "-p", portstr,
            "memory", "2M", (char *) NULL);
    _exit (127);
  }
  for (int i = 0; i < 250; i++) {
    if (tcp_accepting (port))
      return;
    if (waitpid (tcp.pid, NULL, WNOHANG) == tcp.pid)
      break;
    nanosleep (&ts, NULL);
  }
  fprintf (stderr, "probe: nbdkit on TCP did not start: skipping\n");
  exit (77);
}

/* The URI with this run's port and socket path replaced by P and S. */
static const char *
masked (char *uri)
{
  static char out[1024];
  char portstr[16];
  size_t n = 0;

  if (!uri)
    return rv (-1);
  snprintf (portstr, sizeof portstr, "%d", port);
  for (const char *p = uri; *p && n < sizeof out - 2; ) {
    if (strncmp (p, portstr, strlen (portstr)) == 0) {
      out[n++] = 'P';
      p += strlen (portstr);
    }
    else if (unx.sock[0] && strncmp (p, unx.sock, strlen (unx.sock)) == 0) {
      out[n++] = 'S';
      p += strlen (unx.sock);
    }
    else
      out[n++] = *p++;
  }
  out[n] = 0;
  free (uri);
  return out;
}

static void
tcp_connects (void)
{
  char portstr[16], refused[16];
  struct nbd_handle *h;
  char *(*get_tls_hostname) (struct nbd_handle *) = NEWER (nbd_get_tls_hostname);

  snprintf (portstr, sizeof portstr, "%d", port);
  snprintf (refused, sizeof refused, "%d", free_port ());

  h = new_handle ();
  step ("connect_tcp refused");
  say ("connect_tcp 127.0.0.1, nothing listening", "%s",
       rv (nbd_connect_tcp (h, "127.0.0.1", refused)));
  say ("state after refused connect", "%s", state_of (h));
  nbd_close (h);

  /* "localhost" may resolve to ::1 first, where nothing listens: the
   * connect must go on to 127.0.0.1 (item 22).
   */
  h = new_handle ();
  step ("connect_tcp localhost");
  say ("connect_tcp localhost", "%s", rv (nbd_connect_tcp (h, "localhost", portstr)));
  say ("connect_tcp localhost: size", "%s", rv (nbd_get_size (h)));
  /* Item 24: the host stays as given. */
  say ("get_uri after connect_tcp localhost", "%s", masked (nbd_get_uri (h)));
  /* Item 25, nbd_set_tls_hostname(3) (1.22): the hostname supplied
   * when connecting is used unless one was set, and
   * nbd_get_tls_hostname(3) reports "the TLS server hostname in
   * effect".
   */
  if (get_tls_hostname) {
    char *s = get_tls_hostname (h);
    want ("get_tls_hostname after connect_tcp localhost", "localhost", "%s",
          s ? s : rv (-1));
    free (s);
  }
  else
    want ("get_tls_hostname after connect_tcp localhost", "localhost",
          "not in this library");
  nbd_shutdown (h, 0);
  nbd_close (h);

  h = new_handle ();
  step ("connect_tcp 127.0.0.1");
  say ("connect_tcp 127.0.0.1", "%s", rv (nbd_connect_tcp (h, "127.0.0.1", portstr)));
  say ("get_uri after connect_tcp 127.0.0.1", "%s", masked (nbd_get_uri (h)));
  nbd_shutdown (h, 0);
  nbd_close (h);
}

static void
uris (void)
{
  char uri[512];
  struct nbd_handle *h;
  int (*is_uri) (struct nbd_handle *, const char *) = NEWER (nbd_is_uri);

  h = new_handle ();
  snprintf (uri, sizeof uri, "nbd://alice:secret@localhost:%d/", port);
  step ("connect_uri with user info");
  say ("connect_uri nbd://alice:secret@localhost:P/", "%s", rv (nbd_connect_uri (h, uri)));
  say ("get_uri after it", "%s", masked (nbd_get_uri (h)));
  nbd_shutdown (h, 0);
  nbd_close (h);

  h = new_handle ();
  snprintf (uri, sizeof uri, "nbd://localhost:%d/?tls-verify-peer=false", port);
  step ("connect_uri tls-verify-peer=false");
  say ("connect_uri ...?tls-verify-peer=false", "%s", rv (nbd_connect_uri (h, uri)));
  /* Later upstream parses the tls-verify-peer query parameter in
   * nbd_connect_uri (issue 7 item 24, from 1.22); 1.14's lib/uri.c
   * knows only socket, tls-certificates and tls-psk-file, so it keeps
   * the default (true).
   */
  want ("get_tls_verify_peer", "0", "%s", rv (nbd_get_tls_verify_peer (h)));
  say ("get_uri after it", "%s", masked (nbd_get_uri (h)));
  nbd_shutdown (h, 0);
  nbd_close (h);

  h = new_handle ();
  nbd_set_tls (h, LIBNBD_TLS_ALLOW);
  nbd_set_tls_verify_peer (h, false);
  snprintf (uri, sizeof uri, "%d", port);
  step ("connect_tcp with verify_peer off");
  say ("connect_tcp, tls allow, verify_peer false", "%s",
       rv (nbd_connect_tcp (h, "localhost", uri)));
  say ("get_uri after it", "%s", masked (nbd_get_uri (h)));
  nbd_shutdown (h, 0);
  nbd_close (h);

  /* Query parameter names are case-insensitive in 1.22 (issue 7 item
   * 24, measured on 1.22 built from source); 1.14 matches them with
   * strcmp and refuses "SOCKET" (EINVAL: no socket parameter).
   */
  h = new_handle ();
  snprintf (uri, sizeof uri, "nbd+unix:///?SOCKET=%s", unx.sock);
  step ("connect_uri ?SOCKET=");
  want ("connect_uri nbd+unix:///?SOCKET=S", "0", "%s", rv (nbd_connect_uri (h, uri)));
  nbd_close (h);
  h = new_handle ();
  snprintf (uri, sizeof uri, "nbd+unix:///?socket=%s", unx.sock);
  step ("connect_uri ?socket=");
  say ("connect_uri nbd+unix:///?socket=S", "%s", rv (nbd_connect_uri (h, uri)));
  say ("get_uri after it", "%s", masked (nbd_get_uri (h)));
  nbd_close (h);

  /* nbd_is_uri(3) (1.22): a string is a URI only if it has a scheme
   * followed by "://"? No: upstream parses it, and "nbd:foo" (no
   * authority, opaque part) is rejected: item 27.
   */
  h = new_handle ();
  {
    static const struct { const char *s, *want; } cases[] = {
      { "nbd:foo", "0" }, { "nbd://localhost", "1" },
      { "nbd+unix:///?socket=/tmp/x", "1" }, { "/tmp/sock", "0" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      char key[96];
      snprintf (key, sizeof key, "is_uri \"%s\"", cases[i].s);
      if (is_uri)
        want (key, cases[i].want, "%s", rv (is_uri (h, cases[i].s)));
      else
        want (key, cases[i].want, "not in this library");
    }
  }
  nbd_close (h);
}

int
main (void)
{
  const char *args[] = { "memory", "1M", NULL };

  probe_begin ();
  start_tcp_nbdkit ();
  start_nbdkit (&unx, args);
  section ("tcp connects", tcp_connects);
  section ("uris", uris);
  server_stop (&unx);
  kill (tcp.pid, SIGTERM);
  waitpid (tcp.pid, NULL, 0);
  return 0;
}
