/* connect-command: run an NBD server as a subprocess and talk to it over
 * a socketpair, with no socket file and no port.  The server must speak
 * NBD on its stdin and stdout, as nbdkit -s does.
 *
 * Usage: connect-command SERVER [ARGS...]
 *   e.g. connect-command nbdkit -s --exit-with-parent pattern 1M
 *
 * It prints the export size and the first 8-byte word of each MiB.
 * (nbdkit's pattern plugin stores at each 8-byte aligned offset that
 * offset as a big-endian number, which makes the output easy to check.)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <libnbd.h>

int
main (int argc, char *argv[])
{
  struct nbd_handle *h;
  int64_t size;

  if (argc < 2) {
    fprintf (stderr, "usage: %s SERVER [ARGS...]\n", argv[0]);
    return EXIT_FAILURE;
  }

  h = nbd_create ();
  if (h == NULL)
    goto error;

  /* The argument vector is NULL-terminated, like execvp's; argv from
   * main already is.  The library forks, connects the child's stdin and
   * stdout to one end of a socketpair, and execs it.  nbd_close closes
   * our end, which makes the server exit, and waits for it.
   * nbdkit's --exit-with-parent also ends it if this program dies first.
   */
  if (nbd_connect_command (h, &argv[1]) == -1)
    goto error;

  size = nbd_get_size (h);
  if (size == -1)
    goto error;
  printf ("size: %" PRIi64 "\n", size);

  for (int64_t offset = 0; offset + 8 <= size; offset += 1024 * 1024) {
    unsigned char word[8];
    uint64_t value = 0;

    if (nbd_pread (h, word, sizeof word, offset, 0) == -1)
      goto error;
    for (int i = 0; i < 8; i++)  /* big-endian bytes to a number */
      value = value << 8 | word[i];
    printf ("%" PRIi64 ": %" PRIu64 "\n", offset, value);
  }

  nbd_shutdown (h, 0);
  nbd_close (h);
  return EXIT_SUCCESS;

 error:
  fprintf (stderr, "%s\n", nbd_get_error ());
  nbd_close (h);
  return EXIT_FAILURE;
}
