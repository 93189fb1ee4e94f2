/* export-info: what a server says about an export once connected: its
 * size, the operations it allows (the "transmission flags" of the
 * handshake), and its block sizes.
 *
 * Usage: export-info URI
 *
 * Output is one "name: value" line per property, for example
 *   size: 1048576
 *   read-only: no
 *   can-flush: yes
 *   ...
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <libnbd.h>

/* Most of the flag queries share one signature and return 1 (yes),
 * 0 (no) or -1 (error, e.g. not connected).  A table keeps the program
 * short and the output in a fixed order.
 */
static const struct {
  const char *name;
  int (*query) (struct nbd_handle *);
} flags[] = {
  { "read-only",   nbd_is_read_only },
  { "can-flush",   nbd_can_flush },
  { "can-fua",     nbd_can_fua },
  { "can-trim",    nbd_can_trim },
  { "can-zero",    nbd_can_zero },
  { "can-fast-zero", nbd_can_fast_zero },
  { "can-df",      nbd_can_df },
  { "can-cache",   nbd_can_cache },
  { "can-multi-conn", nbd_can_multi_conn },
  { "rotational",  nbd_is_rotational },
};

int
main (int argc, char *argv[])
{
  struct nbd_handle *h;
  int64_t size;

  if (argc != 2) {
    fprintf (stderr, "usage: %s URI\n", argv[0]);
    return EXIT_FAILURE;
  }

  h = nbd_create ();
  if (h == NULL || nbd_connect_uri (h, argv[1]) == -1)
    goto error;

  size = nbd_get_size (h);
  if (size == -1)
    goto error;
  printf ("size: %" PRIi64 "\n", size);

  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
    int r = flags[i].query (h);
    if (r == -1)
      goto error;
    printf ("%s: %s\n", flags[i].name, r ? "yes" : "no");
  }

  /* Block sizes are only known when the server advertised them (during
   * NBD_OPT_GO); 0 means "not advertised".  Requests should be multiples
   * of the minimum, ideally of the preferred size, and never larger than
   * the maximum.
   */
  printf ("block-size-minimum: %" PRIi64 "\n",
          nbd_get_block_size (h, LIBNBD_SIZE_MINIMUM));
  printf ("block-size-preferred: %" PRIi64 "\n",
          nbd_get_block_size (h, LIBNBD_SIZE_PREFERRED));
  printf ("block-size-maximum: %" PRIi64 "\n",
          nbd_get_block_size (h, LIBNBD_SIZE_MAXIMUM));

  /* What was negotiated, as opposed to what the export allows. */
  printf ("protocol: %s\n", nbd_get_protocol (h));
  printf ("structured-replies: %s\n",
          nbd_get_structured_replies_negotiated (h) ? "yes" : "no");

  nbd_shutdown (h, 0);
  nbd_close (h);
  return EXIT_SUCCESS;

 error:
  fprintf (stderr, "%s\n", nbd_get_error ());
  nbd_close (h);                /* nbd_close (NULL) is allowed */
  return EXIT_FAILURE;
}
