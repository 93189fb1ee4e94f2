/* connect-uri: connect to the server named by an NBD URI and say what
 * the URI selected.  URIs name every transport in one string:
 *
 *   nbd://HOST[:PORT]/EXPORT          TCP
 *   nbds://HOST/EXPORT                TCP with TLS required
 *   nbd+unix:///EXPORT?socket=PATH    Unix domain socket
 *   nbd+vsock://CID[:PORT]/EXPORT     AF_VSOCK
 *   nbd+ssh://[USER@]HOST/EXPORT?socket=PATH   through ssh
 *
 * Usage: connect-uri URI
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <libnbd.h>

int
main (int argc, char *argv[])
{
  struct nbd_handle *h;
  char *name, *uri;

  if (argc != 2) {
    fprintf (stderr, "usage: %s URI\n", argv[0]);
    return EXIT_FAILURE;
  }

  h = nbd_create ();
  if (h == NULL)
    goto error;

  /* URIs need the library to be built with URI support. */
  if (!nbd_supports_uri (h)) {
    fprintf (stderr, "this libnbd cannot parse URIs\n");
    nbd_close (h);
    return EXIT_FAILURE;
  }

  /* A URI comes from the user, so it may point anywhere.  A program that
   * only wants local sockets would narrow what is allowed first, e.g.
   *   nbd_set_uri_allow_transports (h, LIBNBD_ALLOW_TRANSPORT_UNIX);
   * This one accepts every transport, and TLS only if the URI asks.
   */
  if (nbd_connect_uri (h, argv[1]) == -1)
    goto error;

  /* The URI set the export name (the path part) before connecting. */
  name = nbd_get_export_name (h);
  if (name == NULL)
    goto error;
  printf ("export: \"%s\"\n", name);
  free (name);                  /* strings returned by libnbd are ours */

  printf ("size: %" PRIi64 "\n", nbd_get_size (h));
  printf ("tls: %s\n", nbd_get_tls_negotiated (h) == 1 ? "yes" : "no");

  /* nbd_get_uri builds a URI back from how the handle connected. */
  uri = nbd_get_uri (h);
  if (uri == NULL)
    goto error;
  printf ("uri: %s\n", uri);
  free (uri);

  nbd_shutdown (h, 0);
  nbd_close (h);
  return EXIT_SUCCESS;

 error:
  fprintf (stderr, "%s\n", nbd_get_error ());
  nbd_close (h);
  return EXIT_FAILURE;
}
