/* Blocking nbd_connect_tcp must wait for each connect(2) to finish
 * before reading its result (SO_ERROR reads 0 while a connect is still
 * in progress), so that an address that fails late is given up for the
 * next one.
 *
 * The host name "late-failure.test" resolves (through the getaddrinfo
 * below, which interposes on the C library's for that one name) to
 * 127.0.0.2 and then 127.0.0.1, same port.  On 127.0.0.2 a listening
 * socket with a full accept queue makes the kernel drop our SYN, so the
 * connect stays in progress; a child process holding that socket exits
 * after a moment, and the next SYN retransmission (about 1 s) is
 * refused.  nbdkit listens on 127.0.0.1, where the library must end up.
 *
 * Skips (77) without nbdkit, or if the kernel does not keep a connect to
 * a full queue in progress.
 */
#include <config.h>

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "libnbd.h"

#include "checks.h"

#define SIZE (1024 * 1024)
#define TWO_ADDRESS_HOST "late-failure.test"
#define SLOW_ADDR "127.0.0.2"
#define GOOD_ADDR "127.0.0.1"

static pid_t nbdkit_pid = -1, holder_pid = -1;

static void
cleanup (void)
{
  if (nbdkit_pid > 0) {
    kill (nbdkit_pid, SIGTERM);
    waitpid (nbdkit_pid, NULL, 0);
  }
  if (holder_pid > 0) {
    kill (holder_pid, SIGKILL);
    waitpid (holder_pid, NULL, 0);
  }
}

typedef int (*getaddrinfo_fn) (const char *, const char *,
                               const struct addrinfo *, struct addrinfo **);

/* The library's calls land here (the executable comes first in symbol
 * lookup).  Every other name goes to the real resolver.  glibc's
 * freeaddrinfo frees node by node, so two results can be chained.
 */
int
getaddrinfo (const char *node, const char *service,
             const struct addrinfo *hints, struct addrinfo **res)
{
  static getaddrinfo_fn real;
  struct addrinfo numeric, *first = NULL, *second = NULL, *ai;
  int r;

  if (real == NULL)
    real = (getaddrinfo_fn) dlsym (RTLD_NEXT, "getaddrinfo");
  if (real == NULL)
    return EAI_SYSTEM;
  if (node == NULL || strcmp (node, TWO_ADDRESS_HOST) != 0)
    return real (node, service, hints, res);

  memset (&numeric, 0, sizeof numeric);
  numeric.ai_family = AF_INET;
  numeric.ai_socktype = hints ? hints->ai_socktype : SOCK_STREAM;
  numeric.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  r = real (SLOW_ADDR, service, &numeric, &first);
  if (r != 0)
    return r;
  r = real (GOOD_ADDR, service, &numeric, &second);
  if (r != 0) {
    freeaddrinfo (first);
    return r;
  }
  for (ai = first; ai->ai_next; ai = ai->ai_next)
    ;
  ai->ai_next = second;
  *res = first;
  return 0;
}

static void
set_addr (struct sockaddr_in *sin, const char *addr, int port)
{
  memset (sin, 0, sizeof *sin);
  sin->sin_family = AF_INET;
  sin->sin_port = htons (port);
  inet_pton (AF_INET, addr, &sin->sin_addr);
}

/* Start a non-blocking connect to addr:port; returns the socket. */
static int
start_connect (const char *addr, int port)
{
  struct sockaddr_in sin;
  int fd = socket (AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0);

  REQUIRE (fd >= 0, "socket: %m");
  set_addr (&sin, addr, port);
  if (connect (fd, (struct sockaddr *) &sin, sizeof sin) == -1)
    REQUIRE (errno == EINPROGRESS, "connect %s:%d: %m", addr, port);
  return fd;
}

/* Whether the connect on fd finishes (either way) within ms. */
static bool
connect_finishes (int fd, int ms)
{
  struct pollfd pfd = { .fd = fd, .events = POLLOUT };
  return poll (&pfd, 1, ms) > 0;
}

/* A listener on SLOW_ADDR whose accept queue is full; returns its port. */
static int
make_full_listener (int *listen_fd, int *filler_fd)
{
  struct sockaddr_in sin;
  socklen_t len = sizeof sin;
  int lfd, probe;

  lfd = socket (AF_INET, SOCK_STREAM|SOCK_CLOEXEC, 0);
  REQUIRE (lfd >= 0, "socket: %m");
  set_addr (&sin, SLOW_ADDR, 0);
  if (bind (lfd, (struct sockaddr *) &sin, sizeof sin) == -1) {
    fprintf (stderr, "cannot bind %s (%m), skipping\n", SLOW_ADDR);
    exit (77);
  }
  REQUIRE (listen (lfd, 0) == 0, "listen: %m");
  REQUIRE (getsockname (lfd, (struct sockaddr *) &sin, &len) == 0,
           "getsockname: %m");

  /* Backlog 0 still queues one connection: fill it. */
  *filler_fd = start_connect (SLOW_ADDR, ntohs (sin.sin_port));
  REQUIRE (connect_finishes (*filler_fd, 2000), "filler did not connect");

  probe = start_connect (SLOW_ADDR, ntohs (sin.sin_port));
  if (connect_finishes (probe, 300)) {
    fprintf (stderr, "a connect to a full accept queue does not stay in "
             "progress here, skipping\n");
    exit (77);
  }
  close (probe);
  *listen_fd = lfd;
  return ntohs (sin.sin_port);
}

static void
start_nbdkit (int port)
{
  char portstr[16], size[32];
  int i, fd;

  snprintf (portstr, sizeof portstr, "%d", port);
  snprintf (size, sizeof size, "%d", SIZE);
  nbdkit_pid = fork ();
  REQUIRE (nbdkit_pid >= 0, "fork: %m");
  if (nbdkit_pid == 0) {
    execlp ("nbdkit", "nbdkit", "-f", "--exit-with-parent",
            "-i", GOOD_ADDR, "-p", portstr, "memory", size, (char *) NULL);
    perror ("nbdkit");
    _exit (126);
  }
  for (i = 0; i < 600; ++i) {
    bool up;
    fd = start_connect (GOOD_ADDR, port);
    up = connect_finishes (fd, 1000);
    if (up) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt (fd, SOL_SOCKET, SO_ERROR, &err, &len);
      up = err == 0;
    }
    close (fd);
    if (up)
      return;
    usleep (50000);
  }
  fprintf (stderr, "nbdkit did not start listening on %s:%d\n",
           GOOD_ADDR, port);
  exit (EXIT_FAILURE);
}

int
main (void)
{
  struct nbd_handle *h;
  char portstr[16];
  int port, lfd, filler, r;
  double t0, elapsed;

  if (system ("nbdkit --version >/dev/null 2>&1") != 0) {
    fprintf (stderr, "%s: nbdkit not found, skipping\n", __FILE__);
    exit (77);
  }
  signal (SIGPIPE, SIG_IGN);
  atexit (cleanup);

  port = make_full_listener (&lfd, &filler);
  start_nbdkit (port);
  snprintf (portstr, sizeof portstr, "%d", port);

  /* The listener lives on in a child for a moment, then is closed. */
  holder_pid = fork ();
  REQUIRE (holder_pid >= 0, "fork: %m");
  if (holder_pid == 0) {
    usleep (300000);
    _exit (0);
  }
  close (lfd);

  alarm (60);
  h = nbd_create ();
  REQUIRE (h != NULL, "nbd_create");
  t0 = monotonic_seconds ();
  r = nbd_connect_tcp (h, TWO_ADDRESS_HOST, portstr);
  elapsed = monotonic_seconds () - t0;
  if (r == -1)
    FAIL ("nbd_connect_tcp %s %s (%s, then %s): %s (errno %d)",
          TWO_ADDRESS_HOST, portstr, SLOW_ADDR, GOOD_ADDR, nbd_get_error (),
          nbd_get_errno ());
  else {
    CHECK_EQ (nbd_get_size (h), SIZE);
    /* It really waited for the first address to fail. */
    CHECK (elapsed >= 0.25, "connected after %.2f s, before the first "
           "address was refused", elapsed);
  }
  nbd_shutdown (h, 0);
  nbd_close (h);
  alarm (0);
  close (filler);

  if (check_status (__FILE__) != EXIT_SUCCESS)
    exit (EXIT_FAILURE);
  printf ("%s: all tests passed (connected in %.2f s)\n", __FILE__, elapsed);
  exit (EXIT_SUCCESS);
}
