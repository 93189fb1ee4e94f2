/* copy: copy one export to another, with several reads and writes in
 * flight on two connections driven by one poll(2) loop.
 *
 * Usage: copy SOURCE-URI DESTINATION-URI
 * The destination must be at least as large as the source.  Chunks that
 * read as all zeroes are written with NBD_CMD_WRITE_ZEROES, which sends
 * no data, when the destination allows it.
 *
 * The copy is a pipeline of slots: each slot reads a chunk from the
 * source, then writes it to the destination, then takes the next chunk.
 * Completion callbacks only move a slot to its next state; the main loop
 * issues the commands.  (A callback must not call libnbd on the handle
 * that runs it; keeping all calls in the loop also keeps it simple.)
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#define CHUNK (256 * 1024)
#define SLOTS 8

enum slot_state { IDLE, READING, READ_DONE, WRITING };

struct slot {
  enum slot_state state;
  uint64_t offset;
  size_t length;
  int error;                    /* errno of a failed command, or 0 */
  char buf[CHUNK];
};

static struct slot slots[SLOTS];
static uint64_t bytes_done, bytes_zeroed;

static int
read_done (void *user_data, int *error)
{
  struct slot *s = user_data;

  s->error = *error;
  s->state = READ_DONE;
  return 1;
}

static int
write_done (void *user_data, int *error)
{
  struct slot *s = user_data;

  s->error = *error;
  if (*error == 0)
    bytes_done += s->length;
  s->state = IDLE;
  return 1;
}

static bool
all_zero (const char *buf, size_t length)
{
  return buf[0] == 0 && memcmp (buf, buf + 1, length - 1) == 0;
}

/* Wait on both sockets at once and let each handle act on its own. */
static int
poll_both (struct nbd_handle *h[2])
{
  struct pollfd pfd[2];

  for (int i = 0; i < 2; i++) {
    unsigned dir = nbd_aio_get_direction (h[i]);

    pfd[i].fd = nbd_aio_get_fd (h[i]);
    if (pfd[i].fd == -1)
      return -1;
    pfd[i].events = (dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0)
      | (dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0);
  }
  if (poll (pfd, 2, -1) == -1) {
    if (errno == EINTR)
      return 0;
    perror ("poll");
    exit (EXIT_FAILURE);
  }
  for (int i = 0; i < 2; i++) {
    int r = 0;

    if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
      r = nbd_aio_notify_read (h[i]);
    else if (pfd[i].revents & POLLOUT)
      r = nbd_aio_notify_write (h[i]);
    if (r == -1)
      return -1;
  }
  return 0;
}

int
main (int argc, char *argv[])
{
  struct nbd_handle *h[2] = { NULL, NULL }; /* source, destination */
  struct nbd_handle *src, *dst;
  uint64_t size, next = 0;
  bool can_zero;

  if (argc != 3) {
    fprintf (stderr, "usage: %s SOURCE-URI DESTINATION-URI\n", argv[0]);
    return EXIT_FAILURE;
  }

  for (int i = 0; i < 2; i++) {
    h[i] = nbd_create ();
    if (h[i] == NULL || nbd_connect_uri (h[i], argv[i + 1]) == -1)
      goto error;
  }
  src = h[0];
  dst = h[1];
  size = nbd_get_size (src);
  if (nbd_get_size (dst) < (int64_t) size) {
    fprintf (stderr, "the destination is smaller than the source\n");
    goto out;
  }
  if (nbd_is_read_only (dst) == 1) {
    fprintf (stderr, "the destination is read-only\n");
    goto out;
  }
  can_zero = nbd_can_zero (dst) == 1;

  while (bytes_done < size) {
    for (int i = 0; i < SLOTS; i++) {
      struct slot *s = &slots[i];

      if (s->error != 0) {
        fprintf (stderr, "copying at %" PRIu64 ": %s\n", s->offset,
                 strerror (s->error));
        goto out;
      }
      if (s->state == IDLE && next < size) {
        s->offset = next;
        s->length = size - next < CHUNK ? size - next : CHUNK;
        next += s->length;
        s->state = READING;
        if (nbd_aio_pread (src, s->buf, s->length, s->offset,
                           (nbd_completion_callback) {
                             .callback = read_done, .user_data = s }, 0) == -1)
          goto error;
      }
      else if (s->state == READ_DONE) {
        nbd_completion_callback done = { .callback = write_done,
                                         .user_data = s };
        int64_t cookie;

        s->state = WRITING;
        if (can_zero && all_zero (s->buf, s->length)) {
          cookie = nbd_aio_zero (dst, s->length, s->offset, done, 0);
          bytes_zeroed += s->length;
        }
        else
          cookie = nbd_aio_pwrite (dst, s->buf, s->length, s->offset,
                                   done, 0);
        if (cookie == -1)
          goto error;
      }
    }
    if (bytes_done < size && poll_both (h) == -1)
      goto error;
  }

  /* Make the copy durable before saying it is done. */
  if (nbd_can_flush (dst) == 1 && nbd_flush (dst, 0) == -1)
    goto error;
  printf ("copied: %" PRIu64 " bytes\n", bytes_done);
  printf ("of which zeroed without sending data: %" PRIu64 " bytes\n",
          bytes_zeroed);
  nbd_shutdown (src, 0);
  nbd_shutdown (dst, 0);
  nbd_close (src);
  nbd_close (dst);
  return EXIT_SUCCESS;

 error:
  fprintf (stderr, "%s\n", nbd_get_error ());
 out:
  nbd_close (h[0]);
  nbd_close (h[1]);
  return EXIT_FAILURE;
}
