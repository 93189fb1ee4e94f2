/* The engine's rules as libnbd states or shows them (issue 7):
 *
 *  - idle EOF: a server closing an idle connection moves the handle to
 *    CLOSED at the next nbd_poll (no busy loop); stray bytes on an idle
 *    connection make it DEAD (item 2);
 *  - nbd_shutdown (ABANDON_PENDING) after nbd_aio_disconnect with
 *    commands queued: returns, DISC is not abandoned and its cookie is
 *    never visible (item 3);
 *  - oldstyle server, nbd_pread_structured whose chunk callback fails,
 *    with pread_initialize: no crash, the call fails (item 5);
 *  - callbacks may issue aio commands but not blocking calls, nbd_poll
 *    or nbd_aio_notify_* on their own handle (item 6);
 *  - .free runs at retirement, not at completion (item 7);
 *  - a closure with only .free is not NULL (item 8);
 *  - a reply for a retired cookie right behind the real one: the
 *    command keeps its result, then the connection dies (item 16);
 *  - pread_initialize zeroes the buffer of a refused read (item 17);
 *  - TLS required but refused by the server: NBD_OPT_ABORT is sent,
 *    then the handle is DEAD (CLOSED in opt mode), errno ENOTSUP;
 *  - nbd_aio_notify_write when not writing, nbd_aio_notify_read when not
 *    reading (created, negotiating, closed), a second
 *    nbd_aio_disconnect: EINVAL (item 18);
 *  - a request above the server's maximum block size: ERANGE; pwrite and
 *    LIBNBD_CMD_FLAG_PAYLOAD_LEN under LIBNBD_STRICT_AUTO_FLAG (item 19).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#include "hs-helpers.h"

#define PROG "test-engine"

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- A minimal oldstyle server on a socketpair (item 2) ---- */

struct idle_server {
  int fd;
  bool send_garbage;          /* after the greeting: stray bytes, else close */
};

static void
put64be (unsigned char *p, uint64_t v)
{
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = v & 0xff;
}

static void *
idle_server_thread (void *arg)
{
  struct idle_server *s = arg;
  unsigned char g[152] = { 0 };
  struct timespec ts = { 0, 100 * 1000 * 1000 };

  memcpy (g, "NBDMAGIC", 8);
  put64be (g + 8, UINT64_C (0x00420281861253));
  put64be (g + 16, 1048576);
  g[27] = 1;                    /* NBD_FLAG_HAS_FLAGS */
  if (write (s->fd, g, sizeof g) != sizeof g)
    perror ("idle server: write");
  nanosleep (&ts, NULL);        /* the client is idle by now */
  if (s->send_garbage) {
    static const unsigned char junk[16] = { 0x67, 0x44, 0x66, 0x98 };
    if (write (s->fd, junk, sizeof junk) != sizeof junk)
      perror ("idle server: write");
    nanosleep (&ts, NULL);
  }
  close (s->fd);
  return NULL;
}

static void
test_idle_eof (bool garbage)
{
  struct nbd_handle *h = new_handle ();
  struct idle_server s;
  pthread_t t;
  int sv[2], polls = 0, r = 1;
  double start;

  check_case = garbage ? "idle stray bytes" : "idle EOF";
  REQUIRE (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
  s.fd = sv[1];
  s.send_garbage = garbage;
  REQUIRE (pthread_create (&t, NULL, idle_server_thread, &s) == 0, "pthread_create");
  REQUIRE (nbd_connect_socket (h, sv[0]) == 0, "connect_socket");
  CHECK_EQ (nbd_aio_is_ready (h), 1);
  start = now ();
  /* Before the fix, nbd_poll returned 1 at once forever, state READY. */
  while (polls < 1000 && now () - start < 5) {
    r = nbd_poll (h, 2000);
    polls++;
    if (r == -1 || nbd_aio_is_closed (h) || nbd_aio_is_dead (h))
      break;
  }
  CHECK (polls < 10, "%d polls before the close was seen", polls);
  if (garbage) {
    CHECK (nbd_aio_is_dead (h), "state: %s", nbd_connection_state (h));
    CHECK_EQ (r, -1);
    /* As libnbd: a protocol violation carries no errno, only a message. */
    CHECK (nbd_get_errno () == 0 && nbd_get_error () != NULL, "errno %d: %s",
           nbd_get_errno (), nbd_get_error ());
  }
  else {
    CHECK (nbd_aio_is_closed (h), "state: %s", nbd_connection_state (h));
    CHECK_EQ (r, 1);
    /* A closed handle has nothing to poll for. */
    CHECK_FAILS (nbd_poll (h, 0), EINVAL, "nbd_poll", NULL);
  }
  nbd_close (h);
  pthread_join (t, NULL);
  check_case = NULL;
}

/* ---- TLS required, refused: NBD_OPT_ABORT, then DEAD or CLOSED ---- */

/* A newstyle server that refuses STARTTLS and records which option
 * came next: NBD_OPT_ABORT (2) from a client that ends the negotiation
 * cleanly, 0 if the client just closed.
 */
struct refusing_server {
  int fd;
  uint32_t first_option, next_option;
};

static bool
read_all (int fd, unsigned char *p, size_t len)
{
  while (len > 0) {
    ssize_t r = read (fd, p, len);
    if (r <= 0)
      return false;
    p += r;
    len -= r;
  }
  return true;
}

static uint32_t
get32be (const unsigned char *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static void *
refusing_server_thread (void *arg)
{
  struct refusing_server *s = arg;
  unsigned char g[18], b[16], reply[20];

  memcpy (g, "NBDMAGIC", 8);
  put64be (g + 8, UINT64_C (0x49484156454F5054));   /* IHAVEOPT */
  g[16] = 0;
  g[17] = 3;                    /* FIXED_NEWSTYLE | NO_ZEROES */
  if (write (s->fd, g, sizeof g) != sizeof g || !read_all (s->fd, b, 4)
      || !read_all (s->fd, b, 16))
    goto out;
  s->first_option = get32be (b + 8);
  put64be (reply, UINT64_C (0x3e889045565a9));      /* option reply magic */
  memcpy (reply + 8, b + 8, 4);
  put64be (reply + 12, (uint64_t) 0x80000002 << 32); /* ERR_POLICY, length 0 */
  if (write (s->fd, reply, sizeof reply) != sizeof reply)
    goto out;
  if (read_all (s->fd, b, 16))
    s->next_option = get32be (b + 8);
 out:
  close (s->fd);
  return NULL;
}

static void
test_tls_refused (bool opt_mode)
{
  struct nbd_handle *h = new_handle ();
  struct refusing_server s = { 0 };
  pthread_t t;
  int sv[2];

  check_case = opt_mode ? "TLS refused, opt mode" : "TLS refused";
  if (!nbd_supports_tls (h)) {
    nbd_close (h);
    return;
  }
  CHECK_EQ (nbd_set_tls (h, LIBNBD_TLS_REQUIRE), 0);
  CHECK_EQ (nbd_set_opt_mode (h, opt_mode), 0);
  REQUIRE (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
  s.fd = sv[1];
  REQUIRE (pthread_create (&t, NULL, refusing_server_thread, &s) == 0, "pthread_create");
  CHECK_FAILS (nbd_connect_socket (h, sv[0]), ENOTSUP, "nbd_connect_socket", "TLS");
  pthread_join (t, NULL);
  CHECK_EQ (s.first_option, 5); /* NBD_OPT_STARTTLS */
  CHECK_EQ (s.next_option, 2);  /* NBD_OPT_ABORT */
  /* As libnbd: DEAD, except in opt mode, which ends CLOSED. */
  if (opt_mode)
    CHECK (nbd_aio_is_closed (h), "state: %s", nbd_connection_state (h));
  else
    CHECK (nbd_aio_is_dead (h), "state: %s", nbd_connection_state (h));
  nbd_close (h);
  check_case = NULL;
}

/* ---- Closures ---- */

struct cb_data {
  int calls, frees, error, ret;
  struct nbd_handle *h;
  int nested_result, nested_errno;  /* what a nested call returned */
  int64_t nested_cookie;
  int which;                  /* nested call to try (item 6) */
  char *buf;
};

static int
completion_cb (void *opaque, int *error)
{
  struct cb_data *d = opaque;
  d->calls++;
  d->error = *error;
  return d->ret;
}

static void
free_cb (void *opaque)
{
  struct cb_data *d = opaque;
  d->frees++;
}

static nbd_completion_callback
completion (struct cb_data *d, int ret)
{
  memset (d, 0, sizeof *d);
  d->ret = ret;
  return (nbd_completion_callback) { .callback = completion_cb, .user_data = d,
                                     .free = free_cb };
}

static void
wait_for (struct nbd_handle *h, int *counter)
{
  for (int i = 0; i < 200 && *counter == 0; i++)
    if (nbd_poll (h, 100) == -1)
      break;
}

/* Item 7: .free at retirement. */
static void
test_free_at_retirement (const char *sock)
{
  struct nbd_handle *h = new_handle ();
  struct cb_data a, b, c;
  char buf[512];
  int64_t ca, cb;

  check_case = "free at retirement";
  if (connect_or_fail (h, sock, check_case)) {
    nbd_close (h);
    return;
  }
  /* Returns 0: completed, not retired; .free waits. */
  ca = nbd_aio_pread (h, buf, sizeof buf, 0, completion (&a, 0), 0);
  CHECK (ca > 0, "aio_pread: %s", nbd_get_error ());
  wait_for (h, &a.calls);
  CHECK_EQ (a.calls, 1);
  CHECK_EQ (a.frees, 0);
  CHECK_EQ (nbd_aio_peek_command_completed (h), ca);
  CHECK_EQ (nbd_aio_command_completed (h, ca), 1);
  CHECK_EQ (a.frees, 1);
  /* Returns 1: retired by the callback, freed right after it. */
  cb = nbd_aio_pread (h, buf, sizeof buf, 0, completion (&b, 1), 0);
  CHECK (cb > 0, "aio_pread: %s", nbd_get_error ());
  wait_for (h, &b.calls);
  CHECK_EQ (b.calls, 1);
  CHECK_EQ (b.frees, 1);
  CHECK_EQ (nbd_aio_command_completed (h, cb), 0);
  /* Never retired: nbd_close frees it. */
  CHECK (nbd_aio_pread (h, buf, sizeof buf, 0, completion (&c, 0), 0) > 0,
         "aio_pread: %s", nbd_get_error ());
  wait_for (h, &c.calls);
  CHECK_EQ (c.frees, 0);
  nbd_close (h);
  CHECK_EQ (c.frees, 1);
  CHECK_EQ (a.frees, 1);
  CHECK_EQ (b.frees, 1);
  check_case = NULL;
}

/* Item 8: a closure with only .free. */
static int extent_frees;
static void
count_extent_free (void *p)
{
  (void) p;
  extent_frees++;
}

static void
test_free_only_closure (const char *sock)
{
  struct nbd_handle *h = new_handle ();
  nbd_extent_callback only_free = { .callback = NULL, .free = count_extent_free };

  check_case = "free-only closure";
  nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION);
  if (connect_or_fail (h, sock, check_case)) {
    nbd_close (h);
    return;
  }
  /* Not NULL, so the bounds check speaks (EINVAL), not EFAULT. */
  CHECK_FAILS (nbd_aio_block_status (h, 512, UINT64_C (1) << 40, only_free,
                                     NBD_NULL_COMPLETION, 0),
               EINVAL, "nbd_aio_block_status", NULL);
  CHECK_EQ (extent_frees, 1);
  /* Both NULL: that one is EFAULT. */
  CHECK_FAILS (nbd_aio_block_status (h, 512, 0, (nbd_extent_callback) { 0 },
                                     NBD_NULL_COMPLETION, 0),
               EFAULT, "nbd_aio_block_status", NULL);
  /* Accepted: the command runs, the closure is freed once at retirement. */
  extent_frees = 0;
  CHECK_EQ (nbd_block_status (h, 512, 0, only_free, 0), 0);
  CHECK_EQ (extent_frees, 1);
  nbd_close (h);
  CHECK_EQ (extent_frees, 1);
  check_case = NULL;
}

/* Item 6: what a completion callback may call on its own handle. */
enum { NESTED_PREAD, NESTED_POLL, NESTED_NOTIFY_READ, NESTED_NOTIFY_WRITE,
       NESTED_AIO_PREAD, NESTED_SHUTDOWN, NESTED_END };
static const char *const nested_names[] = {
  "nbd_pread", "nbd_poll", "nbd_aio_notify_read", "nbd_aio_notify_write",
  "nbd_aio_pread", "nbd_shutdown",
};

static int
nested_cb (void *opaque, int *error)
{
  struct cb_data *d = opaque;
  char buf[512];

  (void) error;
  d->calls++;
  switch (d->which) {
  case NESTED_PREAD:
    d->nested_result = nbd_pread (d->h, buf, sizeof buf, 0, 0);
    break;
  case NESTED_POLL:
    d->nested_result = nbd_poll (d->h, 0);
    break;
  case NESTED_NOTIFY_READ:
    d->nested_result = nbd_aio_notify_read (d->h);
    break;
  case NESTED_NOTIFY_WRITE:
    d->nested_result = nbd_aio_notify_write (d->h);
    break;
  case NESTED_SHUTDOWN:
    d->nested_result = nbd_shutdown (d->h, 0);
    break;
  case NESTED_AIO_PREAD:
    d->nested_cookie = nbd_aio_pread (d->h, d->buf, 512, 0,
                                      NBD_NULL_COMPLETION, 0);
    d->nested_result = d->nested_cookie > 0 ? 0 : -1;
    break;
  }
  d->nested_errno = d->nested_result == -1 ? nbd_get_errno () : 0;
  return 1;
}

static void
test_nested_calls (const char *sock)
{
  static char nested_buf[512];
  struct nbd_handle *h = new_handle ();
  char buf[512];

  check_case = "calls from callbacks";
  if (connect_or_fail (h, sock, check_case)) {
    nbd_close (h);
    return;
  }
  for (int w = 0; w < NESTED_END; w++) {
    struct cb_data d = { .h = h, .which = w, .buf = nested_buf };
    nbd_completion_callback cb = { .callback = nested_cb, .user_data = &d };

    CHECK (nbd_aio_pread (h, buf, sizeof buf, 0, cb, 0) > 0, "aio_pread: %s",
           nbd_get_error ());
    wait_for (h, &d.calls);
    CHECK_EQ (d.calls, 1);
    if (w == NESTED_AIO_PREAD) {
      CHECK (d.nested_result == 0, "%s from a callback failed (errno %d)",
             nested_names[w], d.nested_errno);
      for (int i = 0; i < 100 && nbd_aio_command_completed (h, d.nested_cookie) == 0; i++)
        nbd_poll (h, 100);
    }
    else {
      CHECK (d.nested_result == -1 && d.nested_errno == EDEADLK,
             "%s from a callback returned %d (errno %d)", nested_names[w],
             d.nested_result, d.nested_errno);
    }
    /* The engine is intact: nothing in flight, the next read works. */
    CHECK_EQ (nbd_aio_in_flight (h), 0);
    CHECK_EQ (nbd_aio_is_ready (h), 1);
    EXPECT_OK (nbd_pread (h, buf, sizeof buf, 0, 0));
  }
  nbd_close (h);
  check_case = NULL;
}

/* Item 6 in option mode: an option's completion callback (the handle is
 * negotiating again by then, so the state check passes) may not run a
 * blocking option; an aio option is fine.
 */
struct opt_nested { struct nbd_handle *h; int calls, result, err, aio; };

static int
opt_done_calls_opt_go (void *opaque, int *error)
{
  struct opt_nested *d = opaque;
  (void) error;
  d->calls++;
  d->result = nbd_opt_go (d->h);
  d->err = d->result == -1 ? nbd_get_errno () : 0;
  return 1;
}

static void
test_nested_opt_call (const char *sock)
{
  struct nbd_handle *h = new_handle ();
  struct opt_nested d = { .h = h };

  check_case = "blocking option from an option callback";
  CHECK_EQ (nbd_set_opt_mode (h, true), 0);
  if (connect_or_fail (h, sock, check_case) == 0) {
    CHECK_EQ (nbd_aio_opt_info (h, (nbd_completion_callback) {
                                  .callback = opt_done_calls_opt_go,
                                  .user_data = &d }), 0);
    for (int i = 0; i < 100 && d.calls == 0; i++)
      if (nbd_poll (h, 100) == -1)
        break;
    CHECK_EQ (d.calls, 1);
    CHECK (d.result == -1 && d.err == EDEADLK, "nbd_opt_go from a completion "
           "callback: %d (errno %d)", d.result, d.err);
    CHECK_EQ (nbd_aio_is_negotiating (h), 1);
    EXPECT_OK (nbd_opt_go (h));
    CHECK_EQ (nbd_aio_is_ready (h), 1);
  }
  nbd_close (h);
  check_case = NULL;
}

/* Item 5: oldstyle (simple replies), chunk callback fails. */
static int
failing_chunk (void *opaque, const void *subbuf, size_t count, uint64_t offset,
               unsigned status, int *error)
{
  (void) opaque; (void) subbuf; (void) count; (void) offset; (void) status;
  *error = EIO;
  return -1;
}

static void
test_simple_reply_chunk_error (void)
{
  struct server s;
  struct nbd_handle *h;
  char buf[4096];

  check_case = "oldstyle failing chunk callback";
  if (start_nbdkit (&s, "--oldstyle", "pattern", "1M", NULL) == -1) {
    FAIL ("cannot start nbdkit --oldstyle");
    return;
  }
  h = new_handle ();
  CHECK_EQ (nbd_set_pread_initialize (h, true), 0);
  if (connect_or_fail (h, s.sock, check_case) == 0) {
    CHECK_STREQ (nbd_get_protocol (h), "oldstyle");
    CHECK_FAILS (nbd_pread_structured (h, buf, sizeof buf, 4096,
                                       (nbd_chunk_callback) { .callback = failing_chunk },
                                       0),
                 EIO, "nbd_pread_structured", NULL);
    /* The data the server sent stays: the chunk covered all of it. */
    /* (nbdkit's pattern: each 8-byte word holds its offset.) */
    CHECK (buf[6] == 0x10 && buf[7] == 0, "buffer: %02x %02x",
           (unsigned char) buf[6], (unsigned char) buf[7]);
    EXPECT_OK (nbd_pread (h, buf, sizeof buf, 0, 0));
  }
  nbd_close (h);
  server_stop (&s);
  check_case = NULL;
}

/* Item 17: pread_initialize and refused reads. */
static void
test_refused_read_zeroes (const char *sock)
{
  struct nbd_handle *h = new_handle ();
  char buf[512];

  check_case = "pread_initialize on refusal";
  CHECK_EQ (nbd_set_pread_initialize (h, true), 0);
  memset (buf, 0xaa, sizeof buf);
  /* Refused for the handle's state (not connected). */
  CHECK_FAILS (nbd_pread (h, buf, sizeof buf, 0, 0), ENOTCONN, "nbd_pread", NULL);
  CHECK (buf[0] == 0 && buf[511] == 0, "buffer not zeroed: 0x%02x",
         (unsigned char) buf[0]);
  memset (buf, 0xaa, sizeof buf);
  CHECK_FAILS (nbd_aio_pread (h, buf, sizeof buf, 0, NBD_NULL_COMPLETION, 0),
               ENOTCONN, "nbd_aio_pread", NULL);
  CHECK (buf[0] == 0 && buf[511] == 0, "buffer not zeroed");
  if (connect_or_fail (h, sock, check_case) == 0) {
    /* Refused by the bounds check. */
    memset (buf, 0xaa, sizeof buf);
    CHECK_FAILS (nbd_pread (h, buf, sizeof buf, UINT64_C (1) << 40, 0), EINVAL,
                 "nbd_pread", NULL);
    CHECK (buf[0] == 0 && buf[511] == 0, "buffer not zeroed");
    /* Refused flags. */
    memset (buf, 0xaa, sizeof buf);
    CHECK_FAILS (nbd_pread_structured (h, buf, sizeof buf, 0,
                                       (nbd_chunk_callback) { .callback = failing_chunk },
                                       0x100),
                 EINVAL, "nbd_pread_structured", NULL);
    CHECK (buf[0] == 0 && buf[511] == 0, "buffer not zeroed");
    /* Without pread_initialize, a refused read leaves the buffer alone. */
    CHECK_EQ (nbd_set_pread_initialize (h, false), 0);
    memset (buf, 0xaa, sizeof buf);
    CHECK_FAILS (nbd_pread (h, buf, sizeof buf, UINT64_C (1) << 40, 0), EINVAL,
                 "nbd_pread", NULL);
    CHECK ((unsigned char) buf[0] == 0xaa, "buffer changed");
  }
  nbd_close (h);
  check_case = NULL;
}

/* Item 18; and, as libnbd, nbd_aio_notify_read in a state that is not
 * waiting to read (created, negotiating in opt mode, closed): EINVAL,
 * not a silent success.
 */
static void
test_notify_write_and_double_disconnect (const char *sock)
{
  struct nbd_handle *h = new_handle ();

  check_case = "notify_read before connecting";
  CHECK_FAILS (nbd_aio_notify_read (h), EINVAL, "nbd_aio_notify_read", NULL);
  CHECK (nbd_aio_is_created (h), "state: %s", nbd_connection_state (h));

  check_case = "notify_read while negotiating";
  if (nbd_set_opt_mode (h, true) == 0 && connect_or_fail (h, sock, check_case) == 0) {
    CHECK (nbd_aio_is_negotiating (h), "state: %s", nbd_connection_state (h));
    CHECK_EQ (nbd_aio_get_direction (h), 0);
    CHECK_FAILS (nbd_aio_notify_read (h), EINVAL, "nbd_aio_notify_read", NULL);
    CHECK (nbd_aio_is_negotiating (h), "state: %s", nbd_connection_state (h));
    EXPECT_OK (nbd_opt_abort (h));
    CHECK (nbd_aio_is_closed (h), "state: %s", nbd_connection_state (h));
    CHECK_FAILS (nbd_aio_notify_read (h), EINVAL, "nbd_aio_notify_read", NULL);
  }
  nbd_close (h);

  h = new_handle ();
  check_case = "notify_write / double disconnect";
  if (connect_or_fail (h, sock, check_case) == 0) {
    CHECK_EQ (nbd_aio_get_direction (h) & LIBNBD_AIO_DIRECTION_WRITE, 0);
    CHECK_FAILS (nbd_aio_notify_write (h), EINVAL, "nbd_aio_notify_write", NULL);
    EXPECT_OK (nbd_aio_notify_read (h));
    CHECK_EQ (nbd_aio_disconnect (h, 0), 0);
    CHECK_FAILS (nbd_aio_disconnect (h, 0), EINVAL, "nbd_aio_disconnect", NULL);
    for (int i = 0; i < 100 && !nbd_aio_is_closed (h) && !nbd_aio_is_dead (h); i++)
      nbd_poll (h, 100);
    CHECK (nbd_aio_is_closed (h), "state: %s", nbd_connection_state (h));
    CHECK_FAILS (nbd_aio_notify_read (h), EINVAL, "nbd_aio_notify_read", NULL);
  }
  nbd_close (h);
  check_case = NULL;
}

/* Item 3: shutdown abandoning what is queued, after aio_disconnect. */
static void
test_abandon_after_disconnect (void)
{
#define NW 48
  static char data[1024 * 1024];
  static struct cb_data d[NW];
  struct server s;
  struct nbd_handle *h;
  int64_t cookies[NW];
  int abandoned = 0, sent = 0;
  double start;

  check_case = "abandon after disconnect";
  /* 48 writes of 1 MiB against a server that takes 300 ms per write:
   * the socket cannot take them all, so some are still queued when
   * nbd_shutdown abandons what it cannot send.
   */
  if (start_nbdkit (&s, "--filter=delay", "memory", "64M", "wdelay=300ms", NULL) == -1) {
    FAIL ("cannot start nbdkit");
    return;
  }
  h = new_handle ();
  if (connect_or_fail (h, s.sock, check_case) == 0) {
    for (int i = 0; i < NW; i++) {
      cookies[i] = nbd_aio_pwrite (h, data, sizeof data, (uint64_t) i * sizeof data,
                                   completion (&d[i], 0), 0);
      CHECK (cookies[i] > 0, "aio_pwrite: %s", nbd_get_error ());
    }
    CHECK_EQ (nbd_aio_disconnect (h, 0), 0);
    /* NBD_CMD_DISC is not a command the caller can see. */
    CHECK_EQ (nbd_aio_in_flight (h), NW);
    start = now ();
    CHECK_EQ (nbd_shutdown (h, LIBNBD_SHUTDOWN_ABANDON_PENDING), 0);
    CHECK (now () - start < 10, "shutdown took %.1f s", now () - start);
    CHECK (nbd_aio_is_closed (h), "state: %s", nbd_connection_state (h));
    /* Every user command completed once: sent ones with the server's
     * answer (nbdkit, having read NBD_CMD_DISC, may say ESHUTDOWN), the
     * others abandoned with ENOTCONN, and never one sent after another
     * that was abandoned.
     */
    for (int i = 0; i < NW; i++) {
      CHECK_EQ (d[i].calls, 1);
      if (d[i].error == ENOTCONN)
        abandoned++;
      else {
        CHECK (d[i].error == 0 || d[i].error == ESHUTDOWN, "error %d", d[i].error);
        CHECK (abandoned == 0, "write %d sent after an abandoned one", i);
        sent++;
      }
    }
    /* How many are abandoned depends on how fast the server drains the
     * socket (under valgrind it may take them all); test-tls-faults has
     * a server that stops reading, for a deterministic count.
     */
    CHECK (sent >= 1, "%d sent, %d abandoned", sent, abandoned);
    fprintf (stderr, PROG ": [%s] %d sent, %d abandoned\n", check_case, sent, abandoned);
    /* Only user cookies are visible, then nothing. */
    for (int i = 0; i < NW + 1; i++) {
      int64_t c = nbd_aio_peek_command_completed (h);
      bool known = false;
      if (c <= 0)
        break;
      for (int k = 0; k < NW; k++)
        known |= c == cookies[k];
      CHECK (known, "peek returned cookie %" PRIi64 " that is not a user command", c);
      nbd_aio_command_completed (h, c);
    }
    CHECK_EQ (nbd_aio_in_flight (h), 0);
  }
  nbd_close (h);
  server_stop (&s);
  check_case = NULL;
#undef NW
}

/* nbd_aio_is_ready / nbd_aio_is_processing as libnbd: requests sent (or
 * queued for the next batch) and replies not yet arriving: ready.
 */
static void
test_ready_while_waiting (void)
{
  struct server s;
  struct nbd_handle *h;
  char buf[2][512];

  check_case = "ready while waiting for replies";
  if (start_nbdkit (&s, "--filter=delay", "memory", "1M", "rdelay=300ms", NULL) == -1) {
    FAIL ("cannot start nbdkit");
    return;
  }
  h = new_handle ();
  if (connect_or_fail (h, s.sock, check_case) == 0) {
    for (int i = 0; i < 2; i++) {
      CHECK (nbd_aio_pread (h, buf[i], 512, 0, NBD_NULL_COMPLETION, 0) > 0,
             "aio_pread: %s", nbd_get_error ());
      CHECK_EQ (nbd_aio_is_ready (h), 1);
      CHECK_EQ (nbd_aio_is_processing (h), 0);
      CHECK_EQ (nbd_aio_in_flight (h), i + 1);
    }
    while (nbd_aio_in_flight (h) > 0)
      if (nbd_poll (h, -1) == -1)
        break;
    CHECK_EQ (nbd_aio_is_ready (h), 1);
  }
  nbd_close (h);
  server_stop (&s);
  check_case = NULL;
}

/* nbd_set_request_structured_replies (false) also stops the automatic
 * request for extended headers (nbd_set_request_extended_headers(3)).
 */
static void
test_no_sr_means_no_eh (void)
{
  struct server s;
  struct nbd_handle *h;
  char buf[512];

  check_case = "no structured replies, no extended headers";
  start_test_server (&s, PROG, (const char *const []) { NULL });
  h = new_handle ();
  CHECK_EQ (nbd_set_request_structured_replies (h, false), 0);
  CHECK_EQ (nbd_get_request_extended_headers (h), 1);
  if (connect_or_fail (h, s.sock, check_case) == 0) {
    CHECK_EQ (nbd_get_extended_headers_negotiated (h), 0);
    CHECK_EQ (nbd_get_structured_replies_negotiated (h), 0);
    EXPECT_OK (nbd_pread (h, buf, sizeof buf, 0, 0));
    EXPECT_OK (nbd_shutdown (h, 0));
  }
  nbd_close (h);
  server_stop (&s);
  check_case = NULL;
}

/* Item 16: a duplicate reply right behind the real one. */
static void
test_duplicate_reply (void)
{
  struct server s;
  struct nbd_handle *h;
  char buf[512] = { 1 };

  check_case = "duplicate reply";
  start_test_server (&s, PROG, (const char *const []) { "--fault", "duplicate-reply",
                                                        NULL });
  h = new_handle ();
  CHECK_EQ (nbd_set_request_extended_headers (h, false), 0);
  CHECK_EQ (nbd_set_request_structured_replies (h, false), 0);
  if (connect_or_fail (h, s.sock, check_case) == 0) {
    /* The write's reply arrives, then the same cookie again. */
    CHECK_EQ (nbd_pwrite (h, buf, sizeof buf, 0, 0), 0);
    /* Only then does the connection die. */
    for (int i = 0; i < 20 && !nbd_aio_is_dead (h); i++)
      if (nbd_poll (h, 100) == -1)
        break;
    CHECK (nbd_aio_is_dead (h), "state: %s", nbd_connection_state (h));
  }
  nbd_close (h);
  server_stop (&s);
  check_case = NULL;
}

/* Item 19. */
static void
test_max_block_size (void)
{
  struct server s;
  struct nbd_handle *h;
  size_t big = 33 * 1024 * 1024;
  char *buf = calloc (1, big);

  check_case = "maximum block size";
  REQUIRE (buf != NULL, "calloc");
  if (start_nbdkit (&s, "--filter=blocksize-policy", "memory", "64M",
                    "blocksize-maximum=32M", NULL) == -1) {
    FAIL ("cannot start nbdkit with blocksize-policy");
    free (buf);
    return;
  }
  h = new_handle ();
  if (connect_or_fail (h, s.sock, check_case) == 0) {
    CHECK_EQ (nbd_get_block_size (h, LIBNBD_SIZE_MAXIMUM), 32 * 1024 * 1024);
    CHECK_FAILS (nbd_pread (h, buf, big, 0, 0), ERANGE, "nbd_pread", NULL);
    CHECK_FAILS (nbd_pwrite (h, buf, big, 0, 0), ERANGE, "nbd_pwrite", NULL);
    /* No extended headers here: the flag is cleared, not refused. */
    CHECK_EQ (nbd_get_extended_headers_negotiated (h), 0);
    EXPECT_OK (nbd_pwrite (h, buf, 512, 0, LIBNBD_CMD_FLAG_PAYLOAD_LEN));
    CHECK (nbd_aio_pwrite (h, buf, 512, 0, NBD_NULL_COMPLETION,
                           LIBNBD_CMD_FLAG_PAYLOAD_LEN) > 0,
           "aio_pwrite: %s", nbd_get_error ());
    EXPECT_OK (nbd_flush (h, 0));
    /* Without the auto flag, asking for it without extended headers is
     * an error.
     */
    CHECK_EQ (nbd_set_strict_mode (h, nbd_get_strict_mode (h)
                                   & ~LIBNBD_STRICT_AUTO_FLAG), 0);
    CHECK_FAILS (nbd_pwrite (h, buf, 512, 0, LIBNBD_CMD_FLAG_PAYLOAD_LEN), EINVAL,
                 "nbd_pwrite", NULL);
  }
  nbd_close (h);
  server_stop (&s);
  free (buf);
  check_case = NULL;
}

/* Item 19 with extended headers: the project's server checks the flag. */
static void
test_payload_len_extended (void)
{
  struct server s;
  struct nbd_handle *h;
  char buf[4096];

  check_case = "payload_len with extended headers";
  start_test_server (&s, PROG, (const char *const []) { NULL });
  h = new_handle ();
  if (connect_or_fail (h, s.sock, check_case) == 0) {
    CHECK_EQ (nbd_get_extended_headers_negotiated (h), 1);
    memset (buf, 0x5a, sizeof buf);
    EXPECT_OK (nbd_pwrite (h, buf, sizeof buf, 0, 0));
    EXPECT_OK (nbd_pwrite (h, buf, sizeof buf, 4096, LIBNBD_CMD_FLAG_PAYLOAD_LEN));
    memset (buf, 0, sizeof buf);
    EXPECT_OK (nbd_pread (h, buf, sizeof buf, 4096, 0));
    CHECK (buf[0] == 0x5a && buf[4095] == 0x5a, "data read back");
    EXPECT_OK (nbd_shutdown (h, 0));
  }
  nbd_close (h);
  server_stop (&s);
  check_case = NULL;
}

int
main (void)
{
  struct server s;

  signal (SIGPIPE, SIG_IGN);
  test_idle_eof (false);
  test_idle_eof (true);
  test_tls_refused (false);
  test_tls_refused (true);

  if (start_nbdkit (&s, "memory", "1M", NULL) == -1) {
    fprintf (stderr, PROG ": nbdkit not available: skipping\n");
    return 77;
  }
  test_free_at_retirement (s.sock);
  test_free_only_closure (s.sock);
  test_nested_calls (s.sock);
  test_nested_opt_call (s.sock);
  test_refused_read_zeroes (s.sock);
  test_notify_write_and_double_disconnect (s.sock);
  server_stop (&s);

  test_simple_reply_chunk_error ();
  test_abandon_after_disconnect ();
  test_ready_while_waiting ();
  test_no_sr_means_no_eh ();
  test_duplicate_reply ();
  test_max_block_size ();
  test_payload_len_extended ();
  return check_status (PROG);
}
