/* aio-poll: the asynchronous API driven by the program's own poll(2)
 * loop, as an event-driven program would do it.  Nothing here blocks
 * except poll itself.
 *
 * Usage: aio-poll URI
 * Issues 8 reads of 64 KiB at once, spread over the export, waits for
 * them all, and prints the first and last 8-byte word of each (read as
 * big-endian numbers: with nbdkit's pattern plugin, each word is its
 * own offset).
 *
 * The three calls that tie libnbd to any event loop:
 *   nbd_aio_get_fd         the socket to watch (it changes only on connect)
 *   nbd_aio_get_direction  what the library waits for now: to read, to
 *                          write, or both; ask again before every wait
 *   nbd_aio_notify_read/write   tell the library the socket is ready;
 *                          it then does as much work as it can without
 *                          blocking
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <libnbd.h>

#define NR_READS 8
#define READ_SIZE 65536

static struct nbd_handle *h;

static void
die (void)
{
  /* The message names the call that failed and why. */
  fprintf (stderr, "%s\n", nbd_get_error ());
  nbd_close (h);
  exit (EXIT_FAILURE);
}

/* One turn of the event loop: wait until the socket is ready for what
 * the library wants, then let the library act on it.
 */
static void
poll_once (void)
{
  struct pollfd pfd = { .fd = nbd_aio_get_fd (h) };
  unsigned direction = nbd_aio_get_direction (h);
  int r;

  if (pfd.fd == -1)             /* e.g. the connection is dead */
    die ();
  if (direction & LIBNBD_AIO_DIRECTION_READ)
    pfd.events |= POLLIN;
  if (direction & LIBNBD_AIO_DIRECTION_WRITE)
    pfd.events |= POLLOUT;

  do
    r = poll (&pfd, 1, -1);
  while (r == -1 && errno == EINTR);
  if (r == -1) {
    perror ("poll");
    exit (EXIT_FAILURE);
  }

  /* An error or hang-up is reported as readable, so the library reads,
   * sees the end of the connection and fails the commands in flight.
   * One notification per turn: afterwards the direction may differ.
   */
  if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
    r = nbd_aio_notify_read (h);
  else if (pfd.revents & POLLOUT)
    r = nbd_aio_notify_write (h);
  if (r == -1)
    die ();
}

static uint64_t
big_endian_word (const unsigned char *p)
{
  uint64_t value = 0;

  for (int i = 0; i < 8; i++)
    value = value << 8 | p[i];
  return value;
}

int
main (int argc, char *argv[])
{
  static unsigned char bufs[NR_READS][READ_SIZE];
  int64_t cookies[NR_READS];
  int64_t size;

  if (argc != 2) {
    fprintf (stderr, "usage: %s URI\n", argv[0]);
    return EXIT_FAILURE;
  }

  h = nbd_create ();
  if (h == NULL)
    die ();

  /* Start connecting and return at once; the handshake happens inside
   * poll_once, until the handle leaves the connecting state.
   */
  if (nbd_aio_connect_uri (h, argv[1]) == -1)
    die ();
  while (nbd_aio_is_connecting (h))
    poll_once ();
  if (!nbd_aio_is_ready (h))
    die ();

  size = nbd_get_size (h);
  if (size < NR_READS * READ_SIZE) {
    fprintf (stderr, "the export is smaller than %d bytes\n",
             NR_READS * READ_SIZE);
    nbd_close (h);
    return EXIT_FAILURE;
  }

  /* Issue every read before waiting for any.  Each call only queues the
   * request (and sends it if the socket has room) and returns a cookie
   * that names the command from now on.
   */
  for (int i = 0; i < NR_READS; i++) {
    uint64_t offset = (uint64_t) (size / NR_READS) * i & ~(uint64_t) 7;

    cookies[i] = nbd_aio_pread (h, bufs[i], READ_SIZE, offset,
                                NBD_NULL_COMPLETION, 0);
    if (cookies[i] == -1)
      die ();
  }

  /* nbd_aio_in_flight counts the commands not answered yet. */
  while (nbd_aio_in_flight (h) > 0)
    poll_once ();

  /* A command without a completion callback stays known to the handle
   * until nbd_aio_command_completed collects it ("retires" it): it
   * returns 1 on success and -1 with the command's error.
   */
  for (int i = 0; i < NR_READS; i++) {
    uint64_t offset = (uint64_t) (size / NR_READS) * i & ~(uint64_t) 7;

    if (nbd_aio_command_completed (h, cookies[i]) != 1)
      die ();
    printf ("read at %" PRIu64 ": first word %" PRIu64 ", last word %" PRIu64
            "\n", offset, big_endian_word (bufs[i]),
            big_endian_word (bufs[i] + READ_SIZE - 8));
  }

  /* Disconnecting is asynchronous too: nbd_aio_disconnect queues
   * NBD_CMD_DISC, and the loop runs until the server closes.
   */
  if (nbd_aio_disconnect (h, 0) == -1)
    die ();
  while (!nbd_aio_is_closed (h) && !nbd_aio_is_dead (h))
    poll_once ();
  nbd_close (h);
  return EXIT_SUCCESS;
}
