/* The past security issues of upstream libnbd that no other test
 * reproduces (see libnbd-security(3) for the full list and the tests
 * covering the others), each against a hostile server scripted here on
 * one end of a socketpair:
 *
 *  - CVE-2019-14842: a man in the middle answers with an oldstyle (or a
 *    plain newstyle) greeting, which has no STARTTLS, to a client that
 *    requires TLS: the connect must fail instead of going on in clear;
 *  - the 2019 structured-reply flaw: a data or hole chunk whose offset
 *    lies before the read request (a negative offset into the caller's
 *    buffer) must fail the connection and leave memory around the
 *    buffer alone;
 *  - CVE-2021-20286: the server dying while nbd_opt_go waits for its
 *    reply (option mode) must give an error, not an assertion failure;
 *  - CVE-2023-5215: an export size of 2^63 or more (negative as the
 *    int64_t of nbd_get_size) must be refused, in each of the three
 *    places a size arrives: the oldstyle greeting, NBD_INFO_EXPORT and
 *    the reply to NBD_OPT_EXPORT_NAME.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "checks.h"

#define NBDMAGIC          UINT64_C(0x4e42444d41474943)
#define IHAVEOPT          UINT64_C(0x49484156454f5054)
#define OLDSTYLE_VERSION  UINT64_C(0x00420281861253)
#define OPT_REPLY_MAGIC   UINT64_C(0x3e889045565a9)
#define REQUEST_MAGIC     UINT32_C(0x25609513)
#define CHUNK_MAGIC       UINT32_C(0x668e33ef)

enum { OPT_EXPORT_NAME = 1, OPT_ABORT = 2, OPT_INFO = 6, OPT_GO = 7,
       OPT_STRUCTURED_REPLY = 8 };
enum { REP_ACK = 1, REP_INFO = 3 };
#define REP_ERR_UNSUP     (UINT32_C(1) << 31 | 1)
enum { CHUNK_OFFSET_DATA = 1, CHUNK_OFFSET_HOLE = 2 };
#define EXPORT_SIZE       (1024 * 1024)

/* What the scripted server does. */
struct script {
  int fd;
  bool oldstyle;
  bool fixed_newstyle;          /* newstyle: advertise FIXED_NEWSTYLE */
  uint64_t size;                /* the export size it announces */
  bool die_on_go;               /* close when NBD_OPT_GO arrives */
  bool go_info_only;            /* ... or after NBD_REP_INFO, before the ACK */
  int chunk_type;               /* reply to a read with this chunk type */
  uint64_t chunk_back;          /* at this many bytes before the request */
  bool no_zeroes;               /* set from the client's flags */
};

static bool
send_all (int fd, const void *buf, size_t n)
{
  const char *p = buf;
  while (n > 0) {
    ssize_t r = send (fd, p, n, MSG_NOSIGNAL);
    if (r <= 0)
      return false;
    p += r;
    n -= (size_t) r;
  }
  return true;
}

static bool
recv_all (int fd, void *buf, size_t n)
{
  char *p = buf;
  while (n > 0) {
    ssize_t r = read (fd, p, n);
    if (r <= 0)
      return false;
    p += r;
    n -= (size_t) r;
  }
  return true;
}

/* Big-endian fields appended to an output buffer. */
struct out { unsigned char b[512]; size_t n; };

static void
out_be (struct out *o, uint64_t v, int bytes)
{
  for (int i = bytes - 1; i >= 0; i--)
    o->b[o->n++] = (unsigned char) (v >> (8 * i));
}

static uint64_t
be_at (const unsigned char *p, int bytes)
{
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++)
    v = v << 8 | p[i];
  return v;
}

static bool
option_reply (int fd, uint32_t opt, uint32_t type, const struct out *payload)
{
  struct out o = { .n = 0 };
  out_be (&o, OPT_REPLY_MAGIC, 8);
  out_be (&o, opt, 4);
  out_be (&o, type, 4);
  out_be (&o, payload ? payload->n : 0, 4);
  if (payload) {
    memcpy (o.b + o.n, payload->b, payload->n);
    o.n += payload->n;
  }
  return send_all (fd, o.b, o.n);
}

/* Options until the client enters transmission; false if it leaves. */
static bool
negotiate (const struct script *s)
{
  unsigned char hdr[16], data[4096];
  struct out info;

  for (;;) {
    uint32_t opt, len;
    if (!recv_all (s->fd, hdr, sizeof hdr))
      return false;
    opt = (uint32_t) be_at (hdr + 8, 4);
    len = (uint32_t) be_at (hdr + 12, 4);
    if (len > sizeof data || !recv_all (s->fd, data, len))
      return false;
    info.n = 0;
    switch (opt) {
    case OPT_EXPORT_NAME:       /* no reply header: size, flags, zeroes */
      out_be (&info, s->size, 8);
      out_be (&info, 1, 2);
      if (!s->no_zeroes) {
        memset (info.b + info.n, 0, 124);
        info.n += 124;
      }
      return send_all (s->fd, info.b, info.n);
    case OPT_STRUCTURED_REPLY:
      if (!option_reply (s->fd, opt, REP_ACK, NULL))
        return false;
      break;
    case OPT_GO:
    case OPT_INFO:
      if (opt == OPT_GO && s->die_on_go)
        return false;
      out_be (&info, 0, 2);     /* NBD_INFO_EXPORT */
      out_be (&info, s->size, 8);
      out_be (&info, 1, 2);     /* NBD_FLAG_HAS_FLAGS */
      if (!option_reply (s->fd, opt, REP_INFO, &info))
        return false;
      if (opt == OPT_GO && s->go_info_only)
        return false;
      if (!option_reply (s->fd, opt, REP_ACK, NULL))
        return false;
      if (opt == OPT_GO)
        return true;
      break;
    case OPT_ABORT:
      option_reply (s->fd, opt, REP_ACK, NULL);
      return false;
    default:                    /* extended headers, meta contexts ... */
      if (!option_reply (s->fd, opt, REP_ERR_UNSUP, NULL))
        return false;
    }
  }
}

/* Transmission: each read is answered by the one hostile chunk. */
static void
serve_reads (const struct script *s)
{
  unsigned char req[28];
  static unsigned char junk[4096];

  memset (junk, 0xa5, sizeof junk);
  while (recv_all (s->fd, req, sizeof req)) {
    uint16_t type = (uint16_t) be_at (req + 6, 2);
    uint64_t cookie = be_at (req + 8, 8);
    uint64_t offset = be_at (req + 16, 8);
    uint32_t count = (uint32_t) be_at (req + 24, 4);
    struct out o = { .n = 0 };

    if (type != 0 || count > sizeof junk)       /* only NBD_CMD_READ */
      return;
    out_be (&o, CHUNK_MAGIC, 4);
    out_be (&o, 1, 2);                          /* NBD_REPLY_FLAG_DONE */
    out_be (&o, (uint64_t) s->chunk_type, 2);
    out_be (&o, cookie, 8);
    if (s->chunk_type == CHUNK_OFFSET_DATA) {
      out_be (&o, 8 + (uint64_t) count, 4);
      out_be (&o, offset - s->chunk_back, 8);
      if (!send_all (s->fd, o.b, o.n) || !send_all (s->fd, junk, count))
        return;
    }
    else {
      out_be (&o, 12, 4);
      out_be (&o, offset - s->chunk_back, 8);
      out_be (&o, count, 4);
      if (!send_all (s->fd, o.b, o.n))
        return;
    }
  }
}

static void *
server_thread (void *arg)
{
  struct script *s = arg;
  struct out o = { .n = 0 };
  unsigned char cflags[4], rest[4096];

  out_be (&o, NBDMAGIC, 8);
  if (s->oldstyle) {
    out_be (&o, OLDSTYLE_VERSION, 8);
    out_be (&o, s->size, 8);
    out_be (&o, 1, 4);                          /* NBD_FLAG_HAS_FLAGS */
    memset (o.b + o.n, 0, 124);
    o.n += 124;
    if (!send_all (s->fd, o.b, o.n))
      goto out;
    if (s->chunk_type == 0)
      while (read (s->fd, rest, sizeof rest) > 0)
        ;
    goto out;
  }
  out_be (&o, IHAVEOPT, 8);
  out_be (&o, s->fixed_newstyle ? 1 | 2 : 0, 2);
  if (!send_all (s->fd, o.b, o.n) || !recv_all (s->fd, cflags, 4))
    goto out;
  s->no_zeroes = (be_at (cflags, 4) & 2) != 0;
  if (negotiate (s))
    serve_reads (s);
 out:
  close (s->fd);
  return NULL;
}

/* A handle connected (or not) to the scripted server through a
 * socketpair; *t is the server thread, joined by finish.
 */
static struct nbd_handle *
start (struct script *s, pthread_t *t, int tls, bool opt_mode, int *connect_r)
{
  int sv[2];
  struct nbd_handle *h = nbd_create ();

  REQUIRE (h != NULL, "nbd_create");
  REQUIRE (socketpair (AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
  if (tls != LIBNBD_TLS_DISABLE)
    REQUIRE (nbd_set_tls (h, tls) == 0, "nbd_set_tls");
  REQUIRE (nbd_set_opt_mode (h, opt_mode) == 0, "nbd_set_opt_mode");
  s->fd = sv[1];
  REQUIRE (pthread_create (t, NULL, server_thread, s) == 0, "pthread_create");
  *connect_r = nbd_connect_socket (h, sv[0]);
  return h;
}

static void
finish (struct nbd_handle *h, pthread_t t)
{
  nbd_close (h);                /* closes our end: the server ends too */
  pthread_join (t, NULL);
}

/* CVE-2019-14842. */
static void
test_tls_downgrade (void)
{
  struct script s;
  struct nbd_handle *h;
  pthread_t t;
  int r, have_tls;

  h = nbd_create ();
  REQUIRE (h != NULL, "nbd_create");
  have_tls = nbd_supports_tls (h);
  nbd_close (h);
  if (!have_tls) {
    fprintf (stderr, "no TLS support: downgrade cases skipped\n");
    return;
  }

  check_case = "CVE-2019-14842 oldstyle, TLS required";
  s = (struct script) { .oldstyle = true, .size = EXPORT_SIZE };
  h = start (&s, &t, LIBNBD_TLS_REQUIRE, false, &r);
  CHECK (r == -1, "connected in clear to an oldstyle server");
  CHECK_ERR (ENOTSUP, "nbd_connect_socket", "oldstyle");
  CHECK_EQ (nbd_aio_is_dead (h), 1);
  CHECK (nbd_get_size (h) == -1, "a size from the downgraded server is visible");
  finish (h, t);

  /* The same server is fine for a client that only allows TLS. */
  check_case = "oldstyle, TLS allowed";
  s = (struct script) { .oldstyle = true, .size = EXPORT_SIZE };
  h = start (&s, &t, LIBNBD_TLS_ALLOW, false, &r);
  CHECK (r == 0, "connect: %s", nbd_get_error ());
  CHECK_EQ (nbd_get_tls_negotiated (h), 0);
  CHECK_EQ (nbd_get_size (h), EXPORT_SIZE);
  finish (h, t);

  /* Plain (not fixed) newstyle cannot carry STARTTLS either. */
  check_case = "plain newstyle, TLS required";
  s = (struct script) { .size = EXPORT_SIZE };
  h = start (&s, &t, LIBNBD_TLS_REQUIRE, false, &r);
  CHECK (r == -1, "connected in clear to a plain newstyle server");
  CHECK_ERR (ENOTSUP, "nbd_connect_socket", "fixed newstyle");
  finish (h, t);
  check_case = NULL;
}

/* The 2019 negative structured-reply offset. */
static void
check_chunk_before_request (int chunk_type, uint64_t back, const char *what)
{
  enum { GUARD = 8192, LEN = 4096 };
  static unsigned char area[GUARD + LEN + GUARD];
  struct script s = { .fixed_newstyle = true, .size = EXPORT_SIZE,
                      .chunk_type = chunk_type, .chunk_back = back };
  struct nbd_handle *h;
  pthread_t t;
  int r;
  size_t i, bad = 0;

  check_case = what;
  memset (area, 0x3c, sizeof area);
  h = start (&s, &t, LIBNBD_TLS_DISABLE, false, &r);
  REQUIRE (r == 0, "%s: connect", what);
  CHECK_EQ (nbd_get_structured_replies_negotiated (h), 1);
  /* A data chunk breaks the stream (its payload has nowhere to go), so
   * the connection ends; a hole chunk only fails its command.
   */
  if (chunk_type == CHUNK_OFFSET_DATA) {
    /* (errno 0, as libnbd for a protocol violation: only a message.) */
    CHECK_FAILS (nbd_pread (h, area + GUARD, LEN, 64 * 1024, 0), 0,
                 "nbd_pread", "outside the read request");
    CHECK_EQ (nbd_aio_is_dead (h), 1);
  }
  else
    CHECK_FAILS (nbd_pread (h, area + GUARD, LEN, 64 * 1024, 0), EPROTO,
                 "nbd_pread", NULL);
  for (i = 0; i < GUARD; i++)
    bad += area[i] != 0x3c || area[GUARD + LEN + i] != 0x3c;
  CHECK (bad == 0, "%zu bytes around the buffer were written", bad);
  finish (h, t);
  check_case = NULL;
}

/* CVE-2021-20286. */
static void
test_opt_go_server_dies (void)
{
  const struct { bool info_first; const char *what; } cases[] = {
    { false, "CVE-2021-20286 server dies on NBD_OPT_GO" },
    { true, "CVE-2021-20286 server dies after NBD_REP_INFO" },
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct script s = { .fixed_newstyle = true, .size = EXPORT_SIZE,
                        .die_on_go = !cases[i].info_first,
                        .go_info_only = cases[i].info_first };
    struct nbd_handle *h;
    pthread_t t;
    int r;

    check_case = cases[i].what;
    h = start (&s, &t, LIBNBD_TLS_DISABLE, true, &r);
    REQUIRE (r == 0, "%s: connect", cases[i].what);
    CHECK_EQ (nbd_aio_is_negotiating (h), 1);
    r = nbd_opt_go (h);
    CHECK (r == -1, "nbd_opt_go returned %d", r);
    /* As libnbd: the end of stream carries no errno, only a message; or,
     * when it was seen before nbd_opt_go waited (a slow run, valgrind),
     * the option reports the connection lost (ENOTCONN).
     */
    CHECK ((nbd_get_errno () == 0 || nbd_get_errno () == ENOTCONN)
           && nbd_get_error () != NULL, "errno %d: %s",
           nbd_get_errno (), nbd_get_error ());
    CHECK_EQ (nbd_aio_is_dead (h), 1);
    /* Later calls keep failing cleanly. */
    CHECK_FAILS (nbd_opt_go (h), EINVAL, "nbd_opt_go", NULL);
    CHECK_FAILS (nbd_opt_info (h), EINVAL, "nbd_opt_info", NULL);
    finish (h, t);
  }
  check_case = NULL;
}

/* CVE-2023-5215. */
static void
test_size_too_large (void)
{
  const uint64_t sizes[] = { UINT64_C(1) << 63, UINT64_MAX };

  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    struct script s;
    struct nbd_handle *h;
    pthread_t t;
    int r;

    /* The three places a size arrives while connecting: the oldstyle
     * greeting, NBD_INFO_EXPORT (fixed newstyle, NBD_OPT_GO) and the
     * reply to NBD_OPT_EXPORT_NAME (plain newstyle).
     */
    const struct { bool oldstyle, fixed; const char *what; } where[] = {
      { true, false, "CVE-2023-5215 oldstyle size" },
      { false, true, "CVE-2023-5215 NBD_INFO_EXPORT size" },
      { false, false, "CVE-2023-5215 NBD_OPT_EXPORT_NAME size" },
    };
    for (size_t j = 0; j < sizeof where / sizeof where[0]; j++) {
      check_case = where[j].what;
      s = (struct script) { .oldstyle = where[j].oldstyle,
                            .fixed_newstyle = where[j].fixed,
                            .size = sizes[i] };
      h = start (&s, &t, LIBNBD_TLS_DISABLE, false, &r);
      /* As libnbd since the fix: the connection is made, the size is
       * never handed out as a negative number.
       */
      CHECK (r == 0, "connect: %s", nbd_get_error ());
      CHECK_FAILS (nbd_get_size (h), EOVERFLOW, "nbd_get_size", "does not fit");
      finish (h, t);
    }

    /* nbd_opt_info in option mode: the same. */
    check_case = "CVE-2023-5215 nbd_opt_info size";
    s = (struct script) { .fixed_newstyle = true, .size = sizes[i] };
    h = start (&s, &t, LIBNBD_TLS_DISABLE, true, &r);
    REQUIRE (r == 0, "opt mode connect");
    CHECK_EQ (nbd_opt_info (h), 0);
    CHECK_FAILS (nbd_get_size (h), EOVERFLOW, "nbd_get_size", NULL);
    finish (h, t);
  }

  /* The largest valid size is accepted. */
  {
    struct script s = { .fixed_newstyle = true, .size = INT64_MAX };
    struct nbd_handle *h;
    pthread_t t;
    int r;

    check_case = "size INT64_MAX";
    h = start (&s, &t, LIBNBD_TLS_DISABLE, false, &r);
    CHECK (r == 0, "connect: %s", nbd_get_error ());
    CHECK_EQ (nbd_get_size (h), INT64_MAX);
    finish (h, t);
  }
  check_case = NULL;
}

int
main (void)
{
  test_tls_downgrade ();
  check_chunk_before_request (CHUNK_OFFSET_DATA, 4096,
                              "2019 data chunk one request length early");
  check_chunk_before_request (CHUNK_OFFSET_DATA, 1,
                              "2019 data chunk one byte early");
  check_chunk_before_request (CHUNK_OFFSET_HOLE, 4096,
                              "2019 hole chunk one request length early");
  check_chunk_before_request (CHUNK_OFFSET_DATA, UINT64_C(1) << 63,
                              "2019 data chunk 2^63 early");
  test_opt_go_server_dies ();
  test_size_too_large ();
  return check_status ("test-security");
}
