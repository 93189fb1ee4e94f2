/* NBD URIs: nbd_connect_uri, nbd_aio_connect_uri, nbd_get_uri,
 * nbd_is_uri, nbd_supports_uri.
 *
 * libxml2 splits a URI into its RFC 3986 parts (as upstream libnbd does,
 * so that odd URIs split the same way); this file gives the parts their
 * NBD meaning (doc/uri.md in the NBD protocol repository, plus libnbd's
 * own query parameters): the schemes, the query parameters, the
 * nbd_set_uri_allow_* policies and the connection.  Built without
 * libxml2, every URI call fails with ENOTSUP and nbd_supports_uri is
 * false.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifdef HAVE_LIBXML2

#include <ctype.h>
#include <limits.h>
#include <netdb.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>

#ifdef HAVE_LINUX_VM_SOCKETS_H
#include <linux/vm_sockets.h>
#endif

#include <libxml/uri.h>

#define NBD_DEFAULT_PORT 10809
#define SSH_DEFAULT_PORT 22
#define VSOCK_CID_HOST 2          /* VMADDR_CID_HOST */

/* ---- Schemes ---- */

enum uri_transport { T_TCP, T_UNIX, T_VSOCK, T_SSH };

static const struct scheme {
  const char *name;
  bool tls;
  enum uri_transport transport;
  uint32_t allow_bit;
} schemes[] = {
  { "nbd",        false, T_TCP,   LIBNBD_ALLOW_TRANSPORT_TCP },
  { "nbds",       true,  T_TCP,   LIBNBD_ALLOW_TRANSPORT_TCP },
  { "nbd+unix",   false, T_UNIX,  LIBNBD_ALLOW_TRANSPORT_UNIX },
  { "nbds+unix",  true,  T_UNIX,  LIBNBD_ALLOW_TRANSPORT_UNIX },
  { "nbd+vsock",  false, T_VSOCK, LIBNBD_ALLOW_TRANSPORT_VSOCK },
  { "nbds+vsock", true,  T_VSOCK, LIBNBD_ALLOW_TRANSPORT_VSOCK },
  { "nbd+ssh",    false, T_SSH,   LIBNBD_ALLOW_TRANSPORT_SSH },
  { "nbds+ssh",   true,  T_SSH,   LIBNBD_ALLOW_TRANSPORT_SSH },
};

/* RFC 3986 makes schemes case-insensitive. */
static const struct scheme *
find_scheme (const char *name)
{
  size_t i;

  for (i = 0; i < sizeof schemes / sizeof schemes[0]; ++i)
    if (strcasecmp (schemes[i].name, name) == 0)
      return &schemes[i];
  return NULL;
}

/* ---- A parsed NBD URI, every string percent-decoded ---- */

struct nbd_uri {
  const struct scheme *scheme;
  char *user;                   /* NULL if absent */
  char *server;                 /* NULL if absent; IPv6 without brackets */
  int port;                     /* authority port, <= 0 if absent */
  char *export_name;            /* the path without its leading '/' */
  /* Query parameters, NULL (-1 for booleans) if absent. */
  char *socket;
  char *tls_certificates;
  char *tls_username;
  char *tls_psk_file;
  char *tls_hostname;
  char *tls_priority;
  char *nbd_port;
  int tls_verify_peer;
  int compress;
  int64_t connect_timeout_ms;   /* extension parameters, -1 if absent */
  int64_t request_timeout_ms;
};

static void
free_nbd_uri (struct nbd_uri *u)
{
  free (u->user);
  free (u->server);
  free (u->export_name);
  free (u->socket);
  free (u->tls_certificates);
  free (u->tls_username);
  free (u->tls_psk_file);
  free (u->tls_hostname);
  free (u->tls_priority);
  free (u->nbd_port);
}

/* Decode the len bytes of a still-escaped URI part.  libxml2 already
 * checked the escapes; what it cannot report is a %00, which would cut
 * the C string short without anyone noticing, so it is refused here.
 */
static char *
decode (const char *raw, size_t len, const char *what)
{
  char *x, *ret;
  size_t i;

  for (i = 0; i + 2 < len; ++i)
    if (raw[i] == '%' && raw[i+1] == '0' && raw[i+2] == '0') {
      if (i == 0 && strcmp (what, "socket parameter") == 0)
        set_error (ENOTSUP, "abstract Unix domain sockets (socket=%%00...) "
                   "are not supported");
      else
        set_error (EINVAL, "URI %s must not contain a NUL byte (%%00)", what);
      return NULL;
    }

  /* xmlURIUnescapeString takes a length of 0 to mean "up to the NUL". */
  if (len == 0)
    ret = strdup ("");
  else {
    x = xmlURIUnescapeString (raw, (int) len, NULL);
    if (x == NULL) {
      set_error (ENOMEM, "xmlURIUnescapeString");
      return NULL;
    }
    ret = strdup (x);
    xmlFree (x);
  }
  if (ret == NULL)
    set_error (errno, "strdup");
  return ret;
}

static int
parse_bool (const char *name, const char *s)
{
  static const char *const yes[] = { "1", "true", "yes", "on" };
  static const char *const no[] = { "0", "false", "no", "off" };
  size_t i;

  for (i = 0; i < 4; ++i) {
    if (strcasecmp (s, yes[i]) == 0) return 1;
    if (strcasecmp (s, no[i]) == 0) return 0;
  }
  set_error (EINVAL, "URI query parameter %s: cannot parse boolean '%s'",
             name, s);
  return -1;
}

/* The query parameters NBD gives a meaning to; the others are ignored.
 * Names are compared without regard to case.
 */
static const struct param {
  const char *name;
  size_t offset;                /* of the char * in struct nbd_uri */
} string_params[] = {
  { "socket", offsetof (struct nbd_uri, socket) },
  { "tls-certificates", offsetof (struct nbd_uri, tls_certificates) },
  { "tls-username", offsetof (struct nbd_uri, tls_username) },
  { "tls-psk-file", offsetof (struct nbd_uri, tls_psk_file) },
  { "tls-hostname", offsetof (struct nbd_uri, tls_hostname) },
  { "tls-priority", offsetof (struct nbd_uri, tls_priority) },
  { "nbd-port", offsetof (struct nbd_uri, nbd_port) },
};

/* One "name[=value]" component of the query; the last of repeated
 * parameters wins.
 */
static int
parse_param (struct nbd_handle *h, struct nbd_uri *u,
             const char *q, size_t len)
{
  const char *eq = memchr (q, '=', len);
  size_t nlen = eq ? (size_t) (eq - q) : len;
  const char *v = eq ? eq + 1 : q + len;
  size_t vlen = q + len - v;
  char *name, *value;
  size_t i;
  int r = 0;

  if (nlen == 0)                /* "=value": nothing to name it by */
    return 0;
  name = decode (q, nlen, "query parameter name");
  if (name == NULL)
    return -1;
  value = decode (v, vlen, strcasecmp (name, "socket") == 0
                  ? "socket parameter" : "query parameter");
  if (value == NULL) {
    free (name);
    return -1;
  }

  for (i = 0; i < sizeof string_params / sizeof string_params[0]; ++i)
    if (strcasecmp (name, string_params[i].name) == 0) {
      char **field = (char **) ((char *) u + string_params[i].offset);
      free (*field);
      *field = value;
      value = NULL;
      break;
    }
  if (value == NULL)
    ;
  else if (strcasecmp (name, "tls-verify-peer") == 0)
    r = u->tls_verify_peer = parse_bool ("tls-verify-peer", value);
  else if (strcasecmp (name, "compress") == 0)
    r = u->compress = parse_bool ("compress", value);
  else if (strcasecmp (name, "connect-timeout") == 0
           || strcasecmp (name, "request-timeout") == 0) {
    /* Extensions (libnbd-ext(3)): seconds, decimals allowed. */
    int64_t ms = nbd_internal_parse_timeout (value);
    if (ms < 0) {
      set_error (EINVAL, "URI query parameter %s: cannot parse '%s' as a number "
                 "of seconds", name, value);
      r = -1;
    }
    else if (tolower ((unsigned char) name[0]) == 'c')
      u->connect_timeout_ms = ms;
    else
      u->request_timeout_ms = ms;
  }
  else
    debug (h, "ignoring unknown URI query parameter '%s'", name);
  free (name);
  free (value);
  return r == -1 ? -1 : 0;
}

static int
parse_query (struct nbd_handle *h, struct nbd_uri *u, const char *q)
{
  while (*q) {
    size_t len = strcspn (q, "&;");

    if (len > 0 && parse_param (h, u, q, len) == -1)
      return -1;
    q += len;
    if (*q)
      q++;
  }
  return 0;
}

/* Parse raw into u.  On error the error is set and u must still be
 * freed.
 */
static int
parse_nbd_uri (struct nbd_handle *h, const char *raw, struct nbd_uri *u)
{
  xmlURIPtr x;
  int r = -1;

  memset (u, 0, sizeof *u);
  u->port = -1;
  u->tls_verify_peer = -1;
  u->compress = -1;
  u->connect_timeout_ms = u->request_timeout_ms = -1;

  /* Raw: the parts stay escaped, so that decode can see a %00. */
  x = xmlParseURIRaw (raw, 1);
  if (x == NULL) {
    set_error (EINVAL, "unable to parse URI: %s", raw);
    return -1;
  }
  if (x->scheme == NULL) {
    set_error (EINVAL, "unable to parse URI: no scheme (expected "
               "nbd://..., nbd+unix://... etc.): %s", raw);
    goto out;
  }
  u->scheme = find_scheme (x->scheme);
  if (u->scheme == NULL) {
    set_error (EINVAL, "unknown NBD URI scheme: %s", x->scheme);
    goto out;
  }
  /* Only the hierarchical form scheme://[authority][/export][?query]
   * names an NBD export; "nbd:foo" is something else.
   */
  if (strncmp (raw + strlen (x->scheme), "://", 3) != 0) {
    set_error (EINVAL, "URI must begin with '%s://'", x->scheme);
    goto out;
  }

  if (x->user) {
    u->user = decode (x->user, strlen (x->user), "user name");
    if (u->user == NULL)
      goto out;
  }
  if (x->server) {
    const char *s = x->server;
    size_t len = strlen (s);
    if (len >= 2 && s[0] == '[' && s[len-1] == ']') {   /* IP-literal */
      s++;
      len -= 2;
    }
    u->server = decode (s, len, "host name");
    if (u->server == NULL)
      goto out;
  }
  u->port = x->port;
  if (x->path && x->path[0] == '/')
    u->export_name = decode (x->path + 1, strlen (x->path + 1), "export name");
  else
    u->export_name = strdup ("");
  if (u->export_name == NULL) {
    set_error (errno, "strdup");
    goto out;
  }
  /* A fragment (#...) has no meaning for NBD and is ignored. */
  if (x->query_raw && parse_query (h, u, x->query_raw) == -1)
    goto out;
  r = 0;

 out:
  xmlFreeURI (x);
  return r;
}

/* ---- Connecting ---- */

static int
parse_u32 (const char *s, uint32_t *ret, const char *what)
{
  char *end;
  unsigned long long v;

  if (!isdigit ((unsigned char) s[0])) {
    set_error (EINVAL, "URI %s must be a number: '%s'", what, s);
    return -1;
  }
  errno = 0;
  v = strtoull (s, &end, 10);
  if (errno || *end || v > UINT32_MAX) {
    set_error (EINVAL, "URI %s is not a valid 32-bit number: '%s'", what, s);
    return -1;
  }
  *ret = (uint32_t) v;
  return 0;
}

/* What reaches the remote shell through "ssh ... nc ARGS" must be a
 * plain word: nothing the shell would expand, split, redirect or run.
 */
static int
check_shell_safe (const char *name, const char *value)
{
  const unsigned char *p;

  for (p = (const unsigned char *) value; *p; ++p)
    if (*p <= ' ' || *p == 0x7f || strchr ("\\\"`$';&|<>!(){}[]*?~", *p)) {
      set_error (EINVAL, "URI parameter '%s' rejected because it contains "
                 "shell metacharacters", name);
      return -1;
    }
  /* A leading '-' would reach nc as an option rather than an address. */
  if (value[0] == '-') {
    set_error (EINVAL, "URI parameter '%s' rejected because it starts "
                 "with '-'", name);
    return -1;
  }
  return 0;
}

/* A TCP port from the authority or nbd-port=, as a string for
 * getaddrinfo or ssh's command line.
 */
static int
tcp_port (const struct nbd_uri *u, int dflt, char *buf, size_t size)
{
  uint32_t v;

  if (u->nbd_port && u->scheme->transport != T_SSH) {
    if (parse_u32 (u->nbd_port, &v, "nbd-port parameter") == -1)
      return -1;
  }
  else if (u->port > 0)
    v = (uint32_t) u->port;
  else
    v = (uint32_t) dflt;
  if (v == 0 || v > 65535) {
    set_error (EINVAL, "URI port number out of range: %" PRIu32, v);
    return -1;
  }
  snprintf (buf, size, "%" PRIu32, v);
  return 0;
}

/* ssh [-C] -p SSHPORT [-o User=USER] -- SERVER nc (-U SOCKET | localhost PORT)
 * The server goes after "--" so that it cannot be read as an option;
 * the user goes inside one -o argument, where ssh would still expand
 * %-tokens, hence the refusal of '%'.
 */
static int
connect_ssh (struct nbd_handle *h, const struct nbd_uri *u)
{
  char ssh_port[16], nbd_port[16], user_opt[512];
  char *argv[16];
  size_t n = 0;
  uint32_t v;
  const unsigned char *p;

  if (u->server == NULL || u->server[0] == '\0') {
    set_error (EINVAL, "SSH transport requires a server name");
    return -1;
  }
  for (p = (const unsigned char *) u->server; *p; ++p)
    if (*p < ' ' || *p == 0x7f) {
      set_error (EINVAL, "URI server name contains a control character");
      return -1;
    }
  if (u->user && u->user[0]) {
    for (p = (const unsigned char *) u->user; *p; ++p)
      if (*p == '%' || *p < ' ' || *p == 0x7f) {
        set_error (EINVAL, "SSH user name rejected because it contains %s",
                   *p == '%' ? "'%' (ssh would expand it)"
                   : "a control character");
        return -1;
      }
    if (snprintf (user_opt, sizeof user_opt, "User=%s", u->user)
        >= (int) sizeof user_opt) {
      set_error (ENAMETOOLONG, "SSH user name is too long");
      return -1;
    }
  }
  if (u->socket && check_shell_safe ("socket", u->socket) == -1)
    return -1;
  if (u->nbd_port) {
    if (check_shell_safe ("nbd-port", u->nbd_port) == -1
        || parse_u32 (u->nbd_port, &v, "nbd-port parameter") == -1)
      return -1;
    if (v == 0 || v > 65535) {
      set_error (EINVAL, "URI nbd-port parameter out of range: %" PRIu32, v);
      return -1;
    }
    snprintf (nbd_port, sizeof nbd_port, "%" PRIu32, v);
  }
  else
    snprintf (nbd_port, sizeof nbd_port, "%d", NBD_DEFAULT_PORT);
  if (tcp_port (u, SSH_DEFAULT_PORT, ssh_port, sizeof ssh_port) == -1)
    return -1;

  argv[n++] = (char *) "ssh";
  if (u->compress == 1)
    argv[n++] = (char *) "-C";
  argv[n++] = (char *) "-p";
  argv[n++] = ssh_port;
  if (u->user && u->user[0]) {
    argv[n++] = (char *) "-o";
    argv[n++] = user_opt;
  }
  argv[n++] = (char *) "--";
  argv[n++] = u->server;
  argv[n++] = (char *) "nc";
  if (u->socket) {
    argv[n++] = (char *) "-U";
    argv[n++] = u->socket;
  }
  else {
    argv[n++] = (char *) "localhost";
    argv[n++] = nbd_port;
  }
  argv[n] = NULL;

  debug (h, "URI: connecting through ssh to %s port %s, export \"%s\"",
         u->server, ssh_port, u->export_name);
  if (nbd_unlocked_aio_connect_command (h, argv) == -1)
    return -1;

  /* TLS runs end to end through the tunnel: the certificate to check is
   * the SSH server's, as for a TCP connection to it.
   */
  free (h->tls_connect_host);
  h->tls_connect_host = strdup (u->server);
  if (h->tls_connect_host == NULL) {
    set_error (errno, "strdup");
    return -1;
  }
  return 0;
}

/* The nbd_set_uri_allow_* policies. */
static int
check_policy (struct nbd_handle *h, const struct nbd_uri *u)
{
  const struct scheme *sc = u->scheme;

  if (!(h->uri_allow_transports & sc->allow_bit)) {
    set_error (EPERM, "URI transport %s is not permitted "
               "(see nbd_set_uri_allow_transports)", sc->name);
    return -1;
  }
  if (sc->tls && h->uri_allow_tls == LIBNBD_TLS_DISABLE) {
    set_error (EPERM, "URI requires TLS (%s:), but TLS URIs are not "
               "permitted (see nbd_set_uri_allow_tls)", sc->name);
    return -1;
  }
  if (!sc->tls && h->uri_allow_tls == LIBNBD_TLS_REQUIRE) {
    set_error (EPERM, "URI does not use TLS (%s:), but only TLS URIs are "
               "permitted (see nbd_set_uri_allow_tls)", sc->name);
    return -1;
  }
  if (!h->uri_allow_local_file) {
    const char *param = u->tls_psk_file ? "tls-psk-file"
      : u->tls_certificates ? "tls-certificates" : NULL;
    if (param) {
      set_error (EPERM, "local file access (%s) is not allowed, "
                 "call nbd_set_uri_allow_local_file to enable this", param);
      return -1;
    }
  }
  if (u->tls_priority && !h->uri_allow_tls_priority) {
    set_error (EPERM, "overriding TLS priority (tls-priority) is not "
               "allowed, call nbd_set_uri_allow_tls_priority to enable this");
    return -1;
  }
  return 0;
}

/* Apply the URI's settings, as if the caller had called the setters. */
static int
apply_settings (struct nbd_handle *h, const struct nbd_uri *u)
{
  const struct scheme *sc = u->scheme;

  if (sc->tls && nbd_unlocked_set_tls (h, LIBNBD_TLS_REQUIRE) == -1)
    return -1;
  if (nbd_unlocked_set_export_name (h, u->export_name) == -1)
    return -1;
  /* With ssh the authority's user logs in to the SSH server; otherwise
   * it is the TLS user, unless tls-username= says otherwise.
   */
  if (sc->transport != T_SSH && u->user && u->user[0]
      && nbd_unlocked_set_tls_username (h, u->user) == -1)
    return -1;
  if (u->tls_username
      && nbd_unlocked_set_tls_username (h, u->tls_username) == -1)
    return -1;
  if (u->tls_certificates
      && nbd_unlocked_set_tls_certificates (h, u->tls_certificates) == -1)
    return -1;
  if (u->tls_psk_file
      && nbd_unlocked_set_tls_psk_file (h, u->tls_psk_file) == -1)
    return -1;
  if (u->tls_hostname
      && nbd_unlocked_set_tls_hostname (h, u->tls_hostname) == -1)
    return -1;
  if (u->tls_verify_peer != -1
      && nbd_unlocked_set_tls_verify_peer (h, u->tls_verify_peer) == -1)
    return -1;
  if (u->tls_priority
      && nbd_unlocked_set_tls_priority (h, u->tls_priority) == -1)
    return -1;
  if (u->connect_timeout_ms >= 0)
    h->connect_timeout_ms = (uint32_t) u->connect_timeout_ms;
  if (u->request_timeout_ms >= 0)
    nbd_unlocked_ext_set_request_timeout (h, (uint32_t) u->request_timeout_ms);
  return 0;
}

/* Remember where a URI connection goes, for nbd_get_uri, if connect.c
 * did not record the address already.
 */
static void
record_unix_addr (struct nbd_handle *h, const char *path)
{
  struct sockaddr_un *sun = (struct sockaddr_un *) &h->connaddr;
  size_t len = strlen (path);

  if (h->connaddrlen != 0 || len >= sizeof sun->sun_path)
    return;
  memset (sun, 0, sizeof *sun);
  sun->sun_family = AF_UNIX;
  memcpy (sun->sun_path, path, len);
  h->connaddrlen = offsetof (struct sockaddr_un, sun_path) + len + 1;
}

static void
record_vsock_addr (struct nbd_handle *h, uint32_t cid, uint32_t port)
{
#ifdef HAVE_LINUX_VM_SOCKETS_H
  struct sockaddr_vm *svm = (struct sockaddr_vm *) &h->connaddr;

  if (h->connaddrlen != 0)
    return;
  memset (svm, 0, sizeof *svm);
  svm->svm_family = AF_VSOCK;
  svm->svm_cid = cid;
  svm->svm_port = port;
  h->connaddrlen = sizeof *svm;
#else
  (void) h; (void) cid; (void) port;
#endif
}

int
nbd_unlocked_aio_connect_uri (struct nbd_handle *h, const char *raw_uri)
{
  struct nbd_uri u;
  const struct scheme *sc;
  uint32_t cid = VSOCK_CID_HOST, vport = NBD_DEFAULT_PORT;
  char port[16];
  char *copy;
  int r = -1;

  if (parse_nbd_uri (h, raw_uri, &u) == -1)
    goto out;
  sc = u.scheme;
  if (check_policy (h, &u) == -1)
    goto out;

  /* Transport-specific checks, all before anything is changed. */
  switch (sc->transport) {
  case T_UNIX:
    if (u.socket == NULL) {
      set_error (EINVAL, "URI scheme %s requires the socket= query parameter "
                 "(eg. %s:///?socket=/path/to/sock)", sc->name, sc->name);
      goto out;
    }
    if (u.socket[0] == '\0') {
      set_error (EINVAL, "URI socket= parameter must not be empty");
      goto out;
    }
    break;
  case T_TCP:
  case T_VSOCK:
    if (u.socket) {
      set_error (EINVAL, "URI socket= parameter is only allowed with the "
                 "+unix and +ssh schemes, not %s", sc->name);
      goto out;
    }
    break;
  case T_SSH:
    break;
  }
  if (sc->transport == T_TCP
      && tcp_port (&u, NBD_DEFAULT_PORT, port, sizeof port) == -1)
    goto out;
  if (sc->transport == T_VSOCK) {
    if (u.server && u.server[0]
        && parse_u32 (u.server, &cid, "vsock CID") == -1)
      goto out;
    if (u.nbd_port) {
      if (parse_u32 (u.nbd_port, &vport, "nbd-port parameter") == -1)
        goto out;
    }
    else if (u.port > 0)
      vport = (uint32_t) u.port;
  }
  if (strlen (u.export_name) > NBD_MAX_STRING) {
    set_error (ENAMETOOLONG, "URI export name is too long for NBD "
               "(over %d bytes)", NBD_MAX_STRING);
    goto out;
  }
  if (sc->tls && !nbd_unlocked_supports_tls (h)) {
    set_error (ENOTSUP, "URI scheme %s requires TLS, but TLS is not "
               "supported by this build of libnbd (see nbd_supports_tls)",
               sc->name);
    goto out;
  }

  if (apply_settings (h, &u) == -1)
    goto out;
  copy = strdup (raw_uri);
  if (copy == NULL) {
    set_error (errno, "strdup");
    goto out;
  }
  free (h->uri);
  h->uri = copy;

  switch (sc->transport) {
  case T_TCP: {
    const char *host = u.server && u.server[0] ? u.server : "localhost";
    debug (h, "URI: connecting over TCP to %s port %s, export \"%s\"",
           host, port, u.export_name);
    r = nbd_unlocked_aio_connect_tcp (h, host, port);
    break;
  }
  case T_UNIX:
    debug (h, "URI: connecting to Unix socket %s, export \"%s\"",
           u.socket, u.export_name);
    r = nbd_unlocked_aio_connect_unix (h, u.socket);
    if (r == 0)
      record_unix_addr (h, u.socket);
    break;
  case T_VSOCK:
    debug (h, "URI: connecting over vsock to CID %" PRIu32 " port %" PRIu32
           ", export \"%s\"", cid, vport, u.export_name);
    r = nbd_unlocked_aio_connect_vsock (h, cid, vport);
    if (r == 0)
      record_vsock_addr (h, cid, vport);
    break;
  case T_SSH:
    r = connect_ssh (h, &u);
    break;
  }

 out:
  free_nbd_uri (&u);
  return r;
}

static int
start_uri (struct nbd_handle *h, const void *args)
{
  return nbd_unlocked_aio_connect_uri (h, (const char *) args);
}

int
nbd_unlocked_connect_uri (struct nbd_handle *h, const char *uri)
{
  /* A server not there yet is retried while a connect timeout runs, as
   * for nbd_connect_unix / nbd_connect_tcp (a subprocess never is: it
   * fails otherwise than with ECONNREFUSED or ENOENT).
   */
  return nbd_internal_connect_blocking (h, start_uri, uri, true);
}

int
nbd_unlocked_supports_uri (struct nbd_handle *h)
{
  (void) h;
  return 1;
}

/* A heuristic, as documented: the string parses as a URI of the
 * hierarchical form with one of our schemes.  Never an error.
 */
int
nbd_unlocked_is_uri (struct nbd_handle *h, const char *uri)
{
  xmlURIPtr x = xmlParseURIRaw (uri, 1);
  int r;

  (void) h;
  if (x == NULL)
    return 0;
  r = x->scheme && find_scheme (x->scheme)
    && strncmp (uri + strlen (x->scheme), "://", 3) == 0;
  xmlFreeURI (x);
  return r;
}

/* ---- Building a URI ---- */

/* The query string, built as name=escaped-value pairs. */
struct query {
  char *s;
  bool failed;
};

static void
query_add (struct query *q, const char *name, const char *value)
{
  xmlChar *esc;
  char *s;

  if (q->failed)
    return;
  /* Besides the unreserved characters, leave alone what is harmless in a
   * query value (notably the '/' of paths), but never '&', ';' or '='.
   */
  esc = xmlURIEscapeStr ((const xmlChar *) value,
                         (const xmlChar *) "/:@!$'()*,");
  if (esc == NULL
      || asprintf (&s, "%s%s%s=%s", q->s ? q->s : "", q->s ? "&" : "",
                   name, (char *) esc) == -1) {
    xmlFree (esc);
    q->failed = true;
    return;
  }
  xmlFree (esc);
  free (q->s);
  q->s = s;
}

/* host[:port] for the authority: host escaped, an IPv6 address in
 * brackets.  port may be NULL.
 */
static char *
make_server (const char *host, const char *port)
{
  xmlChar *esc = xmlURIEscapeStr ((const xmlChar *) host,
                                  (const xmlChar *) "!$&'()*+,;=:");
  bool ipv6 = strchr (host, ':') != NULL;
  char *ret;

  if (esc == NULL)
    return NULL;
  if (asprintf (&ret, "%s%s%s%s%s", ipv6 ? "[" : "", (char *) esc,
                ipv6 ? "]" : "", port ? ":" : "", port ? port : "") == -1)
    ret = NULL;
  xmlFree (esc);
  return ret;
}

char *
nbd_unlocked_get_uri (struct nbd_handle *h)
{
  xmlURI out;
  struct nbd_uri ssh;
  struct query q = { NULL, false };
  struct sockaddr_storage ss;
  socklen_t sslen = 0;
  bool using_tls, is_ssh = false;
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  char *server = NULL, *path = NULL, *ret = NULL;
  xmlChar *saved;

  memset (&out, 0, sizeof out);
  memset (&ssh, 0, sizeof ssh);

  if (h->tls == LIBNBD_TLS_REQUIRE)
    using_tls = true;
  else if (h->tls == LIBNBD_TLS_ALLOW)
    using_tls = h->tls_negotiated;
  else
    using_tls = false;

  /* An ssh tunnel is a subprocess: its URI is the only record of where
   * it goes.
   */
  if (h->uri) {
    struct nbd_uri u;
    if (parse_nbd_uri (h, h->uri, &u) == 0 && u.scheme->transport == T_SSH) {
      ssh = u;
      is_ssh = true;
    }
    else
      free_nbd_uri (&u);
  }

  /* Only an address the library connected to itself: as libnbd, a
   * socket handed over by nbd_connect_socket (or a subprocess) has none,
   * even when its peer happens to have a name.
   */
  if (h->connaddrlen > 0) {
    memcpy (&ss, &h->connaddr, h->connaddrlen);
    sslen = h->connaddrlen;
  }

  if (is_ssh) {
    char port[16];
    out.scheme = (char *) (using_tls ? "nbds+ssh" : "nbd+ssh");
    snprintf (port, sizeof port, "%d", ssh.port);
    server = make_server (ssh.server, ssh.port > 0 ? port : NULL);
    if (ssh.user && ssh.user[0])
      out.user = ssh.user;
    if (ssh.socket)
      query_add (&q, "socket", ssh.socket);
    if (ssh.nbd_port)
      query_add (&q, "nbd-port", ssh.nbd_port);
    if (ssh.compress == 1)
      query_add (&q, "compress", "true");
    if (using_tls && h->tls_username)
      query_add (&q, "tls-username", h->tls_username);
  }
  else if (h->tls_connect_host && h->tls_connect_port) {
    /* nbd_connect_tcp: the host and port as the caller gave them. */
    out.scheme = (char *) (using_tls ? "nbds" : "nbd");
    server = make_server (h->tls_connect_host, h->tls_connect_port);
  }
  else if (sslen >= sizeof (sa_family_t)) {
    switch (ss.ss_family) {
    case AF_INET:
    case AF_INET6:
      if (getnameinfo ((struct sockaddr *) &ss, sslen, host, sizeof host,
                       serv, sizeof serv,
                       NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        set_error (EINVAL, "cannot construct an NBD URI: getnameinfo failed");
        goto out;
      }
      out.scheme = (char *) (using_tls ? "nbds" : "nbd");
      server = make_server (host, serv);
      break;
    case AF_UNIX: {
      struct sockaddr_un *sun = (struct sockaddr_un *) &ss;
      size_t max = sslen - offsetof (struct sockaddr_un, sun_path);
      if (sslen <= offsetof (struct sockaddr_un, sun_path)
          || sun->sun_path[0] == '\0') {
        set_error (EINVAL, "cannot construct an NBD URI for an unnamed or "
                   "abstract Unix domain socket");
        goto out;
      }
      if (max > sizeof sun->sun_path)
        max = sizeof sun->sun_path;
      snprintf (host, sizeof host, "%.*s", (int) max, sun->sun_path);
      out.scheme = (char *) (using_tls ? "nbds+unix" : "nbd+unix");
      server = strdup ("");
      query_add (&q, "socket", host);
      break;
    }
#ifdef HAVE_LINUX_VM_SOCKETS_H
    case AF_VSOCK: {
      struct sockaddr_vm *svm = (struct sockaddr_vm *) &ss;
      /* Ports beyond 65535 do not fit the authority: nbd-port= does. */
      out.scheme = (char *) (using_tls ? "nbds+vsock" : "nbd+vsock");
      snprintf (host, sizeof host, "%u", (unsigned) svm->svm_cid);
      snprintf (serv, sizeof serv, "%u", (unsigned) svm->svm_port);
      if (svm->svm_port <= 65535)
        server = make_server (host, serv);
      else {
        server = make_server (host, NULL);
        query_add (&q, "nbd-port", serv);
      }
      break;
    }
#endif
    default:
      set_error (EAFNOSUPPORT, "cannot construct an NBD URI for address "
                 "family %d", (int) ss.ss_family);
      goto out;
    }
  }
  else if (h->uri) {
    ret = strdup (h->uri);
    if (ret == NULL)
      set_error (errno, "strdup");
    goto out;
  }
  else {
    set_error (EINVAL, "cannot construct an NBD URI for this connection: "
               "the server address is not known");
    goto out;
  }

  /* The user info as given: with TLS-PSK it is the TLS user name. */
  if (!is_ssh && h->tls_username)
    out.user = h->tls_username;
  if (using_tls) {
    if (h->tls_certificates)
      query_add (&q, "tls-certificates", h->tls_certificates);
    if (!h->tls_verify_peer)
      query_add (&q, "tls-verify-peer", "false");
    if (h->tls_psk_file)
      query_add (&q, "tls-psk-file", h->tls_psk_file);
    if (h->tls_hostname)
      query_add (&q, "tls-hostname", h->tls_hostname);
    if (h->tls_priority)
      query_add (&q, "tls-priority", h->tls_priority);
  }

  if (server == NULL || q.failed
      || asprintf (&path, "/%s", h->export_name ? h->export_name : "") == -1) {
    path = NULL;
    set_error (ENOMEM, "cannot allocate the URI");
    goto out;
  }
  out.server = server;
  out.path = path;
  out.query_raw = q.s;
  saved = xmlSaveUri (&out);
  if (saved == NULL) {
    set_error (ENOMEM, "xmlSaveUri");
    goto out;
  }
  ret = strdup ((char *) saved);
  xmlFree (saved);
  if (ret == NULL)
    set_error (errno, "strdup");

 out:
  free (server);
  free (path);
  free (q.s);
  free_nbd_uri (&ssh);
  return ret;
}

#else /* !HAVE_LIBXML2 */

#define NO_URI_SUPPORT \
  "libnbd was built without libxml2, so NBD URIs are not supported"

int
nbd_unlocked_aio_connect_uri (struct nbd_handle *h, const char *raw_uri)
{
  (void) h; (void) raw_uri;
  set_error (ENOTSUP, NO_URI_SUPPORT);
  return -1;
}

int
nbd_unlocked_connect_uri (struct nbd_handle *h, const char *uri)
{
  (void) h; (void) uri;
  set_error (ENOTSUP, NO_URI_SUPPORT);
  return -1;
}

int
nbd_unlocked_supports_uri (struct nbd_handle *h)
{
  (void) h;
  return 0;
}

int
nbd_unlocked_is_uri (struct nbd_handle *h, const char *uri)
{
  (void) h; (void) uri;
  set_error (ENOTSUP, NO_URI_SUPPORT);
  return -1;
}

char *
nbd_unlocked_get_uri (struct nbd_handle *h)
{
  (void) h;
  set_error (ENOTSUP, NO_URI_SUPPORT);
  return NULL;
}

#endif /* !HAVE_LIBXML2 */
