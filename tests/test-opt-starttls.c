/* STARTTLS and option negotiation (issue 7, items 11, 14 and part of
 * 27), against nbdkit with pre-shared keys:
 *
 *  - after nbd_opt_starttls succeeds, whatever the server forgot with
 *    the plaintext session is forgotten by the handle too: structured
 *    replies and extended headers negotiated, meta contexts, export size
 *    and flags (the NBD protocol: the server resets its option state);
 *  - nbd_aio_opt_starttls against a server without TLS completes with
 *    ENOTSUP (the blocking form returns false);
 *  - a plaintext client against a server that requires TLS fails with
 *    ENOTSUP, as libnbd does.
 *
 * Skipped (77) without TLS in the library or nbdkit, or without psktool.
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

static char keydir[64];
static char pskfile[128];

static void
remove_keys (void)
{
  char cmd[128];
  if (keydir[0]) {
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", keydir);
    if (system (cmd) != 0)
      fprintf (stderr, "could not remove %s\n", keydir);
  }
}

static bool
have_prerequisites (void)
{
  struct nbd_handle *h = new_handle ();
  int tls = nbd_supports_tls (h);
  char cmd[256];

  nbd_close (h);
  if (tls != 1) {
    fprintf (stderr, "libnbd built without TLS: skipped\n");
    return false;
  }
  if (!have_program ("nbdkit") || !have_program ("psktool")) {
    fprintf (stderr, "nbdkit or psktool missing: skipped\n");
    return false;
  }
  if (system ("nbdkit --dump-config 2>/dev/null | grep -q '^tls=yes'") != 0) {
    fprintf (stderr, "nbdkit without TLS: skipped\n");
    return false;
  }
  strcpy (keydir, "/tmp/libnbd-starttls-XXXXXX");
  if (!mkdtemp (keydir)) {
    perror ("mkdtemp");
    exit (EXIT_FAILURE);
  }
  atexit (remove_keys);
  snprintf (pskfile, sizeof pskfile, "%s/keys.psk", keydir);
  snprintf (cmd, sizeof cmd, "psktool -u alice -p '%s' >/dev/null 2>&1", pskfile);
  if (system (cmd) != 0) {
    fprintf (stderr, "psktool failed\n");
    exit (EXIT_FAILURE);
  }
  return true;
}

/* An opt-mode handle with the keys but TLS left to nbd_opt_starttls. */
static struct nbd_handle *
opt_handle (const char *sock)
{
  struct nbd_handle *h = new_handle ();

  CHECK_EQ (nbd_set_opt_mode (h, true), 0);
  CHECK_EQ (nbd_set_tls_psk_file (h, pskfile), 0);
  CHECK_EQ (nbd_set_tls_username (h, "alice"), 0);
  if (connect_or_fail (h, sock, "opt mode") == -1) {
    nbd_close (h);
    return NULL;
  }
  return h;
}

/* Write then read back one block: the connection speaks what the
 * handle believes was negotiated.
 */
static void
check_io (struct nbd_handle *h)
{
  char wbuf[4096], rbuf[4096];

  for (size_t i = 0; i < sizeof wbuf; i++)
    wbuf[i] = (char) (i * 5 + 1);
  CHECK_EQ (nbd_pwrite (h, wbuf, sizeof wbuf, 8192, 0), 0);
  memset (rbuf, 0, sizeof rbuf);
  CHECK_EQ (nbd_pread (h, rbuf, sizeof rbuf, 8192, 0), 0);
  CHECK (memcmp (wbuf, rbuf, sizeof rbuf) == 0, "data read back differs");
}

/* Item 11. */
static void
test_starttls_forgets (const char *sock)
{
  struct nbd_handle *h = opt_handle (sock);

  if (!h) return;
  /* Plaintext: structured replies (automatic), then an export's info. */
  CHECK_EQ (nbd_get_tls_negotiated (h), 0);
  CHECK_EQ (nbd_get_structured_replies_negotiated (h), 1);
  CHECK_EQ (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
  CHECK_EQ (nbd_opt_info (h), 0);
  CHECK_EQ (nbd_get_size (h), SIZE);
  CHECK_EQ (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 1);

  CHECK_EQ (nbd_opt_starttls (h), 1);
  CHECK_EQ (nbd_get_tls_negotiated (h), 1);
  CHECK_EQ (nbd_get_structured_replies_negotiated (h), 0);
  CHECK_EQ (nbd_get_extended_headers_negotiated (h), 0);
  CHECK_FAILS (nbd_get_size (h), EINVAL, "nbd_get_size", NULL);
  CHECK_FAILS (nbd_is_read_only (h), EINVAL, "nbd_is_read_only", NULL);
  CHECK_FAILS (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION),
               EINVAL, "nbd_can_meta_context", NULL);
  CHECK_EQ (nbd_aio_is_negotiating (h), 1);

  /* go without asking again: simple replies, and they work. */
  CHECK_EQ (nbd_opt_go (h), 0);
  CHECK_EQ (nbd_aio_is_ready (h), 1);
  CHECK_EQ (nbd_get_structured_replies_negotiated (h), 0);
  CHECK_EQ (nbd_get_size (h), SIZE);
  CHECK_EQ (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
  check_io (h);
  CHECK_EQ (nbd_aio_is_ready (h), 1);
  CHECK_EQ (nbd_shutdown (h, 0), 0);
  nbd_close (h);

  /* Asking again after STARTTLS gives them back. */
  h = opt_handle (sock);
  if (!h) return;
  CHECK_EQ (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
  CHECK_EQ (nbd_opt_starttls (h), 1);
  CHECK_EQ (nbd_get_structured_replies_negotiated (h), 0);
  CHECK_EQ (nbd_opt_structured_reply (h), 1);
  CHECK_EQ (nbd_get_structured_replies_negotiated (h), 1);
  CHECK_EQ (nbd_opt_go (h), 0);
  CHECK_EQ (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 1);
  check_io (h);
  CHECK_EQ (nbd_shutdown (h, 0), 0);
  nbd_close (h);

  /* The aio form: same result, completion once without error. */
  h = opt_handle (sock);
  if (!h) return;
  {
    struct completion_data d;
    CHECK_EQ (nbd_aio_opt_starttls (h, completion (&d)), 0);
    wait_not_connecting (h);
    CHECK (d.calls == 1 && d.error == 0 && d.frees == 1,
           "aio_opt_starttls: %d calls, error %d, %d frees",
           d.calls, d.error, d.frees);
  }
  CHECK_EQ (nbd_get_tls_negotiated (h), 1);
  CHECK_EQ (nbd_get_structured_replies_negotiated (h), 0);
  CHECK_EQ (nbd_opt_go (h), 0);
  check_io (h);
  nbd_close (h);
}

/* Item 14. */
static void
test_starttls_refused (const char *sock)
{
  struct nbd_handle *h = opt_handle (sock);
  struct completion_data d;

  if (!h) return;
  CHECK_EQ (nbd_aio_opt_starttls (h, completion (&d)), 0);
  wait_not_connecting (h);
  CHECK (d.calls == 1 && d.frees == 1, "aio_opt_starttls: %d calls, %d frees",
         d.calls, d.frees);
  CHECK (d.error == ENOTSUP, "aio_opt_starttls: error %d (%s), expected ENOTSUP",
         d.error, strerror (d.error));
  CHECK_EQ (nbd_aio_is_negotiating (h), 1);
  CHECK_EQ (nbd_get_tls_negotiated (h), 0);
  /* Nothing was forgotten: TLS did not start. */
  CHECK_EQ (nbd_get_structured_replies_negotiated (h), 1);

  /* The blocking form: false, not an error. */
  CHECK_EQ (nbd_opt_starttls (h), 0);
  CHECK_EQ (nbd_aio_is_negotiating (h), 1);
  CHECK_EQ (nbd_opt_go (h), 0);
  CHECK_EQ (nbd_get_structured_replies_negotiated (h), 1);
  check_io (h);
  nbd_close (h);
}

/* Item 27 (plaintext part). */
static void
test_tls_required (const char *sock)
{
  struct nbd_handle *h;
  char uri[512];

  h = new_handle ();
  CHECK_FAILS (nbd_connect_unix (h, sock), ENOTSUP, "nbd_connect_unix", NULL);
  nbd_close (h);

  h = new_handle ();
  snprintf (uri, sizeof uri, "nbd+unix:///?socket=%s", sock);
  CHECK_FAILS (nbd_connect_uri (h, uri), ENOTSUP, "nbd_connect_uri", NULL);
  nbd_close (h);

  /* In opt mode the refusals come one option at a time. */
  h = new_handle ();
  CHECK_EQ (nbd_set_opt_mode (h, true), 0);
  if (connect_or_fail (h, sock, "opt mode, TLS required") == 0) {
    CHECK_FAILS (nbd_opt_info (h), ENOTSUP, "nbd_opt_info", NULL);
    CHECK_FAILS (nbd_opt_go (h), ENOTSUP, "nbd_opt_go", NULL);
    CHECK_EQ (nbd_aio_is_negotiating (h), 1);
  }
  nbd_close (h);
}

int
main (void)
{
  struct server s;

  alarm (120);
  if (!have_prerequisites ())
    exit (77);

  if (start_nbdkit (&s, "--tls=on", "--tls-psk", pskfile, "memory", "1M",
                    NULL) == -1) {
    fprintf (stderr, "could not start nbdkit --tls=on\n");
    exit (EXIT_FAILURE);
  }
  test_starttls_forgets (s.sock);
  server_stop (&s);

  if (start_nbdkit (&s, "memory", "1M", NULL) == -1) {
    fprintf (stderr, "could not start nbdkit\n");
    exit (EXIT_FAILURE);
  }
  test_starttls_refused (s.sock);
  server_stop (&s);

  if (start_nbdkit (&s, "--tls=require", "--tls-psk", pskfile, "memory", "1M",
                    NULL) == -1) {
    fprintf (stderr, "could not start nbdkit --tls=require\n");
    exit (EXIT_FAILURE);
  }
  test_tls_required (s.sock);
  server_stop (&s);
  return check_status ("test-opt-starttls");
}
