/* glib-loop: libnbd inside a glib main loop.  The handle becomes a
 * GSource: glib polls its socket together with everything else the
 * program waits for, and dispatches to libnbd when it is ready.
 *
 * Usage: glib-loop URI
 * Does what aio-poll does (8 reads of 64 KiB spread over the export,
 * printing the first and last big-endian word of each), the glib way.
 *
 * The source follows the three steps of a glib source:
 *   prepare   tell glib which events to watch, from nbd_aio_get_direction
 *             (it changes as commands are queued and sent)
 *   check     did any of them happen?
 *   dispatch  nbd_aio_notify_read or _write, then move the program on
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>
#include <libnbd.h>

#define NR_READS 8
#define READ_SIZE 65536

struct nbd_source {
  GSource source;               /* must come first: glib allocates this */
  struct nbd_handle *h;
  gpointer fd_tag;
};

/* The program's own state. */
static struct nbd_handle *h;
static GMainLoop *loop;
static unsigned char bufs[NR_READS][READ_SIZE];
static uint64_t offsets[NR_READS];
static int reads_issued, reads_done, reads_failed;
static int exit_status = EXIT_SUCCESS;

static gboolean
nbd_source_prepare (GSource *source, gint *timeout)
{
  struct nbd_source *s = (struct nbd_source *) source;
  unsigned dir = nbd_aio_get_direction (s->h);
  GIOCondition events = 0;

  if (dir & LIBNBD_AIO_DIRECTION_READ)
    events |= G_IO_IN;
  if (dir & LIBNBD_AIO_DIRECTION_WRITE)
    events |= G_IO_OUT;
  g_source_modify_unix_fd (source, s->fd_tag, events);
  /* libnbd needs no timer.  (With this library's request timeouts, the
   * wait would be bounded by nbd_ext_aio_get_timeout: see timeouts.c.)
   */
  *timeout = -1;
  return FALSE;                 /* ready only once the socket says so */
}

static gboolean
nbd_source_check (GSource *source)
{
  struct nbd_source *s = (struct nbd_source *) source;

  return g_source_query_unix_fd (source, s->fd_tag) != 0;
}

static gboolean
nbd_source_dispatch (GSource *source, GSourceFunc callback, gpointer data)
{
  struct nbd_source *s = (struct nbd_source *) source;
  GIOCondition revents = g_source_query_unix_fd (source, s->fd_tag);
  int r = 0;

  if (revents & (G_IO_IN | G_IO_HUP | G_IO_ERR))
    r = nbd_aio_notify_read (s->h);
  else if (revents & G_IO_OUT)
    r = nbd_aio_notify_write (s->h);
  if (r == -1) {
    fprintf (stderr, "%s\n", nbd_get_error ());
    exit_status = EXIT_FAILURE;
    g_main_loop_quit (loop);
    return G_SOURCE_REMOVE;
  }
  /* The callback given with g_source_set_callback: the program's step. */
  return callback (data);
}

static GSourceFuncs nbd_source_funcs = {
  .prepare = nbd_source_prepare,
  .check = nbd_source_check,
  .dispatch = nbd_source_dispatch,
};

static int
read_done (void *user_data, int *error)
{
  if (*error != 0)
    reads_failed++;
  reads_done++;
  return 1;                     /* retire the command */
}

/* Called after libnbd has handled each socket event: issue the reads
 * once connected, and end the loop once they are all back.  It runs
 * outside any libnbd callback, so it may call libnbd on the handle.
 */
static gboolean
step (gpointer data)
{
  if (nbd_aio_is_connecting (h))
    return G_SOURCE_CONTINUE;
  if (nbd_aio_is_dead (h) || nbd_aio_is_closed (h)) {
    fprintf (stderr, "the connection ended early\n");
    exit_status = EXIT_FAILURE;
    g_main_loop_quit (loop);
    return G_SOURCE_REMOVE;
  }
  if (reads_issued == 0) {
    int64_t size = nbd_get_size (h);

    if (size < NR_READS * READ_SIZE) {
      fprintf (stderr, "the export is too small\n");
      exit_status = EXIT_FAILURE;
      g_main_loop_quit (loop);
      return G_SOURCE_REMOVE;
    }
    for (int i = 0; i < NR_READS; i++) {
      offsets[i] = (uint64_t) (size / NR_READS) * i & ~(uint64_t) 7;
      if (nbd_aio_pread (h, bufs[i], READ_SIZE, offsets[i],
                         (nbd_completion_callback) { .callback = read_done },
                         0) == -1) {
        fprintf (stderr, "%s\n", nbd_get_error ());
        exit_status = EXIT_FAILURE;
        g_main_loop_quit (loop);
        return G_SOURCE_REMOVE;
      }
      reads_issued++;
    }
  }
  if (reads_done == NR_READS) {
    g_main_loop_quit (loop);
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
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
  GSource *source;
  struct nbd_source *s;

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

  /* The socket exists once connecting has started; it stays the same
   * for the life of the connection.
   */
  source = g_source_new (&nbd_source_funcs, sizeof (struct nbd_source));
  s = (struct nbd_source *) source;
  s->h = h;
  s->fd_tag = g_source_add_unix_fd (source, nbd_aio_get_fd (h), G_IO_IN);
  g_source_set_callback (source, step, NULL, NULL);
  g_source_attach (source, NULL);

  loop = g_main_loop_new (NULL, FALSE);
  g_main_loop_run (loop);

  if (exit_status == EXIT_SUCCESS && reads_failed == 0) {
    for (int i = 0; i < NR_READS; i++)
      printf ("read at %" PRIu64 ": first word %" PRIu64 ", last word %"
              PRIu64 "\n", offsets[i], big_endian_word (bufs[i]),
              big_endian_word (bufs[i] + READ_SIZE - 8));
  }
  else
    exit_status = EXIT_FAILURE;

  /* Remove the source before closing the handle: its socket goes away. */
  g_source_destroy (source);
  g_source_unref (source);
  g_main_loop_unref (loop);
  nbd_shutdown (h, 0);
  nbd_close (h);
  return exit_status;
}
