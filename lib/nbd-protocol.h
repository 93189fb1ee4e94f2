/* NBD wire protocol: magic numbers, options, flags and packed layouts.
 * All integers on the wire are big-endian.
 */
#ifndef NBD_PROTOCOL_H
#define NBD_PROTOCOL_H

#include <stdint.h>

#define NBD_MAGIC                 UINT64_C (0x4e42444d41474943) /* "NBDMAGIC" */
#define NBD_OLD_VERSION           UINT64_C (0x0000420281861253)
#define NBD_NEW_VERSION           UINT64_C (0x49484156454F5054) /* "IHAVEOPT" */
#define NBD_REP_MAGIC             UINT64_C (0x0003e889045565a9)
#define NBD_REQUEST_MAGIC         UINT32_C (0x25609513)
#define NBD_EXTENDED_REQUEST_MAGIC UINT32_C (0x21e41c71)
#define NBD_SIMPLE_REPLY_MAGIC    UINT32_C (0x67446698)
#define NBD_STRUCTURED_REPLY_MAGIC UINT32_C (0x668e33ef)
#define NBD_EXTENDED_REPLY_MAGIC  UINT32_C (0x6e8a278c)

/* Handshake flags (server) and client flags. */
#define NBD_FLAG_FIXED_NEWSTYLE   (1 << 0)
#define NBD_FLAG_NO_ZEROES        (1 << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE NBD_FLAG_FIXED_NEWSTYLE
#define NBD_FLAG_C_NO_ZEROES      NBD_FLAG_NO_ZEROES

/* Transmission flags. */
#define NBD_FLAG_HAS_FLAGS        (1 << 0)
#define NBD_FLAG_READ_ONLY        (1 << 1)
#define NBD_FLAG_SEND_FLUSH       (1 << 2)
#define NBD_FLAG_SEND_FUA         (1 << 3)
#define NBD_FLAG_ROTATIONAL       (1 << 4)
#define NBD_FLAG_SEND_TRIM        (1 << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1 << 6)
#define NBD_FLAG_SEND_DF          (1 << 7)
#define NBD_FLAG_CAN_MULTI_CONN   (1 << 8)
#define NBD_FLAG_SEND_CACHE       (1 << 10)
#define NBD_FLAG_SEND_FAST_ZERO   (1 << 11)
#define NBD_FLAG_BLOCK_STAT_PAYLOAD (1 << 12)

/* Options. */
#define NBD_OPT_EXPORT_NAME       1
#define NBD_OPT_ABORT             2
#define NBD_OPT_LIST              3
#define NBD_OPT_STARTTLS          5
#define NBD_OPT_INFO              6
#define NBD_OPT_GO                7
#define NBD_OPT_STRUCTURED_REPLY  8
#define NBD_OPT_LIST_META_CONTEXT 9
#define NBD_OPT_SET_META_CONTEXT  10
#define NBD_OPT_EXTENDED_HEADERS  11

/* Option replies. */
#define NBD_REP_ERR(v)            (UINT32_C (0x80000000) | (v))
#define NBD_REP_IS_ERR(v)         (((v) & UINT32_C (0x80000000)) != 0)
#define NBD_REP_ACK               1
#define NBD_REP_SERVER            2
#define NBD_REP_INFO              3
#define NBD_REP_META_CONTEXT      4
#define NBD_REP_ERR_UNSUP         NBD_REP_ERR (1)
#define NBD_REP_ERR_POLICY        NBD_REP_ERR (2)
#define NBD_REP_ERR_INVALID       NBD_REP_ERR (3)
#define NBD_REP_ERR_PLATFORM      NBD_REP_ERR (4)
#define NBD_REP_ERR_TLS_REQD      NBD_REP_ERR (5)
#define NBD_REP_ERR_UNKNOWN       NBD_REP_ERR (6)
#define NBD_REP_ERR_SHUTDOWN      NBD_REP_ERR (7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD NBD_REP_ERR (8)
#define NBD_REP_ERR_TOO_BIG       NBD_REP_ERR (9)
#define NBD_REP_ERR_EXT_HEADER_REQD NBD_REP_ERR (10)

#define NBD_INFO_EXPORT           0
#define NBD_INFO_NAME             1
#define NBD_INFO_DESCRIPTION      2
#define NBD_INFO_BLOCK_SIZE       3

/* Commands. */
#define NBD_CMD_READ              0
#define NBD_CMD_WRITE             1
#define NBD_CMD_DISC              2
#define NBD_CMD_FLUSH             3
#define NBD_CMD_TRIM              4
#define NBD_CMD_CACHE             5
#define NBD_CMD_WRITE_ZEROES      6
#define NBD_CMD_BLOCK_STATUS      7

#define NBD_CMD_FLAG_FUA          (1 << 0)
#define NBD_CMD_FLAG_NO_HOLE      (1 << 1)
#define NBD_CMD_FLAG_DF           (1 << 2)
#define NBD_CMD_FLAG_REQ_ONE      (1 << 3)
#define NBD_CMD_FLAG_FAST_ZERO    (1 << 4)
#define NBD_CMD_FLAG_PAYLOAD_LEN  (1 << 5)

/* Structured reply chunks. */
#define NBD_REPLY_FLAG_DONE       (1 << 0)
#define NBD_REPLY_TYPE_ERR(v)     ((1 << 15) | (v))
#define NBD_REPLY_TYPE_IS_ERR(v)  (((v) & (1 << 15)) != 0)
#define NBD_REPLY_TYPE_NONE       0
#define NBD_REPLY_TYPE_OFFSET_DATA 1
#define NBD_REPLY_TYPE_OFFSET_HOLE 2
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_BLOCK_STATUS_EXT 6
#define NBD_REPLY_TYPE_ERROR      NBD_REPLY_TYPE_ERR (1)
#define NBD_REPLY_TYPE_ERROR_OFFSET NBD_REPLY_TYPE_ERR (2)

/* Server error numbers. */
#define NBD_SUCCESS     0
#define NBD_EPERM       1
#define NBD_EIO         5
#define NBD_ENOMEM      12
#define NBD_EINVAL      22
#define NBD_ENOSPC      28
#define NBD_EOVERFLOW   75
#define NBD_ENOTSUP     95
#define NBD_ESHUTDOWN   108

#define NBD_MAX_STRING  4096     /* export names, context names */

/* Big-endian helpers. */
static inline uint16_t be16_get (const void *p)
{ const uint8_t *b = p; return (uint16_t) ((b[0] << 8) | b[1]); }
static inline uint32_t be32_get (const void *p)
{ const uint8_t *b = p;
  return ((uint32_t) b[0] << 24) | ((uint32_t) b[1] << 16) | ((uint32_t) b[2] << 8) | b[3]; }
static inline uint64_t be64_get (const void *p)
{ const uint8_t *b = p; return ((uint64_t) be32_get (b) << 32) | be32_get (b + 4); }
static inline void be16_put (void *p, uint16_t v)
{ uint8_t *b = p; b[0] = v >> 8; b[1] = v; }
static inline void be32_put (void *p, uint32_t v)
{ uint8_t *b = p; b[0] = v >> 24; b[1] = v >> 16; b[2] = v >> 8; b[3] = v; }
static inline void be64_put (void *p, uint64_t v)
{ be32_put (p, v >> 32); be32_put ((uint8_t *) p + 4, (uint32_t) v); }

#endif
