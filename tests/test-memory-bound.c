/* Bounded memory: what one reply can make the client allocate is capped
 * by what its request justifies, and buffers grown for a big reply are
 * given back afterwards.
 *
 *  - the project's server answers a block status request over 64 KiB
 *    (minimum block 512: at most 129 extents) with a 64 MiB chunk, with
 *    and without extended headers: the command fails, the connection
 *    dies, and the process's peak RSS grows by less than 8 MiB (before
 *    the cap the client buffered and decoded all of it: over 100 MiB);
 *  - a legitimate large reply (block status over 32 MiB in 4 KiB
 *    extents: 8192 of them) still works.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "server.h"
#include "checks.h"

#define PROG "test-memory-bound"
#define MiB (1024 * 1024)

/* Peak resident set size of this process, in KiB (VmHWM). */
static long
peak_rss_kib (void)
{
  FILE *f = fopen ("/proc/self/status", "r");
  char line[256];
  long kib = -1;

  if (!f)
    return -1;
  while (fgets (line, sizeof line, f))
    if (sscanf (line, "VmHWM: %ld kB", &kib) == 1)
      break;
  fclose (f);
  return kib;
}

static int
count_extents (void *opaque, const char *metacontext, uint64_t offset,
               nbd_extent *entries, size_t nr_entries, int *error)
{
  size_t *n = opaque;
  (void) metacontext; (void) offset; (void) entries; (void) error;
  *n += nr_entries;
  return 0;
}

static void
hostile (bool extended)
{
  struct server s;
  struct nbd_handle *h;
  size_t n = 0;
  long before, after;

  check_case = extended ? "bloated extents, extended headers"
    : "bloated extents, structured replies";
  start_test_server (&s, PROG, (const char *const []) {
      "--fault", "bloated-extents", "--block-size", "512,4096,33554432",
      extended ? NULL : "--no-extended-headers", NULL });
  h = nbd_create ();
  REQUIRE (h != NULL, "nbd_create");
  REQUIRE (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 0, "add");
  REQUIRE (nbd_connect_unix (h, s.sock) == 0, "connect");
  CHECK_EQ (nbd_get_extended_headers_negotiated (h), extended);
  CHECK_EQ (nbd_get_block_size (h, LIBNBD_SIZE_MINIMUM), 512);
  before = peak_rss_kib ();
  CHECK_FAILS (nbd_block_status_64 (h, 64 * 1024, 0,
                                    (nbd_extent64_callback) { .callback = count_extents,
                                                              .user_data = &n }, 0),
               0, "nbd_block_status_64", NULL);
  after = peak_rss_kib ();
  CHECK (nbd_aio_is_dead (h), "state: %s", nbd_connection_state (h));
  CHECK_EQ (n, 0);
  CHECK (before > 0 && after - before < 8 * 1024,
         "peak RSS grew by %ld KiB for a 64 KiB request", after - before);
  fprintf (stderr, PROG ": [%s] peak RSS %ld -> %ld KiB\n", check_case, before, after);
  nbd_close (h);
  server_stop (&s);
  check_case = NULL;
}

static void
legitimate_large (void)
{
  struct server s;
  struct nbd_handle *h;
  size_t n = 0;

  check_case = "large legitimate reply";
  start_test_server (&s, PROG, (const char *const []) {
      "--size", "64M", "--block-size", "512,4096,33554432", NULL });
  h = nbd_create ();
  REQUIRE (h != NULL, "nbd_create");
  REQUIRE (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 0, "add");
  REQUIRE (nbd_connect_unix (h, s.sock) == 0, "connect");
  /* Data in every other 4 KiB block (the server's granularity) of the
   * first 32 MiB: 8192 extents, 128 KiB of extended block status.
   */
  {
    char data[4096];
    memset (data, 0x11, sizeof data);
    for (uint64_t off = 0; off < 32 * MiB; off += 8192)
      if (nbd_aio_pwrite (h, data, sizeof data, off, NBD_NULL_COMPLETION, 0) == -1)
        FAIL ("aio_pwrite: %s", nbd_get_error ());
    while (nbd_aio_in_flight (h) > 0)
      if (nbd_poll (h, -1) == -1)
        break;
    while (nbd_aio_peek_command_completed (h) > 0)
      CHECK_EQ (nbd_aio_command_completed (h, nbd_aio_peek_command_completed (h)), 1);
  }
  EXPECT_OK (nbd_block_status_64 (h, 32 * MiB, 0,
                                  (nbd_extent64_callback) { .callback = count_extents,
                                                            .user_data = &n }, 0));
  CHECK_EQ (n, 8192);
  EXPECT_OK (nbd_shutdown (h, 0));
  nbd_close (h);
  server_stop (&s);
  check_case = NULL;
}

int
main (void)
{
  hostile (true);
  hostile (false);
  legitimate_large ();
  return check_status (PROG);
}
