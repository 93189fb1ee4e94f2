/* Option negotiation rules that libnbd programs rely on (issue 7,
 * items 9, 10, 12 and 13), against nbdkit:
 *
 *  - an nbd_aio_opt_* call that took its closures returns 0; a failure
 *    after that (here: the server is gone) reaches the caller only
 *    through the completion callback, which runs once;
 *  - without fixed newstyle every option except go and abort fails
 *    locally with ENOTSUP, sends nothing, and frees the closures once
 *    without calling them (as libnbd 1.14 does);
 *  - nbd_set_export_name with another name forgets the size and flags
 *    learned by nbd_opt_info; the same name keeps them;
 *  - nbd_opt_list_meta_context is sent even without structured replies
 *    (the server decides), and nbd_can_meta_context answers 0 while no
 *    context is requested, fails with EINVAL while requested contexts are
 *    not negotiated (also after connecting with
 *    nbd_set_request_meta_context false).
 *
 * Skips (77) if nbdkit is missing.
 */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libnbd.h>

#include "opt-helpers.h"

#define SIZE 1048576

/* ---- Closures that count ---- */

/* The completion closure (done) and the list or context closure of
 * one request.
 */
struct counts {
  struct completion_data done;
  int aux_calls;
  int aux_frees;
};

static int
list_cb (void *opaque, const char *name, const char *desc)
{
  struct counts *c = opaque;
  (void) name; (void) desc;
  c->aux_calls++;
  return 0;
}

static int
context_cb (void *opaque, const char *name)
{
  struct counts *c = opaque;
  (void) name;
  c->aux_calls++;
  return 0;
}

static void
aux_free (void *opaque)
{
  struct counts *c = opaque;
  c->aux_frees++;
}

static nbd_list_callback
lister (struct counts *c)
{
  return (nbd_list_callback) { .callback = list_cb, .user_data = c,
                               .free = aux_free };
}

static nbd_context_callback
contexts (struct counts *c)
{
  return (nbd_context_callback) { .callback = context_cb, .user_data = c,
                                  .free = aux_free };
}

/* An opt-mode handle connected to sock (NULL on failure, counted). */
static struct nbd_handle *
opt_handle (const char *sock, uint32_t handshake_flags)
{
  struct nbd_handle *h = new_handle ();

  CHECK_EQ (nbd_set_opt_mode (h, true), 0);
  CHECK_EQ (nbd_set_handshake_flags (h, handshake_flags), 0);
  if (connect_or_fail (h, sock, "opt mode") == -1) {
    nbd_close (h);
    return NULL;
  }
  return h;
}

#define ALL_HANDSHAKE_FLAGS \
  (LIBNBD_HANDSHAKE_FLAG_FIXED_NEWSTYLE | LIBNBD_HANDSHAKE_FLAG_NO_ZEROES)

/* ---- Item 9: failures after the closures were taken ---- */

static void
test_server_gone (void)
{
  struct server s;
  struct nbd_handle *h[3];
  struct counts c[3];
  char *q[] = { "base:allocation", NULL };

  if (start_nbdkit (&s, "memory", "1M", NULL) == -1) {
    FAIL ("could not start nbdkit memory");
    return;
  }
  for (int i = 0; i < 3; i++) {
    h[i] = opt_handle (s.sock, ALL_HANDSHAKE_FLAGS);
    if (!h[i]) {
      while (i-- > 0)
        nbd_close (h[i]);
      server_stop (&s);
      return;
    }
    memset (&c[i], 0, sizeof c[i]);
  }
  /* nbdkit waits for open connections on SIGTERM: kill it outright, so
   * its sockets are closed before the options are sent.
   */
  kill (s.pid, SIGKILL);
  waitpid (s.pid, NULL, 0);
  s.pid = 0;

  /* Each call fails to write its option: still 0, and the completion
   * has run once, with the error, and been freed once.
   */
  CHECK_EQ (nbd_aio_opt_info (h[0], completion (&c[0].done)), 0);
  CHECK_EQ (nbd_aio_opt_list (h[1], lister (&c[1]), completion (&c[1].done)), 0);
  CHECK_EQ (nbd_aio_opt_list_meta_context_queries (h[2], q, contexts (&c[2]),
                                                   completion (&c[2].done)), 0);
  for (int i = 0; i < 3; i++) {
    CHECK (c[i].done.calls == 1, "handle %d: completion called %d times", i, c[i].done.calls);
    CHECK (c[i].done.error != 0, "handle %d: completion saw no error", i);
    CHECK (c[i].done.frees == 1, "handle %d: completion freed %d times", i, c[i].done.frees);
    CHECK_EQ (nbd_aio_is_dead (h[i]), 1);
    nbd_close (h[i]);
    CHECK (c[i].done.calls == 1 && c[i].done.frees == 1,
           "handle %d after close: %d calls, %d frees", i, c[i].done.calls, c[i].done.frees);
  }
  CHECK_EQ (c[1].aux_frees, 1);
  CHECK_EQ (c[2].aux_frees, 1);
  server_stop (&s);
}

/* ---- Item 10: a server (here: a client) without fixed newstyle ---- */

/* The aio form failed locally: ENOTSUP, closures freed once, never called. */
static void
check_refused_locally (int r, const char *call, const struct counts *c,
                       bool has_aux)
{
  CHECK (r == -1, "%s returned %d, expected -1", call, r);
  CHECK_ERR (ENOTSUP, call, "fixed newstyle");
  CHECK (c->done.calls == 0, "%s: completion called %d times", call, c->done.calls);
  CHECK (c->done.frees == 1, "%s: completion freed %d times", call, c->done.frees);
  if (has_aux)
    CHECK (c->aux_frees == 1 && c->aux_calls == 0,
           "%s: list/context closure called %d, freed %d times",
           call, c->aux_calls, c->aux_frees);
}

static void
test_not_fixed_newstyle (const char *sock)
{
  struct nbd_handle *h = opt_handle (sock, 0);
  struct counts c;
  char *q[] = { "base:", NULL };
  uint64_t sent;
  char buf[512];
  int tls;

  if (!h) return;
  CHECK_STREQ (nbd_get_protocol (h), "newstyle");
  CHECK_EQ (nbd_aio_is_negotiating (h), 1);
  tls = nbd_supports_tls (h);
  sent = nbd_stats_chunks_sent (h);

#define BLOCKING(call, name)                                           \
  do {                                                                  \
    memset (&c, 0, sizeof c);                                           \
    CHECK_FAILS ((call), ENOTSUP, name, "fixed newstyle");              \
    CHECK_EQ (nbd_aio_is_negotiating (h), 1);                           \
  } while (0)
  BLOCKING (nbd_opt_info (h), "nbd_opt_info");
  BLOCKING (nbd_opt_list (h, lister (&c)), "nbd_opt_list");
  CHECK_EQ (c.aux_frees, 1);
  BLOCKING (nbd_opt_list_meta_context (h, contexts (&c)),
            "nbd_opt_list_meta_context");
  CHECK_EQ (c.aux_frees, 1);
  BLOCKING (nbd_opt_list_meta_context_queries (h, q, contexts (&c)),
            "nbd_opt_list_meta_context_queries");
  BLOCKING (nbd_opt_set_meta_context (h, contexts (&c)),
            "nbd_opt_set_meta_context");
  BLOCKING (nbd_opt_set_meta_context_queries (h, q, contexts (&c)),
            "nbd_opt_set_meta_context_queries");
  BLOCKING (nbd_opt_structured_reply (h), "nbd_opt_structured_reply");
  BLOCKING (nbd_opt_extended_headers (h), "nbd_opt_extended_headers");
  if (tls == 1)
    BLOCKING (nbd_opt_starttls (h), "nbd_opt_starttls");
#undef BLOCKING

#define AIO(call, name, has_aux)                                        \
  do {                                                                  \
    memset (&c, 0, sizeof c);                                           \
    check_refused_locally ((call), name, &c, has_aux);                  \
    CHECK_EQ (nbd_aio_is_negotiating (h), 1);                           \
  } while (0)
  AIO (nbd_aio_opt_info (h, completion (&c.done)), "nbd_aio_opt_info", false);
  AIO (nbd_aio_opt_list (h, lister (&c), completion (&c.done)),
       "nbd_aio_opt_list", true);
  AIO (nbd_aio_opt_list_meta_context (h, contexts (&c), completion (&c.done)),
       "nbd_aio_opt_list_meta_context", true);
  AIO (nbd_aio_opt_list_meta_context_queries (h, q, contexts (&c),
                                              completion (&c.done)),
       "nbd_aio_opt_list_meta_context_queries", true);
  AIO (nbd_aio_opt_set_meta_context (h, contexts (&c), completion (&c.done)),
       "nbd_aio_opt_set_meta_context", true);
  AIO (nbd_aio_opt_set_meta_context_queries (h, q, contexts (&c),
                                             completion (&c.done)),
       "nbd_aio_opt_set_meta_context_queries", true);
  AIO (nbd_aio_opt_structured_reply (h, completion (&c.done)),
       "nbd_aio_opt_structured_reply", false);
  AIO (nbd_aio_opt_extended_headers (h, completion (&c.done)),
       "nbd_aio_opt_extended_headers", false);
  if (tls == 1)
    AIO (nbd_aio_opt_starttls (h, completion (&c.done)),
         "nbd_aio_opt_starttls", false);
#undef AIO

  /* Nothing went to the server, and nothing is pending. */
  CHECK_EQ (nbd_stats_chunks_sent (h), sent);
  CHECK_EQ (nbd_aio_is_connecting (h), 0);

  /* go still works (NBD_OPT_EXPORT_NAME), and the export is usable. */
  CHECK_EQ (nbd_set_export_name (h, "b"), 0);
  CHECK_EQ (nbd_opt_go (h), 0);
  CHECK_EQ (nbd_aio_is_ready (h), 1);
  CHECK_EQ (nbd_get_size (h), 2 * SIZE);
  CHECK_EQ (nbd_pread (h, buf, sizeof buf, 0, 0), 0);
  CHECK_EQ (nbd_shutdown (h, 0), 0);
  nbd_close (h);

  /* The aio go, and abort, are still allowed. */
  h = opt_handle (sock, 0);
  if (!h) return;
  memset (&c, 0, sizeof c);
  CHECK_EQ (nbd_set_export_name (h, "a"), 0);
  CHECK_EQ (nbd_aio_opt_go (h, completion (&c.done)), 0);
  wait_not_connecting (h);
  CHECK (c.done.calls == 1 && c.done.error == 0 && c.done.frees == 1,
         "aio_opt_go: %d calls, error %d, %d frees", c.done.calls, c.done.error, c.done.frees);
  CHECK_EQ (nbd_get_size (h), SIZE);
  nbd_close (h);

  h = opt_handle (sock, 0);
  if (!h) return;
  CHECK_EQ (nbd_opt_abort (h), 0);
  CHECK_EQ (nbd_aio_is_closed (h), 1);
  nbd_close (h);
}

/* ---- Item 12: a new export name forgets the old export ---- */

static void
test_export_name_forgets (const char *sock)
{
  struct nbd_handle *h = opt_handle (sock, ALL_HANDSHAKE_FLAGS);
  char *name;

  if (!h) return;
  CHECK_EQ (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
  CHECK_EQ (nbd_set_export_name (h, "a"), 0);
  CHECK_EQ (nbd_opt_info (h), 0);
  CHECK_EQ (nbd_get_size (h), SIZE);
  CHECK_EQ (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 1);

  /* The same name: nothing changes. */
  CHECK_EQ (nbd_set_export_name (h, "a"), 0);
  CHECK_EQ (nbd_get_size (h), SIZE);
  CHECK_EQ (nbd_can_flush (h), 1);
  CHECK_EQ (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 1);

  /* Another name: what was learned about "a" is gone. */
  CHECK_EQ (nbd_set_export_name (h, "b"), 0);
  name = nbd_get_export_name (h);
  CHECK_STREQ (name, "b");
  free (name);
  CHECK_FAILS (nbd_get_size (h), EINVAL, "nbd_get_size", NULL);
  CHECK_FAILS (nbd_is_read_only (h), EINVAL, "nbd_is_read_only", NULL);
  CHECK_FAILS (nbd_can_flush (h), EINVAL, "nbd_can_flush", NULL);
  CHECK_FAILS (nbd_get_block_size (h, LIBNBD_SIZE_PREFERRED), EINVAL,
               "nbd_get_block_size", NULL);
  CHECK_FAILS (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION),
               EINVAL, "nbd_can_meta_context", NULL);

  /* And info on "b" learns "b". */
  CHECK_EQ (nbd_opt_info (h), 0);
  CHECK_EQ (nbd_get_size (h), 2 * SIZE);
  CHECK_EQ (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 1);
  CHECK_EQ (nbd_opt_go (h), 0);
  CHECK_EQ (nbd_get_size (h), 2 * SIZE);
  nbd_close (h);
}

/* ---- Item 13: meta contexts without structured replies, and
 * nbd_can_meta_context before negotiation ----
 */

static void
test_meta_rules (const char *sock)
{
  struct nbd_handle *h = new_handle ();
  struct counts c;
  uint64_t sent;

  /* No structured replies requested: listing is still sent. */
  CHECK_EQ (nbd_set_opt_mode (h, true), 0);
  CHECK_EQ (nbd_set_request_structured_replies (h, false), 0);
  CHECK_EQ (nbd_set_request_extended_headers (h, false), 0);
  if (connect_or_fail (h, sock, "opt mode, no structured replies") == 0) {
    CHECK_EQ (nbd_get_structured_replies_negotiated (h), 0);
    CHECK_EQ (nbd_set_export_name (h, "a"), 0);
    sent = nbd_stats_chunks_sent (h);
    memset (&c, 0, sizeof c);
    /* nbdkit refuses to list without structured replies; what matters
     * is that it was asked and that the refusal is its own.
     */
    {
      int r = nbd_opt_list_meta_context (h, contexts (&c));
      CHECK (r >= 0 || strstr (nbd_get_error (), "server") != NULL,
             "opt_list_meta_context: %d (%s)", r, nbd_get_error ());
      CHECK (r == -1 || r == c.aux_calls, "returned %d, callback saw %d",
             r, c.aux_calls);
    }
    CHECK_EQ (nbd_stats_chunks_sent (h), sent + 1);
    CHECK_EQ (c.aux_frees, 1);
    CHECK_EQ (nbd_aio_is_negotiating (h), 1);
    /* The aio form too: its completion sees the server's answer. */
    memset (&c, 0, sizeof c);
    CHECK_EQ (nbd_aio_opt_list_meta_context (h, contexts (&c),
                                             completion (&c.done)), 0);
    wait_not_connecting (h);
    CHECK_EQ (nbd_stats_chunks_sent (h), sent + 2);
    CHECK (c.done.calls == 1 && c.done.frees == 1 && c.aux_frees == 1,
           "aio_opt_list_meta_context: %d calls, %d frees, %d context frees",
           c.done.calls, c.done.frees, c.aux_frees);
    CHECK_EQ (nbd_aio_is_negotiating (h), 1);
    /* The connection is still in step with the server. */
    CHECK_EQ (nbd_opt_go (h), 0);
    CHECK_EQ (nbd_get_size (h), SIZE);
  }
  nbd_close (h);

  /* Opt mode before info/go: 0 while nothing is requested, EINVAL once
   * a context is requested but not negotiated.
   */
  h = opt_handle (sock, ALL_HANDSHAKE_FLAGS);
  if (h) {
    CHECK_EQ (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
    CHECK_EQ (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
    CHECK_FAILS (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION),
                 EINVAL, "nbd_can_meta_context", NULL);
    CHECK_EQ (nbd_clear_meta_contexts (h), 0);
    CHECK_EQ (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
    nbd_close (h);
  }

  /* Connected with nbd_set_request_meta_context (false): the requested
   * context was never negotiated.
   */
  h = new_handle ();
  CHECK_EQ (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
  CHECK_EQ (nbd_set_request_meta_context (h, false), 0);
  if (connect_or_fail (h, sock, "request_meta_context false") == 0) {
    CHECK_EQ (nbd_get_structured_replies_negotiated (h), 1);
    CHECK_FAILS (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION),
                 EINVAL, "nbd_can_meta_context", NULL);
  }
  nbd_close (h);

  /* With the default (true) it is negotiated. */
  h = new_handle ();
  CHECK_EQ (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
  if (connect_or_fail (h, sock, "request_meta_context true") == 0) {
    CHECK_EQ (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 1);
    CHECK_EQ (nbd_can_meta_context (h, "nosuch:context"), 0);
  }
  nbd_close (h);

  /* Requested, but the server has no structured replies: the request
   * cannot be made, and after go the answer is a plain no.
   */
  h = new_handle ();
  CHECK_EQ (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
  CHECK_EQ (nbd_set_request_structured_replies (h, false), 0);
  CHECK_EQ (nbd_set_request_extended_headers (h, false), 0);
  if (connect_or_fail (h, sock, "no structured replies, context") == 0)
    CHECK_EQ (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
  nbd_close (h);
}

int
main (void)
{
  struct server s;

  alarm (120);
  start_two_exports_or_exit (&s, __FILE__);
  test_server_gone ();
  test_not_fixed_newstyle (s.sock);
  test_export_name_forgets (s.sock);
  test_meta_rules (s.sock);
  server_stop (&s);
  return check_status ("test-opt-negotiation");
}
