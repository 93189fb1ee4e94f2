/* cancel: stop a blocking call from a signal handler with nbd_ext_cancel
 * (<libnbd-ext.h>, see libnbd-ext(3)).  A program can let Ctrl-C end a
 * long transfer cleanly instead of killing it mid-way.
 *
 * Usage: cancel URI [SECONDS]
 * Reads the whole export, 1 MiB at a time.  Ctrl-C, or a timer after
 * SECONDS (decimals allowed) if given, cancels the read in progress:
 * the call returns -1 with ECANCELED.  NBD has no way to stop one
 * command, so the connection ends too; the program then reports how
 * far it got.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <libnbd-ext.h>         /* includes <libnbd.h> */

#define CHUNK (1024 * 1024)

static struct nbd_handle *h;

/* nbd_ext_cancel takes no lock and allocates nothing, so, unlike every
 * other libnbd call, it is safe in a signal handler.
 */
static void
on_signal (int signum)
{
  nbd_ext_cancel (h);
}

int
main (int argc, char *argv[])
{
  static char buf[CHUNK];
  struct sigaction sa = { .sa_handler = on_signal };
  uint64_t offset = 0, size;

  if (argc != 2 && argc != 3) {
    fprintf (stderr, "usage: %s URI [SECONDS]\n", argv[0]);
    return EXIT_FAILURE;
  }

  h = nbd_create ();
  if (h == NULL || nbd_connect_uri (h, argv[1]) == -1) {
    fprintf (stderr, "%s\n", nbd_get_error ());
    nbd_close (h);
    return EXIT_FAILURE;
  }
  size = nbd_get_size (h);

  /* The handle exists before the handlers are installed, so they never
   * see a NULL or half-made handle.
   */
  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGALRM, &sa, NULL);
  if (argc == 3) {
    double seconds = atof (argv[2]);
    struct itimerval timer = {
      .it_value = { .tv_sec = (time_t) seconds,
                    .tv_usec = (suseconds_t) ((seconds - (time_t) seconds)
                                              * 1000000) },
    };
    setitimer (ITIMER_REAL, &timer, NULL);
  }

  /* Say so before starting, so that whoever presses Ctrl-C (or a test
   * sending SIGINT) knows the handler is in place.
   */
  printf ("reading %" PRIu64 " bytes\n", size);
  fflush (stdout);

  while (offset < size) {
    size_t count = size - offset < CHUNK ? size - offset : CHUNK;

    if (nbd_pread (h, buf, count, offset, 0) == -1) {
      if (nbd_get_errno () == ECANCELED) {
        printf ("cancelled after %" PRIu64 " of %" PRIu64 " bytes\n",
                offset, size);
        printf ("handle dead: %s\n", nbd_aio_is_dead (h) ? "yes" : "no");
        nbd_close (h);
        return 2;               /* like a tool interrupted by the user */
      }
      fprintf (stderr, "%s\n", nbd_get_error ());
      nbd_close (h);
      return EXIT_FAILURE;
    }
    offset += count;
  }
  printf ("read all %" PRIu64 " bytes\n", size);
  nbd_shutdown (h, 0);
  nbd_close (h);
  return EXIT_SUCCESS;
}
