/* threads: several threads sharing one handle, each using the blocking
 * calls on its own part of the export.
 *
 * Usage: threads URI
 * Starts 4 threads; each writes its 64 KiB slice twice and reads it
 * back after each write.  Prints what each thread checked and the time
 * the whole run took.
 *
 * A handle may be used from any number of threads: every call takes the
 * handle's lock.  In this library a thread waiting for its reply does
 * not hold the lock, so the threads' commands are all in flight together
 * and a slow server answers them in parallel: with a server that takes
 * 200 ms per request, the 16 requests here take about 0.8 s, not 3.2 s.
 * (Upstream libnbd runs one blocking call at a time per handle; there
 * the same program still works, just serially.)
 *
 * Errors are per thread: nbd_get_error in one thread reports the last
 * failure of that thread only.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libnbd.h>

#define NR_THREADS 4
#define ROUNDS 2
#define SLICE 65536

struct worker {
  struct nbd_handle *h;
  pthread_t thread;
  int index;
  int verified;                 /* reads that matched */
  int ok;                       /* 1 if every call succeeded */
};

static void *
work (void *arg)
{
  struct worker *w = arg;
  uint64_t offset = (uint64_t) w->index * SLICE;
  char out[SLICE], in[SLICE];   /* 128 KiB: fine on a thread stack */

  for (int round = 0; round < ROUNDS; round++) {
    memset (out, 'A' + w->index * ROUNDS + round, SLICE);
    if (nbd_pwrite (w->h, out, SLICE, offset, 0) == -1 ||
        nbd_pread (w->h, in, SLICE, offset, 0) == -1) {
      fprintf (stderr, "thread %d: %s\n", w->index, nbd_get_error ());
      return NULL;
    }
    if (memcmp (in, out, SLICE) == 0)
      w->verified++;
  }
  w->ok = 1;
  return NULL;
}

int
main (int argc, char *argv[])
{
  struct nbd_handle *h;
  struct worker workers[NR_THREADS];
  struct timespec start, end;
  int status = EXIT_SUCCESS;

  if (argc != 2) {
    fprintf (stderr, "usage: %s URI\n", argv[0]);
    return EXIT_FAILURE;
  }

  /* One handle, one connection, made before the threads start. */
  h = nbd_create ();
  if (h == NULL || nbd_connect_uri (h, argv[1]) == -1) {
    fprintf (stderr, "%s\n", nbd_get_error ());
    nbd_close (h);
    return EXIT_FAILURE;
  }
  if (nbd_get_size (h) < NR_THREADS * SLICE) {
    fprintf (stderr, "the export is smaller than %d bytes\n",
             NR_THREADS * SLICE);
    nbd_close (h);
    return EXIT_FAILURE;
  }

  clock_gettime (CLOCK_MONOTONIC, &start);
  for (int i = 0; i < NR_THREADS; i++) {
    workers[i] = (struct worker) { .h = h, .index = i };
    if (pthread_create (&workers[i].thread, NULL, work, &workers[i]) != 0) {
      perror ("pthread_create");
      exit (EXIT_FAILURE);
    }
  }
  for (int i = 0; i < NR_THREADS; i++)
    pthread_join (workers[i].thread, NULL);
  clock_gettime (CLOCK_MONOTONIC, &end);

  for (int i = 0; i < NR_THREADS; i++) {
    printf ("thread %d: %d of %d reads verified\n", i, workers[i].verified,
            ROUNDS);
    if (!workers[i].ok || workers[i].verified != ROUNDS)
      status = EXIT_FAILURE;
  }
  printf ("requests: %d\n", NR_THREADS * ROUNDS * 2);
  printf ("elapsed: %ld ms\n",
          (long) ((end.tv_sec - start.tv_sec) * 1000
                  + (end.tv_nsec - start.tv_nsec) / 1000000));

  /* Only close the handle once no thread uses it any more. */
  nbd_shutdown (h, 0);
  nbd_close (h);
  return status;
}
