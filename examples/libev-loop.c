/* libev-loop: libnbd inside a libev event loop.  One ev_io watcher
 * follows the handle's socket; after each event the watcher is re-armed
 * with whatever libnbd waits for next.
 *
 * Usage: libev-loop URI
 * Does what aio-poll and glib-loop do (8 reads of 64 KiB spread over the
 * export, printing the first and last big-endian word of each).
 *
 * libev has no "prepare" step per watcher, so the events to watch are
 * recomputed wherever libnbd may have changed its mind: after every
 * notification and after issuing commands.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <ev.h>
#include <libnbd.h>

#define NR_READS 8
#define READ_SIZE 65536

static struct nbd_handle *h;
static struct ev_loop *loop;
static ev_io watcher;
static unsigned char bufs[NR_READS][READ_SIZE];
static uint64_t offsets[NR_READS];
static int reads_issued, reads_done, reads_failed;
static int exit_status = EXIT_SUCCESS;

/* Point the watcher at what libnbd waits for now.  ev_io_set may only
 * be used on a stopped watcher, so stop it only if something changed.
 */
static void
rearm (void)
{
  unsigned dir = nbd_aio_get_direction (h);
  int events = (dir & LIBNBD_AIO_DIRECTION_READ ? EV_READ : 0)
    | (dir & LIBNBD_AIO_DIRECTION_WRITE ? EV_WRITE : 0);

  if (events == (watcher.events & (EV_READ | EV_WRITE)))
    return;
  ev_io_stop (loop, &watcher);
  ev_io_set (&watcher, nbd_aio_get_fd (h), events);
  ev_io_start (loop, &watcher);
}

static void
finish (int status)
{
  exit_status = status;
  ev_io_stop (loop, &watcher);
  ev_break (loop, EVBREAK_ALL);
}

static int
read_done (void *user_data, int *error)
{
  if (*error != 0)
    reads_failed++;
  reads_done++;
  return 1;                     /* retire the command */
}

/* Once connected, issue all the reads; libnbd sends what the socket
 * takes now and the rest when the watcher reports it writable.
 */
static void
issue_reads (void)
{
  int64_t size = nbd_get_size (h);

  if (size < NR_READS * READ_SIZE) {
    fprintf (stderr, "the export is too small\n");
    finish (EXIT_FAILURE);
    return;
  }
  for (int i = 0; i < NR_READS; i++) {
    offsets[i] = (uint64_t) (size / NR_READS) * i & ~(uint64_t) 7;
    if (nbd_aio_pread (h, bufs[i], READ_SIZE, offsets[i],
                       (nbd_completion_callback) { .callback = read_done },
                       0) == -1) {
      fprintf (stderr, "%s\n", nbd_get_error ());
      finish (EXIT_FAILURE);
      return;
    }
    reads_issued++;
  }
}

static void
socket_ready (struct ev_loop *l, ev_io *w, int revents)
{
  int r = 0;

  if (revents & EV_READ)
    r = nbd_aio_notify_read (h);
  else if (revents & EV_WRITE)
    r = nbd_aio_notify_write (h);
  if (r == -1) {
    fprintf (stderr, "%s\n", nbd_get_error ());
    finish (EXIT_FAILURE);
    return;
  }

  if (nbd_aio_is_connecting (h)) {
    rearm ();
    return;
  }
  if (nbd_aio_is_dead (h) || nbd_aio_is_closed (h)) {
    fprintf (stderr, "the connection ended early\n");
    finish (EXIT_FAILURE);
    return;
  }
  if (reads_issued == 0) {
    issue_reads ();
    if (exit_status != EXIT_SUCCESS)
      return;
  }
  if (reads_done == NR_READS) {
    finish (EXIT_SUCCESS);
    return;
  }
  rearm ();
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
  if (argc != 2) {
    fprintf (stderr, "usage: %s URI\n", argv[0]);
    return EXIT_FAILURE;
  }

  h = nbd_create ();
  if (h == NULL || nbd_aio_connect_uri (h, argv[1]) == -1) {
    fprintf (stderr, "%s\n", nbd_get_error ());
    nbd_close (h);
    return EXIT_FAILURE;
  }

  loop = EV_DEFAULT;
  ev_io_init (&watcher, socket_ready, nbd_aio_get_fd (h), 0);
  rearm ();
  ev_run (loop, 0);

  if (exit_status == EXIT_SUCCESS && reads_failed == 0) {
    for (int i = 0; i < NR_READS; i++)
      printf ("read at %" PRIu64 ": first word %" PRIu64 ", last word %"
              PRIu64 "\n", offsets[i], big_endian_word (bufs[i]),
              big_endian_word (bufs[i] + READ_SIZE - 8));
  }
  else
    exit_status = EXIT_FAILURE;

  nbd_shutdown (h, 0);
  nbd_close (h);
  return exit_status;
}
