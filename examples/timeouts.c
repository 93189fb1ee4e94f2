/* timeouts: this library's deadlines (<libnbd-ext.h>, see libnbd-ext(3)),
 * used three ways against a server that may be late to start and slow
 * to answer reads.
 *
 * Usage: timeouts SOCKET
 *
 *  1. A connect timeout also retries: the program may start before the
 *     server listens on SOCKET, and connects as soon as it does (or
 *     fails with ETIMEDOUT after 10 s).
 *  2. A request timeout on a blocking call: a read that gets no reply
 *     within 500 ms fails with ETIMEDOUT.  NBD cannot cancel a single
 *     command, so the connection ends: the handle is dead afterwards.
 *  3. The same in the program's own poll loop: nbd_ext_aio_get_timeout
 *     bounds the wait, and nbd_ext_aio_notify_timeout acts on the
 *     deadline when the wait ends without an event.
 *
 * With nbdkit's delay filter (--filter=delay ... delay-read=3) every
 * read is late, so steps 2 and 3 both time out.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libnbd-ext.h>         /* includes <libnbd.h> */

static long
now_ms (void)
{
  struct timespec t;

  clock_gettime (CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void
die (struct nbd_handle *h)
{
  /* The message names the call that failed and why. */
  fprintf (stderr, "%s\n", nbd_get_error ());
  nbd_close (h);
  exit (EXIT_FAILURE);
}

/* Steps 1 and 2 need only settings: the blocking calls keep the
 * deadlines by themselves.
 */
static struct nbd_handle *
connect_with_timeouts (const char *socket)
{
  struct nbd_handle *h = nbd_create ();

  if (h == NULL ||
      nbd_ext_set_connect_timeout (h, 10000) == -1 ||
      nbd_ext_set_request_timeout (h, 500) == -1)
    die (h);
  if (nbd_connect_unix (h, socket) == -1)
    die (h);
  return h;
}

static int
read_done (void *user_data, int *error)
{
  *(int *) user_data = *error;  /* the command's errno, 0 if it worked */
  return 1;
}

int
main (int argc, char *argv[])
{
  static char buf[4096];
  struct nbd_handle *h;
  long start;
  int command_error = -1;

  if (argc != 2) {
    fprintf (stderr, "usage: %s SOCKET\n", argv[0]);
    return EXIT_FAILURE;
  }

  /* 1. */
  h = connect_with_timeouts (argv[1]);
  printf ("connected (connect timeout %lld ms, request timeout %lld ms)\n",
          (long long) nbd_ext_get_connect_timeout (h),
          (long long) nbd_ext_get_request_timeout (h));

  /* 2. */
  start = now_ms ();
  if (nbd_pread (h, buf, sizeof buf, 0, 0) != -1) {
    printf ("blocking read: answered in time\n");
    nbd_close (h);
    return EXIT_FAILURE;
  }
  printf ("blocking read: %s after about %ld00 ms, handle dead: %s\n",
          nbd_get_errno () == ETIMEDOUT ? "ETIMEDOUT" : strerror (nbd_get_errno ()),
          (now_ms () - start + 50) / 100,
          nbd_aio_is_dead (h) ? "yes" : "no");
  nbd_close (h);

  /* 3.  A new connection: the old one is gone for good. */
  h = connect_with_timeouts (argv[1]);
  start = now_ms ();
  if (nbd_aio_pread (h, buf, sizeof buf, 0,
                     (nbd_completion_callback) { .callback = read_done,
                                                 .user_data = &command_error },
                     0) == -1)
    die (h);

  while (command_error == -1) {
    unsigned dir = nbd_aio_get_direction (h);
    struct pollfd pfd = {
      .fd = nbd_aio_get_fd (h),
      .events = (dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0)
        | (dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0),
    };
    /* -1 (no deadline) is also poll's "wait for ever". */
    int r = poll (&pfd, 1, (int) nbd_ext_aio_get_timeout (h));

    if (r == -1 && errno != EINTR) {
      perror ("poll");
      exit (EXIT_FAILURE);
    }
    if (r == 0) {
      /* The wait ended by time: fails the commands whose deadline has
       * passed (and the connection with them), running their callbacks.
       */
      if (nbd_ext_aio_notify_timeout (h) == -1)
        printf ("event loop: nbd_ext_aio_notify_timeout: %s\n",
                nbd_get_errno () == ETIMEDOUT ? "ETIMEDOUT" : "other error");
    }
    else if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
      nbd_aio_notify_read (h);
    else if (pfd.revents & POLLOUT)
      nbd_aio_notify_write (h);
  }
  printf ("event loop: the read completed with %s after about %ld00 ms\n",
          command_error == ETIMEDOUT ? "ETIMEDOUT" : strerror (command_error),
          (now_ms () - start + 50) / 100);
  nbd_close (h);
  return EXIT_SUCCESS;
}
