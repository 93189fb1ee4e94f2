/* libnbd API description: closures, enums, flag sets and constants. */
#include "api.h"

const struct closure api_closures[] = {
  { "chunk", {
      { ARG_BYTES_IN_CB, "subbuf", "count", NULL, NULL },
      A_UINT64 ("offset"),
      A_UINT ("status"),
      { ARG_MUTABLE_INT, "error", NULL, NULL, NULL } } },
  { "completion", {
      { ARG_MUTABLE_INT, "error", NULL, NULL, NULL } } },
  { "debug", {
      { ARG_STRING_CB, "context", NULL, NULL, NULL },
      { ARG_STRING_CB, "msg", NULL, NULL, NULL } } },
  { "extent", {
      { ARG_STRING_CB, "metacontext", NULL, NULL, NULL },
      A_UINT64 ("offset"),
      { ARG_UINT32_ARRAY, "entries", "nr_entries", NULL, NULL },
      { ARG_MUTABLE_INT, "error", NULL, NULL, NULL } } },
  { "extent64", {
      { ARG_STRING_CB, "metacontext", NULL, NULL, NULL },
      A_UINT64 ("offset"),
      { ARG_EXTENT64, "entries", "nr_entries", NULL, NULL },
      { ARG_MUTABLE_INT, "error", NULL, NULL, NULL } } },
  { "list", {
      { ARG_STRING_CB, "name", NULL, NULL, NULL },
      { ARG_STRING_CB, "description", NULL, NULL, NULL } } },
  { "context", {
      { ARG_STRING_CB, "name", NULL, NULL, NULL } } },
  { NULL, { { ARG_END } } }
};

const struct constset api_constsets[] = {
  { "tls", "TLS", false, {
      { "DISABLE", 0 }, { "ALLOW", 1 }, { "REQUIRE", 2 }, { NULL, 0 } } },
  { "size", "SIZE", false, {
      { "MINIMUM", 0 }, { "PREFERRED", 1 }, { "MAXIMUM", 2 },
      { "PAYLOAD", 3 }, { NULL, 0 } } },
  { "cmd_flags", "CMD_FLAG", true, {
      { "FUA", 0x01 }, { "NO_HOLE", 0x02 }, { "DF", 0x04 },
      { "REQ_ONE", 0x08 }, { "FAST_ZERO", 0x10 }, { "PAYLOAD_LEN", 0x20 },
      { NULL, 0 } } },
  { "handshake_flags", "HANDSHAKE_FLAG", true, {
      { "FIXED_NEWSTYLE", 0x01 }, { "NO_ZEROES", 0x02 }, { NULL, 0 } } },
  { "strict", "STRICT", true, {
      { "COMMANDS", 0x01 }, { "FLAGS", 0x02 }, { "BOUNDS", 0x04 },
      { "ZERO_SIZE", 0x08 }, { "ALIGN", 0x10 }, { "PAYLOAD", 0x20 },
      { "AUTO_FLAG", 0x40 }, { NULL, 0 } } },
  { "allow_transport", "ALLOW_TRANSPORT", true, {
      { "TCP", 0x01 }, { "UNIX", 0x02 }, { "VSOCK", 0x04 }, { "SSH", 0x08 },
      { NULL, 0 } } },
  { "shutdown", "SHUTDOWN", true, {
      { "ABANDON_PENDING", 0x10000 }, { NULL, 0 } } },
  { NULL, NULL, false, { { NULL, 0 } } }
};

const struct constant api_constants[] = {
  { "AIO_DIRECTION_READ", "1" },
  { "AIO_DIRECTION_WRITE", "2" },
  { "AIO_DIRECTION_BOTH", "3" },
  { "READ_DATA", "1" },
  { "READ_HOLE", "2" },
  { "READ_ERROR", "3" },
  { "NAMESPACE_BASE", "\"base:\"" },
  { "CONTEXT_BASE_ALLOCATION", "\"base:allocation\"" },
  { "STATE_HOLE", "1" },
  { "STATE_ZERO", "2" },
  { "NAMESPACE_QEMU", "\"qemu:\"" },
  { "CONTEXT_QEMU_DIRTY_BITMAP", "\"qemu:dirty-bitmap:\"" },
  { "STATE_DIRTY", "1" },
  { "CONTEXT_QEMU_ALLOCATION_DEPTH", "\"qemu:allocation-depth\"" },
  { NULL, NULL }
};
