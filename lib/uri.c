/* NBD URIs: nbd_connect_uri, nbd_aio_connect_uri, nbd_get_uri,
 * nbd_is_uri, nbd_supports_uri.
 *
 * The URI syntax is RFC 3986; the NBD-specific meaning of the parts is
 * the NBD URI specification (doc/uri.md in the NBD protocol
 * repository).  The parser below is self-contained (no libxml2).
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>

#ifdef HAVE_LINUX_VM_SOCKETS_H
#include <linux/vm_sockets.h>
#endif

#include "internal.h"

#define NBD_DEFAULT_PORT "10809"
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

static const struct scheme *
find_scheme (const char *name, size_t len)
{
  size_t i;

  for (i = 0; i < sizeof schemes / sizeof schemes[0]; ++i)
    if (strlen (schemes[i].name) == len
        && strncasecmp (schemes[i].name, name, len) == 0)
      return &schemes[i];
  return NULL;
}

/* Length of the RFC 3986 scheme at the start of s (up to, not including,
 * the ':'), or 0 if s does not start with "scheme:".
 */
static size_t
scheme_length (const char *s)
{
  size_t i;

  if (!isascii ((unsigned char) s[0]) || !isalpha ((unsigned char) s[0]))
    return 0;
  for (i = 1; s[i] && s[i] != ':'; ++i) {
    unsigned char c = s[i];
    if (!isascii (c) || !(isalnum (c) || c == '+' || c == '-' || c == '.'))
      return 0;
  }
  return s[i] == ':' ? i : 0;
}

/* ---- Percent-decoding ---- */

static int
hexval (int c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decode the len bytes at s.  The result is NUL-terminated; *outlen (if
 * not NULL) receives its length, which may include decoded NUL bytes.
 * Returns NULL with the error set on malformed escapes or ENOMEM.
 */
static char *
pct_decode (const char *s, size_t len, size_t *outlen, const char *what)
{
  char *ret = malloc (len + 1);
  size_t i, j = 0;

  if (ret == NULL) {
    set_error (errno, "malloc");
    return NULL;
  }
  for (i = 0; i < len; ++i) {
    if (s[i] == '%') {
      int hi, lo;
      if (i + 2 >= len || (hi = hexval (s[i+1])) < 0
          || (lo = hexval (s[i+2])) < 0) {
        set_error (EINVAL, "invalid percent-encoding in URI %s", what);
        free (ret);
        return NULL;
      }
      ret[j++] = (char) (hi * 16 + lo);
      i += 2;
    }
    else
      ret[j++] = s[i];
  }
  ret[j] = '\0';
  if (outlen)
    *outlen = j;
  return ret;
}

/* Decode, refusing embedded NUL bytes. */
static char *
pct_decode_string (const char *s, size_t len, const char *what)
{
  size_t n;
  char *ret = pct_decode (s, len, &n, what);

  if (ret && strlen (ret) != n) {
    if (strcmp (what, "socket parameter") == 0 && ret[0] == '\0')
      set_error (ENOTSUP, "abstract Unix domain sockets (socket=%%00...) "
                 "are not supported");
    else
      set_error (EINVAL, "URI %s must not contain a NUL byte (%%00)", what);
    free (ret);
    return NULL;
  }
  return ret;
}

/* ---- Parsing ---- */

struct parsed_uri {
  const struct scheme *scheme;
  bool has_authority;
  char *user;                   /* decoded userinfo, or NULL */
  char *host;                   /* decoded host (IPv6 without brackets) */
  char *port;                   /* digits, or NULL for the default */
  char *export_name;            /* decoded path without the leading '/' */
  /* Query parameters (decoded), NULL if absent. */
  char *socket;
  char *tls_certificates;
  char *tls_username;
  char *tls_psk_file;
  char *tls_hostname;
  int tls_verify_peer;          /* -1 = absent */
};

static void
free_parsed_uri (struct parsed_uri *u)
{
  free (u->user);
  free (u->host);
  free (u->port);
  free (u->export_name);
  free (u->socket);
  free (u->tls_certificates);
  free (u->tls_username);
  free (u->tls_psk_file);
  free (u->tls_hostname);
}

static int
parse_bool (const char *s)
{
  static const char *const yes[] = { "1", "true", "yes", "on" };
  static const char *const no[] = { "0", "false", "no", "off" };
  size_t i;

  for (i = 0; i < 4; ++i) {
    if (strcasecmp (s, yes[i]) == 0) return 1;
    if (strcasecmp (s, no[i]) == 0) return 0;
  }
  return -1;
}

/* Replace *dst with value (taking ownership). */
static void
set_param (char **dst, char *value)
{
  free (*dst);
  *dst = value;
}

static int
parse_query (struct nbd_handle *h, struct parsed_uri *u,
             const char *q, size_t qlen)
{
  const char *end = q + qlen;

  while (q < end) {
    const char *amp = q, *eq;
    char *name, *value;

    while (amp < end && *amp != '&' && *amp != ';')
      amp++;
    if (amp == q) {             /* empty component, e.g. "a=1&&b=2" */
      q++;
      continue;
    }
    eq = memchr (q, '=', amp - q);
    if (eq == NULL)
      eq = amp;
    name = pct_decode_string (q, eq - q, "query parameter name");
    if (name == NULL)
      return -1;
    value = pct_decode_string (eq < amp ? eq + 1 : eq,
                               eq < amp ? (size_t) (amp - eq - 1) : 0,
                               strcmp (name, "socket") == 0
                               ? "socket parameter" : "query parameter");
    if (value == NULL) {
      free (name);
      return -1;
    }

    if (strcmp (name, "socket") == 0)
      set_param (&u->socket, value);
    else if (strcmp (name, "tls-certificates") == 0)
      set_param (&u->tls_certificates, value);
    else if (strcmp (name, "tls-username") == 0)
      set_param (&u->tls_username, value);
    else if (strcmp (name, "tls-psk-file") == 0)
      set_param (&u->tls_psk_file, value);
    else if (strcmp (name, "tls-hostname") == 0)
      set_param (&u->tls_hostname, value);
    else if (strcmp (name, "tls-verify-peer") == 0) {
      int b = parse_bool (value);
      if (b == -1) {
        set_error (EINVAL, "URI query parameter tls-verify-peer: "
                   "cannot parse boolean '%s'", value);
        free (value);
        free (name);
        return -1;
      }
      u->tls_verify_peer = b;
      free (value);
    }
    else {
      debug (h, "ignoring unknown URI query parameter '%s'", name);
      free (value);
    }
    free (name);
    q = amp < end ? amp + 1 : amp;
  }
  return 0;
}

/* Split the authority [userinfo@]host[:port]. */
static int
parse_authority (struct parsed_uri *u, const char *a, size_t alen)
{
  const char *end = a + alen, *at, *p, *host, *host_end, *port = NULL;
  size_t i;

  /* userinfo may not contain an unencoded '@', so the last one ends it. */
  at = NULL;
  for (p = a; p < end; ++p)
    if (*p == '@')
      at = p;
  if (at) {
    u->user = pct_decode_string (a, at - a, "user name");
    if (u->user == NULL)
      return -1;
    a = at + 1;
  }

  size_t rem = a < end ? (size_t) (end - a) : 0;

  if (rem > 0 && *a == '[') {
    /* IP-literal (RFC 2732 / 3986): [IPv6] */
    const char *close = memchr (a, ']', rem);
    if (close == NULL) {
      set_error (EINVAL, "unterminated IPv6 address '[' in URI");
      return -1;
    }
    host = a + 1;
    host_end = close;
    for (p = host; p < host_end; ++p)
      if (!isxdigit ((unsigned char) *p) && *p != ':' && *p != '.'
          && *p != '%' && !isalnum ((unsigned char) *p)
          && *p != '-' && *p != '_' && *p != '~') {
        set_error (EINVAL, "invalid character in IPv6 address in URI");
        return -1;
      }
    p = close + 1;
    if (p < end) {
      if (*p != ':') {
        set_error (EINVAL, "unexpected text after IPv6 address in URI");
        return -1;
      }
      port = p + 1;
    }
    u->host = strndup (host, host_end - host);
    if (u->host == NULL) {
      set_error (errno, "strndup");
      return -1;
    }
  }
  else {
    const char *colon = memchr (a, ':', rem);
    host = a;
    host_end = colon ? colon : end;
    if (colon)
      port = colon + 1;
    for (p = host; p < host_end; ++p)
      if (*p == '[' || *p == ']') {
        set_error (EINVAL, "invalid character '%c' in URI host name", *p);
        return -1;
      }
    u->host = pct_decode_string (host, host_end - host, "host name");
    if (u->host == NULL)
      return -1;
  }

  if (port && port < end) {
    size_t plen = end - port;
    unsigned long v;

    for (i = 0; i < plen; ++i)
      if (!isdigit ((unsigned char) port[i])) {
        set_error (EINVAL, "URI port number is not numeric: '%.*s'",
                   (int) plen, port);
        return -1;
      }
    if (plen > 5 || (v = strtoul (port, NULL, 10)) > 65535) {
      set_error (EINVAL, "URI port number out of range: '%.*s'",
                 (int) plen, port);
      return -1;
    }
    if (v > 0) {                /* 0 means the default, as upstream */
      if (asprintf (&u->port, "%lu", v) == -1) {
        u->port = NULL;
        set_error (errno, "asprintf");
        return -1;
      }
    }
  }
  return 0;
}

static int
parse_uri (struct nbd_handle *h, const char *raw, struct parsed_uri *u)
{
  size_t slen;
  const char *p, *path, *path_end, *query = NULL, *query_end = NULL;

  memset (u, 0, sizeof *u);
  u->tls_verify_peer = -1;

  for (p = raw; *p; ++p) {
    unsigned char c = *p;
    if (c <= 0x20 || c == 0x7f) {
      set_error (EINVAL, "unable to parse URI: it contains a space or a "
                 "control character: %s", raw);
      return -1;
    }
  }

  slen = scheme_length (raw);
  if (slen == 0) {
    set_error (EINVAL, "unable to parse URI: no scheme (expected "
               "nbd://..., nbd+unix://... etc.): %s", raw);
    return -1;
  }
  u->scheme = find_scheme (raw, slen);
  if (u->scheme == NULL) {
    set_error (EINVAL, "unknown NBD URI scheme: %.*s", (int) slen, raw);
    return -1;
  }

  p = raw + slen + 1;
  if (p[0] == '/' && p[1] == '/') {
    const char *a = p + 2, *a_end = a;
    while (*a_end && *a_end != '/' && *a_end != '?' && *a_end != '#')
      a_end++;
    u->has_authority = true;
    if (parse_authority (u, a, a_end - a) == -1)
      return -1;
    p = a_end;
  }

  path = p;
  path_end = path;
  while (*path_end && *path_end != '?' && *path_end != '#')
    path_end++;
  if (*path_end == '?') {
    query = path_end + 1;
    query_end = query;
    while (*query_end && *query_end != '#')
      query_end++;
  }
  /* A fragment (#...) has no meaning for NBD and is ignored. */

  /* Export name: the path without its leading '/'. */
  if (path_end > path && path[0] != '/') {
    set_error (EINVAL, "URI path must be empty or begin with '/': %s", raw);
    return -1;
  }
  u->export_name = pct_decode_string (path_end > path ? path + 1 : path,
                                      path_end > path ? path_end - path - 1 : 0,
                                      "export name");
  if (u->export_name == NULL)
    return -1;

  if (query && parse_query (h, u, query, query_end - query) == -1)
    return -1;

  return 0;
}

/* ---- Connecting ---- */

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

int
nbd_unlocked_aio_connect_uri (struct nbd_handle *h, const char *raw_uri)
{
  struct parsed_uri u;
  const struct scheme *sc;
  uint32_t cid = VSOCK_CID_HOST, vport = 10809;
  char *copy;
  int r = -1;

  if (parse_uri (h, raw_uri, &u) == -1)
    goto out;
  sc = u.scheme;

  /* Policy set by nbd_set_uri_allow_*. */
  if (!(h->uri_allow_transports & sc->allow_bit)) {
    set_error (EPERM, "URI transport '%s' is not permitted "
               "(see nbd_set_uri_allow_transports)", sc->name);
    goto out;
  }
  if (sc->tls && h->uri_allow_tls == LIBNBD_TLS_DISABLE) {
    set_error (EPERM, "URI requires TLS (%s:), but TLS URIs are not "
               "permitted (see nbd_set_uri_allow_tls)", sc->name);
    goto out;
  }
  if (!sc->tls && h->uri_allow_tls == LIBNBD_TLS_REQUIRE) {
    set_error (EPERM, "URI does not use TLS (%s:), but only TLS URIs are "
               "permitted (see nbd_set_uri_allow_tls)", sc->name);
    goto out;
  }
  if (!h->uri_allow_local_file) {
    if (u.tls_psk_file) {
      set_error (EPERM, "URI parameter tls-psk-file reads a local file, which "
                 "is not permitted (see nbd_set_uri_allow_local_file)");
      goto out;
    }
    if (u.tls_certificates) {
      set_error (EPERM, "URI parameter tls-certificates reads local files, "
                 "which is not permitted (see nbd_set_uri_allow_local_file)");
      goto out;
    }
  }

  /* Transport-specific checks. */
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
  case T_SSH:
    if (u.socket) {
      set_error (EINVAL, "URI socket= parameter is only allowed with the "
                 "+unix schemes, not %s", sc->name);
      goto out;
    }
    break;
  }
  if (sc->transport == T_VSOCK) {
    if (u.host && u.host[0] && parse_u32 (u.host, &cid, "vsock CID") == -1)
      goto out;
    if (u.port && parse_u32 (u.port, &vport, "vsock port") == -1)
      goto out;
  }
  if (sc->transport == T_SSH) {
    set_error (ENOTSUP, "URI scheme %s: the ssh transport is not supported "
               "by this build of libnbd", sc->name);
    goto out;
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

  /* Apply the settings, as if the caller had called the setters. */
  if (sc->tls && nbd_unlocked_set_tls (h, LIBNBD_TLS_REQUIRE) == -1)
    goto out;
  if (nbd_unlocked_set_export_name (h, u.export_name) == -1)
    goto out;
  if (u.user && u.user[0]
      && nbd_unlocked_set_tls_username (h, u.user) == -1)
    goto out;
  if (u.tls_username
      && nbd_unlocked_set_tls_username (h, u.tls_username) == -1)
    goto out;
  if (u.tls_certificates
      && nbd_unlocked_set_tls_certificates (h, u.tls_certificates) == -1)
    goto out;
  if (u.tls_psk_file
      && nbd_unlocked_set_tls_psk_file (h, u.tls_psk_file) == -1)
    goto out;
  if (u.tls_hostname
      && nbd_unlocked_set_tls_hostname (h, u.tls_hostname) == -1)
    goto out;
  if (u.tls_verify_peer != -1
      && nbd_unlocked_set_tls_verify_peer (h, u.tls_verify_peer) == -1)
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
    const char *host = u.host && u.host[0] ? u.host : "localhost";
    const char *port = u.port ? u.port : NBD_DEFAULT_PORT;
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
    abort ();                   /* refused above */
  }

 out:
  free_parsed_uri (&u);
  return r;
}

int
nbd_unlocked_connect_uri (struct nbd_handle *h, const char *uri)
{
  if (nbd_unlocked_aio_connect_uri (h, uri) == -1)
    return -1;
  return nbd_internal_wait_connected (h);
}

int
nbd_unlocked_supports_uri (struct nbd_handle *h)
{
  (void) h;
  return 1;
}

int
nbd_unlocked_is_uri (struct nbd_handle *h, const char *uri)
{
  size_t slen = scheme_length (uri);

  (void) h;
  return slen > 0 && find_scheme (uri, slen) != NULL;
}

/* ---- Building a URI ---- */

struct buf {
  char *p;
  size_t len, cap;
  bool failed;
};

static void
buf_add (struct buf *b, const char *s, size_t n)
{
  if (b->failed)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 128;
    char *p;
    while (cap < b->len + n + 1)
      cap *= 2;
    p = realloc (b->p, cap);
    if (p == NULL) {
      b->failed = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy (b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void
buf_str (struct buf *b, const char *s)
{
  buf_add (b, s, strlen (s));
}

/* Append s percent-encoding everything except the RFC 3986 unreserved
 * characters and those in `safe`.
 */
static void
buf_encode (struct buf *b, const char *s, const char *safe)
{
  static const char hex[] = "0123456789ABCDEF";

  for (; *s; ++s) {
    unsigned char c = *s;
    if ((isascii (c) && isalnum (c)) || c == '-' || c == '.' || c == '_'
        || c == '~' || (c != '\0' && strchr (safe, c)))
      buf_add (b, (const char *) &c, 1);
    else {
      char esc[3] = { '%', hex[c >> 4], hex[c & 15] };
      buf_add (b, esc, 3);
    }
  }
}

/* Characters left alone in a path segment and in query values. */
#define PATH_SAFE "/:@!$&'()*+,;="
#define USER_SAFE "!$&'()*+,;="
#define QUERY_SAFE "/:@!$'()*,"

static void
buf_query (struct buf *b, bool *first, const char *name, const char *value)
{
  buf_str (b, *first ? "?" : "&");
  *first = false;
  buf_str (b, name);
  buf_str (b, "=");
  buf_encode (b, value, QUERY_SAFE);
}

char *
nbd_unlocked_get_uri (struct nbd_handle *h)
{
  struct sockaddr_storage ss;
  socklen_t sslen = 0;
  struct buf b = { 0 };
  bool using_tls, first = true;
  const char *transport;
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  char *socket_path = NULL;

  /* Where did the connection go?  Prefer the address recorded when
   * connecting; otherwise ask the socket itself.
   */
  if (h->connaddrlen > 0) {
    memcpy (&ss, &h->connaddr, h->connaddrlen);
    sslen = h->connaddrlen;
  }
  else if (h->fd >= 0) {
    sslen = sizeof ss;
    if (getpeername (h->fd, (struct sockaddr *) &ss, &sslen) == -1)
      sslen = 0;
  }

  if (sslen == 0 || sslen < sizeof (sa_family_t)) {
    if (h->uri) {
      char *ret = strdup (h->uri);
      if (ret == NULL)
        set_error (errno, "strdup");
      return ret;
    }
    set_error (EINVAL, "cannot construct an NBD URI for this connection: "
               "the server address is not known");
    return NULL;
  }

  if (h->tls == LIBNBD_TLS_REQUIRE)
    using_tls = true;
  else if (h->tls == LIBNBD_TLS_ALLOW)
    using_tls = h->tls_negotiated;
  else
    using_tls = false;

  switch (ss.ss_family) {
  case AF_INET:
  case AF_INET6:
    if (getnameinfo ((struct sockaddr *) &ss, sslen, host, sizeof host,
                     serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
      set_error (EINVAL, "cannot construct an NBD URI: getnameinfo failed");
      return NULL;
    }
    transport = "";
    break;
  case AF_UNIX: {
    struct sockaddr_un *sun = (struct sockaddr_un *) &ss;
    size_t max = sslen - offsetof (struct sockaddr_un, sun_path);
    if (sslen <= offsetof (struct sockaddr_un, sun_path)
        || sun->sun_path[0] == '\0') {
      set_error (EINVAL, "cannot construct an NBD URI for an unnamed or "
                 "abstract Unix domain socket");
      return NULL;
    }
    socket_path = strndup (sun->sun_path,
                           max < sizeof sun->sun_path ? max
                           : sizeof sun->sun_path);
    if (socket_path == NULL) {
      set_error (errno, "strndup");
      return NULL;
    }
    transport = "+unix";
    break;
  }
#ifdef HAVE_LINUX_VM_SOCKETS_H
  case AF_VSOCK: {
    struct sockaddr_vm *svm = (struct sockaddr_vm *) &ss;
    snprintf (host, sizeof host, "%u", (unsigned) svm->svm_cid);
    snprintf (serv, sizeof serv, "%u", (unsigned) svm->svm_port);
    transport = "+vsock";
    break;
  }
#endif
  default:
    set_error (EINVAL, "cannot construct an NBD URI for address family %d",
               (int) ss.ss_family);
    return NULL;
  }

  buf_str (&b, using_tls ? "nbds" : "nbd");
  buf_str (&b, transport);
  buf_str (&b, "://");
  if (h->tls_username) {
    buf_encode (&b, h->tls_username, USER_SAFE);
    buf_str (&b, "@");
  }
  if (ss.ss_family == AF_INET6) {
    buf_str (&b, "[");
    buf_str (&b, host);
    buf_str (&b, "]:");
    buf_str (&b, serv);
  }
  else if (ss.ss_family != AF_UNIX) {
    buf_str (&b, host);
    buf_str (&b, ":");
    buf_str (&b, serv);
  }
  buf_str (&b, "/");
  buf_encode (&b, h->export_name ? h->export_name : "", PATH_SAFE);

  if (socket_path)
    buf_query (&b, &first, "socket", socket_path);
  if (using_tls) {
    if (h->tls_certificates)
      buf_query (&b, &first, "tls-certificates", h->tls_certificates);
    if (h->tls_psk_file)
      buf_query (&b, &first, "tls-psk-file", h->tls_psk_file);
    if (h->tls_hostname)
      buf_query (&b, &first, "tls-hostname", h->tls_hostname);
  }
  free (socket_path);

  if (b.failed || b.p == NULL) {
    free (b.p);
    set_error (ENOMEM, "cannot allocate the URI");
    return NULL;
  }
  return b.p;
}
