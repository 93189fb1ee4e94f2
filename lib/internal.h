/* Library-internal definitions shared by every file in lib/. */
#ifndef LIBNBD_INTERNAL_H
#define LIBNBD_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* The library builds with -fvisibility=hidden: only what the public header
 * declares is exported (and the version script assigns the nodes). */
#pragma GCC visibility push(default)
#include "libnbd.h"
#pragma GCC visibility pop
#include "nbd-protocol.h"
#include "unlocked.h"

#define LIKELY(x) __builtin_expect (!!(x), 1)
#define UNLIKELY(x) __builtin_expect (!!(x), 0)
#define PRINTF_FMT(a, b) __attribute__ ((format (printf, a, b)))

/* ---- Handle states ----
 *
 * The engine keeps one internal state; the public states (created,
 * connecting, negotiating, ready, processing, closed, dead) are derived
 * from it by nbd_internal_public_state.
 */
enum state {
  STATE_CREATED,
  STATE_CONNECTING,         /* non-blocking connect() in progress */
  STATE_HANDSHAKE,          /* reading the greeting / exchanging options */
  STATE_NEGOTIATING,        /* opt mode: idle, waiting for an nbd_opt_* call */
  STATE_TRANSMISSION,       /* ready or processing */
  STATE_CLOSED,
  STATE_DEAD,
};

/* Public state bits: the same values as ST_* in generator/api.h. */
enum {
  PUBLIC_CREATED     = 1 << 0,
  PUBLIC_CONNECTING  = 1 << 1,
  PUBLIC_NEGOTIATING = 1 << 2,
  PUBLIC_CONNECTED   = 1 << 3,
  PUBLIC_CLOSED      = 1 << 4,
  PUBLIC_DEAD        = 1 << 5,
};

/* ---- Transport: plain socket or TLS ---- */
struct transport_ops {
  ssize_t (*recv) (struct nbd_handle *h, void *buf, size_t len);
  ssize_t (*send) (struct nbd_handle *h, const struct iovec *iov, int iovcnt, bool more);
  bool (*pending) (struct nbd_handle *h);   /* bytes buffered above the socket */
  int (*shut_writes) (struct nbd_handle *h);
  void (*close) (struct nbd_handle *h);
};
extern const struct transport_ops nbd_internal_socket_ops;

/* ---- Commands ---- */
struct command {
  struct command *next;         /* queue link (to send, in flight, done) */
  uint64_t cookie;
  uint16_t type;                /* NBD_CMD_* */
  uint16_t flags;               /* NBD_CMD_FLAG_* as sent */
  uint64_t offset;
  uint64_t count;
  void *data;                   /* read buffer or write payload */
  char *payload;                /* extra payload owned by the command (block status filter) */
  size_t payload_len;
  int error;                    /* first error, errno value, 0 if none */
  bool done;                    /* reply complete */
  bool data_seen;               /* a structured read chunk arrived */
  /* Reads: which parts of the buffer the server has covered so far
   * (to detect overlaps and gaps), kept as a sorted list of ranges only
   * when chunks arrive out of order; the common case is one range.
   */
  uint64_t covered_lo, covered_hi;
  struct range *ranges;
  size_t nr_ranges;
  /* Callbacks, owned by the command: freed exactly once when retired. */
  nbd_completion_callback completion;
  nbd_chunk_callback chunk;
  nbd_extent_callback extent;
  nbd_extent64_callback extent64;
  bool has_chunk, has_extent, has_extent64;
};

struct range { uint64_t lo, hi; };

/* A meta context as requested and, after negotiation, as agreed. */
struct meta_context {
  char *name;
  uint32_t id;
};

struct string_vector {
  char **ptr;
  size_t len;
  size_t cap;
};

/* The settings and state of one handle. */
struct nbd_handle {
  pthread_mutex_t lock;
  char *hname;
  uintptr_t private_data;

  /* Debugging. */
  bool debug;
  nbd_debug_callback debug_callback;

  /* Settings. */
  char *export_name;
  int tls;
  char *tls_certificates;
  bool tls_verify_peer;
  char *tls_username;
  char *tls_psk_file;
  char *tls_hostname;
  bool request_sr;
  bool request_eh;
  bool request_meta;
  bool request_block_size;
  bool full_info;
  bool pread_initialize;
  bool opt_mode;
  uint32_t handshake_flags;     /* what we are willing to use */
  uint32_t strict;
  uint32_t uri_allow_transports;
  int uri_allow_tls;
  bool uri_allow_local_file;
  char *sact_name;              /* socket activation LISTEN_FDNAMES */
  struct string_vector request_meta_contexts;

  /* Connection. */
  enum state state;
  int fd;
  const struct transport_ops *ops;
  void *tls_session;
  pid_t pid;                    /* subprocess of connect_command / socket activation */
  char *uri;                    /* set by connect_uri */
  int connect_errno;            /* errno of the last failed connect attempt */
  struct addrinfo *addrs, *next_addr; /* TCP: addresses still to try */

  /* Handshake results. */
  const char *protocol;         /* "oldstyle", "newstyle", "newstyle-fixed" */
  uint32_t gflags;              /* server handshake flags */
  uint16_t eflags;              /* export (transmission) flags */
  bool eflags_known;
  uint64_t exportsize;
  uint32_t block_minimum, block_preferred, block_maximum;
  char *canonical_name;
  char *description;
  bool sr_negotiated;
  bool eh_negotiated;
  bool tls_negotiated;
  bool meta_valid;              /* meta_contexts reflects a SET_META_CONTEXT reply */
  struct meta_context *meta_contexts;
  size_t nr_meta_contexts;

  /* Handshake I/O: one outgoing message and one expected incoming size. */
  char *hs_wbuf;
  size_t hs_wlen, hs_wdone;
  char *hs_rbuf;
  size_t hs_rcap, hs_rlen, hs_rdone;
  int hs_step;                  /* handshake.c's own sub-state */
  struct hs_option *opt;        /* option in flight (opt mode or automatic) */

  /* Transmission: commands. */
  uint64_t next_cookie;
  struct command *to_send_head, *to_send_tail;
  struct command *in_flight;    /* sent, awaiting reply (list) */
  size_t nr_in_flight;
  struct command *done_head, *done_tail;
  struct command *free_cmds;    /* recycled command records */
  struct command *cmd_table[256]; /* cookie -> command, open addressing by cookie */

  /* Send side: iovecs of the commands being written. */
  struct iovec send_iov[64];
  int send_iovcnt;
  char send_hdrs[64][32];       /* request headers being sent */

  /* Receive side. */
  char *rbuf;                   /* receive buffer: many small replies per recv */
  size_t rbuf_cap, rbuf_start, rbuf_end;
  struct reply_state *reply;

  bool disconnect_requested;    /* NBD_CMD_DISC queued */

  /* Statistics. */
  uint64_t bytes_sent, bytes_received, chunks_sent, chunks_received;
};

/* ---- errors.c ---- */
extern void nbd_internal_set_error_context (const char *context);
extern const char *nbd_internal_get_error_context (void);
extern void nbd_internal_set_error (int errnum, const char *fmt, ...) PRINTF_FMT (2, 3);
#define set_error(errnum, ...) nbd_internal_set_error ((errnum), __VA_ARGS__)

/* ---- debug.c ---- */
extern void nbd_internal_debug (struct nbd_handle *h, const char *fmt, ...) PRINTF_FMT (2, 3);
extern void nbd_internal_debug_string (struct nbd_handle *h, const char *prefix, const char *s);
#define debug(h, ...) \
  do { if ((h)->debug) nbd_internal_debug ((h), __VA_ARGS__); } while (0)

struct nbd_trace {
  char buf[512];
  size_t len;
};
extern void nbd_internal_trace_start (struct nbd_trace *t);
extern void nbd_internal_trace_add (struct nbd_trace *t, const char *fmt, ...) PRINTF_FMT (2, 3);
extern void nbd_internal_trace_add_string (struct nbd_trace *t, const char *name, const char *s);
extern void nbd_internal_trace_add_list (struct nbd_trace *t, const char *name, char **list);
extern void nbd_internal_trace_finish (struct nbd_handle *h, struct nbd_trace *t, const char *what);

/* ---- states.c ---- */
extern unsigned nbd_internal_public_state (struct nbd_handle *h);
extern bool nbd_internal_state_allows (struct nbd_handle *h, unsigned mask, const char *text);
extern const char *nbd_internal_state_name (struct nbd_handle *h);
/* Drive the connection: perform whatever I/O is possible without blocking.
 * Returns -1 (error set, handle usually dead) or 0.
 */
extern int nbd_internal_run (struct nbd_handle *h, bool readable, bool writable);
/* Block (poll) until `done` returns true; used by every blocking call. */
extern int nbd_internal_wait_until (struct nbd_handle *h,
                                    bool (*done) (struct nbd_handle *h, void *arg),
                                    void *arg);
extern void nbd_internal_set_dead (struct nbd_handle *h, int errnum, const char *msg);
extern void nbd_internal_close_socket (struct nbd_handle *h);

/* ---- handshake.c ---- */
extern void nbd_internal_handshake_start (struct nbd_handle *h);
extern int nbd_internal_handshake_io_done (struct nbd_handle *h);
extern void nbd_internal_handshake_free (struct nbd_handle *h);

/* ---- commands.c / transmit.c / reply.c ---- */
extern int nbd_internal_transmit (struct nbd_handle *h);     /* send queued requests */
extern int nbd_internal_receive (struct nbd_handle *h);      /* read and decode replies */
extern void nbd_internal_abort_commands (struct nbd_handle *h, int errnum);
extern void nbd_internal_free_commands (struct nbd_handle *h);
extern bool nbd_internal_has_pending_output (struct nbd_handle *h);

/* ---- connect.c ---- */
extern void nbd_internal_subprocess_reap (struct nbd_handle *h);

/* ---- meta contexts (handshake.c) ---- */
extern void nbd_internal_clear_meta_contexts (struct nbd_handle *h);

/* ---- utils.c ---- */
extern int nbd_internal_string_vector_append (struct string_vector *v, const char *s);
extern void nbd_internal_string_vector_clear (struct string_vector *v);
extern char *nbd_internal_printable_string (const char *s);

/* Take ownership of a closure passed by address by the generated entry
 * point: copy it and clear the caller's copy so the entry point does not
 * free it.
 */
#define TAKE_CLOSURE(dst, srcp) \
  do { (dst) = *(srcp); (srcp)->callback = NULL; (srcp)->free = NULL; } while (0)
#define FREE_CLOSURE(cl) \
  do { if ((cl).free) (cl).free ((cl).user_data); \
       (cl).callback = NULL; (cl).free = NULL; } while (0)

#endif
