/* nbd-test-server: a tiny, single-connection NBD server for the test suite.
 *
 * It serves one in-memory export over a Unix socket, stdin/stdout, or a
 * systemd-activated socket, speaks fixed newstyle (or oldstyle) handshakes,
 * structured replies, extended headers and block-status payloads, and can
 * inject deterministic protocol faults to exercise client error handling.
 *
 * Build: cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -O2 -o nbd-test-server \
 *          nbd-test-server.c
 * Run "nbd-test-server --help" for usage.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

/* ---- protocol constants ------------------------------------------------ */

#define NBDMAGIC            UINT64_C(0x4e42444d41474943)
#define OLDSTYLE_MAGIC      UINT64_C(0x00420281861253)
#define IHAVEOPT            UINT64_C(0x49484156454F5054)
#define OPT_REPLY_MAGIC     UINT64_C(0x3e889045565a9)
#define REQ_MAGIC           UINT32_C(0x25609513)
#define EXT_REQ_MAGIC       UINT32_C(0x21e41c71)
#define SIMPLE_REPLY_MAGIC  UINT32_C(0x67446698)
#define SR_REPLY_MAGIC      UINT32_C(0x668e33ef)
#define EXT_REPLY_MAGIC     UINT32_C(0x6e8a278c)
#define BAD_MAGIC32         UINT32_C(0xbadbad00)

#define OPT_EXPORT_NAME       1
#define OPT_ABORT             2
#define OPT_LIST              3
#define OPT_INFO              6
#define OPT_GO                7
#define OPT_STRUCTURED_REPLY  8
#define OPT_LIST_META_CONTEXT 9
#define OPT_SET_META_CONTEXT  10
#define OPT_EXTENDED_HEADERS  11

#define REP_ACK            1
#define REP_SERVER         2
#define REP_INFO           3
#define REP_META_CONTEXT   4
#define REP_ERR(n)         (UINT32_C(0x80000000) | (n))
#define REP_ERR_UNSUP      REP_ERR (1)
#define REP_ERR_INVALID    REP_ERR (3)
#define REP_ERR_UNKNOWN    REP_ERR (6)
#define REP_ERR_TOO_BIG    REP_ERR (9)

#define INFO_EXPORT        0
#define INFO_NAME          1
#define INFO_DESCRIPTION   2
#define INFO_BLOCK_SIZE    3

#define HS_FIXED_NEWSTYLE  1
#define HS_NO_ZEROES       2

#define TF_HAS_FLAGS          (1u << 0)
#define TF_READ_ONLY          (1u << 1)
#define TF_SEND_FLUSH         (1u << 2)
#define TF_SEND_FUA           (1u << 3)
#define TF_SEND_TRIM          (1u << 5)
#define TF_SEND_WRITE_ZEROES  (1u << 6)
#define TF_SEND_DF            (1u << 7)
#define TF_CAN_MULTI_CONN     (1u << 8)
#define TF_SEND_CACHE         (1u << 10)
#define TF_SEND_FAST_ZERO     (1u << 11)
#define TF_BLOCK_STAT_PAYLOAD (1u << 12)

#define CMD_READ          0
#define CMD_WRITE         1
#define CMD_DISC          2
#define CMD_FLUSH         3
#define CMD_TRIM          4
#define CMD_CACHE         5
#define CMD_WRITE_ZEROES  6
#define CMD_BLOCK_STATUS  7

#define CF_FUA          (1u << 0)
#define CF_NO_HOLE      (1u << 1)
#define CF_DF           (1u << 2)
#define CF_REQ_ONE      (1u << 3)
#define CF_FAST_ZERO    (1u << 4)
#define CF_PAYLOAD_LEN  (1u << 5)
#define CF_ALL          0x3fu

#define RT_NONE              0
#define RT_OFFSET_DATA       1
#define RT_OFFSET_HOLE       2
#define RT_BLOCK_STATUS      5
#define RT_BLOCK_STATUS_EXT  6
#define RT_ERROR             0x8001
#define RF_DONE              1

#define E_PERM      1
#define E_IO        5
#define E_INVAL     22
#define E_NOSPC     28
#define E_OVERFLOW  75

#define BLK        4096u
#define CHUNK      65536u

#define CTX_BASE   1
#define CTX_DIRTY  2
static const char *const ctx_names[3] =
  { NULL, "base:allocation", "qemu:dirty-bitmap:test" };

/* ---- configuration ----------------------------------------------------- */

enum fault {
  F_NONE = 0, F_CLOSE_AFTER_MAGIC, F_CLOSE_AFTER_GREETING, F_CLOSE_IN_OPTION,
  F_CLOSE_BEFORE_REPLY, F_BAD_MAGIC, F_BAD_REPLY_MAGIC, F_UNKNOWN_COOKIE,
  F_STRAY_CHUNK, F_OVERLAP_CHUNKS, F_GAP_CHUNKS, F_SHORT_ERROR_MESSAGE,
  F_HUGE_LENGTH, F_UNKNOWN_CHUNK, F_UNKNOWN_ERROR_CHUNK, F_ERROR_REPLY,
  F_BIG_EXTENT, F_BIG_EXTENT_LENGTH, F_SLOW, F_DUPLICATE_REPLY,
  F_BLOATED_EXTENTS,
};
static const char *const fault_names[] = {
  "none", "close-after-magic", "close-after-greeting", "close-in-option",
  "close-before-reply", "bad-magic", "bad-reply-magic", "unknown-cookie",
  "stray-chunk", "overlap-chunks", "gap-chunks", "short-error-message",
  "huge-length", "unknown-chunk", "unknown-error-chunk", "error-reply",
  "big-extent", "big-extent-length", "slow", "duplicate-reply",
  "bloated-extents",
};

static bool debug;
static uint64_t export_size = 1024 * 1024;
static bool pattern;
static const char *export_name = "";
static const char *description;
static uint32_t bs_min = 1, bs_pref = 4096, bs_max = 32 * 1024 * 1024;
static bool oldstyle, no_eh, no_sr, read_only;
static enum fault fault = F_NONE;

/* ---- connection state -------------------------------------------------- */

static int in_fd = -1, out_fd = -1;
static bool no_zeroes, sr, eh;
static bool ctx_on[3];          /* negotiated meta contexts, by id */
static uint64_t replies_sent;   /* transmission reply headers sent */
static bool read_fault_done;    /* one-shot READ chunk faults */

/* ---- backing store (sparse, 4 KiB blocks) ------------------------------ */

enum { B_INIT = 0, B_HOLE = 1, B_DATA = 2 };
static uint64_t nblocks;
static uint8_t *bstate;         /* B_* */
static uint8_t *bdirty;         /* 1 if modified since start */
static uint8_t **bdata;         /* contents for B_DATA blocks */

/* ---- helpers ----------------------------------------------------------- */

static void
dbg (const char *fmt, ...)
{
  va_list ap;
  if (!debug)
    return;
  va_start (ap, fmt);
  fprintf (stderr, "nbd-test-server[%ld]: ", (long) getpid ());
  vfprintf (stderr, fmt, ap);
  fputc ('\n', stderr);
  va_end (ap);
}

/* The client went away: not an error for this server. */
static void __attribute__ ((noreturn))
client_gone (void)
{
  dbg ("client disconnected");
  exit (EXIT_SUCCESS);
}

/* The client violated the protocol. */
static void __attribute__ ((noreturn, format (printf, 1, 2)))
proto_error (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fprintf (stderr, "nbd-test-server: protocol error from client: ");
  vfprintf (stderr, fmt, ap);
  fputc ('\n', stderr);
  va_end (ap);
  /* Let the client see a clean EOF rather than a reset: stop sending,
   * then drain (bounded) what it already sent before closing. */
  if (out_fd >= 0)
    shutdown (out_fd, SHUT_WR);
  if (in_fd >= 0) {
    struct pollfd pfd = { .fd = in_fd, .events = POLLIN };
    char buf[4096];
    while (poll (&pfd, 1, 500) > 0 && read (in_fd, buf, sizeof buf) > 0)
      ;
  }
  exit (EXIT_FAILURE);
}

/* Deliberate close as part of fault injection. */
static void __attribute__ ((noreturn))
fault_close (const char *why)
{
  dbg ("fault %s: closing connection (%s)", fault_names[fault], why);
  if (in_fd >= 0)
    close (in_fd);
  if (out_fd >= 0 && out_fd != in_fd)
    close (out_fd);
  exit (EXIT_SUCCESS);
}

static void
read_full (void *buf, size_t len)
{
  char *p = buf;
  while (len > 0) {
    ssize_t r = read (in_fd, p, len);
    if (r == 0)
      client_gone ();
    if (r < 0) {
      if (errno == EINTR)
        continue;
      if (errno == ECONNRESET || errno == EPIPE)
        client_gone ();
      perror ("nbd-test-server: read");
      exit (EXIT_FAILURE);
    }
    p += r;
    len -= r;
  }
}

static void
discard (uint64_t len)
{
  char buf[65536];
  while (len > 0) {
    size_t n = len > sizeof buf ? sizeof buf : (size_t) len;
    read_full (buf, n);
    len -= n;
  }
}

static void
write_full (const void *buf, size_t len)
{
  const char *p = buf;
  while (len > 0) {
    ssize_t r = write (out_fd, p, len);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EPIPE || errno == ECONNRESET)
        client_gone ();
      perror ("nbd-test-server: write");
      exit (EXIT_FAILURE);
    }
    p += r;
    len -= r;
  }
}

static void put16 (uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v; }
static void put32 (uint8_t *p, uint32_t v)
{ put16 (p, v >> 16); put16 (p + 2, v); }
static void put64 (uint8_t *p, uint64_t v)
{ put32 (p, v >> 32); put32 (p + 4, v); }
static uint16_t get16 (const uint8_t *p) { return (uint16_t) (p[0] << 8 | p[1]); }
static uint32_t get32 (const uint8_t *p)
{ return (uint32_t) get16 (p) << 16 | get16 (p + 2); }
static uint64_t get64 (const uint8_t *p)
{ return (uint64_t) get32 (p) << 32 | get32 (p + 4); }

static void send64 (uint64_t v) { uint8_t b[8]; put64 (b, v); write_full (b, 8); }
static void send32 (uint32_t v) { uint8_t b[4]; put32 (b, v); write_full (b, 4); }
static void send16 (uint16_t v) { uint8_t b[2]; put16 (b, v); write_full (b, 2); }

static void *
xmalloc (size_t n)
{
  void *p = malloc (n ? n : 1);
  if (!p) {
    perror ("nbd-test-server: malloc");
    exit (EXIT_FAILURE);
  }
  return p;
}

/* ---- backing store operations ------------------------------------------ */

static void
store_init (void)
{
  nblocks = (export_size + BLK - 1) / BLK;
  bstate = calloc (nblocks + 1, 1);
  bdirty = calloc (nblocks + 1, 1);
  bdata = calloc (nblocks + 1, sizeof *bdata);
  if (!bstate || !bdirty || !bdata) {
    fprintf (stderr, "nbd-test-server: cannot allocate export of %" PRIu64
             " bytes\n", export_size);
    exit (EXIT_FAILURE);
  }
}

/* Does block b read as zeroes that were never written (a hole)? */
static bool
blk_is_hole (uint64_t b)
{
  return bstate[b] == B_HOLE || (bstate[b] == B_INIT && !pattern);
}

/* Fill buf with the content of [off, off+len), len fits in one block. */
static void
blk_read (uint64_t off, uint8_t *buf, size_t len)
{
  uint64_t b = off / BLK;
  size_t i;
  switch (bstate[b]) {
  case B_DATA:
    memcpy (buf, bdata[b] + off % BLK, len);
    break;
  case B_INIT:
    if (pattern) {
      for (i = 0; i < len; i++)
        buf[i] = (uint8_t) (off + i);
      break;
    }
    /* fallthrough */
  default:
    memset (buf, 0, len);
  }
}

static void
store_read (uint64_t off, uint8_t *buf, uint64_t len)
{
  while (len > 0) {
    size_t n = BLK - off % BLK;
    if (n > len)
      n = len;
    blk_read (off, buf, n);
    off += n; buf += n; len -= n;
  }
}

static uint8_t *
blk_materialize (uint64_t b)
{
  if (bstate[b] != B_DATA) {
    uint8_t *d = xmalloc (BLK);
    blk_read (b * BLK, d, BLK);  /* reads past the end are harmless */
    bdata[b] = d;
    bstate[b] = B_DATA;
  }
  return bdata[b];
}

static void
store_write (uint64_t off, const uint8_t *buf, uint64_t len)
{
  while (len > 0) {
    uint64_t b = off / BLK;
    size_t n = BLK - off % BLK;
    if (n > len)
      n = len;
    memcpy (blk_materialize (b) + off % BLK, buf, n);
    bdirty[b] = 1;
    off += n; buf += n; len -= n;
  }
}

/* Zero a range; whole blocks become holes unless no_hole. */
static void
store_zero (uint64_t off, uint64_t len, bool no_hole)
{
  while (len > 0) {
    uint64_t b = off / BLK;
    uint64_t n = BLK - off % BLK;
    if (n > len)
      n = len;
    bool whole = off % BLK == 0 && (n == BLK || off + n >= export_size);
    if (whole && !no_hole) {
      free (bdata[b]);
      bdata[b] = NULL;
      bstate[b] = B_HOLE;
    }
    else
      memset (blk_materialize (b) + off % BLK, 0, n);
    bdirty[b] = 1;
    off += n; len -= n;
  }
}

/* ---- handshake --------------------------------------------------------- */

static uint16_t
trans_flags (void)
{
  uint16_t f = TF_HAS_FLAGS | TF_SEND_FLUSH | TF_SEND_FUA | TF_SEND_TRIM |
    TF_SEND_WRITE_ZEROES | TF_CAN_MULTI_CONN | TF_SEND_CACHE |
    TF_SEND_FAST_ZERO;
  if (sr || eh)
    f |= TF_SEND_DF;
  if (eh)
    f |= TF_BLOCK_STAT_PAYLOAD;
  if (read_only)
    f |= TF_READ_ONLY;
  return f;
}

static void
opt_reply (uint32_t opt, uint32_t type, const void *data, size_t len)
{
  uint8_t h[20];
  put64 (h, OPT_REPLY_MAGIC);
  put32 (h + 8, opt);
  put32 (h + 12, type);
  put32 (h + 16, (uint32_t) len);
  write_full (h, sizeof h);
  if (len)
    write_full (data, len);
  dbg ("option %" PRIu32 ": reply 0x%" PRIx32 " length %zu", opt, type, len);
}

static void
opt_error (uint32_t opt, uint32_t type, const char *msg)
{
  dbg ("option %" PRIu32 ": error: %s", opt, msg);
  opt_reply (opt, type, msg, strlen (msg));
}

static bool
name_ok (const char *name, size_t len)
{
  return len == 0 ||
    (len == strlen (export_name) && memcmp (name, export_name, len) == 0);
}

static void
send_info (uint32_t opt, uint16_t type, const void *data, size_t len)
{
  uint8_t *b = xmalloc (2 + len);
  put16 (b, type);
  if (len)
    memcpy (b + 2, data, len);
  opt_reply (opt, REP_INFO, b, 2 + len);
  free (b);
}

/* Handle INFO/GO; returns true if transmission should start. */
static bool
do_info_go (uint32_t opt, const uint8_t *d, uint32_t len)
{
  if (len < 6)
    goto invalid;
  uint32_t nlen = get32 (d);
  if (nlen > len - 6)
    goto invalid;
  uint16_t nreq = get16 (d + 4 + nlen);
  if ((uint64_t) 6 + nlen + 2u * nreq != len)
    goto invalid;
  if (!name_ok ((const char *) d + 4, nlen)) {
    opt_error (opt, REP_ERR_UNKNOWN, "unknown export name");
    return false;
  }
  uint8_t e[10];
  put64 (e, export_size);
  put16 (e + 8, trans_flags ());
  send_info (opt, INFO_EXPORT, e, sizeof e);
  bool sent[4] = { true, false, false, false };
  for (uint16_t i = 0; i < nreq; i++) {
    uint16_t t = get16 (d + 6 + nlen + 2u * i);
    if (t > 3 || sent[t])
      continue;
    sent[t] = true;
    if (t == INFO_NAME)
      send_info (opt, INFO_NAME, export_name, strlen (export_name));
    else if (t == INFO_DESCRIPTION && description)
      send_info (opt, INFO_DESCRIPTION, description, strlen (description));
    else if (t == INFO_BLOCK_SIZE)
      sent[t] = false;          /* sent below */
  }
  uint8_t bsz[12];
  put32 (bsz, bs_min);
  put32 (bsz + 4, bs_pref);
  put32 (bsz + 8, bs_max);
  send_info (opt, INFO_BLOCK_SIZE, bsz, sizeof bsz);
  opt_reply (opt, REP_ACK, NULL, 0);
  return opt == OPT_GO;

 invalid:
  opt_error (opt, REP_ERR_INVALID, "malformed INFO/GO request");
  return false;
}

static bool
ctx_match (const char *q, size_t qlen, int id, bool list)
{
  const char *n = ctx_names[id];
  size_t nl = strlen (n);
  if (qlen == nl && memcmp (q, n, nl) == 0)
    return true;
  /* LIST accepts namespace prefixes ending in ':' (e.g. "base:"). */
  return list && qlen > 0 && qlen < nl && q[qlen - 1] == ':' &&
    memcmp (q, n, qlen) == 0;
}

static void
do_meta (uint32_t opt, const uint8_t *d, uint32_t len)
{
  bool list = opt == OPT_LIST_META_CONTEXT;
  bool match[3] = { false, false, false };

  if (!list && !sr && !eh) {
    opt_error (opt, REP_ERR_INVALID,
               "structured replies or extended headers not negotiated");
    return;
  }
  if (len < 8)
    goto invalid;
  uint32_t nlen = get32 (d);
  if (nlen > len - 8)
    goto invalid;
  uint32_t nq = get32 (d + 4 + nlen);
  uint32_t pos = 8 + nlen;
  for (uint32_t i = 0; i < nq; i++) {
    if (len - pos < 4)
      goto invalid;
    uint32_t ql = get32 (d + pos);
    pos += 4;
    if (ql > len - pos)
      goto invalid;
    for (int id = 1; id <= 2; id++)
      if (ctx_match ((const char *) d + pos, ql, id, list))
        match[id] = true;
    dbg ("option %" PRIu32 ": query '%.*s'", opt, (int) ql,
         (const char *) d + pos);
    pos += ql;
  }
  if (pos != len)
    goto invalid;
  if (!name_ok ((const char *) d + 4, nlen)) {
    opt_error (opt, REP_ERR_UNKNOWN, "unknown export name");
    return;
  }
  if (list && nq == 0)
    match[1] = match[2] = true;
  for (int id = 1; id <= 2; id++) {
    if (!match[id])
      continue;
    uint8_t b[64];
    size_t nl = strlen (ctx_names[id]);
    put32 (b, list ? 0 : (uint32_t) id);
    memcpy (b + 4, ctx_names[id], nl);
    opt_reply (opt, REP_META_CONTEXT, b, 4 + nl);
  }
  if (!list)
    for (int id = 1; id <= 2; id++)
      ctx_on[id] = match[id];
  opt_reply (opt, REP_ACK, NULL, 0);
  return;

 invalid:
  opt_error (opt, REP_ERR_INVALID, "malformed meta context request");
}

static void
handshake (void)
{
  uint8_t b[20];

  if (fault == F_BAD_MAGIC) {
    dbg ("fault bad-magic: sending wrong NBDMAGIC");
    send64 (NBDMAGIC ^ 0xff);
  }
  else
    send64 (NBDMAGIC);
  if (fault == F_CLOSE_AFTER_MAGIC)
    fault_close ("after NBDMAGIC");

  if (oldstyle) {
    uint8_t zero[124] = { 0 };
    dbg ("oldstyle handshake, size %" PRIu64, export_size);
    send64 (OLDSTYLE_MAGIC);
    send64 (export_size);
    send32 (trans_flags ());
    write_full (zero, sizeof zero);
    if (fault == F_CLOSE_AFTER_GREETING)
      fault_close ("after oldstyle greeting");
    return;
  }

  send64 (IHAVEOPT);
  send16 (HS_FIXED_NEWSTYLE | HS_NO_ZEROES);
  if (fault == F_CLOSE_AFTER_GREETING)
    fault_close ("after handshake flags");

  read_full (b, 4);
  uint32_t cflags = get32 (b);
  dbg ("client flags 0x%" PRIx32, cflags);
  if (cflags & ~(uint32_t) (HS_FIXED_NEWSTYLE | HS_NO_ZEROES))
    proto_error ("unknown client flags 0x%" PRIx32, cflags);
  no_zeroes = cflags & HS_NO_ZEROES;

  for (bool first = true;; first = false) {
    read_full (b, 16);
    if (get64 (b) != IHAVEOPT)
      proto_error ("bad option magic 0x%" PRIx64, get64 (b));
    uint32_t opt = get32 (b + 8), len = get32 (b + 12);
    dbg ("option %" PRIu32 " length %" PRIu32, opt, len);
    if (len > 1024 * 1024) {
      discard (len);
      opt_error (opt, REP_ERR_TOO_BIG, "option too long");
      continue;
    }
    uint8_t *d = xmalloc (len + 1);
    read_full (d, len);
    d[len] = 0;
    if (first && fault == F_CLOSE_IN_OPTION)
      fault_close ("after first option");

    switch (opt) {
    case OPT_EXPORT_NAME: {
      if (!name_ok ((const char *) d, len)) {
        dbg ("EXPORT_NAME: unknown export '%s', closing", (char *) d);
        exit (EXIT_SUCCESS);
      }
      uint8_t r[10 + 124] = { 0 };
      put64 (r, export_size);
      put16 (r + 8, trans_flags ());
      write_full (r, no_zeroes ? 10 : sizeof r);
      free (d);
      return;
    }
    case OPT_ABORT:
      opt_reply (opt, REP_ACK, NULL, 0);
      dbg ("client aborted");
      exit (EXIT_SUCCESS);
    case OPT_LIST:
      if (len != 0)
        opt_error (opt, REP_ERR_INVALID, "LIST takes no data");
      else {
        size_t nl = strlen (export_name);
        size_t dl = description ? strlen (description) : 0;
        uint8_t *r = xmalloc (4 + nl + dl);
        put32 (r, (uint32_t) nl);
        memcpy (r + 4, export_name, nl);
        if (dl)
          memcpy (r + 4 + nl, description, dl);
        opt_reply (opt, REP_SERVER, r, 4 + nl + dl);
        free (r);
        opt_reply (opt, REP_ACK, NULL, 0);
      }
      break;
    case OPT_INFO:
    case OPT_GO:
      if (do_info_go (opt, d, len)) {
        free (d);
        return;
      }
      break;
    case OPT_STRUCTURED_REPLY:
      if (len != 0)
        opt_error (opt, REP_ERR_INVALID, "STRUCTURED_REPLY takes no data");
      else if (no_sr)
        opt_error (opt, REP_ERR_UNSUP, "structured replies disabled");
      else {
        if (!sr && !eh)
          ctx_on[1] = ctx_on[2] = false;
        sr = true;
        opt_reply (opt, REP_ACK, NULL, 0);
      }
      break;
    case OPT_EXTENDED_HEADERS:
      if (len != 0)
        opt_error (opt, REP_ERR_INVALID, "EXTENDED_HEADERS takes no data");
      else if (no_eh || no_sr)
        opt_error (opt, REP_ERR_UNSUP, "extended headers disabled");
      else {
        if (!eh)
          ctx_on[1] = ctx_on[2] = false;
        eh = true;
        opt_reply (opt, REP_ACK, NULL, 0);
      }
      break;
    case OPT_LIST_META_CONTEXT:
    case OPT_SET_META_CONTEXT:
      do_meta (opt, d, len);
      break;
    default:
      opt_error (opt, REP_ERR_UNSUP, "unsupported option");
    }
    free (d);
  }
}

/* ---- transmission replies ---------------------------------------------- */

static void
maybe_slow (void)
{
  if (fault == F_SLOW) {
    struct timespec ts = { 0, 50 * 1000 * 1000 };
    nanosleep (&ts, NULL);
  }
}

static uint32_t
reply_magic (uint32_t good)
{
  if (fault == F_BAD_REPLY_MAGIC && replies_sent == 0) {
    dbg ("fault bad-reply-magic: sending wrong reply magic");
    return BAD_MAGIC32;
  }
  return good;
}

static uint64_t
reply_cookie (uint64_t cookie)
{
  if (fault == F_UNKNOWN_COOKIE && replies_sent == 0) {
    dbg ("fault unknown-cookie: sending a cookie the client never used");
    return cookie ^ UINT64_C(0x5a5a000000000000);
  }
  return cookie;
}

static void
send_simple (uint64_t cookie, uint32_t err, const void *data, size_t len)
{
  uint8_t h[16];
  put32 (h, reply_magic (SIMPLE_REPLY_MAGIC));
  put32 (h + 4, err);
  put64 (h + 8, reply_cookie (cookie));
  replies_sent++;
  dbg ("simple reply cookie %" PRIu64 " error %" PRIu32 " data %zu",
       cookie, err, len);
  if (fault == F_DUPLICATE_REPLY && replies_sent == 1 && len == 0) {
    /* The same reply twice in one write, so that the client reads both
     * in one recv: the second names a cookie already retired.
     */
    uint8_t twice[32];
    dbg ("fault duplicate-reply: sending the first reply twice");
    memcpy (twice, h, 16);
    memcpy (twice + 16, h, 16);
    write_full (twice, sizeof twice);
    return;
  }
  write_full (h, sizeof h);
  if (len)
    write_full (data, len);
}

/* Send a structured/extended chunk header announcing 'len' payload bytes. */
static void
send_chunk_hdr (uint16_t flags, uint16_t type, uint64_t cookie,
                uint64_t req_off, uint64_t len)
{
  uint8_t h[32];
  dbg ("chunk type 0x%x flags %u cookie %" PRIu64 " length %" PRIu64,
       type, flags, cookie, len);
  if (eh) {
    put32 (h, reply_magic (EXT_REPLY_MAGIC));
    put16 (h + 4, flags);
    put16 (h + 6, type);
    put64 (h + 8, reply_cookie (cookie));
    put64 (h + 16, req_off);
    put64 (h + 24, len);
    replies_sent++;
    write_full (h, 32);
  }
  else {
    put32 (h, reply_magic (SR_REPLY_MAGIC));
    put16 (h + 4, flags);
    put16 (h + 6, type);
    put64 (h + 8, reply_cookie (cookie));
    put32 (h + 16, (uint32_t) len);
    replies_sent++;
    write_full (h, 20);
  }
}

static void
send_chunk (uint16_t flags, uint16_t type, uint64_t cookie, uint64_t req_off,
            const void *p1, size_t l1, const void *p2, size_t l2)
{
  send_chunk_hdr (flags, type, cookie, req_off, (uint64_t) l1 + l2);
  if (l1)
    write_full (p1, l1);
  if (l2)
    write_full (p2, l2);
}

static void
send_error_chunk (uint64_t cookie, uint64_t req_off, uint32_t err,
                  const char *msg)
{
  uint8_t b[6 + 256];
  size_t ml = strlen (msg);
  if (ml > 256)
    ml = 256;
  put32 (b, err);
  put16 (b + 4, (uint16_t) ml);
  memcpy (b + 6, msg, ml);
  send_chunk (RF_DONE, RT_ERROR, cookie, req_off, b, 6 + ml, NULL, 0);
}

/* Final reply for a command: success or error.  'structured' forces a
 * chunk even in SR mode (READ and BLOCK_STATUS). */
static void
finish (uint64_t cookie, uint64_t req_off, uint32_t err, bool structured,
        const char *msg)
{
  maybe_slow ();
  if (eh || (sr && structured)) {
    if (err)
      send_error_chunk (cookie, req_off, err, msg ? msg : "");
    else
      send_chunk (RF_DONE, RT_NONE, cookie, req_off, NULL, 0, NULL, 0);
  }
  else
    send_simple (cookie, err, NULL, 0);
}

/* ---- READ --------------------------------------------------------------- */

static void
send_data_chunk (uint16_t flags, uint64_t cookie, uint64_t req_off,
                 uint64_t off, uint64_t len)
{
  uint8_t o[8];
  uint8_t *buf = xmalloc (len);
  put64 (o, off);
  store_read (off, buf, len);
  send_chunk (flags, RT_OFFSET_DATA, cookie, req_off, o, 8, buf, len);
  free (buf);
}

static void
send_hole_chunk (uint16_t flags, uint64_t cookie, uint64_t req_off,
                 uint64_t off, uint64_t len)
{
  /* The hole chunk keeps its 32-bit length even with extended headers
   * (the spec never widened it); callers send at most 64 KiB per chunk.
   */
  uint8_t b[12];
  put64 (b, off);
  put32 (b + 8, (uint32_t) len);
  send_chunk (flags, RT_OFFSET_HOLE, cookie, req_off, b, 12, NULL, 0);
}

/* Normal structured read: 64 KiB-bounded DATA/HOLE chunks, DONE on last. */
static void
read_chunks (uint64_t cookie, uint64_t off, uint64_t len, bool df)
{
  uint64_t end = off + len, pos = off;
  if (len == 0) {
    send_chunk (RF_DONE, RT_NONE, cookie, off, NULL, 0, NULL, 0);
    return;
  }
  if (df) {
    send_data_chunk (RF_DONE, cookie, off, off, len);
    return;
  }
  while (pos < end) {
    uint64_t seg_end = (pos / CHUNK + 1) * CHUNK;
    if (seg_end > end)
      seg_end = end;
    bool hole = blk_is_hole (pos / BLK);
    uint64_t p = pos;
    while (p < seg_end && blk_is_hole (p / BLK) == hole)
      p = (p / BLK + 1) * BLK;
    if (p > seg_end)
      p = seg_end;
    uint16_t fl = p == end ? RF_DONE : 0;
    if (hole)
      send_hole_chunk (fl, cookie, off, pos, p - pos);
    else
      send_data_chunk (fl, cookie, off, pos, p - pos);
    pos = p;
  }
}

static void
do_read (uint64_t cookie, uint16_t flags, uint64_t off, uint64_t len)
{
  bool structured = sr || eh;

  if (fault == F_ERROR_REPLY) {
    dbg ("fault error-reply: failing READ with EIO");
    finish (cookie, off, E_IO, true, "injected read error");
    return;
  }

  maybe_slow ();
  if (!structured) {
    uint8_t *buf = xmalloc (len);
    store_read (off, buf, len);
    send_simple (cookie, 0, buf, len);
    free (buf);
    return;
  }

  enum fault f = read_fault_done ? F_NONE : fault;
  switch (f) {
  case F_STRAY_CHUNK: {
    read_fault_done = true;
    uint64_t n = len < 512 ? len : 512;
    uint8_t o[8];
    uint8_t *z = calloc (1, n + 1);
    dbg ("fault stray-chunk: DATA chunk at %" PRIu64 " outside request",
         off + len);
    put64 (o, off + len);
    send_chunk (0, RT_OFFSET_DATA, cookie, off, o, 8, z, n ? n : 1);
    free (z);
    read_chunks (cookie, off, len, false);
    return;
  }
  case F_OVERLAP_CHUNKS:
    if (len == 0)
      break;
    read_fault_done = true;
    dbg ("fault overlap-chunks");
    send_data_chunk (0, cookie, off, off, len);
    send_data_chunk (RF_DONE, cookie, off, off, len < 512 ? len : 512);
    return;
  case F_GAP_CHUNKS:
    read_fault_done = true;
    dbg ("fault gap-chunks: covering only %" PRIu64 " of %" PRIu64,
         len / 2, len);
    if (len / 2)
      send_data_chunk (0, cookie, off, off, len / 2);
    send_chunk (RF_DONE, RT_NONE, cookie, off, NULL, 0, NULL, 0);
    return;
  case F_SHORT_ERROR_MESSAGE: {
    read_fault_done = true;
    uint8_t b[11];
    dbg ("fault short-error-message");
    put32 (b, E_IO);
    put16 (b + 4, 100);         /* claims 100 bytes, only 5 follow */
    memcpy (b + 6, "short", 5);
    send_chunk (RF_DONE, RT_ERROR, cookie, off, b, 11, NULL, 0);
    return;
  }
  case F_HUGE_LENGTH: {
    read_fault_done = true;
    uint64_t huge = eh ? UINT64_C(1) << 63 : UINT32_C(0xffffffff);
    struct pollfd pfd = { .fd = in_fd, .events = POLLIN };
    char c;
    dbg ("fault huge-length: chunk length %" PRIu64, huge);
    send_chunk_hdr (RF_DONE, RT_OFFSET_DATA, cookie, off, huge);
    /* Wait (bounded) for the client to give up on the connection. */
    while (poll (&pfd, 1, 5000) > 0 && read (in_fd, &c, 1) > 0)
      ;
    fault_close ("after huge chunk header");
  }
  case F_UNKNOWN_CHUNK: {
    uint8_t z[4] = { 0 };
    read_fault_done = true;
    dbg ("fault unknown-chunk: type 0x42");
    send_chunk (0, 0x42, cookie, off, z, 4, NULL, 0);
    read_chunks (cookie, off, len, false);
    return;
  }
  case F_UNKNOWN_ERROR_CHUNK: {
    uint8_t b[6];
    read_fault_done = true;
    dbg ("fault unknown-error-chunk: type 0x8042");
    put32 (b, E_IO);
    put16 (b + 4, 0);
    send_chunk (RF_DONE, 0x8042, cookie, off, b, 6, NULL, 0);
    return;
  }
  default:
    break;
  }
  read_chunks (cookie, off, len, flags & CF_DF);
}

/* ---- BLOCK_STATUS ------------------------------------------------------- */

#define MAX_EXTENTS 65536

static uint64_t
blk_status (int ctx, uint64_t b)
{
  if (ctx == CTX_BASE)
    return blk_is_hole (b) ? 3 : 0;
  return bdirty[b] ? 1 : 0;
}

static void
do_block_status (uint64_t cookie, uint16_t flags, uint64_t off, uint64_t len,
                 const bool want[3])
{
  int ids[2], nids = 0;
  for (int id = 1; id <= 2; id++)
    if (want[id])
      ids[nids++] = id;

  maybe_slow ();
  if (fault == F_BLOATED_EXTENTS) {
    /* 64 MiB of extents, whatever was asked: a client that believes the
     * length buffers all of it.
     */
    uint64_t plen = 64 * 1024 * 1024;
    uint8_t *zero = calloc (1, 1024 * 1024), head[8];
    if (!zero)
      exit (EXIT_FAILURE);
    dbg ("fault bloated-extents: a %" PRIu64 "-byte block status chunk", plen);
    send_chunk_hdr (RF_DONE, eh ? RT_BLOCK_STATUS_EXT : RT_BLOCK_STATUS, cookie, off,
                    plen);
    put32 (head, CTX_BASE);
    put32 (head + 4, (uint32_t) ((plen - 8) / 16));
    write_full (head, eh ? 8 : 4);
    for (uint64_t done = eh ? 8 : 4; done < plen; ) {
      size_t n = plen - done < 1024 * 1024 ? plen - done : 1024 * 1024;
      write_full (zero, n);
      done += n;
    }
    free (zero);
    return;
  }
  for (int k = 0; k < nids; k++) {
    int id = ids[k];
    uint64_t *ext = xmalloc (sizeof (uint64_t) * 2 * MAX_EXTENTS);
    size_t n = 0;
    uint64_t pos = off, end = off + len;
    uint64_t lim = eh ? UINT64_MAX : UINT32_MAX;

    if (eh && fault == F_BIG_EXTENT_LENGTH && id == CTX_BASE) {
      dbg ("fault big-extent-length: one extent of %" PRIu64, len);
      ext[0] = len;
      ext[1] = blk_status (id, off / BLK);
      n = 1;
    }
    else {
      while (pos < end && n < MAX_EXTENTS) {
        uint64_t st = blk_status (id, pos / BLK);
        uint64_t p = pos;
        while (p < end && blk_status (id, p / BLK) == st &&
               (p - pos) <= lim - BLK)
          p = (p / BLK + 1) * BLK;
        if (p > end)
          p = end;
        ext[2 * n] = p - pos;
        ext[2 * n + 1] = st;
        n++;
        pos = p;
        if (flags & CF_REQ_ONE)
          break;
      }
    }
    if (eh && fault == F_BIG_EXTENT && id == CTX_BASE) {
      dbg ("fault big-extent: first extent flags get bit 32");
      ext[1] |= UINT64_C(1) << 32;
    }

    uint16_t fl = k == nids - 1 ? RF_DONE : 0;
    if (eh) {
      size_t sz = 8 + 16 * n;
      uint8_t *b = xmalloc (sz);
      put32 (b, (uint32_t) id);
      put32 (b + 4, (uint32_t) n);
      for (size_t i = 0; i < n; i++) {
        put64 (b + 8 + 16 * i, ext[2 * i]);
        put64 (b + 16 + 16 * i, ext[2 * i + 1]);
      }
      send_chunk (fl, RT_BLOCK_STATUS_EXT, cookie, off, b, sz, NULL, 0);
      free (b);
    }
    else {
      size_t sz = 4 + 8 * n;
      uint8_t *b = xmalloc (sz);
      put32 (b, (uint32_t) id);
      for (size_t i = 0; i < n; i++) {
        put32 (b + 4 + 8 * i, (uint32_t) ext[2 * i]);
        put32 (b + 8 + 8 * i, (uint32_t) ext[2 * i + 1]);
      }
      send_chunk (fl, RT_BLOCK_STATUS, cookie, off, b, sz, NULL, 0);
      free (b);
    }
    free (ext);
  }
}

/* ---- transmission loop ------------------------------------------------- */

static const char *
cmd_name (uint16_t t)
{
  static const char *const n[] = { "READ", "WRITE", "DISC", "FLUSH", "TRIM",
    "CACHE", "WRITE_ZEROES", "BLOCK_STATUS" };
  return t < 8 ? n[t] : "UNKNOWN";
}

static void
transmission (void)
{
  bool first = true;
  uint8_t h[32];

  for (;;) {
    uint16_t flags, type;
    uint64_t cookie, off, len, plen = 0;

    /* Check the magic first so a wrong-sized request fails at once. */
    read_full (h, 4);
    if (get32 (h) != (eh ? EXT_REQ_MAGIC : REQ_MAGIC))
      proto_error ("bad %s request magic 0x%" PRIx32,
                   eh ? "extended" : "compact", get32 (h));
    if (eh) {
      read_full (h + 4, 28);
      len = get64 (h + 24);
    }
    else {
      read_full (h + 4, 24);
      len = get32 (h + 24);
    }
    flags = get16 (h + 4);
    type = get16 (h + 6);
    cookie = get64 (h + 8);
    off = get64 (h + 16);
    dbg ("request %s flags 0x%x cookie %" PRIu64 " offset %" PRIu64
         " length %" PRIu64, cmd_name (type), flags, cookie, off, len);

    /* Determine the payload that follows the header. */
    if (type == CMD_WRITE)
      plen = len;
    else if (eh && (flags & CF_PAYLOAD_LEN))
      plen = len;
    if (plen > (uint64_t) bs_max + 1024 * 1024 && plen > (UINT64_C(1) << 30))
      proto_error ("payload of %" PRIu64 " bytes is too large", plen);

    uint8_t *payload = NULL;
    bool too_big = plen > (uint64_t) bs_max + 4096;
    if (plen && !too_big) {
      payload = xmalloc (plen);
      read_full (payload, plen);
    }
    else if (plen)
      discard (plen);

    if (first && fault == F_CLOSE_BEFORE_REPLY)
      fault_close ("after first request");
    first = false;

    if (type == CMD_DISC) {
      dbg ("client sent DISC");
      free (payload);
      exit (EXIT_SUCCESS);
    }

    uint32_t err = 0;
    const char *msg = NULL;
    bool structured = type == CMD_READ || type == CMD_BLOCK_STATUS;
    bool want[3] = { false, ctx_on[1], ctx_on[2] };
    uint16_t ok_flags = 0;

    switch (type) {
    case CMD_READ: ok_flags = CF_DF; break;
    case CMD_WRITE: ok_flags = CF_FUA | CF_PAYLOAD_LEN; break;
    case CMD_TRIM: ok_flags = CF_FUA; break;
    case CMD_WRITE_ZEROES: ok_flags = CF_FUA | CF_NO_HOLE | CF_FAST_ZERO; break;
    case CMD_BLOCK_STATUS: ok_flags = CF_REQ_ONE | CF_PAYLOAD_LEN; break;
    case CMD_FLUSH: case CMD_CACHE: break;
    default:
      err = E_INVAL; msg = "unknown command";
    }
    if (!err && (flags & ~ok_flags)) {
      err = E_INVAL; msg = "invalid command flags";
    }
    if (!err && (flags & CF_DF) && !sr && !eh) {
      err = E_INVAL; msg = "DF without structured replies";
    }
    if (!err && (flags & CF_PAYLOAD_LEN) && type == CMD_BLOCK_STATUS && !eh) {
      err = E_INVAL; msg = "PAYLOAD_LEN without extended headers";
    }
    if (!err && too_big) {
      err = E_INVAL; msg = "write payload too large";
    }

    /* Block status payload: effective length + context ids. */
    if (!err && type == CMD_BLOCK_STATUS && (flags & CF_PAYLOAD_LEN)) {
      if (plen < 8 || (plen - 8) % 4) {
        err = E_INVAL; msg = "malformed block status payload";
      }
      else {
        len = get64 (payload);
        if (plen > 8) {
          want[1] = want[2] = false;
          for (uint64_t i = 8; i < plen; i += 4) {
            uint32_t id = get32 (payload + i);
            if (id < 1 || id > 2 || !ctx_on[id]) {
              err = E_INVAL; msg = "unknown meta context id in payload";
              break;
            }
            want[id] = true;
          }
        }
        dbg ("block status payload: length %" PRIu64 " ids %s%s", len,
             want[1] ? "1 " : "", want[2] ? "2" : "");
      }
    }

    /* Range and size checks. */
    if (!err && type != CMD_FLUSH) {
      bool out = off > export_size || len > export_size - off;
      bool is_write = type == CMD_WRITE || type == CMD_WRITE_ZEROES;
      if (out) {
        err = is_write ? E_NOSPC : E_INVAL;
        msg = "request beyond end of export";
      }
      else if (bs_min > 1 && (off % bs_min || len % bs_min) &&
               type != CMD_BLOCK_STATUS) {
        err = E_INVAL; msg = "unaligned request";
      }
      else if (type == CMD_READ && len > bs_max) {
        err = (sr || eh) ? E_OVERFLOW : E_INVAL;
        msg = "read too large";
      }
    }
    else if (!err && type == CMD_FLUSH && (off || len)) {
      err = E_INVAL; msg = "FLUSH with offset or length";
    }
    if (!err && read_only &&
        (type == CMD_WRITE || type == CMD_TRIM || type == CMD_WRITE_ZEROES)) {
      err = E_PERM; msg = "export is read-only";
    }
    if (!err && type == CMD_BLOCK_STATUS) {
      if (!sr && !eh) {
        err = E_INVAL; msg = "no structured replies";
      }
      else if (!want[1] && !want[2]) {
        err = E_INVAL; msg = "no meta context negotiated";
      }
      else if (len == 0) {
        err = E_INVAL; msg = "zero-length block status";
      }
    }

    if (err) {
      dbg ("%s failed: %s (error %" PRIu32 ")", cmd_name (type), msg, err);
      finish (cookie, off, err, structured, msg);
      free (payload);
      continue;
    }

    switch (type) {
    case CMD_READ:
      do_read (cookie, flags, off, len);
      break;
    case CMD_WRITE:
      store_write (off, payload, len);
      finish (cookie, off, 0, false, NULL);
      break;
    case CMD_TRIM:
      store_zero (off, len, false);
      finish (cookie, off, 0, false, NULL);
      break;
    case CMD_WRITE_ZEROES:
      store_zero (off, len, flags & CF_NO_HOLE);
      finish (cookie, off, 0, false, NULL);
      break;
    case CMD_FLUSH:
    case CMD_CACHE:
      finish (cookie, off, 0, false, NULL);
      break;
    case CMD_BLOCK_STATUS:
      do_block_status (cookie, flags, off, len, want);
      break;
    }
    free (payload);
  }
}

/* ---- startup ----------------------------------------------------------- */

static uint64_t
parse_size (const char *s)
{
  char *end;
  errno = 0;
  unsigned long long v = strtoull (s, &end, 0);
  uint64_t m = 1;
  if (errno || end == s)
    goto bad;
  switch (*end) {
  case 'k': case 'K': m = UINT64_C(1) << 10; end++; break;
  case 'm': case 'M': m = UINT64_C(1) << 20; end++; break;
  case 'g': case 'G': m = UINT64_C(1) << 30; end++; break;
  case 't': case 'T': m = UINT64_C(1) << 40; end++; break;
  }
  if (*end || v > UINT64_MAX / m)
    goto bad;
  return v * m;
 bad:
  fprintf (stderr, "nbd-test-server: bad size '%s'\n", s);
  exit (EXIT_FAILURE);
}

static void __attribute__ ((noreturn))
usage (FILE *fp, int code)
{
  fprintf (fp,
"Usage: nbd-test-server [options] --unix PATH | --stdio\n"
"       (or systemd socket activation with LISTEN_PID/LISTEN_FDS=1)\n"
"Serves one in-memory export to ONE client, then exits.\n"
"  --unix PATH            listen on a Unix socket, serve one connection\n"
"  --pidfile FILE         write pid after the socket is listening\n"
"  --stdio                speak NBD on stdin/stdout\n"
"  --size N               export size (default 1M; suffixes K M G T)\n"
"  --pattern              initial content: byte at offset o is (o & 0xff)\n"
"  --export NAME          export name (default \"\")\n"
"  --description TEXT     export description\n"
"  --block-size MIN,PREF,MAX  (default 1,4096,33554432)\n"
"  --oldstyle             oldstyle handshake\n"
"  --no-structured-replies  refuse STRUCTURED_REPLY (and EXTENDED_HEADERS)\n"
"  --no-extended-headers  refuse EXTENDED_HEADERS\n"
"  --read-only            read-only export (writes fail with EPERM)\n"
"  --fault NAME           inject a fault, one of:\n"
"     close-after-magic close-after-greeting close-in-option\n"
"     close-before-reply bad-magic bad-reply-magic unknown-cookie\n"
"     stray-chunk overlap-chunks gap-chunks short-error-message\n"
"     huge-length unknown-chunk unknown-error-chunk error-reply\n"
"     big-extent big-extent-length slow duplicate-reply bloated-extents\n"
"  --debug                trace to stderr\n");
  exit (code);
}

int
main (int argc, char **argv)
{
  enum { O_UNIX = 256, O_PIDFILE, O_STDIO, O_SIZE, O_PATTERN, O_EXPORT,
    O_DESC, O_BS, O_OLD, O_NOEH, O_NOSR, O_RO, O_FAULT, O_DEBUG, O_HELP };
  static const struct option longopts[] = {
    { "unix", required_argument, NULL, O_UNIX },
    { "pidfile", required_argument, NULL, O_PIDFILE },
    { "stdio", no_argument, NULL, O_STDIO },
    { "size", required_argument, NULL, O_SIZE },
    { "pattern", no_argument, NULL, O_PATTERN },
    { "export", required_argument, NULL, O_EXPORT },
    { "description", required_argument, NULL, O_DESC },
    { "block-size", required_argument, NULL, O_BS },
    { "oldstyle", no_argument, NULL, O_OLD },
    { "no-extended-headers", no_argument, NULL, O_NOEH },
    { "no-structured-replies", no_argument, NULL, O_NOSR },
    { "read-only", no_argument, NULL, O_RO },
    { "fault", required_argument, NULL, O_FAULT },
    { "debug", no_argument, NULL, O_DEBUG },
    { "help", no_argument, NULL, O_HELP },
    { NULL, 0, NULL, 0 },
  };
  const char *sock_path = NULL, *pidfile = NULL;
  bool use_stdio = false;
  int c;

  while ((c = getopt_long (argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case O_UNIX: sock_path = optarg; break;
    case O_PIDFILE: pidfile = optarg; break;
    case O_STDIO: use_stdio = true; break;
    case O_SIZE: export_size = parse_size (optarg); break;
    case O_PATTERN: pattern = true; break;
    case O_EXPORT: export_name = optarg; break;
    case O_DESC: description = optarg; break;
    case O_BS: {
      unsigned long a, b, d;
      if (sscanf (optarg, "%lu,%lu,%lu", &a, &b, &d) != 3 ||
          a == 0 || a > b || b > d || d > UINT32_MAX) {
        fprintf (stderr, "nbd-test-server: bad --block-size '%s'\n", optarg);
        exit (EXIT_FAILURE);
      }
      bs_min = a; bs_pref = b; bs_max = d;
      break;
    }
    case O_OLD: oldstyle = true; break;
    case O_NOEH: no_eh = true; break;
    case O_NOSR: no_sr = true; break;
    case O_RO: read_only = true; break;
    case O_FAULT: {
      size_t i, nf = sizeof fault_names / sizeof fault_names[0];
      for (i = 0; i < nf; i++)
        if (strcmp (optarg, fault_names[i]) == 0)
          break;
      if (i == nf) {
        fprintf (stderr, "nbd-test-server: unknown fault '%s'\n", optarg);
        exit (EXIT_FAILURE);
      }
      fault = (enum fault) i;
      break;
    }
    case O_DEBUG: debug = true; break;
    case O_HELP: usage (stdout, EXIT_SUCCESS);
    default: usage (stderr, EXIT_FAILURE);
    }
  }
  if (optind != argc || (sock_path && use_stdio))
    usage (stderr, EXIT_FAILURE);
  if (strlen (export_name) > 4096 ||
      (description && strlen (description) > 4096)) {
    fprintf (stderr, "nbd-test-server: name or description too long\n");
    exit (EXIT_FAILURE);
  }

  signal (SIGPIPE, SIG_IGN);
  store_init ();

  const char *lpid = getenv ("LISTEN_PID"), *lfds = getenv ("LISTEN_FDS");
  bool activated = !sock_path && !use_stdio && lpid && lfds &&
    strtol (lpid, NULL, 10) == (long) getpid () && strcmp (lfds, "1") == 0;

  if (use_stdio) {
    in_fd = 0;
    out_fd = 1;
    if (pidfile) {
      FILE *fp = fopen (pidfile, "w");
      if (fp) { fprintf (fp, "%ld\n", (long) getpid ()); fclose (fp); }
    }
  }
  else if (sock_path || activated) {
    int lfd;
    if (activated) {
      int acc = 0;
      socklen_t sl = sizeof acc;
      lfd = 3;
      unsetenv ("LISTEN_PID");
      unsetenv ("LISTEN_FDS");
      unsetenv ("LISTEN_FDNAMES");
      if (getsockopt (lfd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &sl) == 0 && !acc)
        lfd = -1;               /* already a connected socket */
      dbg ("socket activation on fd 3");
    }
    else {
      struct sockaddr_un sun = { .sun_family = AF_UNIX };
      if (strlen (sock_path) >= sizeof sun.sun_path) {
        fprintf (stderr, "nbd-test-server: socket path too long\n");
        exit (EXIT_FAILURE);
      }
      strcpy (sun.sun_path, sock_path);
      unlink (sock_path);
      lfd = socket (AF_UNIX, SOCK_STREAM, 0);
      if (lfd < 0 ||
          bind (lfd, (struct sockaddr *) &sun, sizeof sun) < 0 ||
          listen (lfd, 1) < 0) {
        perror ("nbd-test-server: socket");
        exit (EXIT_FAILURE);
      }
      dbg ("listening on %s", sock_path);
    }
    if (pidfile) {
      char tmp[PATH_MAX];
      snprintf (tmp, sizeof tmp, "%s.tmp", pidfile);
      FILE *fp = fopen (tmp, "w");
      if (!fp || fprintf (fp, "%ld\n", (long) getpid ()) < 0 ||
          fclose (fp) != 0 || rename (tmp, pidfile) < 0) {
        perror ("nbd-test-server: pidfile");
        exit (EXIT_FAILURE);
      }
    }
    int fd;
    if (lfd >= 0) {
      do
        fd = accept (lfd, NULL, NULL);
      while (fd < 0 && errno == EINTR);
      if (fd < 0) {
        perror ("nbd-test-server: accept");
        exit (EXIT_FAILURE);
      }
      close (lfd);
      if (sock_path)
        unlink (sock_path);
    }
    else
      fd = 3;
    in_fd = out_fd = fd;
    dbg ("client connected");
  }
  else
    usage (stderr, EXIT_FAILURE);

  if (fault != F_NONE)
    dbg ("fault injection: %s", fault_names[fault]);
  handshake ();
  dbg ("entering transmission: sr=%d eh=%d contexts=%d%d", sr, eh,
       ctx_on[1], ctx_on[2]);
  transmission ();
  return EXIT_SUCCESS;
}
