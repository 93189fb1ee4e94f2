/* main() for the fuzz targets when they are not built with libFuzzer:
 * each argument is an input file, or a directory of them, run once
 * through the target.  "make check" replays the seed corpus and the
 * regression inputs this way, in any build.
 */
#include <config.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

int LLVMFuzzerInitialize (int *argc, char ***argv) __attribute__ ((weak));

static unsigned long nr_run;

static void
run_file (const char *path)
{
  FILE *fp = fopen (path, "rb");
  uint8_t *data = NULL;
  size_t size = 0, cap = 0, n;

  if (fp == NULL) {
    perror (path);
    exit (EXIT_FAILURE);
  }
  do {
    if (size == cap) {
      cap = cap ? cap * 2 : 65536;
      data = realloc (data, cap);
      if (data == NULL) {
        perror ("realloc");
        exit (EXIT_FAILURE);
      }
    }
    n = fread (data + size, 1, cap - size, fp);
    size += n;
  } while (n > 0);
  if (ferror (fp)) {
    perror (path);
    exit (EXIT_FAILURE);
  }
  fclose (fp);
  /* What libFuzzer would say, so a crash names its input. */
  fprintf (stderr, "Running: %s\n", path);
  LLVMFuzzerTestOneInput (data, size);
  free (data);
  nr_run++;
}

static int
by_name (const struct dirent **a, const struct dirent **b)
{
  return strcmp ((*a)->d_name, (*b)->d_name);
}

static void
run_path (const char *path)
{
  struct stat st;
  struct dirent **names;
  int n;

  if (stat (path, &st) == -1) {
    perror (path);
    exit (EXIT_FAILURE);
  }
  if (!S_ISDIR (st.st_mode)) {
    run_file (path);
    return;
  }
  n = scandir (path, &names, NULL, by_name);
  if (n == -1) {
    perror (path);
    exit (EXIT_FAILURE);
  }
  for (int i = 0; i < n; i++) {
    if (names[i]->d_name[0] != '.') {
      char *sub;
      if (asprintf (&sub, "%s/%s", path, names[i]->d_name) == -1) {
        perror ("asprintf");
        exit (EXIT_FAILURE);
      }
      run_path (sub);
      free (sub);
    }
    free (names[i]);
  }
  free (names);
}

int
main (int argc, char *argv[])
{
  if (LLVMFuzzerInitialize)
    LLVMFuzzerInitialize (&argc, &argv);
  for (int i = 1; i < argc; i++)
    run_path (argv[i]);
  printf ("%s: %lu inputs run\n", argv[0], nr_run);
  return EXIT_SUCCESS;
}
