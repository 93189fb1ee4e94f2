/* nbd_set_tls_priority, nbd_get_tls_priority and
 * nbd_set_uri_allow_tls_priority: the build-time default, the state
 * rules, the priority reaching the GnuTLS session (seen in the
 * negotiated protocol version) and an invalid string failing the TLS
 * handshake with GnuTLS's message and the error position.
 *
 * The parts needing a TLS server are skipped without TLS support,
 * nbdkit with TLS or psktool.
 */
/* A NULL priority is passed on purpose (EFAULT), so the header's nonnull
 * attributes (GCC warnings, UBSan aborts) are switched off here.
 */
#define LIBNBD_ATTRIBUTE_NONNULL(...)

#include <config.h>

#include <stdbool.h>
#include <stdint.h>

#include "checks.h"
#include "server.h"

static char dir[] = "/tmp/test-tls-priority-XXXXXX";
static char pskfile[128];
static struct server s;

static void
cleanup (void)
{
  char cmd[256];

  server_stop (&s);
  snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system (cmd) != 0)
    fprintf (stderr, "could not remove %s\n", dir);
}

/* The debug message GnuTLS's session description goes into. */
static char session_desc[512];

static int
catch_session_desc (void *user_data, const char *context, const char *msg)
{
  static const char prefix[] = "TLS: handshake done: ";
  const char *p = strstr (msg, prefix);

  (void) user_data; (void) context;
  if (p)
    snprintf (session_desc, sizeof session_desc, "%s", p + strlen (prefix));
  return 0;
}

static struct nbd_handle *
psk_handle (const char *priority)
{
  struct nbd_handle *h = nbd_create ();

  REQUIRE (h != NULL, "nbd_create");
  EXPECT_OK (nbd_set_tls (h, LIBNBD_TLS_REQUIRE));
  EXPECT_OK (nbd_set_tls_psk_file (h, pskfile));
  EXPECT_OK (nbd_set_tls_username (h, "alice"));
  if (priority)
    EXPECT_OK (nbd_set_tls_priority (h, priority));
  EXPECT_OK (nbd_set_debug_callback (h, (nbd_debug_callback) {
        .callback = catch_session_desc }));
  EXPECT_OK (nbd_set_debug (h, true));
  session_desc[0] = '\0';
  return h;
}

/* Connects with the priority and checks the negotiated version. */
static void
check_version (const char *priority, const char *version)
{
  struct nbd_handle *h = psk_handle (priority);

  if (nbd_connect_unix (h, s.sock) == -1)
    FAIL ("priority %s: %s", priority, nbd_get_error ());
  else {
    CHECK_EQ (nbd_get_tls_negotiated (h), 1);
    CHECK (strstr (session_desc, version) != NULL,
           "priority %s: session is \"%s\", expected %s", priority,
           session_desc, version);
    CHECK_EQ (nbd_shutdown (h, 0), 0);
  }
  nbd_close (h);
}

static void
test_without_server (void)
{
  struct nbd_handle *h = nbd_create ();
  const char *volatile null = NULL;
  char *p;

  REQUIRE (h != NULL, "nbd_create");
  p = nbd_get_tls_priority (h);
  CHECK_STREQ (p, TLS_PRIORITY);
  free (p);
  EXPECT_OK (nbd_set_tls_priority (h, "NORMAL:-VERS-TLS1.0"));
  p = nbd_get_tls_priority (h);
  CHECK_STREQ (p, "NORMAL:-VERS-TLS1.0");
  free (p);
  /* Not checked until TLS starts (and accepted without TLS support). */
  EXPECT_OK (nbd_set_tls_priority (h, "certainly not a priority"));
  p = nbd_get_tls_priority (h);
  CHECK_STREQ (p, "certainly not a priority");
  free (p);
  CHECK_FAILS (nbd_set_tls_priority (h, null), EFAULT,
               "nbd_set_tls_priority", NULL);
  EXPECT_OK (nbd_set_uri_allow_tls_priority (h, true));
  EXPECT_OK (nbd_set_uri_allow_tls_priority (h, false));
  nbd_close (h);
}

/* Only in the created state. */
static void
test_states (void)
{
  struct nbd_handle *h = psk_handle (NULL);
  char *p;

  EXPECT_OK (nbd_connect_unix (h, s.sock));
  CHECK_FAILS (nbd_set_tls_priority (h, "NORMAL"), EINVAL,
               "nbd_set_tls_priority", NULL);
  CHECK_FAILS (nbd_set_uri_allow_tls_priority (h, true), EINVAL,
               "nbd_set_uri_allow_tls_priority", NULL);
  p = nbd_get_tls_priority (h);
  CHECK_STREQ (p, TLS_PRIORITY);
  free (p);
  nbd_shutdown (h, 0);
  p = nbd_get_tls_priority (h);
  CHECK_STREQ (p, TLS_PRIORITY);
  free (p);
  CHECK_FAILS (nbd_set_tls_priority (h, "NORMAL"), EINVAL,
               "nbd_set_tls_priority", NULL);
  nbd_close (h);
}

static void
test_invalid (void)
{
  struct nbd_handle *h;

  /* PSK: the key exchanges are appended to the string. */
  h = psk_handle ("NORMAL:+BOGUS-CIPHER");
  CHECK_FAILS (nbd_connect_unix (h, s.sock), EINVAL, "nbd_connect_unix",
               "invalid at position 7 ('+BOGUS-CIPHER");
  CHECK (strstr (nbd_get_error (), "The request is invalid") != NULL,
         "no GnuTLS message in: %s", nbd_get_error ());
  CHECK (session_desc[0] == '\0', "a TLS session was made: %s", session_desc);
  nbd_close (h);

  /* Certificates: the string as given. */
  h = nbd_create ();
  REQUIRE (h != NULL, "nbd_create");
  EXPECT_OK (nbd_set_tls (h, LIBNBD_TLS_REQUIRE));
  EXPECT_OK (nbd_set_tls_priority (h, "NORMAL:%COMPAT:NOT-A-KEYWORD"));
  CHECK_FAILS (nbd_connect_unix (h, s.sock), EINVAL, "nbd_connect_unix",
               "'NORMAL:%COMPAT:NOT-A-KEYWORD' is invalid at position 15 "
               "('NOT-A-KEYWORD')");
  nbd_close (h);
}

#ifdef HAVE_LIBXML2
static void
test_uri (void)
{
  struct nbd_handle *h;
  char uri[512];

  snprintf (uri, sizeof uri, "nbds+unix:///?socket=%s&tls-psk-file=%s"
            "&tls-username=alice&tls-priority=NORMAL:-VERS-ALL:+VERS-TLS1.2",
            s.sock, pskfile);
  h = nbd_create ();
  REQUIRE (h != NULL, "nbd_create");
  EXPECT_OK (nbd_set_uri_allow_local_file (h, true));
  CHECK_FAILS (nbd_connect_uri (h, uri), EPERM, "nbd_connect_uri",
               "overriding TLS priority (tls-priority) is not allowed, call "
               "nbd_set_uri_allow_tls_priority to enable this");
  nbd_close (h);

  h = psk_handle (NULL);
  EXPECT_OK (nbd_set_uri_allow_local_file (h, true));
  EXPECT_OK (nbd_set_uri_allow_tls_priority (h, true));
  if (nbd_connect_uri (h, uri) == -1)
    FAIL ("%s: %s", uri, nbd_get_error ());
  else {
    char *p = nbd_get_tls_priority (h);
    CHECK_STREQ (p, "NORMAL:-VERS-ALL:+VERS-TLS1.2");
    free (p);
    CHECK (strstr (session_desc, "TLS1.2") != NULL,
           "session is \"%s\", expected TLS1.2", session_desc);
    CHECK_EQ (nbd_shutdown (h, 0), 0);
  }
  nbd_close (h);
}
#endif

int
main (void)
{
  int r;

  alarm (120);
  test_without_server ();

  REQUIRE (mkdtemp (dir) != NULL, "mkdtemp");
  atexit (cleanup);
  snprintf (pskfile, sizeof pskfile, "%s/keys.psk", dir);
  r = start_nbdkit_psk (&s, pskfile);
  REQUIRE (r != -1, "nbdkit with TLS-PSK did not start");
  if (r == 1) {
    fprintf (stderr, "test-tls-priority: no TLS, psktool or nbdkit with TLS: "
             "only the settings were tested\n");
    return check_status ("test-tls-priority") == EXIT_SUCCESS ? 77 : 1;
  }

  test_states ();
  if (strcmp (TLS_PRIORITY, "NORMAL") == 0)   /* nbdkit's default is 1.3 */
    check_version (NULL, "TLS1.3");
  check_version ("NORMAL:-VERS-ALL:+VERS-TLS1.2", "TLS1.2");
  check_version ("NORMAL:-VERS-ALL:+VERS-TLS1.3", "TLS1.3");
  test_invalid ();
#ifdef HAVE_LIBXML2
  test_uri ();
#endif

  return check_status ("test-tls-priority");
}
