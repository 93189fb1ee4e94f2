/* strict-reads: read an export with nbd_pread_structured and check every
 * chunk of every structured reply as it arrives.
 *
 * Usage: strict-reads URI
 *
 * With structured replies a server may answer one read in several
 * chunks, in any order: data chunks, hole chunks (a run of zeroes sent
 * as just a length) and error chunks.  nbd_pread_structured calls the
 * chunk callback once per chunk, after the library has checked that the
 * chunk lies inside the request.  This program checks the rest itself:
 * no byte is covered twice, the whole request is covered when the read
 * succeeds, holes read as zeroes, and with the DF ("don't fragment")
 * flag the server sent one data chunk only.
 *
 * Output: counts of reads and chunks, then "all chunks checked".
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#define MAX_READ (1024 * 1024)

/* What is known about the read in progress. */
struct request {
  const char *buf;              /* the caller's buffer */
  uint64_t offset;              /* of the request in the export */
  size_t count;
  unsigned char covered[MAX_READ]; /* one flag per byte */
  unsigned chunks;
};

static unsigned long data_chunks, hole_chunks, error_chunks;

static void
fail (const char *msg, uint64_t offset)
{
  fprintf (stderr, "bad chunk at %" PRIu64 ": %s\n", offset, msg);
  exit (EXIT_FAILURE);
}

static int
check_chunk (void *user_data, const void *subbuf, size_t count,
             uint64_t offset, unsigned status, int *error)
{
  struct request *r = user_data;
  size_t start = offset - r->offset;

  /* The library has already checked that the chunk lies inside the
   * request (one outside is a protocol error); check again as a reader
   * would.
   */
  if (offset < r->offset || start + count > r->count)
    fail ("outside the request", offset);
  if ((const char *) subbuf != r->buf + start)
    fail ("not at its place in the buffer", offset);

  switch (status) {
  case LIBNBD_READ_DATA:
    data_chunks++;
    break;
  case LIBNBD_READ_HOLE:
    /* The library has written the zeroes into the buffer already. */
    for (size_t i = 0; i < count; i++)
      if (((const char *) subbuf)[i] != 0)
        fail ("a hole that is not zero", offset);
    hole_chunks++;
    break;
  case LIBNBD_READ_ERROR:
    /* *error holds the server's errno.  Returning -1 makes the whole
     * read fail with it (later chunks still come to this callback).
     */
    error_chunks++;
    return -1;
  default:
    fail ("unknown status", offset);
  }

  for (size_t i = start; i < start + count; i++) {
    if (r->covered[i])
      fail ("overlaps an earlier chunk", offset);
    r->covered[i] = 1;
  }
  r->chunks++;
  return 0;                     /* -1 would fail the read with *error */
}

int
main (int argc, char *argv[])
{
  static char buf[MAX_READ];
  static struct request r;
  struct nbd_handle *h;
  unsigned long reads = 0, df_reads = 0;
  uint64_t offset = 0, seed = 1;
  int64_t size;
  bool df;

  if (argc != 2) {
    fprintf (stderr, "usage: %s URI\n", argv[0]);
    return EXIT_FAILURE;
  }

  h = nbd_create ();
  if (h == NULL || nbd_connect_uri (h, argv[1]) == -1)
    goto error;
  /* Structured replies are asked for by default; without them a read
   * comes back as one block of data and the callback runs once.
   */
  if (nbd_get_structured_replies_negotiated (h) != 1)
    printf ("no structured replies: one data chunk per read\n");
  df = nbd_can_df (h) == 1;
  size = nbd_get_size (h);
  if (size == -1)
    goto error;

  /* Read the whole export in pieces of varying size (a fixed sequence,
   * so runs are repeatable), every other piece with DF if allowed.
   */
  while (offset < (uint64_t) size) {
    uint32_t flags = df && reads % 2 ? LIBNBD_CMD_FLAG_DF : 0;

    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    r.count = 512 + (seed >> 33) % (MAX_READ - 512);
    if (r.count > size - offset)
      r.count = size - offset;
    r.buf = buf;
    r.offset = offset;
    r.chunks = 0;
    memset (r.covered, 0, r.count);

    if (nbd_pread_structured (h, buf, r.count, offset,
                              (nbd_chunk_callback) { .callback = check_chunk,
                                                     .user_data = &r },
                              flags) == -1)
      goto error;

    /* Success means every byte arrived exactly once. */
    if (memchr (r.covered, 0, r.count) != NULL)
      fail ("the read succeeded with bytes missing", offset);
    if (flags & LIBNBD_CMD_FLAG_DF && r.chunks != 1)
      fail ("a DF read came in several chunks", offset);
    reads++;
    df_reads += flags != 0;
    offset += r.count;
  }

  printf ("reads: %lu (%lu with DF)\n", reads, df_reads);
  printf ("data chunks: %lu\n", data_chunks);
  printf ("hole chunks: %lu\n", hole_chunks);
  printf ("error chunks: %lu\n", error_chunks);
  printf ("bytes: %" PRIu64 "\n", offset);
  printf ("all chunks checked\n");
  nbd_shutdown (h, 0);
  nbd_close (h);
  return EXIT_SUCCESS;

 error:
  fprintf (stderr, "%s\n", nbd_get_error ());
  nbd_close (h);
  return EXIT_FAILURE;
}
