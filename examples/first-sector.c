/* first-sector: the smallest useful libnbd program.  Connect to an NBD
 * server, read its first 512-byte sector and write it to stdout.
 *
 * Usage: first-sector URI > sector.bin
 *   e.g. first-sector nbd://localhost        (then: hexdump -C sector.bin)
 *        first-sector 'nbd+unix:///?socket=/tmp/sock'
 */
#include <stdio.h>
#include <stdlib.h>

#include <libnbd.h>

int
main (int argc, char *argv[])
{
  struct nbd_handle *h;
  char sector[512];

  if (argc != 2) {
    fprintf (stderr, "usage: %s URI\n", argv[0]);
    return EXIT_FAILURE;
  }

  /* Every libnbd program starts with a handle: it holds the settings,
   * the connection and the commands in flight.
   */
  h = nbd_create ();
  if (h == NULL) {
    fprintf (stderr, "%s\n", nbd_get_error ());
    return EXIT_FAILURE;
  }

  /* nbd_connect_uri blocks until the handshake is over and the handle
   * can take commands.  On failure, nbd_get_error () explains why; the
   * message belongs to this thread and stays until the next failure.
   */
  if (nbd_connect_uri (h, argv[1]) == -1) {
    fprintf (stderr, "%s\n", nbd_get_error ());
    nbd_close (h);
    return EXIT_FAILURE;
  }

  /* A blocking read: it returns when the whole buffer is filled, or -1.
   * An export shorter than 512 bytes makes this fail cleanly (the library
   * refuses a read beyond the end before sending it).
   */
  if (nbd_pread (h, sector, sizeof sector, 0, 0) == -1) {
    fprintf (stderr, "%s\n", nbd_get_error ());
    nbd_close (h);
    return EXIT_FAILURE;
  }

  if (fwrite (sector, sizeof sector, 1, stdout) != 1) {
    perror ("stdout");
    nbd_close (h);
    return EXIT_FAILURE;
  }

  /* nbd_shutdown tells the server we are done (NBD_CMD_DISC) after any
   * writes are flushed; nbd_close then frees the handle.  Closing without
   * a shutdown also works but the server sees the connection drop.
   */
  nbd_shutdown (h, 0);
  nbd_close (h);
  return EXIT_SUCCESS;
}
