/* demo: start an NBD server (nbdkit's memory plugin) as a subprocess,
 * write to it, read back, ask which parts are allocated, and disconnect.
 *
 * Usage: demo [SERVER ARGV...]   (default: nbdkit -s --exit-with-parent memory 1M)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

static int
print_extent (void *user_data, const char *metacontext, uint64_t offset,
              nbd_extent *entries, size_t nr_entries, int *error)
{
  (void) user_data;
  (void) error;
  for (size_t i = 0; i < nr_entries; i++) {
    printf ("  %s: offset %" PRIu64 " length %" PRIu64 " %s\n", metacontext, offset,
            entries[i].length,
            (entries[i].flags & LIBNBD_STATE_HOLE) ? "hole" : "data");
    offset += entries[i].length;
  }
  return 0;
}

static void
die (const char *what)
{
  fprintf (stderr, "demo: %s: %s\n", what, nbd_get_error ());
  exit (EXIT_FAILURE);
}

int
main (int argc, char *argv[])
{
  char *default_server[] = { "nbdkit", "-s", "--exit-with-parent", "memory", "1M", NULL };
  char **server = argc > 1 ? &argv[1] : default_server;
  struct nbd_handle *h;
  char out[4096], in[4096];

  h = nbd_create ();
  if (!h)
    die ("nbd_create");
  if (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1)
    die ("nbd_add_meta_context");
  if (nbd_connect_command (h, server) == -1)
    die ("nbd_connect_command");

  printf ("connected with %s library %s, protocol %s\n", nbd_get_package_name (h),
          nbd_get_version (h), nbd_get_protocol (h));
  printf ("export size %" PRIi64 " bytes, structured replies %s, read-only %s\n",
          nbd_get_size (h), nbd_get_structured_replies_negotiated (h) ? "yes" : "no",
          nbd_is_read_only (h) ? "yes" : "no");

  for (size_t i = 0; i < sizeof out; i++)
    out[i] = (char) ('a' + i % 26);
  if (nbd_pwrite (h, out, sizeof out, 65536, 0) == -1)
    die ("nbd_pwrite");
  if (nbd_pread (h, in, sizeof in, 65536, 0) == -1)
    die ("nbd_pread");
  printf ("wrote and read back %zu bytes at offset 65536: %s\n", sizeof in,
          memcmp (in, out, sizeof in) == 0 ? "match" : "MISMATCH");

  if (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1) {
    printf ("allocation map of the first 256 KiB:\n");
    if (nbd_block_status_64 (h, 262144, 0,
                             (nbd_extent64_callback) { .callback = print_extent },
                             0) == -1)
      die ("nbd_block_status_64");
  }

  if (nbd_shutdown (h, 0) == -1)
    die ("nbd_shutdown");
  nbd_close (h);
  return memcmp (in, out, sizeof in) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
