/* Unit tests (Check) of the handle core, through the public API only:
 * creation, settings and their defaults, argument validation, errors,
 * debug messages, closures' .free.
 */
/* This test passes NULL on purpose to check the EFAULT errors, so the
 * header's nonnull attributes (which would make GCC warn and UBSan
 * abort) are switched off, as <libnbd.h> allows.
 */
#define LIBNBD_ATTRIBUTE_NONNULL(...)

#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include <libnbd.h>

#include "common.h"

#define ck_assert_error(errnum, context, substr)                        \
  do {                                                                  \
    const char *mismatch_ = error_mismatch ((errnum), (context), (substr)); \
    ck_assert_msg (mismatch_ == NULL, "%s", mismatch_);                 \
  } while (0)

static struct nbd_handle *
create (void)
{
  struct nbd_handle *h = nbd_create ();
  ck_assert_msg (h != NULL, "nbd_create: %s", nbd_get_error ());
  return h;
}

/* Compares a string returned by the library (caller frees) and frees it. */
#define ck_assert_owned_str_eq(expr, expected)                          \
  do {                                                                  \
    char *s_ = (expr);                                                  \
    ck_assert_msg (s_ != NULL, "%s returned NULL: %s", #expr,           \
                   nbd_get_error ());                                   \
    ck_assert_str_eq (s_, (expected));                                  \
    free (s_);                                                          \
  } while (0)

static char *
string_of_length (size_t len)
{
  char *s = malloc (len + 1);
  ck_assert_ptr_nonnull (s);
  memset (s, 'x', len);
  s[len] = '\0';
  return s;
}

/* ---- Library identity ---- */

START_TEST (test_version)
{
  struct nbd_handle *h = create ();

  /* This is the library just built, not the system libnbd. */
  ck_assert_str_eq (nbd_get_version (h), PACKAGE_VERSION);
  ck_assert_str_eq (nbd_get_version (h), "1.24.4");
  ck_assert_str_eq (nbd_get_package_name (h), "libnbd");
  /* configure --with-extra, "" by default; static, so the same each time. */
  ck_assert_str_eq (nbd_get_version_extra (h), LIBNBD_VERSION_EXTRA);
  ck_assert_ptr_eq (nbd_get_version_extra (h), nbd_get_version_extra (h));
  nbd_close (h);
}
END_TEST

START_TEST (test_create_close)
{
  struct nbd_handle *h = nbd_create ();

  ck_assert_ptr_nonnull (h);
  nbd_close (h);
  nbd_close (NULL);             /* allowed, does nothing */
}
END_TEST

START_TEST (test_null_handle)
{
  ck_assert_int_eq (nbd_set_debug (NULL, true), -1);
  ck_assert_error (EFAULT, "nbd_set_debug", NULL);
  ck_assert_ptr_null (nbd_get_export_name (NULL));
  ck_assert_error (EFAULT, "nbd_get_export_name", NULL);
  ck_assert_int_eq (nbd_set_tls (NULL, LIBNBD_TLS_DISABLE), -1);
  ck_assert_error (EFAULT, "nbd_set_tls", NULL);
}
END_TEST

/* ---- Handle names ---- */

static unsigned
parse_default_name (const char *name)
{
  unsigned n = 0;
  int end = -1;

  ck_assert_msg (sscanf (name, "nbd%u%n", &n, &end) == 1 &&
                 end == (int) strlen (name),
                 "default handle name \"%s\" is not nbdN", name);
  return n;
}

START_TEST (test_handle_name)
{
  struct nbd_handle *h1 = create (), *h2 = create ();
  char *n1 = nbd_get_handle_name (h1), *n2 = nbd_get_handle_name (h2);

  ck_assert_ptr_nonnull (n1);
  ck_assert_ptr_nonnull (n2);
  ck_assert_str_ne (n1, n2);
  ck_assert_uint_ne (parse_default_name (n1), parse_default_name (n2));
  free (n1);
  free (n2);

  ck_assert_int_eq (nbd_set_handle_name (h1, "my handle"), 0);
  ck_assert_owned_str_eq (nbd_get_handle_name (h1), "my handle");
  ck_assert_int_eq (nbd_set_handle_name (h1, ""), 0);
  ck_assert_owned_str_eq (nbd_get_handle_name (h1), "");

  ck_assert_int_eq (nbd_set_handle_name (h1, NULL), -1);
  ck_assert_error (EFAULT, "nbd_set_handle_name", "handle_name");
  ck_assert_owned_str_eq (nbd_get_handle_name (h1), "");

  nbd_close (h1);
  nbd_close (h2);
}
END_TEST

/* ---- Export name ---- */

START_TEST (test_export_name)
{
  struct nbd_handle *h = create ();
  char *s;

  ck_assert_owned_str_eq (nbd_get_export_name (h), "");
  ck_assert_int_eq (nbd_set_export_name (h, "foo"), 0);
  ck_assert_owned_str_eq (nbd_get_export_name (h), "foo");

  s = string_of_length (4096);
  ck_assert_int_eq (nbd_set_export_name (h, s), 0);
  ck_assert_owned_str_eq (nbd_get_export_name (h), s);
  free (s);

  ck_assert_int_eq (nbd_set_export_name (h, "bar"), 0);
  s = string_of_length (4097);
  ck_assert_int_eq (nbd_set_export_name (h, s), -1);
  ck_assert_error (ENAMETOOLONG, "nbd_set_export_name", NULL);
  free (s);
  ck_assert_owned_str_eq (nbd_get_export_name (h), "bar");

  ck_assert_int_eq (nbd_set_export_name (h, NULL), -1);
  ck_assert_error (EFAULT, "nbd_set_export_name", "export_name");
  ck_assert_owned_str_eq (nbd_get_export_name (h), "bar");

  nbd_close (h);
}
END_TEST

/* ---- Defaults of a new handle ---- */

START_TEST (test_defaults)
{
  struct nbd_handle *h = create ();

  ck_assert_int_eq (nbd_get_debug (h), 0);
  ck_assert_int_eq (nbd_get_tls (h), LIBNBD_TLS_DISABLE);
  ck_assert_int_eq (nbd_get_tls_verify_peer (h), 1);
  ck_assert_int_eq (nbd_get_request_structured_replies (h), 1);
  ck_assert_int_eq (nbd_get_request_extended_headers (h), 1);
  ck_assert_int_eq (nbd_get_request_meta_context (h), 1);
  ck_assert_int_eq (nbd_get_request_block_size (h), 1);
  ck_assert_int_eq (nbd_get_full_info (h), 0);
  ck_assert_int_eq (nbd_get_pread_initialize (h), 1);
  ck_assert_int_eq (nbd_get_opt_mode (h), 0);
  ck_assert_uint_eq (nbd_get_handshake_flags (h), LIBNBD_HANDSHAKE_FLAG_MASK);
  ck_assert_uint_eq (nbd_get_handshake_flags (h), 0x03);
  ck_assert_uint_eq (nbd_get_strict_mode (h), LIBNBD_STRICT_MASK);
  ck_assert_uint_eq (nbd_get_strict_mode (h), 0x7f);
  ck_assert_int_eq (nbd_get_nr_meta_contexts (h), 0);
  ck_assert_uint_eq (nbd_get_private_data (h), 0);
  ck_assert_owned_str_eq (nbd_get_socket_activation_name (h), "");
  ck_assert_uint_eq (nbd_stats_bytes_sent (h), 0);
  ck_assert_uint_eq (nbd_stats_bytes_received (h), 0);
  ck_assert_uint_eq (nbd_stats_chunks_sent (h), 0);
  ck_assert_uint_eq (nbd_stats_chunks_received (h), 0);
  ck_assert_int_ge (nbd_supports_tls (h), 0);
  ck_assert_int_le (nbd_supports_tls (h), 1);
  ck_assert_int_ge (nbd_supports_vsock (h), 0);
  ck_assert_int_le (nbd_supports_vsock (h), 1);
  nbd_close (h);
}
END_TEST

/* ---- Every setter/getter pair ---- */

#define BOOL_ROUND_TRIP(h, name)                                \
  do {                                                          \
    ck_assert_int_eq (nbd_set_##name ((h), false), 0);          \
    ck_assert_int_eq (nbd_get_##name (h), 0);                   \
    ck_assert_int_eq (nbd_set_##name ((h), true), 0);           \
    ck_assert_int_eq (nbd_get_##name (h), 1);                   \
    ck_assert_int_eq (nbd_set_##name ((h), false), 0);          \
    ck_assert_int_eq (nbd_get_##name (h), 0);                   \
  } while (0)

START_TEST (test_round_trips)
{
  struct nbd_handle *h = create ();
  uint32_t f;

  BOOL_ROUND_TRIP (h, debug);
  BOOL_ROUND_TRIP (h, tls_verify_peer);
  BOOL_ROUND_TRIP (h, request_structured_replies);
  BOOL_ROUND_TRIP (h, request_extended_headers);
  BOOL_ROUND_TRIP (h, request_meta_context);
  BOOL_ROUND_TRIP (h, request_block_size);
  BOOL_ROUND_TRIP (h, full_info);
  BOOL_ROUND_TRIP (h, pread_initialize);
  BOOL_ROUND_TRIP (h, opt_mode);

  for (f = 0; f <= LIBNBD_HANDSHAKE_FLAG_MASK; f++) {
    ck_assert_int_eq (nbd_set_handshake_flags (h, f), 0);
    ck_assert_uint_eq (nbd_get_handshake_flags (h), f);
  }
  for (f = 0; f <= LIBNBD_STRICT_MASK; f++) {
    ck_assert_int_eq (nbd_set_strict_mode (h, f), 0);
    ck_assert_uint_eq (nbd_get_strict_mode (h), f);
  }

  ck_assert_int_eq (nbd_set_tls (h, LIBNBD_TLS_DISABLE), 0);
  ck_assert_int_eq (nbd_get_tls (h), LIBNBD_TLS_DISABLE);

  ck_assert_int_eq (nbd_set_tls_username (h, "alice"), 0);
  ck_assert_owned_str_eq (nbd_get_tls_username (h), "alice");
  ck_assert_int_eq (nbd_set_tls_hostname (h, "server.example.com"), 0);
  ck_assert_owned_str_eq (nbd_get_tls_hostname (h), "server.example.com");
  ck_assert_int_eq (nbd_set_tls_certificates (h, "/nonexistent/pki"), 0);
  ck_assert_int_eq (nbd_set_tls_psk_file (h, "/nonexistent/keys.psk"), 0);

  ck_assert_int_eq (nbd_set_socket_activation_name (h, "nbdSocket1"), 0);
  ck_assert_owned_str_eq (nbd_get_socket_activation_name (h), "nbdSocket1");

  /* Set-only settings. */
  ck_assert_int_eq (nbd_set_uri_allow_transports (h, 0), 0);
  ck_assert_int_eq (nbd_set_uri_allow_transports (h, LIBNBD_ALLOW_TRANSPORT_MASK), 0);
  ck_assert_int_eq (nbd_set_uri_allow_tls (h, LIBNBD_TLS_DISABLE), 0);
  ck_assert_int_eq (nbd_set_uri_allow_tls (h, LIBNBD_TLS_ALLOW), 0);
  ck_assert_int_eq (nbd_set_uri_allow_tls (h, LIBNBD_TLS_REQUIRE), 0);
  ck_assert_int_eq (nbd_set_uri_allow_local_file (h, true), 0);
  ck_assert_int_eq (nbd_set_uri_allow_local_file (h, false), 0);

  nbd_close (h);
}
END_TEST

START_TEST (test_tls_username_default)
{
  struct nbd_handle *h = create ();
  char *s;

  /* Defaults to the local user name: never empty (without $LOGNAME,
   * which could be set to anything; see test_tls_username_logname).
   */
  unsetenv ("LOGNAME");
  s = nbd_get_tls_username (h);
  ck_assert_msg (s != NULL, "%s", nbd_get_error ());
  ck_assert_str_ne (s, "");
  free (s);
  nbd_close (h);
}
END_TEST

/* As libnbd: $LOGNAME, when set (even to ""), is the default user name
 * (a user's way to choose the PSK identity); an explicit name wins over
 * it; without it, the password database entry of the effective user.
 */
START_TEST (test_tls_username_logname)
{
  struct nbd_handle *h = create ();
  const char *saved = getenv ("LOGNAME");
  char *saved_copy = saved ? strdup (saved) : NULL;
  struct passwd *pw;

  ck_assert_int_eq (setenv ("LOGNAME", "env-user", 1), 0);
  ck_assert_owned_str_eq (nbd_get_tls_username (h), "env-user");
  ck_assert_int_eq (setenv ("LOGNAME", "", 1), 0);
  ck_assert_owned_str_eq (nbd_get_tls_username (h), "");

  ck_assert_int_eq (unsetenv ("LOGNAME"), 0);
  pw = getpwuid (geteuid ());
  if (pw)
    ck_assert_owned_str_eq (nbd_get_tls_username (h), pw->pw_name);

  ck_assert_int_eq (setenv ("LOGNAME", "env-user", 1), 0);
  ck_assert_int_eq (nbd_set_tls_username (h, "alice"), 0);
  ck_assert_owned_str_eq (nbd_get_tls_username (h), "alice");

  if (saved_copy)
    setenv ("LOGNAME", saved_copy, 1);
  else
    unsetenv ("LOGNAME");
  free (saved_copy);
  nbd_close (h);
}
END_TEST

/* ---- Argument validation ---- */

START_TEST (test_invalid_flags)
{
  struct nbd_handle *h = create ();

  ck_assert_int_eq (nbd_set_strict_mode (h, LIBNBD_STRICT_COMMANDS), 0);
  ck_assert_int_eq (nbd_set_strict_mode (h, LIBNBD_STRICT_MASK + 1), -1);
  ck_assert_error (EINVAL, "nbd_set_strict_mode", NULL);
  ck_assert_int_eq (nbd_set_strict_mode (h, 0x80000000U), -1);
  ck_assert_error (EINVAL, "nbd_set_strict_mode", NULL);
  ck_assert_uint_eq (nbd_get_strict_mode (h), LIBNBD_STRICT_COMMANDS);

  ck_assert_int_eq (nbd_set_handshake_flags (h, 0), 0);
  ck_assert_int_eq (nbd_set_handshake_flags (h, LIBNBD_HANDSHAKE_FLAG_MASK + 1), -1);
  ck_assert_error (EINVAL, "nbd_set_handshake_flags", NULL);
  ck_assert_int_eq (nbd_set_handshake_flags (h, ~0U), -1);
  ck_assert_error (EINVAL, "nbd_set_handshake_flags", NULL);
  ck_assert_uint_eq (nbd_get_handshake_flags (h), 0);

  ck_assert_int_eq (nbd_set_uri_allow_transports (h, LIBNBD_ALLOW_TRANSPORT_MASK + 1), -1);
  ck_assert_error (EINVAL, "nbd_set_uri_allow_transports", NULL);
  ck_assert_int_eq (nbd_set_uri_allow_transports (h, LIBNBD_ALLOW_TRANSPORT_TCP | 0x100), -1);
  ck_assert_error (EINVAL, "nbd_set_uri_allow_transports", NULL);

  nbd_close (h);
}
END_TEST

START_TEST (test_invalid_enum)
{
  struct nbd_handle *h = create ();

  ck_assert_int_eq (nbd_set_tls (h, 99), -1);
  ck_assert_error (EINVAL, "nbd_set_tls", "tls");
  ck_assert_int_eq (nbd_set_tls (h, -1), -1);
  ck_assert_error (EINVAL, "nbd_set_tls", "tls");
  ck_assert_int_eq (nbd_get_tls (h), LIBNBD_TLS_DISABLE);

  ck_assert_int_eq (nbd_set_uri_allow_tls (h, 99), -1);
  ck_assert_error (EINVAL, "nbd_set_uri_allow_tls", "tls");

  nbd_close (h);
}
END_TEST

START_TEST (test_tls_unsupported)
{
  struct nbd_handle *h = create ();

  if (nbd_supports_tls (h)) {
    ck_assert_int_eq (nbd_set_tls (h, LIBNBD_TLS_REQUIRE), 0);
    ck_assert_int_eq (nbd_get_tls (h), LIBNBD_TLS_REQUIRE);
    ck_assert_int_eq (nbd_set_tls (h, LIBNBD_TLS_ALLOW), 0);
    ck_assert_int_eq (nbd_get_tls (h), LIBNBD_TLS_ALLOW);
  }
  else {
    ck_assert_int_eq (nbd_set_tls (h, LIBNBD_TLS_REQUIRE), -1);
    ck_assert_error (ENOTSUP, "nbd_set_tls", NULL);
    ck_assert_int_eq (nbd_set_tls (h, LIBNBD_TLS_ALLOW), -1);
    ck_assert_error (ENOTSUP, "nbd_set_tls", NULL);
    ck_assert_int_eq (nbd_get_tls (h), LIBNBD_TLS_DISABLE);
  }
  nbd_close (h);
}
END_TEST

START_TEST (test_null_strings)
{
  struct nbd_handle *h = create ();

  ck_assert_int_eq (nbd_set_tls_certificates (h, NULL), -1);
  ck_assert_error (EFAULT, "nbd_set_tls_certificates", "dir");
  ck_assert_int_eq (nbd_set_tls_username (h, NULL), -1);
  ck_assert_error (EFAULT, "nbd_set_tls_username", "username");
  ck_assert_int_eq (nbd_set_tls_psk_file (h, NULL), -1);
  ck_assert_error (EFAULT, "nbd_set_tls_psk_file", "filename");
  ck_assert_int_eq (nbd_set_tls_hostname (h, NULL), -1);
  ck_assert_error (EFAULT, "nbd_set_tls_hostname", "hostname");
  ck_assert_int_eq (nbd_add_meta_context (h, NULL), -1);
  ck_assert_error (EFAULT, "nbd_add_meta_context", "name");
  ck_assert_int_eq (nbd_set_socket_activation_name (h, NULL), -1);
  ck_assert_error (EFAULT, "nbd_set_socket_activation_name", "socket_name");
  ck_assert_int_eq (nbd_get_nr_meta_contexts (h), 0);
  nbd_close (h);
}
END_TEST

START_TEST (test_socket_activation_name)
{
  /* nbd_set_socket_activation_name(3): "a short alphanumeric string";
   * upstream allows ASCII letters and digits only, at most 32 of them,
   * and the empty string restores the default.
   */
  static const char *const not_alnum[] = {
    "a:b", "nbd-socket", "with space", "under_score", "dot.", "caf\xc3\xa9",
  };
  struct nbd_handle *h = create ();
  size_t i;
  char *s;

  ck_assert_int_eq (nbd_set_socket_activation_name (h, "good"), 0);
  for (i = 0; i < sizeof not_alnum / sizeof not_alnum[0]; ++i) {
    ck_assert_int_eq (nbd_set_socket_activation_name (h, not_alnum[i]), -1);
    ck_assert_error (EINVAL, "nbd_set_socket_activation_name", NULL);
  }
  s = string_of_length (33);
  ck_assert_int_eq (nbd_set_socket_activation_name (h, s), -1);
  ck_assert_error (ENAMETOOLONG, "nbd_set_socket_activation_name", NULL);
  free (s);
  /* Failures leave the name as it was. */
  ck_assert_owned_str_eq (nbd_get_socket_activation_name (h), "good");
  s = string_of_length (32);
  ck_assert_int_eq (nbd_set_socket_activation_name (h, s), 0);
  ck_assert_owned_str_eq (nbd_get_socket_activation_name (h), s);
  free (s);
  ck_assert_int_eq (nbd_set_socket_activation_name (h, "Mixed09"), 0);
  ck_assert_owned_str_eq (nbd_get_socket_activation_name (h), "Mixed09");
  ck_assert_int_eq (nbd_set_socket_activation_name (h, ""), 0);
  ck_assert_owned_str_eq (nbd_get_socket_activation_name (h), "");
  nbd_close (h);
}
END_TEST

/* ---- Meta context requests ---- */

START_TEST (test_meta_contexts)
{
  struct nbd_handle *h = create ();
  char *s;

  ck_assert_int_eq (nbd_get_nr_meta_contexts (h), 0);
  ck_assert_ptr_null (nbd_get_meta_context (h, 0));
  ck_assert_error (EINVAL, "nbd_get_meta_context", NULL);

  ck_assert_int_eq (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
  ck_assert_int_eq (nbd_add_meta_context (h, "qemu:dirty-bitmap:bitmap0"), 0);
  ck_assert_int_eq (nbd_get_nr_meta_contexts (h), 2);
  ck_assert_owned_str_eq (nbd_get_meta_context (h, 0), "base:allocation");
  ck_assert_owned_str_eq (nbd_get_meta_context (h, 1), "qemu:dirty-bitmap:bitmap0");
  ck_assert_ptr_null (nbd_get_meta_context (h, 2));
  ck_assert_error (EINVAL, "nbd_get_meta_context", NULL);
  ck_assert_ptr_null (nbd_get_meta_context (h, (size_t) -1));
  ck_assert_error (EINVAL, "nbd_get_meta_context", NULL);

  s = string_of_length (4097);
  ck_assert_int_eq (nbd_add_meta_context (h, s), -1);
  ck_assert_error (ENAMETOOLONG, "nbd_add_meta_context", NULL);
  free (s);
  ck_assert_int_eq (nbd_get_nr_meta_contexts (h), 2);

  ck_assert_int_eq (nbd_clear_meta_contexts (h), 0);
  ck_assert_int_eq (nbd_get_nr_meta_contexts (h), 0);
  ck_assert_ptr_null (nbd_get_meta_context (h, 0));
  ck_assert_error (EINVAL, "nbd_get_meta_context", NULL);

  ck_assert_int_eq (nbd_add_meta_context (h, "x"), 0);
  ck_assert_int_eq (nbd_get_nr_meta_contexts (h), 1);
  ck_assert_owned_str_eq (nbd_get_meta_context (h, 0), "x");
  nbd_close (h);                /* frees the list: checked by valgrind/ASan */
}
END_TEST

/* ---- Private data ---- */

START_TEST (test_private_data)
{
  struct nbd_handle *h = create ();

  ck_assert_uint_eq (nbd_get_private_data (h), 0);
  ck_assert_uint_eq (nbd_set_private_data (h, 42), 0);
  ck_assert_uint_eq (nbd_get_private_data (h), 42);
  ck_assert_uint_eq (nbd_set_private_data (h, UINTPTR_MAX), 42);
  ck_assert_uint_eq (nbd_get_private_data (h), UINTPTR_MAX);
  ck_assert_uint_eq (nbd_set_private_data (h, 7), UINTPTR_MAX);
  ck_assert_uint_eq (nbd_get_private_data (h), 7);
  nbd_close (h);
}
END_TEST

/* ---- Debug messages ---- */

#define MAX_MESSAGES 64

struct messages {
  size_t n;
  char *context[MAX_MESSAGES];
  char *msg[MAX_MESSAGES];
  int frees;
};

static int
record_debug (void *user_data, const char *context, const char *msg)
{
  struct messages *m = user_data;

  if (m->n < MAX_MESSAGES) {
    m->context[m->n] = strdup (context ? context : "(null)");
    m->msg[m->n] = strdup (msg ? msg : "(null)");
    m->n++;
  }
  return 0;
}

static void
free_messages (void *user_data)
{
  struct messages *m = user_data;

  m->frees++;
}

static void
reset_messages (struct messages *m)
{
  for (size_t i = 0; i < m->n; i++) {
    free (m->context[i]);
    free (m->msg[i]);
  }
  m->n = 0;
}

static bool
starts_with (const char *s, const char *prefix)
{
  return strncmp (s, prefix, strlen (prefix)) == 0;
}

START_TEST (test_debug_callback_messages)
{
  struct nbd_handle *h = create ();
  struct messages m = { 0 };
  nbd_debug_callback cb = { .callback = record_debug, .user_data = &m,
                            .free = free_messages };

  ck_assert_int_eq (nbd_get_debug (h), 0);
  ck_assert_int_eq (nbd_set_debug_callback (h, cb), 0);
  ck_assert_int_eq (m.frees, 0);

  /* Debug off: nothing. */
  ck_assert_int_eq (nbd_set_export_name (h, "quiet"), 0);
  ck_assert_int_eq (nbd_set_export_name (h, NULL), -1);
  ck_assert_uint_eq (m.n, 0);

  ck_assert_int_eq (nbd_set_debug (h, true), 0);
  reset_messages (&m);

  ck_assert_int_eq (nbd_set_export_name (h, "loud"), 0);
  ck_assert_uint_ge (m.n, 2);
  for (size_t i = 0; i < m.n; i++)
    ck_assert_str_eq (m.context[i], "nbd_set_export_name");
  ck_assert_msg (starts_with (m.msg[0], "enter:"), "first: %s", m.msg[0]);
  ck_assert_msg (strstr (m.msg[0], "loud") != NULL, "first: %s", m.msg[0]);
  ck_assert_msg (starts_with (m.msg[m.n - 1], "leave:"), "last: %s",
                 m.msg[m.n - 1]);
  ck_assert_msg (strstr (m.msg[m.n - 1], "ret=0") != NULL, "last: %s",
                 m.msg[m.n - 1]);
  reset_messages (&m);

  /* A failing call reports its error on leave. */
  ck_assert_int_eq (nbd_set_tls (h, 99), -1);
  ck_assert_uint_ge (m.n, 2);
  ck_assert_str_eq (m.context[0], "nbd_set_tls");
  ck_assert_msg (starts_with (m.msg[0], "enter:"), "first: %s", m.msg[0]);
  ck_assert_str_eq (m.context[m.n - 1], "nbd_set_tls");
  ck_assert_msg (starts_with (m.msg[m.n - 1], "leave:"), "last: %s",
                 m.msg[m.n - 1]);
  ck_assert_msg (strstr (m.msg[m.n - 1], "error=") != NULL, "last: %s",
                 m.msg[m.n - 1]);
  reset_messages (&m);

  /* Debug off again: silent after nbd_set_debug returns. */
  ck_assert_int_eq (nbd_set_debug (h, false), 0);
  reset_messages (&m);
  ck_assert_int_eq (nbd_set_handle_name (h, "silent"), 0);
  ck_assert_int_eq (nbd_get_opt_mode (h), 0);
  ck_assert_uint_eq (m.n, 0);

  ck_assert_int_eq (m.frees, 0);
  nbd_close (h);
  ck_assert_int_eq (m.frees, 1);
  reset_messages (&m);
}
END_TEST

START_TEST (test_debug_callback_free)
{
  struct nbd_handle *h = create ();
  struct messages m1 = { 0 }, m2 = { 0 }, m3 = { 0 };
  nbd_debug_callback cb1 = { .callback = record_debug, .user_data = &m1,
                             .free = free_messages };
  nbd_debug_callback cb2 = { .callback = record_debug, .user_data = &m2,
                             .free = free_messages };
  nbd_debug_callback cb3 = { .callback = record_debug, .user_data = &m3,
                             .free = free_messages };

  ck_assert_int_eq (nbd_set_debug (h, true), 0);

  /* Replaced. */
  ck_assert_int_eq (nbd_set_debug_callback (h, cb1), 0);
  ck_assert_int_eq (m1.frees, 0);
  ck_assert_int_eq (nbd_set_debug_callback (h, cb2), 0);
  ck_assert_int_eq (m1.frees, 1);
  ck_assert_int_eq (m2.frees, 0);
  /* The old callback no longer receives messages, the new one does. */
  reset_messages (&m1);
  reset_messages (&m2);
  ck_assert_int_eq (nbd_set_handle_name (h, "x"), 0);
  ck_assert_uint_eq (m1.n, 0);
  ck_assert_uint_ge (m2.n, 2);

  /* Cleared. */
  ck_assert_int_eq (nbd_clear_debug_callback (h), 0);
  ck_assert_int_eq (m2.frees, 1);
  ck_assert_int_eq (nbd_clear_debug_callback (h), 0);   /* nothing to free */
  ck_assert_int_eq (m2.frees, 1);
  reset_messages (&m2);
  ck_assert_int_eq (nbd_set_debug (h, false), 0);
  ck_assert_int_eq (nbd_set_handle_name (h, "y"), 0);
  ck_assert_uint_eq (m2.n, 0);

  /* Closed. */
  ck_assert_int_eq (nbd_set_debug_callback (h, cb3), 0);
  ck_assert_int_eq (m3.frees, 0);
  nbd_close (h);
  ck_assert_int_eq (m1.frees, 1);
  ck_assert_int_eq (m2.frees, 1);
  ck_assert_int_eq (m3.frees, 1);
  reset_messages (&m1);
  reset_messages (&m2);
  reset_messages (&m3);
}
END_TEST

START_TEST (test_debug_env)
{
  struct nbd_handle *h;
  struct messages m = { 0 };
  nbd_debug_callback cb = { .callback = record_debug, .user_data = &m,
                            .free = free_messages };

  ck_assert_int_eq (setenv ("LIBNBD_DEBUG", "1", 1), 0);
  h = create ();
  ck_assert_int_eq (unsetenv ("LIBNBD_DEBUG"), 0);
  ck_assert_int_eq (nbd_get_debug (h), 1);
  ck_assert_int_eq (nbd_set_debug_callback (h, cb), 0);
  reset_messages (&m);
  ck_assert_int_eq (nbd_set_export_name (h, "env"), 0);
  ck_assert_uint_ge (m.n, 2);
  ck_assert_str_eq (m.context[0], "nbd_set_export_name");
  nbd_close (h);
  ck_assert_int_eq (m.frees, 1);
  reset_messages (&m);

  /* Only "1" turns it on. */
  ck_assert_int_eq (setenv ("LIBNBD_DEBUG", "0", 1), 0);
  h = create ();
  ck_assert_int_eq (unsetenv ("LIBNBD_DEBUG"), 0);
  ck_assert_int_eq (nbd_get_debug (h), 0);
  nbd_close (h);

  h = create ();
  ck_assert_int_eq (nbd_get_debug (h), 0);
  nbd_close (h);
}
END_TEST

/* ---- Errors are per thread ---- */

struct thread_result {
  struct nbd_handle *h;
  pthread_barrier_t *barrier;
  int ret;
  const char *mismatch;         /* NULL if the error seen was right */
  char mismatch_copy[1024];
};

static void
save_mismatch (struct thread_result *r, const char *mismatch)
{
  r->mismatch = NULL;
  if (mismatch) {
    snprintf (r->mismatch_copy, sizeof r->mismatch_copy, "%s", mismatch);
    r->mismatch = r->mismatch_copy;
  }
}

static void *
thread_a (void *arg)
{
  struct thread_result *r = arg;

  r->ret = nbd_set_export_name (r->h, NULL);            /* EFAULT */
  pthread_barrier_wait (r->barrier);                    /* A failed */
  pthread_barrier_wait (r->barrier);                    /* B failed */
  save_mismatch (r, error_mismatch (EFAULT, "nbd_set_export_name",
                                    "export_name"));
  return NULL;
}

static void *
thread_b (void *arg)
{
  struct thread_result *r = arg;

  pthread_barrier_wait (r->barrier);                    /* A failed */
  r->ret = nbd_set_tls (r->h, 99);                      /* EINVAL */
  pthread_barrier_wait (r->barrier);                    /* B failed */
  save_mismatch (r, error_mismatch (EINVAL, "nbd_set_tls", NULL));
  return NULL;
}

static void *
thread_clean (void *arg)
{
  struct thread_result *r = arg;

  /* A thread that made no call has no error. */
  r->ret = nbd_get_errno ();
  r->mismatch = nbd_get_error () ? "nbd_get_error () is not NULL" : NULL;
  return NULL;
}

START_TEST (test_errors_thread_local)
{
  struct nbd_handle *h = create ();
  pthread_barrier_t barrier;
  pthread_t ta, tb, tc;
  struct thread_result ra = { .h = h, .barrier = &barrier },
    rb = { .h = h, .barrier = &barrier }, rc = { .h = h };
  char *s = string_of_length (4097);

  /* The main thread's own error. */
  ck_assert_int_eq (nbd_set_export_name (h, s), -1);
  free (s);
  ck_assert_error (ENAMETOOLONG, "nbd_set_export_name", NULL);

  ck_assert_int_eq (pthread_barrier_init (&barrier, NULL, 2), 0);
  ck_assert_int_eq (pthread_create (&ta, NULL, thread_a, &ra), 0);
  ck_assert_int_eq (pthread_create (&tb, NULL, thread_b, &rb), 0);
  ck_assert_int_eq (pthread_join (ta, NULL), 0);
  ck_assert_int_eq (pthread_join (tb, NULL), 0);
  ck_assert_int_eq (pthread_create (&tc, NULL, thread_clean, &rc), 0);
  ck_assert_int_eq (pthread_join (tc, NULL), 0);
  pthread_barrier_destroy (&barrier);

  ck_assert_int_eq (ra.ret, -1);
  ck_assert_msg (ra.mismatch == NULL, "thread A: %s", ra.mismatch);
  ck_assert_int_eq (rb.ret, -1);
  ck_assert_msg (rb.mismatch == NULL, "thread B: %s", rb.mismatch);
  ck_assert_int_eq (rc.ret, 0);
  ck_assert_msg (rc.mismatch == NULL, "thread C: %s", rc.mismatch);

  /* Unchanged by the other threads. */
  ck_assert_error (ENAMETOOLONG, "nbd_set_export_name", NULL);
  nbd_close (h);
}
END_TEST

/* ---- Closures passed to failing calls are freed exactly once ---- */

struct counter {
  int calls;
  int frees;
};

static int
count_call (void *user_data, int *error)
{
  (void) error;
  ((struct counter *) user_data)->calls++;
  return 0;
}

static int
count_extent (void *user_data, const char *metacontext, uint64_t offset,
              uint32_t *entries, size_t nr_entries, int *error)
{
  (void) metacontext; (void) offset; (void) entries; (void) nr_entries;
  (void) error;
  ((struct counter *) user_data)->calls++;
  return 0;
}

static void
counter_free (void *user_data)
{
  ((struct counter *) user_data)->frees++;
}

static void
assert_failed_call (const char *call)
{
  int e = nbd_get_errno ();
  const char *mismatch;

  /* Not implemented yet (ENOTSUP), or not connected (ENOTCONN). */
  ck_assert_msg (e == ENOTSUP || e == ENOTCONN,
                 "%s: errno %d, expected ENOTSUP or ENOTCONN: %s",
                 call, e, nbd_get_error ());
  mismatch = error_mismatch (e, call, NULL);
  ck_assert_msg (mismatch == NULL, "%s", mismatch);
}

START_TEST (test_closure_free)
{
  struct nbd_handle *h = create ();
  char buf[512];
  struct counter c1 = { 0 }, c2 = { 0 }, c3 = { 0 }, c4 = { 0 };
  int frees = 0;
  nbd_completion_callback completion1 = {
    .callback = count_call, .user_data = &c1, .free = counter_free
  };
  nbd_completion_callback completion3 = {
    .callback = count_call, .user_data = &c3, .free = counter_free
  };
  nbd_completion_callback completion4 = {
    .callback = count_call, .user_data = &c4, .free = counter_free
  };
  nbd_extent_callback extent = {
    .callback = count_extent, .user_data = &c2, .free = counter_free
  };
  nbd_debug_callback nocb = { .callback = NULL, .user_data = &frees,
                              .free = count_free };

  /* A command on a handle that is not connected. */
  ck_assert_int_eq (nbd_aio_pread (h, buf, sizeof buf, 0, completion1, 0), -1);
  assert_failed_call ("nbd_aio_pread");
  ck_assert_int_eq (c1.frees, 1);
  ck_assert_int_eq (c1.calls, 0);

  /* Two closures: each freed once. */
  memset (&c1, 0, sizeof c1);
  ck_assert_int_eq (nbd_aio_block_status (h, 512, 0, extent, completion1, 0), -1);
  assert_failed_call ("nbd_aio_block_status");
  ck_assert_int_eq (c1.frees, 1);
  ck_assert_int_eq (c2.frees, 1);
  ck_assert_int_eq (c1.calls, 0);
  ck_assert_int_eq (c2.calls, 0);

  /* Option negotiation on a handle that is not connected. */
  ck_assert_int_eq (nbd_aio_opt_go (h, completion3), -1);
  assert_failed_call ("nbd_aio_opt_go");
  ck_assert_int_eq (c3.frees, 1);
  ck_assert_int_eq (c3.calls, 0);

  /* A NULL handle. */
  ck_assert_int_eq (nbd_aio_pread (NULL, buf, sizeof buf, 0, completion4, 0), -1);
  ck_assert_error (EFAULT, "nbd_aio_pread", NULL);
  ck_assert_int_eq (c4.frees, 1);
  ck_assert_int_eq (c4.calls, 0);

  /* A closure with only .free is not a NULL closure (as libnbd): it is
   * accepted, and its .free runs once, when it is replaced or at close.
   */
  ck_assert_int_eq (nbd_set_debug_callback (h, nocb), 0);
  ck_assert_int_eq (frees, 0);

  /* Close frees it; nothing else runs again. */
  nbd_close (h);
  ck_assert_int_eq (c1.frees, 1);
  ck_assert_int_eq (c2.frees, 1);
  ck_assert_int_eq (c3.frees, 1);
  ck_assert_int_eq (c4.frees, 1);
  ck_assert_int_eq (frees, 1);
}
END_TEST

static Suite *
handle_suite (void)
{
  Suite *s = suite_create ("handle");
  TCase *tc;

  tc = tcase_create ("identity");
  tcase_add_test (tc, test_version);
  tcase_add_test (tc, test_create_close);
  tcase_add_test (tc, test_null_handle);
  suite_add_tcase (s, tc);

  tc = tcase_create ("settings");
  tcase_add_test (tc, test_handle_name);
  tcase_add_test (tc, test_export_name);
  tcase_add_test (tc, test_defaults);
  tcase_add_test (tc, test_round_trips);
  tcase_add_test (tc, test_tls_username_default);
  tcase_add_test (tc, test_tls_username_logname);
  tcase_add_test (tc, test_socket_activation_name);
  tcase_add_test (tc, test_meta_contexts);
  tcase_add_test (tc, test_private_data);
  suite_add_tcase (s, tc);

  tc = tcase_create ("validation");
  tcase_add_test (tc, test_invalid_flags);
  tcase_add_test (tc, test_invalid_enum);
  tcase_add_test (tc, test_tls_unsupported);
  tcase_add_test (tc, test_null_strings);
  suite_add_tcase (s, tc);

  tc = tcase_create ("debug");
  tcase_add_test (tc, test_debug_callback_messages);
  tcase_add_test (tc, test_debug_callback_free);
  tcase_add_test (tc, test_debug_env);
  suite_add_tcase (s, tc);

  tc = tcase_create ("errors");
  tcase_add_test (tc, test_errors_thread_local);
  tcase_add_test (tc, test_closure_free);
  suite_add_tcase (s, tc);

  return s;
}

int
main (void)
{
  SRunner *sr;
  int failed;

  /* The tests assume the default debug setting. */
  unsetenv ("LIBNBD_DEBUG");

  sr = srunner_create (handle_suite ());
  srunner_run_all (sr, CK_ENV);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
