/* TLS with GnuTLS: credentials, the non-blocking TLS handshake that
 * follows an acknowledged NBD_OPT_STARTTLS, and the TLS transport that
 * replaces the plain-socket one afterwards.
 *
 * The statistics (nbd_stats_bytes_sent/received) count NBD bytes, the
 * plaintext handed to and returned by GnuTLS, as for a plain socket and
 * as upstream libnbd does; the TLS handshake and record overhead are not
 * NBD bytes.
 *
 * Sending: a record GnuTLS has accepted is sent as far as the engine is
 * concerned, even when the socket took only part of it (GNUTLS_E_AGAIN).
 * GnuTLS then holds the rest and must be called again, with no new
 * data, before anything else goes out; the transport's send_pending
 * tells the engine to wait for the socket to be writable meanwhile.  So
 * a request is never half in GnuTLS and half "unsent" in the engine's
 * queue, where nbd_shutdown (LIBNBD_SHUTDOWN_ABANDON_PENDING) could
 * abandon it while GnuTLS still sends it.
 *
 * Built without GnuTLS, only stubs remain (never reached, because
 * nbd_supports_tls is false and nbd_set_tls refuses anything else than
 * LIBNBD_TLS_DISABLE).
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>

#include "internal.h"

#ifdef HAVE_GNUTLS

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

/* Largest plaintext put in one TLS record. */
#define TLS_RECORD 16384

struct tls {
  gnutls_session_t session;
  gnutls_certificate_credentials_t xcred;
  gnutls_psk_client_credentials_t pskcred;
  char *verify_host;            /* must outlive the session */
  bool record_held;             /* GnuTLS holds part of an accepted record */
  bool writes_shut;             /* NBD_CMD_DISC or NBD_OPT_ABORT went out */
  bool bye_pending;             /* close_notify still to be sent */
  char wbuf[TLS_RECORD];        /* gathers several iovecs into one record */
};

static struct tls *
get_tls (struct nbd_handle *h)
{
  return h->tls_session;
}

/* ---- Socket I/O for GnuTLS ---- */

static ssize_t
tls_push (gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
  struct nbd_handle *h = ptr;
  struct tls *t = get_tls (h);
  struct msghdr msg = { .msg_iov = (struct iovec *) iov, .msg_iovlen = (size_t) iovcnt };
  ssize_t r;

  do
    r = sendmsg (h->fd, &msg, MSG_NOSIGNAL);
  while (r == -1 && errno == EINTR);
  if (r == -1)
    gnutls_transport_set_errno (t->session, errno);
  return r;
}

static ssize_t
tls_pull (gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
  struct nbd_handle *h = ptr;
  struct tls *t = get_tls (h);
  ssize_t r;

  do
    r = recv (h->fd, buf, len, 0);
  while (r == -1 && errno == EINTR);
  if (r == -1)
    gnutls_transport_set_errno (t->session, errno);
  return r;
}

static int
tls_pull_timeout (gnutls_transport_ptr_t ptr, unsigned int ms)
{
  struct nbd_handle *h = ptr;
  struct pollfd p = { .fd = h->fd, .events = POLLIN };
  int r;

  do
    r = poll (&p, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int) ms);
  while (r == -1 && errno == EINTR);
  return r;
}

/* GnuTLS reports a failed allocation as GNUTLS_E_MEMORY_ERROR: that is
 * ENOMEM whatever the call, not the errno its other failures map to.
 * Those others (a malformed key or certificate file, a refused
 * handshake) carry GnuTLS's reason and errno 0, as in libnbd.
 */
static int
tls_errno (int r)
{
  return r == GNUTLS_E_MEMORY_ERROR ? ENOMEM : 0;
}

/* ---- The TLS transport ---- */

/* A fatal record-layer error: as libnbd, the error is GnuTLS's reason
 * with no errno (returned as errno 0, see nbd_internal_transport_failed),
 * except a lack of memory, which stays ENOMEM.
 */
static int
tls_record_failed (struct nbd_handle *h, const char *call, int r)
{
  if (tls_errno (r) == ENOMEM) {
    errno = ENOMEM;
    return -1;
  }
  set_error (0, "%s: %s", call, gnutls_strerror (r));
  errno = 0;
  return -1;
}

static ssize_t
tls_recv (struct nbd_handle *h, void *buf, size_t len)
{
  struct tls *t = get_tls (h);
  ssize_t r;

  for (;;) {
    r = gnutls_record_recv (t->session, buf, len);
    if (r >= 0) {
      h->bytes_received += (uint64_t) r;
      return r;
    }
    if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
      errno = EAGAIN;
      return -1;
    }
    if (t->writes_shut
        && (r == GNUTLS_E_PREMATURE_TERMINATION || r == GNUTLS_E_PULL_ERROR)) {
      /* After NBD_CMD_DISC, servers (qemu-nbd, nbd-server) close the
       * socket without close_notify, and a close_notify of ours that
       * they left unread makes the kernel reset the connection: both
       * are the end of the session we asked for.
       */
      debug (h, "TLS: end of the session: %s", gnutls_strerror ((int) r));
      return 0;
    }
    if (!gnutls_error_is_fatal ((int) r)) {
      debug (h, "TLS: ignoring non-fatal error: %s", gnutls_strerror ((int) r));
      continue;
    }
    return tls_record_failed (h, "gnutls_record_recv", (int) r);
  }
}

/* Sends the close_notify after NBD_CMD_DISC, resuming where GnuTLS
 * stopped.  0 done (or given up: the server may be gone already, which
 * is fine), -1 with errno EAGAIN to wait for the socket.
 */
static int
continue_bye (struct nbd_handle *h, struct tls *t)
{
  int r;

  do
    r = gnutls_bye (t->session, GNUTLS_SHUT_WR);
  while (r == GNUTLS_E_INTERRUPTED);
  if (r == GNUTLS_E_AGAIN) {
    errno = EAGAIN;
    return -1;
  }
  if (r != GNUTLS_E_SUCCESS)
    debug (h, "gnutls_bye: %s", gnutls_strerror (r));
  t->bye_pending = false;
  return 0;
}

/* Finishes writing what GnuTLS holds (the rest of an accepted record,
 * then the close_notify): 0 done, -1 with errno (EAGAIN: wait).
 */
static int
flush_held (struct nbd_handle *h, struct tls *t)
{
  if (t->record_held) {
    ssize_t r;
    do
      r = gnutls_record_send (t->session, NULL, 0);
    while (r == GNUTLS_E_INTERRUPTED);
    if (r == GNUTLS_E_AGAIN) {
      errno = EAGAIN;
      return -1;
    }
    t->record_held = false;
    if (r < 0) {
      if (!t->writes_shut)
        return tls_record_failed (h, "gnutls_record_send", (int) r);
      debug (h, "gnutls_record_send: %s", gnutls_strerror ((int) r));
      /* The server closed after our last request: nothing is lost. */
      t->bye_pending = false;
    }
  }
  if (t->bye_pending)
    return continue_bye (h, t);
  return 0;
}

/* Sends at most one record of the caller's data; returns how many bytes
 * GnuTLS accepted (an empty iovec only finishes what GnuTLS holds).
 */
static ssize_t
tls_send (struct nbd_handle *h, const struct iovec *iov, int iovcnt, bool more)
{
  struct tls *t = get_tls (h);
  size_t max = gnutls_record_get_max_size (t->session), len = 0;
  const void *data;
  ssize_t r;

  (void) more;
  if (flush_held (h, t) == -1)
    return -1;
  if (t->writes_shut) {
    if (iovcnt == 0 || (iovcnt == 1 && iov[0].iov_len == 0))
      return 0;
    errno = EPIPE;              /* nothing may follow the last request */
    return -1;
  }
  if (max == 0 || max > TLS_RECORD)
    max = TLS_RECORD;
  /* No more than GnuTLS puts in one record, so that the whole of it is
   * accepted even when the socket takes only part.  One large buffer is
   * passed as it is; small pieces are gathered into one record.
   */
  if (iovcnt >= 1 && (iovcnt == 1 || iov[0].iov_len >= max)) {
    data = iov[0].iov_base;
    len = iov[0].iov_len < max ? iov[0].iov_len : max;
  }
  else {
    for (int i = 0; i < iovcnt && len < max; i++) {
      size_t n = iov[i].iov_len < max - len ? iov[i].iov_len : max - len;
      memcpy (t->wbuf + len, iov[i].iov_base, n);
      len += n;
    }
    data = t->wbuf;
  }
  if (len == 0)
    return 0;
  do
    r = gnutls_record_send (t->session, data, len);
  while (r == GNUTLS_E_INTERRUPTED);
  if (r == GNUTLS_E_AGAIN) {
    /* GnuTLS encrypted the record and keeps what the socket refused. */
    t->record_held = true;
    r = (ssize_t) len;
  }
  else if (r < 0)
    return tls_record_failed (h, "gnutls_record_send", (int) r);
  h->bytes_sent += (uint64_t) r;
  return r;
}

static bool
tls_pending (struct nbd_handle *h)
{
  struct tls *t = get_tls (h);

  return t && gnutls_record_check_pending (t->session) > 0;
}

static bool
tls_send_pending (struct nbd_handle *h)
{
  struct tls *t = get_tls (h);

  return t && (t->record_held || t->bye_pending);
}

/* After the last request: the close_notify follows it, once GnuTLS has
 * written everything it holds (the engine keeps polling for writing
 * while tls_send_pending says so).
 */
static int
tls_shut_writes (struct nbd_handle *h)
{
  struct tls *t = get_tls (h);

  if (!t)
    return -1;
  t->writes_shut = true;
  t->bye_pending = true;
  if (flush_held (h, t) == -1 && errno != EAGAIN)
    debug (h, "TLS: cannot finish the last record: %s", strerror (errno));
  return 0;
}

static void
free_tls (struct tls *t)
{
  if (!t)
    return;
  if (t->session)
    gnutls_deinit (t->session);
  if (t->xcred)
    gnutls_certificate_free_credentials (t->xcred);
  if (t->pskcred)
    gnutls_psk_free_client_credentials (t->pskcred);
  free (t->verify_host);
  free (t);
}

static void
tls_close (struct nbd_handle *h)
{
  free_tls (get_tls (h));
  h->tls_session = NULL;
  h->tls_handshaking = false;
  nbd_internal_close_fd (h);
  h->ops = &nbd_internal_socket_ops;
}

static const struct transport_ops tls_ops = {
  .recv = tls_recv,
  .send = tls_send,
  .pending = tls_pending,
  .send_pending = tls_send_pending,
  .shut_writes = tls_shut_writes,
  .close = tls_close,
};

/* ---- Credentials ---- */

/* The handle's priority string (nbd_set_tls_priority), with `extra`
 * appended (PSK adds its key exchanges).  GnuTLS tells where parsing
 * stopped; the message shows it, since priority strings are long.
 */
static int
set_priority (struct nbd_handle *h, struct tls *t, const char *extra)
{
  const char *base = nbd_internal_tls_priority (h);
  const char *err_pos = NULL;
  char *priority;
  int r;

  if (asprintf (&priority, "%s%s", base, extra) == -1) {
    set_error (errno, "asprintf");
    return -1;
  }
  /* GnuTLS 3.7 reports some failed allocations while parsing as
   * GNUTLS_E_INVALID_REQUEST: the errno malloc left tells them apart.
   */
  errno = 0;
  r = gnutls_priority_set_direct (t->session, priority, &err_pos);
  if (r < 0) {
    if (r == GNUTLS_E_MEMORY_ERROR || errno == ENOMEM)
      set_error (ENOMEM, "gnutls_priority_set_direct: %s", gnutls_strerror (r));
    else if (err_pos && err_pos >= priority && err_pos <= priority + strlen (priority))
      set_error (EINVAL, "TLS priority string '%s' is invalid at position "
                 "%zu ('%s'): gnutls_priority_set_direct: %s",
                 priority, (size_t) (err_pos - priority), err_pos,
                 gnutls_strerror (r));
    else
      set_error (EINVAL, "TLS priority string '%s' is invalid: "
                 "gnutls_priority_set_direct: %s", priority,
                 gnutls_strerror (r));
    free (priority);
    return -1;
  }
  debug (h, "TLS: priority %s", priority);
  free (priority);
  return 0;
}

/* "username:hexkey" lines, as written by psktool. */
static int
set_up_psk (struct nbd_handle *h, struct tls *t)
{
  FILE *fp;
  char *line = NULL, *username;
  size_t cap = 0;
  ssize_t len;
  bool found = false;
  int r;

  username = nbd_unlocked_get_tls_username (h);
  if (!username)
    return -1;
  fp = fopen (h->tls_psk_file, "re");
  if (!fp) {
    set_error (errno, "open: %s", h->tls_psk_file);
    free (username);
    return -1;
  }
  errno = 0;
  while ((len = getline (&line, &cap, fp)) != -1) {
    char *colon;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
      line[--len] = '\0';
    colon = strchr (line, ':');
    /* A line with an empty key does not count, as in libnbd: the user
     * reads as not found (EINVAL), not as a key GnuTLS refuses.
     */
    if (!colon || colon[1] == '\0')
      continue;
    *colon = '\0';
    if (strcmp (line, username) == 0) {
      found = true;
      break;
    }
  }
  if (!found && errno != 0) {   /* getline failed before the end */
    set_error (errno, "reading %s", h->tls_psk_file);
    fclose (fp);
    goto err;
  }
  fclose (fp);
  if (!found) {
    set_error (EINVAL, "%s: username '%s' not found in the PSK file",
               h->tls_psk_file, username);
    goto err;
  }
  {
    char *hexkey = line + strlen (line) + 1;
    gnutls_datum_t key = { (unsigned char *) hexkey, (unsigned) strlen (hexkey) };

    r = gnutls_psk_allocate_client_credentials (&t->pskcred);
    if (r < 0) {
      set_error (ENOMEM, "gnutls_psk_allocate_client_credentials: %s",
                 gnutls_strerror (r));
      goto err;
    }
    r = gnutls_psk_set_client_credentials (t->pskcred, username, &key,
                                           GNUTLS_PSK_KEY_HEX);
    if (r < 0) {
      set_error (tls_errno (r), "%s: key for '%s': gnutls_psk_set_client_credentials: %s",
                 h->tls_psk_file, username, gnutls_strerror (r));
      goto err;
    }
  }
  if (set_priority (h, t, ":+ECDHE-PSK:+DHE-PSK:+PSK") == -1)
    goto err;
  r = gnutls_credentials_set (t->session, GNUTLS_CRD_PSK, t->pskcred);
  if (r < 0) {
    set_error (tls_errno (r), "gnutls_credentials_set: %s", gnutls_strerror (r));
    goto err;
  }
  debug (h, "TLS: using the pre-shared key of '%s' from %s", username,
         h->tls_psk_file);
  free (line);
  free (username);
  return 0;

 err:
  free (line);
  free (username);
  return -1;
}

static bool
is_dir (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

static bool
is_file (const char *dir, const char *name, char *path, size_t size)
{
  struct stat st;
  snprintf (path, size, "%s/%s", dir, name);
  return stat (path, &st) == 0 && S_ISREG (st.st_mode);
}

/* The certificates directory: the one set by the caller, else the
 * documented defaults.  NULL (and no error) when there is none.
 * *dir_out is malloc'd.
 */
static int
find_certificates_dir (struct nbd_handle *h, char **dir_out)
{
  const char *home;
  char buf[4096];

  *dir_out = NULL;
  if (h->tls_certificates) {
    /* As libnbd: a directory that is not there holds no ca-cert.pem,
     * like an empty one, so the system's trusted CAs are used (and a
     * connection without verification still succeeds); the defaults
     * are not searched instead.
     */
    if (!is_dir (h->tls_certificates)) {
      debug (h, "TLS: certificates directory %s not found, using the "
             "system's trusted CAs", h->tls_certificates);
      return 0;
    }
    *dir_out = strdup (h->tls_certificates);
    goto out;
  }
  if (geteuid () == 0) {
    if (is_dir ("/etc/pki/libnbd"))
      *dir_out = strdup ("/etc/pki/libnbd");
    goto out;
  }
  home = getenv ("HOME");
  if (!home || !*home)
    return 0;
  snprintf (buf, sizeof buf, "%s/.pki/libnbd", home);
  if (is_dir (buf)) {
    *dir_out = strdup (buf);
    goto out;
  }
  snprintf (buf, sizeof buf, "%s/.config/pki/libnbd", home);
  if (is_dir (buf))
    *dir_out = strdup (buf);
  else
    return 0;
 out:
  if (h->tls_certificates && !*dir_out) {
    set_error (errno, "strdup");
    return -1;
  }
  return 0;
}

/* Load dir/cert_name with its key dir/key_name if both exist: 1 loaded,
 * 0 not there, -1 error (set).
 */
static int
load_client_pair (struct nbd_handle *h, struct tls *t, const char *dir,
                  const char *cert_name, const char *key_name)
{
  char path[4096], keypath[4096];
  int r;

  if (!is_file (dir, cert_name, path, sizeof path)
      || !is_file (dir, key_name, keypath, sizeof keypath))
    return 0;
  r = gnutls_certificate_set_x509_key_file (t->xcred, path, keypath,
                                            GNUTLS_X509_FMT_PEM);
  if (r < 0) {
    set_error (tls_errno (r), "%s, %s: %s", path, keypath, gnutls_strerror (r));
    return -1;
  }
  debug (h, "TLS: using client certificate %s", path);
  return 1;
}

static int
set_up_x509 (struct nbd_handle *h, struct tls *t)
{
  char *dir = NULL;
  char path[4096];
  bool have_ca = false;
  int r;

  r = gnutls_certificate_allocate_credentials (&t->xcred);
  if (r < 0) {
    set_error (ENOMEM, "gnutls_certificate_allocate_credentials: %s",
               gnutls_strerror (r));
    return -1;
  }
  if (find_certificates_dir (h, &dir) == -1)
    return -1;

  if (dir) {
    debug (h, "TLS: certificates directory %s", dir);
    if (is_file (dir, "ca-cert.pem", path, sizeof path)) {
      r = gnutls_certificate_set_x509_trust_file (t->xcred, path, GNUTLS_X509_FMT_PEM);
      if (r < 0) {
        set_error (tls_errno (r), "%s: %s", path, gnutls_strerror (r));
        goto err;
      }
      have_ca = true;
    }
    if (is_file (dir, "ca-crl.pem", path, sizeof path)) {
      r = gnutls_certificate_set_x509_crl_file (t->xcred, path, GNUTLS_X509_FMT_PEM);
      if (r < 0) {
        set_error (tls_errno (r), "%s: %s", path, gnutls_strerror (r));
        goto err;
      }
    }
    /* The unnumbered pair, then client-cert-N.pem with client-key-N.pem
     * for N = 0, 1, ... up to the first one missing: a client may hold
     * one certificate per key type (classical and post-quantum, say) and
     * GnuTLS presents the one that suits the server's request.
     */
    if (load_client_pair (h, t, dir, "client-cert.pem", "client-key.pem") == -1)
      goto err;
    for (unsigned n = 0; ; n++) {
      char cert_name[64], key_name[64];
      snprintf (cert_name, sizeof cert_name, "client-cert-%u.pem", n);
      snprintf (key_name, sizeof key_name, "client-key-%u.pem", n);
      r = load_client_pair (h, t, dir, cert_name, key_name);
      if (r == -1)
        goto err;
      if (r == 0)
        break;
    }
  }
  if (!have_ca) {
    r = gnutls_certificate_set_x509_system_trust (t->xcred);
    if (r < 0)
      debug (h, "TLS: cannot load the system trusted CAs: %s", gnutls_strerror (r));
  }

  if (set_priority (h, t, "") == -1)
    goto err;
  r = gnutls_credentials_set (t->session, GNUTLS_CRD_CERTIFICATE, t->xcred);
  if (r < 0) {
    set_error (tls_errno (r), "gnutls_credentials_set: %s", gnutls_strerror (r));
    goto err;
  }

  /* The name to check: tls_hostname if set, else the TCP host name; a
   * Unix socket has none, so only the certificate chain is verified.
   */
  {
    const char *host = h->tls_hostname ? h->tls_hostname : h->tls_connect_host;
    if (host) {
      unsigned char addr[16];
      t->verify_host = strdup (host);
      if (!t->verify_host) {
        set_error (errno, "strdup");
        goto err;
      }
      /* Server Name Indication, for DNS names only. */
      if (inet_pton (AF_INET, host, addr) != 1 && inet_pton (AF_INET6, host, addr) != 1)
        gnutls_server_name_set (t->session, GNUTLS_NAME_DNS, host, strlen (host));
    }
    if (h->tls_verify_peer) {
      gnutls_session_set_verify_cert (t->session, t->verify_host, 0);
      debug (h, "TLS: verifying the server certificate%s%s",
             t->verify_host ? " for " : "", t->verify_host ? t->verify_host : "");
    }
    else
      debug (h, "TLS: not verifying the server certificate");
  }
  free (dir);
  return 0;

 err:
  free (dir);
  return -1;
}

/* ---- Entry points ---- */

int
nbd_internal_tls_start (struct nbd_handle *h)
{
  struct tls *t;
  int r;

  if (h->tls_session) {
    set_error (EINVAL, "TLS is already in use on this connection");
    return -1;
  }
  t = calloc (1, sizeof *t);
  if (!t) {
    set_error (errno, "calloc");
    return -1;
  }
  r = gnutls_init (&t->session, GNUTLS_CLIENT | GNUTLS_NONBLOCK);
  if (r < 0) {
    set_error (ENOMEM, "gnutls_init: %s", gnutls_strerror (r));
    free (t);
    return -1;
  }
  if ((h->tls_psk_file ? set_up_psk (h, t) : set_up_x509 (h, t)) == -1) {
    free_tls (t);
    return -1;
  }
  gnutls_transport_set_ptr (t->session, h);
  gnutls_transport_set_vec_push_function (t->session, tls_push);
  gnutls_transport_set_pull_function (t->session, tls_pull);
  gnutls_transport_set_pull_timeout_function (t->session, tls_pull_timeout);

  /* From now on the TLS transport owns the socket (and frees the
   * session when the socket is closed).
   */
  h->tls_session = t;
  h->ops = &tls_ops;
  h->tls_handshaking = true;
  debug (h, "TLS: starting the handshake");
  return 0;
}

int
nbd_internal_tls_handshake (struct nbd_handle *h)
{
  struct tls *t = get_tls (h);
  int r;

  for (;;) {
    r = gnutls_handshake (t->session);
    if (r == GNUTLS_E_SUCCESS)
      break;
    if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
      return 0;
    if (!gnutls_error_is_fatal (r)) {
      debug (h, "gnutls_handshake: ignoring %s", gnutls_strerror (r));
      continue;
    }
    /* As upstream: no errno, GnuTLS's message and where in the TLS
     * handshake it stopped (last message received / sent); for a
     * certificate that fails verification, also why.
     */
    {
      int in = (int) gnutls_handshake_get_last_in (t->session);
      int out = (int) gnutls_handshake_get_last_out (t->session);
      gnutls_datum_t why = { NULL, 0 };

      if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR
          && gnutls_certificate_verification_status_print
               (gnutls_session_get_verify_cert_status (t->session),
                gnutls_certificate_type_get (t->session), &why, 0) < 0)
        why.data = NULL;
      while (why.data && why.size > 0 && why.data[why.size - 1] == ' ')
        why.data[--why.size] = '\0';
      set_error (tls_errno (r), "gnutls_handshake: %s (%d/%d)%s%s", gnutls_strerror (r), in, out,
                 why.data ? ": " : "", why.data ? (char *) why.data : "");
      gnutls_free (why.data);
    }
    h->tls_handshaking = false;
    return -1;
  }

  h->tls_handshaking = false;
  h->tls_negotiated = true;
  if (h->debug) {
    char *desc = gnutls_session_get_desc (t->session);
    debug (h, "TLS: handshake done: %s", desc ? desc : "");
    gnutls_free (desc);
  }
  return 1;
}

unsigned
nbd_internal_tls_direction (struct nbd_handle *h)
{
  struct tls *t = get_tls (h);

  if (t && gnutls_record_get_direction (t->session) == 1)
    return LIBNBD_AIO_DIRECTION_WRITE;
  return LIBNBD_AIO_DIRECTION_READ;
}

#else /* !HAVE_GNUTLS */

int
nbd_internal_tls_start (struct nbd_handle *h)
{
  (void) h;
  set_error (ENOTSUP, "libnbd was built without TLS support");
  return -1;
}

int
nbd_internal_tls_handshake (struct nbd_handle *h)
{
  h->tls_handshaking = false;
  set_error (ENOTSUP, "libnbd was built without TLS support");
  return -1;
}

unsigned
nbd_internal_tls_direction (struct nbd_handle *h)
{
  (void) h;
  return LIBNBD_AIO_DIRECTION_READ;
}

#endif /* !HAVE_GNUTLS */
