// Compile-only test: <libnbd.h> is usable from C++11 (built with
// -std=c++11 -Wall -Wextra -pedantic -Werror).  Running it only exits 0.
#include <libnbd.h>

#include <cstdlib>

#if !defined(LIBNBD_HAVE_NBD_CREATE) || !defined(LIBNBD_HAVE_NBD_AIO_PREAD)
#error "LIBNBD_HAVE_* macros missing"
#endif
#if !defined(LIBNBD_HAVE_NBD_GET_VERSION) || !defined(LIBNBD_HAVE_NBD_IS_URI)
#error "LIBNBD_HAVE_NBD_GET_VERSION or LIBNBD_HAVE_NBD_IS_URI missing"
#endif
#if LIBNBD_TLS_REQUIRE != 2 || LIBNBD_STRICT_MASK != 0x7f
#error "constants have the wrong values"
#endif

static_assert (sizeof LIBNBD_CONTEXT_BASE_ALLOCATION == 16,
               "LIBNBD_CONTEXT_BASE_ALLOCATION");
static_assert (LIBNBD_CMD_FLAG_MASK == 0x3f, "LIBNBD_CMD_FLAG_MASK");

// C linkage and the right types.
static struct nbd_handle *(*p_create) () = nbd_create;
static int64_t (*p_aio_pread) (struct nbd_handle *, void *, size_t, uint64_t,
                               nbd_completion_callback, uint32_t) = nbd_aio_pread;

int
main ()
{
  nbd_completion_callback c = { nullptr, nullptr, nullptr };
  return c.callback == nullptr && p_create && p_aio_pread
    ? EXIT_SUCCESS : EXIT_FAILURE;
}
