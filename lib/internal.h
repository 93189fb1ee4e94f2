/* Library-internal definitions shared by every file in lib/. */
#ifndef LIBNBD_INTERNAL_H
#define LIBNBD_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <inttypes.h>

/* The public header marks pointer parameters nonnull for callers.  Inside
 * the library that would let GCC assume them non-NULL and delete the
 * entry points' EFAULT checks, so the library sees no nonnull attributes.
 */
#define LIBNBD_ATTRIBUTE_NONNULL(...)

/* The library builds with -fvisibility=hidden: only what the public header
 * declares is exported (and the version script assigns the nodes). */
#pragma GCC visibility push(default)
#include "libnbd.h"
#include "libnbd-ext.h"
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
  /* Optional (TLS): bytes send accepted are still held above the socket;
   * a send with no data finishes writing them.
   */
  bool (*send_pending) (struct nbd_handle *h);
  int (*shut_writes) (struct nbd_handle *h);
  void (*close) (struct nbd_handle *h);
};
extern const struct transport_ops nbd_internal_socket_ops;
/* The handle's socket: adopt fd as h->fd / close h->fd (if any).  Every
 * socket the handle owns is set and closed through these two, so that
 * nbd_ext_cancel never shuts down a descriptor number already reused.
 */
extern void nbd_internal_adopt_fd (struct nbd_handle *h, int fd);
extern void nbd_internal_close_fd (struct nbd_handle *h);
/* Async-signal-safe: shut the socket down in both directions, if any. */
extern void nbd_internal_shut_for_cancel (struct nbd_handle *h);

/* ---- Commands ---- */
struct command {
  struct command *next;         /* queue link: to send, done, or free list */
  struct command *hnext;        /* cookie table chain */
  uint64_t cookie;
  uint16_t type;                /* NBD_CMD_* */
  uint16_t flags;               /* NBD_CMD_FLAG_* as sent */
  uint64_t offset;
  uint64_t count;
  void *data;                   /* read buffer, or write payload */
  char *payload;                /* extra payload owned by the command (block status filter) */
  size_t payload_len;
  char hdr[32];                 /* encoded request header */
  uint8_t hdr_len;
  int error;                    /* first error, errno value, 0 if none */
  bool sent;                    /* fully written to the server */
  bool aborted;                 /* failed by the loss of the connection, not by a reply */
  /* Awaiting a reply, in issue order (h->oldest ... h->newest), kept
   * only while a request timeout is set: deadline is CLOCK_MONOTONIC ns,
   * 0 if none.
   */
  struct command *older, *newer;
  uint64_t deadline;
  struct waiter *waiter;        /* a blocked thread waiting for this command */
  bool zero_uncovered;          /* pread_initialize: at completion, zero what the server did not fill */
  /* Reads: the parts of the buffer the server has covered, to detect
   * overlaps and gaps.  One range covers the in-order case; out-of-order
   * chunks use the array.
   */
  uint64_t covered_lo, covered_hi, covered_total;
  struct range *ranges;
  size_t nr_ranges;
  /* Callbacks, owned by the command until it completes. */
  nbd_completion_callback completion;
  nbd_chunk_callback chunk;
  nbd_extent_callback extent;
  nbd_extent64_callback extent64;
};

struct range { uint64_t lo, hi; };

/* wait.c: a thread sleeping while another one leads (see there). */
struct waiter {
  struct waiter *next;          /* on h->waiters, then on h->to_wake */
  sem_t sem;                    /* posted once, without the lock */
  bool retired;                 /* its command was retired for it ... */
  int error;                    /* ... with this result (0 or errno) */
};

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
  bool uri_allow_tls_priority;
  char *tls_priority;           /* NULL until set: the build's TLS_PRIORITY */
  char *sact_name;              /* socket activation LISTEN_FDNAMES */
  struct string_vector request_meta_contexts;

  /* Connection. */
  enum state state;
  int fd;                       /* set and closed only by transport.c */
  /* nbd_ext_cancel's copy of fd: it shuts the socket down without the
   * lock, so it may not read fd.  -1 while there is none or while the
   * socket is being closed; cancels_using counts the cancels between
   * reading it and shutdown(2) (transport.c).
   */
  atomic_int cancel_fd;
  atomic_int cancels_using;
  pid_t fd_owner;               /* the process that adopted fd */
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
  int last_opt_err;             /* result of the last finished option */
  int last_opt_count;
  int last_opt_result;
  char *last_opt_msg;

  /* Transmission: commands.  Every command not yet completed is in the
   * cookie table; unsent ones are also on the to_send queue.
   */
  uint64_t next_cookie;
  struct command *to_send_head, *to_send_tail;
  size_t send_offset;           /* bytes of the head command already sent */
  size_t nr_in_flight;          /* issued and not yet completed */
  uint64_t nr_completed;        /* commands completed so far */
  struct command *done_head, *done_tail;
  struct command *free_cmds;    /* recycled command records */
  struct command *cmd_table[256]; /* cookie -> command, chained */
  bool in_run;                  /* inside the engine: callbacks only queue */
  /* Depth of user callbacks running now (completion, chunk, extent, opt
   * callbacks).  The handle lock is recursive, so a callback could reach
   * the engine again through a blocking call or nbd_poll; those calls
   * check this and refuse (nbd_internal_refuse_in_callback).
   */
  unsigned in_callback;

  /* Receive side. */
  char *rbuf;                   /* receive buffer: many small replies per recv */
  size_t rbuf_cap, rbuf_start, rbuf_end;
  struct command *rx_cmd;       /* command whose read payload is arriving */
  char *rx_dst;                 /* where the payload goes */
  uint64_t rx_need;             /* payload bytes still to come */
  uint64_t rx_chunk_offset;     /* export offset of the chunk */
  uint64_t rx_chunk_len;
  bool rx_chunk_done;           /* DONE flag of that chunk */
  bool rx_structured;           /* the payload belongs to an OFFSET_DATA chunk */

  bool disconnect_requested;    /* NBD_CMD_DISC queued */

  /* Block status decoding, reused from reply to reply. */
  nbd_extent *scratch_ext;
  size_t scratch_ext_cap;
  uint32_t *scratch_pairs;
  size_t scratch_pairs_cap;

  /* Statistics. */
  uint64_t bytes_sent, bytes_received, chunks_sent, chunks_received;

  /* connect.c: systemd socket activation temporary directory and socket
   * (removed by nbd_internal_subprocess_reap), NULL if none.
   */
  char *sact_tmpdir;
  char *sact_sockpath;

  /* uri.c (nbd_get_uri): the address the socket was connected to,
   * connaddrlen == 0 if unknown.  connect_uri records it for Unix and
   * vsock; connect.c may record it for every connect(2) so that
   * nbd_get_uri also works after the socket is closed.  Otherwise
   * nbd_get_uri falls back to getpeername on h->fd, then to h->uri.
   */
  struct sockaddr_storage connaddr;
  socklen_t connaddrlen;

  /* tls.c: a TLS handshake is in progress (h->tls_session is set and
   * h->ops is the TLS transport); states.c drives it.  tls_connect_host
   * is the host given to nbd_connect_tcp, checked against the server
   * certificate unless tls_hostname overrides it.
   */
  bool tls_handshaking;
  char *tls_connect_host;
  /* The port given to nbd_connect_tcp, kept with tls_connect_host so that
   * nbd_get_uri writes the address as the caller gave it.
   */
  char *tls_connect_port;

  /* wait.c, the one place that waits (threads, cancel), and timeouts.c. */
  pthread_cond_t progress;      /* broadcast after each leader round */
  bool leader_polling;          /* a thread is in poll(2), lock released */
  uint64_t rounds;              /* leader rounds so far */
  int wake_fd;                  /* eventfd polled by the leader */
  atomic_bool cancel_requested; /* nbd_ext_cancel, not yet acted on */
  uint32_t request_timeout_ms;  /* 0: none */
  uint32_t connect_timeout_ms;  /* 0: none */
  uint64_t connect_deadline;    /* CLOCK_MONOTONIC ns, 0: none */
  struct command *oldest, *newest; /* commands awaiting a reply */
  struct waiter *waiters;       /* followers asleep */
  /* The request-timeout watchdog (timeouts.c), started with the first
   * command issued under a request timeout, for programs that poll the
   * socket themselves.
   */
  pthread_t watchdog;
  pid_t watchdog_pid;           /* 0: none; the process that started it */
  bool watchdog_stop;
  bool watchdog_fired;          /* it shut the socket's reading side */
  /* Sticky for the connection: the reading side was shut by us (the
   * watchdog), so an end of stream from now on is a timeout, even if the
   * timeout was raised since (watchdog_fired is then cleared).
   */
  bool read_side_shut;
  pthread_cond_t watchdog_cond; /* CLOCK_MONOTONIC */
  struct waiter *to_wake;       /* followers to post once the lock is free */

  /* Why the connection died (nbd_internal_kill), for threads that did
   * not see it happen.
   */
  int dead_errno;
  char *dead_msg;
};

/* ---- errors.c ---- */
extern void nbd_internal_set_error_context (const char *context);
extern const char *nbd_internal_enter_context (const char *context);
extern void nbd_internal_leave_context (const char *previous);
extern const char *nbd_internal_get_error_context (void);
extern const char *nbd_internal_get_error_body (void);
/* A blocking command returning with the handle lock already released
 * notes it (false: cannot, keep the lock); its generated entry point
 * takes the note instead of unlocking.
 */
extern bool nbd_internal_note_lock_released (void);
extern bool nbd_internal_take_lock_released (void);
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
/* recv gave 0: the end of the stream.  at_boundary: where a reply or
 * handshake message would start.  A stream this library ended itself
 * (nbd_ext_cancel, the watchdog) dies with ECANCELED / ETIMEDOUT;
 * otherwise, as libnbd, at a reply boundary the connection is closed
 * (CLOSED, commands still owed a reply fail with ENOTCONN, no error:
 * returns 0), anywhere else it is dead with no errno (returns -1).
 * during: "a reply" or "the handshake", for the message.
 */
extern int nbd_internal_end_of_stream (struct nbd_handle *h, bool at_boundary,
                                       const char *during);
/* A transport's recv or send failed (-1, errno not EAGAIN): the
 * connection is dead.  errno 0 means the transport set the error itself
 * (TLS: GnuTLS's reason, without an errno, as libnbd); otherwise what
 * names the operation in the message.
 */
extern void nbd_internal_transport_failed (struct nbd_handle *h, const char *what);
/* As nbd_internal_set_dead, but the commands lost fail with cmd_errnum
 * (ETIMEDOUT, ECANCELED) instead of ENOTCONN.
 */
/* A cancel (nbd_ext_cancel) is pending: end the connection, or the
 * connect about to start, with ECANCELED and return -1; 0 if none is
 * pending (or the handle is already closed or dead: nothing to cancel).
 * Called by every call that drives the handle, before it looks at the
 * socket.
 */
extern int nbd_internal_act_on_cancel (struct nbd_handle *h) __attribute__ ((cold));
extern void nbd_internal_kill (struct nbd_handle *h, int errnum, int cmd_errnum,
                               const char *msg);
/* -1 with EDEADLK if a user callback of this handle is running: calls that
 * wait or drive the socket are forbidden there (libnbd(3), CALLBACKS).
 */
extern int nbd_internal_refuse_in_callback (struct nbd_handle *h);
extern void nbd_internal_close_socket (struct nbd_handle *h);

/* ---- wait.c ---- */
extern uint64_t nbd_internal_now_ns (void);
extern int nbd_internal_wait_init (struct nbd_handle *h);
extern void nbd_internal_wait_free (struct nbd_handle *h);
/* The leader's poll set is stale (new output queued, socket closed). */
extern void nbd_internal_wake_leader (struct nbd_handle *h);
/* A command with a deadline was issued: make sure the watchdog runs and
 * knows.  Stopped (and joined) by nbd_internal_wait_free.
 */
extern void nbd_internal_watchdog_kick (struct nbd_handle *h);
/* First thing in nbd_close: nothing may run beside the teardown. */
extern void nbd_internal_watchdog_stop (struct nbd_handle *h);
/* End the connection if a deadline passed or a cancel is pending (-1,
 * error set); 0 otherwise.  For the event-loop entry points.
 */
extern int nbd_internal_check_deadlines (struct nbd_handle *h);
/* timeouts.c, for wait.c: the earliest deadline in force (0: none), and
 * the check above at a time already read (now: CLOCK_MONOTONIC ns, or 0
 * when there is no deadline).
 */
extern uint64_t nbd_internal_next_deadline (struct nbd_handle *h);
/* End the connection: a request deadline passed (ETIMEDOUT; ECANCELED
 * instead if a cancel is pending, as for any nbd_internal_kill).
 */
extern void nbd_internal_request_timed_out (struct nbd_handle *h);
extern int nbd_internal_check_deadlines_at (struct nbd_handle *h, uint64_t now);
/* A follower's reason to wake came (its command completed, the
 * connection died): it is posted when the lock is next given up.
 */
extern void nbd_internal_wake_waiter (struct nbd_handle *h, struct waiter *w);
extern void nbd_internal_wake_all_waiters (struct nbd_handle *h);
/* The follower's command completed: give it the result directly (it then
 * returns without taking the lock again).  False if it is already being
 * woken for another reason.
 */
extern bool nbd_internal_hand_result (struct nbd_handle *h, struct waiter *w, int error);
/* Post the wakeups collected so far (after any engine run outside the
 * leader's rounds: nbd_aio_notify_*, a dying connection).
 */
extern void nbd_internal_flush_wakeups (struct nbd_handle *h);
/* A blocking command's wait: -1 the connection failed (error set); 0 the
 * command completed and waits to be retired; 1 it was retired for us,
 * *error holds its result, and the lock is released (noted with
 * nbd_internal_note_lock_released); 2 the same with the lock held.
 */
extern int nbd_internal_wait_command (struct nbd_handle *h, uint64_t cookie,
                                      int *error);
/* A connect call began: the connect timeout, if any, starts now. */
extern void nbd_internal_connect_deadline_start (struct nbd_handle *h);
/* Sets the error to why the connection died (h->dead_errno, dead_msg). */
extern void nbd_internal_report_dead (struct nbd_handle *h);
extern int64_t nbd_internal_parse_timeout (const char *seconds);
extern void nbd_internal_timeouts_from_env (struct nbd_handle *h);
/* A blocking connect: start() (the aio form), then wait.  With `retry`
 * and a connect timeout, a server not there yet (ECONNREFUSED, ENOENT) is
 * tried again with backoff until the deadline.
 */
extern int nbd_internal_connect_blocking (struct nbd_handle *h,
                                          int (*start) (struct nbd_handle *h,
                                                        const void *args),
                                          const void *args, bool retry);

/* ---- handshake.c ---- */
extern void nbd_internal_handshake_start (struct nbd_handle *h);
extern int nbd_internal_handshake_io_done (struct nbd_handle *h);
extern void nbd_internal_handshake_free (struct nbd_handle *h);
/* Fail the option in flight, if any (its completion callback runs). */
extern void nbd_internal_handshake_abort (struct nbd_handle *h, int errnum);
/* Bytes held by the handshake: its buffers and the option in flight. */
extern size_t nbd_internal_handshake_size (struct nbd_handle *h);

/* ---- commands.c / transmit.c / reply.c ---- */
extern int nbd_internal_transmit (struct nbd_handle *h);     /* send queued requests */
/* Read and decode replies.  `readable`: the socket was reported readable,
 * so a recv is due even when no reply is expected (an idle server's EOF
 * or stray bytes must be seen).
 */
extern int nbd_internal_receive (struct nbd_handle *h, bool readable);
extern void nbd_internal_abort_commands (struct nbd_handle *h, int errnum);
extern void nbd_internal_free_commands (struct nbd_handle *h);
extern bool nbd_internal_has_pending_output (struct nbd_handle *h);
/* A request part-way written (or TLS holding its bytes). */
extern bool nbd_internal_output_in_progress (struct nbd_handle *h);
/* Commands the caller can see in flight: NBD_CMD_DISC is not one. */
extern size_t nbd_internal_user_in_flight (struct nbd_handle *h);
extern struct command *nbd_internal_find_command (struct nbd_handle *h, uint64_t cookie);
extern void nbd_internal_complete_command (struct nbd_handle *h, struct command *cmd);
extern void nbd_internal_restamp_deadlines (struct nbd_handle *h);

/* ---- connect.c ----
 * Each nbd_unlocked_aio_connect_* creates a non-blocking SOCK_CLOEXEC socket
 * and either finds it connected at once (then calls
 * nbd_internal_handshake_start) or leaves the handle in STATE_CONNECTING
 * with h->fd set; states.c calls nbd_internal_connect_finished when the fd
 * turns writable.  The blocking nbd_unlocked_connect_* forms call their aio
 * form and then nbd_internal_wait_connected.
 */
extern int nbd_internal_connect_finished (struct nbd_handle *h);
extern void nbd_internal_subprocess_reap (struct nbd_handle *h);
extern void nbd_internal_connect_reset (struct nbd_handle *h);
/* Blocks until the handshake finished (ready, or negotiating in opt mode);
 * -1 with the error set if the connection failed. */
extern int nbd_internal_wait_connected (struct nbd_handle *h);

/* ---- tls.c ----
 * nbd_internal_tls_start creates the TLS session with the handle's
 * credentials and switches h->ops to the TLS transport (-1 with the error
 * set on failure).  nbd_internal_tls_handshake advances the handshake:
 * 1 done (h->tls_negotiated is set), 0 wait for the socket in the
 * direction nbd_internal_tls_direction reports, -1 failed (error set).
 */
extern int nbd_internal_tls_start (struct nbd_handle *h);
extern int nbd_internal_tls_handshake (struct nbd_handle *h);
extern unsigned nbd_internal_tls_direction (struct nbd_handle *h);
/* The priority string in effect (never NULL). */
extern const char *nbd_internal_tls_priority (struct nbd_handle *h);

/* ---- meta contexts (handshake.c) ---- */
extern void nbd_internal_clear_meta_contexts (struct nbd_handle *h);
/* Forget the export's size, flags, block sizes, name and description
 * (another export was named, or the server started over under TLS). */
extern void nbd_internal_forget_export (struct nbd_handle *h);

/* ---- utils.c ---- */
extern int nbd_internal_string_vector_append (struct string_vector *v, const char *s);
extern void nbd_internal_string_vector_clear (struct string_vector *v);
/* Bytes allocated for the vector: the pointer array and the strings. */
extern size_t nbd_internal_string_vector_size (const struct string_vector *v);
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
