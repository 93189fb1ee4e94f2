/* batched: write a region and read it back with many commands in
 * flight at once, each finished by a completion callback.
 *
 * Usage: batched URI
 * The export must be writable; its first 4 MiB (or less if smaller)
 * are overwritten in 4 KiB blocks with at most 32 commands in flight.
 *
 * What this shows:
 *  - a completion callback runs once, when the server's reply has
 *    arrived (or the command failed: *error is then the errno);
 *  - returning 1 from it "retires" the command: the handle forgets the
 *    cookie, no nbd_aio_command_completed call is needed;
 *  - the closure's .free runs once, when the command retires, so it is
 *    the place to free what the command used (here, the buffer, which
 *    must stay valid until then: libnbd does not copy it);
 *  - nbd_poll is the simplest loop: wait for the socket, then act.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#define BLOCK 4096
#define MAX_IN_FLIGHT 32
#define MAX_BYTES (4 * 1024 * 1024)

/* What the whole run counts. */
struct totals {
  unsigned written, verified, wrong, failed, freed;
};

/* One command's buffer and where it goes. */
struct block {
  uint64_t offset;
  struct totals *totals;
  unsigned char data[BLOCK];
};

/* Each block gets contents that depend on its offset, so a block read
 * from the wrong place cannot pass the check.
 */
static void
fill (unsigned char *data, uint64_t offset)
{
  for (size_t i = 0; i < BLOCK; i++)
    data[i] = (unsigned char) ((offset / BLOCK) * 7 + i);
}

static int
write_done (void *user_data, int *error)
{
  struct block *b = user_data;

  if (*error != 0)
    b->totals->failed++;
  else
    b->totals->written++;
  return 1;                     /* retire: we need nothing more from it */
}

static int
read_done (void *user_data, int *error)
{
  struct block *b = user_data;
  unsigned char expected[BLOCK];

  if (*error != 0) {
    b->totals->failed++;
    return 1;
  }
  fill (expected, b->offset);
  if (memcmp (b->data, expected, BLOCK) == 0)
    b->totals->verified++;
  else
    b->totals->wrong++;
  return 1;
}

static void
free_block (void *user_data)
{
  struct block *b = user_data;

  b->totals->freed++;
  free (b);
}

/* Run every block of [0, bytes) through one kind of command, keeping up
 * to MAX_IN_FLIGHT in flight.  Returns the most that were in flight.
 */
static int
run_batch (struct nbd_handle *h, uint64_t bytes, bool writing,
           struct totals *totals)
{
  uint64_t next = 0;
  int most = 0;

  while (next < bytes || nbd_aio_in_flight (h) > 0) {
    /* Top up the queue.  Commands issued while others wait leave the
     * library together, and the server may work on them in parallel.
     */
    while (next < bytes && nbd_aio_in_flight (h) < MAX_IN_FLIGHT) {
      struct block *b = malloc (sizeof *b);
      nbd_completion_callback done = {
        .callback = writing ? write_done : read_done,
        .user_data = b,
        .free = free_block,
      };
      int64_t cookie;

      if (b == NULL) {
        perror ("malloc");
        exit (EXIT_FAILURE);
      }
      b->offset = next;
      b->totals = totals;
      if (writing) {
        fill (b->data, next);
        cookie = nbd_aio_pwrite (h, b->data, BLOCK, next, done, 0);
      }
      else
        cookie = nbd_aio_pread (h, b->data, BLOCK, next, done, 0);
      /* If issuing fails, .free has already run (the closure is the
       * library's from the moment it is passed in): do not free b here.
       */
      if (cookie == -1)
        return -1;
      next += BLOCK;
    }
    if (nbd_aio_in_flight (h) > most)
      most = nbd_aio_in_flight (h);

    /* Wait until the socket is ready and handle what came in: this is
     * where the completion callbacks run.
     */
    if (nbd_poll (h, -1) == -1)
      return -1;
  }
  return most;
}

int
main (int argc, char *argv[])
{
  struct nbd_handle *h;
  struct totals totals = { 0 };
  uint64_t bytes;
  int most_writes, most_reads;

  if (argc != 2) {
    fprintf (stderr, "usage: %s URI\n", argv[0]);
    return EXIT_FAILURE;
  }

  h = nbd_create ();
  if (h == NULL || nbd_connect_uri (h, argv[1]) == -1)
    goto error;
  bytes = nbd_get_size (h);
  if (bytes > MAX_BYTES)
    bytes = MAX_BYTES;
  bytes -= bytes % BLOCK;

  most_writes = run_batch (h, bytes, true, &totals);
  if (most_writes == -1)
    goto error;
  most_reads = run_batch (h, bytes, false, &totals);
  if (most_reads == -1)
    goto error;

  printf ("blocks: %" PRIu64 "\n", bytes / BLOCK);
  printf ("written: %u\n", totals.written);
  printf ("verified: %u\n", totals.verified);
  printf ("wrong: %u\n", totals.wrong);
  printf ("failed: %u\n", totals.failed);
  printf ("freed: %u\n", totals.freed);
  printf ("most in flight: %d writes, %d reads\n", most_writes, most_reads);

  if (nbd_shutdown (h, 0) == -1)
    goto error;
  nbd_close (h);
  return totals.wrong == 0 && totals.failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;

 error:
  fprintf (stderr, "%s\n", nbd_get_error ());
  nbd_close (h);
  return EXIT_FAILURE;
}
