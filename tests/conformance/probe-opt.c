/* Conformance probe: option negotiation (issue 7 items 9, 10, 12, 13, 14).
 *
 * Opt mode against a server without fixed newstyle, aio option calls
 * and their closures, export names and the info they invalidate, meta
 * context queries, STARTTLS against a server without TLS.
 */
#include <config.h>

#include "probe.h"

#define OPT_EXPORT_NAME 1

/* ---- a newstyle server that is not fixed newstyle ---- */

static void
plain_newstyle (int fd)
{
  uint8_t g[18], cflags[4], oh[16], reply[8 + 2 + 124] = { 0 };
  char names[256] = "";

  memcpy (g, "NBDMAGIC", 8);
  put_be (g + 8, UINT64_C (0x49484156454F5054), 8);
  put_be (g + 16, 0, 2);        /* no NBD_FLAG_FIXED_NEWSTYLE */
  write_all (fd, g, sizeof g);
  if (!read_all (fd, cflags, 4))
    return;
  /* Record every option the client sends, until EXPORT_NAME. */
  while (read_all (fd, oh, sizeof oh)) {
    uint32_t opt = get_be (oh + 8, 4), len = get_be (oh + 12, 4);
    char data[4096];
    size_t n = strlen (names);
    if (len > sizeof data || !read_all (fd, data, len))
      break;
    snprintf (names + n, sizeof names - n, "%s%u", n ? "," : "", opt);
    if (opt == OPT_EXPORT_NAME) {
      put_be (reply, 1 << 20, 8);
      put_be (reply + 8, 1, 2);
      write_all (fd, reply, sizeof reply);
      break;
    }
    /* Without fixed newstyle there is no way to answer: hang up. */
    raw_report ("options received: %s (then hung up)", names);
    return;
  }
  raw_report ("options received: %s", names[0] ? names : "none");
  /* Serve until the client disconnects. */
  {
    struct raw_request rq;
    while (read_request (fd, &rq) && rq.type != 2)
      ;
  }
}

struct opt_log { int calls, frees, error; };

static int
opt_done (void *ud, int *error)
{
  struct opt_log *l = ud;
  l->calls++;
  l->error = *error;
  return 1;
}

static void
opt_free (void *ud)
{
  ((struct opt_log *) ud)->frees++;
}

static int
list_one (void *ud, const char *name, const char *desc)
{
  (void) name; (void) desc;
  (*(int *) ud)++;
  return 0;
}

static int
context_one (void *ud, const char *name)
{
  (void) name;
  (*(int *) ud)++;
  return 0;
}

static const char *
log_str (const struct opt_log *l)
{
  static char b[96];
  snprintf (b, sizeof b, "completion called %d, error %s, freed %d", l->calls,
            l->error ? strerrorname_np (l->error) : "0", l->frees);
  return b;
}

/* Item 10. */
static void
not_fixed_newstyle (void)
{
  struct raw_server r;
  struct nbd_handle *h = new_handle ();
  struct opt_log l = { 0 };
  nbd_completion_callback cb = { .callback = opt_done, .user_data = &l,
                                 .free = opt_free };
  int listed = 0;
  int64_t rr;

  raw_server_start (&r, plain_newstyle);
  nbd_set_opt_mode (h, true);
  step ("plain newstyle: connect");
  say ("plain newstyle: connect_unix", "%s", rv (nbd_connect_unix (h, r.s.sock)));
  say ("plain newstyle: state", "%s", state_of (h));
  step ("plain newstyle: opt_info");
  say ("plain newstyle: opt_info", "%s", rv (nbd_opt_info (h)));
  step ("plain newstyle: opt_list");
  say ("plain newstyle: opt_list", "%s",
       rv (nbd_opt_list (h, (nbd_list_callback) { .callback = list_one,
                                                  .user_data = &listed })));
  step ("plain newstyle: aio_opt_info");
  rr = nbd_aio_opt_info (h, cb);
  say ("plain newstyle: aio_opt_info", "%s", rv (rr));
  say ("plain newstyle: aio_opt_info closures", "%s", log_str (&l));
  say ("plain newstyle: state after the refused options", "%s", state_of (h));
  step ("plain newstyle: opt_go");
  say ("plain newstyle: opt_go", "%s", rv (nbd_opt_go (h)));
  say ("plain newstyle: size", "%s", rv (nbd_get_size (h)));
  step ("plain newstyle: shutdown");
  nbd_shutdown (h, 0);
  nbd_close (h);
  say ("plain newstyle: aio_opt_info closures after close", "%s", log_str (&l));
  say ("plain newstyle: server saw", "%s", raw_server_report (&r, false));
  raw_server_stop (&r);
}

static struct nbd_handle *
opt_mode_on (struct server *s, const char *name)
{
  struct nbd_handle *h = new_handle ();
  nbd_set_opt_mode (h, true);
  if (name)
    nbd_set_export_name (h, name);
  step ("opt mode connect");
  if (nbd_connect_unix (h, s->sock) == -1)
    probe_fail ("connect_unix: %s", nbd_get_error ());
  return h;
}

/* Item 9: an aio option that fails at the server reports it through
 * the completion callback only.
 */
static void
aio_opt_failures (void)
{
  struct server s;
  const char *args[] = { "--filter=exportname", "memory", "1M",
                         "exportname=alpha", "exportname-strict=true", NULL };
  struct nbd_handle *h;
  struct opt_log l = { 0 };
  nbd_completion_callback cb = { .callback = opt_done, .user_data = &l,
                                 .free = opt_free };
  int listed = 0;

  start_nbdkit (&s, args);
  h = opt_mode_on (&s, "nope");
  step ("aio_opt_info unknown export");
  say ("aio_opt_info unknown export", "%s", rv (nbd_aio_opt_info (h, cb)));
  while (l.calls == 0 && nbd_aio_is_connecting (h) == 1)
    if (nbd_poll (h, 2000) == -1)
      break;
  say ("aio_opt_info unknown export: closures", "%s", log_str (&l));
  say ("aio_opt_info unknown export: state", "%s", state_of (h));
  step ("opt_info unknown export");
  say ("opt_info unknown export", "%s", rv (nbd_opt_info (h)));

  l = (struct opt_log) { 0 };
  step ("aio_opt_list");
  say ("aio_opt_list", "%s",
       rv (nbd_aio_opt_list (h, (nbd_list_callback) { .callback = list_one,
                                                      .user_data = &listed },
                             cb)));
  while (l.calls == 0 && nbd_aio_is_connecting (h) == 1)
    if (nbd_poll (h, 2000) == -1)
      break;
  say ("aio_opt_list: closures", "%s, listed %d", log_str (&l), listed);
  nbd_opt_abort (h);
  nbd_close (h);
  server_stop (&s);
}

/* Item 12: a new export name forgets what opt_info learned. */
static void
export_name_resets_info (void)
{
  struct server s;
  const char *args[] = { "--filter=exportname", "memory", "1M",
                         "exportname=alpha", "exportname=beta", NULL };
  struct nbd_handle *h;

  start_nbdkit (&s, args);
  h = opt_mode_on (&s, "alpha");
  step ("opt_info alpha");
  say ("opt_info alpha", "%s", rv (nbd_opt_info (h)));
  say ("size after opt_info alpha", "%s", rv (nbd_get_size (h)));
  say ("set_export_name alpha again", "%s", rv (nbd_set_export_name (h, "alpha")));
  say ("size after the same name", "%s", rv (nbd_get_size (h)));
  say ("set_export_name beta", "%s", rv (nbd_set_export_name (h, "beta")));
  /* Upstream since 1.16 (lib/handle.c, nbd_set_export_name): a
   * different name resets the size and flags learned by nbd_opt_info,
   * so the queries fail until the next info or go; 1.14 kept them.
   */
  {
    int64_t size = nbd_get_size (h);
    int ro = nbd_is_read_only (h);
    want ("size after a new name", "fails", "%s", size == -1 ? "fails" : rv (size));
    want ("is_read_only after a new name", "fails", "%s", ro == -1 ? "fails" : rv (ro));
  }
  step ("opt_go beta");
  say ("opt_go beta", "%s", rv (nbd_opt_go (h)));
  say ("size after opt_go", "%s", rv (nbd_get_size (h)));
  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop (&s);
}

/* Item 13. */
static void
meta_contexts (void)
{
  struct server s;
  const char *args[] = { "memory", "1M", NULL };
  struct nbd_handle *h = new_handle ();
  int (*set_request_meta) (struct nbd_handle *, bool) =
    NEWER (nbd_set_request_meta_context);
  int found = 0;

  start_nbdkit (&s, args);
  nbd_set_request_structured_replies (h, false);
  nbd_set_opt_mode (h, true);
  step ("meta: connect");
  if (nbd_connect_unix (h, s.sock) == -1)
    probe_fail ("connect_unix: %s", nbd_get_error ());
  /* Later upstream (lib/flags.c, nbd_can_meta_context in opt mode):
   * with no context requested there is nothing to be unsure about, so
   * the answer is false; 1.14 fails with EINVAL.
   */
  want ("meta: can_meta_context, nothing requested", "0", "%s",
        rv (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION)));
  step ("meta: opt_list_meta_context");
  /* Later upstream sends NBD_OPT_LIST_META_CONTEXT even without
   * structured replies and lets the server answer (nbdkit refuses with
   * NBD_REP_ERR_INVALID); 1.14 refuses locally with ENOTSUP.
   */
  {
    int r = nbd_opt_list_meta_context (h, (nbd_context_callback) {
                                         .callback = context_one,
                                         .user_data = &found });
    want ("meta: opt_list_meta_context without structured replies",
          "left to the server", "%s",
          r == -1 && nbd_get_errno () == ENOTSUP ? "refused locally" : "left to the server");
  }
  say ("meta: add_meta_context", "%s",
       rv (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION)));
  say ("meta: can_meta_context, requested not negotiated", "%s",
       rv (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION)));
  nbd_opt_abort (h);
  nbd_close (h);

  /* nbd_set_request_meta_context(3) (1.16): with false, the automatic
   * NBD_OPT_SET_META_CONTEXT is skipped, "so nbd_can_meta_context(3)
   * will fail" after connecting.
   */
  h = new_handle ();
  nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION);
  if (set_request_meta)
    set_request_meta (h, false);
  step ("meta: connect without requesting");
  if (nbd_connect_unix (h, s.sock) == -1)
    probe_fail ("connect_unix: %s", nbd_get_error ());
  if (set_request_meta)
    want ("meta: can_meta_context with request_meta_context false", "-1 EINVAL",
          "%s", rv (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION)));
  else
    want ("meta: can_meta_context with request_meta_context false", "-1 EINVAL",
          "not in this library");
  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop (&s);
}

/* Item 14: nbd_opt_starttls(3) (1.16): "This function returns true if
 * the server replies with success, false if the server replies with an
 * error"; nbdkit without TLS answers NBD_REP_ERR_POLICY or UNSUP, so
 * the aio form completes with an error (ENOTSUP, which glibc names
 * EOPNOTSUPP: the same value) and the blocking one returns false.
 */
static void
starttls_without_tls (void)
{
  struct server s;
  const char *args[] = { "memory", "1M", NULL };
  struct nbd_handle *h;
  int (*aio_starttls) (struct nbd_handle *, nbd_completion_callback) =
    NEWER (nbd_aio_opt_starttls);
  int (*starttls) (struct nbd_handle *) = NEWER (nbd_opt_starttls);
  struct opt_log l = { 0 };
  nbd_completion_callback cb = { .callback = opt_done, .user_data = &l,
                                 .free = opt_free };

  start_nbdkit (&s, args);
  h = opt_mode_on (&s, NULL);
  if (nbd_supports_tls (h) != 1 || !aio_starttls || !starttls) {
    want ("aio_opt_starttls without TLS", "0", "not in this library");
    want ("aio_opt_starttls without TLS: closures",
          "completion called 1, error EOPNOTSUPP, freed 1", "not in this library");
    want ("opt_starttls without TLS", "0", "not in this library");
  }
  else {
    step ("aio_opt_starttls");
    want ("aio_opt_starttls without TLS", "0", "%s", rv (aio_starttls (h, cb)));
    while (l.calls == 0 && nbd_aio_is_connecting (h) == 1)
      if (nbd_poll (h, 2000) == -1)
        break;
    want ("aio_opt_starttls without TLS: closures",
          "completion called 1, error EOPNOTSUPP, freed 1", "%s", log_str (&l));
    step ("opt_starttls");
    want ("opt_starttls without TLS", "0", "%s", rv (starttls (h)));
  }
  say ("after starttls attempts: opt_go", "%s", rv (nbd_opt_go (h)));
  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop (&s);
}

int
main (void)
{
  probe_begin ();
  section ("not fixed newstyle", not_fixed_newstyle);
  section ("aio option failures", aio_opt_failures);
  section ("export name resets info", export_name_resets_info);
  section ("meta contexts", meta_contexts);
  section ("starttls without TLS", starttls_without_tls);
  return 0;
}
