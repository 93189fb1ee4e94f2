/* Conformance probe: closures (issue 7 items 6, 7, 8).
 *
 * When .free runs (at retirement, not at completion), the order of the
 * callbacks, closures with only .free, and what a callback may call on
 * its own handle.
 */
#include <config.h>

#include "probe.h"

static struct server srv;

static struct nbd_handle *
connected (void)
{
  struct nbd_handle *h = new_handle ();
  step ("connect");
  if (nbd_connect_unix (h, srv.sock) == -1)
    probe_fail ("connect_unix: %s", nbd_get_error ());
  return h;
}

/* A log of callback events, in order: "chunk", "done", "free:chunk"... */
struct events {
  char log[512];
  int frees;
  int frees_seen_by_completion;
  int retire;                   /* what the completion callback returns */
};

static void
note (struct events *e, const char *what)
{
  size_t n = strlen (e->log);
  snprintf (e->log + n, sizeof e->log - n, "%s%s", n ? "," : "", what);
}

static int
on_chunk (void *ud, const void *subbuf, size_t count, uint64_t offset,
          unsigned status, int *error)
{
  (void) subbuf; (void) count; (void) offset; (void) status; (void) error;
  note (ud, "chunk");
  return 0;
}

static int
on_done (void *ud, int *error)
{
  struct events *e = ud;
  (void) error;
  note (e, "done");
  e->frees_seen_by_completion = e->frees;
  return e->retire;
}

static void
on_free_chunk (void *ud)
{
  struct events *e = ud;
  note (e, "free:chunk");
  e->frees++;
}

static void
on_free_done (void *ud)
{
  struct events *e = ud;
  note (e, "free:done");
  e->frees++;
}

/* Polls until cookie shows as completed (not retired). */
static void
wait_completed (struct nbd_handle *h, int64_t cookie)
{
  while (nbd_aio_peek_command_completed (h) != cookie)
    if (nbd_poll (h, 2000) == -1)
      probe_fail ("poll: %s", nbd_get_error ());
}

/* Item 7: "free" runs when the command is retired. */
static void
free_at_retirement (void)
{
  struct nbd_handle *h = connected ();
  static char buf[8192];
  struct events e = { .retire = 0 };
  nbd_chunk_callback chunk = { .callback = on_chunk, .user_data = &e,
                               .free = on_free_chunk };
  nbd_completion_callback done = { .callback = on_done, .user_data = &e,
                                   .free = on_free_done };
  int64_t c;

  step ("keep: aio_pread_structured");
  c = nbd_aio_pread_structured (h, buf, sizeof buf, 0, chunk, done, 0);
  wait_completed (h, c);
  say ("keep: frees seen inside completion", "%d", e.frees_seen_by_completion);
  say ("keep: frees once completed, not retired", "%d", e.frees);
  say ("keep: command_completed", "%s", rv (nbd_aio_command_completed (h, c)));
  say ("keep: events", "%s", e.log);
  say ("keep: command_completed again", "%s", rv (nbd_aio_command_completed (h, c)));

  /* The completion callback retires it itself by returning 1. */
  {
    struct events e2 = { .retire = 1 };
    chunk.user_data = done.user_data = &e2;
    step ("retire: aio_pread_structured");
    c = nbd_aio_pread_structured (h, buf, sizeof buf, 0, chunk, done, 0);
    while (e2.frees < 2 && nbd_aio_in_flight (h) > 0)
      nbd_poll (h, 2000);
    nbd_poll (h, 0);
    say ("retire: events", "%s", e2.log);
    say ("retire: command_completed", "%s", rv (nbd_aio_command_completed (h, c)));
  }

  /* Completed, never retired: nbd_close retires it. */
  {
    struct events e3 = { .retire = 0 };
    done.user_data = &e3;
    step ("close: aio_pread");
    c = nbd_aio_pread (h, buf, 512, 0, done, 0);
    wait_completed (h, c);
    say ("close: frees before nbd_close", "%d", e3.frees);
    nbd_close (h);
    say ("close: events", "%s", e3.log);
  }
}

/* Item 8: a closure with only .free is not a NULL closure. */
static void
free_only_closures (void)
{
  struct nbd_handle *h = connected ();
  static char buf[512];
  struct events e = { 0 };
  nbd_chunk_callback free_only = { .callback = NULL, .user_data = &e,
                                   .free = on_free_chunk };
  int64_t r;

  step ("free-only chunk, bad offset");
  r = nbd_aio_pread_structured (h, buf, sizeof buf, 4 << 20, free_only,
                                NBD_NULL_COMPLETION, 0);
  say ("free-only chunk, offset past the end", "%s frees %d", rv (r), e.frees);

  e.frees = 0;
  step ("NULL chunk");
  r = nbd_aio_pread_structured (h, buf, sizeof buf, 0,
                                (nbd_chunk_callback) { 0 },
                                NBD_NULL_COMPLETION, 0);
  say ("all-NULL chunk closure", "%s", rv (r));

  /* An optional completion with only .free: a freeing action. */
  {
    struct events e2 = { 0 };
    nbd_completion_callback free_done = { .callback = NULL, .user_data = &e2,
                                          .free = on_free_done };
    step ("free-only completion");
    r = nbd_aio_pread (h, buf, sizeof buf, 0, free_done, 0);
    say ("free-only completion: aio_pread", "%s", r > 0 ? "cookie" : rv (r));
    while (nbd_aio_in_flight (h) > 0)
      nbd_poll (h, 2000);
    say ("free-only completion: frees before retiring", "%d", e2.frees);
    say ("free-only completion: command_completed", "%s",
         rv (nbd_aio_command_completed (h, r)));
    say ("free-only completion: frees", "%d", e2.frees);
  }
  nbd_close (h);
  say ("free-only chunk: frees after close", "%d", e.frees);
}

/* Item 6: from a callback, blocking calls and polling on the same
 * handle must fail cleanly; new aio commands stay allowed.
 */
struct nested {
  struct nbd_handle *h;
  int pread_r, pread_errno;
  int poll_r, poll_errno;
  int notify_r, notify_errno;
  int64_t aio_r;
  char buf[512];
};

static int
nested_calls (void *ud, int *error)
{
  struct nested *n = ud;
  (void) error;
  n->pread_r = nbd_pread (n->h, n->buf, sizeof n->buf, 0, 0);
  n->pread_errno = nbd_get_errno ();
  n->poll_r = nbd_poll (n->h, 0);
  n->poll_errno = nbd_get_errno ();
  n->notify_r = nbd_aio_notify_read (n->h);
  n->notify_errno = nbd_get_errno ();
  n->aio_r = nbd_aio_pread (n->h, n->buf, sizeof n->buf, 512,
                            NBD_NULL_COMPLETION, 0);
  return 1;
}

static const char *
rv_errno (int r, int e)
{
  static char b[4][64];
  static int slot;
  char *p = b[slot++ % 4];
  if (r == -1)
    snprintf (p, 64, "-1 %s", e ? strerrorname_np (e) : "errno=0");
  else
    snprintf (p, 64, "%d", r);
  return p;
}

/* libnbd(3), section "Callbacks": a callback runs with the handle
 * locked and must not call a blocking nbd_* call, nbd_poll or
 * nbd_aio_notify_* on the handle it runs on.  1.14 does not check and
 * deadlocks (so these lines are not observed there); later upstream
 * refuses the call with an error, and issuing a new aio command from a
 * callback stays allowed.  Issue 7 item 6.
 */
static const char *const nested_keys[][2] = {
  { "nested: blocking pread from a callback", "fails" },
  { "nested: nbd_poll from a callback", "fails" },
  { "nested: aio_notify_read from a callback", "fails" },
  { "nested: aio_pread from a callback", "cookie" },
  { "nested: in flight afterwards", "0" },
  { "nested: pread afterwards", "0" },
};

static void
calls_from_callbacks (void)
{
  struct nbd_handle *h;
  static char buf[512];
  struct nested n = { 0 };
  nbd_completion_callback cb = { .callback = nested_calls, .user_data = &n };
  const char *got[6];

  if (reference_run ()) {
    for (int i = 0; i < 6; i++)
      want (nested_keys[i][0], nested_keys[i][1], "not observed on 1.14 (deadlocks)");
    return;
  }
  h = n.h = connected ();
  step ("nested: aio_pread");
  nbd_aio_pread (h, buf, sizeof buf, 0, cb, 0);
  step ("nested: run");
  while (n.aio_r == 0 && nbd_aio_in_flight (h) > 0)
    nbd_poll (h, 2000);
  got[0] = n.pread_r == -1 ? "fails" : rv_errno (n.pread_r, n.pread_errno);
  got[1] = n.poll_r == -1 ? "fails" : rv_errno (n.poll_r, n.poll_errno);
  got[2] = n.notify_r == -1 ? "fails" : rv_errno (n.notify_r, n.notify_errno);
  got[3] = n.aio_r > 0 ? "cookie" : rv (n.aio_r);
  step ("nested: drain");
  while (nbd_aio_in_flight (h) > 0)
    if (nbd_poll (h, 2000) == -1)
      break;
  got[4] = rv (nbd_aio_in_flight (h));
  step ("nested: pread afterwards");
  got[5] = rv (nbd_pread (h, buf, sizeof buf, 0, 0));
  for (int i = 0; i < 6; i++)
    want (nested_keys[i][0], nested_keys[i][1], "%s", got[i]);
  nbd_close (h);
}

int
main (void)
{
  const char *args[] = { "memory", "1M", NULL };

  probe_begin ();
  start_nbdkit (&srv, args);
  section ("free at retirement", free_at_retirement);
  section ("free-only closures", free_only_closures);
  section ("calls from callbacks", calls_from_callbacks);
  server_stop (&srv);
  return 0;
}
