/* The TLS transport against a scripted TLS server: a child process
 * speaking fixed-newstyle NBD over GnuTLS (pre-shared key) on one end of
 * a socketpair, the library on the other (nbd_connect_socket).  Each
 * script makes the server do one thing real servers do, or a hostile one
 * could, that nbdkit cannot be told to do:
 *
 *  idle-bye      after one reply, close_notify and close: the next
 *                nbd_poll reads the end of the session, handle CLOSED.
 *  idle-drop     the same without close_notify: DEAD on the next poll,
 *                as upstream (GnuTLS cannot tell a server that closed
 *                from a truncated session).
 *  idle-garbage  after one reply, bytes nobody asked for: DEAD with an
 *                error, within a few polls (no busy loop).
 *  pending       the reply to a 1 MiB read shares its last TLS record
 *                with stray bytes: depending on how the client reads,
 *                GnuTLS still holds them (pending) after the read is
 *                complete or they are already in the library's buffer;
 *                either way DEAD, no busy loop.
 *  disc-drop     on NBD_CMD_DISC the server closes without close_notify
 *                and without reading the client's close_notify (the
 *                kernel then resets the connection), as qemu-nbd and
 *                nbd-server do: nbd_shutdown returns 0.
 *  stall         the server does not read for a while, so the client's
 *                TLS records fill the socket and one is left half sent
 *                inside GnuTLS; then nbd_shutdown (ABANDON_PENDING):
 *                whatever GnuTLS accepted counts as sent (those writes
 *                succeed, the server executed exactly them), the DISC
 *                reaches the server, nbd_shutdown returns 0.
 *  stats         nbd_stats_* count NBD bytes (plaintext), not TLS
 *                records: they equal the server's own plaintext counts,
 *                and a command moves them by exactly its NBD size.
 *
 * The server reports what it saw on a pipe ("writes=N disc=D rx=R tx=T").
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <endian.h>

#include <gnutls/gnutls.h>

#include <libnbd.h>

#include "checks.h"

#define PSK_USER "alice"
#define PSK_HEX "5a1e0f2b88c4d3e7a9016b2c3d4e5f607182939aabbccddeeff0011223344556"
#define EXPORT_SIZE (16 * 1024 * 1024)

enum script {
  IDLE_BYE, IDLE_DROP, IDLE_GARBAGE, PENDING, DISC_DROP, STALL, STATS,
};

static char pskfile[64];

/* ---- The server (child process) ---- */

struct srv {
  int fd;
  gnutls_session_t session;     /* NULL before STARTTLS */
  uint64_t rx, tx;              /* NBD bytes read and written (plaintext) */
};

static void
srv_fail (const char *what)
{
  fprintf (stderr, "tls-faults server: %s\n", what);
  _exit (3);
}

/* Reads or writes all of len bytes, over TLS once it is started. */
static void
srv_io (struct srv *v, void *buf, size_t len, bool writing)
{
  char *p = buf;

  while (len > 0) {
    ssize_t r;
    if (v->session)
      r = writing ? gnutls_record_send (v->session, p, len)
        : gnutls_record_recv (v->session, p, len);
    else
      r = writing ? write (v->fd, p, len) : read (v->fd, p, len);
    if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED
        || (!v->session && r == -1 && errno == EINTR))
      continue;
    if (r <= 0)
      srv_fail (writing ? "short write" : "short read");
    p += r;
    len -= (size_t) r;
    if (writing)
      v->tx += (uint64_t) r;
    else
      v->rx += (uint64_t) r;
  }
}

static void
srv_read (struct srv *v, void *buf, size_t len)
{
  srv_io (v, buf, len, false);
}

static void
srv_write (struct srv *v, const void *buf, size_t len)
{
  srv_io (v, (void *) buf, len, true);
}

static void
put16 (char *p, uint16_t v) { v = htobe16 (v); memcpy (p, &v, 2); }
static void
put32 (char *p, uint32_t v) { v = htobe32 (v); memcpy (p, &v, 4); }
static void
put64 (char *p, uint64_t v) { v = htobe64 (v); memcpy (p, &v, 8); }
static uint16_t
get16 (const char *p) { uint16_t v; memcpy (&v, p, 2); return be16toh (v); }
static uint32_t
get32 (const char *p) { uint32_t v; memcpy (&v, p, 4); return be32toh (v); }
static uint64_t
get64 (const char *p) { uint64_t v; memcpy (&v, p, 8); return be64toh (v); }

static void
opt_reply (struct srv *v, uint32_t opt, uint32_t type, const char *data, uint32_t len)
{
  char hdr[20];

  put64 (hdr, 0x0003e889045565a9);
  put32 (hdr + 8, opt);
  put32 (hdr + 12, type);
  put32 (hdr + 16, len);
  srv_write (v, hdr, sizeof hdr);
  if (len)
    srv_write (v, data, len);
}

static int
psk_lookup (gnutls_session_t s, const char *user, gnutls_datum_t *key)
{
  gnutls_datum_t hex = { (unsigned char *) PSK_HEX, sizeof PSK_HEX - 1 };
  size_t size = (sizeof PSK_HEX - 1) / 2;

  (void) s;
  if (strcmp (user, PSK_USER) != 0)
    return -1;
  key->data = gnutls_malloc (size);
  key->size = (unsigned) size;
  if (!key->data || gnutls_hex_decode (&hex, key->data, &size) < 0)
    return -1;
  return 0;
}

static void
srv_starttls (struct srv *v)
{
  gnutls_psk_server_credentials_t cred;
  int r;

  if (gnutls_psk_allocate_server_credentials (&cred) < 0
      || gnutls_init (&v->session, GNUTLS_SERVER) < 0
      || gnutls_priority_set_direct (v->session, "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK",
                                     NULL) < 0)
    srv_fail ("GnuTLS setup");
  gnutls_psk_set_server_credentials_function (cred, psk_lookup);
  if (gnutls_credentials_set (v->session, GNUTLS_CRD_PSK, cred) < 0)
    srv_fail ("gnutls_credentials_set");
  gnutls_transport_set_int (v->session, v->fd);
  do
    r = gnutls_handshake (v->session);
  while (r < 0 && !gnutls_error_is_fatal (r));
  if (r < 0)
    srv_fail (gnutls_strerror (r));
}

/* The handshake, up to NBD_OPT_GO; every other option is unsupported. */
static void
srv_handshake (struct srv *v)
{
  char buf[4096];

  memcpy (buf, "NBDMAGIC", 8);
  put64 (buf + 8, 0x49484156454F5054);  /* IHAVEOPT */
  put16 (buf + 16, 3);                  /* FIXED_NEWSTYLE | NO_ZEROES */
  srv_write (v, buf, 18);
  srv_read (v, buf, 4);
  for (;;) {
    uint32_t opt, len;
    srv_read (v, buf, 16);
    opt = get32 (buf + 8);
    len = get32 (buf + 12);
    if (len > sizeof buf)
      srv_fail ("option too long");
    srv_read (v, buf, len);
    if (opt == 5 && !v->session) {      /* STARTTLS */
      opt_reply (v, opt, 1, NULL, 0);
      srv_starttls (v);
    }
    else if (opt == 7 && v->session) {  /* GO */
      char info[12];
      put16 (info, 0);                  /* NBD_INFO_EXPORT */
      put64 (info + 2, EXPORT_SIZE);
      put16 (info + 10, 1 | 4);         /* HAS_FLAGS | SEND_FLUSH */
      opt_reply (v, opt, 3, info, sizeof info);
      opt_reply (v, opt, 1, NULL, 0);
      return;
    }
    else if (opt == 2)                  /* ABORT */
      _exit (0);
    else
      opt_reply (v, opt, v->session ? 0x80000001 : 0x80000005, NULL, 0);
  }
}

/* Waits (up to 10 s) until the client closes. */
static void
srv_wait_eof (struct srv *v)
{
  char c;
  struct pollfd p = { .fd = v->fd, .events = POLLIN };

  for (int i = 0; i < 100; i++) {
    if (poll (&p, 1, 100) == 1) {
      ssize_t r = v->session ? gnutls_record_recv (v->session, &c, 1) : read (v->fd, &c, 1);
      if (r == GNUTLS_E_AGAIN)
        continue;
      if (r <= 0)
        return;
    }
  }
}

static void
serve (int fd, enum script script, int report)
{
  struct srv v = { .fd = fd };
  static char data[1024 * 1024 + 4096];
  int writes = 0;
  bool disc = false;
  char req[28], rep[16];

  alarm (30);
  srv_handshake (&v);
  if (script == STALL) {
    /* Let the client's requests pile up in the socket and in GnuTLS. */
    struct timespec ts = { 0, 300 * 1000 * 1000 };
    nanosleep (&ts, NULL);
  }
  for (bool first = true;; first = false) {
    uint16_t type;
    uint32_t len;
    uint64_t cookie;

    if (!first && (script == IDLE_BYE || script == IDLE_DROP
                   || script == IDLE_GARBAGE || script == PENDING)) {
      if (script == IDLE_BYE)
        gnutls_bye (v.session, GNUTLS_SHUT_WR);
      if (script == IDLE_GARBAGE)
        srv_write (&v, "stray bytes, nobody asked", 25);
      if (script == IDLE_BYE || script == IDLE_DROP)
        close (fd);
      else
        srv_wait_eof (&v);
      _exit (0);
    }
    srv_read (&v, req, sizeof req);
    if (get32 (req) != 0x25609513)
      srv_fail ("bad request magic");
    type = get16 (req + 6);
    cookie = get64 (req + 8);
    len = get32 (req + 24);
    if (type == 2) {                    /* DISC */
      disc = true;
      break;
    }
    if (len > sizeof data - 4096)
      srv_fail ("request too long");
    put32 (rep, 0x67446698);
    put32 (rep + 4, 0);
    put64 (rep + 8, cookie);
    if (type == 1) {                    /* WRITE */
      srv_read (&v, data, len);
      writes++;
      srv_write (&v, rep, sizeof rep);
    }
    else if (type == 0) {               /* READ */
      /* One buffer: GnuTLS cuts it into records, so with the PENDING
       * script the stray bytes share a record with the end of the data.
       */
      memcpy (data, rep, sizeof rep);
      memset (data + sizeof rep, 0x5a, len);
      if (script == PENDING) {
        memcpy (data + sizeof rep + len, "stray bytes after a read", 24);
        srv_write (&v, data, sizeof rep + len + 24);
      }
      else
        srv_write (&v, data, sizeof rep + len);
    }
    else                                /* FLUSH and the rest */
      srv_write (&v, rep, sizeof rep);
  }

  {
    char line[128];
    int n = snprintf (line, sizeof line, "writes=%d disc=%d rx=%" PRIu64 " tx=%" PRIu64 "\n",
                      writes, disc, v.rx, v.tx);
    if (write (report, line, (size_t) n) != n)
      srv_fail ("report");
  }
  if (script == DISC_DROP) {
    /* Leave the client's close_notify unread: closing then resets the
     * connection, which the client sees as an error on recv.
     */
    struct pollfd p = { .fd = fd, .events = POLLIN };
    poll (&p, 1, 2000);
    close (fd);
  }
  else {
    gnutls_bye (v.session, GNUTLS_SHUT_WR);
    srv_wait_eof (&v);
  }
  _exit (0);
}

/* ---- The client side ---- */

struct conn {
  struct nbd_handle *h;
  pid_t pid;
  int report;
};

static void
start (struct conn *c, enum script script, int sndbuf)
{
  int sv[2], p[2];

  REQUIRE (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
  REQUIRE (pipe2 (p, O_CLOEXEC) == 0, "pipe");
  if (sndbuf) {
    setsockopt (sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    setsockopt (sv[1], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof sndbuf);
  }
  fflush (stderr);
  c->pid = fork ();
  REQUIRE (c->pid != -1, "fork");
  if (c->pid == 0) {
    close (sv[0]);
    close (p[0]);
    serve (sv[1], script, p[1]);
  }
  close (sv[1]);
  close (p[1]);
  c->report = p[0];
  c->h = nbd_create ();
  REQUIRE (c->h != NULL, "nbd_create");
  REQUIRE (nbd_set_tls (c->h, LIBNBD_TLS_REQUIRE) == 0, "nbd_set_tls");
  REQUIRE (nbd_set_tls_psk_file (c->h, pskfile) == 0, "nbd_set_tls_psk_file");
  REQUIRE (nbd_set_tls_username (c->h, PSK_USER) == 0, "nbd_set_tls_username");
  REQUIRE (nbd_connect_socket (c->h, sv[0]) == 0, "nbd_connect_socket");
  REQUIRE (nbd_get_tls_negotiated (c->h) == 1, "TLS not negotiated");
}

/* The server's report line, parsed; false if it sent none. */
struct report { int writes, disc; uint64_t rx, tx; };

static bool
read_report (struct conn *c, struct report *rp)
{
  char line[128];
  ssize_t n = read (c->report, line, sizeof line - 1);

  if (n <= 0)
    return false;
  line[n] = '\0';
  return sscanf (line, "writes=%d disc=%d rx=%" SCNu64 " tx=%" SCNu64,
                 &rp->writes, &rp->disc, &rp->rx, &rp->tx) == 4;
}

/* Closes the handle and reaps the server; its exit status. */
static int
finish (struct conn *c)
{
  int status;

  nbd_close (c->h);
  close (c->report);
  if (waitpid (c->pid, &status, 0) != c->pid)
    return -1;
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Polls until the handle leaves READY; the polls must wait for the
 * socket rather than spin: at most 20 of them, within 5 seconds.
 * Returns the number of polls, -1 if the handle stayed READY.
 */
static int
poll_until_not_ready (struct nbd_handle *h, const char *what)
{
  double t0 = now ();
  int n = 0;

  while (nbd_aio_is_ready (h)) {
    int r = nbd_poll (h, 5000);
    n++;
    if (r == -1)
      break;
    if (n > 20 || now () - t0 > 5) {
      FAIL ("%s: still %s after %d polls in %.1f s (busy loop?)", what,
            nbd_connection_state (h), n, now () - t0);
      return -1;
    }
  }
  return n;
}

static void
test_idle_close (enum script script, const char *what)
{
  struct conn c;
  char buf[512];
  int n;

  start (&c, script, 0);
  EXPECT_OK (nbd_pread (c.h, buf, sizeof buf, 0, 0));
  n = poll_until_not_ready (c.h, what);
  if (n >= 0) {
    fprintf (stderr, "%s: %s after %d poll(s): %s\n", what, nbd_connection_state (c.h), n,
             nbd_aio_is_dead (c.h) ? nbd_get_error () : "no error");
    if (script == IDLE_BYE)
      CHECK (nbd_aio_is_closed (c.h), "%s: %s", what, nbd_connection_state (c.h));
    else {
      CHECK (nbd_aio_is_dead (c.h), "%s: %s", what, nbd_connection_state (c.h));
      CHECK (nbd_get_error () != NULL, "%s: no error", what);
      /* As libnbd: a TLS record error is GnuTLS's reason, with no errno. */
      if (script == IDLE_DROP)
        CHECK (nbd_get_errno () == 0 && nbd_get_error ()
               && strstr (nbd_get_error (), "gnutls_record_recv") != NULL,
               "%s: errno %d: %s", what, nbd_get_errno (), nbd_get_error ());
    }
  }
  /* A dead or closed handle: nothing to poll for, no busy loop either. */
  CHECK (nbd_poll (c.h, 1000) == -1, "%s: nbd_poll on a %s handle succeeded",
         what, nbd_connection_state (c.h));
  CHECK_EQ (finish (&c), 0);
}

static void
test_pending (void)
{
  struct conn c;
  static char buf[1024 * 1024];

  start (&c, PENDING, 0);
  /* The read itself may succeed or fail (the stray bytes may be decoded
   * as soon as they arrive); what matters is how the handle ends.
   */
  if (nbd_pread (c.h, buf, sizeof buf, 0, 0) == 0)
    CHECK (buf[0] == 0x5a && buf[sizeof buf - 1] == 0x5a, "read data");
  if (poll_until_not_ready (c.h, "pending") >= 0) {
    CHECK (nbd_aio_is_dead (c.h), "pending: %s", nbd_connection_state (c.h));
    fprintf (stderr, "pending: %s\n", nbd_get_error ());
  }
  CHECK_EQ (finish (&c), 0);
}

static void
test_disc_drop (void)
{
  for (int i = 0; i < 5; i++) {
    struct conn c;
    struct report rp;
    char buf[512];

    start (&c, DISC_DROP, 0);
    EXPECT_OK (nbd_pread (c.h, buf, sizeof buf, 0, 0));
    EXPECT_OK (nbd_shutdown (c.h, 0));
    CHECK (nbd_aio_is_closed (c.h), "disc-drop: %s", nbd_connection_state (c.h));
    CHECK (read_report (&c, &rp) && rp.disc == 1, "disc-drop: the server saw no DISC");
    CHECK_EQ (finish (&c), 0);
  }
}

static void
test_stall (void)
{
  enum { N = 400, LEN = 5000 };
  struct conn c;
  struct report rp;
  char *buf = malloc (LEN);
  int64_t cookies[N];
  int ok = 0, abandoned = 0;

  REQUIRE (buf != NULL, "malloc");
  memset (buf, 0x33, LEN);
  start (&c, STALL, 65536);
  for (int i = 0; i < N; i++) {
    cookies[i] = nbd_aio_pwrite (c.h, buf, LEN, (uint64_t) i * LEN, NBD_NULL_COMPLETION, 0);
    REQUIRE (cookies[i] > 0, "nbd_aio_pwrite");
    /* Push out what the socket takes, without waiting. */
    REQUIRE (nbd_poll (c.h, 0) != -1, "nbd_poll");
  }
  EXPECT_OK (nbd_shutdown (c.h, LIBNBD_SHUTDOWN_ABANDON_PENDING));
  for (int i = 0; i < N; i++) {
    int r = nbd_aio_command_completed (c.h, (uint64_t) cookies[i]);
    if (r == 1)
      ok++;
    else if (r == -1 && nbd_get_errno () == ENOTCONN)
      abandoned++;
    else
      FAIL ("write %d: %d (%s)", i, r, nbd_get_error ());
  }
  fprintf (stderr, "stall: %d writes sent, %d abandoned\n", ok, abandoned);
  CHECK (abandoned > 0, "nothing was abandoned: the test did not stall the socket");
  if (read_report (&c, &rp)) {
    CHECK (rp.disc == 1, "stall: the DISC did not reach the server");
    CHECK (rp.writes == ok, "stall: the server executed %d writes, the client "
           "reports %d as done", rp.writes, ok);
  }
  else
    FAIL ("stall: the server reported nothing (it died or never saw the DISC)");
  CHECK_EQ (finish (&c), 0);
  free (buf);
}

static void
test_stats (void)
{
  struct conn c;
  struct report rp;
  static char buf[100000];
  uint64_t s0, r0, cs0, cr0;

  start (&c, STATS, 0);
  s0 = nbd_stats_bytes_sent (c.h);
  r0 = nbd_stats_bytes_received (c.h);
  cs0 = nbd_stats_chunks_sent (c.h);
  cr0 = nbd_stats_chunks_received (c.h);
  EXPECT_OK (nbd_pwrite (c.h, buf, 1000, 0, 0));
  CHECK_EQ (nbd_stats_bytes_sent (c.h) - s0, 28 + 1000);
  CHECK_EQ (nbd_stats_bytes_received (c.h) - r0, 16);
  EXPECT_OK (nbd_pread (c.h, buf, sizeof buf, 0, 0));
  CHECK_EQ (nbd_stats_bytes_sent (c.h) - s0, 28 + 1000 + 28);
  CHECK_EQ (nbd_stats_bytes_received (c.h) - r0, 16 + 16 + sizeof buf);
  CHECK_EQ (nbd_stats_chunks_sent (c.h) - cs0, 2);
  CHECK_EQ (nbd_stats_chunks_received (c.h) - cr0, 2);
  EXPECT_OK (nbd_shutdown (c.h, 0));
  /* The whole connection, handshake included, as the server counted. */
  if (read_report (&c, &rp)) {
    CHECK_EQ (nbd_stats_bytes_sent (c.h), rp.rx);
    CHECK_EQ (nbd_stats_bytes_received (c.h), rp.tx);
  }
  else
    FAIL ("stats: no report from the server");
  CHECK_EQ (finish (&c), 0);
}

static void
remove_pskfile (void)
{
  unlink (pskfile);
}

int
main (void)
{
  struct nbd_handle *h = nbd_create ();
  int fd;

  REQUIRE (h != NULL, "nbd_create");
  if (nbd_supports_tls (h) != 1) {
    fprintf (stderr, "test-tls-faults: no TLS support: skipped\n");
    exit (77);
  }
  nbd_close (h);
  signal (SIGPIPE, SIG_IGN);
  alarm (120);

  strcpy (pskfile, "/tmp/libnbd-tls-faults-XXXXXX");
  fd = mkstemp (pskfile);
  REQUIRE (fd >= 0, "mkstemp");
  atexit (remove_pskfile);
  REQUIRE (write (fd, PSK_USER ":" PSK_HEX "\n", sizeof PSK_USER ":" PSK_HEX "\n" - 1)
           > 0, "write");
  close (fd);

  check_case = "idle-bye";
  test_idle_close (IDLE_BYE, "idle-bye");
  check_case = "idle-drop";
  test_idle_close (IDLE_DROP, "idle-drop");
  check_case = "idle-garbage";
  test_idle_close (IDLE_GARBAGE, "idle-garbage");
  check_case = "pending";
  test_pending ();
  check_case = "disc-drop";
  test_disc_drop ();
  check_case = "stall";
  test_stall ();
  check_case = "stats";
  test_stats ();
  return check_status ("test-tls-faults");
}
