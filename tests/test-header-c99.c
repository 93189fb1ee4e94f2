/* Compile-only test: <libnbd.h> is self-contained and clean C99
 * (built with -std=c99 -Wall -Wextra -pedantic -Werror).  Running it
 * only exits 0.
 */
#include <libnbd.h>

#include <stdlib.h>

#if !defined(LIBNBD_HAVE_NBD_CREATE) || LIBNBD_HAVE_NBD_CREATE != 1
#error "LIBNBD_HAVE_NBD_CREATE is not defined to 1"
#endif
#if !defined(LIBNBD_HAVE_NBD_CONNECT_URI) || !defined(LIBNBD_HAVE_NBD_AIO_PREAD)
#error "LIBNBD_HAVE_NBD_CONNECT_URI or LIBNBD_HAVE_NBD_AIO_PREAD missing"
#endif
#if !defined(LIBNBD_HAVE_NBD_BLOCK_STATUS_64) || !defined(LIBNBD_HAVE_NBD_IS_URI)
#error "1.18/1.22 calls missing"
#endif
#if !defined(LIBNBD_HAVE_NBD_SET_TLS_PRIORITY) || !defined(LIBNBD_HAVE_NBD_GET_TLS_PRIORITY) \
  || !defined(LIBNBD_HAVE_NBD_SET_URI_ALLOW_TLS_PRIORITY)
#error "1.24 TLS priority calls missing"
#endif
#if !defined(LIBNBD_HAVE_NBD_GET_VERSION_EXTRA) || !defined(LIBNBD_HAVE_NBD_GET_HANDLE_SIZE)
#error "1.24 calls missing"
#endif
#if !defined(LIBNBD_HAVE_NBD_COMPLETION_CALLBACK) || !defined(LIBNBD_HAVE_NBD_EXTENT64_CALLBACK)
#error "closure macros missing"
#endif
#if LIBNBD_TLS_DISABLE != 0 || LIBNBD_TLS_ALLOW != 1 || LIBNBD_TLS_REQUIRE != 2
#error "LIBNBD_TLS_* have the wrong values"
#endif
#if LIBNBD_CMD_FLAG_FUA != 1 || LIBNBD_CMD_FLAG_REQ_ONE != 8 || LIBNBD_CMD_FLAG_MASK != 0x3f
#error "LIBNBD_CMD_FLAG_* have the wrong values"
#endif
#if LIBNBD_HANDSHAKE_FLAG_MASK != 3 || LIBNBD_STRICT_MASK != 0x7f
#error "flag masks have the wrong values"
#endif
#if LIBNBD_ALLOW_TRANSPORT_MASK != 0xf || LIBNBD_SHUTDOWN_ABANDON_PENDING != 0x10000
#error "LIBNBD_ALLOW_TRANSPORT_MASK or LIBNBD_SHUTDOWN_ABANDON_PENDING wrong"
#endif
#if LIBNBD_READ_DATA != 1 || LIBNBD_READ_HOLE != 2 || LIBNBD_READ_ERROR != 3
#error "LIBNBD_READ_* have the wrong values"
#endif
#if LIBNBD_STATE_HOLE != 1 || LIBNBD_STATE_ZERO != 2
#error "LIBNBD_STATE_* have the wrong values"
#endif
#if LIBNBD_SIZE_MINIMUM != 0 || LIBNBD_SIZE_PAYLOAD != 3
#error "LIBNBD_SIZE_* have the wrong values"
#endif
#if LIBNBD_AIO_DIRECTION_READ != 1 || LIBNBD_AIO_DIRECTION_BOTH != 3
#error "LIBNBD_AIO_DIRECTION_* have the wrong values"
#endif

/* String constants: checked by size (C99 has no static_assert). */
typedef char check_base_allocation[sizeof LIBNBD_CONTEXT_BASE_ALLOCATION == 16 ? 1 : -1];
typedef char check_namespace_base[sizeof LIBNBD_NAMESPACE_BASE == 6 ? 1 : -1];

/* The prototypes have the right types. */
static struct nbd_handle *(*p_create) (void) = nbd_create;
static void (*p_close) (struct nbd_handle *) = nbd_close;
static int64_t (*p_aio_pread) (struct nbd_handle *, void *, size_t, uint64_t,
                               nbd_completion_callback, uint32_t) = nbd_aio_pread;
static const char *(*p_get_error) (void) = nbd_get_error;

int
main (void)
{
  nbd_completion_callback c = NBD_NULL_COMPLETION;
  nbd_extent e = { 0, 0 };

  (void) e;
  return c.callback == NULL && p_create && p_close && p_aio_pread && p_get_error
    ? EXIT_SUCCESS : EXIT_FAILURE;
}
