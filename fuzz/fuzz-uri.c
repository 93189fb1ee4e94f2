/* Fuzz target: the URI parser and nbd_get_uri.  The input is a string
 * (up to its first NUL byte).  nbd_is_uri must answer; the string goes
 * to nbd_aio_connect_uri on a handle that allows only Unix sockets and
 * no local files, so the worst it can do is try to connect to a socket
 * that is not there.  When the
 * handle then has a URI, that URI must be one the library itself
 * accepts, and parsing it again must give back the same URI, export
 * name and TLS settings: nbd_get_uri is a fixed point.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "harness.h"

/* Relative socket paths must name nothing: the URI calls run with the
 * working directory in an empty, already removed directory.
 */
static int empty_dir = -1, orig_dir = -1;

static void
enter_empty_dir (void)
{
  if (empty_dir == -1) {
    char dir[] = "/tmp/fuzz-uri-XXXXXX";
    orig_dir = open (".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (orig_dir == -1 || mkdtemp (dir) == NULL
        || (empty_dir = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
      perror ("fuzz-uri: empty directory");
      abort ();
    }
    rmdir (dir);
  }
  CHECK (fchdir (empty_dir) == 0);
}

static void
leave_empty_dir (void)
{
  CHECK (fchdir (orig_dir) == 0);
}

static struct nbd_handle *
uri_handle (void)
{
  struct nbd_handle *h = nbd_create ();

  CHECK (h != NULL);
  CHECK (nbd_set_uri_allow_transports (h, LIBNBD_ALLOW_TRANSPORT_UNIX) == 0);
  CHECK (nbd_set_uri_allow_local_file (h, false) == 0);
  CHECK (nbd_set_uri_allow_tls_priority (h, true) == 0);
  return h;
}

static bool
same_string (char *a, char *b)
{
  bool same = (a == NULL && b == NULL)
    || (a != NULL && b != NULL && strcmp (a, b) == 0);
  free (a);
  free (b);
  return same;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct nbd_handle *h1, *h2;
  char *raw, *u1, *u2;

  raw = strndup ((const char *) data, size);
  CHECK (raw != NULL);
  enter_empty_dir ();
  h1 = uri_handle ();
  nbd_is_uri (h1, raw);
  nbd_aio_connect_uri (h1, raw);
  u1 = nbd_get_uri (h1);
  if (u1 != NULL) {
    CHECK (nbd_is_uri (h1, u1) == 1);
    h2 = uri_handle ();
    nbd_aio_connect_uri (h2, u1);
    u2 = nbd_get_uri (h2);
    if (u2 == NULL || strcmp (u1, u2) != 0)
      fprintf (stderr, "URI %s\nbecomes %s\nthen %s\n", raw, u1,
               u2 ? u2 : "(none)");
    CHECK (u2 != NULL && strcmp (u1, u2) == 0);
    CHECK (same_string (nbd_get_export_name (h1), nbd_get_export_name (h2)));
    CHECK (same_string (nbd_get_tls_username (h1), nbd_get_tls_username (h2)));
    CHECK (nbd_get_tls (h1) == nbd_get_tls (h2));
    free (u2);
    nbd_close (h2);
  }
  free (u1);
  nbd_close (h1);
  leave_empty_dir ();
  free (raw);
  return 0;
}
