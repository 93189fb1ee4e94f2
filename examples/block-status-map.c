/* block-status-map: print which parts of an export hold data and which
 * are holes or read as zeroes, like "nbdinfo --map".
 *
 * Usage: block-status-map URI
 * Output: one line per run of equal state:
 *   OFFSET LENGTH FLAGS DESCRIPTION
 * where FLAGS is the base:allocation state (bit 0 hole, bit 1 zero)
 * and DESCRIPTION spells it out: data, hole, zero or hole,zero.
 *
 * Block status works through "meta contexts": the client asks for them
 * by name during the handshake, the server answers with the ones it
 * knows, and each NBD_CMD_BLOCK_STATUS reply gives, per context, a list
 * of extents (a length and flags each) from the offset asked for.
 * base:allocation is the standard one; servers may offer others, such
 * as qemu's "qemu:dirty-bitmap:NAME".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

/* One run of extents with the same flags, printed when it ends. */
struct run {
  uint64_t start, length;
  uint64_t flags;
  uint64_t next_offset;         /* where the next request starts */
  uint64_t size;                /* of the export */
};

static const char *
describe (uint64_t flags)
{
  switch (flags & (LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO)) {
  case 0: return "data";
  case LIBNBD_STATE_HOLE: return "hole";
  case LIBNBD_STATE_ZERO: return "zero";
  default: return "hole,zero";
  }
}

static void
print_run (const struct run *run)
{
  if (run->length > 0)
    printf ("%12" PRIu64 " %12" PRIu64 " %3" PRIu64 "  %s\n", run->start,
            run->length, run->flags, describe (run->flags));
}

/* Called once per meta context for each block status reply.  The
 * entries cover consecutive bytes starting at offset.  A server may
 * describe less than was asked (never nothing), so the caller loops.
 */
static int
add_extents (void *user_data, const char *metacontext, uint64_t offset,
             nbd_extent *entries, size_t nr_entries, int *error)
{
  struct run *run = user_data;

  if (strcmp (metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
    return 0;                   /* another context: not ours */

  for (size_t i = 0; i < nr_entries && offset < run->size; i++) {
    uint64_t length = entries[i].length;

    if (length > run->size - offset)
      length = run->size - offset;
    if (run->length > 0 && run->flags == entries[i].flags &&
        run->start + run->length == offset)
      run->length += length;    /* the same state goes on */
    else {
      print_run (run);
      *run = (struct run) { .start = offset, .length = length,
                            .flags = entries[i].flags, .size = run->size };
    }
    offset += length;
  }
  run->next_offset = offset;
  return 0;
}

int
main (int argc, char *argv[])
{
  struct nbd_handle *h;
  struct run run = { 0 };
  int64_t size;

  if (argc != 2) {
    fprintf (stderr, "usage: %s URI\n", argv[0]);
    return EXIT_FAILURE;
  }

  h = nbd_create ();
  if (h == NULL)
    goto error;

  /* Ask for the context before connecting: it is negotiated in the
   * handshake.
   */
  if (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1 ||
      nbd_connect_uri (h, argv[1]) == -1)
    goto error;

  /* A server that does not support it (or an old one without structured
   * replies) leaves the context unnegotiated: then everything is data.
   */
  if (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) != 1) {
    fprintf (stderr, "the server does not report base:allocation\n");
    nbd_close (h);
    return EXIT_FAILURE;
  }

  size = nbd_get_size (h);
  if (size == -1)
    goto error;
  run.size = size;

  while (run.next_offset < run.size) {
    uint64_t before = run.next_offset;
    uint64_t count = run.size - before;

    /* Keep each request well under the 32-bit limit of the classic
     * protocol; the server may answer for less anyway.
     */
    if (count > 1024 * 1024 * 1024)
      count = 1024 * 1024 * 1024;
    if (nbd_block_status_64 (h, count, before,
                             (nbd_extent64_callback) {
                               .callback = add_extents, .user_data = &run },
                             0) == -1)
      goto error;
    if (run.next_offset == before) {
      fprintf (stderr, "the server described no extent at %" PRIu64 "\n",
               before);
      nbd_close (h);
      return EXIT_FAILURE;
    }
  }
  print_run (&run);

  nbd_shutdown (h, 0);
  nbd_close (h);
  return EXIT_SUCCESS;

 error:
  fprintf (stderr, "%s\n", nbd_get_error ());
  nbd_close (h);
  return EXIT_FAILURE;
}
