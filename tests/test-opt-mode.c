/* Option mode against nbdkit: nbd_set_opt_mode, nbd_opt_list,
 * nbd_opt_info, nbd_opt_go, nbd_opt_abort, the meta context options,
 * nbd_opt_structured_reply, nbd_opt_extended_headers, the aio forms with
 * completion callbacks, and calls made in the wrong state.
 * Skips (77) if nbdkit is missing.
 */
#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libnbd.h>

#include "opt-helpers.h"

#define SIZE 1048576

/* ---- Callbacks ---- */

struct list_data {
  int calls;
  char names[8][64];
  char descs[8][64];
  int frees;
};

static int
list_cb (void *opaque, const char *name, const char *desc)
{
  struct list_data *d = opaque;
  if (d->calls < 8) {
    snprintf (d->names[d->calls], 64, "%s", name);
    snprintf (d->descs[d->calls], 64, "%s", desc);
  }
  d->calls++;
  return 0;
}

struct ctx_data {
  int calls;
  char names[8][64];
  int frees;
};

static void
ctx_free (void *opaque)
{
  struct ctx_data *d = opaque;
  d->frees++;
}

static int
ctx_cb (void *opaque, const char *name)
{
  struct ctx_data *d = opaque;
  if (d->calls < 8)
    snprintf (d->names[d->calls], 64, "%s", name);
  d->calls++;
  return 0;
}

/* A context closure counting into *d, which is cleared first. */
static nbd_context_callback
ctx_closure (struct ctx_data *d)
{
  memset (d, 0, sizeof *d);
  return (nbd_context_callback) { .callback = ctx_cb, .user_data = d,
                                  .free = ctx_free };
}

static void
free_count_list (void *opaque)
{
  struct list_data *d = opaque;
  d->frees++;
}

static struct nbd_handle *
opt_handle (const char *sock)
{
  struct nbd_handle *h = new_handle ();
  CHECK_EQ (nbd_set_opt_mode (h, true), 0);
  CHECK_EQ (nbd_get_opt_mode (h), 1);
  if (connect_or_fail (h, sock, "opt mode") == -1) {
    nbd_close (h);
    return NULL;
  }
  return h;
}

/* ---- Tests ---- */

/* Calls in the wrong state. */
static void
test_wrong_state (const char *sock)
{
  struct nbd_handle *h = new_handle ();
  struct list_data ld = { 0 };

  /* Created handle: ENOTCONN. */
  CHECK_FAILS (nbd_opt_go (h), ENOTCONN, "nbd_opt_go", NULL);
  CHECK_FAILS (nbd_opt_abort (h), ENOTCONN, "nbd_opt_abort", NULL);
  CHECK_FAILS (nbd_opt_info (h), ENOTCONN, "nbd_opt_info", NULL);
  CHECK_FAILS (nbd_opt_list (h, (nbd_list_callback) { .callback = list_cb,
                                                      .user_data = &ld }),
               ENOTCONN, "nbd_opt_list", NULL);
  CHECK_FAILS (nbd_get_size (h), ENOTCONN, "nbd_get_size", NULL);
  CHECK_EQ (ld.calls, 0);

  /* Connected without opt mode: EINVAL, the message names the state. */
  if (connect_or_fail (h, sock, "no opt mode") == 0) {
    CHECK_FAILS (nbd_opt_go (h), EINVAL, "nbd_opt_go", "READY");
    CHECK_ERR (EINVAL, "nbd_opt_go", "negotiating");
    CHECK_FAILS (nbd_opt_info (h), EINVAL, "nbd_opt_info", "READY");
    CHECK_FAILS (nbd_opt_abort (h), EINVAL, "nbd_opt_abort", "READY");
    CHECK_FAILS (nbd_opt_structured_reply (h), EINVAL,
                 "nbd_opt_structured_reply", "READY");
    CHECK_FAILS (nbd_set_opt_mode (h, false), EINVAL, "nbd_set_opt_mode",
                 NULL);
    CHECK_EQ (nbd_aio_is_ready (h), 1);
  }
  nbd_close (h);
}

/* The basic flow: negotiating, list, info, go. */
static void
test_list_info_go (const char *sock)
{
  struct nbd_handle *h = opt_handle (sock);
  struct list_data ld = { 0 };
  char buf[512];
  char *str;

  if (!h) return;
  CHECK_EQ (nbd_aio_is_negotiating (h), 1);
  CHECK_EQ (nbd_aio_is_connecting (h), 0);
  CHECK_EQ (nbd_aio_is_ready (h), 0);
  CHECK (strncmp (nbd_connection_state (h), "NEGOTIATING", 11) == 0,
         "connection_state: %s", nbd_connection_state (h));
  CHECK_STREQ (nbd_get_protocol (h), "newstyle-fixed");
  /* No export info yet. */
  CHECK_FAILS (nbd_get_size (h), EINVAL, "nbd_get_size", NULL);
  CHECK_FAILS (nbd_is_read_only (h), EINVAL, "nbd_is_read_only", NULL);
  CHECK_FAILS (nbd_pread (h, buf, sizeof buf, 0, 0), EINVAL, "nbd_pread",
               "NEGOTIATING");

  /* opt_list: exports a and b with the fixed description. */
  CHECK_EQ (nbd_opt_list (h, (nbd_list_callback) { .callback = list_cb,
                                                   .user_data = &ld }), 2);
  CHECK_EQ (ld.calls, 2);
  CHECK_STREQ (ld.names[0], "a");
  CHECK_STREQ (ld.names[1], "b");
  CHECK_STREQ (ld.descs[0], "desc");
  CHECK_STREQ (ld.descs[1], "desc-b");
  CHECK_EQ (nbd_aio_is_negotiating (h), 1);

  /* opt_info on a and b (b is 2M). */
  CHECK_EQ (nbd_set_export_name (h, "a"), 0);
  CHECK_EQ (nbd_opt_info (h), 0);
  CHECK_EQ (nbd_aio_is_negotiating (h), 1);
  CHECK_EQ (nbd_get_size (h), SIZE);
  CHECK_EQ (nbd_is_read_only (h), 0);
  CHECK_EQ (nbd_can_flush (h), 1);

  /* opt_info on an unknown export: ENOENT, still negotiating, and the
   * previous export's details are gone.
   */
  CHECK_EQ (nbd_set_export_name (h, "nosuch"), 0);
  CHECK_FAILS (nbd_opt_info (h), ENOENT, "nbd_opt_info", NULL);
  CHECK_EQ (nbd_aio_is_negotiating (h), 1);
  CHECK_FAILS (nbd_get_size (h), EINVAL, "nbd_get_size", NULL);

  /* opt_go on an unknown export: ENOENT, still negotiating. */
  CHECK_FAILS (nbd_opt_go (h), ENOENT, "nbd_opt_go", NULL);
  CHECK_EQ (nbd_aio_is_negotiating (h), 1);

  /* Full info in negotiating state. */
  CHECK_EQ (nbd_set_export_name (h, "a"), 0);
  CHECK_EQ (nbd_set_full_info (h, true), 0);
  CHECK_EQ (nbd_opt_info (h), 0);
  str = nbd_get_export_description (h);
  CHECK_STREQ (str, "desc");
  free (str);
  str = nbd_get_canonical_export_name (h);
  CHECK_STREQ (str, "a");
  free (str);

  /* opt_go succeeds: ready, and opt calls are no longer allowed. */
  CHECK_EQ (nbd_opt_go (h), 0);
  CHECK_EQ (nbd_aio_is_ready (h), 1);
  CHECK_EQ (nbd_aio_is_negotiating (h), 0);
  CHECK_EQ (nbd_get_size (h), SIZE);
  CHECK_EQ (nbd_pread (h, buf, sizeof buf, 0, 0), 0);
  CHECK_FAILS (nbd_opt_go (h), EINVAL, "nbd_opt_go", "READY");
  CHECK_FAILS (nbd_opt_list (h, (nbd_list_callback) { .callback = list_cb,
                                                      .user_data = &ld }),
               EINVAL, "nbd_opt_list", NULL);
  CHECK_EQ (nbd_shutdown (h, 0), 0);
  nbd_close (h);
}

/* opt_abort closes; nbd_shutdown while negotiating does too. */
static void
test_abort (const char *sock)
{
  struct nbd_handle *h = opt_handle (sock);

  if (!h) return;
  CHECK_EQ (nbd_opt_abort (h), 0);
  CHECK_EQ (nbd_aio_is_closed (h), 1);
  CHECK_EQ (nbd_aio_is_negotiating (h), 0);
  CHECK_FAILS (nbd_opt_go (h), EINVAL, "nbd_opt_go", "CLOSED");
  CHECK_FAILS (nbd_opt_abort (h), EINVAL, "nbd_opt_abort", NULL);
  nbd_close (h);

  h = opt_handle (sock);
  if (!h) return;
  CHECK_EQ (nbd_shutdown (h, 0), 0);
  CHECK_EQ (nbd_aio_is_closed (h), 1);
  nbd_close (h);

  /* aio_opt_abort: done once no longer connecting. */
  h = opt_handle (sock);
  if (!h) return;
  CHECK_EQ (nbd_aio_opt_abort (h), 0);
  wait_not_connecting (h);
  CHECK_EQ (nbd_aio_is_closed (h), 1);
  nbd_close (h);
}

/* Meta context negotiation in opt mode. */
static void
test_meta (const char *sock)
{
  struct nbd_handle *h = opt_handle (sock);
  struct ctx_data cd;
  char *base_q[] = { "base:", NULL };
  char *none_q[] = { "nosuch:", NULL };
  char *set_q[] = { "base:allocation", "nosuch:context", NULL };

  if (!h) return;
  CHECK_EQ (nbd_set_export_name (h, "a"), 0);

  /* Empty query list: the server lists all it has. */
  CHECK_EQ (nbd_opt_list_meta_context (h, ctx_closure (&cd)), 1);
  CHECK_EQ (cd.calls, 1);
  CHECK_STREQ (cd.names[0], "base:allocation");
  CHECK_EQ (cd.frees, 1);

  CHECK_EQ (nbd_opt_list_meta_context_queries (h, base_q,
              ctx_closure (&cd)), 1);
  CHECK_EQ (cd.calls, 1);
  CHECK_STREQ (cd.names[0], "base:allocation");
  CHECK_EQ (cd.frees, 1);

  CHECK_EQ (nbd_opt_list_meta_context_queries (h, none_q,
              ctx_closure (&cd)), 0);
  CHECK_EQ (cd.calls, 0);
  CHECK_EQ (cd.frees, 1);

  /* Listing does not select: can_meta_context still has no answer... */
  /* ...and selecting the handle's own (empty) list selects nothing. */

  /* Requested but not yet negotiated: EINVAL. */
  CHECK_EQ (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
  CHECK_FAILS (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION),
               EINVAL, "nbd_can_meta_context", NULL);

  /* Explicit set: one of two accepted. */
  CHECK_EQ (nbd_opt_set_meta_context_queries (h, set_q,
              ctx_closure (&cd)), 1);
  CHECK_EQ (cd.calls, 1);
  CHECK_STREQ (cd.names[0], "base:allocation");
  CHECK_EQ (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 1);
  CHECK_EQ (nbd_can_meta_context (h, "nosuch:context"), 0);

  /* Implicit list (the handle's): base:allocation. */
  CHECK_EQ (nbd_opt_set_meta_context (h, ctx_closure (&cd)), 1);
  CHECK_EQ (cd.calls, 1);
  CHECK_EQ (cd.frees, 1);

  CHECK_EQ (nbd_set_request_meta_context (h, false), 0);
  CHECK_EQ (nbd_opt_go (h), 0);
  CHECK_EQ (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 1);
  nbd_close (h);

  /* opt_go negotiates the handle's contexts by itself. */
  h = new_handle ();
  CHECK_EQ (nbd_set_opt_mode (h, true), 0);
  CHECK_EQ (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
  CHECK_EQ (nbd_set_export_name (h, "b"), 0);
  if (connect_or_fail (h, sock, "opt mode, go with contexts") == 0) {
    CHECK_EQ (nbd_opt_go (h), 0);
    CHECK_EQ (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 1);
    CHECK_EQ (nbd_get_size (h), 2 * SIZE);
  }
  nbd_close (h);
}

/* Structured replies and extended headers by hand. */
static void
test_sr_eh (const char *sock)
{
  struct nbd_handle *h = new_handle ();
  struct ctx_data cd = { 0 };

  CHECK_EQ (nbd_set_opt_mode (h, true), 0);
  CHECK_EQ (nbd_set_request_structured_replies (h, false), 0);
#ifdef LIBNBD_HAVE_NBD_SET_REQUEST_EXTENDED_HEADERS
  CHECK_EQ (nbd_set_request_extended_headers (h, false), 0);
#endif
  if (connect_or_fail (h, sock, "opt mode, no sr") == -1) {
    nbd_close (h);
    return;
  }
  CHECK_EQ (nbd_get_structured_replies_negotiated (h), 0);
  /* Listing without structured replies is the server's call (nbdkit
   * 1.32 answers); test-opt-negotiation checks that it is sent.
   */
  {
    int r = nbd_opt_list_meta_context (h, (nbd_context_callback) {
        .callback = ctx_cb, .user_data = &cd });
    CHECK (r == -1 || r == cd.calls, "opt_list_meta_context: %d, %d calls",
           r, cd.calls);
  }
  CHECK_EQ (nbd_aio_is_negotiating (h), 1);
  memset (&cd, 0, sizeof cd);

#ifdef LIBNBD_HAVE_NBD_OPT_EXTENDED_HEADERS
  /* nbdkit 1.32 does not know NBD_OPT_EXTENDED_HEADERS. */
  CHECK_EQ (nbd_opt_extended_headers (h), 0);
  CHECK_EQ (nbd_get_extended_headers_negotiated (h), 0);
  CHECK_EQ (nbd_aio_is_negotiating (h), 1);
#endif

  CHECK_EQ (nbd_opt_structured_reply (h), 1);
  CHECK_EQ (nbd_get_structured_replies_negotiated (h), 1);
  /* Again: nbdkit 1.32 acknowledges the duplicate (other servers may
   * refuse it: false); either way it stays negotiated.
   */
  {
    int r = nbd_opt_structured_reply (h);
    CHECK (r == 0 || r == 1, "second opt_structured_reply: %d (%s)", r,
           nbd_get_error ());
  }
  CHECK_EQ (nbd_get_structured_replies_negotiated (h), 1);
  CHECK_EQ (nbd_aio_is_negotiating (h), 1);

  /* Now meta contexts work. */
  CHECK_EQ (nbd_set_export_name (h, "a"), 0);
  CHECK_EQ (nbd_opt_list_meta_context (h, (nbd_context_callback) {
        .callback = ctx_cb, .user_data = &cd }), 1);
  CHECK_EQ (nbd_opt_go (h), 0);
  CHECK_EQ (nbd_get_structured_replies_negotiated (h), 1);
  CHECK_EQ (nbd_can_df (h), 1);
  nbd_close (h);

  /* Without opt_structured_reply, go leaves simple replies. */
  h = new_handle ();
  CHECK_EQ (nbd_set_opt_mode (h, true), 0);
  CHECK_EQ (nbd_set_request_structured_replies (h, false), 0);
  CHECK_EQ (nbd_set_export_name (h, "a"), 0);
  if (connect_or_fail (h, sock, "opt mode, no sr, go") == 0) {
    CHECK_EQ (nbd_opt_go (h), 0);
    CHECK_EQ (nbd_get_structured_replies_negotiated (h), 0);
    CHECK_EQ (nbd_can_df (h), 0);
  }
  nbd_close (h);
}

/* Run the option to its end: its completion was called once with
 * error and freed once.
 */
static void
check_completed (struct nbd_handle *h, const struct completion_data *c,
                 int error)
{
  wait_not_connecting (h);
  CHECK_EQ (c->calls, 1);
  CHECK_EQ (c->error, error);
  CHECK_EQ (c->frees, 1);
}

/* The aio forms with completion callbacks. */
static void
test_aio (const char *sock)
{
  struct nbd_handle *h = opt_handle (sock);
  struct completion_data c;
  struct list_data ld = { 0 };
  struct ctx_data cd = { 0 };
  int list_frees = 0;

  if (!h) return;

  /* aio_opt_list */
  CHECK_EQ (nbd_aio_opt_list (h,
              (nbd_list_callback) { .callback = list_cb, .user_data = &ld,
                                    .free = free_count_list },
              completion (&c)), 0);
  /* .user_data of the list closure is &ld, so its free counts nowhere
   * useful: use a separate request for free counting below.
   */
  check_completed (h, &c, 0);
  CHECK_EQ (nbd_aio_is_negotiating (h), 1);
  CHECK_EQ (ld.calls, 2);
  CHECK_EQ (ld.frees, 1);

  /* aio_opt_info, success. */
  CHECK_EQ (nbd_set_export_name (h, "b"), 0);
  CHECK_EQ (nbd_aio_opt_info (h, completion (&c)), 0);
  check_completed (h, &c, 0);
  CHECK_EQ (nbd_aio_is_negotiating (h), 1);
  CHECK_EQ (nbd_get_size (h), 2 * SIZE);

  /* aio_opt_info, unknown export: *error is ENOENT. */
  CHECK_EQ (nbd_set_export_name (h, "nosuch"), 0);
  CHECK_EQ (nbd_aio_opt_info (h, completion (&c)), 0);
  check_completed (h, &c, ENOENT);
  CHECK_EQ (nbd_aio_is_negotiating (h), 1);

  /* aio_opt_list_meta_context_queries: context closure freed once. */
  CHECK_EQ (nbd_set_export_name (h, "a"), 0);
  {
    char *q[] = { "base:", NULL };
    CHECK_EQ (nbd_aio_opt_list_meta_context_queries (h, q,
                (nbd_context_callback) { .callback = ctx_cb,
                                         .user_data = &cd },
                completion (&c)), 0);
  }
  check_completed (h, &c, 0);
  CHECK_EQ (cd.calls, 1);

  /* aio_opt_set_meta_context_queries, counting frees of the context. */
  {
    char *q[] = { "base:allocation", NULL };
    CHECK_EQ (nbd_aio_opt_set_meta_context_queries (h, q,
                (nbd_context_callback) { .callback = ctx_cb,
                                         .user_data = &cd },
                completion (&c)), 0);
    check_completed (h, &c, 0);
  }
  /* A list closure with only .free: not NULL (as libnbd), so the option
   * runs; the closure is freed once, when the option completes.
   */
  {
    struct completion_data lc;
    CHECK_EQ (nbd_aio_opt_list (h,
                (nbd_list_callback) { .callback = NULL, .user_data = &list_frees,
                                      .free = count_free },
                completion (&lc)), 0);
    /* (nbdkit refuses NBD_OPT_LIST at this point: the result does not
     * matter here, the closures' lifetimes do.)
     */
    wait_not_connecting (h);
    CHECK_EQ (lc.calls, 1);
    CHECK_EQ (lc.frees, 1);
    CHECK_EQ (list_frees, 1);
  }

  /* aio_opt_structured_reply: a duplicate, completes without error. */
  CHECK_EQ (nbd_aio_opt_structured_reply (h, completion (&c)), 0);
  wait_not_connecting (h);
  CHECK_EQ (c.calls, 1);
  CHECK_EQ (c.frees, 1);
  CHECK_EQ (nbd_get_structured_replies_negotiated (h), 1);

  /* aio_opt_go, unknown export: *error ENOENT, still negotiating. */
  CHECK_EQ (nbd_set_export_name (h, "nosuch"), 0);
  CHECK_EQ (nbd_aio_opt_go (h, completion (&c)), 0);
  check_completed (h, &c, ENOENT);
  CHECK_EQ (nbd_aio_is_negotiating (h), 1);

  /* aio_opt_go, success: ready. */
  CHECK_EQ (nbd_set_export_name (h, "a"), 0);
  CHECK_EQ (nbd_aio_opt_go (h, completion (&c)), 0);
  check_completed (h, &c, 0);
  CHECK_EQ (nbd_aio_is_ready (h), 1);
  CHECK_EQ (nbd_get_size (h), SIZE);

  /* In the wrong state the completion closure is freed, never called. */
  CHECK_FAILS (nbd_aio_opt_info (h, completion (&c)),
               EINVAL, "nbd_aio_opt_info", "READY");
  CHECK_EQ (c.calls, 0);
  CHECK_EQ (c.frees, 1);
  nbd_close (h);

  /* Closing the handle with an option in flight frees the closures. */
  h = opt_handle (sock);
  if (!h) return;
  CHECK_EQ (nbd_aio_opt_list (h,
              (nbd_list_callback) { .callback = list_cb, .user_data = &ld },
              completion (&c)), 0);
  nbd_close (h);
  CHECK_EQ (c.frees, 1);
  CHECK (c.calls <= 1, "completion called %d times", c.calls);
}

int
main (void)
{
  struct server s;

  alarm (120);
  start_two_exports_or_exit (&s, __FILE__);
  test_wrong_state (s.sock);
  test_list_info_go (s.sock);
  test_abort (s.sock);
  test_meta (s.sock);
  test_sr_eh (s.sock);
  test_aio (s.sock);
  server_stop (&s);
  return check_status ("test-opt-mode");
}
