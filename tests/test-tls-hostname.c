/* CVE-2024-7383: over TCP, with the peer verified (the default) and no
 * nbd_set_tls_hostname, the server's certificate must match the host
 * the program asked for: the name given to nbd_connect_tcp, or the host
 * of an nbds:// URI.  Otherwise any certificate from a trusted CA would
 * do, and whoever holds one could stand in for the server.
 *
 * One CA, the only one the client trusts, signs two server
 * certificates, each served by nbdkit on loopback TCP:
 *   "dns": DNS name localhost, no IP address;
 *   "ip":  IP addresses 127.0.0.1 and ::1, DNS name some.other.name.
 * Both servers are reachable as "localhost" and as "127.0.0.1", so a
 * refused connection differs from an accepted one only in the name the
 * certificate is checked against.  If the loopback has IPv6, both also
 * listen on ::1, which an nbds URI writes as [::1]: the name checked is
 * the address without the brackets.
 *
 * Skipped (77) when the library lacks TLS, nbdkit lacks TLS, or
 * certtool is missing.
 */
#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "checks.h"
#include "server.h"
#include "tls-helpers.h"

/* As upstream libnbd reports a certificate that fails verification:
 * no errno, and the handshake's own error message.
 */
#define VERIFY_FAILED_ERRNO 0
#define VERIFY_FAILED_MSG "gnutls_handshake: Error in the certificate verification."

static const char *top;         /* everything made here */
static char clientdir[128];     /* what the client gets: the CA only */

/* The CA, the certificates directories "dns" and "ip" for nbdkit, and
 * "client" with the CA certificate alone.
 */
static void
make_credentials (void)
{
  static const char *const servers[] = { "dns", "ip" };

  top = tls_workdir_create ("libnbd-tls-hostname");
  REQUIRE (top != NULL, "mkdtemp: %s", strerror (errno));

  write_file_or_exit (top, "ca.info",
                      "cn = libnbd hostname test CA\nca\ncert_signing_key\n"
                      "expiration_days = 30\n");
  /* No "cn = localhost" for "ip": GnuTLS could fall back to the common
   * name and match "localhost" through it.
   */
  write_file_or_exit (top, "dns.info",
                      "organization = libnbd test\ncn = localhost\ndns_name = localhost\n"
                      "tls_www_server\nencryption_key\nsigning_key\nexpiration_days = 30\n");
  write_file_or_exit (top, "ip.info",
                      "organization = libnbd test\ncn = some.other.name\n"
                      "dns_name = some.other.name\nip_address = 127.0.0.1\nip_address = ::1\n"
                      "tls_www_server\nencryption_key\nsigning_key\nexpiration_days = 30\n");
  REQUIRE (run ("(cd '%s' && "
                "certtool --generate-privkey --key-type=ecdsa --outfile ca-key.pem && "
                "certtool --generate-self-signed --load-privkey ca-key.pem "
                "  --template ca.info --outfile ca-cert.pem && "
                "mkdir client && cp ca-cert.pem client/"
                ") >/dev/null 2>&1", top) == 0,
           "generating the CA failed");
  for (size_t i = 0; i < sizeof servers / sizeof servers[0]; i++)
    REQUIRE (run ("(cd '%s' && mkdir %s && cp ca-cert.pem %s/ && "
                  "certtool --generate-privkey --key-type=ecdsa "
                  "  --outfile %s/server-key.pem && "
                  "certtool --generate-certificate --load-ca-certificate ca-cert.pem "
                  "  --load-ca-privkey ca-key.pem --load-privkey %s/server-key.pem "
                  "  --template %s.info --outfile %s/server-cert.pem"
                  ") >/dev/null 2>&1", top, servers[i], servers[i], servers[i],
                  servers[i], servers[i], servers[i]) == 0,
             "generating the server certificate %s failed", servers[i]);
  snprintf (clientdir, sizeof clientdir, "%s/client", top);
}

/* nbdkit on address addr with the certificates of directory name. */
static void
start_nbdkit (struct server *s, const char *name, const char *addr)
{
  char certs[128];

  snprintf (certs, sizeof certs, "%s/%s", top, name);
  {
    const char *argv[] = { "nbdkit", "-f", "-i", addr, "-p", "$PORT",
                           "-P", "$PID", "--tls=require",
                           "--tls-certificates", certs, "memory", "1M", NULL };
    REQUIRE (server_start (s, argv) == 0, "nbdkit with certificate %s on %s did not start",
             name, addr);
  }
}

/* A handle requiring TLS and trusting our CA; verify_peer as given. */
static struct nbd_handle *
tls_handle (bool verify_peer)
{
  struct nbd_handle *h = nbd_create ();

  REQUIRE (h != NULL, "nbd_create");
  REQUIRE (nbd_set_tls (h, LIBNBD_TLS_REQUIRE) == 0, "nbd_set_tls");
  REQUIRE (nbd_set_tls_certificates (h, clientdir) == 0, "nbd_set_tls_certificates");
  if (!verify_peer)
    REQUIRE (nbd_set_tls_verify_peer (h, false) == 0, "nbd_set_tls_verify_peer");
  return h;
}

/* Connect to host:port, through nbd_connect_tcp or, if via_uri, an
 * nbds:// URI.  0 or -1 as the connect call.
 */
static int
connect_to (struct nbd_handle *h, const char *host, const char *port, bool via_uri)
{
  char uri[256];

  if (!via_uri)
    return nbd_connect_tcp (h, host, port);
  if (strchr (host, ':'))
    snprintf (uri, sizeof uri, "nbds://[%s]:%s/", host, port);
  else
    snprintf (uri, sizeof uri, "nbds://%s:%s/", host, port);
  return nbd_connect_uri (h, uri);
}

/* The connection must work, over TLS, and carry a read. */
static void
expect_accepted (const struct server *s, const char *cert, const char *host,
                 bool via_uri, bool verify_peer)
{
  struct nbd_handle *h = tls_handle (verify_peer);
  char buf[512];

  fprintf (stderr, "test-tls-hostname: certificate %s, %s %s, verify %s: ",
           cert, via_uri ? "URI" : "TCP", host, verify_peer ? "on" : "off");
  if (connect_to (h, host, s->port, via_uri) == -1) {
    fprintf (stderr, "refused\n");
    FAIL ("certificate %s, %s %s: refused: %s (errno %d)", cert,
          via_uri ? "URI" : "TCP", host, nbd_get_error (), nbd_get_errno ());
  }
  else {
    fprintf (stderr, "accepted\n");
    CHECK (nbd_get_tls_negotiated (h) == 1, "%s: TLS not negotiated", host);
    CHECK (nbd_pread (h, buf, sizeof buf, 0, 0) == 0, "%s: pread: %s", host,
           nbd_get_error ());
    CHECK (nbd_shutdown (h, 0) == 0, "%s: shutdown: %s", host, nbd_get_error ());
  }
  nbd_close (h);
}

/* The connection must fail verification: the handle is dead, with
 * upstream's errno and message.
 */
static void
expect_refused (const struct server *s, const char *cert, const char *host,
                bool via_uri)
{
  struct nbd_handle *h = tls_handle (true);
  const char *msg;

  fprintf (stderr, "test-tls-hostname: certificate %s, %s %s, verify on: ",
           cert, via_uri ? "URI" : "TCP", host);
  if (connect_to (h, host, s->port, via_uri) == 0) {
    fprintf (stderr, "accepted\n");
    FAIL ("certificate %s (not for %s) accepted for %s %s", cert, host,
          via_uri ? "URI" : "TCP", host);
    nbd_close (h);
    return;
  }
  msg = nbd_get_error ();
  fprintf (stderr, "refused: %s (errno %d)\n", msg ? msg : "(null)", nbd_get_errno ());
  CHECK (nbd_get_errno () == VERIFY_FAILED_ERRNO, "%s: errno %d, expected %d",
         host, nbd_get_errno (), VERIFY_FAILED_ERRNO);
  CHECK (msg != NULL && strstr (msg, VERIFY_FAILED_MSG) != NULL,
         "%s: message \"%s\" without \"%s\"", host, msg ? msg : "(null)",
         VERIFY_FAILED_MSG);
  CHECK (nbd_aio_is_dead (h) == 1, "%s: state %s, expected DEAD", host,
         nbd_connection_state (h));
  nbd_close (h);
}

/* Against the server with certificate cert: good is a name it covers,
 * bad one it does not (either NULL: not tried).
 */
static void
check_names (const struct server *s, const char *cert, const char *good,
             const char *bad)
{
  for (int via_uri = 0; via_uri <= 1; via_uri++) {
    if (good)
      expect_accepted (s, cert, good, via_uri, true);
    if (bad) {
      expect_refused (s, cert, bad, via_uri);
      /* Only verification turned off lets the wrong name through. */
      expect_accepted (s, cert, bad, via_uri, false);
    }
  }
}

/* True if a socket can be bound to ::1. */
static bool
have_ipv6_loopback (void)
{
  struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
  int fd = socket (AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool ok = fd >= 0 && bind (fd, (struct sockaddr *) &sin6, sizeof sin6) == 0;

  if (fd >= 0)
    close (fd);
  return ok;
}

int
main (void)
{
  struct server dns, ip, dns6, ip6;

  if (!tls_prerequisites ("certtool"))
    exit (77);
  make_credentials ();
  start_nbdkit (&dns, "dns", "127.0.0.1");
  start_nbdkit (&ip, "ip", "127.0.0.1");

  /* The address the program connected to is not a name in a
   * certificate that lists only DNS names ...
   */
  check_names (&dns, "dns", "localhost", "127.0.0.1");
  /* ... and a DNS name is not checked against the IP addresses. */
  check_names (&ip, "ip", "127.0.0.1", "localhost");

  server_stop (&dns);
  server_stop (&ip);

  /* Over IPv6 only the address itself reaches the servers for sure
   * ("localhost" may not resolve to ::1), so each server gets one side.
   */
  if (have_ipv6_loopback ()) {
    start_nbdkit (&dns6, "dns", "::1");
    start_nbdkit (&ip6, "ip", "::1");
    check_names (&dns6, "dns", NULL, "::1");
    check_names (&ip6, "ip", "::1", NULL);
    server_stop (&dns6);
    server_stop (&ip6);
  }
  else
    fprintf (stderr, "test-tls-hostname: no IPv6 loopback: that part skipped\n");
  if (check_status ("test-tls-hostname") != EXIT_SUCCESS)
    exit (EXIT_FAILURE);
  printf ("test-tls-hostname: OK\n");
  exit (EXIT_SUCCESS);
}
