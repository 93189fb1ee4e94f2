/* Helpers shared by the benchmark programs in bench/.  They use only the
 * public libnbd API, so the same binary runs against any libnbd.so.0.
 */
#ifndef NBD_BENCH_COMMON_H
#define NBD_BENCH_COMMON_H

#include <stdint.h>

/* Print "PROGRAM: MSG" and exit with failure. */
extern void bench_die (const char *msg) __attribute__ ((noreturn));

/* The same with libnbd's last error for this thread: "PROGRAM: WHAT: ...". */
extern void bench_die_nbd (const char *what) __attribute__ ((noreturn));

/* Seconds on the monotonic clock. */
extern double bench_now (void);

/* xorshift64* step: cheap, and good enough to spread offsets.  The state
 * must not be 0.
 */
extern uint64_t bench_rng_next (uint64_t *state);

/* --which-lib: print "lib=PATH" for the libnbd object the dynamic linker
 * mapped and "version=..." from nbd_get_version.  Returns an exit status.
 */
extern int bench_which_lib (void);

#endif /* NBD_BENCH_COMMON_H */
