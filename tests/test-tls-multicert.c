/* Several client certificates: beside client-cert.pem / client-key.pem
 * the certificates directory may hold client-cert-N.pem /
 * client-key-N.pem for N = 0, 1, ..., and all of them are loaded.
 *
 * nbdkit (--tls-verify-peer) trusts only certificates of CA "A".  Each
 * client directory holds an RSA and an ECDSA certificate (certtool), one
 * of them issued by A and the other by a CA "B" the server does not
 * trust.  GnuTLS presents the certificate whose issuer the server asks
 * for, so the connection succeeds only if the pair from A was loaded,
 * whichever number it has.  A directory with only B's certificates
 * shows that the server does refuse them.
 *
 * Skipped (77) when the library lacks TLS, nbdkit lacks TLS, or certtool
 * is missing.
 */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libnbd.h>

#include "checks.h"
#include "server.h"
#include "tls-helpers.h"

static const char *top;         /* everything made here */

/* Two CAs; the server's certificate from A; client certificates
 * rsa-A, ecdsa-A, rsa-B, ecdsa-B (cert and key files named <name>-cert.pem
 * and <name>-key.pem).
 */
static void
make_credentials (void)
{
  static const char *const clients[][3] = {
    /* name, key type, CA */
    { "rsa-A", "rsa", "A" }, { "ecdsa-A", "ecdsa", "A" },
    { "rsa-B", "rsa", "B" }, { "ecdsa-B", "ecdsa", "B" },
  };

  top = tls_workdir_create ("libnbd-multicert");
  REQUIRE (top != NULL, "mkdtemp: %s", strerror (errno));

  write_file_or_exit (top, "caA.info",
                      "cn = libnbd test CA A\nca\ncert_signing_key\n"
                      "expiration_days = 30\n");
  write_file_or_exit (top, "caB.info",
                      "cn = libnbd test CA B\nca\ncert_signing_key\n"
                      "expiration_days = 30\n");
  write_file_or_exit (top, "server.info",
                      "organization = libnbd test\ncn = localhost\ndns_name = localhost\n"
                      "tls_www_server\nencryption_key\nsigning_key\nexpiration_days = 30\n");
  write_file_or_exit (top, "client.info",
                      "organization = libnbd test\ncn = client\ntls_www_client\n"
                      "encryption_key\nsigning_key\nexpiration_days = 30\n");
  REQUIRE (run ("(cd '%s' && for ca in A B; do "
                "  certtool --generate-privkey --key-type=ecdsa --outfile ca$ca-key.pem && "
                "  certtool --generate-self-signed --load-privkey ca$ca-key.pem "
                "    --template ca$ca.info --outfile ca$ca-cert.pem || exit 1; "
                "done && "
                "mkdir server && cp caA-cert.pem server/ca-cert.pem && "
                "certtool --generate-privkey --key-type=ecdsa --outfile server/server-key.pem && "
                "certtool --generate-certificate --load-ca-certificate caA-cert.pem "
                "  --load-ca-privkey caA-key.pem --load-privkey server/server-key.pem "
                "  --template server.info --outfile server/server-cert.pem"
                ") >/dev/null 2>&1", top) == 0,
           "generating the CAs and the server certificate failed");
  for (size_t i = 0; i < sizeof clients / sizeof clients[0]; i++)
    REQUIRE (run ("(cd '%s' && "
                  "certtool --generate-privkey --key-type=%s --outfile %s-key.pem && "
                  "certtool --generate-certificate --load-ca-certificate ca%s-cert.pem "
                  "  --load-ca-privkey ca%s-key.pem --load-privkey %s-key.pem "
                  "  --template client.info --outfile %s-cert.pem"
                  ") >/dev/null 2>&1", top, clients[i][1], clients[i][0],
                  clients[i][2], clients[i][2], clients[i][0], clients[i][0]) == 0,
             "generating client certificate %s failed", clients[i][0]);
}

/* A client certificates directory: A's CA certificate (to check the
 * server) and the given client pairs, each "SUFFIX=NAME" installing
 * NAME-cert.pem / NAME-key.pem as client-cert-SUFFIX.pem /
 * client-key-SUFFIX.pem ("" for the unnumbered pair).  Returns its path.
 */
static const char *
client_dir (const char *dirname, ...)
{
  static char path[128];
  const char *pair;
  va_list ap;

  snprintf (path, sizeof path, "%s/%s", top, dirname);
  REQUIRE (mkdir (path, 0700) == 0, "mkdir %s: %s", path, strerror (errno));
  REQUIRE (run ("cp '%s/caA-cert.pem' '%s/ca-cert.pem'", top, path) == 0, "cp");
  va_start (ap, dirname);
  while ((pair = va_arg (ap, const char *)) != NULL) {
    const char *eq = strchr (pair, '=');
    char suffix[16];
    REQUIRE (eq != NULL && (size_t) (eq - pair) < sizeof suffix - 1, "bad pair");
    if (eq == pair)
      suffix[0] = 0;
    else
      snprintf (suffix, sizeof suffix, "-%.*s", (int) (eq - pair), pair);
    REQUIRE (run ("cp '%s/%s-cert.pem' '%s/client-cert%s.pem' && "
                  "cp '%s/%s-key.pem' '%s/client-key%s.pem'",
                  top, eq + 1, path, suffix, top, eq + 1, path, suffix) == 0,
             "cp");
  }
  va_end (ap);
  return path;
}

/* Connect with the certificates in dir; true if it worked (then the
 * connection is used and closed).
 */
static bool
try_connect (struct server *s, const char *dir)
{
  struct nbd_handle *h = nbd_create ();
  char buf[512];
  bool ok;

  REQUIRE (h != NULL, "nbd_create");
  EXPECT_OK (nbd_set_tls (h, LIBNBD_TLS_REQUIRE));
  EXPECT_OK (nbd_set_tls_certificates (h, dir));
  ok = nbd_connect_unix (h, s->sock) == 0;
  if (ok) {
    CHECK (nbd_get_tls_negotiated (h) == 1, "TLS not negotiated");
    EXPECT_OK (nbd_pread (h, buf, sizeof buf, 0, 0));
    EXPECT_OK (nbd_shutdown (h, 0));
  }
  else
    fprintf (stderr, "test-tls-multicert: %s: %s (expected when refused)\n",
             dir, nbd_get_error ());
  nbd_close (h);
  return ok;
}

int
main (void)
{
  struct server s;
  char serverdir[128];
  const char *dir;

  if (!tls_prerequisites ("certtool"))
    exit (77);
  make_credentials ();
  snprintf (serverdir, sizeof serverdir, "%s/server", top);
  {
    const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                           "--tls=require", "--tls-verify-peer",
                           "--tls-certificates", serverdir, "memory", "1M", NULL };
    REQUIRE (server_start (&s, argv) == 0, "nbdkit did not start");
  }

  /* The trusted pair second, as ECDSA, then as RSA. */
  dir = client_dir ("ecdsa-second", "0=rsa-B", "1=ecdsa-A", NULL);
  CHECK (try_connect (&s, dir), "client-cert-1.pem (ECDSA, trusted) not used");
  dir = client_dir ("rsa-second", "0=ecdsa-B", "1=rsa-A", NULL);
  CHECK (try_connect (&s, dir), "client-cert-1.pem (RSA, trusted) not used");
  /* The trusted pair first. */
  dir = client_dir ("rsa-first", "0=rsa-A", "1=ecdsa-B", NULL);
  CHECK (try_connect (&s, dir), "client-cert-0.pem (RSA, trusted) not used");
  /* Numbered pairs beside the unnumbered one. */
  dir = client_dir ("beside-base", "=rsa-B", "0=ecdsa-A", NULL);
  CHECK (try_connect (&s, dir), "client-cert-0.pem beside client-cert.pem not used");
  dir = client_dir ("base-trusted", "=ecdsa-A", "0=rsa-B", NULL);
  CHECK (try_connect (&s, dir), "client-cert.pem beside client-cert-0.pem not used");

  /* Controls: only untrusted certificates are refused by the server ... */
  dir = client_dir ("untrusted", "0=rsa-B", "1=ecdsa-B", NULL);
  CHECK (!try_connect (&s, dir), "the server accepted only untrusted certificates");
  /* ... and numbering stops at the first missing pair. */
  dir = client_dir ("gap", "1=ecdsa-A", NULL);
  CHECK (!try_connect (&s, dir), "client-cert-1.pem loaded without client-cert-0.pem");

  /* A numbered pair that cannot be loaded is an error naming the file. */
  dir = client_dir ("broken", "0=rsa-A", NULL);
  REQUIRE (run ("echo garbage > '%s/client-key-0.pem'", dir) == 0, "echo");
  {
    struct nbd_handle *h = nbd_create ();
    REQUIRE (h != NULL, "nbd_create");
    EXPECT_OK (nbd_set_tls (h, LIBNBD_TLS_REQUIRE));
    EXPECT_OK (nbd_set_tls_certificates (h, dir));
    CHECK (nbd_connect_unix (h, s.sock) == -1, "connected with a broken key");
    CHECK (nbd_get_error () && strstr (nbd_get_error (), "client-key-0.pem"),
           "error does not name the key file: %s", nbd_get_error ());
    nbd_close (h);
  }

  server_stop (&s);
  if (check_status ("test-tls-multicert") != EXIT_SUCCESS)
    exit (EXIT_FAILURE);
  printf ("test-tls-multicert: OK\n");
  exit (EXIT_SUCCESS);
}
