/* libnbd API description: calls that report what was negotiated with
 * the server (export size, transmission flags, block sizes, protocol
 * details) and calls that inspect the state of asynchronous commands.
 */
#include "api.h"

/* Most calls below only read data saved from the handshake. */
#define INFO_STATES (ST_NEGOTIATING | ST_CONNECTED | ST_CLOSED)

/* Shared sentence about where the information comes from. */
#define HANDSHAKE_NOTE \
  "The answer is taken from data remembered in the handle since the " \
  "handshake, so this call never blocks and never talks to the server."

/* Shared paragraph about the error when no export flags are known yet. */
#define NO_EFLAGS_NOTE \
  "If the export flags are not known yet (in option mode, before a " \
  "successful L<nbd_opt_info(3)> or L<nbd_opt_go(3)>, or after a failed " \
  "one), the call fails with C<EINVAL>.  Calling it on a handle which has " \
  "not started connecting fails with C<ENOTCONN>."

/* Shared paragraph of the optional export details requested by
 * nbd_set_full_info: what the server may send, and how its absence
 * is described.
 */
#define FULL_INFO_NOTE(what, absent) \
  "Servers tend to send " what " only if asked, which is what " \
  "L<nbd_set_full_info(3)> does.  When the server reported " absent \
  ", the call fails with C<ENOTSUP>.  When no export information is " \
  "available yet (in option mode before a successful " \
  "L<nbd_opt_info(3)> or L<nbd_opt_go(3)>), it fails with C<EINVAL>."

/* What strict mode does with a request the flag would allow, when
 * the flag is clear.
 */
#define STRICT_COMMANDS_NOTE(request) \
  "When this is false and C<LIBNBD_STRICT_COMMANDS> is in effect (the " \
  "default, see L<nbd_set_strict_mode(3)>), " request " fails with " \
  "C<EINVAL> without being sent."

/* A call reporting one transmission flag of the export: name, first
 * version, summary, the flag's name after NBD_FLAG_, what a true
 * result means (ending in a full stop), and the see-also list.
 */
#define EFLAG_CALL(nm, ver, summ, flag, meaning, also)                  \
  {                                                                     \
    .name = nm,                                                         \
    .ret = RET_BOOL,                                                    \
    .permitted = INFO_STATES,                                           \
    .version = ver,                                                     \
    .summary = summ,                                                    \
    .description =                                                      \
      "Return true when the server set the C<NBD_FLAG_" flag ">"        \
      " transmission flag, " meaning "\n\n"                             \
      NO_EFLAGS_NOTE "  " HANDSHAKE_NOTE,                               \
    .see_also = also,                                                   \
  }

const struct call api_info_calls[] = {
  {
    .name = "get_size",
    .ret = RET_INT64,
    .permitted = INFO_STATES,
    .version = "1.0",
    .summary = "return the export size",
    .description =
      "Report the size, in bytes, of the export the handle is attached to, "
      "as announced by the server during the handshake.  The value is "
      "never negative on success: a server announcing a size that does "
      "not fit in a signed 64-bit integer can still be connected to, but "
      "this call then fails with C<EOVERFLOW>.\n\n"
      "In option mode the size becomes available once L<nbd_opt_info(3)> "
      "or L<nbd_opt_go(3)> has succeeded; before that, or when the last "
      "such request failed, the call fails with C<EINVAL>.  "
      HANDSHAKE_NOTE
      "\n\n"
      "Requests reaching past the size "
      "are refused locally with C<EINVAL> (C<ENOSPC> for writes) "
      "while C<LIBNBD_STRICT_BOUNDS> is set, see "
      "L<nbd_set_strict_mode(3)>.",
    .see_also = "nbd_get_block_size(3) nbd_opt_info(3) nbd_connect_uri(3) "
                "nbd_set_export_name(3)",
  },
  {
    .name = "get_block_size",
    .args = { A_ENUM ("size_type", "size") },
    .ret = RET_INT64,
    .permitted = INFO_STATES,
    .version = "1.4",
    .summary = "return a specific server block size constraint",
    .description =
      "Report one of the block size constraints known for the export.  "
      "C<size_type> selects which one; a result of 0 means that the "
      "server said nothing about that constraint.\n\n"
      "- C<LIBNBD_SIZE_MINIMUM>: the granularity, a power of two from 1 "
      "to 64k.  Requests whose offset or length are not multiples of it "
      "may be refused by the server; libnbd also rejects them on the "
      "client side unless C<LIBNBD_STRICT_ALIGN> is removed with "
      "L<nbd_set_strict_mode(3)>.  When 0, assuming 512 is the cautious "
      "choice.\n"
      "- C<LIBNBD_SIZE_PREFERRED>: a power of two giving the request size "
      "the server handles most efficiently (it may exceed the export "
      "size).  Smaller or unaligned requests may cost extra work such as "
      "read-modify-write.  When 0, 4k is a reasonable guess.\n"
      "- C<LIBNBD_SIZE_MAXIMUM>: the largest length the server accepts for "
      "data-carrying requests such as L<nbd_pread(3)> and "
      "L<nbd_pwrite(3)>; requests without a data payload, such as "
      "L<nbd_zero(3)>, may be allowed to go beyond it.  When 0, staying at "
      "or below 32M avoids trouble with servers that drop the connection "
      "on larger transactions.\n"
      "- C<LIBNBD_SIZE_PAYLOAD>: not sent by the server, but computed by "
      "libnbd: the largest write payload that libnbd itself will send on "
      "this connection unless C<LIBNBD_STRICT_PAYLOAD> is cleared.  It is "
      "always non-zero, between 1M and 64M, and equals the server maximum "
      "whenever that fits in this range.\n\n"
      "Whether the server reports sizes at all may depend on "
      "L<nbd_set_request_block_size(3)> (libnbd asks for them by "
      "default).  An out-of-range C<size_type> fails with C<EINVAL>, as "
      "does calling this before the export flags are known (for example "
      "in option mode before a successful L<nbd_opt_info(3)> or "
      "L<nbd_opt_go(3)>).  " HANDSHAKE_NOTE,
    .see_also = "nbd_get_size(3) nbd_set_request_block_size(3) "
                "nbd_set_strict_mode(3) nbd_opt_info(3) nbd_pread(3) "
                "nbd_pwrite(3)",
  },
  EFLAG_CALL ("is_read_only", "1.0",
              "is the NBD export read-only?",
              "READ_ONLY",
              "meaning the export cannot be modified: L<nbd_pwrite(3)>, "
              "L<nbd_trim(3)>, L<nbd_zero(3)> and similar modifying "
              "commands will fail.  Return false when writes are allowed.  "
              "With C<LIBNBD_STRICT_COMMANDS> in effect (the default, see "
              "L<nbd_set_strict_mode(3)>), L<nbd_pwrite(3)> then fails with "
              "C<EPERM> without contacting the server; otherwise the request "
              "is sent and the server refuses it.  Servers mark an export "
              "read-only when started that way, for example with "
              "C<qemu-nbd -r> or C<nbdkit -r>.",
              "nbd_pwrite(3) nbd_set_strict_mode(3) nbd_opt_info(3)"),
  EFLAG_CALL ("can_flush", "1.0",
              "does the server support the flush command?",
              "SEND_FLUSH",
              "so that L<nbd_flush(3)> and L<nbd_aio_flush(3)> may be "
              "used; false otherwise.  " STRICT_COMMANDS_NOTE ("a flush"),
              "nbd_flush(3) nbd_aio_flush(3) nbd_can_fua(3)"),
  EFLAG_CALL ("can_fua", "1.0",
              "does the server support the FUA flag?",
              "SEND_FUA",
              "which means commands that modify data (for instance "
              "L<nbd_pwrite(3)>, L<nbd_zero(3)>, L<nbd_trim(3)>) accept "
              "C<LIBNBD_CMD_FLAG_FUA> to force the change to stable "
              "storage before the reply; false otherwise.  "
              STRICT_COMMANDS_NOTE ("a command carrying the flag")
              "  A program can fall back to L<nbd_flush(3)> after the "
              "write.",
              "nbd_pwrite(3) nbd_zero(3) nbd_trim(3) nbd_can_flush(3)"),
  EFLAG_CALL ("is_rotational", "1.0",
              "is the NBD disk rotational (like a disk)?",
              "ROTATIONAL",
              "hinting that the storage behind the export has a seek "
              "penalty like a spinning hard disk, so sequential access is "
              "preferable.  Return false when random access is cheap (as "
              "with solid state or memory backed storage) or the server "
              "gave no hint.",
              "nbd_get_block_size(3) nbd_opt_info(3)"),
  EFLAG_CALL ("can_trim", "1.0",
              "does the server support the trim command?",
              "SEND_TRIM",
              "so that L<nbd_trim(3)> and L<nbd_aio_trim(3)> may be used "
              "to discard ranges; false otherwise.  "
              STRICT_COMMANDS_NOTE ("a trim") "  Trimming is only a hint: the server "
              "may keep the data, so do not rely on trimmed ranges reading "
              "back as zeroes (use L<nbd_zero(3)> for that).",
              "nbd_trim(3) nbd_aio_trim(3) nbd_can_zero(3)"),
  EFLAG_CALL ("can_zero", "1.0",
              "does the server support the zero command?",
              "SEND_WRITE_ZEROES",
              "so that L<nbd_zero(3)> and L<nbd_aio_zero(3)> may be used "
              "to write zeroes without sending a data payload; false "
              "otherwise.  " STRICT_COMMANDS_NOTE ("a zero request")
              "  The program then has to write a buffer of zeroes with "
              "L<nbd_pwrite(3)> instead.",
              "nbd_zero(3) nbd_aio_zero(3) nbd_can_fast_zero(3) "
              "nbd_can_trim(3)"),
  EFLAG_CALL ("can_fast_zero", "1.2",
              "does the server support the fast zero flag?",
              "SEND_FAST_ZERO",
              "meaning L<nbd_zero(3)> and L<nbd_aio_zero(3)> accept "
              "C<LIBNBD_CMD_FLAG_FAST_ZERO> (fail quickly rather than fall "
              "back to a slow write of zeroes); false otherwise.  libnbd "
              "ignores this flag when the server does not also support the "
              "zero command, so a true result implies that "
              "L<nbd_can_zero(3)> is true.",
              "nbd_zero(3) nbd_aio_zero(3) nbd_can_zero(3)"),
  EFLAG_CALL ("can_df", "1.0",
              "does the server support the don't fragment flag to pread?",
              "SEND_DF",
              "meaning reads may carry C<LIBNBD_CMD_FLAG_DF> to ask that "
              "the reply come back as one unfragmented chunk (see "
              "L<nbd_pread_structured(3)> and "
              "L<nbd_aio_pread_structured(3)>).  Return false otherwise.  "
              "Because the flag only makes sense with structured replies, "
              "libnbd discards it when those were not negotiated (see "
              "L<nbd_get_structured_replies_negotiated(3)>), so the result "
              "is then always false.",
              "nbd_pread_structured(3) nbd_aio_pread_structured(3) "
              "nbd_get_structured_replies_negotiated(3)"),
  EFLAG_CALL ("can_multi_conn", "1.0",
              "does the server support multi-conn?",
              "CAN_MULTI_CONN",
              "promising that several connections to the same export see a "
              "consistent view of the data, so that a flush on any one of "
              "them covers writes completed on all of them; false "
              "otherwise.\n\n"
              "Without this promise, writing through more than one "
              "connection to the same export is unsafe.  A careful client "
              "therefore makes a first connection, checks this call, and "
              "only then opens additional connections.",
              "nbd_flush(3) nbd_connect_uri(3) nbd_opt_info(3)"),
  EFLAG_CALL ("can_cache", "1.0",
              "does the server support the cache command?",
              "SEND_CACHE",
              "so that L<nbd_cache(3)> and L<nbd_aio_cache(3)> may be used "
              "to ask for data to be prefetched; false otherwise.  "
              STRICT_COMMANDS_NOTE ("a cache request"),
              "nbd_cache(3) nbd_aio_cache(3)"),
  {
    .name = "can_meta_context",
    .args = { A_STRING ("metacontext") },
    .ret = RET_BOOL,
    .permitted = INFO_STATES,
    .version = "1.0",
    .summary = "does the server support a specific meta context?",
    .description =
      "Return true if C<metacontext> is among the metadata contexts that "
      "the server agreed to during negotiation, which means it can be "
      "queried with L<nbd_block_status(3)> and friends; return false "
      "otherwise (including when the context was never requested with "
      "L<nbd_add_meta_context(3)>).\n\n"
      "C<metacontext> is a full context name such as "
      "C<LIBNBD_CONTEXT_BASE_ALLOCATION> (C<\"base:allocation\">); "
      "C<libnbd.h> defines C<LIBNBD_CONTEXT_*> constants for "
      "well-known ones, but any string may be passed.  A NULL "
      "C<metacontext> fails with C<EFAULT>.\n\n"
      "If contexts were requested but no successful meta context "
      "negotiation has happened yet (for instance in option mode before "
      "L<nbd_opt_set_meta_context(3)> or L<nbd_opt_go(3)> succeeded), the "
      "call fails with C<EINVAL>.  " HANDSHAKE_NOTE,
    .see_also = "nbd_add_meta_context(3) nbd_opt_set_meta_context(3) "
                "nbd_block_status(3) nbd_block_status_64(3) "
                "nbd_get_meta_context(3)",
  },
  EFLAG_CALL ("can_block_status_payload", "1.18",
              "does the server support the block status payload flag?",
              "BLOCK_STAT_PAYLOAD",
              "meaning a block status request may carry a payload "
              "(C<LIBNBD_CMD_FLAG_PAYLOAD_LEN>) listing the metadata "
              "contexts to report, as done by "
              "L<nbd_block_status_filter(3)>; false otherwise.  libnbd "
              "drops this flag unless extended headers were negotiated, so "
              "a true result implies that "
              "L<nbd_get_extended_headers_negotiated(3)> is true.",
              "nbd_block_status_filter(3) nbd_aio_block_status_filter(3) "
              "nbd_get_extended_headers_negotiated(3)"),
  {
    .name = "get_protocol",
    .ret = RET_STATIC_STRING,
    .permitted = INFO_STATES,
    .version = "1.2",
    .summary = "return the NBD protocol variant",
    .description =
      "Report which style of NBD handshake the server used on this "
      "connection.  Currently the result is one of C<\"oldstyle\">, "
      "C<\"newstyle\"> or C<\"newstyle-fixed\"> (the last is what nearly "
      "every current server speaks); callers should tolerate other "
      "strings appearing in future versions.\n\n"
      "The string is static and must not be freed.  Apart from being "
      "called in a state where no handshake has taken place (C<ENOTCONN> "
      "for a newly created handle), the call cannot fail.  "
      HANDSHAKE_NOTE,
    .see_also = "nbd_get_handshake_flags(3) nbd_get_tls_negotiated(3) "
                "nbd_get_structured_replies_negotiated(3)",
  },
  {
    .name = "get_canonical_export_name",
    .ret = RET_STRING,
    .permitted = INFO_STATES,
    .version = "1.4",
    .summary = "return the canonical export name, if the server has one",
    .description =
      "Return a copy of the canonical export name that the server "
      "reported for the export in use.  It may equal the name the client "
      "asked for (via L<nbd_set_export_name(3)> or "
      "L<nbd_connect_uri(3)>), but often differs, in particular when the "
      "default export (the empty name C<\"\">) was requested.  The caller "
      "must free the returned string.\n\n"
      FULL_INFO_NOTE ("this name", "no name"),
    .see_also = "nbd_set_full_info(3) nbd_get_export_name(3) "
                "nbd_set_export_name(3) nbd_get_export_description(3) "
                "nbd_opt_info(3)",
  },
  {
    .name = "get_export_description",
    .ret = RET_STRING,
    .permitted = INFO_STATES,
    .version = "1.4",
    .summary = "return the export description, if the server has one",
    .description =
      "Return a copy of the free-form, human readable description that "
      "the server attached to the export in use (for example the text "
      "given to C<qemu-nbd -D>).  The caller must free the returned "
      "string.\n\n"
      FULL_INFO_NOTE ("a description", "none")
      "\n\n"
      "The description comes from the C<NBD_INFO_DESCRIPTION> item "
      "of the reply to C<NBD_OPT_GO> or C<NBD_OPT_INFO>; it "
      "describes the export currently selected, so in option mode it "
      "changes with each L<nbd_opt_info(3)> on a different export.  "
      "It is meant to be shown to people (C<nbdinfo> prints it); "
      "programs should not parse it.",
    .see_also = "nbd_set_full_info(3) nbd_get_canonical_export_name(3) "
                "nbd_opt_list(3) nbd_opt_info(3)",
  },
  {
    .name = "get_structured_replies_negotiated",
    .ret = RET_BOOL,
    .permitted = INFO_STATES,
    .version = "1.2",
    .summary = "see if structured replies are in use",
    .description =
      "Return true when structured replies are in use on this "
      "connection, either because the server accepted "
      "C<NBD_OPT_STRUCTURED_REPLY> or because extended headers were "
      "negotiated (which imply them).  Without structured replies, "
      "features such as block status, C<LIBNBD_CMD_FLAG_DF> and sparse "
      "reads are unavailable.\n\n"
      "Once set, the result stays true for the rest of the connection, "
      "even if a later L<nbd_opt_structured_reply(3)> is refused by the "
      "server as a duplicate.  Whether libnbd asks for structured "
      "replies is controlled by L<nbd_set_request_structured_replies(3)>."
      "\n\n"
      "Before the handshake has got as far as the option phase the "
      "result is false.  In option mode it can be read at any time "
      "while negotiating, for instance after an explicit "
      "L<nbd_opt_structured_reply(3)>.  With an oldstyle server, or "
      "a server that is not fixed newstyle, it is always false, "
      "since such servers cannot be asked.",
    .see_also = "nbd_set_request_structured_replies(3) "
                "nbd_get_request_structured_replies(3) "
                "nbd_opt_structured_reply(3) "
                "nbd_get_extended_headers_negotiated(3) nbd_can_df(3)",
  },
  {
    .name = "get_extended_headers_negotiated",
    .ret = RET_BOOL,
    .permitted = INFO_STATES,
    .version = "1.18",
    .summary = "see if extended headers are in use",
    .description =
      "Return true when the server accepted C<NBD_OPT_EXTENDED_HEADERS>, "
      "so requests and replies on this connection use the extended "
      "header layout.  Like structured replies, the result is sticky: it "
      "stays true even if a repeated L<nbd_opt_extended_headers(3)> is "
      "refused later.\n\n"
      "Without extended headers every command length must fit in 32 "
      "bits, even though the API takes 64-bit lengths; with them, the "
      "limits reported by L<nbd_get_block_size(3)> still apply.  When "
      "they are in use, L<nbd_block_status_64(3)> is preferable to "
      "L<nbd_block_status(3)> for any context that may produce 64-bit "
      "status values (none of the C<LIBNBD_CONTEXT_*> contexts do).",
    .see_also = "nbd_set_request_extended_headers(3) "
                "nbd_get_request_extended_headers(3) "
                "nbd_opt_extended_headers(3) "
                "nbd_get_structured_replies_negotiated(3) "
                "nbd_block_status_64(3) nbd_get_block_size(3)",
  },
  {
    .name = "aio_command_completed",
    .args = { A_UINT64 ("cookie") },
    .ret = RET_BOOL,
    .permitted = 0,
    .version = "1.0",
    .summary = "check if the command completed",
    .description =
      "Check whether the asynchronous command identified by C<cookie> (the "
      "positive value returned by a call such as L<nbd_aio_pread(3)>) has "
      "finished, and if so retire it.\n\n"
      "- If it finished successfully, it is retired and the call returns "
      "true.\n"
      "- If it is still in flight (or the cookie is not among the "
      "finished, unretired commands), the call returns false and nothing "
      "changes.\n"
      "- If it finished with an error, it is retired as well, and the "
      "call returns -1 with errno set to the command's error (for "
      "example C<EIO> for a read the server never supplied data for, or "
      "C<ENOTCONN> for a command abandoned by a disconnect).\n\n"
      "A cookie of 0 is rejected with C<EINVAL>.  A command whose "
      "completion callback returned 1 is retired automatically and can "
      "no longer be found here.  Use L<nbd_aio_peek_command_completed(3)> "
      "to learn which cookie to ask about."
      "\n\n"
      "This call is how a program without completion callbacks "
      "learns the result of an asynchronous command; the blocking "
      "calls such as L<nbd_pread(3)> do the same internally and "
      "retire their own commands, so their cookies are never seen "
      "here.  It does not wait and does not read from the socket: "
      "drive the handle (L<nbd_poll(3)>, L<nbd_aio_notify_read(3)>) "
      "until the command has finished.  A command must be retired "
      "once for its memory to be released, unless the handle is "
      "closed.",
    .see_also = "nbd_aio_peek_command_completed(3) nbd_aio_in_flight(3) "
                "nbd_aio_pread(3) nbd_aio_pwrite(3) nbd_poll(3)",
  },
  {
    .name = "aio_peek_command_completed",
    .ret = RET_INT64,
    .permitted = 0,
    .version = "1.0",
    .summary = "check if any command has completed",
    .description =
      "Return the cookie of the oldest command that has finished but "
      "has not been retired yet, without retiring it.  Pass that cookie "
      "to L<nbd_aio_command_completed(3)> to retire the command and find "
      "out whether it succeeded.\n\n"
      "If commands are still queued or awaiting replies but none has "
      "finished, the call returns 0.  If there are no commands at all, "
      "neither pending nor finished, it fails with C<EINVAL>."
      "\n\n"
      "This lets a program that does not use completion callbacks "
      "find out which command to retire next, without keeping its "
      "own list of cookies:\n\n"
      "  int64_t cookie;\n"
      "  while ((cookie = nbd_aio_peek_command_completed (nbd)) > 0) {\n"
      "    int r = nbd_aio_command_completed (nbd, cookie);\n"
      "    /* r is 1 for success; -1 means the command failed */\n"
      "  }\n\n"
      "Commands whose completion callback returned 1 were retired at "
      "once and never show up here.  The call only looks at the "
      "handle's lists; it never waits and never reads from the "
      "socket, so replies still unread on the socket are not seen "
      "until the handle is driven again (L<nbd_poll(3)>, "
      "L<nbd_aio_notify_read(3)>).",
    .see_also = "nbd_aio_command_completed(3) nbd_aio_in_flight(3) "
                "nbd_poll(3)",
  },
  {
    .name = "aio_in_flight",
    .ret = RET_INT,
    .permitted = ST_CONNECTED | ST_CLOSED | ST_DEAD,
    .version = "1.0",
    .summary = "check how many aio commands are still in flight",
    .description =
      "Return how many asynchronous commands have been submitted but not "
      "yet answered by the server, counting both those still waiting to "
      "be sent and those awaiting a reply.  Commands that have finished "
      "but not yet been retired with L<nbd_aio_command_completed(3)> are "
      "not counted.\n\n"
      "Disconnecting with L<nbd_aio_disconnect(3)> or L<nbd_shutdown(3)> "
      "does not wait for these commands.  If the server closes the "
      "connection without answering them, they finish with the error "
      "C<ENOTCONN>, as reported by L<nbd_aio_command_completed(3)>."
      "\n\n"
      "The count is handy in an event loop to decide whether there "
      "is anything to wait for, and to bound the number of requests "
      "kept outstanding at once (many servers cope best with a few "
      "dozen).  An C<NBD_CMD_DISC> queued by "
      "L<nbd_aio_disconnect(3)> is not counted.  The call only reads "
      "the handle's state and cannot fail once the handle is "
      "connected.",
    .see_also = "nbd_aio_command_completed(3) "
                "nbd_aio_peek_command_completed(3) nbd_aio_disconnect(3) "
                "nbd_shutdown(3)",
  },
  { .name = NULL }
};
