/* Record a seed input for fuzz-server or fuzz-replies from a real
 * server: the target's own client session runs over a socketpair whose
 * other end a proxy thread joins to the server's Unix socket, keeping a
 * copy of every byte the server sends.  The input written is the
 * settings (or mode) byte followed by those bytes as segments, one per
 * time the server spoke after the client (fuzz-replies: only those after
 * the handshake, which its canned handshake replaces).
 *
 *   fuzz-record server SETTINGS SOCKET OUTPUT
 *   fuzz-record replies MODE SOCKET OUTPUT
 *
 * record-corpus.sh runs it against nbdkit and nbd-test-server.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "harness.h"

struct proxy {
  int client;                   /* our end of the client's socketpair */
  int server;                   /* connected to the real server */
  pthread_mutex_t lock;
  uint8_t *rec;                 /* what the server sent, in order */
  size_t len, cap;
  /* Where each segment starts: a new one when the server speaks after
   * the client did (struct feed in harness.h).
   */
  size_t *seg;
  size_t nr_seg;
  bool client_spoke;
};

static void
record (struct proxy *p, const uint8_t *buf, size_t n)
{
  pthread_mutex_lock (&p->lock);
  if (p->len + n > p->cap) {
    p->cap = (p->len + n) * 2;
    p->rec = realloc (p->rec, p->cap);
    if (p->rec == NULL) {
      perror ("realloc");
      exit (EXIT_FAILURE);
    }
  }
  if (p->client_spoke && p->len > p->seg[p->nr_seg - 1]) {
    p->seg = realloc (p->seg, (p->nr_seg + 1) * sizeof *p->seg);
    if (p->seg == NULL) {
      perror ("realloc");
      exit (EXIT_FAILURE);
    }
    p->seg[p->nr_seg++] = p->len;
  }
  p->client_spoke = false;
  memcpy (p->rec + p->len, buf, n);
  p->len += n;
  pthread_mutex_unlock (&p->lock);
}

static size_t
recorded (struct proxy *p)
{
  size_t n;
  pthread_mutex_lock (&p->lock);
  n = p->len;
  pthread_mutex_unlock (&p->lock);
  return n;
}

static int
send_all (int fd, const uint8_t *buf, size_t n)
{
  while (n > 0) {
    ssize_t r = send (fd, buf, n, MSG_NOSIGNAL);
    if (r == -1 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    buf += r;
    n -= (size_t) r;
  }
  return 0;
}

/* Copy both ways until both sides have finished; a server byte is
 * recorded before the client can see it, so once the client has seen
 * the end of the handshake the recording holds all of it.
 */
static void *
proxy_thread (void *arg)
{
  struct proxy *p = arg;
  bool client_open = true, server_open = true;
  uint8_t buf[65536];

  while (client_open || server_open) {
    struct pollfd pfd[2] = {
      { .fd = client_open ? p->client : -1, .events = POLLIN },
      { .fd = server_open ? p->server : -1, .events = POLLIN },
    };
    ssize_t r;

    if (poll (pfd, 2, -1) == -1) {
      if (errno == EINTR)
        continue;
      perror ("poll");
      exit (EXIT_FAILURE);
    }
    if (pfd[0].revents) {
      r = recv (p->client, buf, sizeof buf, 0);
      if (r > 0) {
        pthread_mutex_lock (&p->lock);
        p->client_spoke = true;
        pthread_mutex_unlock (&p->lock);
      }
      if (r <= 0 || send_all (p->server, buf, (size_t) r) == -1) {
        client_open = false;
        shutdown (p->server, SHUT_WR);
      }
    }
    if (pfd[1].revents) {
      r = recv (p->server, buf, sizeof buf, 0);
      if (r > 0)
        record (p, buf, (size_t) r);
      if (r <= 0 || send_all (p->client, buf, (size_t) r) == -1) {
        server_open = false;
        shutdown (p->client, SHUT_WR);
      }
    }
  }
  return NULL;
}

static int
connect_unix (const char *path)
{
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd == -1 || strlen (path) >= sizeof sun.sun_path) {
    fprintf (stderr, "fuzz-record: bad socket %s\n", path);
    exit (EXIT_FAILURE);
  }
  strcpy (sun.sun_path, path);
  if (connect (fd, (struct sockaddr *) &sun, sizeof sun) == -1) {
    perror (path);
    exit (EXIT_FAILURE);
  }
  return fd;
}

/* The meta context id the server gave base:allocation in its reply to
 * SET_META_CONTEXT, or -1.
 */
static int64_t
context_id (const uint8_t *p, size_t len)
{
  static const uint8_t hdr[] = {
    0, 3, 0xe8, 0x89, 0x04, 0x55, 0x65, 0xa9,   /* option reply magic */
    0, 0, 0, 10,                                /* SET_META_CONTEXT */
    0, 0, 0, 4,                                 /* REP_META_CONTEXT */
  };
  for (size_t i = 0; i + sizeof hdr + 8 <= len; i++)
    if (memcmp (p + i, hdr, sizeof hdr) == 0) {
      const uint8_t *id = p + i + sizeof hdr + 4;
      return (int64_t) ((uint32_t) id[0] << 24 | (uint32_t) id[1] << 16
                        | (uint32_t) id[2] << 8 | id[3]);
    }
  return -1;
}

int
main (int argc, char *argv[])
{
  static size_t first_segment = 0;
  struct proxy p = { .lock = PTHREAD_MUTEX_INITIALIZER };
  pthread_t thread;
  int sv[2];
  bool replies;
  unsigned byte;
  size_t start = 0;
  struct nbd_handle *h;
  FILE *out;

  if (argc != 5 || (strcmp (argv[1], "server") != 0
                    && strcmp (argv[1], "replies") != 0)) {
    fprintf (stderr, "usage: fuzz-record server|replies SETTINGS|MODE SOCKET OUTPUT\n");
    exit (EXIT_FAILURE);
  }
  replies = strcmp (argv[1], "replies") == 0;
  byte = (unsigned) strtoul (argv[2], NULL, 0) & 0xff;

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
    perror ("socketpair");
    exit (EXIT_FAILURE);
  }
  p.seg = malloc (sizeof *p.seg);
  if (p.seg == NULL) {
    perror ("malloc");
    exit (EXIT_FAILURE);
  }
  p.seg[0] = first_segment;
  p.nr_seg = 1;
  p.client = sv[1];
  p.server = connect_unix (argv[3]);
  if (pthread_create (&thread, NULL, proxy_thread, &p) != 0) {
    perror ("pthread_create");
    exit (EXIT_FAILURE);
  }

  if (!replies) {
    h = server_session_handle (byte);
    harness_use_feed (NULL);
    server_session_run (h, sv[0], byte);
  }
  else {
    enum reply_mode mode =
      (enum reply_mode) ((byte & ~(CLOSE_EARLY | CONTEXT_ID_0)) % NR_MODES);
    h = replies_session_handle (mode);
    harness_use_feed (NULL);
    if (!replies_session_connect (h, sv[0])) {
      fprintf (stderr, "fuzz-record: %s\n", nbd_get_error ());
      exit (EXIT_FAILURE);
    }
    start = recorded (&p);
    if (mode != MODE_SIMPLE) {
      int64_t id = context_id (p.rec, start);
      if (id == 0)
        byte |= CONTEXT_ID_0;
      else if (id != 1) {
        fprintf (stderr, "fuzz-record: the server's base:allocation id is %"
                 PRIi64 ", the canned handshake has 0 or 1\n", id);
        exit (EXIT_FAILURE);
      }
    }
    replies_session_commands (h, mode, (byte & CLOSE_EARLY) != 0);
  }
  pthread_join (thread, NULL);
  close (p.client);
  close (p.server);

  out = fopen (argv[4], "wb");
  if (out == NULL || fputc ((int) byte, out) == EOF) {
    perror (argv[4]);
    exit (EXIT_FAILURE);
  }
  for (size_t i = 0; i < p.nr_seg; i++) {
    size_t from = p.seg[i], to = i + 1 < p.nr_seg ? p.seg[i + 1] : p.len;
    if (from < start)
      continue;
    /* A longer segment is several: the client reads one, then wants
     * more, and gets the next.
     */
    while (from < to) {
      size_t n = to - from > MAX_SEGMENT ? MAX_SEGMENT : to - from;
      if (fputc ((int) (n >> 8), out) == EOF || fputc ((int) (n & 0xff), out) == EOF
          || fwrite (p.rec + from, 1, n, out) != n) {
        perror (argv[4]);
        exit (EXIT_FAILURE);
      }
      from += n;
    }
  }
  if (fclose (out) == EOF) {
    perror (argv[4]);
    exit (EXIT_FAILURE);
  }
  printf ("%s: %zu bytes from the server in %zu segments\n", argv[4],
          p.len - start, p.nr_seg);
  free (p.seg);
  free (p.rec);
  return 0;
}
