/* Connecting: every transport (sockaddr, Unix, TCP, vsock, caller's
 * socket, subprocess, systemd socket activation) and the subprocess
 * helpers.
 */
#include <config.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>

#ifdef HAVE_LINUX_VM_SOCKETS_H
#include <linux/vm_sockets.h>
#endif

#include "internal.h"

extern char **environ;

/* ---- Common helpers ---- */

/* A connection attempt failed irrecoverably before the state machine got
 * going: drop the socket and mark the handle dead, as upstream does.
 * The error must already be set.
 */
static void
fail_dead (struct nbd_handle *h)
{
  nbd_internal_close_fd (h);
  h->ops = NULL;
  h->state = STATE_DEAD;
}

static int
set_nonblock (int fd)
{
  int flags = fcntl (fd, F_GETFL, 0);
  if (flags == -1)
    return -1;
  if (!(flags & O_NONBLOCK) && fcntl (fd, F_SETFL, flags | O_NONBLOCK) == -1)
    return -1;
  return 0;
}

/* The socket is connected (or is a connected socket pair): go on with
 * the handshake.
 */
static void
connected (struct nbd_handle *h)
{
  /* A cancel that came while the socket was not connected yet could not
   * shut it down (shutdown(2) of an unconnected socket does nothing): do
   * it now, so that a program polling the socket itself wakes up.
   */
  if (atomic_load (&h->cancel_requested))
    nbd_internal_shut_for_cancel (h);
  debug (h, "connected");
  nbd_internal_handshake_start (h);
}

/* The address the library connected to, for nbd_get_uri (which may be
 * called after the socket is gone).
 */
static void
remember_addr (struct nbd_handle *h, const struct sockaddr *addr, socklen_t addrlen)
{
  if (addrlen <= sizeof h->connaddr) {
    memcpy (&h->connaddr, addr, addrlen);
    h->connaddrlen = addrlen;
  }
}

/* Adopt fd (non-blocking, close-on-exec) and start connect(2) on it.
 * Returns 0 when connected or in progress, or -1 with errno set
 * when connect failed (fd is closed in that case, h->fd = -1).
 */
static int
start_connect (struct nbd_handle *h, int fd,
               const struct sockaddr *addr, socklen_t addrlen)
{
  nbd_internal_adopt_fd (h, fd);
  h->ops = &nbd_internal_socket_ops;

  /* Connected at once (a Unix socket, usually) or not: as libnbd, the
   * handle waits for the socket to be writable either way, so an event
   * loop sees the same direction (write) and makes the same
   * nbd_aio_notify_write after every connect call.
   */
  if (connect (fd, addr, addrlen) == 0 || errno == EINPROGRESS) {
    h->state = STATE_CONNECTING;
    return 0;
  }
  else {
    int saved_errno = errno;
    nbd_internal_close_fd (h);
    h->ops = NULL;
    errno = saved_errno;
    return -1;
  }
}

/* Describe a socket address for error messages. */
static void
describe_addr (const struct sockaddr *addr, socklen_t addrlen,
               char *buf, size_t buflen)
{
  char host[64], serv[32];     /* numeric forms only */

  if (addr->sa_family == AF_UNIX) {
    const struct sockaddr_un *sun = (const struct sockaddr_un *) addr;
    size_t n = addrlen > offsetof (struct sockaddr_un, sun_path)
      ? addrlen - offsetof (struct sockaddr_un, sun_path) : 0;
    if (n > sizeof sun->sun_path)
      n = sizeof sun->sun_path;
    snprintf (buf, buflen, "%.*s", (int) strnlen (sun->sun_path, n),
              sun->sun_path);
    return;
  }
  if (addr->sa_family == AF_INET || addr->sa_family == AF_INET6) {
    if (getnameinfo (addr, addrlen, host, sizeof host, serv, sizeof serv,
                     NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
      if (addr->sa_family == AF_INET6)
        snprintf (buf, buflen, "[%s]:%s", host, serv);
      else
        snprintf (buf, buflen, "%s:%s", host, serv);
      return;
    }
  }
#ifdef HAVE_LINUX_VM_SOCKETS_H
  if (addr->sa_family == AF_VSOCK) {
    const struct sockaddr_vm *svm = (const struct sockaddr_vm *) addr;
    snprintf (buf, buflen, "vsock:%u:%u", svm->svm_cid, svm->svm_port);
    return;
  }
#endif
  snprintf (buf, buflen, "address family %d", (int) addr->sa_family);
}

/* ---- Plain sockaddr ---- */

int
nbd_unlocked_aio_connect (struct nbd_handle *h,
                          const struct sockaddr *addr, socklen_t addrlen)
{
  int fd;
  char desc[256];

  /* Recorded before trying, as libnbd does: nbd_get_uri of a handle
   * whose connect failed still names the address it was given.
   */
  remember_addr (h, addr, addrlen);
  fd = socket (addr->sa_family, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0);
  if (fd == -1) {
    set_error (errno, "socket");
    fail_dead (h);
    return -1;
  }
  if (start_connect (h, fd, addr, addrlen) == -1) {
    int err = errno;
    describe_addr (addr, addrlen, desc, sizeof desc);
    set_error (err, "connect: %s: %s", desc, strerror (err));
    fail_dead (h);
    return -1;
  }
  return 0;
}

/* ---- Unix domain socket ---- */

int
nbd_unlocked_aio_connect_unix (struct nbd_handle *h, const char *unixsocket)
{
  struct sockaddr_un sun;
  size_t len = strlen (unixsocket);

  if (len >= sizeof sun.sun_path) {
    set_error (ENAMETOOLONG, "socket name too long: %s", unixsocket);
    return -1;
  }
  memset (&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  memcpy (sun.sun_path, unixsocket, len);

  return nbd_unlocked_aio_connect (h, (struct sockaddr *) &sun,
                                   offsetof (struct sockaddr_un, sun_path)
                                   + len + 1);
}

static int
start_unix (struct nbd_handle *h, const void *args)
{
  return nbd_unlocked_aio_connect_unix (h, *(const char *const *) args);
}

int
nbd_unlocked_connect_unix (struct nbd_handle *h, const char *unixsocket)
{
  return nbd_internal_connect_blocking (h, start_unix, &unixsocket, true);
}

/* ---- vsock ---- */

int
nbd_unlocked_aio_connect_vsock (struct nbd_handle *h,
                                uint32_t cid, uint32_t port)
{
#ifdef HAVE_LINUX_VM_SOCKETS_H
  struct sockaddr_vm svm;

  memset (&svm, 0, sizeof svm);
  svm.svm_family = AF_VSOCK;
  svm.svm_cid = cid;
  svm.svm_port = port;
  return nbd_unlocked_aio_connect (h, (struct sockaddr *) &svm, sizeof svm);
#else
  (void) cid;
  (void) port;
  set_error (ENOTSUP, "AF_VSOCK is not supported on this platform");
  return -1;
#endif
}

struct vsock_args { uint32_t cid, port; };

static int
start_vsock (struct nbd_handle *h, const void *args)
{
  const struct vsock_args *a = args;
  return nbd_unlocked_aio_connect_vsock (h, a->cid, a->port);
}

int
nbd_unlocked_connect_vsock (struct nbd_handle *h, uint32_t cid, uint32_t port)
{
  struct vsock_args a = { cid, port };
  return nbd_internal_connect_blocking (h, start_vsock, &a, true);
}

/* ---- TCP ---- */

static void
free_addrs (struct nbd_handle *h)
{
  if (h->addrs)
    freeaddrinfo (h->addrs);
  h->addrs = h->next_addr = NULL;
}

/* Every address of a TCP connect failed: as libnbd, the handle goes
 * back to the created state (the error stays set), so that the program
 * may try again, e.g. once the server is up.
 */
static void
tcp_exhausted (struct nbd_handle *h)
{
  nbd_internal_close_fd (h);
  h->ops = NULL;
  free_addrs (h);
  h->state = STATE_CREATED;
}

/* A connect that failed before any byte was exchanged (the server is not
 * there yet): back to the created state, so that it can be tried again.
 */
void
nbd_internal_connect_reset (struct nbd_handle *h)
{
  assert (h->state == STATE_DEAD || h->state == STATE_CREATED);
  nbd_internal_close_socket (h);
  h->ops = NULL;
  free_addrs (h);
  h->connect_errno = 0;
  free (h->dead_msg);
  h->dead_msg = NULL;
  h->dead_errno = 0;
  h->state = STATE_CREATED;
}

/* The address being tried: the one before h->next_addr. */
static struct addrinfo *
current_addr (struct nbd_handle *h)
{
  struct addrinfo *ai;

  for (ai = h->addrs; ai; ai = ai->ai_next)
    if (ai->ai_next == h->next_addr)
      return ai;
  return NULL;
}

/* Try h->next_addr and the following addresses until one connects at
 * once or is in progress (0), or all have failed (-1, error set).
 */
static int
tcp_try_next (struct nbd_handle *h)
{
  char desc[256] = "remote host";
  struct addrinfo *cur = current_addr (h);

  if (cur)
    describe_addr (cur->ai_addr, cur->ai_addrlen, desc, sizeof desc);

  while (h->next_addr) {
    struct addrinfo *ai = h->next_addr;
    int fd;

    h->next_addr = ai->ai_next;
    describe_addr (ai->ai_addr, ai->ai_addrlen, desc, sizeof desc);
    debug (h, "connecting to %s", desc);

    fd = socket (ai->ai_family,
                 ai->ai_socktype|SOCK_NONBLOCK|SOCK_CLOEXEC, ai->ai_protocol);
    if (fd == -1) {
      h->connect_errno = errno;
      debug (h, "socket: %s: %s", desc, strerror (errno));
      continue;
    }
    if (start_connect (h, fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      if (h->state != STATE_CONNECTING)
        free_addrs (h);         /* connected at once */
      return 0;
    }
    h->connect_errno = errno;
    debug (h, "connect: %s: %s", desc, strerror (errno));
  }

  free_addrs (h);
  if (h->connect_errno == 0)
    h->connect_errno = ECONNREFUSED;
  set_error (h->connect_errno, "connect: %s: %s",
             desc, strerror (h->connect_errno));
  return -1;
}

int
nbd_unlocked_aio_connect_tcp (struct nbd_handle *h,
                              const char *hostname, const char *port)
{
  struct addrinfo hints;
  struct addrinfo *result = NULL;
  int r;

  memset (&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = 0;
  hints.ai_flags = AI_ADDRCONFIG;

  r = getaddrinfo (hostname, port, &hints, &result);
  /* AI_ADDRCONFIG ignores loopback addresses, so on a machine with only
   * IPv4 configured "::1" (or "localhost" on IPv6-only) would not
   * resolve: try again without it.
   */
  if (r == EAI_NONAME || r == EAI_ADDRFAMILY || r == EAI_FAMILY
      || r == EAI_NODATA) {
    hints.ai_flags = 0;
    r = getaddrinfo (hostname, port, &hints, &result);
  }
  if (r != 0) {
    set_error (r == EAI_SYSTEM ? errno : 0, "getaddrinfo: %s:%s: %s",
               hostname, port, gai_strerror (r));
    return -1;
  }

  free (h->tls_connect_host);     /* the name TLS checks (tls.c) */
  h->tls_connect_host = strdup (hostname);
  free (h->tls_connect_port);     /* nbd_get_uri writes both back */
  h->tls_connect_port = strdup (port);
  if (h->tls_connect_host == NULL || h->tls_connect_port == NULL) {
    set_error (errno, "strdup");
    freeaddrinfo (result);
    return -1;
  }
  free_addrs (h);
  h->addrs = h->next_addr = result;
  h->connect_errno = 0;
  if (tcp_try_next (h) == -1) {
    tcp_exhausted (h);
    return -1;
  }
  return 0;
}

struct tcp_args { const char *hostname, *port; };

static int
start_tcp (struct nbd_handle *h, const void *args)
{
  const struct tcp_args *a = args;
  return nbd_unlocked_aio_connect_tcp (h, a->hostname, a->port);
}

int
nbd_unlocked_connect_tcp (struct nbd_handle *h,
                          const char *hostname, const char *port)
{
  struct tcp_args a = { hostname, port };
  return nbd_internal_connect_blocking (h, start_tcp, &a, true);
}

/* ---- Completion of a non-blocking connect ---- */

int
nbd_internal_connect_finished (struct nbd_handle *h)
{
  int err = 0;
  socklen_t len = sizeof err;
  struct pollfd pfd = { .fd = h->fd, .events = POLLOUT };

  /* SO_ERROR reads 0 while the connect is still in progress, and the
   * blocking calls run the engine once before their first poll: only a
   * socket that polls writable (or in error) has finished connecting.
   */
  if (poll (&pfd, 1, 0) <= 0)
    return 0;

  if (getsockopt (h->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
    err = errno;

  if (err == 0) {
    free_addrs (h);
    connected (h);
    return 0;
  }

  h->connect_errno = err;
  if (h->addrs) {
    /* TCP: move on to the next address. */
    debug (h, "connect: %s, trying the next address", strerror (err));
    nbd_internal_close_fd (h);
    h->ops = NULL;
    if (tcp_try_next (h) == 0)
      return 0;
    tcp_exhausted (h);
    return -1;
  }

  set_error (err, "connect: %s", strerror (err));
  return -1;
}

/* ---- Caller's socket ---- */

int
nbd_unlocked_aio_connect_socket (struct nbd_handle *h, int sock)
{
  if (set_nonblock (sock) == -1) {
    set_error (errno, "fcntl");
    return -1;
  }
  nbd_internal_adopt_fd (h, sock);
  h->ops = &nbd_internal_socket_ops;
  connected (h);
  return 0;
}

int
nbd_unlocked_connect_socket (struct nbd_handle *h, int sock)
{
  if (nbd_unlocked_aio_connect_socket (h, sock) == -1)
    return -1;
  return nbd_internal_wait_connected (h);
}

/* ---- Subprocesses ---- */

/* execvp, prepared before fork so that the child only calls
 * async-signal-safe functions: the candidate paths are computed here.
 */
struct exec_plan {
  char **paths;                 /* NULL-terminated list of candidates */
  /* For a candidate the kernel refuses as not executable (ENOEXEC, a
   * script without "#!"): run it with /bin/sh, as execvp does.  Slot 1
   * receives the candidate's path in the child.
   */
  char **sh_argv;
};

static void
exec_plan_free (struct exec_plan *p)
{
  size_t i;

  if (p->paths) {
    for (i = 0; p->paths[i]; ++i)
      free (p->paths[i]);
    free (p->paths);
  }
  p->paths = NULL;
  free (p->sh_argv);
  p->sh_argv = NULL;
}

static int
exec_plan_init_sh_argv (struct exec_plan *p, char **argv)
{
  size_t argc = 0, i;

  while (argv[argc])
    argc++;
  /* "/bin/sh", the script, argv[1..], NULL */
  p->sh_argv = calloc (argc + 2, sizeof (char *));
  if (!p->sh_argv)
    return -1;
  p->sh_argv[0] = (char *) "/bin/sh";
  for (i = 1; i < argc; ++i)
    p->sh_argv[i + 1] = argv[i];
  return 0;
}

static int
exec_plan_init (struct exec_plan *p, char **argv)
{
  const char *file = argv[0];
  const char *path, *s, *e;
  size_t n, i, flen = strlen (file);

  p->paths = NULL;
  p->sh_argv = NULL;

  if (flen == 0) {
    set_error (ENOENT, "empty program name");
    return -1;
  }
  if (exec_plan_init_sh_argv (p, argv) == -1)
    goto nomem;
  if (strchr (file, '/')) {
    p->paths = calloc (2, sizeof (char *));
    if (!p->paths || !(p->paths[0] = strdup (file)))
      goto nomem;
    return 0;
  }

  path = getenv ("PATH");
  if (!path)
    path = "/bin:/usr/bin";
  n = 1;
  for (s = path; *s; ++s)
    if (*s == ':')
      n++;
  p->paths = calloc (n + 1, sizeof (char *));
  if (!p->paths)
    goto nomem;

  i = 0;
  s = path;
  for (;;) {
    size_t dlen;
    e = strchr (s, ':');
    dlen = e ? (size_t) (e - s) : strlen (s);
    if (dlen == 0) {
      if (asprintf (&p->paths[i], "./%s", file) == -1) {
        p->paths[i] = NULL;
        goto nomem;
      }
    }
    else if (asprintf (&p->paths[i], "%.*s/%s", (int) dlen, s, file) == -1) {
      p->paths[i] = NULL;
      goto nomem;
    }
    i++;
    if (!e)
      break;
    s = e + 1;
  }
  return 0;

 nomem:
  set_error (errno, "malloc");
  exec_plan_free (p);
  return -1;
}

/* In the child, once every candidate failed: as libnbd, say why on the
 * stderr it shares with the caller, who otherwise only sees the
 * connection close.  strerrordesc_np reads a static table (no locale,
 * no lock), so it is safe after fork.
 */
static void
child_report_exec_failure (const char *prog, int err)
{
  const char *desc = strerrordesc_np (err);
  struct iovec iov[4];
  ssize_t r;

  if (!desc)
    desc = "cannot execute";
  iov[0] = (struct iovec) { (void *) prog, strlen (prog) };
  iov[1] = (struct iovec) { (void *) ": ", 2 };
  iov[2] = (struct iovec) { (void *) desc, strlen (desc) };
  iov[3] = (struct iovec) { (void *) "\n", 1 };
  r = writev (STDERR_FILENO, iov, 4);
  (void) r;                     /* nothing more to do about it */
}

/* In the child: async-signal-safe only.  Does not return. */
static void __attribute__ ((noreturn))
exec_plan_run (const struct exec_plan *p, char **argv, char **envp)
{
  size_t i;
  bool eacces = false;

  for (i = 0; p->paths[i]; ++i) {
    execve (p->paths[i], argv, envp);
    if (errno == ENOEXEC) {
      p->sh_argv[1] = p->paths[i];
      execve (p->sh_argv[0], p->sh_argv, envp);
      _exit (126);
    }
    if (errno == EACCES)
      eacces = true;
  }
  /* As execvp: EACCES from any candidate wins over the last error. */
  child_report_exec_failure (argv[0], eacces ? EACCES : errno);
  _exit (eacces ? 126 : 127);
}

/* In the child: restore the signal state a server expects. */
static void
child_reset_signals (void)
{
  sigset_t mask;

  signal (SIGPIPE, SIG_DFL);
  sigemptyset (&mask);
  sigprocmask (SIG_SETMASK, &mask, NULL);
}

int
nbd_unlocked_aio_connect_command (struct nbd_handle *h, char **argv)
{
  struct exec_plan plan;
  int sv[2];
  pid_t pid;

  if (argv[0] == NULL) {
    set_error (EINVAL, "argv parameter must have at least 1 element");
    return -1;
  }
  if (exec_plan_init (&plan, argv) == -1)
    return -1;

  if (socketpair (AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0, sv) == -1) {
    set_error (errno, "socketpair");
    exec_plan_free (&plan);
    fail_dead (h);
    return -1;
  }

  pid = fork ();
  if (pid == -1) {
    set_error (errno, "fork");
    close (sv[0]);
    close (sv[1]);
    exec_plan_free (&plan);
    fail_dead (h);
    return -1;
  }

  if (pid == 0) {               /* child */
    /* Move our end out of the way of 0 and 1 first (it may be one of
     * them if the parent had stdin/stdout closed).
     */
    int s = fcntl (sv[1], F_DUPFD, 3);
    if (s == -1)
      _exit (126);
    if (dup2 (s, 0) == -1 || dup2 (s, 1) == -1)
      _exit (126);
    close (s);
    child_reset_signals ();
    exec_plan_run (&plan, argv, environ);
  }

  /* parent */
  exec_plan_free (&plan);
  close (sv[1]);
  h->pid = pid;
  debug (h, "started subprocess %s, pid %d", argv[0], (int) pid);

  if (set_nonblock (sv[0]) == -1) {
    set_error (errno, "fcntl");
    close (sv[0]);
    fail_dead (h);
    return -1;
  }
  nbd_internal_adopt_fd (h, sv[0]);
  h->ops = &nbd_internal_socket_ops;
  connected (h);
  return 0;
}

int
nbd_unlocked_connect_command (struct nbd_handle *h, char **argv)
{
  if (nbd_unlocked_aio_connect_command (h, argv) == -1)
    return -1;
  return nbd_internal_wait_connected (h);
}

/* ---- systemd socket activation ---- */

#define LISTEN_PID_PREFIX "LISTEN_PID="

static bool
is_listen_var (const char *s)
{
  return strncmp (s, "LISTEN_PID=", 11) == 0 ||
    strncmp (s, "LISTEN_FDS=", 11) == 0 ||
    strncmp (s, "LISTEN_FDNAMES=", 15) == 0;
}

/* Write "LISTEN_PID=<pid>" into buf (of size >= 32); async-signal-safe. */
static void
write_listen_pid (char *buf, pid_t pid)
{
  char digits[24];
  size_t n = 0, i;
  unsigned long v = (unsigned long) pid;

  do {
    digits[n++] = '0' + (v % 10);
    v /= 10;
  } while (v && n < sizeof digits);
  i = sizeof LISTEN_PID_PREFIX - 1;
  while (n > 0)
    buf[i++] = digits[--n];
  buf[i] = '\0';
}

static void
sact_cleanup (struct nbd_handle *h)
{
  if (h->sact_sockpath) {
    unlink (h->sact_sockpath);
    free (h->sact_sockpath);
    h->sact_sockpath = NULL;
  }
  if (h->sact_tmpdir) {
    rmdir (h->sact_tmpdir);
    free (h->sact_tmpdir);
    h->sact_tmpdir = NULL;
  }
}

int
nbd_unlocked_aio_connect_systemd_socket_activation (struct nbd_handle *h,
                                                    char **argv)
{
  struct exec_plan plan = { NULL, NULL };
  struct sockaddr_un sun;
  const char *tmpdir;
  char **envp = NULL;
  char *fdnames = NULL;
  char pidbuf[48];
  size_t n, i, j;
  int lfd = -1, fd;
  pid_t pid;

  if (argv[0] == NULL) {
    set_error (EINVAL, "argv parameter must have at least 1 element");
    return -1;
  }

  /* Private directory and socket. */
  tmpdir = getenv ("TMPDIR");
  if (!tmpdir || !*tmpdir)
    tmpdir = "/tmp";
  sact_cleanup (h);
  if (asprintf (&h->sact_tmpdir, "%s/libnbdXXXXXX", tmpdir) == -1) {
    h->sact_tmpdir = NULL;
    set_error (errno, "asprintf");
    goto fail_dead;
  }
  if (mkdtemp (h->sact_tmpdir) == NULL) {
    set_error (errno, "mkdtemp: %s", h->sact_tmpdir);
    free (h->sact_tmpdir);
    h->sact_tmpdir = NULL;
    goto fail_dead;
  }
  if (asprintf (&h->sact_sockpath, "%s/sock", h->sact_tmpdir) == -1) {
    h->sact_sockpath = NULL;
    set_error (errno, "asprintf");
    goto fail_dead;
  }
  if (strlen (h->sact_sockpath) >= sizeof sun.sun_path) {
    set_error (ENAMETOOLONG, "socket name too long: %s", h->sact_sockpath);
    free (h->sact_sockpath);
    h->sact_sockpath = NULL;
    goto fail_dead;
  }
  memset (&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  strcpy (sun.sun_path, h->sact_sockpath);

  /* The listening socket is blocking: it is the server's. */
  lfd = socket (AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0);
  if (lfd == -1) {
    set_error (errno, "socket");
    goto fail_dead;
  }
  if (bind (lfd, (struct sockaddr *) &sun, sizeof sun) == -1) {
    set_error (errno, "bind: %s", h->sact_sockpath);
    goto fail_dead;
  }
  if (listen (lfd, SOMAXCONN) == -1) {
    set_error (errno, "listen");
    goto fail_dead;
  }

  /* Everything the child needs, prepared before fork. */
  if (exec_plan_init (&plan, argv) == -1)
    goto fail_dead;
  n = 0;
  if (environ)
    while (environ[n])
      n++;
  envp = calloc (n + 4, sizeof (char *));
  if (!envp) {
    set_error (errno, "calloc");
    goto fail_dead;
  }
  j = 0;
  for (i = 0; i < n; ++i)
    if (!is_listen_var (environ[i]))
      envp[j++] = environ[i];
  strcpy (pidbuf, LISTEN_PID_PREFIX);
  envp[j++] = pidbuf;
  envp[j++] = (char *) "LISTEN_FDS=1";
  /* Without a name the server is told "unknown", as the documentation
   * of nbd_set_socket_activation_name promises.
   */
  if (asprintf (&fdnames, "LISTEN_FDNAMES=%s",
                h->sact_name && h->sact_name[0] ? h->sact_name : "unknown")
      == -1) {
    fdnames = NULL;
    set_error (errno, "asprintf");
    goto fail_dead;
  }
  envp[j++] = fdnames;
  envp[j] = NULL;

  pid = fork ();
  if (pid == -1) {
    set_error (errno, "fork");
    goto fail_dead;
  }

  if (pid == 0) {               /* child */
    int s = fcntl (lfd, F_DUPFD, 4);
    if (s == -1 || dup2 (s, 3) == -1)
      _exit (126);
    close (s);
    write_listen_pid (pidbuf, getpid ());
    child_reset_signals ();
    exec_plan_run (&plan, argv, envp);
  }

  /* parent */
  h->pid = pid;
  debug (h, "started subprocess %s, pid %d, socket %s",
         argv[0], (int) pid, h->sact_sockpath);
  close (lfd);
  lfd = -1;
  exec_plan_free (&plan);
  free (envp);
  envp = NULL;
  free (fdnames);
  fdnames = NULL;

  /* Connect to the socket: it is listening already, so this normally
   * succeeds at once even if the server has not started accepting.
   */
  fd = socket (AF_UNIX, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0);
  if (fd == -1) {
    set_error (errno, "socket");
    goto fail_dead;
  }
  if (start_connect (h, fd, (struct sockaddr *) &sun, sizeof sun) == -1) {
    set_error (errno, "connect: %s: %s", h->sact_sockpath, strerror (errno));
    goto fail_dead;
  }
  /* As libnbd, nbd_get_uri then names the private socket. */
  remember_addr (h, (struct sockaddr *) &sun, sizeof sun);
  return 0;

 fail_dead:
  if (lfd >= 0)
    close (lfd);
  exec_plan_free (&plan);
  free (envp);
  free (fdnames);
  if (h->pid <= 0)
    sact_cleanup (h);           /* else removed when the handle is closed */
  fail_dead (h);
  return -1;
}

int
nbd_unlocked_connect_systemd_socket_activation (struct nbd_handle *h,
                                                char **argv)
{
  if (nbd_unlocked_aio_connect_systemd_socket_activation (h, argv) == -1)
    return -1;
  return nbd_internal_wait_connected (h);
}

/* ---- Subprocess control ---- */

static int
wait_child (pid_t pid)
{
  int r;

  do
    r = waitpid (pid, NULL, 0);
  while (r == -1 && errno == EINTR);
  return r;
}

int
nbd_unlocked_kill_subprocess (struct nbd_handle *h, int signum)
{
  if (h->pid <= 0) {
    set_error (ESRCH, "no subprocess exists");
    return -1;
  }
  if (signum == 0)
    signum = SIGTERM;
  if (signum < 0) {
    set_error (EINVAL, "invalid signal number: %d", signum);
    return -1;
  }
  /* Only the signal: the child is reaped by nbd_close, after the socket
   * is closed.  Waiting here could block for ever, since a server such
   * as nbdkit -s finishes its connection before acting on SIGTERM, and a
   * signal such as SIGSTOP does not end the child at all.
   */
  if (kill (h->pid, signum) == -1) {
    set_error (errno, "kill");
    return -1;
  }
  return 0;
}

int64_t
nbd_unlocked_get_subprocess_pid (struct nbd_handle *h)
{
  if (h->pid <= 0) {
    set_error (ESRCH, "no subprocess exists");
    return -1;
  }
  return h->pid;
}

void
nbd_internal_subprocess_reap (struct nbd_handle *h)
{
  free_addrs (h);

  /* A socket-activated server keeps listening after we disconnect, so
   * it has to be told to go; a command server sees EOF and exits.
   */
  if (h->sact_sockpath && h->pid > 0)
    kill (h->pid, SIGTERM);
  sact_cleanup (h);

  if (h->pid > 0) {
    wait_child (h->pid);
    h->pid = -1;
  }
}
