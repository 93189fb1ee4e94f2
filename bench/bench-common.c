/* Helpers shared by the benchmark programs (see bench-common.h). */

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <link.h>
#include <time.h>

#include <libnbd.h>

#include "bench-common.h"

void
bench_die (const char *msg)
{
  fprintf (stderr, "%s: %s\n", program_invocation_short_name, msg);
  exit (EXIT_FAILURE);
}

void
bench_die_nbd (const char *what)
{
  const char *msg = nbd_get_error ();
  fprintf (stderr, "%s: %s: %s\n", program_invocation_short_name, what,
           msg ? msg : "(no error message)");
  exit (EXIT_FAILURE);
}

double
bench_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

uint64_t
bench_rng_next (uint64_t *s)
{
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * UINT64_C (0x2545F4914F6CDD1D);
}

/* Which implementation is mapped is the question LD_LIBRARY_PATH makes
 * easy to get wrong, so ask the dynamic linker rather than trust it.
 */
static int
phdr_cb (struct dl_phdr_info *info, size_t size, void *data)
{
  (void) size;
  int *found = data;
  if (info->dlpi_name && strstr (info->dlpi_name, "libnbd")) {
    char resolved[4096];
    const char *p = info->dlpi_name;
    if (realpath (info->dlpi_name, resolved))
      p = resolved;
    printf ("lib=%s\n", p);
    (*found)++;
  }
  return 0;
}

int
bench_which_lib (void)
{
  int found = 0;
  dl_iterate_phdr (phdr_cb, &found);
  if (!found) {
    printf ("lib=(none found)\n");
    return EXIT_FAILURE;
  }
  /* Version string, if the implementation can create a handle. */
  struct nbd_handle *h = nbd_create ();
  if (h) {
    const char *v = nbd_get_version (h);
    printf ("version=%s\n", v ? v : "(unknown)");
    nbd_close (h);
  }
  return EXIT_SUCCESS;
}
