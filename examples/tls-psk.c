/* tls-psk: an encrypted connection, authenticated by a pre-shared key
 * (PSK) instead of certificates.
 *
 * Usage: tls-psk KEYFILE USERNAME SOCKET
 *
 * The key file holds "username:hexkey" lines, as written by GnuTLS's
 * psktool.  Both sides use the same file, e.g.:
 *
 *   psktool -u alice -p keys.psk
 *   nbdkit --tls=require --tls-psk=keys.psk -U /tmp/sock memory 1M
 *   tls-psk keys.psk alice /tmp/sock
 *
 * Prints whether TLS was negotiated and checks a write and a read over
 * the encrypted connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

int
main (int argc, char *argv[])
{
  struct nbd_handle *h;
  char out[4096], in[4096];

  if (argc != 4) {
    fprintf (stderr, "usage: %s KEYFILE USERNAME SOCKET\n", argv[0]);
    return EXIT_FAILURE;
  }

  h = nbd_create ();
  if (h == NULL)
    goto error;
  if (!nbd_supports_tls (h)) {
    fprintf (stderr, "this libnbd was built without TLS\n");
    nbd_close (h);
    return EXIT_FAILURE;
  }

  /* LIBNBD_TLS_REQUIRE: fail rather than talk in clear text if the
   * server does not offer TLS.  (LIBNBD_TLS_ALLOW would fall back to
   * clear text, which anyone on the path can force.)  The TLS settings
   * must be made before connecting.
   */
  if (nbd_set_tls (h, LIBNBD_TLS_REQUIRE) == -1 ||
      nbd_set_tls_psk_file (h, argv[1]) == -1 ||
      nbd_set_tls_username (h, argv[2]) == -1)
    goto error;

  /* The key is checked during the TLS handshake, inside the connect: a
   * wrong key or user name fails here.
   */
  if (nbd_connect_unix (h, argv[3]) == -1)
    goto error;

  printf ("tls: %s\n", nbd_get_tls_negotiated (h) == 1 ? "yes" : "no");

  memset (out, 0x5a, sizeof out);
  if (nbd_pwrite (h, out, sizeof out, 0, 0) == -1 ||
      nbd_pread (h, in, sizeof in, 0, 0) == -1)
    goto error;
  printf ("read back: %s\n", memcmp (in, out, sizeof in) == 0 ? "ok" : "WRONG");

  nbd_shutdown (h, 0);
  nbd_close (h);
  return memcmp (in, out, sizeof in) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;

 error:
  fprintf (stderr, "%s\n", nbd_get_error ());
  nbd_close (h);
  return EXIT_FAILURE;
}
