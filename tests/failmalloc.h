/* A malloc interposer for allocation-failure tests (tests/failmalloc.c).
 *
 * Linking failmalloc.c into a test program replaces malloc, calloc,
 * realloc, reallocarray and free for the whole process: the library just
 * built, GnuTLS and the C library (strdup, asprintf, vasprintf, stdio)
 * all allocate through it (glibc supports replacing malloc this way).
 * The replacement forwards to glibc's allocator (__libc_malloc ...), so
 * valgrind still sees every block.
 *
 * Nothing changes until a thread calls failmalloc_begin: from then on,
 * in that thread only, allocations are counted, the nth one fails with
 * ENOMEM (only it, or it and all later ones) and every block is
 * recorded until it is freed, so that failmalloc_leaks can list what the
 * thread left behind.
 *
 * It cannot work in sanitizer builds (the sanitizers own malloc):
 * FAILMALLOC_AVAILABLE is 0 there and the test skips.
 */
#ifndef TESTS_FAILMALLOC_H
#define TESTS_FAILMALLOC_H

#include <stdbool.h>
#include <stddef.h>

#if defined __SANITIZE_ADDRESS__ || defined __SANITIZE_THREAD__
#define FAILMALLOC_AVAILABLE 0
#elif defined __has_feature
#if __has_feature (address_sanitizer) || __has_feature (thread_sanitizer) \
  || __has_feature (memory_sanitizer)
#define FAILMALLOC_AVAILABLE 0
#endif
#endif
#ifndef FAILMALLOC_AVAILABLE
#define FAILMALLOC_AVAILABLE 1
#endif

#define FAILMALLOC_FRAMES 12

/* Start counting and recording in the calling thread; the nth
 * allocation from now (1-based) fails, none if nth is 0, and with
 * and_after every one after it too (memory has run out for good).
 */
extern void failmalloc_begin (unsigned long nth, bool and_after);
/* Stop counting and failing in the calling thread; blocks it allocated
 * stay recorded until they are freed (by any thread).
 */
extern void failmalloc_end (void);

/* Allocations made by the code of the loaded object whose file name
 * contains `name` (it is among the few innermost callers) are never
 * failed nor counted: for libraries that abort on allocation failure by
 * design.  Returns false if no such object is loaded.
 */
extern bool failmalloc_spare (const char *name);

/* Allocations counted since failmalloc_begin (in its thread). */
extern unsigned long failmalloc_count (void);
/* Whether the planned failure happened; if so, *nframes return
 * addresses of the failed call's stack are stored in frames.
 */
extern bool failmalloc_fired (void **frames, int *nframes);

/* Writes "object(symbol+offset)" for a code address into buf. */
extern void failmalloc_describe (const void *addr, char *buf, size_t len);

/* The blocks recorded and not freed: returns how many, and describes up
 * to the first few (allocation number, size, caller) in buf.  Forgets
 * them.
 */
extern size_t failmalloc_leaks (char *buf, size_t len);

#endif
