/* A server's NBD_REP_META_CONTEXT reply must name a context: one with
 * only the 4-byte id is a protocol error that ends the handshake (the
 * handle dies, as with upstream libnbd's "invalid NBD_REP_META_CONTEXT
 * reply length"), instead of a context called "" that block status
 * would then report.  Found by fuzz/fuzz-server (regress/server/
 * meta-context-without-name).  The server's bytes are written to a
 * socketpair up front: the handshake reads replies by their sizes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <libnbd.h>

static unsigned char *
put (unsigned char *p, unsigned long long v, int bytes)
{
  for (int i = bytes - 1; i >= 0; i--, v >>= 8)
    p[i] = (unsigned char) v;
  return p + bytes;
}

static unsigned char *
option_reply (unsigned char *p, unsigned opt, unsigned type, const void *data,
              unsigned len)
{
  p = put (p, 0x3e889045565a9ULL, 8);
  p = put (p, opt, 4);
  p = put (p, type, 4);
  p = put (p, len, 4);
  if (len)
    memcpy (p, data, len);
  return p + len;
}

/* Connect through a server whose SET_META_CONTEXT reply names a context
 * of `name_len' bytes; returns what nbd_connect_socket returned.
 */
static int
try_connect (size_t name_len, int *dead)
{
  unsigned char buf[512], meta[64], info[12], *p = buf;
  struct nbd_handle *h = nbd_create ();
  int sv[2], r;

  if (h == NULL || socketpair (AF_UNIX, SOCK_STREAM, 0, sv) == -1) {
    perror ("setup");
    exit (EXIT_FAILURE);
  }
  memcpy (p, "NBDMAGICIHAVEOPT", 16);
  p = put (p + 16, 3, 2);                       /* FIXED_NEWSTYLE | NO_ZEROES */
  p = option_reply (p, 8, 1, NULL, 0);          /* STRUCTURED_REPLY: ACK */
  put (meta, 1, 4);
  memcpy (meta + 4, "base:allocation", name_len);
  p = option_reply (p, 10, 4, meta, (unsigned) (4 + name_len));
  p = option_reply (p, 10, 1, NULL, 0);         /* SET_META_CONTEXT: ACK */
  put (info, 0, 2);                             /* NBD_INFO_EXPORT */
  put (info + 2, 1048576, 8);
  put (info + 10, 1, 2);                        /* HAS_FLAGS */
  p = option_reply (p, 7, 3, info, sizeof info);
  p = option_reply (p, 7, 1, NULL, 0);          /* GO: ACK */
  if (write (sv[1], buf, (size_t) (p - buf)) != p - buf) {
    perror ("write");
    exit (EXIT_FAILURE);
  }
  nbd_set_tls (h, LIBNBD_TLS_DISABLE);
  nbd_set_request_extended_headers (h, false);
  nbd_add_meta_context (h, "base:allocation");
  r = nbd_connect_socket (h, sv[0]);
  if (r == -1)
    printf ("name of %zu bytes: %s (errno %d)\n", name_len, nbd_get_error (),
            nbd_get_errno ());
  *dead = nbd_aio_is_dead (h);
  nbd_close (h);
  close (sv[1]);
  return r;
}

int
main (void)
{
  int dead, failures = 0;

  if (try_connect (0, &dead) != -1 || dead != 1) {
    fprintf (stderr, "FAIL: a META_CONTEXT reply without a name was accepted\n");
    failures++;
  }
  if (try_connect (15, &dead) != 0) {
    fprintf (stderr, "FAIL: a META_CONTEXT reply naming base:allocation failed\n");
    failures++;
  }
  return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
