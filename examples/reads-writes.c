/* reads-writes: the blocking calls that change data, each checked by
 * reading back: write, write with FUA, zero, trim, flush.
 *
 * Usage: reads-writes URI
 * The export must be writable and at least 1 MiB; its first MiB is
 * overwritten.  Prints one line per step, and "ok" at the end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#define BLOCK 65536

static struct nbd_handle *h;
static char buf[BLOCK], check[BLOCK];

static void
die (void)
{
  /* The message names the call that failed and why. */
  fprintf (stderr, "%s\n", nbd_get_error ());
  nbd_close (h);
  exit (EXIT_FAILURE);
}

/* Read the block at offset back and compare with what should be there. */
static void
verify (const char *step, uint64_t offset, const char *expected)
{
  if (nbd_pread (h, check, BLOCK, offset, 0) == -1)
    die ();
  if (memcmp (check, expected, BLOCK) != 0) {
    fprintf (stderr, "%s: the data read back differs\n", step);
    nbd_close (h);
    exit (EXIT_FAILURE);
  }
  printf ("%s at %llu: read back ok\n", step, (unsigned long long) offset);
}

int
main (int argc, char *argv[])
{
  static const char zeroes[BLOCK];

  if (argc != 2) {
    fprintf (stderr, "usage: %s URI\n", argv[0]);
    return EXIT_FAILURE;
  }

  h = nbd_create ();
  if (h == NULL)
    die ();
  if (nbd_connect_uri (h, argv[1]) == -1)
    die ();
  if (nbd_is_read_only (h) == 1) {
    fprintf (stderr, "the export is read-only\n");
    nbd_close (h);
    return EXIT_FAILURE;
  }

  /* A plain write: the server may keep it in a cache until a flush. */
  memset (buf, 'a', BLOCK);
  if (nbd_pwrite (h, buf, BLOCK, 0, 0) == -1)
    die ();
  verify ("write", 0, buf);

  /* FUA (forced unit access): this write is on stable storage when the
   * call returns.  Flags the server did not advertise are refused by the
   * library before sending (EINVAL), so ask first.
   */
  memset (buf, 'b', BLOCK);
  if (nbd_pwrite (h, buf, BLOCK, BLOCK,
                  nbd_can_fua (h) == 1 ? LIBNBD_CMD_FLAG_FUA : 0) == -1)
    die ();
  verify ("write-fua", BLOCK, buf);

  /* Zero a range without sending zero bytes over the wire.  Afterwards
   * it reads as zeroes (unlike trim, which promises nothing).
   */
  if (nbd_can_zero (h) == 1) {
    if (nbd_zero (h, BLOCK, 0, 0) == -1)
      die ();
    verify ("zero", 0, zeroes);
  }

  /* Trim (discard): the server may free the space; the contents are
   * then unspecified, so there is nothing to compare.
   */
  if (nbd_can_trim (h) == 1) {
    if (nbd_trim (h, BLOCK, 2 * BLOCK, 0) == -1)
      die ();
    printf ("trim at %d: done\n", 2 * BLOCK);
  }

  /* Flush: everything written so far is on stable storage. */
  if (nbd_can_flush (h) == 1) {
    if (nbd_flush (h, 0) == -1)
      die ();
    printf ("flush: done\n");
  }

  /* The library checks requests before sending them: a read past the
   * end fails at once with EINVAL and the connection stays usable.
   */
  if (nbd_pread (h, check, BLOCK, nbd_get_size (h), 0) != -1) {
    fprintf (stderr, "a read past the end succeeded\n");
    nbd_close (h);
    return EXIT_FAILURE;
  }
  printf ("read past the end: refused (%s)\n",
          nbd_get_errno () == EINVAL ? "EINVAL" : "another error");
  verify ("still connected, block", BLOCK, buf);

  if (nbd_shutdown (h, 0) == -1)
    die ();
  nbd_close (h);
  printf ("ok\n");
  return EXIT_SUCCESS;
}
