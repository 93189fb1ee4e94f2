/* TLS against nbdkit: X.509 certificates (made here with certtool),
 * pre-shared keys (psktool), the TLS settings, opt mode, nbds URIs and
 * the non-blocking handshake driven by an external event loop.
 *
 * Skipped (77) when the library lacks TLS, nbdkit lacks TLS, or
 * certtool/psktool are missing.
 */
#include <config.h>

#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <inttypes.h>

#include "common.h"
#include "server.h"
#include "tls-helpers.h"

#define SIZE (8 * 1024 * 1024)

static const char *certs;       /* CA, server and client certificates */
static char cacerts[128];       /* only the CA certificate */
static char pskfile[128];
static char badpskfile[128];

static void
make_credentials (void)
{
  certs = tls_workdir_create ("libnbd-tls");
  CHECK_OR_EXIT (certs != NULL, "mkdtemp: %s", strerror (errno));

  write_file_or_exit (certs, "ca.info",
                      "cn = libnbd test CA\nca\ncert_signing_key\nexpiration_days = 30\n");
  write_file_or_exit (certs, "server.info",
                      "organization = libnbd test\ncn = localhost\ndns_name = localhost\n"
                      "ip_address = 127.0.0.1\ntls_www_server\nencryption_key\n"
                      "signing_key\nexpiration_days = 30\n");
  write_file_or_exit (certs, "client.info",
                      "organization = libnbd test\ncn = client\ntls_www_client\n"
                      "encryption_key\nsigning_key\nexpiration_days = 30\n");
  CHECK_OR_EXIT (run ("(cd '%s' && "
                      "certtool --generate-privkey --key-type=ecdsa --outfile ca-key.pem && "
                      "certtool --generate-self-signed --load-privkey ca-key.pem "
                      "  --template ca.info --outfile ca-cert.pem && "
                      "certtool --generate-privkey --key-type=ecdsa --outfile server-key.pem && "
                      "certtool --generate-certificate --load-ca-certificate ca-cert.pem "
                      "  --load-ca-privkey ca-key.pem --load-privkey server-key.pem "
                      "  --template server.info --outfile server-cert.pem && "
                      "certtool --generate-privkey --key-type=ecdsa --outfile client-key.pem && "
                      "certtool --generate-certificate --load-ca-certificate ca-cert.pem "
                      "  --load-ca-privkey ca-key.pem --load-privkey client-key.pem "
                      "  --template client.info --outfile client-cert.pem && "
                      "mkdir cacerts && cp ca-cert.pem cacerts/ && "
                      "psktool -u alice -p keys.psk && psktool -u alice -p bad.psk"
                      ") >/dev/null 2>&1", certs) == 0,
                 "generating certificates and keys failed");
  snprintf (cacerts, sizeof cacerts, "%s/cacerts", certs);
  snprintf (pskfile, sizeof pskfile, "%s/keys.psk", certs);
  snprintf (badpskfile, sizeof badpskfile, "%s/bad.psk", certs);
}

/* nbdkit on a unix socket; extra arguments before the plugin. */
static void
start_nbdkit (struct server *s, const char *a1, const char *a2, const char *a3)
{
  const char *argv[16];
  int n = 0;

  argv[n++] = "nbdkit";
  argv[n++] = "-f";
  argv[n++] = "-U"; argv[n++] = "$SOCK";
  argv[n++] = "-P"; argv[n++] = "$PID";
  if (a1) argv[n++] = a1;
  if (a2) argv[n++] = a2;
  if (a3) argv[n++] = a3;
  argv[n++] = "memory";
  argv[n++] = "8M";
  argv[n] = NULL;
  CHECK_OR_EXIT (server_start (s, argv) == 0, "nbdkit did not start");
}

static struct nbd_handle *
new_handle (int tls)
{
  struct nbd_handle *h = nbd_create ();
  CHECK_OR_EXIT (h != NULL, "%s", nbd_get_error ());
  CHECK_OR_EXIT (nbd_set_tls (h, tls) == 0, "%s", nbd_get_error ());
  return h;
}

/* new_handle with the certificates in dir. */
static struct nbd_handle *
cert_handle (int tls, const char *dir)
{
  struct nbd_handle *h = new_handle (tls);
  nbd_set_tls_certificates (h, dir);
  return h;
}

/* A TLS handle with the pre-shared keys in file, as user. */
static struct nbd_handle *
psk_handle (const char *file, const char *user)
{
  struct nbd_handle *h = new_handle (LIBNBD_TLS_REQUIRE);
  nbd_set_tls_psk_file (h, file);
  nbd_set_tls_username (h, user);
  return h;
}

/* Connecting must work, with TLS negotiated. */
static void
connect_tls (struct nbd_handle *h, const char *sock)
{
  CHECK_OR_EXIT (nbd_connect_unix (h, sock) == 0, "%s", nbd_get_error ());
  CHECK_OR_EXIT (nbd_get_tls_negotiated (h) == 1, "TLS not negotiated");
}

/* Data written and read back over the connection. */
static void
check_io (struct nbd_handle *h)
{
  char wbuf[65536], rbuf[65536];

  CHECK_OR_EXIT (nbd_get_size (h) == SIZE, "size %" PRIi64, nbd_get_size (h));
  for (size_t i = 0; i < sizeof wbuf; i++)
    wbuf[i] = (char) (i * 7 + 3);
  CHECK_OR_EXIT (nbd_pwrite (h, wbuf, sizeof wbuf, 12345, 0) == 0, "%s", nbd_get_error ());
  memset (rbuf, 0, sizeof rbuf);
  CHECK_OR_EXIT (nbd_pread (h, rbuf, sizeof rbuf, 12345, 0) == 0, "%s", nbd_get_error ());
  CHECK_OR_EXIT (memcmp (wbuf, rbuf, sizeof rbuf) == 0, "data read back differs");
}

/* A large read, then many commands in flight at once. */
static void
check_bulk (struct nbd_handle *h)
{
  enum { N = 64, LEN = 65536 };
  char *big = malloc (4 * 1024 * 1024);
  char *wbufs = malloc ((size_t) N * LEN), *rbufs = malloc ((size_t) N * LEN);
  int64_t wc[N], rc[N];

  CHECK_OR_EXIT (big && wbufs && rbufs, "malloc");
  /* 4 MiB each way: many TLS records, and sends that hit EAGAIN. */
  for (size_t i = 0; i < 4 * 1024 * 1024; i++)
    big[i] = (char) (i % 251);
  CHECK_OR_EXIT (nbd_pwrite (h, big, 4 * 1024 * 1024, 4 * 1024 * 1024, 0) == 0,
                 "%s", nbd_get_error ());
  memset (big, 0, 4 * 1024 * 1024);
  CHECK_OR_EXIT (nbd_pread (h, big, 4 * 1024 * 1024, 4 * 1024 * 1024, 0) == 0,
                 "%s", nbd_get_error ());
  for (size_t i = 0; i < 4 * 1024 * 1024; i++)
    CHECK_OR_EXIT (big[i] == (char) (i % 251), "4 MiB read differs at %zu", i);

  for (size_t i = 0; i < (size_t) N * LEN; i++)
    wbufs[i] = (char) ((i >> 3) ^ (i * 13));
  for (int i = 0; i < N; i++) {
    wc[i] = nbd_aio_pwrite (h, wbufs + (size_t) i * LEN, LEN, (uint64_t) i * LEN,
                            NBD_NULL_COMPLETION, 0);
    CHECK_OR_EXIT (wc[i] > 0, "%s", nbd_get_error ());
  }
  for (int i = 0; i < N; i++)
    while (nbd_aio_command_completed (h, (uint64_t) wc[i]) == 0)
      CHECK_OR_EXIT (nbd_poll (h, -1) != -1, "%s", nbd_get_error ());
  for (int i = 0; i < N; i++) {
    rc[i] = nbd_aio_pread (h, rbufs + (size_t) i * LEN, LEN, (uint64_t) i * LEN,
                           NBD_NULL_COMPLETION, 0);
    CHECK_OR_EXIT (rc[i] > 0, "%s", nbd_get_error ());
  }
  CHECK_OR_EXIT (nbd_aio_in_flight (h) > 0, "nothing in flight");
  while (nbd_aio_in_flight (h) > 0)
    CHECK_OR_EXIT (nbd_poll (h, -1) != -1, "%s", nbd_get_error ());
  for (int i = 0; i < N; i++)
    CHECK_OR_EXIT (nbd_aio_command_completed (h, (uint64_t) rc[i]) == 1,
                   "read %d: %s", i, nbd_get_error ());
  CHECK_OR_EXIT (memcmp (wbufs, rbufs, (size_t) N * LEN) == 0,
                 "aio data read back differs");
  free (big);
  free (wbufs);
  free (rbufs);
}

/* The statistics count NBD bytes, not TLS records: each command moves
 * them by exactly its size on the NBD level (nbdkit answers a write with
 * a simple reply and a read with one structured data chunk).
 */
static void
check_stats (struct nbd_handle *h)
{
  static char buf[65536];
  uint64_t s0 = nbd_stats_bytes_sent (h), r0 = nbd_stats_bytes_received (h);
  uint64_t cs0 = nbd_stats_chunks_sent (h), cr0 = nbd_stats_chunks_received (h);
  uint64_t ds, dr;

  CHECK_OR_EXIT (nbd_get_structured_replies_negotiated (h) == 1, "no structured replies");
  CHECK_OR_EXIT (nbd_pwrite (h, buf, sizeof buf, 0, 0) == 0, "%s", nbd_get_error ());
  ds = nbd_stats_bytes_sent (h) - s0;
  dr = nbd_stats_bytes_received (h) - r0;
  CHECK_OR_EXIT (ds == 28 + sizeof buf && dr == 16,
                 "pwrite moved the byte counts by %" PRIu64 " sent, %" PRIu64
                 " received (NBD: %zu, 16)", ds, dr, 28 + sizeof buf);
  s0 += ds;
  r0 += dr;
  CHECK_OR_EXIT (nbd_pread (h, buf, sizeof buf, 0, 0) == 0, "%s", nbd_get_error ());
  ds = nbd_stats_bytes_sent (h) - s0;
  dr = nbd_stats_bytes_received (h) - r0;
  CHECK_OR_EXIT (ds == 28 && dr == 20 + 8 + sizeof buf,
                 "pread moved the byte counts by %" PRIu64 " sent, %" PRIu64
                 " received (NBD: 28, %zu)", ds, dr, 20 + 8 + sizeof buf);
  CHECK_OR_EXIT (nbd_stats_chunks_sent (h) - cs0 == 2
                 && nbd_stats_chunks_received (h) - cr0 == 2,
                 "chunks: %" PRIu64 " sent, %" PRIu64 " received, expected 2 and 2",
                 nbd_stats_chunks_sent (h) - cs0, nbd_stats_chunks_received (h) - cr0);
}

static void
close_cleanly (struct nbd_handle *h)
{
  CHECK_OR_EXIT (nbd_shutdown (h, 0) == 0, "%s", nbd_get_error ());
  nbd_close (h);
}

/* Errors that upstream libnbd reports for a failed TLS handshake: no
 * errno (0), the message of gnutls_handshake's error.
 */
#define HANDSHAKE_FAILED 0
#define ANY_ERRNO (-1)

/* The connect fails with errnum (ANY_ERRNO: any errno but 0) and a
 * message containing substr (if not NULL).
 */
static void
check_connect_error (const char *what, int errnum, const char *substr)
{
  const char *msg = nbd_get_error ();
  int e = nbd_get_errno ();

  fprintf (stderr, "%s: failed as expected: %s (errno %d)\n", what, msg, e);
  CHECK_OR_EXIT (msg != NULL, "%s: no error message", what);
  if (errnum == ANY_ERRNO)
    CHECK_OR_EXIT (e != 0, "%s: no errno", what);
  else
    CHECK_OR_EXIT (e == errnum, "%s: errno %d, expected %d", what, e, errnum);
  if (substr)
    CHECK_OR_EXIT (strstr (msg, substr) != NULL, "%s: message without \"%s\"",
                   what, substr);
}

static void
expect_connect_fails (struct nbd_handle *h, const char *sock, const char *what,
                      int errnum, const char *substr)
{
  CHECK_OR_EXIT (nbd_connect_unix (h, sock) == -1, "%s: connect succeeded", what);
  check_connect_error (what, errnum, substr);
  nbd_close (h);
}

static void
test_x509 (void)
{
  struct server s;
  struct nbd_handle *h;

  start_nbdkit (&s, "--tls=require", "--tls-certificates", certs);

  /* Certificates, verifying the CA chain (no host name on unix). */
  h = new_handle (LIBNBD_TLS_REQUIRE);
  CHECK_OR_EXIT (nbd_set_tls_certificates (h, certs) == 0, "%s", nbd_get_error ());
  connect_tls (h, s.sock);
  check_io (h);
  check_bulk (h);
  check_stats (h);
  close_cleanly (h);

  /* The right host name with verification. */
  h = cert_handle (LIBNBD_TLS_REQUIRE, certs);
  nbd_set_tls_hostname (h, "localhost");
  CHECK_OR_EXIT (nbd_connect_unix (h, s.sock) == 0, "%s", nbd_get_error ());
  check_io (h);
  close_cleanly (h);

  /* A wrong host name fails verification ... */
  h = cert_handle (LIBNBD_TLS_REQUIRE, certs);
  nbd_set_tls_hostname (h, "wrong.example");
  expect_connect_fails (h, s.sock, "wrong host name", HANDSHAKE_FAILED,
                        "gnutls_handshake: Error in the certificate verification.");

  /* ... even in ALLOW mode: a failed TLS handshake is not a refusal. */
  h = cert_handle (LIBNBD_TLS_ALLOW, certs);
  nbd_set_tls_hostname (h, "wrong.example");
  expect_connect_fails (h, s.sock, "wrong host name, allow", HANDSHAKE_FAILED,
                        "gnutls_handshake: Error in the certificate verification.");

  /* ... but is accepted without verification. */
  h = cert_handle (LIBNBD_TLS_REQUIRE, certs);
  nbd_set_tls_hostname (h, "wrong.example");
  nbd_set_tls_verify_peer (h, false);
  connect_tls (h, s.sock);
  close_cleanly (h);

  /* An untrusted server (only the system CAs) fails verification. */
  h = cert_handle (LIBNBD_TLS_REQUIRE, "/nonexistent-dir");
  expect_connect_fails (h, s.sock, "missing certificates directory", HANDSHAKE_FAILED,
                        "gnutls_handshake: Error in the certificate verification.");
  /* ... and, as with libnbd, it is not an error in itself: without
   * verification the connection succeeds.
   */
  h = cert_handle (LIBNBD_TLS_REQUIRE, "/nonexistent-dir");
  nbd_set_tls_verify_peer (h, false);
  connect_tls (h, s.sock);
  close_cleanly (h);
  {
    char empty[128];
    snprintf (empty, sizeof empty, "%s/empty", certs);
    CHECK_OR_EXIT (run ("mkdir -p '%s'", empty) == 0, "mkdir");
    h = cert_handle (LIBNBD_TLS_REQUIRE, empty);
    expect_connect_fails (h, s.sock, "untrusted CA", HANDSHAKE_FAILED,
                          "gnutls_handshake: Error in the certificate verification.");
  }

  /* A client certificate file GnuTLS cannot read: its reason, errno 0
   * (as libnbd).
   */
  {
    char garbled[128];
    snprintf (garbled, sizeof garbled, "%s/garbled", certs);
    CHECK_OR_EXIT (run ("mkdir -p '%s' && cp '%s/ca-cert.pem' '%s/'",
                        garbled, certs, garbled) == 0, "mkdir");
    write_file_or_exit (garbled, "client-cert.pem", "not a certificate\n");
    write_file_or_exit (garbled, "client-key.pem", "not a key\n");
    h = cert_handle (LIBNBD_TLS_REQUIRE, garbled);
    expect_connect_fails (h, s.sock, "garbled client certificate", 0,
                          "client-cert.pem");
  }

  /* ALLOW with credentials: TLS is used. */
  h = cert_handle (LIBNBD_TLS_ALLOW, certs);
  connect_tls (h, s.sock);
  close_cleanly (h);

  /* DISABLE against a server requiring TLS: the server refuses. */
  h = new_handle (LIBNBD_TLS_DISABLE);
  expect_connect_fails (h, s.sock, "TLS disabled, server requires it", ANY_ERRNO, NULL);

  /* nbds+unix URI. */
  {
    char uri[512];
    h = nbd_create ();
    CHECK_OR_EXIT (h != NULL, "%s", nbd_get_error ());
    snprintf (uri, sizeof uri, "nbds+unix:///?socket=%s&tls-certificates=%s",
              s.sock, certs);
    CHECK_OR_EXIT (nbd_connect_uri (h, uri) == -1, "URI with a local file accepted");
    nbd_close (h);
    h = nbd_create ();
    nbd_set_uri_allow_local_file (h, true);
    CHECK_OR_EXIT (nbd_connect_uri (h, uri) == 0, "%s", nbd_get_error ());
    CHECK_OR_EXIT (nbd_get_tls (h) == LIBNBD_TLS_REQUIRE, "tls setting");
    CHECK_OR_EXIT (nbd_get_tls_negotiated (h) == 1, "TLS not negotiated");
    {
      char *u = nbd_get_uri (h);
      CHECK_OR_EXIT (u && strncmp (u, "nbds+unix://", 12) == 0, "nbd_get_uri: %s",
                     u ? u : nbd_get_error ());
      free (u);
    }
    check_io (h);
    close_cleanly (h);
  }

  /* The handshake driven by the caller's own event loop. */
  {
    int fd, n = 0;
    bool saw_write = false;
    h = cert_handle (LIBNBD_TLS_REQUIRE, certs);
    CHECK_OR_EXIT (nbd_aio_connect_unix (h, s.sock) == 0, "%s", nbd_get_error ());
    while (nbd_aio_is_connecting (h)) {
      unsigned dir = nbd_aio_get_direction (h);
      struct pollfd p;
      fd = nbd_aio_get_fd (h);
      CHECK_OR_EXIT (fd >= 0 && dir != 0, "fd %d dir %u", fd, dir);
      if (dir & LIBNBD_AIO_DIRECTION_WRITE)
        saw_write = true;
      p.fd = fd;
      p.events = ((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0)
        | ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0);
      p.revents = 0;
      CHECK_OR_EXIT (poll (&p, 1, 10000) == 1, "poll timed out (dir %u)", dir);
      if (p.revents & (POLLIN | POLLHUP | POLLERR))
        CHECK_OR_EXIT (nbd_aio_notify_read (h) == 0, "%s", nbd_get_error ());
      else if (p.revents & POLLOUT)
        CHECK_OR_EXIT (nbd_aio_notify_write (h) == 0, "%s", nbd_get_error ());
      n++;
    }
    (void) saw_write;
    CHECK_OR_EXIT (nbd_aio_is_ready (h), "not ready: %s", nbd_connection_state (h));
    CHECK_OR_EXIT (nbd_get_tls_negotiated (h) == 1, "TLS not negotiated");
    fprintf (stderr, "event loop handshake: %d polls\n", n);
    check_io (h);
    close_cleanly (h);
  }

  /* Opt mode: automatic STARTTLS happens before the handover. */
  h = cert_handle (LIBNBD_TLS_REQUIRE, certs);
  nbd_set_opt_mode (h, true);
  CHECK_OR_EXIT (nbd_connect_unix (h, s.sock) == 0, "%s", nbd_get_error ());
  CHECK_OR_EXIT (nbd_aio_is_negotiating (h), "not negotiating");
  CHECK_OR_EXIT (nbd_get_tls_negotiated (h) == 1, "TLS not negotiated");
  CHECK_OR_EXIT (nbd_opt_go (h) == 0, "%s", nbd_get_error ());
  check_io (h);
  close_cleanly (h);

  /* Opt mode: STARTTLS requested by hand. */
  h = cert_handle (LIBNBD_TLS_DISABLE, certs);
  nbd_set_opt_mode (h, true);
  CHECK_OR_EXIT (nbd_connect_unix (h, s.sock) == 0, "%s", nbd_get_error ());
  CHECK_OR_EXIT (nbd_get_tls_negotiated (h) == 0, "TLS negotiated early");
  CHECK_OR_EXIT (nbd_opt_starttls (h) == 1, "%s", nbd_get_error ());
  CHECK_OR_EXIT (nbd_get_tls_negotiated (h) == 1, "TLS not negotiated");
  CHECK_OR_EXIT (nbd_opt_go (h) == 0, "%s", nbd_get_error ());
  check_io (h);
  close_cleanly (h);

  server_stop (&s);
}

/* The server checks the client's certificate. */
static void
test_client_cert (void)
{
  struct server s;
  struct nbd_handle *h;

  {
    const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                           "--tls=require", "--tls-verify-peer",
                           "--tls-certificates", certs, "memory", "8M", NULL };
    CHECK_OR_EXIT (server_start (&s, argv) == 0, "nbdkit did not start");
  }

  h = cert_handle (LIBNBD_TLS_REQUIRE, certs);
  CHECK_OR_EXIT (nbd_connect_unix (h, s.sock) == 0, "%s", nbd_get_error ());
  check_io (h);
  close_cleanly (h);

  h = cert_handle (LIBNBD_TLS_REQUIRE, cacerts);
  /* (With TLS 1.3 the server refuses after the client's handshake is
   * done: the first read fails.) */
  /* The server refuses us in the handshake or (TLS 1.3) right after it,
   * which the first record read sees: either way GnuTLS's reason and, as
   * libnbd, no errno.
   */
  expect_connect_fails (h, s.sock, "no client certificate", 0, "gnutls_");

  server_stop (&s);
}

static void
test_tcp (void)
{
  struct server s;
  const char *port = s.port;
  struct nbd_handle *h;

  {
    const char *argv[] = { "nbdkit", "-f", "-i", "127.0.0.1", "-p", "$PORT",
                           "-P", "$PID", "--tls=require", "--tls-certificates", certs,
                           "memory", "8M", NULL };
    CHECK_OR_EXIT (server_start (&s, argv) == 0, "nbdkit on TCP did not start");
  }

  /* The host name given to connect_tcp is checked. */
  h = cert_handle (LIBNBD_TLS_REQUIRE, certs);
  CHECK_OR_EXIT (nbd_connect_tcp (h, "localhost", port) == 0, "%s", nbd_get_error ());
  CHECK_OR_EXIT (nbd_get_tls_negotiated (h) == 1, "TLS not negotiated");
  check_io (h);
  close_cleanly (h);

  /* The IP address is in the certificate too. */
  h = cert_handle (LIBNBD_TLS_REQUIRE, certs);
  CHECK_OR_EXIT (nbd_connect_tcp (h, "127.0.0.1", port) == 0, "%s", nbd_get_error ());
  close_cleanly (h);

  /* tls_hostname overrides it. */
  h = cert_handle (LIBNBD_TLS_REQUIRE, certs);
  nbd_set_tls_hostname (h, "wrong.example");
  CHECK_OR_EXIT (nbd_connect_tcp (h, "localhost", port) == -1, "wrong name accepted");
  check_connect_error ("TCP wrong host name", HANDSHAKE_FAILED,
                       "gnutls_handshake: Error in the certificate verification.");
  nbd_close (h);

  server_stop (&s);
}

static void
test_psk (void)
{
  struct server s;
  struct nbd_handle *h;

  start_nbdkit (&s, "--tls=require", "--tls-psk", pskfile);

  h = psk_handle (pskfile, "alice");
  connect_tls (h, s.sock);
  check_io (h);
  check_bulk (h);
  check_stats (h);
  close_cleanly (h);

  /* The wrong key. */
  h = psk_handle (badpskfile, "alice");
  expect_connect_fails (h, s.sock, "wrong PSK", HANDSHAKE_FAILED, "gnutls_handshake: ");

  /* A user not in the file. */
  h = psk_handle (pskfile, "bob");
  expect_connect_fails (h, s.sock, "unknown PSK user", EINVAL, "bob");

  /* As libnbd: a line with an empty key does not name the user (EINVAL),
   * a key that is not hex is GnuTLS's refusal (its reason, errno 0).
   */
  {
    char path[256];
    write_file_or_exit (certs, "emptykey.psk", "alice:\n");
    snprintf (path, sizeof path, "%s/emptykey.psk", certs);
    h = psk_handle (path, "alice");
    expect_connect_fails (h, s.sock, "empty PSK", EINVAL, "alice");
    write_file_or_exit (certs, "nothex.psk", "alice:zz\n");
    snprintf (path, sizeof path, "%s/nothex.psk", certs);
    h = psk_handle (path, "alice");
    expect_connect_fails (h, s.sock, "PSK not in hex", 0,
                          "gnutls_psk_set_client_credentials");
  }

  /* The same through an nbds+unix URI, with the user in the URI. */
  {
    char uri[512];
    h = nbd_create ();
    CHECK_OR_EXIT (h != NULL, "%s", nbd_get_error ());
    nbd_set_uri_allow_local_file (h, true);
    snprintf (uri, sizeof uri, "nbds+unix://bob@/?socket=%s&tls-psk-file=%s",
              s.sock, pskfile);
    CHECK_OR_EXIT (nbd_connect_uri (h, uri) == -1, "unknown PSK user in a URI accepted");
    check_connect_error ("unknown PSK user in a URI", EINVAL, "bob");
    nbd_close (h);
  }

  server_stop (&s);
}

static void
test_plain_server (void)
{
  struct server s;
  struct nbd_handle *h;

  start_nbdkit (&s, NULL, NULL, NULL);

  /* ALLOW falls back to plaintext when the server refuses STARTTLS. */
  h = cert_handle (LIBNBD_TLS_ALLOW, certs);
  CHECK_OR_EXIT (nbd_connect_unix (h, s.sock) == 0, "%s", nbd_get_error ());
  CHECK_OR_EXIT (nbd_get_tls_negotiated (h) == 0, "TLS negotiated?");
  check_io (h);
  close_cleanly (h);

  /* REQUIRE does not. */
  h = cert_handle (LIBNBD_TLS_REQUIRE, certs);
  CHECK_OR_EXIT (nbd_connect_unix (h, s.sock) == -1, "connected without TLS");
  EXPECT_ERROR_OR_EXIT (ENOTSUP, "nbd_connect_unix", "TLS");
  nbd_close (h);

  /* opt_starttls: the server declines. */
  h = new_handle (LIBNBD_TLS_DISABLE);
  nbd_set_opt_mode (h, true);
  CHECK_OR_EXIT (nbd_connect_unix (h, s.sock) == 0, "%s", nbd_get_error ());
  CHECK_OR_EXIT (nbd_opt_starttls (h) == 0, "%s", nbd_get_error ());
  CHECK_OR_EXIT (nbd_get_tls_negotiated (h) == 0, "TLS negotiated?");
  CHECK_OR_EXIT (nbd_opt_go (h) == 0, "%s", nbd_get_error ());
  check_io (h);
  close_cleanly (h);

  server_stop (&s);
}

/* 20 connections, each a read then nbd_shutdown, which must return 0
 * even though the server drops the connection right after NBD_CMD_DISC
 * without close_notify (so that our close_notify may meet a reset).
 */
static void
check_disconnects (const char *sock, const char *export, const char *what)
{
  for (int i = 0; i < 20; i++) {
    struct nbd_handle *h = cert_handle (LIBNBD_TLS_REQUIRE, certs);
    char buf[512];

    if (export)
      nbd_set_export_name (h, export);
    connect_tls (h, sock);
    CHECK_OR_EXIT (nbd_pread (h, buf, sizeof buf, 0, 0) == 0, "%s", nbd_get_error ());
    CHECK_OR_EXIT (nbd_shutdown (h, 0) == 0, "%s: disconnect %d: %s (errno %d)",
                   what, i, nbd_get_error (), nbd_get_errno ());
    CHECK_OR_EXIT (nbd_aio_is_closed (h), "%s: %s", what, nbd_connection_state (h));
    nbd_close (h);
  }
  fprintf (stderr, "%s: 20 clean disconnects\n", what);
}

static void
test_qemu_nbd (void)
{
  struct server s;
  char img[128], creds[256];

  if (run ("command -v qemu-nbd >/dev/null") != 0) {
    fprintf (stderr, "qemu-nbd missing: that part skipped\n");
    return;
  }
  snprintf (img, sizeof img, "%s/qemu.img", certs);
  CHECK_OR_EXIT (run ("truncate -s 1M '%s'", img) == 0, "truncate");
  snprintf (creds, sizeof creds, "tls-creds-x509,id=tls0,endpoint=server,dir=%s", certs);
  {
    const char *argv[] = { "qemu-nbd", "-k", "$SOCK", "--pid-file", "$PID", "-t",
                           "--object", creds, "--tls-creds", "tls0",
                           "-f", "raw", img, NULL };
    CHECK_OR_EXIT (server_start (&s, argv) == 0, "qemu-nbd did not start");
  }
  check_disconnects (s.sock, NULL, "qemu-nbd");
  server_stop (&s);
}

static void
test_nbd_server (void)
{
  char conf[128], sock[128], pidfile[128];
  long pid = 0;
  FILE *fp;

  if (run ("command -v nbd-server >/dev/null") != 0) {
    fprintf (stderr, "nbd-server missing: that part skipped\n");
    return;
  }
  snprintf (conf, sizeof conf, "%s/nbd-server.conf", certs);
  snprintf (sock, sizeof sock, "%s/nbd-server.sock", certs);
  snprintf (pidfile, sizeof pidfile, "%s/nbd-server.pid", certs);
  CHECK_OR_EXIT (run ("truncate -s 1M '%s/nbd-server.img'", certs) == 0, "truncate");
  fp = fopen (conf, "w");
  CHECK_OR_EXIT (fp != NULL, "%s: %s", conf, strerror (errno));
  fprintf (fp, "[generic]\nunixsock = %s\nforce_tls = true\n"
           "certfile = %s/server-cert.pem\nkeyfile = %s/server-key.pem\n"
           "cacertfile = %s/ca-cert.pem\n[disk]\nexportname = %s/nbd-server.img\n",
           sock, certs, certs, certs, certs);
  fclose (fp);
  /* It daemonizes: its pid comes from the pid file. */
  CHECK_OR_EXIT (run ("nbd-server -C '%s' -p '%s' 2>/dev/null", conf, pidfile) == 0,
                 "nbd-server did not start");
  for (int i = 0; i < 500 && pid <= 0; i++) {
    fp = fopen (pidfile, "r");
    if (fp) {
      if (fscanf (fp, "%ld", &pid) != 1)
        pid = 0;
      fclose (fp);
    }
    if (pid <= 0 || access (sock, F_OK) != 0) {
      pid = 0;
      usleep (20000);
    }
  }
  CHECK_OR_EXIT (pid > 0 && socket_wait_accepting (sock) == 0, "nbd-server did not start");
  check_disconnects (sock, "disk", "nbd-server");
  kill ((pid_t) pid, SIGTERM);
}

int
main (void)
{
  if (!tls_prerequisites ("certtool psktool"))
    exit (77);
  make_credentials ();
  test_x509 ();
  test_client_cert ();
  test_tcp ();
  test_psk ();
  test_plain_server ();
  test_qemu_nbd ();
  test_nbd_server ();
  printf ("test-tls: OK\n");
  exit (EXIT_SUCCESS);
}
