/* The handshake: greeting (oldstyle or newstyle), then option
 * negotiation, either automatic or driven by the nbd_opt_* calls in opt
 * mode.  Everything a connection learns before transmission is decoded
 * here.
 *
 * states.c performs the I/O: this file queues one outgoing message
 * (send_msg) and names how many bytes it expects next (expect); when both
 * are done, nbd_internal_handshake_io_done decides the next step.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum step {
  STEP_MAGIC,               /* NBDMAGIC + version magic: 16 bytes */
  STEP_OLDSTYLE,            /* size, flags, zeroes: 136 bytes */
  STEP_GFLAGS,              /* server handshake flags: 2 bytes */
  STEP_CFLAGS_SENT,         /* client flags written, nothing to read */
  STEP_REPLY_HEADER,        /* option reply header: 20 bytes */
  STEP_REPLY_PAYLOAD,       /* option reply payload */
  STEP_EXPORT_NAME_REPLY,   /* reply to NBD_OPT_EXPORT_NAME */
  STEP_ABORT_SENT,          /* NBD_OPT_ABORT written: close */
  STEP_TLS_DONE,            /* STARTTLS acknowledged: TLS handshake (tls.c) done */
};

/* What an option request is for. */
enum opt_kind {
  OPT_KIND_AUTO,            /* the automatic sequence of a plain connect */
  OPT_KIND_GO, OPT_KIND_INFO, OPT_KIND_LIST, OPT_KIND_ABORT,
  OPT_KIND_STRUCTURED_REPLY, OPT_KIND_EXTENDED_HEADERS, OPT_KIND_STARTTLS,
  OPT_KIND_LIST_META, OPT_KIND_SET_META,
};

/* Stages of the automatic sequence and of GO/INFO. */
enum stage {
  STAGE_STARTTLS,           /* automatic sequence: NBD_OPT_STARTTLS if nbd_set_tls asks */
  STAGE_EXTENDED_HEADERS, STAGE_STRUCTURED_REPLY,
  STAGE_HANDOVER,           /* opt mode: the caller takes over from here */
  STAGE_META, STAGE_GO,
  STAGE_EXPORT_NAME, STAGE_DONE,
};

struct hs_option {
  enum opt_kind kind;
  enum stage stage;
  uint32_t option;              /* NBD_OPT_* currently on the wire */
  nbd_completion_callback completion;
  nbd_list_callback list;
  nbd_context_callback context;
  struct string_vector queries; /* meta context queries for this request */
  bool meta_for_go;             /* SET_META_CONTEXT sent on behalf of GO/INFO */
  int err;                      /* errno of a failed step, 0 if none */
  char *errmsg;
  int count;                    /* entries passed to list/context callbacks */
  int result;                   /* boolean result of SR/EH/STARTTLS options */
  bool done;
  /* Meta contexts received by an in-progress SET_META_CONTEXT. */
  struct meta_context *new_meta;
  size_t nr_new_meta;
};

#define MAX_OPTION_REPLY (1024 * 1024)

static bool fixed_newstyle (struct nbd_handle *h);

/* ---- I/O set-up helpers ---- */

static int
send_msg (struct nbd_handle *h, const void *buf, size_t len)
{
  char *copy = malloc (len ? len : 1);
  if (!copy) {
    set_error (errno, "malloc");
    return -1;
  }
  memcpy (copy, buf, len);
  free (h->hs_wbuf);
  h->hs_wbuf = copy;
  h->hs_wlen = len;
  h->hs_wdone = 0;
  return 0;
}

static int
expect (struct nbd_handle *h, size_t len, int step)
{
  if (len > h->hs_rcap) {
    char *p = realloc (h->hs_rbuf, len);
    if (!p) {
      set_error (errno, "realloc");
      return -1;
    }
    h->hs_rbuf = p;
    h->hs_rcap = len;
  }
  h->hs_rlen = len;
  h->hs_rdone = 0;
  h->hs_step = step;
  return 0;
}

/* Send an option with its data and wait for the reply header. */
static int
send_option (struct nbd_handle *h, uint32_t option, const void *data, size_t len)
{
  char *buf = malloc (16 + len);
  int r;

  if (!buf) {
    set_error (errno, "malloc");
    return -1;
  }
  be64_put (buf, NBD_NEW_VERSION);
  be32_put (buf + 8, option);
  be32_put (buf + 12, (uint32_t) len);
  if (len)
    memcpy (buf + 16, data, len);
  debug (h, "sending option %" PRIu32 " with %zu bytes of data", option, len);
  r = send_msg (h, buf, 16 + len);
  free (buf);
  if (r == -1)
    return -1;
  h->opt->option = option;
  h->chunks_sent++;
  return expect (h, option == NBD_OPT_ABORT ? 0 : 20,
                 option == NBD_OPT_ABORT ? STEP_ABORT_SENT : STEP_REPLY_HEADER);
}

/* Build export name + queries, the data of SET/LIST_META_CONTEXT. */
static int
send_meta_context_option (struct nbd_handle *h, uint32_t option,
                          struct string_vector *queries)
{
  size_t name_len = strlen (h->export_name), len = 4 + name_len + 4;
  char *buf, *p;
  int r;

  for (size_t i = 0; i < queries->len; i++)
    len += 4 + strlen (queries->ptr[i]);
  buf = malloc (len);
  if (!buf) {
    set_error (errno, "malloc");
    return -1;
  }
  p = buf;
  be32_put (p, (uint32_t) name_len); p += 4;
  memcpy (p, h->export_name, name_len); p += name_len;
  be32_put (p, (uint32_t) queries->len); p += 4;
  for (size_t i = 0; i < queries->len; i++) {
    size_t n = strlen (queries->ptr[i]);
    be32_put (p, (uint32_t) n); p += 4;
    memcpy (p, queries->ptr[i], n); p += n;
  }
  r = send_option (h, option, buf, len);
  free (buf);
  return r;
}

static int
send_go_or_info (struct nbd_handle *h, uint32_t option)
{
  size_t name_len = strlen (h->export_name);
  char buf[4 + NBD_MAX_STRING + 2 + 3 * 2];
  char *p = buf;
  uint16_t nr = 0;
  uint16_t infos[3];

  if (h->full_info) {
    infos[nr++] = NBD_INFO_NAME;
    infos[nr++] = NBD_INFO_DESCRIPTION;
  }
  if (h->request_block_size)
    infos[nr++] = NBD_INFO_BLOCK_SIZE;
  be32_put (p, (uint32_t) name_len); p += 4;
  memcpy (p, h->export_name, name_len); p += name_len;
  be16_put (p, nr); p += 2;
  for (uint16_t i = 0; i < nr; i++) {
    be16_put (p, infos[i]);
    p += 2;
  }
  return send_option (h, option, buf, (size_t) (p - buf));
}

static int
send_export_name (struct nbd_handle *h)
{
  int r = send_option (h, NBD_OPT_EXPORT_NAME, h->export_name,
                       strlen (h->export_name));
  if (r == -1)
    return -1;
  /* No reply header: size, flags and (unless NO_ZEROES) 124 zero bytes. */
  return expect (h, (h->gflags & NBD_FLAG_NO_ZEROES) ? 10 : 134,
                 STEP_EXPORT_NAME_REPLY);
}

/* ---- Results ---- */

void
nbd_internal_clear_meta_contexts (struct nbd_handle *h)
{
  for (size_t i = 0; i < h->nr_meta_contexts; i++)
    free (h->meta_contexts[i].name);
  free (h->meta_contexts);
  h->meta_contexts = NULL;
  h->nr_meta_contexts = 0;
  h->meta_valid = false;
}

void
nbd_internal_forget_export (struct nbd_handle *h)
{
  h->eflags_known = false;
  h->eflags = 0;
  h->exportsize = 0;
  h->block_minimum = h->block_preferred = h->block_maximum = 0;
  free (h->canonical_name);
  h->canonical_name = NULL;
  free (h->description);
  h->description = NULL;
}

static void
free_new_meta (struct hs_option *o)
{
  for (size_t i = 0; i < o->nr_new_meta; i++)
    free (o->new_meta[i].name);
  free (o->new_meta);
  o->new_meta = NULL;
  o->nr_new_meta = 0;
}

static void
free_option (struct hs_option *o)
{
  FREE_CLOSURE (o->completion);
  FREE_CLOSURE (o->list);
  FREE_CLOSURE (o->context);
  nbd_internal_string_vector_clear (&o->queries);
  free (o->queries.ptr);
  free_new_meta (o);
  free (o->errmsg);
  free (o);
}

/* Map an option error reply to the errno a libnbd user expects. */
static int
option_errno (uint32_t reply)
{
  switch (reply) {
  case NBD_REP_ERR_UNSUP: return ENOTSUP;
  case NBD_REP_ERR_POLICY: return EPERM;
  case NBD_REP_ERR_INVALID: return EINVAL;
  case NBD_REP_ERR_PLATFORM: return ENOTSUP;
  case NBD_REP_ERR_TLS_REQD: return ENOTSUP;   /* as libnbd: TLS is missing */
  case NBD_REP_ERR_UNKNOWN: return ENOENT;
  case NBD_REP_ERR_SHUTDOWN: return ESHUTDOWN;
  case NBD_REP_ERR_BLOCK_SIZE_REQD: return EINVAL;
  case NBD_REP_ERR_TOO_BIG: return ERANGE;
  case NBD_REP_ERR_EXT_HEADER_REQD: return EINVAL;
  default: return EINVAL;
  }
}

/* What an option error reply means, for messages when the server sent
 * no text of its own.
 */
static const char *
option_error_meaning (uint32_t reply)
{
  switch (reply) {
  case NBD_REP_ERR_UNSUP: return "option not supported";
  case NBD_REP_ERR_POLICY: return "forbidden by server policy";
  case NBD_REP_ERR_INVALID: return "invalid request";
  case NBD_REP_ERR_PLATFORM: return "not supported on the server's platform";
  case NBD_REP_ERR_TLS_REQD: return "the server requires TLS first";
  case NBD_REP_ERR_UNKNOWN: return "no such export";
  case NBD_REP_ERR_SHUTDOWN: return "the server is shutting down";
  case NBD_REP_ERR_BLOCK_SIZE_REQD: return "the server requires block size negotiation";
  case NBD_REP_ERR_TOO_BIG: return "request too big";
  case NBD_REP_ERR_EXT_HEADER_REQD: return "the server requires extended headers";
  default: return "unknown error";
  }
}

static const char *
option_name (uint32_t option)
{
  switch (option) {
  case NBD_OPT_EXPORT_NAME: return "export_name";
  case NBD_OPT_ABORT: return "opt_abort";
  case NBD_OPT_LIST: return "opt_list";
  case NBD_OPT_STARTTLS: return "opt_starttls";
  case NBD_OPT_INFO: return "opt_info";
  case NBD_OPT_GO: return "opt_go";
  case NBD_OPT_STRUCTURED_REPLY: return "opt_structured_reply";
  case NBD_OPT_LIST_META_CONTEXT: return "opt_list_meta_context";
  case NBD_OPT_SET_META_CONTEXT: return "opt_set_meta_context";
  case NBD_OPT_EXTENDED_HEADERS: return "opt_extended_headers";
  default: return "unknown option";
  }
}

static void
record_option_error (struct hs_option *o, int err, const char *msg)
{
  if (o->err)
    return;
  o->err = err;
  free (o->errmsg);
  o->errmsg = strdup (msg);
}

/* The option request is over: run its completion callback and return to
 * the negotiating state (opt mode) or move on.
 */
static void
finish_option (struct nbd_handle *h)
{
  struct hs_option *o = h->opt;
  int err = o->err;

  h->opt = NULL;
  o->done = true;
  h->last_opt_err = o->err;
  h->last_opt_count = o->count;
  h->last_opt_result = o->result;
  free (h->last_opt_msg);
  h->last_opt_msg = o->errmsg;
  o->errmsg = NULL;
  if (o->completion.callback) {
    h->in_callback++;
    o->completion.callback (o->completion.user_data, &err);
    h->in_callback--;
  }
  free_option (o);
}

/* ---- The automatic sequence and GO/INFO stages ---- */

static bool
want_meta (struct nbd_handle *h, struct hs_option *o)
{
  return h->request_meta && (h->sr_negotiated || h->eh_negotiated)
    && o->queries.len > 0;
}

/* Start the next stage at or after `stage`; returns -1 on error. */
static int
advance (struct nbd_handle *h, enum stage stage)
{
  struct hs_option *o = h->opt;

  for (;;) {
    o->stage = stage;
    switch (stage) {
    case STAGE_STARTTLS:
      if (o->kind == OPT_KIND_AUTO && h->tls != LIBNBD_TLS_DISABLE
          && !h->tls_negotiated) {
        if (fixed_newstyle (h))
          return send_option (h, NBD_OPT_STARTTLS, NULL, 0);
        if (h->tls == LIBNBD_TLS_REQUIRE) {
          set_error (ENOTSUP, "handshake: server is not using fixed newstyle, "
                     "but handle TLS setting is 'require' (2)");
          return -1;
        }
      }
      stage = STAGE_EXTENDED_HEADERS;
      continue;
    case STAGE_EXTENDED_HEADERS:
      /* As libnbd: not requesting structured replies also turns off the
       * automatic request for extended headers (which imply them).
       */
      if (o->kind == OPT_KIND_AUTO && h->request_eh && h->request_sr
          && fixed_newstyle (h))
        return send_option (h, NBD_OPT_EXTENDED_HEADERS, NULL, 0);
      stage = STAGE_STRUCTURED_REPLY;
      continue;
    case STAGE_STRUCTURED_REPLY:
      if (o->kind == OPT_KIND_AUTO && h->request_sr && !h->eh_negotiated
          && fixed_newstyle (h))
        return send_option (h, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
      stage = STAGE_HANDOVER;
      continue;
    case STAGE_HANDOVER:
      if (o->kind == OPT_KIND_AUTO && h->opt_mode) {
        /* Hand over to the caller's nbd_opt_* calls (plain newstyle too:
         * nbd_opt_go then uses NBD_OPT_EXPORT_NAME, as upstream does).
         */
        free_option (o);
        h->opt = NULL;
        h->state = STATE_NEGOTIATING;
        return 0;
      }
      stage = STAGE_META;
      continue;
    case STAGE_META:
      if (fixed_newstyle (h) && want_meta (h, o)) {
        o->meta_for_go = true;
        return send_meta_context_option (h, NBD_OPT_SET_META_CONTEXT, &o->queries);
      }
      stage = STAGE_GO;
      continue;
    case STAGE_GO:
      if (!fixed_newstyle (h)) {
        stage = STAGE_EXPORT_NAME;
        continue;
      }
      return send_go_or_info (h, o->kind == OPT_KIND_INFO ? NBD_OPT_INFO : NBD_OPT_GO);
    case STAGE_EXPORT_NAME:
      if (o->kind == OPT_KIND_INFO) {
        record_option_error (o, ENOTSUP, "server does not support NBD_OPT_INFO");
        stage = STAGE_DONE;
        continue;
      }
      return send_export_name (h);
    case STAGE_DONE:
      return 0;
    }
  }
}

/* GO or INFO succeeded (or the export was named the old ways).  With
 * nbd_set_request_meta_context on, that request made the contexts known:
 * the ones the server agreed to, or none when it could not be asked (no
 * structured replies).  With it off, only nbd_opt_set_meta_context
 * makes them known, and nbd_can_meta_context fails until then.
 */
static void
export_agreed (struct nbd_handle *h)
{
  if (h->request_meta)
    h->meta_valid = true;
}

static int
enter_transmission (struct nbd_handle *h)
{
  if (!h->eflags_known) {
    set_error (0, "server did not send export size and flags");
    return -1;
  }
  export_agreed (h);
  h->state = STATE_TRANSMISSION;
  debug (h, "handshake done: size %" PRIu64 ", flags 0x%x", h->exportsize, h->eflags);
  if (h->opt) {
    struct hs_option *o = h->opt;
    bool automatic = o->kind == OPT_KIND_AUTO;
    finish_option (h);
    (void) automatic;
  }
  return 0;
}

/* A step of the option sequence ended (successfully or with an error the
 * sequence tolerates): go on.
 */
static int
stage_done (struct nbd_handle *h)
{
  struct hs_option *o = h->opt;

  switch (o->kind) {
  case OPT_KIND_AUTO:
  case OPT_KIND_GO:
  case OPT_KIND_INFO:
    switch (o->stage) {
    case STAGE_STARTTLS:
      if (!o->result && h->tls == LIBNBD_TLS_REQUIRE) {
        /* As libnbd: end the negotiation cleanly with NBD_OPT_ABORT
         * rather than dropping the connection under the server; once it
         * is written, STEP_ABORT_SENT fails the connect with this error.
         */
        record_option_error (o, ENOTSUP, "handshake: server refused TLS, "
                             "but handle TLS setting is 'require' (2)");
        return send_option (h, NBD_OPT_ABORT, NULL, 0);
      }
      if (!o->result)
        debug (h, "server refused TLS: continuing without encryption");
      o->result = 0;
      return advance (h, STAGE_EXTENDED_HEADERS);
    case STAGE_EXTENDED_HEADERS:
      return advance (h, STAGE_STRUCTURED_REPLY);
    case STAGE_STRUCTURED_REPLY:
      return advance (h, STAGE_HANDOVER);
    case STAGE_HANDOVER:
    case STAGE_META:
      return advance (h, STAGE_GO);
    case STAGE_GO:
    case STAGE_EXPORT_NAME:
    case STAGE_DONE:
      break;
    }
    if (o->err) {
      if (o->kind == OPT_KIND_AUTO) {
        /* A plain connect cannot continue after a failed GO. */
        set_error (o->err, "%s", o->errmsg ? o->errmsg : "option negotiation failed");
        return -1;
      }
      h->state = STATE_NEGOTIATING;
      finish_option (h);
      return 0;
    }
    if (o->kind == OPT_KIND_INFO) {
      export_agreed (h);
      h->state = STATE_NEGOTIATING;
      finish_option (h);
      return 0;
    }
    return enter_transmission (h);
  default:
    h->state = STATE_NEGOTIATING;
    finish_option (h);
    return 0;
  }
}

/* ---- Decoding replies ---- */

static int
handle_info (struct nbd_handle *h, const char *p, uint32_t len)
{
  uint16_t type;

  if (len < 2)
    goto bad;
  type = be16_get (p);
  switch (type) {
  case NBD_INFO_EXPORT:
    if (len != 12)
      goto bad;
    h->exportsize = be64_get (p + 2);
    h->eflags = be16_get (p + 10);
    h->eflags_known = true;
    break;
  case NBD_INFO_NAME:
    if (len - 2 > NBD_MAX_STRING)
      goto bad;
    free (h->canonical_name);
    h->canonical_name = strndup (p + 2, len - 2);
    break;
  case NBD_INFO_DESCRIPTION:
    if (len - 2 > NBD_MAX_STRING)
      goto bad;
    free (h->description);
    h->description = strndup (p + 2, len - 2);
    break;
  case NBD_INFO_BLOCK_SIZE: {
    uint32_t min, pref, max;
    if (len != 14)
      goto bad;
    min = be32_get (p + 2);
    pref = be32_get (p + 6);
    max = be32_get (p + 10);
    /* Sizes that break the protocol's rules are ignored, not trusted. */
    if (min == 0 || (min & (min - 1)) || min > 65536 || pref < min
        || (pref & (pref - 1)) || max < pref || (max != UINT32_MAX && max % min)) {
      debug (h, "ignoring invalid block sizes %u/%u/%u", min, pref, max);
      break;
    }
    h->block_minimum = min;
    h->block_preferred = pref;
    h->block_maximum = max;
    break;
  }
  default:
    debug (h, "ignoring unknown info type %u", type);
  }
  return 0;
 bad:
  set_error (0, "server sent an invalid NBD_REP_INFO reply");
  return -1;
}

static int
handle_meta_context_reply (struct nbd_handle *h, const char *p, uint32_t len)
{
  struct hs_option *o = h->opt;
  uint32_t id;
  char *name;

  /* An id and a name: a context with no name is an error, as upstream. */
  if (len <= 4 || len - 4 > NBD_MAX_STRING) {
    set_error (0, "server sent an invalid NBD_REP_META_CONTEXT reply");
    return -1;
  }
  id = be32_get (p);
  name = strndup (p + 4, len - 4);
  if (!name) {
    set_error (errno, "strndup");
    return -1;
  }
  o->count++;
  if (o->context.callback) {
    h->in_callback++;
    o->context.callback (o->context.user_data, name);
    h->in_callback--;
  }
  if (o->option == NBD_OPT_SET_META_CONTEXT) {
    struct meta_context *m = realloc (o->new_meta, (o->nr_new_meta + 1) * sizeof *m);
    if (!m) {
      free (name);
      set_error (errno, "realloc");
      return -1;
    }
    o->new_meta = m;
    m[o->nr_new_meta].name = name;
    m[o->nr_new_meta].id = id;
    o->nr_new_meta++;
  }
  else
    free (name);
  return 0;
}

static int
handle_server_reply (struct nbd_handle *h, const char *p, uint32_t len)
{
  struct hs_option *o = h->opt;
  uint32_t name_len;
  char *name, *desc;

  if (len < 4 || (name_len = be32_get (p)) > len - 4 || name_len > NBD_MAX_STRING) {
    set_error (0, "server sent an invalid NBD_REP_SERVER reply");
    return -1;
  }
  name = strndup (p + 4, name_len);
  desc = strndup (p + 4 + name_len, len - 4 - name_len);
  if (!name || !desc) {
    free (name);
    free (desc);
    set_error (errno, "strndup");
    return -1;
  }
  o->count++;
  if (o->list.callback) {
    h->in_callback++;
    o->list.callback (o->list.user_data, name, desc);
    h->in_callback--;
  }
  free (name);
  free (desc);
  return 0;
}

/* The server acknowledged the option on the wire. */
static int
handle_ack (struct nbd_handle *h)
{
  struct hs_option *o = h->opt;

  switch (o->option) {
  case NBD_OPT_STARTTLS:
    /* The server now waits for the TLS handshake, which states.c runs
     * before anything else; STEP_TLS_DONE follows.
     */
    if (nbd_internal_tls_start (h) == -1)
      return -1;
    return expect (h, 0, STEP_TLS_DONE);
  case NBD_OPT_EXTENDED_HEADERS:
    h->eh_negotiated = true;
    h->sr_negotiated = true;
    o->result = 1;
    break;
  case NBD_OPT_STRUCTURED_REPLY:
    h->sr_negotiated = true;
    o->result = 1;
    break;
  case NBD_OPT_SET_META_CONTEXT:
    nbd_internal_clear_meta_contexts (h);
    h->meta_contexts = o->new_meta;
    h->nr_meta_contexts = o->nr_new_meta;
    h->meta_valid = true;
    o->new_meta = NULL;
    o->nr_new_meta = 0;
    break;
  case NBD_OPT_GO:
  case NBD_OPT_INFO:
    if (!h->eflags_known) {
      set_error (0, "server acknowledged %s without NBD_INFO_EXPORT",
                 option_name (o->option));
      return -1;
    }
    break;
  default:
    break;
  }
  return stage_done (h);
}

static int
handle_error_reply (struct nbd_handle *h, uint32_t reply, const char *p, uint32_t len)
{
  struct hs_option *o = h->opt;
  char *msg = strndup (p, len);
  int err = option_errno (reply);

  debug (h, "server refused %s: %s", option_name (o->option), msg ? msg : "");
  switch (o->option) {
  case NBD_OPT_STARTTLS:
  case NBD_OPT_EXTENDED_HEADERS:
  case NBD_OPT_STRUCTURED_REPLY:
    /* Refusing a protocol extension is an answer, not a failure (for
     * STARTTLS, stage_done fails the connection if TLS is required).
     * The caller's own request still learns of it: its completion
     * callback sees ENOTSUP, while the blocking form returns false.
     */
    o->result = 0;
    if (o->kind != OPT_KIND_AUTO)
      record_option_error (o, ENOTSUP, "the server refused the option");
    free (msg);
    return stage_done (h);
  case NBD_OPT_GO:
    if (reply == NBD_REP_ERR_UNSUP && o->kind != OPT_KIND_INFO) {
      free (msg);
      return advance (h, STAGE_EXPORT_NAME);
    }
    break;
  case NBD_OPT_SET_META_CONTEXT:
    if (o->meta_for_go) {
      free_new_meta (o);
      nbd_internal_clear_meta_contexts (h);
      free (msg);
      return stage_done (h);
    }
    break;
  default:
    break;
  }
  {
    char *full = NULL;
    if (asprintf (&full, "server replied with error to %s request: %s",
                  option_name (o->option),
                  msg && *msg ? msg : option_error_meaning (reply)) == -1)
      full = NULL;
    record_option_error (o, err, full ? full : "option failed");
    free (full);
  }
  free (msg);
  if (o->option == NBD_OPT_SET_META_CONTEXT)
    free_new_meta (o);
  return stage_done (h);
}

static int
handle_option_reply (struct nbd_handle *h)
{
  const char *hdr = h->hs_rbuf;
  uint32_t option = be32_get (hdr + 8);
  uint32_t reply = be32_get (hdr + 12);
  uint32_t len = be32_get (hdr + 16);
  const char *p = h->hs_rbuf + 20;
  struct hs_option *o = h->opt;

  h->chunks_received++;
  if (option != o->option) {
    set_error (0, "server replied to option %" PRIu32 " while %" PRIu32 " was sent",
               option, o->option);
    return -1;
  }
  if (NBD_REP_IS_ERR (reply))
    return handle_error_reply (h, reply, p, len);

  switch (reply) {
  case NBD_REP_ACK:
    if (len != 0) {
      set_error (0, "server sent NBD_REP_ACK with a payload");
      return -1;
    }
    return handle_ack (h);
  case NBD_REP_INFO:
    if (option != NBD_OPT_GO && option != NBD_OPT_INFO)
      goto unexpected;
    if (handle_info (h, p, len) == -1)
      return -1;
    break;
  case NBD_REP_META_CONTEXT:
    if (option != NBD_OPT_SET_META_CONTEXT && option != NBD_OPT_LIST_META_CONTEXT)
      goto unexpected;
    if (handle_meta_context_reply (h, p, len) == -1)
      return -1;
    break;
  case NBD_REP_SERVER:
    if (option != NBD_OPT_LIST)
      goto unexpected;
    if (handle_server_reply (h, p, len) == -1)
      return -1;
    break;
  default:
    goto unexpected;
  }
  /* More replies follow until ACK or an error. */
  return expect (h, 20, STEP_REPLY_HEADER);

 unexpected:
  set_error (0, "server sent unexpected reply type 0x%" PRIx32 " to %s",
             reply, option_name (option));
  return -1;
}

static bool
fixed_newstyle (struct nbd_handle *h)
{
  return (h->gflags & NBD_FLAG_FIXED_NEWSTYLE) != 0;
}

/* ---- Entry points from states.c ---- */

void
nbd_internal_handshake_start (struct nbd_handle *h)
{
  h->state = STATE_HANDSHAKE;
  h->hs_wlen = h->hs_wdone = 0;
  h->eflags_known = false;
  if (expect (h, 16, STEP_MAGIC) == -1)
    nbd_internal_set_dead (h, ENOMEM, NULL);
}

static struct hs_option *
new_option (struct nbd_handle *h, enum opt_kind kind)
{
  struct hs_option *o = calloc (1, sizeof *o);
  if (!o) {
    set_error (errno, "calloc");
    return NULL;
  }
  o->kind = kind;
  for (size_t i = 0; i < h->request_meta_contexts.len; i++)
    if (nbd_internal_string_vector_append (&o->queries,
                                           h->request_meta_contexts.ptr[i]) == -1) {
      set_error (errno, "strdup");
      free_option (o);
      return NULL;
    }
  return o;
}

int
nbd_internal_handshake_io_done (struct nbd_handle *h)
{
  const char *b = h->hs_rbuf;

  switch ((enum step) h->hs_step) {
  case STEP_MAGIC: {
    uint64_t version;
    h->chunks_received++;
    if (be64_get (b) != NBD_MAGIC) {
      set_error (0, "handshake: server did not send the NBD magic");
      return -1;
    }
    version = be64_get (b + 8);
    if (version == NBD_OLD_VERSION) {
      h->protocol = "oldstyle";
      return expect (h, 136, STEP_OLDSTYLE);
    }
    if (version != NBD_NEW_VERSION) {
      set_error (0, "handshake: unknown protocol version 0x%" PRIx64, version);
      return -1;
    }
    return expect (h, 2, STEP_GFLAGS);
  }

  case STEP_OLDSTYLE: {
    uint32_t flags = be32_get (b + 8);
    if (h->tls == LIBNBD_TLS_REQUIRE) {
      set_error (ENOTSUP, "handshake: server is oldstyle, "
                 "but handle TLS setting is 'require' (2)");
      return -1;
    }
    h->exportsize = be64_get (b);
    h->gflags = flags >> 16;
    h->eflags = flags & 0xffff;
    h->eflags_known = true;
    export_agreed (h);
    h->state = STATE_TRANSMISSION;
    debug (h, "oldstyle handshake done: size %" PRIu64, h->exportsize);
    return 0;
  }

  case STEP_GFLAGS: {
    uint16_t gflags = be16_get (b);
    char cflags[4];
    /* Use only what both sides support and the caller allows. */
    h->gflags = gflags & h->handshake_flags;
    h->protocol = (h->gflags & NBD_FLAG_FIXED_NEWSTYLE) ? "newstyle-fixed" : "newstyle";
    /* As libnbd, NO_ZEROES is kept without FIXED_NEWSTYLE: the protocol
     * ties the client's bit only to the server having offered it.
     */
    be32_put (cflags, h->gflags);
    if (send_msg (h, cflags, 4) == -1)
      return -1;
    return expect (h, 0, STEP_CFLAGS_SENT);
  }

  case STEP_CFLAGS_SENT:
    h->opt = new_option (h, OPT_KIND_AUTO);
    if (!h->opt)
      return -1;
    return advance (h, STAGE_STARTTLS);

  case STEP_REPLY_HEADER: {
    uint32_t len;
    if (be64_get (b) != NBD_REP_MAGIC) {
      set_error (0, "handshake: invalid option reply magic");
      return -1;
    }
    len = be32_get (b + 16);
    if (len > MAX_OPTION_REPLY) {
      set_error (0, "handshake: option reply of %" PRIu32 " bytes is too long", len);
      return -1;
    }
    if (len == 0)
      return handle_option_reply (h);
    /* Keep the header: the payload is read right after it. */
    if (expect (h, 20 + len, STEP_REPLY_PAYLOAD) == -1)
      return -1;
    h->hs_rdone = 20;
    return 0;
  }

  case STEP_REPLY_PAYLOAD:
    return handle_option_reply (h);

  case STEP_EXPORT_NAME_REPLY:
    h->chunks_received++;
    h->exportsize = be64_get (b);
    h->eflags = be16_get (b + 8);
    h->eflags_known = true;
    return enter_transmission (h);

  case STEP_TLS_DONE:
    debug (h, "TLS negotiated: option negotiation continues encrypted");
    /* The server starts over with the encrypted session: what was
     * agreed in plaintext no longer holds on either side.
     */
    h->sr_negotiated = false;
    h->eh_negotiated = false;
    nbd_internal_clear_meta_contexts (h);
    nbd_internal_forget_export (h);
    h->opt->result = 1;
    return stage_done (h);

  case STEP_ABORT_SENT:
    /* The automatic sequence aborts only to give up (TLS required but
     * refused): as libnbd, the handle is then DEAD with the reason,
     * except in opt mode, where it ends CLOSED like nbd_opt_abort and
     * the connect call still fails with the reason.
     */
    if (h->opt && h->opt->kind == OPT_KIND_AUTO && h->opt->err) {
      int err = h->opt->err;
      char *why = h->opt->errmsg ? strdup (h->opt->errmsg) : NULL;

      if (h->ops)
        h->ops->shut_writes (h);
      if (!h->opt_mode) {
        nbd_internal_set_dead (h, err, why ? why : "option negotiation failed");
        free (why);
        return -1;
      }
      free_option (h->opt);
      h->opt = NULL;
      nbd_internal_close_socket (h);
      h->state = STATE_CLOSED;
      set_error (err, "%s", why ? why : "option negotiation failed");
      free (why);
      return 0;
    }
    /* The server may acknowledge; there is no need to wait for it. */
    if (h->ops)
      h->ops->shut_writes (h);
    nbd_internal_close_socket (h);
    h->state = STATE_CLOSED;
    if (h->opt)
      finish_option (h);
    return 0;
  }
  set_error (0, "handshake: internal error (step %d)", h->hs_step);
  return -1;
}

void
nbd_internal_handshake_abort (struct nbd_handle *h, int errnum)
{
  if (h->opt) {
    record_option_error (h->opt, errnum, "the connection was lost");
    finish_option (h);
  }
}

void
nbd_internal_handshake_free (struct nbd_handle *h)
{
  if (h->opt) {
    free_option (h->opt);
    h->opt = NULL;
  }
  free (h->hs_wbuf);
  free (h->hs_rbuf);
  free (h->last_opt_msg);
  h->hs_wbuf = h->hs_rbuf = NULL;
  h->last_opt_msg = NULL;
}

size_t
nbd_internal_handshake_size (struct nbd_handle *h)
{
  size_t n = 0;

  if (h->hs_wbuf)
    n += h->hs_wlen ? h->hs_wlen : 1;
  n += h->hs_rcap;
  if (h->last_opt_msg)
    n += strlen (h->last_opt_msg) + 1;
  if (h->opt) {
    const struct hs_option *o = h->opt;
    n += sizeof *o;
    n += nbd_internal_string_vector_size (&o->queries);
    if (o->errmsg)
      n += strlen (o->errmsg) + 1;
    n += o->nr_new_meta * sizeof o->new_meta[0];
    for (size_t i = 0; i < o->nr_new_meta; i++)
      n += strlen (o->new_meta[i].name) + 1;
  }
  return n;
}

/* ---- Opt mode: the nbd_opt_* and nbd_aio_opt_* calls ---- */

static int
start_option (struct nbd_handle *h, enum opt_kind kind,
              nbd_completion_callback *completion, nbd_list_callback *list,
              nbd_context_callback *context, char **queries)
{
  struct hs_option *o;
  int r;

  /* Plain newstyle knows only NBD_OPT_EXPORT_NAME (what go falls back
   * to) and NBD_OPT_ABORT: anything else would go unanswered.
   */
  if (!fixed_newstyle (h) && kind != OPT_KIND_GO && kind != OPT_KIND_ABORT) {
    set_error (ENOTSUP, "server is not using fixed newstyle protocol");
    return -1;
  }
  o = new_option (h, kind);
  if (!o)
    return -1;
  if (queries) {
    nbd_internal_string_vector_clear (&o->queries);
    for (size_t i = 0; queries[i]; i++)
      if (nbd_internal_string_vector_append (&o->queries, queries[i]) == -1) {
        set_error (errno, "strdup");
        free_option (o);
        return -1;
      }
  }
  if (completion)
    TAKE_CLOSURE (o->completion, completion);
  if (list)
    TAKE_CLOSURE (o->list, list);
  if (context)
    TAKE_CLOSURE (o->context, context);
  h->opt = o;
  h->state = STATE_HANDSHAKE;

  switch (kind) {
  case OPT_KIND_GO:
  case OPT_KIND_INFO:
    /* Forget the previous export's details: a failed request must leave
     * none behind (nbd_get_size etc. then fail with EINVAL).  The
     * contexts too, when this request negotiates them afresh.
     */
    nbd_internal_forget_export (h);
    if (h->request_meta)
      nbd_internal_clear_meta_contexts (h);
    r = advance (h, STAGE_META);
    break;
  case OPT_KIND_LIST:
    r = send_option (h, NBD_OPT_LIST, NULL, 0);
    break;
  case OPT_KIND_ABORT:
    r = send_option (h, NBD_OPT_ABORT, NULL, 0);
    break;
  case OPT_KIND_STRUCTURED_REPLY:
    r = send_option (h, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
    break;
  case OPT_KIND_EXTENDED_HEADERS:
    r = send_option (h, NBD_OPT_EXTENDED_HEADERS, NULL, 0);
    break;
  case OPT_KIND_STARTTLS:
    r = send_option (h, NBD_OPT_STARTTLS, NULL, 0);
    break;
  case OPT_KIND_LIST_META:
    r = send_meta_context_option (h, NBD_OPT_LIST_META_CONTEXT, &o->queries);
    break;
  case OPT_KIND_SET_META:
    r = send_meta_context_option (h, NBD_OPT_SET_META_CONTEXT, &o->queries);
    break;
  default:
    /* OPT_KIND_AUTO is started by the handshake itself, never here. */
    set_error (EINVAL, "internal error: option kind %d cannot be requested", (int) kind);
    r = -1;
  }
  if (r == -1) {
    /* Nothing was sent: give the closures back to the entry point. */
    h->opt = NULL;
    h->state = STATE_NEGOTIATING;
    if (completion) { *completion = o->completion; o->completion.free = NULL; }
    if (list) { *list = o->list; o->list.free = NULL; }
    if (context) { *context = o->context; o->context.free = NULL; }
    free_option (o);
    return -1;
  }
  /* From here on the option owns the closures: a failure of the
   * connection reaches the caller through the completion callback
   * (which has run by the time nbd_internal_run returns), never as a
   * second report here.
   */
  if (nbd_internal_run (h, false, true) == -1)
    debug (h, "option queued: the connection failed, reported to the completion");
  return 0;
}

static bool
option_finished (struct nbd_handle *h, void *arg)
{
  (void) arg;
  return h->opt == NULL && h->state != STATE_HANDSHAKE;
}

/* Run a blocking option to its end; -1 if the connection was lost. */
static int
wait_option_end (struct nbd_handle *h)
{
  while (!option_finished (h, NULL)) {
    if (h->state == STATE_DEAD || h->state == STATE_CLOSED) {
      if (!nbd_get_error ())
        set_error (ENOTCONN, "the connection was lost");
      return -1;
    }
    if (nbd_unlocked_poll (h, -1) == -1)
      return -1;
  }
  if (h->state == STATE_DEAD) {
    /* The option itself may have succeeded before the connection died
     * (nbd_opt_go: the first receive after it failed): then the death
     * is the error.
     */
    if (h->last_opt_err)
      set_error (h->last_opt_err, "%s",
                 h->last_opt_msg ? h->last_opt_msg : "the connection was lost");
    else
      nbd_internal_report_dead (h);
    return -1;
  }
  return 0;
}

/* Run a blocking option to its end; returns -1 with the option's error. */
static int
wait_option (struct nbd_handle *h)
{
  if (wait_option_end (h) == -1)
    return -1;
  if (h->last_opt_err) {
    set_error (h->last_opt_err, "%s",
               h->last_opt_msg ? h->last_opt_msg : "option failed");
    return -1;
  }
  return 0;
}

/* The blocking form of a counting option: wait for the option started
 * (start is its result) and return how many entries the callback saw.
 */
static int
wait_count (struct nbd_handle *h, int start)
{
  if (start == -1 || wait_option (h) == -1)
    return -1;
  return h->last_opt_count;
}

/* The contexts added with nbd_add_meta_context, as a query list. */
static char **
requested_queries (struct nbd_handle *h)
{
  static char *none[] = { NULL };
  return h->request_meta_contexts.ptr ? h->request_meta_contexts.ptr : none;
}

int
nbd_unlocked_aio_opt_go (struct nbd_handle *h, nbd_completion_callback *completion)
{
  return start_option (h, OPT_KIND_GO, completion, NULL, NULL, NULL);
}

int
nbd_unlocked_opt_go (struct nbd_handle *h)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  if (start_option (h, OPT_KIND_GO, NULL, NULL, NULL, NULL) == -1)
    return -1;
  return wait_option (h);
}

int
nbd_unlocked_aio_opt_info (struct nbd_handle *h, nbd_completion_callback *completion)
{
  return start_option (h, OPT_KIND_INFO, completion, NULL, NULL, NULL);
}

int
nbd_unlocked_opt_info (struct nbd_handle *h)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  if (start_option (h, OPT_KIND_INFO, NULL, NULL, NULL, NULL) == -1)
    return -1;
  return wait_option (h);
}

int
nbd_unlocked_aio_opt_abort (struct nbd_handle *h)
{
  return start_option (h, OPT_KIND_ABORT, NULL, NULL, NULL, NULL);
}

int
nbd_unlocked_opt_abort (struct nbd_handle *h)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  if (start_option (h, OPT_KIND_ABORT, NULL, NULL, NULL, NULL) == -1)
    return -1;
  while (h->state == STATE_HANDSHAKE)
    if (nbd_unlocked_poll (h, -1) == -1)
      return -1;
  return 0;
}

int
nbd_unlocked_aio_opt_list (struct nbd_handle *h, nbd_list_callback *list,
                           nbd_completion_callback *completion)
{
  return start_option (h, OPT_KIND_LIST, completion, list, NULL, NULL);
}

int
nbd_unlocked_opt_list (struct nbd_handle *h, nbd_list_callback *list)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  return wait_count (h, start_option (h, OPT_KIND_LIST, NULL, list, NULL, NULL));
}

/* The blocking form of SR/EH/STARTTLS: true if the server agreed,
 * false if it refused, -1 only if it gave no answer.
 */
static int
opt_bool (struct nbd_handle *h, enum opt_kind kind)
{
  if (start_option (h, kind, NULL, NULL, NULL, NULL) == -1)
    return -1;
  if (wait_option_end (h) == -1)
    return -1;
  return h->last_opt_err == 0 && h->last_opt_result;
}

int
nbd_unlocked_aio_opt_structured_reply (struct nbd_handle *h,
                                       nbd_completion_callback *completion)
{
  return start_option (h, OPT_KIND_STRUCTURED_REPLY, completion, NULL, NULL, NULL);
}

int
nbd_unlocked_opt_structured_reply (struct nbd_handle *h)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  return opt_bool (h, OPT_KIND_STRUCTURED_REPLY);
}

int
nbd_unlocked_aio_opt_extended_headers (struct nbd_handle *h,
                                       nbd_completion_callback *completion)
{
  return start_option (h, OPT_KIND_EXTENDED_HEADERS, completion, NULL, NULL, NULL);
}

int
nbd_unlocked_opt_extended_headers (struct nbd_handle *h)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  return opt_bool (h, OPT_KIND_EXTENDED_HEADERS);
}

int
nbd_unlocked_aio_opt_starttls (struct nbd_handle *h,
                               nbd_completion_callback *completion)
{
  if (!nbd_unlocked_supports_tls (h)) {
    set_error (ENOTSUP, "libnbd was built without TLS support");
    return -1;
  }
  return start_option (h, OPT_KIND_STARTTLS, completion, NULL, NULL, NULL);
}

int
nbd_unlocked_opt_starttls (struct nbd_handle *h)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  if (!nbd_unlocked_supports_tls (h)) {
    set_error (ENOTSUP, "libnbd was built without TLS support");
    return -1;
  }
  return opt_bool (h, OPT_KIND_STARTTLS);
}

int
nbd_unlocked_aio_opt_list_meta_context_queries (struct nbd_handle *h, char **queries,
                                                nbd_context_callback *context,
                                                nbd_completion_callback *completion)
{
  return start_option (h, OPT_KIND_LIST_META, completion, NULL, context, queries);
}

int
nbd_unlocked_aio_opt_list_meta_context (struct nbd_handle *h,
                                        nbd_context_callback *context,
                                        nbd_completion_callback *completion)
{
  return nbd_unlocked_aio_opt_list_meta_context_queries (h, requested_queries (h),
                                                         context, completion);
}

int
nbd_unlocked_opt_list_meta_context_queries (struct nbd_handle *h, char **queries,
                                            nbd_context_callback *context)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  return wait_count (h, nbd_unlocked_aio_opt_list_meta_context_queries (h, queries,
                                                                      context, NULL));
}

int
nbd_unlocked_opt_list_meta_context (struct nbd_handle *h, nbd_context_callback *context)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  return wait_count (h, nbd_unlocked_aio_opt_list_meta_context (h, context, NULL));
}

int
nbd_unlocked_aio_opt_set_meta_context_queries (struct nbd_handle *h, char **queries,
                                               nbd_context_callback *context,
                                               nbd_completion_callback *completion)
{
  return start_option (h, OPT_KIND_SET_META, completion, NULL, context, queries);
}

int
nbd_unlocked_aio_opt_set_meta_context (struct nbd_handle *h,
                                       nbd_context_callback *context,
                                       nbd_completion_callback *completion)
{
  return nbd_unlocked_aio_opt_set_meta_context_queries (h, requested_queries (h),
                                                        context, completion);
}

int
nbd_unlocked_opt_set_meta_context_queries (struct nbd_handle *h, char **queries,
                                           nbd_context_callback *context)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  return wait_count (h, nbd_unlocked_aio_opt_set_meta_context_queries (h, queries,
                                                                      context, NULL));
}

int
nbd_unlocked_opt_set_meta_context (struct nbd_handle *h, nbd_context_callback *context)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  return wait_count (h, nbd_unlocked_aio_opt_set_meta_context (h, context, NULL));
}

/* ---- What the handshake learned ---- */

static int
need_export_info (struct nbd_handle *h)
{
  if (!h->eflags_known) {
    set_error (EINVAL, "the export size and flags are not known yet");
    return -1;
  }
  return 0;
}

int64_t
nbd_unlocked_get_size (struct nbd_handle *h)
{
  if (need_export_info (h) == -1)
    return -1;
  /* As libnbd (CVE-2023-5215): a size the signed result cannot hold is
   * accepted on the wire (requests are bounded against it unsigned) but
   * never returned as a negative number.
   */
  if (h->exportsize > INT64_MAX) {
    set_error (EOVERFLOW, "the server claims an export size of %" PRIu64
               " bytes, which does not fit in the signed result", h->exportsize);
    return -1;
  }
  return (int64_t) h->exportsize;
}

int64_t
nbd_unlocked_get_block_size (struct nbd_handle *h, int size_type)
{
  if (need_export_info (h) == -1)
    return -1;
  switch (size_type) {
  case LIBNBD_SIZE_MINIMUM: return h->block_minimum;
  case LIBNBD_SIZE_PREFERRED: return h->block_preferred;
  case LIBNBD_SIZE_MAXIMUM: return h->block_maximum;
  case LIBNBD_SIZE_PAYLOAD: {
    /* The largest write libnbd sends: the server's maximum clamped to
     * [1M, 64M], 64M when the server said nothing.
     */
    uint64_t max = h->block_maximum ? h->block_maximum : 64 * 1024 * 1024;
    if (max < 1024 * 1024) max = 1024 * 1024;
    if (max > 64 * 1024 * 1024) max = 64 * 1024 * 1024;
    return (int64_t) max;
  }
  }
  set_error (EINVAL, "unknown size type %d", size_type);
  return -1;
}

static int
flag (struct nbd_handle *h, uint16_t bit)
{
  if (need_export_info (h) == -1)
    return -1;
  return (h->eflags & bit) != 0;
}

int nbd_unlocked_is_read_only (struct nbd_handle *h) { return flag (h, NBD_FLAG_READ_ONLY); }
int nbd_unlocked_can_flush (struct nbd_handle *h) { return flag (h, NBD_FLAG_SEND_FLUSH); }
int nbd_unlocked_can_fua (struct nbd_handle *h) { return flag (h, NBD_FLAG_SEND_FUA); }
int nbd_unlocked_is_rotational (struct nbd_handle *h) { return flag (h, NBD_FLAG_ROTATIONAL); }
int nbd_unlocked_can_trim (struct nbd_handle *h) { return flag (h, NBD_FLAG_SEND_TRIM); }
int nbd_unlocked_can_zero (struct nbd_handle *h) { return flag (h, NBD_FLAG_SEND_WRITE_ZEROES); }
int nbd_unlocked_can_fast_zero (struct nbd_handle *h) { return flag (h, NBD_FLAG_SEND_FAST_ZERO); }
int nbd_unlocked_can_multi_conn (struct nbd_handle *h) { return flag (h, NBD_FLAG_CAN_MULTI_CONN); }
int nbd_unlocked_can_cache (struct nbd_handle *h) { return flag (h, NBD_FLAG_SEND_CACHE); }

int
nbd_unlocked_can_df (struct nbd_handle *h)
{
  int r = flag (h, NBD_FLAG_SEND_DF);
  /* DF only means something with structured replies. */
  return r == 1 && !h->sr_negotiated ? 0 : r;
}

int
nbd_unlocked_can_block_status_payload (struct nbd_handle *h)
{
  int r = flag (h, NBD_FLAG_BLOCK_STAT_PAYLOAD);
  return r == 1 && !h->eh_negotiated ? 0 : r;
}

int
nbd_unlocked_can_meta_context (struct nbd_handle *h, const char *name)
{
  /* Nothing requested: a plain no.  Requested: only once negotiated. */
  if (h->request_meta_contexts.len > 0 && !h->meta_valid) {
    set_error (EINVAL, "the requested meta contexts have not been negotiated "
               "yet (nbd_opt_set_meta_context, nbd_opt_info or nbd_opt_go)");
    return -1;
  }
  for (size_t i = 0; i < h->nr_meta_contexts; i++)
    if (strcmp (h->meta_contexts[i].name, name) == 0)
      return 1;
  return 0;
}

const char *
nbd_unlocked_get_protocol (struct nbd_handle *h)
{
  if (!h->protocol) {
    set_error (EINVAL, "the protocol is not known yet");
    return NULL;
  }
  return h->protocol;
}

char *
nbd_unlocked_get_canonical_export_name (struct nbd_handle *h)
{
  if (need_export_info (h) == -1)
    return NULL;
  /* As libnbd: only a name the server reported (NBD_INFO_NAME), never
   * the one asked for standing in for it.
   */
  if (!h->canonical_name) {
    set_error (ENOTSUP, "server did not report a canonical name");
    return NULL;
  }
  return strdup (h->canonical_name);
}

char *
nbd_unlocked_get_export_description (struct nbd_handle *h)
{
  if (need_export_info (h) == -1)
    return NULL;
  if (!h->description) {
    set_error (ENOTSUP, "server did not send a description");
    return NULL;
  }
  return strdup (h->description);
}

int
nbd_unlocked_get_structured_replies_negotiated (struct nbd_handle *h)
{
  return h->sr_negotiated;
}

int
nbd_unlocked_get_extended_headers_negotiated (struct nbd_handle *h)
{
  return h->eh_negotiated;
}

int
nbd_unlocked_get_tls_negotiated (struct nbd_handle *h)
{
  return h->tls_negotiated;
}
