/* nbd_set_strict_mode against nbdkit: each client-side check refuses the
 * request before anything is sent (nbd_stats_bytes_sent unchanged), and
 * with its bit cleared the request goes to the server, which rejects it.
 * Also the checks that no strict bit controls: flags above 16 bits and
 * the 64 MiB read/write limit (ERANGE).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libnbd.h>

#include "cmdtest.h"

#define PROG "test-strict"

static char *buf;               /* 64 MiB + 1 */

/* The call is refused client side: -1, errnum, message, nothing sent,
 * nothing in flight.
 */
#define REFUSED(h, call, errnum, context, substr)                       \
  do {                                                                  \
    uint64_t sent_ = nbd_stats_bytes_sent (h);                          \
    CHECK_FAILS (call, errnum, context, substr);                        \
    CHECK (nbd_stats_bytes_sent (h) == sent_,                           \
           "%s: %" PRIu64 " bytes sent for a refused request", #call,  \
           nbd_stats_bytes_sent (h) - sent_);                           \
    CHECK (nbd_aio_in_flight (h) == 0, "%s: in flight", #call);         \
  } while (0)

/* The call is sent and the server fails it with errnum. */
#define SERVER_FAILS(h, call, errnum, context)                          \
  do {                                                                  \
    uint64_t sent_ = nbd_stats_bytes_sent (h);                          \
    CHECK_FAILS (call, errnum, context, "command failed");              \
    CHECK (nbd_stats_bytes_sent (h) >= sent_ + 28,                      \
           "%s: not sent to the server", #call);                        \
  } while (0)

static void
set_strict (struct nbd_handle *h, uint32_t mode)
{
  if (nbd_set_strict_mode (h, mode) == -1)
    FAIL ("nbd_set_strict_mode 0x%x: %s", mode, nbd_get_error ());
}

/* Read-only export. */
static void
test_read_only (void)
{
  struct server s;
  const char *argv[] = { "nbdkit", "-f", "-r", "-U", "$SOCK", "-P", "$PID",
                         "memory", "1M", NULL };
  struct nbd_handle *h;
  uint32_t mode;

  start_server (&s, argv);
  h = connect_server (&s, false);
  CHECK (nbd_is_read_only (h) == 1, "not read-only");
  CHECK (nbd_can_trim (h) == 0 && nbd_can_zero (h) == 0,
         "read-only nbdkit advertises trim/zero");

  REFUSED (h, nbd_pwrite (h, buf, 512, 0, 0), EPERM, "nbd_pwrite",
           "does not support write");
  REFUSED (h, nbd_pwrite (h, buf, 512, 0, LIBNBD_CMD_FLAG_FUA), EPERM,
           "nbd_pwrite", "does not support write");
  REFUSED (h, nbd_aio_pwrite (h, buf, 512, 0, NBD_NULL_COMPLETION, 0), EPERM,
           "nbd_aio_pwrite", "does not support write");
  /* As libnbd: trim and zero are not advertised by a read-only
   * server, so they fail as unsupported (EINVAL) first.
   */
  REFUSED (h, nbd_trim (h, 512, 0, 0), EINVAL, "nbd_trim", "trim");
  REFUSED (h, nbd_zero (h, 512, 0, 0), EINVAL, "nbd_zero", "zero");
  /* Reads, flush, cache still work. */
  EXPECT_OK (nbd_pread (h, buf, 512, 0, 0));
  EXPECT_OK (nbd_flush (h, 0));
  EXPECT_OK (nbd_cache (h, 512, 0, 0));

  /* Without STRICT_COMMANDS the server refuses. */
  mode = nbd_get_strict_mode (h);
  set_strict (h, mode & ~LIBNBD_STRICT_COMMANDS);
  SERVER_FAILS (h, nbd_pwrite (h, buf, 512, 0, 0), EPERM, "nbd_pwrite");
  SERVER_FAILS (h, nbd_trim (h, 512, 0, 0), EPERM, "nbd_trim");
  /* Connection still fine. */
  EXPECT_OK (nbd_pread (h, buf, 512, 0, 0));

  close_handle (h);
  stop_server (&s);
}

/* A server without flush, trim, zero, cache, FUA. */
static int
no_extents (void *user_data, const char *metacontext, uint64_t offset,
            uint32_t *entries, size_t nr_entries, int *error)
{
  (void) user_data; (void) metacontext; (void) offset; (void) entries;
  (void) nr_entries; (void) error;
  FAIL ("an extent callback ran for a refused block status");
  return 0;
}

static void
test_unsupported (void)
{
  struct server s;
  const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                         "--filter=nozero", "eval",
                         "get_size=echo 1048576",
                         "pread=dd if=/dev/zero count=$3 iflag=count_bytes status=none",
                         "pwrite=cat >/dev/null",
                         "can_write=exit 0",
                         "can_cache=echo none",
                         NULL };
  struct nbd_handle *h;

  start_server (&s, argv);
  h = connect_server (&s, false);
  CHECK (nbd_is_read_only (h) == 0, "read-only");
  CHECK (nbd_can_flush (h) == 0, "can_flush");
  CHECK (nbd_can_trim (h) == 0, "can_trim");
  CHECK (nbd_can_zero (h) == 0, "can_zero");
  CHECK (nbd_can_cache (h) == 0, "can_cache");
  CHECK (nbd_can_fua (h) == 0, "can_fua");

  REFUSED (h, nbd_flush (h, 0), EINVAL, "nbd_flush", "flush");
  REFUSED (h, nbd_aio_flush (h, NBD_NULL_COMPLETION, 0), EINVAL,
           "nbd_aio_flush", "flush");
  REFUSED (h, nbd_trim (h, 512, 0, 0), EINVAL, "nbd_trim", "trim");
  REFUSED (h, nbd_zero (h, 512, 0, 0), EINVAL, "nbd_zero", "zero");
  REFUSED (h, nbd_cache (h, 512, 0, 0), EINVAL, "nbd_cache", "cache");
  REFUSED (h, nbd_pwrite (h, buf, 512, 0, LIBNBD_CMD_FLAG_FUA), EINVAL,
           "nbd_pwrite", "FUA");
  /* No metadata context was asked for, so none was negotiated. */
  REFUSED (h, nbd_block_status (h, 512, 0, (nbd_extent_callback) { .callback = no_extents }, 0),
           ENOTSUP, "nbd_block_status", "metadata contexts");
  EXPECT_OK (nbd_pwrite (h, buf, 512, 0, 0));

  set_strict (h, nbd_get_strict_mode (h) & ~LIBNBD_STRICT_COMMANDS);
  SERVER_FAILS (h, nbd_block_status (h, 512, 0,
                                     (nbd_extent_callback) { .callback = no_extents }, 0),
                EINVAL, "nbd_block_status");
  SERVER_FAILS (h, nbd_flush (h, 0), EINVAL, "nbd_flush");
  SERVER_FAILS (h, nbd_trim (h, 512, 0, 0), EINVAL, "nbd_trim");
  SERVER_FAILS (h, nbd_pwrite (h, buf, 512, 0, LIBNBD_CMD_FLAG_FUA), EINVAL,
                "nbd_pwrite");
  EXPECT_OK (nbd_pread (h, buf, 512, 0, 0));

  close_handle (h);
  stop_server (&s);

  /* Zero supported, fast zero not. */
  {
    const char *argv2[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                            "--filter=nozero", "memory", "1M",
                            "zeromode=plugin", "fastzeromode=none", NULL };
    start_server (&s, argv2);
    h = connect_server (&s, false);
    CHECK (nbd_can_zero (h) == 1 && nbd_can_fast_zero (h) == 0,
           "zero %d fast zero %d", nbd_can_zero (h), nbd_can_fast_zero (h));
    REFUSED (h, nbd_zero (h, 512, 0, LIBNBD_CMD_FLAG_FAST_ZERO), EINVAL,
             "nbd_zero", "fast zero");
    EXPECT_OK (nbd_zero (h, 512, 0, 0));
    close_handle (h);
    stop_server (&s);
  }
}

/* Bounds, zero size, flags, ERANGE on a 128M export. */
static void
test_bounds_flags (void)
{
  struct server s;
  const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                         "memory", "128M", NULL };
  struct nbd_handle *h;
  const uint64_t size = 128 << 20;
  uint32_t all = LIBNBD_STRICT_COMMANDS | LIBNBD_STRICT_FLAGS
    | LIBNBD_STRICT_BOUNDS | LIBNBD_STRICT_ZERO_SIZE | LIBNBD_STRICT_ALIGN;

  start_server (&s, argv);
  h = connect_server (&s, false);
  CHECK ((nbd_get_strict_mode (h) & all) == all,
         "default strict mode 0x%x lacks 0x%x", nbd_get_strict_mode (h), all);
  CHECK_FAILS (nbd_set_strict_mode (h, 0x40000000), EINVAL,
               "nbd_set_strict_mode", NULL);

  /* Bounds: reads and cache EINVAL, writes ENOSPC. */
  REFUSED (h, nbd_pread (h, buf, 20, size - 10, 0), EINVAL, "nbd_pread",
           "out of bounds");
  REFUSED (h, nbd_pread (h, buf, 1, size, 0), EINVAL, "nbd_pread",
           "out of bounds");
  REFUSED (h, nbd_pread (h, buf, 512, UINT64_MAX - 100, 0), EINVAL,
           "nbd_pread", "out of bounds");
  REFUSED (h, nbd_aio_pread (h, buf, 20, size - 10, NBD_NULL_COMPLETION, 0),
           EINVAL, "nbd_aio_pread", "out of bounds");
  REFUSED (h, nbd_pwrite (h, buf, 20, size - 10, 0), ENOSPC, "nbd_pwrite",
           "out of bounds");
  REFUSED (h, nbd_trim (h, 20, size - 10, 0), ENOSPC, "nbd_trim",
           "out of bounds");
  REFUSED (h, nbd_zero (h, 20, size - 10, 0), ENOSPC, "nbd_zero",
           "out of bounds");
  REFUSED (h, nbd_cache (h, 20, size - 10, 0), EINVAL, "nbd_cache",
           "out of bounds");
  /* Exactly up to the end is fine. */
  EXPECT_OK (nbd_pwrite (h, buf, 10, size - 10, 0));
  EXPECT_OK (nbd_pread (h, buf, 10, size - 10, 0));

  /* Zero size. */
  REFUSED (h, nbd_pread (h, buf, 0, 0, 0), EINVAL, "nbd_pread",
           "count cannot be 0");
  REFUSED (h, nbd_pwrite (h, buf, 0, 0, 0), EINVAL, "nbd_pwrite",
           "count cannot be 0");
  REFUSED (h, nbd_trim (h, 0, 0, 0), EINVAL, "nbd_trim", "count cannot be 0");
  REFUSED (h, nbd_zero (h, 0, 0, 0), EINVAL, "nbd_zero", "count cannot be 0");
  REFUSED (h, nbd_cache (h, 0, 0, 0), EINVAL, "nbd_cache", "count cannot be 0");

  /* Flags. */
  REFUSED (h, nbd_pread (h, buf, 512, 0, 0x100), EINVAL, "nbd_pread",
           "invalid value for flag");
  REFUSED (h, nbd_pread (h, buf, 512, 0, LIBNBD_CMD_FLAG_FUA), EINVAL,
           "nbd_pread", "invalid value for flag");
  REFUSED (h, nbd_pwrite (h, buf, 512, 0, LIBNBD_CMD_FLAG_REQ_ONE), EINVAL,
           "nbd_pwrite", "invalid value for flag");
  REFUSED (h, nbd_flush (h, LIBNBD_CMD_FLAG_FUA), EINVAL, "nbd_flush",
           "invalid value for flag");
  REFUSED (h, nbd_trim (h, 512, 0, LIBNBD_CMD_FLAG_NO_HOLE), EINVAL,
           "nbd_trim", "invalid value for flag");
  REFUSED (h, nbd_pread (h, buf, 512, 0, 0x10000), EINVAL, "nbd_pread",
           "invalid value for flag");

  /* ERANGE: more than 64 MiB in one read or write, inside the export. */
  REFUSED (h, nbd_pread (h, buf, (64 << 20) + 1, 0, 0), ERANGE, "nbd_pread",
           "too large");
  REFUSED (h, nbd_pwrite (h, buf, (64 << 20) + 1, 0, 0), ERANGE, "nbd_pwrite",
           "too large");
  REFUSED (h, nbd_aio_pread (h, buf, (64 << 20) + 1, 0, NBD_NULL_COMPLETION, 0),
           ERANGE, "nbd_aio_pread", "too large");
  /* 64 MiB itself is fine. */
  memset (buf, 'q', 64 << 20);
  EXPECT_OK (nbd_pwrite (h, buf, 64 << 20, 0, 0));
  memset (buf, 0, 64 << 20);
  EXPECT_OK (nbd_pread (h, buf, 64 << 20, 0, 0));
  CHECK (buf[0] == 'q' && buf[(64 << 20) - 1] == 'q', "64 MiB read back");
  /* Trim/zero/cache are not limited to 64 MiB. */
  EXPECT_OK (nbd_zero (h, 100 << 20, 0, 0));
  EXPECT_OK (nbd_cache (h, 100 << 20, 0, 0));

  /* Bits cleared: sent to the server, which refuses. */
  set_strict (h, all & ~LIBNBD_STRICT_BOUNDS);
  SERVER_FAILS (h, nbd_pread (h, buf, 20, size - 10, 0), EINVAL, "nbd_pread");
  SERVER_FAILS (h, nbd_pwrite (h, buf, 20, size - 10, 0), ENOSPC, "nbd_pwrite");
  /* nbdkit answers ENOSPC only for writes past the end. */
  SERVER_FAILS (h, nbd_trim (h, 20, size - 10, 0), EINVAL, "nbd_trim");
  EXPECT_OK (nbd_pread (h, buf, 512, 0, 0));

  set_strict (h, all & ~LIBNBD_STRICT_FLAGS);
  SERVER_FAILS (h, nbd_pread (h, buf, 512, 0, 0x100), EINVAL, "nbd_pread");
  /* Above 16 bits: always refused. */
  REFUSED (h, nbd_pread (h, buf, 512, 0, 0x10000), EINVAL, "nbd_pread",
           "invalid value for flag");
  set_strict (h, 0);
  REFUSED (h, nbd_pread (h, buf, 512, 0, 0x10000), EINVAL, "nbd_pread",
           "invalid value for flag");
  /* ERANGE too. */
  REFUSED (h, nbd_pread (h, buf, (64 << 20) + 1, 0, 0), ERANGE, "nbd_pread",
           "too large");
  EXPECT_OK (nbd_pread (h, buf, 512, 0, 0));

  /* Zero size with the bit cleared: sent (the result is up to the
   * server), and the connection survives.
   */
  set_strict (h, all & ~LIBNBD_STRICT_ZERO_SIZE);
  {
    uint64_t sent = nbd_stats_bytes_sent (h);
    int r = nbd_pwrite (h, buf, 0, 0, 0);
    CHECK (nbd_stats_bytes_sent (h) == sent + 28,
           "zero-length write: %" PRIu64 " bytes sent",
           nbd_stats_bytes_sent (h) - sent);
    printf ("%s: zero-length write to nbdkit: %d %s\n", PROG, r,
            r == -1 ? nbd_get_error () : "");
  }
  EXPECT_OK (nbd_pread (h, buf, 512, 0, 0));

  close_handle (h);
  stop_server (&s);
}

/* Alignment to the server's minimum block size. */
static void
test_align (void)
{
  struct server s;
  const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                         "--filter=blocksize-policy", "memory", "1M",
                         "blocksize-minimum=4096",
                         "blocksize-error-policy=error", NULL };
  struct nbd_handle *h;

  start_server (&s, argv);
  h = connect_server (&s, false);
  CHECK (nbd_get_block_size (h, LIBNBD_SIZE_MINIMUM) == 4096,
         "minimum block size %" PRIi64,
         nbd_get_block_size (h, LIBNBD_SIZE_MINIMUM));

  REFUSED (h, nbd_pread (h, buf, 512, 0, 0), EINVAL, "nbd_pread", "align");
  REFUSED (h, nbd_pread (h, buf, 4096, 512, 0), EINVAL, "nbd_pread", "align");
  REFUSED (h, nbd_pwrite (h, buf, 4097, 0, 0), EINVAL, "nbd_pwrite", "align");
  REFUSED (h, nbd_zero (h, 4096, 100, 0), EINVAL, "nbd_zero", "align");
  REFUSED (h, nbd_trim (h, 100, 4096, 0), EINVAL, "nbd_trim", "align");
  EXPECT_OK (nbd_pwrite (h, buf, 8192, 4096, 0));
  EXPECT_OK (nbd_pread (h, buf, 4096, 8192, 0));

  set_strict (h, nbd_get_strict_mode (h) & ~LIBNBD_STRICT_ALIGN);
  SERVER_FAILS (h, nbd_pread (h, buf, 512, 0, 0), EINVAL, "nbd_pread");
  SERVER_FAILS (h, nbd_pwrite (h, buf, 4096, 512, 0), EINVAL, "nbd_pwrite");
  EXPECT_OK (nbd_pread (h, buf, 4096, 0, 0));

  close_handle (h);
  stop_server (&s);
}

static void
alloc_buf (void)
{
  buf = calloc (1, (64 << 20) + 1);
  if (!buf) {
    perror ("calloc");
    exit (EXIT_FAILURE);
  }
}

static void
free_buf (void)
{
  free (buf);
}

int
main (void)
{
  static void (*const tests[]) (void) = {
    alloc_buf, test_read_only, test_unsupported, test_bounds_flags,
    test_align, free_buf, NULL
  };

  return run_tests (PROG, tests);
}
