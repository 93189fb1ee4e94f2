/* libnbd API description: data-path commands (read, write, flush, trim,
 * cache, zero, block status), in synchronous and asynchronous forms.
 */
#include "api.h"

/* LIBNBD_CMD_FLAG_* bits, for the O_FLAGS subsets below. */
#define CF_FUA         0x01u
#define CF_NO_HOLE     0x02u
#define CF_DF          0x04u
#define CF_REQ_ONE     0x08u
#define CF_FAST_ZERO   0x10u
#define CF_PAYLOAD_LEN 0x20u

/* The facts shared by every data-path command, given the O_FLAGS
 * subset it accepts: the blocking form returns 0/-1, the nbd_aio_*
 * form takes an optional completion closure and returns a cookie.
 */
#define SYNC_CMD(subset) \
  .optargs = { O_FLAGS ("flags", "cmd_flags", subset) }, \
  .ret = RET_ERR, \
  .permitted = ST_CONNECTED, \
  .may_release_lock = true

#define AIO_CMD(subset) \
  .optargs = { O_CLOSURE ("completion"), \
               O_FLAGS ("flags", "cmd_flags", subset) }, \
  .ret = RET_COOKIE, \
  .permitted = ST_CONNECTED, \
  .is_async = true

/* Paragraphs shared by several descriptions. */

#define STRICT_NOTE \
  "Before anything is sent, libnbd checks the request against what the " \
  "server advertised, so that mistakes fail at once instead of costing a " \
  "round trip: which checks run is selected by L<nbd_set_strict_mode(3)>. " \
  "With C<LIBNBD_STRICT_FLAGS> a flag this call does not know is refused " \
  "with C<EINVAL>; with C<LIBNBD_STRICT_ZERO_SIZE> a zero C<count> is " \
  "refused with C<EINVAL>; with C<LIBNBD_STRICT_ALIGN> a range that is not " \
  "a multiple of the server's minimum block size is refused with " \
  "C<EINVAL>. Clearing those bits lets the request reach the server, " \
  "which then decides."

#define SERVER_ERROR_NOTE \
  "When the server itself rejects the request, the error it sent is " \
  "translated to the nearest errno value (for example C<EIO>, C<EPERM>, " \
  "C<ENOSPC>, C<EINVAL>, C<ENOTSUP>, C<EOVERFLOW>) and becomes the error " \
  "of the call, retrievable with L<nbd_get_errno(3)> and " \
  "L<nbd_get_error(3)>. A failing command does not break the connection: " \
  "further commands may still be issued."

#define SYNC_NOTE \
  "This call blocks until the server has replied (or the connection " \
  "fails); it is a convenience wrapper that queues the command exactly " \
  "like its C<nbd_aio_*> counterpart and then runs the state machine " \
  "until that command has been retired. Returns 0 on success or -1 on " \
  "error.\n\n" \
  "Being a waiting call, it fails with C<EDEADLK> when made from a " \
  "callback running on the same handle; issue the C<nbd_aio_*> form " \
  "there instead. Other threads may make blocking calls on the same " \
  "handle at the same time: in this library a waiting thread does not " \
  "hold the handle's lock, so their commands are in flight together " \
  "(see L<libnbd-ext(3)>)."

#define ASYNC_NOTE \
  "The command is only queued: this call returns as soon as it has been " \
  "placed in the handle's outgoing queue (and possibly partly written), " \
  "without waiting for the reply. The result is a cookie, a positive " \
  "64 bit number unique among the commands of this handle, which " \
  "identifies the command to L<nbd_aio_command_completed(3)>. The " \
  "reply is processed while the application drives the handle, for " \
  "example with L<nbd_poll(3)> or L<nbd_aio_notify_read(3)>.\n\n" \
  "The optional C<completion> callback runs exactly once, when the " \
  "reply has been fully processed (after any per-chunk or per-extent " \
  "callback). On entry C<*error> " \
  "is 0 if the command succeeded or the errno value describing why it " \
  "failed. If the callback returns 1 the command is retired at once and " \
  "its cookie becomes unknown to L<nbd_aio_command_completed(3)>; for " \
  "any other return value the command stays around until the " \
  "application retires it with L<nbd_aio_command_completed(3)>. Storing " \
  "a non-zero value into C<*error> and returning -1 turns a success into " \
  "a failure with that errno. The free functions of the closures run " \
  "when the command is retired (or the handle is closed), not at " \
  "completion. A callback may issue new C<nbd_aio_*> commands and query " \
  "the handle; calls that wait or drive the connection (the blocking " \
  "commands, L<nbd_poll(3)>, L<nbd_aio_notify_read(3)>, " \
  "L<nbd_shutdown(3)>...) fail there with C<EDEADLK>.\n\n" \
  "If this call returns -1 the command was never queued: no callback " \
  "will run, but the free functions of any closures passed in are " \
  "still called."

#define ERROR_CB_NOTE \
  "Each callback invocation receives C<int *error>. On entry it holds " \
  "the errno value of the first problem already detected for this " \
  "command, or 0; the other arguments are valid even when it is " \
  "non-zero. To make the whole command fail, the callback stores an " \
  "errno value into C<*error> and returns -1 (if it stores nothing, " \
  "C<EPROTO> is used); the first such failure wins and later chunks or " \
  "contexts are still delivered. Whatever the callback writes is " \
  "ignored when it returns anything other than -1, and writing 0 has " \
  "no effect. The callback runs with the handle lock held, so it must " \
  "not call C<nbd_*> functions on the same handle."

#define PREAD_INIT_NOTE \
  "On failure, the contents of C<buf> depend on " \
  "L<nbd_set_pread_initialize(3)>. When it is enabled (the default) " \
  "libnbd zeroes the buffer before the read is issued, so it never " \
  "exposes stale memory, but after an error C<buf> may hold zeroes, " \
  "partial data from the server, or a mixture. When it is disabled the " \
  "buffer is left untouched up front and its contents after a failure " \
  "are undefined."

#define BS_64_EXTENTS_NOTE \
  "The C<extent64> callback receives C<metacontext>, the name of the " \
  "context the entries describe (such as C<\"base:allocation\">), " \
  "C<offset>, the absolute position of the first entry, and an array " \
  "of C<nr_entries> C<nbd_extent> structures, each with a C<length> in " \
  "bytes and a C<flags> field whose meaning depends on the context (for " \
  "the contexts libnbd knows, see the C<LIBNBD_STATE_*> constants). The " \
  "entries are consecutive, starting at C<offset>. The callback is " \
  "normally called once per negotiated context; a server that cannot " \
  "answer for some context may leave it out, and a misbehaving server " \
  "may cause extra calls, so always check C<metacontext>."

/* The closing paragraphs of most blocking commands. */
#define SYNC_CMD_NOTES \
  STRICT_NOTE "\n\n" SERVER_ERROR_NOTE "\n\n" SYNC_NOTE

#define REQ_ONE_NOTE \
  "C<flags> may be 0 or C<LIBNBD_CMD_FLAG_REQ_ONE>, asking for a " \
  "single extent per context, no longer than C<count>; libnbd does not " \
  "check that the server complied."

#define BS_STRICT_COMMANDS_NOTE \
  "With C<LIBNBD_STRICT_COMMANDS>, the request fails with C<ENOTSUP> " \
  "when structured replies were not negotiated or no metadata context " \
  "was negotiated."

const struct call api_command_calls[] = {
  /* --- synchronous commands --------------------------------------- */
  {
    .name = "pread",
    .args = { A_BYTES_OUT ("buf", "count"), A_UINT64 ("offset") },
    SYNC_CMD (NO_FLAGS),
    .version = "1.0",
    .summary = "read from the NBD server",
    .description =
      "Read C<count> bytes of the export, beginning at byte C<offset>, "
      "into the caller's buffer C<buf>, which must be at least C<count> "
      "bytes long. The read is all or nothing: the call succeeds only if "
      "the whole range was obtained, and no indication is given of which "
      "parts of the server's reply were data and which were holes (use "
      "L<nbd_pread_structured(3)> for that).\n\n"
      "No flag is accepted: C<flags> must be 0. In particular "
      "C<LIBNBD_CMD_FLAG_DF> is only available through "
      "L<nbd_pread_structured(3)>.\n\n"
      "A single request may not exceed 64 MiB; larger C<count> values "
      "fail with C<ERANGE>. The server may advertise a smaller limit, "
      "visible through L<nbd_get_block_size(3)>. Under "
      "C<LIBNBD_STRICT_BOUNDS> a range extending past the end of the "
      "export is refused with C<EINVAL> before being sent.\n\n"
      PREAD_INIT_NOTE "\n\n"
      SYNC_CMD_NOTES,
    .see_also = "nbd_aio_pread(3) nbd_pread_structured(3) nbd_get_size(3) "
      "nbd_get_block_size(3) nbd_set_pread_initialize(3) "
      "nbd_get_pread_initialize(3) nbd_set_strict_mode(3) libnbd(3)",
  },
  {
    .name = "pread_structured",
    .args = { A_BYTES_OUT ("buf", "count"), A_UINT64 ("offset"),
              A_CLOSURE ("chunk") },
    SYNC_CMD (CF_DF),
    .version = "1.0",
    .summary = "read from the NBD server",
    .description =
      "Read C<count> bytes of the export, beginning at byte C<offset>, "
      "into C<buf>, like L<nbd_pread(3)>, but report each piece of the "
      "server's reply to the C<chunk> callback as it arrives. When "
      "structured replies are in use, a server may answer one read with "
      "several chunks, in any order, each covering part of the range; "
      "libnbd copies each one into its place in C<buf> and then calls "
      "the callback. Without structured replies the server answers in "
      "one piece, and the callback is called once for the whole range.\n\n"
      "The callback gets C<subbuf> and C<count>, the part of C<buf> that "
      "was just filled (in C, C<subbuf> points inside C<buf>), C<offset>, "
      "the position of that part within the export (an absolute export "
      "offset, not an offset into C<buf>), and C<status>, one of:\n\n"
      "- C<LIBNBD_READ_DATA>: C<subbuf> now holds C<count> bytes of data "
      "sent by the server.\n"
      "- C<LIBNBD_READ_HOLE>: the server reported a hole; C<subbuf> holds "
      "C<count> zero bytes.\n"
      "- C<LIBNBD_READ_ERROR>: the server reported an error tied to "
      "C<offset>; C<count> is 0 and C<subbuf> must not be used, and "
      "C<*error> holds the errno value for the server's error, whether or "
      "not an earlier error was seen.\n\n"
      "A server-wide failure that is not tied to an offset does not reach "
      "the callback at all. If the read succeeds, the callback has been "
      "called at least once; libnbd does not verify that the chunks "
      "cover the whole range without overlap, which is the callback's job "
      "if it matters. A non-compliant server can cause extra calls or "
      "calls with a zero C<count>.\n\n"
      ERROR_CB_NOTE "\n\n"
      "C<flags> may be 0 or C<LIBNBD_CMD_FLAG_DF>, which asks the server "
      "to answer with a single chunk rather than fragmenting the reply. "
      "Only servers for which L<nbd_can_df(3)> is true honour it; with "
      "C<LIBNBD_STRICT_COMMANDS> the flag is refused with C<EINVAL> for "
      "other servers. libnbd does not check that the server obeyed it.\n\n"
      "The 64 MiB request limit (C<ERANGE>), the C<LIBNBD_STRICT_BOUNDS> "
      "check (C<EINVAL>) and the treatment of C<buf> on failure are the "
      "same as for L<nbd_pread(3)>.\n\n"
      PREAD_INIT_NOTE "\n\n"
      STRICT_NOTE "\n\n"
      SYNC_NOTE
      "\n\n"
      "The following callback accepts data and holes and logs "
      "errors; it refuses any status it does not know, which fails "
      "the read with C<EPROTO>.  A chunk with C<LIBNBD_READ_ERROR> "
      "makes the read fail with the server's error whatever the "
      "callback returns.\n\n"
      "  static int\n"
      "  check_chunk (void *user_data, const void *subbuf, size_t count,\n"
      "               uint64_t offset, unsigned status, int *error)\n"
      "  {\n"
      "    switch (status) {\n"
      "    case LIBNBD_READ_DATA:     /* subbuf holds count bytes of data */\n"
      "    case LIBNBD_READ_HOLE:     /* count bytes that read as zeroes */\n"
      "      return 0;\n"
      "    case LIBNBD_READ_ERROR:    /* *error holds the server's errno */\n"
      "      fprintf (stderr, \"error at %\" PRIu64 \": %s\\n\",\n"
      "               offset, strerror (*error));\n"
      "      return 0;\n"
      "    default:                   /* a status of a newer library */\n"
      "      return -1;\n"
      "    }\n"
      "  }\n\n"
      "  if (nbd_pread_structured (nbd, buf, sizeof buf, 0,\n"
      "                            (nbd_chunk_callback) {\n"
      "                              .callback = check_chunk }, 0) == -1)\n"
      "    fprintf (stderr, \"read: %s\\n\", nbd_get_error ());",
    .see_also = "nbd_pread(3) nbd_aio_pread_structured(3) nbd_can_df(3) "
      "nbd_get_structured_replies_negotiated(3) nbd_get_block_size(3) "
      "nbd_set_pread_initialize(3) nbd_set_strict_mode(3) libnbd(3)",
  },
  {
    .name = "pwrite",
    .args = { A_BYTES_IN ("buf", "count"), A_UINT64 ("offset") },
    SYNC_CMD (CF_FUA | CF_PAYLOAD_LEN),
    .version = "1.0",
    .summary = "write to the NBD server",
    .description =
      "Write the C<count> bytes found at C<buf> to the export, beginning "
      "at byte C<offset>. The write is all or nothing, and the call "
      "returns once the server has acknowledged it.\n\n"
      "C<flags> may be 0 or C<LIBNBD_CMD_FLAG_FUA> (forced unit access): "
      "the server must then put the data on stable storage before "
      "replying, instead of waiting for a later L<nbd_flush(3)>. Use it "
      "only when L<nbd_can_fua(3)> is true; with "
      "C<LIBNBD_STRICT_COMMANDS> it is otherwise refused with "
      "C<EINVAL>. C<LIBNBD_CMD_FLAG_PAYLOAD_LEN> is accepted too; while "
      "C<LIBNBD_STRICT_AUTO_FLAG> is set (the default) the library "
      "decides it: set when extended headers are in use, cleared "
      "otherwise.\n\n"
      "With C<LIBNBD_STRICT_COMMANDS>, a write to an export for which "
      "L<nbd_is_read_only(3)> is true fails with C<EPERM> without being "
      "sent. With C<LIBNBD_STRICT_BOUNDS>, a range that extends past the "
      "end of the export fails with C<ENOSPC>.\n\n"
      "A single request may not exceed 64 MiB (C<ERANGE>); with "
      "C<LIBNBD_STRICT_PAYLOAD> the request is also limited by the "
      "maximum payload size the server advertised (see "
      "L<nbd_get_block_size(3)>), also with C<ERANGE>.\n\n"
      SYNC_CMD_NOTES,
    .see_also = "nbd_aio_pwrite(3) nbd_can_fua(3) nbd_is_read_only(3) "
      "nbd_flush(3) nbd_zero(3) nbd_get_block_size(3) "
      "nbd_set_strict_mode(3) libnbd(3)",
  },
  {
    .name = "flush",
    .args = { { ARG_END } },
    SYNC_CMD (NO_FLAGS),
    .version = "1.0",
    .summary = "send flush command to the NBD server",
    .description =
      "Ask the server to make durable every write it has already "
      "acknowledged. When this call returns successfully, the data of all "
      "write-like commands that completed before the flush was sent is on "
      "stable storage; commands still in flight at that moment are not "
      "covered.\n\n"
      "No flag is accepted: C<flags> must be 0.\n\n"
      "Only servers for which L<nbd_can_flush(3)> is true support this "
      "command; with C<LIBNBD_STRICT_COMMANDS> it is otherwise refused "
      "with C<EINVAL> without being sent. A server that does not need "
      "flushing (for example one that writes through) may simply not "
      "advertise it.\n\n"
      SERVER_ERROR_NOTE "\n\n"
      SYNC_NOTE,
    .see_also = "nbd_aio_flush(3) nbd_can_flush(3) nbd_pwrite(3) "
      "nbd_can_fua(3) nbd_set_strict_mode(3) libnbd(3)",
  },
  {
    .name = "trim",
    .args = { A_UINT64 ("count"), A_UINT64 ("offset") },
    SYNC_CMD (CF_FUA),
    .version = "1.0",
    .summary = "send trim command to the NBD server",
    .description =
      "Tell the server that the C<count> bytes beginning at C<offset> are "
      "no longer needed, so it may release the underlying storage (punch "
      "a hole). This is advisory: afterwards the range may read back as "
      "zeroes or as the old data, so use L<nbd_zero(3)> when the contents "
      "matter. The call returns once the server has acknowledged it.\n\n"
      "C<flags> may be 0 or C<LIBNBD_CMD_FLAG_FUA>, requesting that the "
      "effect be made durable before the reply (see L<nbd_can_fua(3)>; "
      "refused with C<EINVAL> under C<LIBNBD_STRICT_COMMANDS> if the "
      "server lacks it).\n\n"
      "With C<LIBNBD_STRICT_COMMANDS>, the request fails with C<EINVAL> "
      "if L<nbd_can_trim(3)> is false, and with C<EPERM> if "
      "L<nbd_is_read_only(3)> is true. With C<LIBNBD_STRICT_BOUNDS>, a "
      "range extending past the end of the export fails with C<ENOSPC>. "
      "Unless extended headers were negotiated (see "
      "L<nbd_get_extended_headers_negotiated(3)>), C<count> must fit in "
      "32 bits, otherwise the call fails with C<ERANGE>; servers may also "
      "impose smaller limits of their own.\n\n"
      SYNC_CMD_NOTES,
    .see_also = "nbd_aio_trim(3) nbd_can_trim(3) nbd_zero(3) "
      "nbd_can_fua(3) nbd_is_read_only(3) nbd_get_block_size(3) "
      "nbd_set_strict_mode(3) libnbd(3)",
  },
  {
    .name = "cache",
    .args = { A_UINT64 ("count"), A_UINT64 ("offset") },
    SYNC_CMD (NO_FLAGS),
    .version = "1.0",
    .summary = "send cache (prefetch) command to the NBD server",
    .description =
      "Hint to the server that the C<count> bytes beginning at C<offset> "
      "will be read soon, so it may load them into faster storage ahead "
      "of a later L<nbd_pread(3)>. The contents of the export are not "
      "changed, and the server is free to do nothing at all.\n\n"
      "No flag is accepted: C<flags> must be 0.\n\n"
      "With C<LIBNBD_STRICT_COMMANDS>, the request fails with C<EINVAL> "
      "unless L<nbd_can_cache(3)> is true. With C<LIBNBD_STRICT_BOUNDS>, "
      "a range extending past the end of the export fails with "
      "C<EINVAL>. Unless extended headers were negotiated, C<count> must "
      "fit in 32 bits (C<ERANGE>).\n\n"
      SYNC_CMD_NOTES,
    .see_also = "nbd_aio_cache(3) nbd_can_cache(3) nbd_pread(3) "
      "nbd_get_block_size(3) nbd_set_strict_mode(3) libnbd(3)",
  },
  {
    .name = "zero",
    .args = { A_UINT64 ("count"), A_UINT64 ("offset") },
    SYNC_CMD (CF_FUA | CF_NO_HOLE | CF_FAST_ZERO),
    .version = "1.0",
    .summary = "send write zeroes command to the NBD server",
    .description =
      "Make the C<count> bytes beginning at C<offset> read back as zero, "
      "without sending a buffer of zeroes over the connection. The server "
      "may do this by punching a hole or by any other means it likes. The "
      "call returns once the server has acknowledged it.\n\n"
      "C<flags> is 0 or a combination of:\n\n"
      "- C<LIBNBD_CMD_FLAG_FUA>: make the result durable before replying "
      "(see L<nbd_can_fua(3)>).\n"
      "- C<LIBNBD_CMD_FLAG_NO_HOLE>: keep the range allocated; the server "
      "should write zeroes rather than deallocate.\n"
      "- C<LIBNBD_CMD_FLAG_FAST_ZERO>: only proceed if zeroing is cheaper "
      "than writing; otherwise the server fails quickly, typically with "
      "C<ENOTSUP>, leaving the range untouched so the caller can choose "
      "another strategy (see L<nbd_can_fast_zero(3)>).\n\n"
      "With C<LIBNBD_STRICT_COMMANDS>, the request fails with C<EINVAL> "
      "if L<nbd_can_zero(3)> is false, if C<LIBNBD_CMD_FLAG_FUA> is given "
      "but the server does not support it, or if "
      "C<LIBNBD_CMD_FLAG_FAST_ZERO> is given but "
      "L<nbd_can_fast_zero(3)> is false; and with C<EPERM> if "
      "L<nbd_is_read_only(3)> is true. With C<LIBNBD_STRICT_BOUNDS>, a "
      "range extending past the end of the export fails with C<ENOSPC>. "
      "Unless extended headers were negotiated, C<count> must fit in "
      "32 bits (C<ERANGE>); some servers accept large zero requests only "
      "together with C<LIBNBD_CMD_FLAG_FAST_ZERO>.\n\n"
      SYNC_CMD_NOTES,
    .see_also = "nbd_aio_zero(3) nbd_can_zero(3) nbd_can_fast_zero(3) "
      "nbd_can_fua(3) nbd_trim(3) nbd_is_read_only(3) "
      "nbd_set_strict_mode(3) libnbd(3)",
  },
  {
    .name = "block_status",
    .args = { A_UINT64 ("count"), A_UINT64 ("offset"),
              A_CLOSURE ("extent") },
    SYNC_CMD (CF_REQ_ONE),
    .version = "1.0",
    .summary = "send block status command to the NBD server",
    .description =
      "Query metadata about the export, such as which parts are allocated "
      "or read as zero, for the range beginning at C<offset>. The "
      "metadata contexts that can be reported are those requested with "
      "L<nbd_add_meta_context(3)> before connecting and accepted by the "
      "server (see L<nbd_can_meta_context(3)>). C<count> is only a hint: "
      "the server may describe less than requested, and the last extent "
      "may run past the end of the range. Different contexts may be "
      "split into different numbers of extents and cover different "
      "lengths.\n\n"
      "The C<extent> callback receives C<metacontext>, the name of the "
      "context being described (such as C<\"base:allocation\">), "
      "C<offset>, where the first extent begins, and the array C<entries> "
      "of C<nr_entries> 32 bit values. The array is made of pairs: the "
      "first value of each pair is an extent length in bytes and the "
      "second its status flags, interpreted according to the context "
      "(see the C<LIBNBD_STATE_*> constants); there are C<nr_entries>/2 "
      "extents, laid end to end from C<offset>. The callback is normally "
      "called once per negotiated context; a server that cannot answer "
      "for a context may leave it out, and a misbehaving one may cause "
      "extra calls, so always check C<metacontext>. When extended "
      "headers are in use the server may describe extents larger than "
      "32 bits can express; libnbd then shortens them to fit, so "
      "L<nbd_block_status_64(3)> is preferable.\n\n"
      ERROR_CB_NOTE "\n\n"
      REQ_ONE_NOTE "\n\n"
      BS_STRICT_COMMANDS_NOTE " With C<LIBNBD_STRICT_BOUNDS>, a range "
      "starting or extending past the end of the export fails with "
      "C<EINVAL>. Unless extended headers were negotiated, C<count> must "
      "fit in 32 bits (C<ERANGE>).\n\n"
      SYNC_CMD_NOTES,
    .see_also = "nbd_aio_block_status(3) nbd_block_status_64(3) "
      "nbd_add_meta_context(3) nbd_can_meta_context(3) "
      "nbd_get_structured_replies_negotiated(3) nbd_set_strict_mode(3) "
      "libnbd(3)",
  },
  {
    .name = "block_status_64",
    .args = { A_UINT64 ("count"), A_UINT64 ("offset"),
              A_CLOSURE ("extent64") },
    SYNC_CMD (CF_REQ_ONE),
    .version = "1.18",
    .summary = "send block status command, with 64-bit callback",
    .description =
      "Query metadata about the export for the range beginning at "
      "C<offset>, like L<nbd_block_status(3)>, but deliver the answer as "
      "64 bit extents so that no length ever needs to be shortened. The "
      "contexts reported are those negotiated through "
      "L<nbd_add_meta_context(3)> (see L<nbd_can_meta_context(3)>), and "
      "every negotiated context is described; to restrict the answer to "
      "some of them, see L<nbd_block_status_filter(3)>. C<count> is a "
      "hint: the server may describe less, and the last extent may go past "
      "the requested range.\n\n"
      BS_64_EXTENTS_NOTE "\n\n"
      ERROR_CB_NOTE "\n\n"
      REQ_ONE_NOTE "\n\n"
      BS_STRICT_COMMANDS_NOTE " With C<LIBNBD_STRICT_BOUNDS>, a range "
      "past the end of the export fails with C<EINVAL>. A C<count> of "
      "4 GiB or more is only possible when "
      "L<nbd_get_extended_headers_negotiated(3)> is true (otherwise "
      "C<ERANGE>).\n\n"
      SYNC_CMD_NOTES
      "\n\n"
      "For example, to print a map of the holes and zero areas of an "
      "export, request C<LIBNBD_CONTEXT_BASE_ALLOCATION> with "
      "L<nbd_add_meta_context(3)> before connecting, then ask for "
      "one range after the other, each time from where the previous "
      "answer ended (the server may describe less than was asked, "
      "and without extended headers C<count> cannot exceed 4 GiB):\n\n"
      "  static int\n"
      "  print_extents (void *user_data, const char *metacontext,\n"
      "                 uint64_t offset, nbd_extent *entries,\n"
      "                 size_t nr_entries, int *error)\n"
      "  {\n"
      "    uint64_t *end = user_data;\n\n"
      "    if (strcmp (metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)\n"
      "      return 0;\n"
      "    for (size_t i = 0; i < nr_entries; i++) {\n"
      "      printf (\"%\" PRIu64 \" +%\" PRIu64 \"%s%s\\n\", offset,\n"
      "              entries[i].length,\n"
      "              entries[i].flags & LIBNBD_STATE_HOLE ? \" hole\" : \"\",\n"
      "              entries[i].flags & LIBNBD_STATE_ZERO ? \" zero\" : \"\");\n"
      "      offset += entries[i].length;\n"
      "    }\n"
      "    *end = offset;\n"
      "    return 0;\n"
      "  }\n\n"
      "  int64_t size = nbd_get_size (nbd);\n"
      "  uint64_t offset = 0, end;\n"
      "  while (size > 0 && offset < (uint64_t) size) {\n"
      "    uint64_t count = size - offset;\n"
      "    if (count > 1024 * 1024 * 1024)\n"
      "      count = 1024 * 1024 * 1024;\n"
      "    end = offset;\n"
      "    if (nbd_block_status_64 (nbd, count, offset,\n"
      "                             (nbd_extent64_callback) {\n"
      "                               .callback = print_extents,\n"
      "                               .user_data = &end }, 0) == -1) {\n"
      "      fprintf (stderr, \"block status: %s\\n\", nbd_get_error ());\n"
      "      break;\n"
      "    }\n"
      "    if (end <= offset)         /* no progress: give up */\n"
      "      break;\n"
      "    offset = end;\n"
      "  }",
    .see_also = "nbd_aio_block_status_64(3) nbd_block_status(3) "
      "nbd_block_status_filter(3) nbd_add_meta_context(3) "
      "nbd_can_meta_context(3) nbd_get_extended_headers_negotiated(3) "
      "nbd_set_strict_mode(3) libnbd(3)",
  },
  {
    .name = "block_status_filter",
    .args = { A_UINT64 ("count"), A_UINT64 ("offset"),
              A_STRING_LIST ("contexts"), A_CLOSURE ("extent64") },
    SYNC_CMD (CF_REQ_ONE | CF_PAYLOAD_LEN),
    .version = "1.18",
    .summary = "send filtered block status command, with 64-bit callback",
    .description =
      "Like L<nbd_block_status_64(3)>, but ask the server to describe only "
      "the metadata contexts named in C<contexts>, a NULL-terminated list "
      "of strings. This saves work and bandwidth when several contexts "
      "were negotiated but only some are wanted now. Every name in the "
      "list must be a context that was negotiated on this connection "
      "(one for which L<nbd_can_meta_context(3)> is true); otherwise the "
      "call fails with C<EINVAL>. The list is sent to the server as the "
      "payload of the request, so it is subject to the payload size "
      "limits (C<ERANGE> when too large).\n\n"
      "Filtering needs the extended headers extension: the call fails with "
      "C<ENOTSUP> if L<nbd_get_extended_headers_negotiated(3)> is false. "
      "With C<LIBNBD_STRICT_COMMANDS> it also fails with C<EINVAL> when "
      "L<nbd_can_block_status_payload(3)> is false and with C<ENOTSUP> "
      "when no metadata context was negotiated.\n\n"
      BS_64_EXTENTS_NOTE " Only the requested contexts are expected.\n\n"
      ERROR_CB_NOTE "\n\n"
      "C<flags> may contain C<LIBNBD_CMD_FLAG_REQ_ONE> with the same "
      "meaning as for L<nbd_block_status_64(3)>. The wire-level flag "
      "C<LIBNBD_CMD_FLAG_PAYLOAD_LEN> describes the request format, so by "
      "default (while C<LIBNBD_STRICT_AUTO_FLAG> is set, see "
      "L<nbd_set_strict_mode(3)>) libnbd ignores whether the caller "
      "passed it and puts the correct value on the wire itself; with that "
      "bit cleared, the caller's flags are used as given.\n\n"
      SYNC_CMD_NOTES,
    .see_also = "nbd_aio_block_status_filter(3) nbd_block_status_64(3) "
      "nbd_can_block_status_payload(3) nbd_can_meta_context(3) "
      "nbd_add_meta_context(3) nbd_get_extended_headers_negotiated(3) "
      "nbd_set_strict_mode(3) libnbd(3)",
  },

  /* --- asynchronous commands -------------------------------------- */
  {
    .name = "aio_pread",
    .args = { A_BYTES_POUT ("buf", "count"), A_UINT64 ("offset") },
    AIO_CMD (NO_FLAGS),
    .version = "1.0",
    .summary = "read from the NBD server",
    .description =
      "Queue a read of C<count> bytes at C<offset> into C<buf>: the "
      "asynchronous form of L<nbd_pread(3)>, whose description applies to "
      "the arguments, flags (none are accepted) and early errors.\n\n"
      "libnbd keeps using C<buf> after this call returns: the buffer must "
      "stay valid, and must not be reused, until the command has completed "
      "(its completion callback has run, or "
      "L<nbd_aio_command_completed(3)> has reported it). The data is only "
      "meaningful if the command succeeded.\n\n"
      PREAD_INIT_NOTE "\n\n"
      ASYNC_NOTE
      "\n\n"
      "A sketch of a read whose outcome is handled in a completion "
      "callback; returning 1 retires the command, so it never needs "
      "L<nbd_aio_command_completed(3)>:\n\n"
      "  static int\n"
      "  read_done (void *user_data, int *error)\n"
      "  {\n"
      "    struct request *req = user_data;\n"
      "    if (*error != 0)\n"
      "      fprintf (stderr, \"read at %\" PRIu64 \": %s\\n\",\n"
      "               req->offset, strerror (*error));\n"
      "    else\n"
      "      consume (req->buf, req->len);\n"
      "    req->finished = true;\n"
      "    return 1;\n"
      "  }\n\n"
      "  if (nbd_aio_pread (nbd, req->buf, req->len, req->offset,\n"
      "                     (nbd_completion_callback) {\n"
      "                       .callback = read_done, .user_data = req },\n"
      "                     0) == -1)\n"
      "    fprintf (stderr, \"%s\\n\", nbd_get_error ());\n"
      "  while (!req->finished)\n"
      "    if (nbd_poll (nbd, -1) == -1)\n"
      "      break;\n\n"
      "Compared with L<nbd_pread(3)>, this form returns as soon as "
      "the request is queued, so many reads can be in flight on one "
      "connection; a failure that happens after it returned (the "
      "server's error, or the connection breaking) only reaches the "
      "program through C<*error> in the callback or through "
      "L<nbd_aio_command_completed(3)>.",
    .see_also = "nbd_pread(3) nbd_aio_pread_structured(3) "
      "nbd_aio_command_completed(3) nbd_set_pread_initialize(3) "
      "nbd_poll(3) nbd_set_strict_mode(3) libnbd(3)",
  },
  {
    .name = "aio_pread_structured",
    .args = { A_BYTES_POUT ("buf", "count"), A_UINT64 ("offset"),
              A_CLOSURE ("chunk") },
    AIO_CMD (CF_DF),
    .version = "1.0",
    .summary = "read from the NBD server",
    .description =
      "Queue a read of C<count> bytes at C<offset> into C<buf>, reporting "
      "each part of the reply to the C<chunk> callback: the asynchronous "
      "form of L<nbd_pread_structured(3)>, whose description covers the "
      "C<chunk> callback, C<LIBNBD_CMD_FLAG_DF> and early errors.\n\n"
      "C<buf> must remain valid and untouched until the command has "
      "completed. The C<chunk> callback is called zero or more times "
      "while the reply is being received, always before the completion "
      "callback.\n\n"
      PREAD_INIT_NOTE "\n\n"
      ASYNC_NOTE,
    .see_also = "nbd_pread_structured(3) nbd_aio_pread(3) nbd_can_df(3) "
      "nbd_aio_command_completed(3) nbd_set_pread_initialize(3) "
      "nbd_set_strict_mode(3) libnbd(3)",
  },
  {
    .name = "aio_pwrite",
    .args = { A_BYTES_PIN ("buf", "count"), A_UINT64 ("offset") },
    AIO_CMD (CF_FUA | CF_PAYLOAD_LEN),
    .version = "1.0",
    .summary = "write to the NBD server",
    .description =
      "Queue a write of the C<count> bytes at C<buf> to the export at "
      "C<offset>: the asynchronous form of L<nbd_pwrite(3)>, whose "
      "description applies to C<LIBNBD_CMD_FLAG_FUA> and to the early "
      "errors (C<EPERM> for read-only exports, C<ENOSPC> out of bounds, "
      "C<ERANGE> when too large).\n\n"
      "The data is not copied: libnbd may still be sending from C<buf> "
      "after this call returns, so the buffer must stay valid and "
      "unchanged until the command has completed.\n\n"
      ASYNC_NOTE,
    .see_also = "nbd_pwrite(3) nbd_aio_flush(3) nbd_can_fua(3) "
      "nbd_is_read_only(3) nbd_aio_command_completed(3) "
      "nbd_set_strict_mode(3) libnbd(3)",
  },
  {
    .name = "aio_flush",
    .args = { { ARG_END } },
    AIO_CMD (NO_FLAGS),
    .version = "1.0",
    .summary = "send flush command to the NBD server",
    .description =
      "Queue a flush command: the asynchronous form of L<nbd_flush(3)>. "
      "Only writes that the server had completed before it received the "
      "flush are guaranteed durable once the flush completes, so to cover "
      "particular asynchronous writes, wait for them to complete before "
      "issuing the flush. No flag is accepted.\n\n"
      ASYNC_NOTE,
    .see_also = "nbd_flush(3) nbd_can_flush(3) nbd_aio_pwrite(3) "
      "nbd_aio_command_completed(3) nbd_set_strict_mode(3) libnbd(3)",
  },
  {
    .name = "aio_trim",
    .args = { A_UINT64 ("count"), A_UINT64 ("offset") },
    AIO_CMD (CF_FUA),
    .version = "1.0",
    .summary = "send trim command to the NBD server",
    .description =
      "Queue a trim (discard) of C<count> bytes at C<offset>: the "
      "asynchronous form of L<nbd_trim(3)>, whose description applies to "
      "the flags and to the early errors.\n\n"
      ASYNC_NOTE,
    .see_also = "nbd_trim(3) nbd_can_trim(3) nbd_aio_zero(3) "
      "nbd_aio_command_completed(3) nbd_set_strict_mode(3) libnbd(3)",
  },
  {
    .name = "aio_cache",
    .args = { A_UINT64 ("count"), A_UINT64 ("offset") },
    AIO_CMD (NO_FLAGS),
    .version = "1.0",
    .summary = "send cache (prefetch) command to the NBD server",
    .description =
      "Queue a prefetch hint for C<count> bytes at C<offset>: the "
      "asynchronous form of L<nbd_cache(3)>, whose description applies to "
      "the early errors. No flag is accepted.\n\n"
      ASYNC_NOTE,
    .see_also = "nbd_cache(3) nbd_can_cache(3) nbd_aio_pread(3) "
      "nbd_aio_command_completed(3) nbd_set_strict_mode(3) libnbd(3)",
  },
  {
    .name = "aio_zero",
    .args = { A_UINT64 ("count"), A_UINT64 ("offset") },
    AIO_CMD (CF_FUA | CF_NO_HOLE | CF_FAST_ZERO),
    .version = "1.0",
    .summary = "send write zeroes command to the NBD server",
    .description =
      "Queue a request to zero C<count> bytes at C<offset>: the "
      "asynchronous form of L<nbd_zero(3)>, whose description applies to "
      "C<LIBNBD_CMD_FLAG_FUA>, C<LIBNBD_CMD_FLAG_NO_HOLE>, "
      "C<LIBNBD_CMD_FLAG_FAST_ZERO> and the early errors.\n\n"
      ASYNC_NOTE,
    .see_also = "nbd_zero(3) nbd_can_zero(3) nbd_can_fast_zero(3) "
      "nbd_aio_trim(3) nbd_aio_command_completed(3) "
      "nbd_set_strict_mode(3) libnbd(3)",
  },
  {
    .name = "aio_block_status",
    .args = { A_UINT64 ("count"), A_UINT64 ("offset"),
              A_CLOSURE ("extent") },
    AIO_CMD (CF_REQ_ONE),
    .version = "1.0",
    .summary = "send block status command to the NBD server",
    .description =
      "Queue a block status query for the range at C<offset>: the "
      "asynchronous form of L<nbd_block_status(3)>, whose description "
      "covers the C<extent> callback (32 bit entries), "
      "C<LIBNBD_CMD_FLAG_REQ_ONE> and the early errors. The C<extent> "
      "callback runs while the reply is received, before the completion "
      "callback. New code should prefer L<nbd_aio_block_status_64(3)>.\n\n"
      ASYNC_NOTE,
    .see_also = "nbd_block_status(3) nbd_aio_block_status_64(3) "
      "nbd_can_meta_context(3) nbd_aio_command_completed(3) "
      "nbd_set_strict_mode(3) libnbd(3)",
  },
  {
    .name = "aio_block_status_64",
    .args = { A_UINT64 ("count"), A_UINT64 ("offset"),
              A_CLOSURE ("extent64") },
    AIO_CMD (CF_REQ_ONE),
    .version = "1.18",
    .summary = "send block status command, with 64-bit callback",
    .description =
      "Queue a block status query for the range at C<offset>, delivering "
      "64 bit extents: the asynchronous form of "
      "L<nbd_block_status_64(3)>, whose description covers the "
      "C<extent64> callback, C<LIBNBD_CMD_FLAG_REQ_ONE> and the early "
      "errors. The C<extent64> callback runs while the reply is received, "
      "before the completion callback.\n\n"
      ASYNC_NOTE,
    .see_also = "nbd_block_status_64(3) nbd_aio_block_status(3) "
      "nbd_aio_block_status_filter(3) nbd_can_meta_context(3) "
      "nbd_aio_command_completed(3) nbd_set_strict_mode(3) libnbd(3)",
  },
  {
    .name = "aio_block_status_filter",
    .args = { A_UINT64 ("count"), A_UINT64 ("offset"),
              A_STRING_LIST ("contexts"), A_CLOSURE ("extent64") },
    AIO_CMD (CF_REQ_ONE | CF_PAYLOAD_LEN),
    .version = "1.18",
    .summary = "send filtered block status command to the NBD server",
    .description =
      "Queue a block status query restricted to the metadata contexts "
      "listed in C<contexts>: the asynchronous form of "
      "L<nbd_block_status_filter(3)>, whose description covers the list, "
      "the C<extent64> callback, the flags and the early errors. The list "
      "is converted into the request's payload before this call returns, "
      "so it need not outlive the call.\n\n"
      ASYNC_NOTE,
    .see_also = "nbd_block_status_filter(3) nbd_aio_block_status_64(3) "
      "nbd_can_block_status_payload(3) nbd_can_meta_context(3) "
      "nbd_aio_command_completed(3) nbd_set_strict_mode(3) libnbd(3)",
  },
  { .name = NULL }
};
