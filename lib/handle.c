/* The handle: creation, destruction, and its settings. */
#include <config.h>

#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static atomic_uint handle_counter;

struct nbd_handle *
nbd_create (void)
{
  struct nbd_handle *h;
  const char *s;

  nbd_internal_set_error_context ("nbd_create");
  h = calloc (1, sizeof *h);
  if (!h) {
    set_error (errno, "calloc");
    return NULL;
  }
  if (asprintf (&h->hname, "nbd%u", atomic_fetch_add (&handle_counter, 1) + 1) == -1) {
    set_error (errno, "asprintf");
    free (h);
    return NULL;
  }
  h->export_name = strdup ("");
  h->sact_name = strdup ("");
  if (!h->export_name || !h->sact_name) {
    set_error (errno, "strdup");
    goto fail;
  }
  {
    /* Recursive: callbacks run with the lock held and may issue new
     * commands on the same handle. */
    pthread_mutexattr_t attr;
    pthread_mutexattr_init (&attr);
    pthread_mutexattr_settype (&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init (&h->lock, &attr);
    pthread_mutexattr_destroy (&attr);
  }
  if (nbd_internal_wait_init (h) == -1) {
    pthread_mutex_destroy (&h->lock);
    goto fail;
  }

  s = getenv ("LIBNBD_DEBUG");
  h->debug = s && strcmp (s, "1") == 0;
  h->tls = LIBNBD_TLS_DISABLE;
  h->tls_verify_peer = true;
  h->request_sr = true;
  h->request_eh = true;
  h->request_meta = true;
  h->request_block_size = true;
  h->pread_initialize = true;
  h->handshake_flags = LIBNBD_HANDSHAKE_FLAG_MASK;
  h->strict = LIBNBD_STRICT_MASK;
  h->uri_allow_transports = LIBNBD_ALLOW_TRANSPORT_MASK;
  h->uri_allow_tls = LIBNBD_TLS_ALLOW;
  h->state = STATE_CREATED;
  h->fd = -1;
  atomic_init (&h->cancel_fd, -1);
  atomic_init (&h->cancels_using, 0);
  h->pid = -1;
  h->next_cookie = 1;
  debug (h, "opening handle");
  nbd_internal_timeouts_from_env (h);
  return h;

 fail:
  free (h->export_name);
  free (h->sact_name);
  free (h->hname);
  free (h);
  return NULL;
}

void
nbd_close (struct nbd_handle *h)
{
  if (h == NULL)
    return;
  nbd_internal_set_error_context ("nbd_close");
  debug (h, "closing handle");
  nbd_internal_watchdog_stop (h);

  /* Commands still queued or in flight are retired first: their
   * callbacks' .free run now, exactly once.
   */
  nbd_internal_free_commands (h);
  nbd_internal_close_socket (h);
  nbd_internal_handshake_free (h);
  nbd_internal_subprocess_reap (h);

  FREE_CLOSURE (h->debug_callback);
  free (h->hname);
  free (h->export_name);
  free (h->tls_certificates);
  free (h->tls_username);
  free (h->tls_psk_file);
  free (h->tls_hostname);
  free (h->tls_connect_host);
  free (h->tls_connect_port);
  free (h->tls_priority);
  free (h->sact_name);
  free (h->uri);
  free (h->canonical_name);
  free (h->description);
  nbd_internal_string_vector_clear (&h->request_meta_contexts);
  free (h->request_meta_contexts.ptr);
  nbd_internal_clear_meta_contexts (h);
  free (h->rbuf);
  free (h->scratch_ext);
  free (h->scratch_pairs);
  free (h->dead_msg);
  nbd_internal_wait_free (h);
  pthread_mutex_destroy (&h->lock);
  free (h);
}

/* ---- Debugging ---- */

int
nbd_unlocked_set_debug (struct nbd_handle *h, bool debug)
{
  h->debug = debug;
  return 0;
}

int
nbd_unlocked_get_debug (struct nbd_handle *h)
{
  return h->debug;
}

int
nbd_unlocked_set_debug_callback (struct nbd_handle *h,
                                 nbd_debug_callback *debug_callback)
{
  FREE_CLOSURE (h->debug_callback);
  TAKE_CLOSURE (h->debug_callback, debug_callback);
  return 0;
}

int
nbd_unlocked_clear_debug_callback (struct nbd_handle *h)
{
  FREE_CLOSURE (h->debug_callback);
  return 0;
}

/* ---- Simple settings ---- */

static int
replace_string (char **field, const char *value)
{
  char *copy = strdup (value);
  if (!copy) {
    set_error (errno, "strdup");
    return -1;
  }
  free (*field);
  *field = copy;
  return 0;
}

static char *
copy_string (const char *value)
{
  char *copy = strdup (value ? value : "");
  if (!copy)
    set_error (errno, "strdup");
  return copy;
}

int
nbd_unlocked_set_handle_name (struct nbd_handle *h, const char *name)
{
  return replace_string (&h->hname, name);
}

char *
nbd_unlocked_get_handle_name (struct nbd_handle *h)
{
  return copy_string (h->hname);
}

uintptr_t
nbd_unlocked_set_private_data (struct nbd_handle *h, uintptr_t data)
{
  uintptr_t old = h->private_data;
  h->private_data = data;
  return old;
}

uintptr_t
nbd_unlocked_get_private_data (struct nbd_handle *h)
{
  return h->private_data;
}

int
nbd_unlocked_set_export_name (struct nbd_handle *h, const char *name)
{
  if (strlen (name) > NBD_MAX_STRING) {
    set_error (ENAMETOOLONG, "export name too long for NBD protocol");
    return -1;
  }
  /* Naming the export already named keeps what is known about it. */
  if (h->export_name && strcmp (h->export_name, name) == 0)
    return 0;
  if (replace_string (&h->export_name, name) == -1)
    return -1;
  /* What nbd_opt_info learned, and the contexts agreed, were about the
   * other export: they do not carry over.
   */
  nbd_internal_clear_meta_contexts (h);
  nbd_internal_forget_export (h);
  return 0;
}

char *
nbd_unlocked_get_export_name (struct nbd_handle *h)
{
  return copy_string (h->export_name);
}

int
nbd_unlocked_set_request_block_size (struct nbd_handle *h, bool request)
{
  h->request_block_size = request;
  return 0;
}

int
nbd_unlocked_get_request_block_size (struct nbd_handle *h)
{
  return h->request_block_size;
}

int
nbd_unlocked_set_full_info (struct nbd_handle *h, bool request)
{
  h->full_info = request;
  return 0;
}

int
nbd_unlocked_get_full_info (struct nbd_handle *h)
{
  return h->full_info;
}

/* ---- TLS settings ---- */

int
nbd_unlocked_set_tls (struct nbd_handle *h, int tls)
{
  if (tls != LIBNBD_TLS_DISABLE && !nbd_unlocked_supports_tls (h)) {
    set_error (ENOTSUP, "libnbd was built without TLS support");
    return -1;
  }
  h->tls = tls;
  return 0;
}

int
nbd_unlocked_get_tls (struct nbd_handle *h)
{
  return h->tls;
}

int
nbd_unlocked_set_tls_certificates (struct nbd_handle *h, const char *dir)
{
  return replace_string (&h->tls_certificates, dir);
}

int
nbd_unlocked_set_tls_verify_peer (struct nbd_handle *h, bool verify)
{
  h->tls_verify_peer = verify;
  return 0;
}

int
nbd_unlocked_get_tls_verify_peer (struct nbd_handle *h)
{
  return h->tls_verify_peer;
}

int
nbd_unlocked_set_tls_username (struct nbd_handle *h, const char *username)
{
  return replace_string (&h->tls_username, username);
}

char *
nbd_unlocked_get_tls_username (struct nbd_handle *h)
{
  struct passwd pw, *result = NULL;
  char buf[1024];
  const char *login;

  if (h->tls_username)
    return copy_string (h->tls_username);
  /* As libnbd: $LOGNAME, when set (even to ""), names the local user, so
   * a user can pick the PSK identity without code.  The password
   * database comes second because it works without a controlling
   * terminal, where getlogin fails.
   */
  login = getenv ("LOGNAME");
  if (login)
    return copy_string (login);
  if (getpwuid_r (geteuid (), &pw, buf, sizeof buf, &result) != 0 || !result) {
    set_error (errno ? errno : ENOENT, "cannot find the local user name");
    return NULL;
  }
  return copy_string (pw.pw_name);
}

int
nbd_unlocked_set_tls_psk_file (struct nbd_handle *h, const char *filename)
{
  return replace_string (&h->tls_psk_file, filename);
}

int
nbd_unlocked_set_tls_hostname (struct nbd_handle *h, const char *hostname)
{
  return replace_string (&h->tls_hostname, hostname);
}

char *
nbd_unlocked_get_tls_hostname (struct nbd_handle *h)
{
  /* The name in effect: the override, else the host of the connection
   * (set by nbd_connect_tcp and TCP URIs), else none.
   */
  return copy_string (h->tls_hostname ? h->tls_hostname : h->tls_connect_host);
}

/* GnuTLS checks the string when TLS starts (tls.c), so that a bad one is
 * reported with the position GnuTLS complains about; storing it needs no
 * TLS support at all.
 */
int
nbd_unlocked_set_tls_priority (struct nbd_handle *h, const char *priority)
{
  return replace_string (&h->tls_priority, priority);
}

const char *
nbd_internal_tls_priority (struct nbd_handle *h)
{
  return h->tls_priority ? h->tls_priority : TLS_PRIORITY;
}

char *
nbd_unlocked_get_tls_priority (struct nbd_handle *h)
{
  return copy_string (nbd_internal_tls_priority (h));
}

/* ---- Protocol feature requests ---- */

int
nbd_unlocked_set_request_structured_replies (struct nbd_handle *h, bool request)
{
  h->request_sr = request;
  return 0;
}

int
nbd_unlocked_get_request_structured_replies (struct nbd_handle *h)
{
  return h->request_sr;
}

int
nbd_unlocked_set_request_extended_headers (struct nbd_handle *h, bool request)
{
  h->request_eh = request;
  return 0;
}

int
nbd_unlocked_get_request_extended_headers (struct nbd_handle *h)
{
  return h->request_eh;
}

int
nbd_unlocked_set_handshake_flags (struct nbd_handle *h, uint32_t flags)
{
  h->handshake_flags = flags;
  return 0;
}

uint32_t
nbd_unlocked_get_handshake_flags (struct nbd_handle *h)
{
  /* As libnbd: once the server's greeting is in (the protocol is known),
   * the flags both sides agreed on, none for an oldstyle server; until
   * then the ones the caller allows.
   */
  if (h->protocol)
    return h->gflags;
  return h->handshake_flags;
}

int
nbd_unlocked_set_pread_initialize (struct nbd_handle *h, bool request)
{
  h->pread_initialize = request;
  return 0;
}

int
nbd_unlocked_get_pread_initialize (struct nbd_handle *h)
{
  return h->pread_initialize;
}

int
nbd_unlocked_set_strict_mode (struct nbd_handle *h, uint32_t flags)
{
  h->strict = flags;
  return 0;
}

uint32_t
nbd_unlocked_get_strict_mode (struct nbd_handle *h)
{
  return h->strict;
}

int
nbd_unlocked_set_opt_mode (struct nbd_handle *h, bool enable)
{
  h->opt_mode = enable;
  return 0;
}

int
nbd_unlocked_get_opt_mode (struct nbd_handle *h)
{
  return h->opt_mode;
}

int
nbd_unlocked_set_request_meta_context (struct nbd_handle *h, bool request)
{
  h->request_meta = request;
  return 0;
}

int
nbd_unlocked_get_request_meta_context (struct nbd_handle *h)
{
  return h->request_meta;
}

/* ---- Meta context requests ---- */

int
nbd_unlocked_add_meta_context (struct nbd_handle *h, const char *name)
{
  if (strlen (name) > NBD_MAX_STRING) {
    set_error (ENAMETOOLONG, "meta context name too long for NBD protocol");
    return -1;
  }
  if (nbd_internal_string_vector_append (&h->request_meta_contexts, name) == -1) {
    set_error (errno, "realloc");
    return -1;
  }
  return 0;
}

ssize_t
nbd_unlocked_get_nr_meta_contexts (struct nbd_handle *h)
{
  return (ssize_t) h->request_meta_contexts.len;
}

char *
nbd_unlocked_get_meta_context (struct nbd_handle *h, size_t i)
{
  if (i >= h->request_meta_contexts.len) {
    set_error (EINVAL, "meta context request out of range");
    return NULL;
  }
  return copy_string (h->request_meta_contexts.ptr[i]);
}

int
nbd_unlocked_clear_meta_contexts (struct nbd_handle *h)
{
  nbd_internal_string_vector_clear (&h->request_meta_contexts);
  return 0;
}

/* ---- URI policy ---- */

int
nbd_unlocked_set_uri_allow_transports (struct nbd_handle *h, uint32_t mask)
{
  h->uri_allow_transports = mask;
  return 0;
}

int
nbd_unlocked_set_uri_allow_tls (struct nbd_handle *h, int tls)
{
  h->uri_allow_tls = tls;
  return 0;
}

int
nbd_unlocked_set_uri_allow_local_file (struct nbd_handle *h, bool allow)
{
  h->uri_allow_local_file = allow;
  return 0;
}

/* Longest socket activation name accepted (upstream's limit). */
#define SACT_NAME_MAX 32

int
nbd_unlocked_set_uri_allow_tls_priority (struct nbd_handle *h, bool allow)
{
  h->uri_allow_tls_priority = allow;
  return 0;
}

int
nbd_unlocked_set_socket_activation_name (struct nbd_handle *h,
                                         const char *socket_name)
{
  size_t i, len = strlen (socket_name);

  /* The documented "short alphanumeric string": it travels in
   * LISTEN_FDNAMES, where ':' separates names and servers match it
   * against their command line.  The empty string restores the default.
   */
  if (len > SACT_NAME_MAX) {
    set_error (ENAMETOOLONG, "socket activation name must be at most %d "
               "characters", SACT_NAME_MAX);
    return -1;
  }
  for (i = 0; i < len; ++i) {
    unsigned char c = (unsigned char) socket_name[i];
    bool alnum = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')
      || (c >= 'a' && c <= 'z');
    if (!alnum) {
      set_error (EINVAL, "socket activation name must contain only ASCII "
                 "letters and digits");
      return -1;
    }
  }
  return replace_string (&h->sact_name, socket_name);
}

char *
nbd_unlocked_get_socket_activation_name (struct nbd_handle *h)
{
  return copy_string (h->sact_name);
}

/* ---- Library information ---- */

const char *
nbd_unlocked_get_version (struct nbd_handle *h)
{
  (void) h;
  return PACKAGE_VERSION;
}

const char *
nbd_unlocked_get_package_name (struct nbd_handle *h)
{
  (void) h;
  return PACKAGE_NAME;
}

const char *
nbd_unlocked_get_version_extra (struct nbd_handle *h)
{
  (void) h;
  return LIBNBD_VERSION_EXTRA;
}

int
nbd_unlocked_supports_tls (struct nbd_handle *h)
{
  (void) h;
#ifdef HAVE_GNUTLS
  return 1;
#else
  return 0;
#endif
}

int
nbd_unlocked_supports_vsock (struct nbd_handle *h)
{
  (void) h;
#ifdef HAVE_LINUX_VM_SOCKETS_H
  return 1;
#else
  return 0;
#endif
}

/* ---- Statistics ---- */

uint64_t
nbd_unlocked_stats_bytes_sent (struct nbd_handle *h)
{
  return h->bytes_sent;
}

uint64_t
nbd_unlocked_stats_bytes_received (struct nbd_handle *h)
{
  return h->bytes_received;
}

uint64_t
nbd_unlocked_stats_chunks_sent (struct nbd_handle *h)
{
  return h->chunks_sent;
}

uint64_t
nbd_unlocked_stats_chunks_received (struct nbd_handle *h)
{
  return h->chunks_received;
}
