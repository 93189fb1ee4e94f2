/* Handshakes against nbdkit: export size, every transmission flag,
 * protocol variants (fixed newstyle, plain newstyle, oldstyle),
 * structured replies on and off, handshake flags, block sizes, full
 * info (canonical name, description), unknown exports, meta contexts,
 * and the info getters on a handle that has not connected.
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

#include "hs-helpers.h"

#define SIZE 1048576

struct flags {
  int read_only, flush, fua, rotational, trim, zero, fast_zero, df,
    multi_conn, cache;
};

static void
check_flags (struct nbd_handle *h, const char *what, const struct flags *f)
{
  fprintf (stderr, "checking flags: %s\n", what);
  CHECK_EQ (nbd_is_read_only (h), f->read_only);
  CHECK_EQ (nbd_can_flush (h), f->flush);
  CHECK_EQ (nbd_can_fua (h), f->fua);
  CHECK_EQ (nbd_is_rotational (h), f->rotational);
  CHECK_EQ (nbd_can_trim (h), f->trim);
  CHECK_EQ (nbd_can_zero (h), f->zero);
  CHECK_EQ (nbd_can_fast_zero (h), f->fast_zero);
  CHECK_EQ (nbd_can_df (h), f->df);
  CHECK_EQ (nbd_can_multi_conn (h), f->multi_conn);
  CHECK_EQ (nbd_can_cache (h), f->cache);
}

/* Info getters on a handle that never connected: ENOTCONN. */
static void
test_created (void)
{
  struct nbd_handle *h = new_handle ();

  CHECK_FAILS (nbd_get_size (h), ENOTCONN, "nbd_get_size", "invalid state");
  CHECK_FAILS (nbd_is_read_only (h), ENOTCONN, "nbd_is_read_only", NULL);
  CHECK_FAILS (nbd_can_flush (h), ENOTCONN, "nbd_can_flush", NULL);
  CHECK_FAILS (nbd_can_meta_context (h, "base:allocation"), ENOTCONN,
               "nbd_can_meta_context", NULL);
  CHECK_FAILS (nbd_get_block_size (h, LIBNBD_SIZE_MINIMUM), ENOTCONN,
               "nbd_get_block_size", NULL);
  CHECK (nbd_get_protocol (h) == NULL, "nbd_get_protocol on a created handle");
  CHECK_ERR (ENOTCONN, "nbd_get_protocol", NULL);
  CHECK (nbd_get_canonical_export_name (h) == NULL, "canonical name");
  CHECK_ERR (ENOTCONN, "nbd_get_canonical_export_name", NULL);
  CHECK_FAILS (nbd_get_structured_replies_negotiated (h), ENOTCONN,
               "nbd_get_structured_replies_negotiated", NULL);
  nbd_close (h);
}

/* Plain nbdkit memory: everything on. */
static void
test_memory (void)
{
  struct server s;
  struct nbd_handle *h;
  const struct flags f = { .read_only = 0, .flush = 1, .fua = 1,
    .rotational = 0, .trim = 1, .zero = 1, .fast_zero = 1, .df = 1,
    .multi_conn = 1, .cache = 1 };

  if (start_nbdkit (&s, "memory", "1M", NULL) == -1) {
    failures++;
    return;
  }
  h = new_handle ();
  CHECK_EQ (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
  CHECK_EQ (nbd_add_meta_context (h, "nosuch:context"), 0);
  if (connect_or_fail (h, s.sock, "memory") == 0) {
    CHECK_EQ (nbd_aio_is_ready (h), 1);
    CHECK_EQ (nbd_get_size (h), SIZE);
    CHECK_STREQ (nbd_get_protocol (h), "newstyle-fixed");
    CHECK_EQ (nbd_get_structured_replies_negotiated (h), 1);
    CHECK_EQ (nbd_get_tls_negotiated (h), 0);
#ifdef LIBNBD_HAVE_NBD_GET_EXTENDED_HEADERS_NEGOTIATED
    /* nbdkit 1.32 does not implement extended headers. */
    CHECK_EQ (nbd_get_extended_headers_negotiated (h), 0);
#endif
    check_flags (h, "nbdkit memory", &f);
    CHECK_EQ (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 1);
    CHECK_EQ (nbd_can_meta_context (h, "nosuch:context"), 0);
    CHECK_EQ (nbd_can_meta_context (h, "qemu:dirty-bitmap:x"), 0);
    CHECK_FAILS (nbd_get_block_size (h, 99), EINVAL, "nbd_get_block_size",
                 NULL);
    CHECK_EQ (nbd_shutdown (h, 0), 0);
    CHECK_EQ (nbd_aio_is_closed (h), 1);
    /* Info stays available once closed. */
    CHECK_EQ (nbd_get_size (h), SIZE);
  }
  nbd_close (h);

  /* Without nbd_add_meta_context nothing is negotiated. */
  h = new_handle ();
  if (connect_or_fail (h, s.sock, "memory, no contexts") == 0)
    CHECK_EQ (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
  nbd_close (h);

  /* Structured replies disabled on the client side. */
  h = new_handle ();
  CHECK_EQ (nbd_set_request_structured_replies (h, false), 0);
#ifdef LIBNBD_HAVE_NBD_SET_REQUEST_EXTENDED_HEADERS
  CHECK_EQ (nbd_set_request_extended_headers (h, false), 0);
#endif
  CHECK_EQ (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
  if (connect_or_fail (h, s.sock, "request_structured_replies false") == 0) {
    CHECK_EQ (nbd_get_structured_replies_negotiated (h), 0);
    CHECK_EQ (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
    CHECK_EQ (nbd_can_df (h), 0);
    CHECK_EQ (nbd_can_flush (h), 1);
    CHECK_STREQ (nbd_get_protocol (h), "newstyle-fixed");
  }
  nbd_close (h);

  /* Handshake flags 0: plain newstyle, NBD_OPT_EXPORT_NAME, no other
   * options, so no structured replies.  Opt mode still stops in
   * negotiating (upstream does too: it only ignores oldstyle servers);
   * nbd_opt_go then uses NBD_OPT_EXPORT_NAME.
   */
  h = new_handle ();
  CHECK_EQ (nbd_set_handshake_flags (h, 0), 0);
  CHECK_EQ (nbd_get_handshake_flags (h), 0);
  CHECK_EQ (nbd_set_opt_mode (h, true), 0);
  CHECK_EQ (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
  if (connect_or_fail (h, s.sock, "handshake flags 0") == 0) {
    CHECK_EQ (nbd_aio_is_negotiating (h), 1);
    CHECK_STREQ (nbd_get_protocol (h), "newstyle");
    CHECK_EQ (nbd_opt_go (h), 0);
    CHECK_EQ (nbd_aio_is_ready (h), 1);
    CHECK_EQ (nbd_aio_is_negotiating (h), 0);
    CHECK_STREQ (nbd_get_protocol (h), "newstyle");
    CHECK_EQ (nbd_get_size (h), SIZE);
    CHECK_EQ (nbd_get_structured_replies_negotiated (h), 0);
    CHECK_EQ (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
    CHECK_EQ (nbd_can_df (h), 0);
    CHECK_EQ (nbd_can_trim (h), 1);
    {
      char buf[512];
      CHECK_EQ (nbd_pread (h, buf, sizeof buf, 0, 0), 0);
    }
  }
  nbd_close (h);

  /* Only FIXED_NEWSTYLE (no NO_ZEROES): still fixed newstyle. */
  h = new_handle ();
  CHECK_EQ (nbd_set_handshake_flags (h, LIBNBD_HANDSHAKE_FLAG_FIXED_NEWSTYLE), 0);
  if (connect_or_fail (h, s.sock, "handshake flags FIXED_NEWSTYLE") == 0) {
    CHECK_EQ (nbd_get_handshake_flags (h), LIBNBD_HANDSHAKE_FLAG_FIXED_NEWSTYLE);
    CHECK_STREQ (nbd_get_protocol (h), "newstyle-fixed");
    CHECK_EQ (nbd_get_size (h), SIZE);
    CHECK_EQ (nbd_get_structured_replies_negotiated (h), 1);
  }
  nbd_close (h);

  /* Only NO_ZEROES: plain newstyle, and the bit is still agreed (as
   * libnbd; the server offered it), so the export name reply comes
   * without its 124 zero bytes.
   */
  h = new_handle ();
  CHECK_EQ (nbd_set_handshake_flags (h, LIBNBD_HANDSHAKE_FLAG_NO_ZEROES), 0);
  if (connect_or_fail (h, s.sock, "handshake flags NO_ZEROES") == 0) {
    CHECK_EQ (nbd_get_handshake_flags (h), LIBNBD_HANDSHAKE_FLAG_NO_ZEROES);
    CHECK_STREQ (nbd_get_protocol (h), "newstyle");
    CHECK_EQ (nbd_get_size (h), SIZE);
    {
      char buf[512];
      CHECK_EQ (nbd_pread (h, buf, sizeof buf, 0, 0), 0);
    }
  }
  nbd_close (h);

  /* Bad handshake flags. */
  h = new_handle ();
  CHECK_FAILS (nbd_set_handshake_flags (h, 0x100), EINVAL,
               "nbd_set_handshake_flags", NULL);
  nbd_close (h);

  server_stop (&s);
}

/* nbdkit -r: read-only, and write-like flags off. */
static void
test_readonly (void)
{
  struct server s;
  struct nbd_handle *h;
  const struct flags f = { .read_only = 1, .flush = 1, .fua = 0,
    .rotational = 0, .trim = 0, .zero = 0, .fast_zero = 0, .df = 1,
    .multi_conn = 1, .cache = 1 };

  if (start_nbdkit (&s, "-r", "memory", "1M", NULL) == -1) {
    failures++;
    return;
  }
  h = new_handle ();
  if (connect_or_fail (h, s.sock, "nbdkit -r") == 0) {
    check_flags (h, "nbdkit -r memory", &f);
    CHECK_FAILS (nbd_pwrite (h, "x", 1, 0, 0), EPERM, "nbd_pwrite", NULL);
  }
  nbd_close (h);
  server_stop (&s);
}

/* nbdkit eval with every capability script answering "no" (and
 * rotational "yes").
 */
static void
test_eval_flags (void)
{
  struct server s;
  struct nbd_handle *h;
  const struct flags f = { .read_only = 1, .flush = 0, .fua = 0,
    .rotational = 1, .trim = 0, .zero = 0, .fast_zero = 0, .df = 1,
    .multi_conn = 0, .cache = 0 };

  if (start_nbdkit (&s, "eval",
                    "get_size=echo 2M",
                    "pread=dd if=/dev/zero count=$3 iflag=count_bytes 2>/dev/null",
                    "can_write=exit 3", "can_flush=exit 3", "can_trim=exit 3",
                    "can_zero=exit 3", "can_fast_zero=exit 3",
                    "can_fua=echo none", "can_cache=echo none",
                    "can_multi_conn=exit 3", "is_rotational=exit 0",
                    NULL) == -1) {
    failures++;
    return;
  }
  h = new_handle ();
  if (connect_or_fail (h, s.sock, "nbdkit eval") == 0) {
    CHECK_EQ (nbd_get_size (h), 2 * SIZE);
    check_flags (h, "nbdkit eval, all off", &f);
  }
  nbd_close (h);
  server_stop (&s);
}

/* nbdkit -o: oldstyle; opt mode and meta contexts do not apply. */
static void
test_oldstyle (void)
{
  struct server s;
  struct nbd_handle *h;
  char buf[512];

  if (start_nbdkit (&s, "-o", "pattern", "1M", NULL) == -1) {
    failures++;
    return;
  }
  h = new_handle ();
  CHECK_EQ (nbd_set_opt_mode (h, true), 0);
  CHECK_EQ (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
  if (connect_or_fail (h, s.sock, "nbdkit -o") == 0) {
    CHECK_EQ (nbd_aio_is_negotiating (h), 0);
    CHECK_EQ (nbd_aio_is_ready (h), 1);
    CHECK_STREQ (nbd_get_protocol (h), "oldstyle");
    /* As libnbd: no handshake flags are agreed with an oldstyle server,
     * and it reports no canonical name.
     */
    CHECK_EQ (nbd_get_handshake_flags (h), 0);
    CHECK (nbd_get_canonical_export_name (h) == NULL, "canonical name on oldstyle");
    CHECK_ERR (ENOTSUP, "nbd_get_canonical_export_name", NULL);
    CHECK_EQ (nbd_get_size (h), SIZE);
    CHECK_EQ (nbd_get_structured_replies_negotiated (h), 0);
    CHECK_EQ (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
    CHECK_EQ (nbd_can_df (h), 0);
    CHECK_EQ (nbd_is_read_only (h), 1);     /* pattern is read-only */
    CHECK_FAILS (nbd_opt_go (h), EINVAL, "nbd_opt_go", "negotiating");
    memset (buf, 0, sizeof buf);
    CHECK_EQ (nbd_pread (h, buf, sizeof buf, 8, 0), 0);
    /* pattern: each 8 byte word is its big-endian offset. */
    CHECK (buf[7] == 8 && buf[15] == 16, "pattern data wrong: %d %d",
           buf[7], buf[15]);
  }
  nbd_close (h);
  server_stop (&s);
}

/* --mask-handshake=0: plain newstyle; --no-sr: no structured replies. */
static void
test_server_options (void)
{
  struct server s;
  struct nbd_handle *h;

  if (start_nbdkit (&s, "--mask-handshake=0", "memory", "1M", NULL) == -1) {
    failures++;
    return;
  }
  h = new_handle ();
  CHECK_EQ (nbd_set_opt_mode (h, true), 0);
  if (connect_or_fail (h, s.sock, "--mask-handshake=0") == 0) {
    CHECK_EQ (nbd_aio_is_negotiating (h), 1);
    CHECK_EQ (nbd_opt_go (h), 0);
    CHECK_EQ (nbd_aio_is_ready (h), 1);
    CHECK_STREQ (nbd_get_protocol (h), "newstyle");
    /* The client allowed both flags, the server offered none. */
    CHECK_EQ (nbd_get_handshake_flags (h), 0);
    CHECK_EQ (nbd_get_size (h), SIZE);
    CHECK_EQ (nbd_get_structured_replies_negotiated (h), 0);
    CHECK_EQ (nbd_can_df (h), 0);
  }
  nbd_close (h);
  server_stop (&s);

  /* Plain newstyle with an export name the server refuses: the server
   * just closes the connection after NBD_OPT_EXPORT_NAME.
   */
  if (start_nbdkit (&s, "--mask-handshake=0", "--filter=exportname",
                    "memory", "1M", "exportname=a", "exportname-strict=true",
                    NULL) == -1) {
    failures++;
    return;
  }
  h = new_handle ();
  CHECK_EQ (nbd_set_export_name (h, "a"), 0);
  if (connect_or_fail (h, s.sock, "--mask-handshake=0, export a") == 0)
    CHECK_EQ (nbd_get_size (h), SIZE);
  nbd_close (h);
  h = new_handle ();
  CHECK_EQ (nbd_set_export_name (h, "nosuch"), 0);
  CHECK_EQ (nbd_connect_unix (h, s.sock), -1);
  /* As libnbd: an end of stream in the handshake carries no errno. */
  CHECK (nbd_get_errno () == 0, "errno %d after the server hung up", nbd_get_errno ());
  CHECK (nbd_get_error () != NULL
         && strncmp (nbd_get_error (), "nbd_connect_unix: ", 18) == 0,
         "message: %s", nbd_get_error ());
  CHECK_EQ (nbd_aio_is_dead (h), 1);
  nbd_close (h);
  server_stop (&s);

  if (start_nbdkit (&s, "--no-sr", "memory", "1M", NULL) == -1) {
    failures++;
    return;
  }
  h = new_handle ();
  CHECK_EQ (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
  if (connect_or_fail (h, s.sock, "--no-sr") == 0) {
    CHECK_STREQ (nbd_get_protocol (h), "newstyle-fixed");
    CHECK_EQ (nbd_get_size (h), SIZE);
    CHECK_EQ (nbd_get_structured_replies_negotiated (h), 0);
    CHECK_EQ (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
    CHECK_EQ (nbd_can_df (h), 0);
  }
  nbd_close (h);
  server_stop (&s);
}

/* Block sizes from the blocksize-policy filter. */
static void
test_block_size (void)
{
  struct server s;
  struct nbd_handle *h;

  if (start_nbdkit (&s, "--filter=blocksize-policy", "memory", "1M",
                    "blocksize-minimum=4096", "blocksize-preferred=65536",
                    "blocksize-maximum=1M", NULL) == -1) {
    failures++;
    return;
  }
  h = new_handle ();
  CHECK_EQ (nbd_get_request_block_size (h), 1);
  if (connect_or_fail (h, s.sock, "blocksize-policy") == 0) {
    CHECK_EQ (nbd_get_block_size (h, LIBNBD_SIZE_MINIMUM), 4096);
    CHECK_EQ (nbd_get_block_size (h, LIBNBD_SIZE_PREFERRED), 65536);
    CHECK_EQ (nbd_get_block_size (h, LIBNBD_SIZE_MAXIMUM), 1048576);
#ifdef LIBNBD_SIZE_PAYLOAD
    CHECK_EQ (nbd_get_block_size (h, LIBNBD_SIZE_PAYLOAD), 1048576);
#endif
    CHECK_FAILS (nbd_get_block_size (h, -1), EINVAL, "nbd_get_block_size",
                 NULL);
  }
  nbd_close (h);

  /* Not asking: nbdkit does not send NBD_INFO_BLOCK_SIZE unprompted. */
  h = new_handle ();
  CHECK_EQ (nbd_set_request_block_size (h, false), 0);
  CHECK_EQ (nbd_get_request_block_size (h), 0);
  if (connect_or_fail (h, s.sock, "request_block_size false") == 0) {
    CHECK_EQ (nbd_get_block_size (h, LIBNBD_SIZE_MINIMUM), 0);
    CHECK_EQ (nbd_get_block_size (h, LIBNBD_SIZE_PREFERRED), 0);
    CHECK_EQ (nbd_get_block_size (h, LIBNBD_SIZE_MAXIMUM), 0);
  }
  nbd_close (h);
  server_stop (&s);

  /* Plain memory plugin: nbdkit reports its defaults only if the plugin
   * has block sizes; at least the minimum is a power of two or 0.
   */
}

/* Full info: canonical name and description; unknown export. */
static void
test_full_info (void)
{
  struct server s;
  struct nbd_handle *h;
  char *str;

  if (start_nbdkit (&s, "--filter=exportname", "memory", "1M",
                    "exportname=a", "exportname=b", "exportname-list=explicit",
                    "default-export=a",
                    "exportdesc=fixed:the description", NULL) == -1) {
    failures++;
    return;
  }

  /* Default export "" maps to canonical "a". */
  h = new_handle ();
  CHECK_EQ (nbd_set_full_info (h, true), 0);
  CHECK_EQ (nbd_get_full_info (h), 1);
  if (connect_or_fail (h, s.sock, "full info, default export") == 0) {
    str = nbd_get_canonical_export_name (h);
    CHECK_STREQ (str, "a");
    free (str);
    str = nbd_get_export_description (h);
    CHECK_STREQ (str, "the description");
    free (str);
    str = nbd_get_export_name (h);
    CHECK_STREQ (str, "");
    free (str);
  }
  nbd_close (h);

  /* Without full info, nbdkit sends no description and no canonical
   * name; as libnbd, the name asked for does not stand in for it.
   */
  h = new_handle ();
  if (connect_or_fail (h, s.sock, "no full info") == 0) {
    str = nbd_get_canonical_export_name (h);
    CHECK (str == NULL, "canonical name without full info: %s", str);
    if (str == NULL)
      CHECK_ERR (ENOTSUP, "nbd_get_canonical_export_name", NULL);
    free (str);
    str = nbd_get_export_description (h);
    CHECK (str == NULL, "description without full info: %s", str);
    if (str == NULL)
      CHECK_ERR (ENOTSUP, "nbd_get_export_description", NULL);
    free (str);
  }
  nbd_close (h);
  server_stop (&s);

  if (start_nbdkit (&s, "--filter=exportname", "memory", "1M",
                    "exportname=a", "exportname=b", "exportname-strict=true",
                    NULL) == -1) {
    failures++;
    return;
  }
  h = new_handle ();
  CHECK_EQ (nbd_set_full_info (h, true), 0);
  CHECK_EQ (nbd_set_export_name (h, "b"), 0);
  if (connect_or_fail (h, s.sock, "full info, export b") == 0) {
    CHECK_EQ (nbd_get_size (h), SIZE);
    str = nbd_get_canonical_export_name (h);
    CHECK_STREQ (str, "b");
    free (str);
  }
  nbd_close (h);

  /* Unknown export: ENOENT, the handle is dead. */
  h = new_handle ();
  CHECK_EQ (nbd_set_export_name (h, "nosuch"), 0);
  CHECK_FAILS (nbd_connect_unix (h, s.sock), ENOENT, "nbd_connect_unix",
               NULL);
  CHECK_EQ (nbd_aio_is_dead (h), 1);
  CHECK_EQ (nbd_aio_is_ready (h), 0);
  {
    char buf[512];
    CHECK_FAILS (nbd_pread (h, buf, sizeof buf, 0, 0), EINVAL, "nbd_pread",
                 "DEAD");
  }
  nbd_close (h);

  server_stop (&s);
}

int
main (void)
{
  alarm (120);
  if (!have_program ("nbdkit")) {
    fprintf (stderr, "%s: nbdkit not found, skipping\n", __FILE__);
    exit (77);
  }
  test_created ();
  test_memory ();
  test_readonly ();
  test_eval_flags ();
  test_oldstyle ();
  test_server_options ();
  test_block_size ();
  test_full_info ();
  return check_status ("test-handshake");
}
