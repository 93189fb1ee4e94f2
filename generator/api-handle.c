/* libnbd API description: handle lifetime, errors, debugging and the
 * settings stored in a handle before (or while) connecting.
 */
#include "api.h"

/* Closing paragraph of the TLS settings. */
#define TLS_SETTING_NOTE \
  "Only meaningful when TLS is enabled with L<nbd_set_tls(3)>; it may be " \
  "called even without TLS support."

/* Flag-set setters: what the _MASK constant covers. */
#define MASK_NOTE(mask) \
  "C<" mask "> covers every bit of this build; other bits fail with " \
  "C<EINVAL>."

/* Flag-set getters. */
#define NEWER_BITS_NOTE \
  "Newer library versions may return bits not known when the " \
  "application was compiled."

/* nbd_get_request_<feature>: name, first version, summary, the
 * feature in words and as it appears in the setter's and the
 * nbd_get_<feature>_negotiated call's names, and the nbd_opt_* call
 * that requests it by hand.
 */
#define GET_REQUEST_CALL(nm, ver, summ, what, feature, opt) \
  { \
    .name = nm, \
    .ret = RET_BOOL, \
    .version = ver, \
    .summary = summ, \
    .description = \
      "Report whether the handle will ask the server for " what " " \
      "during the newstyle handshake.  This is true on a new handle " \
      "and false once L<nbd_set_request_" feature "(3)> was called " \
      "with false.\n\n" \
      "The value describes the client's intention only.  The request " \
      "needs a fixed newstyle server, and the server may refuse it, " \
      "so whether " what " are in use on the connection is told by " \
      "L<nbd_get_" feature "_negotiated(3)> once the handshake has " \
      "got that far.  The setting cannot change after connecting " \
      "starts; in option mode the feature can still be requested by " \
      "hand with L<nbd_opt_" opt "(3)>.", \
    .see_also = "nbd_set_request_" feature "(3) " \
      "nbd_get_" feature "_negotiated(3) nbd_opt_" opt "(3)", \
    .cannot_fail = true, \
  }

/* The nbd_stats_* counters: name, summary, description, see-also. */
#define STATS_CALL(nm, summ, desc, also) \
  { \
    .name = nm, \
    .ret = RET_UINT64, \
    .version = "1.16", \
    .summary = summ, \
    .description = desc, \
    .see_also = also, \
    .cannot_fail = true, \
  }

/* How and when every nbd_stats_* counter may be read. */
#define STATS_READ_NOTE \
  "The counter only grows: it is never reset on this handle, and it " \
  "can still be read after the connection has been shut down or has " \
  "died, which suits a summary printed at the end of a program or a " \
  "test checking how much traffic an operation caused.  Reading it " \
  "takes the handle's lock only briefly and sends nothing, so it may " \
  "be called from any thread at any time; the four counters are not " \
  "read together atomically, though, so while other threads are " \
  "issuing commands their values may be slightly out of step."

#define STATS_BYTES_DESC(moved, header, payload, tls) \
  "Return the total number of bytes the client has " moved " the server " \
  "on this handle so far, counting handshake traffic, " header " headers " \
  "and " payload " payloads.  It is 0 before connecting.\n\n" \
  "With TLS the count is of the data " tls " the TLS layer, not of " \
  "the encrypted bytes on the wire.\n\n" \
  STATS_READ_NOTE

#define STATS_CHUNKS_DESC(moved, examples) \
  "Return how many chunks the client has " moved " so far.  A chunk is a " \
  "unit of the protocol that begins with a magic number and cannot be " \
  "split further, such as " examples "\n\n" \
  "The count bears no fixed relation to the number of API calls made or " \
  "to the number of network packets.\n\n" \
  STATS_READ_NOTE

const struct call api_handle_calls[] = {
  /* ---- Handle lifetime and error reporting ---- */
  {
    .name = "create",
    .ret = RET_HANDLE,
    .version = "1.0",
    .summary = "create a libnbd handle",
    .description =
      "Allocate a fresh handle in the created state, with every setting at its "
      "default.  The handle is the first argument of nearly every other call, "
      "and a single handle describes at most one connection to one NBD server.\n\n"
      "When the environment variable C<LIBNBD_DEBUG> is C<1> the new handle "
      "starts with debugging enabled (see L<nbd_set_debug(3)>).\n\n"
      "On failure (normally C<ENOMEM>) C<NULL> is returned; the reason can be "
      "read with L<nbd_get_error(3)> and L<nbd_get_errno(3)>.  Release the "
      "handle with L<nbd_close(3)> when done."
      "\n\n"
      "Creating a handle does not touch the network: settings such "
      "as L<nbd_set_export_name(3)>, L<nbd_set_tls(3)> or "
      "L<nbd_add_meta_context(3)> are made on the new handle, and "
      "then one connect call (L<nbd_connect_uri(3)>, "
      "L<nbd_connect_unix(3)>, ...) uses it.  A handle cannot be "
      "reconnected once its connection has ended; create a new one "
      "instead.  Handles are independent of each other, so a program "
      "may use many at once, each from its own thread or all from "
      "one event loop.  Besides C<LIBNBD_DEBUG>, this library reads "
      "the environment variables C<LIBNBD_REQUEST_TIMEOUT> and "
      "C<LIBNBD_CONNECT_TIMEOUT> here (see L<libnbd-ext(3)>).\n\n"
      "  struct nbd_handle *nbd = nbd_create ();\n"
      "  if (nbd == NULL) {\n"
      "    fprintf (stderr, \"%s\\n\", nbd_get_error ());\n"
      "    exit (EXIT_FAILURE);\n"
      "  }",
    .see_also = "nbd_close(3) nbd_get_error(3) nbd_get_errno(3) nbd_set_handle_name(3) "
      "libnbd(3)",
    .no_handle = true,
    .handwritten = true,
  },
  {
    .name = "close",
    .ret = RET_VOID,
    .version = "1.0",
    .summary = "close a libnbd handle",
    .description =
      "Tear down the handle: drop any connection to the server, reap a "
      "subprocess started by L<nbd_connect_command(3)> or "
      "L<nbd_connect_systemd_socket_activation(3)> (which may block until it "
      "exits), run the free functions of every closure still registered, and "
      "release all memory.  Passing C<NULL> is allowed and does nothing.\n\n"
      "Commands that were still in flight, or that completed but were never "
      "retired with L<nbd_aio_command_completed(3)>, are discarded and their "
      "status is lost.  Call L<nbd_shutdown(3)> first for an orderly "
      "disconnect.\n\n"
      "No other thread may be using the handle while, or after, it is "
      "closed."
      "\n\n"
      "In-flight commands are abandoned without running their "
      "completion callbacks; the C<free> functions of their closures "
      "are still called, exactly once.  The handle pointer is "
      "invalid after the call.  For a subprocess the socket is "
      "closed first, which makes a well-behaved server exit, and the "
      "call then waits for it; use L<nbd_kill_subprocess(3)> "
      "beforehand for a server that does not exit by itself.",
    .see_also = "nbd_create(3) nbd_shutdown(3) nbd_aio_command_completed(3)",
    .handwritten = true,
    .null_handle_ok = true,
  },
  {
    .name = "get_error",
    .ret = RET_STATIC_STRING,
    .version = "1.0",
    .summary = "return the last error message",
    .description =
      "Return the text describing why the most recent failing libnbd call made "
      "by the calling thread failed.  Error state is kept per thread, not per "
      "handle, so this also works after L<nbd_create(3)> returned C<NULL>.\n\n"
      "Read it straight after the failure: the string belongs to the library "
      "and is replaced or freed by the next libnbd call from the same thread, "
      "so copy it if it must be kept.  If no call has failed in this thread "
      "the result may be C<NULL>."
      "\n\n"
      "A typical use prints it at once after a failure:\n\n"
      "  if (nbd_pread (nbd, buf, sizeof buf, 0, 0) == -1) {\n"
      "    fprintf (stderr, \"read failed: %s\\n\", nbd_get_error ());\n"
      "    exit (EXIT_FAILURE);\n"
      "  }\n\n"
      "The message usually starts with the name of the failing call "
      "(for example C<nbd_pread:>) followed by the reason.  Its "
      "wording is for people and may change between versions; "
      "programs that need to tell errors apart should use "
      "L<nbd_get_errno(3)>.  A failure inside a completion "
      "callback's command is not reported here but through the "
      "callback's C<*error> or L<nbd_aio_command_completed(3)>.",
    .see_also = "nbd_get_errno(3) nbd_create(3) libnbd(3)",
    .cannot_fail = true,
    .no_handle = true,
    .handwritten = true,
  },
  {
    .name = "get_errno",
    .ret = RET_INT,
    .version = "1.0",
    .summary = "return the last error number",
    .description =
      "Return the C<errno> value recorded by the most recent failing libnbd "
      "call in the calling thread, using the usual codes from "
      "C<errno.h>.  Like L<nbd_get_error(3)> this is thread-local "
      "and must be read straight after the failure.\n\n"
      "Some failures have no matching error number, so the result can be 0 "
      "even after an error: as in libnbd, a server that breaks the "
      "protocol, ends the stream during the handshake or in the middle "
      "of a reply, or breaks the TLS record layer is described only by "
      "L<nbd_get_error(3)>."
      "\n\n"
      "Error numbers are set only when a call fails; a successful "
      "call does not reset them, so only read this value right after "
      "a call reported failure (-1 or C<NULL>).  The values used "
      "follow the usual meanings: for instance C<EINVAL> for a call "
      "made in the wrong state or with a bad argument, C<EFAULT> for "
      "a C<NULL> pointer, C<ENOTSUP> for a feature the server or the "
      "build lacks, C<EDEADLK> for a waiting call made from a "
      "callback, and the server's own errors translated into "
      "C<errno> values.  Each call's page lists the ones it can "
      "produce.",
    .see_also = "nbd_get_error(3) libnbd(3)",
    .cannot_fail = true,
    .no_handle = true,
    .handwritten = true,
  },

  /* ---- Debugging ---- */
  {
    .name = "set_debug",
    .args = { A_BOOL ("debug") },
    .ret = RET_ERR,
    .version = "1.0",
    .summary = "set or clear the debug flag",
    .description =
      "Turn debug messages for this handle on (C<debug> true) or "
      "off.  While enabled, the library reports what it is doing: "
      "each API call entered and its result, state changes, and "
      "summaries of the protocol traffic (options sent, replies "
      "received, commands issued).  Each message is prefixed with "
      "the handle name (L<nbd_set_handle_name(3)>) and goes to the "
      "callback installed by L<nbd_set_debug_callback(3)>, or to "
      "C<stderr> if there is none.\n\n"
      "New handles start with debugging off, unless the environment "
      "variable C<LIBNBD_DEBUG> was exactly C<1> when "
      "L<nbd_create(3)> ran, which is the usual way to get a trace "
      "from an unchanged program:\n\n"
      "  LIBNBD_DEBUG=1 nbdinfo nbd://localhost\n\n"
      "Debug output may be voluminous and can contain export names "
      "and other details of the connection, but never the data read "
      "or written.  The call may be made in any state and cannot "
      "fail for a valid handle.",
    .see_also = "nbd_get_debug(3) nbd_set_debug_callback(3) nbd_set_handle_name(3)",
  },
  {
    .name = "get_debug",
    .ret = RET_BOOL,
    .version = "1.0",
    .summary = "return the state of the debug flag",
    .description =
      "Report whether this handle currently produces debug messages: "
      "true after L<nbd_set_debug(3)> was called with true, or when "
      "the environment variable C<LIBNBD_DEBUG> was exactly C<1> at "
      "the time L<nbd_create(3)> made the handle; false otherwise.\n\n"
      "A program can use it, for example, to decide whether it is "
      "worth building an expensive diagnostic of its own, or to save "
      "and later restore the setting around a noisy section.  The "
      "flag only controls whether messages are produced; where they "
      "go is decided by L<nbd_set_debug_callback(3)>.",
    .see_also = "nbd_set_debug(3)",
    .cannot_fail = true,
  },
  {
    .name = "set_debug_callback",
    .args = { A_CLOSURE ("debug") },
    .ret = RET_ERR,
    .version = "1.0",
    .summary = "set the debug callback",
    .description =
      "Route this handle's debug messages to a function of your own instead "
      "of C<stderr>.  The callback is given the closure's C<user_data>, a "
      "C<context> string naming the libnbd call that produced the message, and "
      "the message text C<msg>; both strings are only valid during the call.  "
      "Messages are only produced while debugging is on (see "
      "L<nbd_set_debug(3)>).\n\n"
      "Installing a callback replaces (and frees) any previous one.  The "
      "callback runs while the handle lock is held, from the middle of "
      "other calls: it should only format or store the message, not call "
      "libnbd functions on the same handle.  A closure with both "
      "C<callback> and C<free> NULL is rejected with C<EFAULT>; one with "
      "only C<free> is accepted (messages then go nowhere) and freed when "
      "replaced, cleared or at close."
      "\n\n"
      "The callback's return value is ignored.  A program that wants "
      "the messages in its own log, tagged with the call they came "
      "from, might do:\n\n"
      "  static int\n"
      "  log_debug (void *user_data, const char *context, const char *msg)\n"
      "  {\n"
      "    FILE *log = user_data;\n"
      "    fprintf (log, \"libnbd: %s: %s\\n\", context, msg);\n"
      "    return 0;\n"
      "  }\n\n"
      "  nbd_set_debug (nbd, true);\n"
      "  nbd_set_debug_callback (nbd, (nbd_debug_callback) {\n"
      "                                 .callback = log_debug,\n"
      "                                 .user_data = logfile });\n\n"
      "The closure's C<free> function, if one is given, is the place "
      "to release C<user_data>; it runs exactly once, when the "
      "callback is replaced, cleared with "
      "L<nbd_clear_debug_callback(3)>, or the handle is closed.",
    .see_also = "nbd_clear_debug_callback(3) nbd_set_debug(3) nbd_get_debug(3)",
  },
  {
    .name = "clear_debug_callback",
    .ret = RET_ERR,
    .version = "1.0",
    .summary = "clear the debug callback",
    .description =
      "Remove the debug callback installed by "
      "L<nbd_set_debug_callback(3)>.  Its C<free> function, if any, "
      "runs at once with the closure's C<user_data>, and from then "
      "on debug messages are written to C<stderr> again (provided "
      "debugging is on, see L<nbd_set_debug(3)>).\n\n"
      "When no callback is installed the call does nothing and still "
      "succeeds.  It does not change the debug flag itself: to "
      "silence the handle, call L<nbd_set_debug(3)> with false.  "
      "Closing the handle with L<nbd_close(3)> frees the callback "
      "too, so this call is only needed to stop using a callback "
      "while the handle lives on.",
    .see_also = "nbd_set_debug_callback(3) nbd_set_debug(3)",
  },
  {
    .name = "set_handle_name",
    .args = { A_STRING ("handle_name") },
    .ret = RET_ERR,
    .version = "1.0",
    .summary = "set the handle name",
    .description =
      "Give the handle a name of your choosing, which replaces the "
      "one chosen by L<nbd_create(3)> (C<nbd1>, C<nbd2>, and so on, "
      "numbered in the order handles are created in the process).  "
      "The name is the prefix of every debug message the handle "
      "produces, so a program using several handles, for instance "
      "one per server or per thread, can tell their messages apart; "
      "it does not affect the protocol in any way.\n\n"
      "The string is copied, so the caller may free or reuse "
      "C<handle_name> afterwards.  The only failures are a C<NULL> "
      "string (C<EFAULT>) and running out of memory (C<ENOMEM>).  "
      "L<nbd_get_handle_name(3)> returns the current name.",
    .see_also = "nbd_get_handle_name(3) nbd_set_debug(3)",
  },
  {
    .name = "get_handle_name",
    .ret = RET_STRING,
    .version = "1.0",
    .summary = "get the handle name",
    .description =
      "Return the name the handle uses as the prefix of its debug "
      "messages.  It is the string last given to "
      "L<nbd_set_handle_name(3)>, or, if that was never called, the "
      "name chosen by L<nbd_create(3)>: C<nbd> followed by a counter "
      "that grows with every handle the process creates (C<nbd1>, "
      "C<nbd2>, ...).\n\n"
      "The result is a newly allocated copy which the caller must "
      "release with L<free(3)>; changing the name later does not "
      "affect strings already returned.  The only failure is running "
      "out of memory (C<ENOMEM>).",
    .see_also = "nbd_set_handle_name(3)",
  },
  {
    .name = "set_private_data",
    .args = { A_UINTPTR ("private_data") },
    .ret = RET_UINTPTR,
    .version = "1.8",
    .summary = "set the per-handle private data",
    .description =
      "Store a value of the program's choosing in the handle, and "
      "return the value stored before (0 on a new handle).  libnbd "
      "never reads, frees or changes it; it is simply kept until "
      "replaced or until the handle is closed, and "
      "L<nbd_get_private_data(3)> returns it.\n\n"
      "C<uintptr_t> is wide enough for a pointer, so a program can "
      "attach its own per-connection structure to the handle and "
      "find it again where only the handle is at hand, such as in a "
      "function shared by all connections.  Language bindings may "
      "use the value for their own purposes, or only offer the "
      "integer form.  Since the library does not own what the value "
      "points to, the program must free that itself, typically just "
      "before L<nbd_close(3)>.",
    .see_also = "nbd_get_private_data(3)",
    .cannot_fail = true,
  },
  {
    .name = "get_private_data",
    .ret = RET_UINTPTR,
    .version = "1.8",
    .summary = "get the per-handle private data",
    .description =
      "Return the value last stored in the handle with "
      "L<nbd_set_private_data(3)>, or 0 if nothing was ever stored.  "
      "The library never reads or changes this value itself, so it "
      "comes back exactly as it was stored.\n\n"
      "A typical use is to find the application's own per-connection "
      "structure from code that is only given the handle: store a "
      "pointer cast to C<uintptr_t> after L<nbd_create(3)> and cast "
      "it back here.\n\n"
      "  struct conn *c = (struct conn *) nbd_get_private_data (nbd);",
    .see_also = "nbd_set_private_data(3)",
    .cannot_fail = true,
  },

  /* ---- Export and negotiation settings ---- */
  {
    .name = "set_export_name",
    .args = { A_STRING ("export_name") },
    .ret = RET_ERR,
    .permitted = ST_CREATED | ST_NEGOTIATING,
    .version = "1.0",
    .summary = "set the export name",
    .description =
      "Choose which export to ask the server for.  The default is the empty "
      "string, which servers treat as their default export.  Export names "
      "are UTF-8 and only matter for newstyle servers; the oldstyle protocol "
      "has no notion of them.\n\n"
      "Normally this is set before connecting.  With option mode enabled "
      "(L<nbd_set_opt_mode(3)>) it may also be changed while negotiating, for "
      "example after learning the available names from L<nbd_opt_list(3)>, "
      "and before L<nbd_opt_info(3)> or L<nbd_opt_go(3)>.  "
      "L<nbd_connect_uri(3)> sets it from the URI path, so this call is not "
      "needed there.\n\n"
      "Switching to a different name forgets what was learned about the "
      "previous export (its size and flags from L<nbd_opt_info(3)>, its "
      "meta contexts): L<nbd_get_size(3)> fails again until the next "
      "L<nbd_opt_info(3)> or L<nbd_opt_go(3)>.  Setting the name already "
      "in use changes nothing.\n\n"
      "Names longer than the protocol limit of 4096 bytes fail with "
      "C<ENAMETOOLONG> (servers may accept less).",
    .see_also = "nbd_get_export_name(3) nbd_connect_uri(3) nbd_set_opt_mode(3) "
      "nbd_opt_go(3) nbd_opt_info(3) nbd_opt_list(3) nbd_get_canonical_export_name(3)",
  },
  {
    .name = "get_export_name",
    .ret = RET_STRING,
    .version = "1.0",
    .summary = "get the export name",
    .description =
      "Return the name of the export that the handle asks the server "
      "for: the string set with L<nbd_set_export_name(3)>, the path "
      "taken from a URI by L<nbd_connect_uri(3)>, or the empty "
      "string (the server's default export) on a new handle.  The "
      "result is newly allocated and the caller must free it; the "
      "only failure is C<ENOMEM>.\n\n"
      "This is the client's request, not necessarily the server's "
      "name for the export.  After L<nbd_set_full_info(3)> the name "
      "the server uses can be read with "
      "L<nbd_get_canonical_export_name(3)>, which often differs when "
      "the default export C<\"\"> was requested.",
    .see_also = "nbd_set_export_name(3) nbd_connect_uri(3) "
      "nbd_get_canonical_export_name(3)",
  },
  {
    .name = "set_request_block_size",
    .args = { A_BOOL ("request") },
    .ret = RET_ERR,
    .permitted = ST_CREATED | ST_NEGOTIATING,
    .version = "1.12",
    .summary = "control whether NBD_OPT_GO requests block size",
    .description =
      "Decide whether the client tells the server, during C<NBD_OPT_INFO> and "
      "C<NBD_OPT_GO>, that it wants to hear the export's block size "
      "constraints.  This is on by default.  Turning it off imitates an older "
      "client, which is useful for testing servers; some servers then refuse "
      "the export rather than risk unaligned requests.\n\n"
      "A server may report block sizes whether or not they were requested, "
      "and may decline to report them even when asked.  Whatever is reported "
      "is visible through L<nbd_get_block_size(3)> and is enforced on "
      "requests unless L<nbd_set_strict_mode(3)> relaxes alignment checks.",
    .see_also = "nbd_get_request_block_size(3) nbd_get_block_size(3) "
      "nbd_set_full_info(3) nbd_set_strict_mode(3)",
  },
  {
    .name = "get_request_block_size",
    .ret = RET_BOOL,
    .version = "1.12",
    .summary = "see if NBD_OPT_GO requests block size",
    .description =
      "Report whether the handle asks the server for the export's "
      "block size constraints (minimum, preferred and maximum block "
      "sizes) while negotiating: true unless "
      "L<nbd_set_request_block_size(3)> turned it off.  On the wire "
      "the request is an C<NBD_INFO_BLOCK_SIZE> item in the "
      "C<NBD_OPT_GO> or C<NBD_OPT_INFO> option.\n\n"
      "This only tells what the client will ask; the sizes the "
      "server actually reported are read with "
      "L<nbd_get_block_size(3)> once the export has been selected.",
    .see_also = "nbd_set_request_block_size(3) nbd_get_block_size(3)",
  },
  {
    .name = "set_full_info",
    .args = { A_BOOL ("request") },
    .ret = RET_ERR,
    .permitted = ST_CREATED | ST_NEGOTIATING,
    .version = "1.4",
    .summary = "control whether NBD_OPT_GO requests extra details",
    .description =
      "When C<request> is true, the client also asks the server for optional "
      "details about the export, namely its canonical name (see "
      "L<nbd_get_canonical_export_name(3)>) and its human readable "
      "description (see L<nbd_get_export_description(3)>).  By default only "
      "the information needed for I/O is requested.\n\n"
      "This is only a hint: the server may still omit the details, and "
      "information libnbd does not understand is ignored.  Block size "
      "information is governed separately by "
      "L<nbd_set_request_block_size(3)>."
      "\n\n"
      "On the wire the request adds C<NBD_INFO_NAME> and "
      "C<NBD_INFO_DESCRIPTION> to the list of information items sent "
      "with C<NBD_OPT_GO> and C<NBD_OPT_INFO>; nothing changes for "
      "oldstyle servers or the old C<NBD_OPT_EXPORT_NAME> path, "
      "which cannot carry such requests.  Set it before connecting, "
      "or in option mode before L<nbd_opt_info(3)> or "
      "L<nbd_opt_go(3)>; tools that list exports, such as C<nbdinfo "
      "--list>, turn it on to show each export's description.",
    .see_also = "nbd_get_full_info(3) nbd_get_canonical_export_name(3) "
      "nbd_get_export_description(3) nbd_set_request_block_size(3) nbd_opt_info(3)",
  },
  {
    .name = "get_full_info",
    .ret = RET_BOOL,
    .version = "1.4",
    .summary = "see if NBD_OPT_GO requests extra details",
    .description =
      "Report whether the handle asks the server for the optional "
      "export details, that is the canonical name (C<NBD_INFO_NAME>) "
      "and the description (C<NBD_INFO_DESCRIPTION>), when it sends "
      "C<NBD_OPT_GO> or C<NBD_OPT_INFO>.  The value is false on a "
      "new handle and true after L<nbd_set_full_info(3)> was called "
      "with true.\n\n"
      "Asking does not oblige the server to answer: whether the "
      "details arrived shows in L<nbd_get_canonical_export_name(3)> "
      "and L<nbd_get_export_description(3)>.",
    .see_also = "nbd_set_full_info(3) nbd_get_canonical_export_name(3) "
      "nbd_get_export_description(3)",
  },

  /* ---- TLS ---- */
  {
    .name = "set_tls",
    .args = { A_ENUM ("tls", "tls") },
    .ret = RET_ERR,
    .permitted = ST_CREATED,
    .version = "1.0",
    .summary = "enable or require TLS (authentication and encryption)",
    .description =
      "Select whether the connection uses TLS.  C<tls> is one of:\n\n"
      "- C<LIBNBD_TLS_DISABLE>: plain text only.  This is the default (a "
      "C<nbds:> URI given to L<nbd_connect_uri(3)> changes it).  It is also "
      "the setting to use when driving a server in option mode and upgrading "
      "by hand with L<nbd_opt_starttls(3)>.\n"
      "- C<LIBNBD_TLS_ALLOW>: try TLS, but carry on without encryption or "
      "authentication if the server does not offer it.  This is "
      "opportunistic and not secure; some servers hang up instead of "
      "falling back.\n"
      "- C<LIBNBD_TLS_REQUIRE>: the connection fails unless TLS is "
      "successfully negotiated and the peer authenticated.\n\n"
      "Credentials come from L<nbd_set_tls_certificates(3)>, or from "
      "L<nbd_set_tls_psk_file(3)> together with L<nbd_set_tls_username(3)>.  "
      "Values outside the enum fail with C<EINVAL>; asking for anything but "
      "C<LIBNBD_TLS_DISABLE> in a build without TLS support fails with "
      "C<ENOTSUP> (check with L<nbd_supports_tls(3)>).",
    .see_also = "nbd_get_tls(3) nbd_get_tls_negotiated(3) nbd_set_tls_certificates(3) "
      "nbd_set_tls_psk_file(3) nbd_set_tls_username(3) nbd_set_tls_verify_peer(3) "
      "nbd_set_tls_hostname(3) nbd_supports_tls(3) nbd_opt_starttls(3)",
  },
  {
    .name = "get_tls",
    .ret = RET_ENUM,
    .ret_set = "tls",
    .version = "1.0",
    .summary = "get the TLS request setting",
    .description =
      "Return the handle's TLS policy: C<LIBNBD_TLS_DISABLE> (the "
      "default), C<LIBNBD_TLS_ALLOW> or C<LIBNBD_TLS_REQUIRE>, as "
      "chosen with L<nbd_set_tls(3)> or by the scheme of a URI "
      "passed to L<nbd_connect_uri(3)> (C<nbds:> and its variants "
      "require TLS).\n\n"
      "This is what the client intends, not what happened: with "
      "C<LIBNBD_TLS_ALLOW> the connection may well have ended up "
      "unencrypted, so ask L<nbd_get_tls_negotiated(3)> after "
      "connecting to learn whether TLS is in use.",
    .see_also = "nbd_set_tls(3) nbd_get_tls_negotiated(3)",
    .cannot_fail = true,
  },
  {
    .name = "set_tls_certificates",
    .args = { A_PATH ("dir") },
    .ret = RET_ERR,
    .permitted = ST_CREATED,
    .version = "1.0",
    .summary = "set the path to the TLS certificates directory",
    .description =
      "Name the directory holding the X.509 files used for certificate based "
      "TLS: C<ca-cert.pem> (the CA that signed the server's certificate), "
      "optionally C<ca-crl.pem>, and the client's certificate and key, "
      "C<client-cert.pem> with C<client-key.pem>.  More client pairs may sit "
      "beside them as C<client-cert-N.pem> with C<client-key-N.pem>, numbered "
      "from 0 up, for example one RSA and one ECDSA certificate, or a "
      "classical and a post-quantum one; all pairs numbered without a gap are "
      "loaded, and the TLS library presents the one that suits the server's "
      "request.  When unset, a "
      "built-in search is used: C</etc/pki/libnbd/> for root, otherwise "
      "C<$HOME/.pki/libnbd> then C<$HOME/.config/pki/libnbd>; if none exists "
      "the system's trusted CAs are used.  So are they when the directory "
      "named here does not exist or holds no C<ca-cert.pem>: that is not an "
      "error in itself, and with verification turned off "
      "(L<nbd_set_tls_verify_peer(3)>) the "
      "connection can still succeed.\n\n"
      TLS_SETTING_NOTE,
    .see_also = "nbd_set_tls(3) nbd_set_tls_verify_peer(3) nbd_set_tls_psk_file(3)",
  },
  {
    .name = "set_tls_verify_peer",
    .args = { A_BOOL ("verify") },
    .ret = RET_ERR,
    .permitted = ST_CREATED,
    .version = "1.0",
    .summary = "set whether we verify the identity of the server",
    .description =
      "Choose whether the server's X.509 certificate is checked "
      "during the TLS handshake.  When C<verify> is true (the "
      "default) the certificate chain must lead to a trusted "
      "certificate authority (the C<ca-cert.pem> of "
      "L<nbd_set_tls_certificates(3)>, or the system's trusted CAs), "
      "and if the handle knows a host name for the server (from "
      "L<nbd_connect_tcp(3)>, a TCP URI or "
      "L<nbd_set_tls_hostname(3)>) the certificate must also be "
      "issued for that name.  Over a Unix socket with no host name "
      "set only the chain is checked.  A failed check makes the "
      "handshake, and therefore the connect call, fail.\n\n"
      "Passing false accepts any certificate, which gives encryption "
      "but no assurance about who is at the other end; it is only "
      "sensible for testing.  The setting has no effect with "
      "pre-shared keys (L<nbd_set_tls_psk_file(3)>), where both "
      "sides prove themselves through the shared key.\n\n"
      TLS_SETTING_NOTE,
    .see_also = "nbd_get_tls_verify_peer(3) nbd_set_tls(3) nbd_set_tls_certificates(3) "
      "nbd_set_tls_hostname(3)",
  },
  {
    .name = "get_tls_verify_peer",
    .ret = RET_BOOL,
    .version = "1.0",
    .summary = "get whether we verify the identity of the server",
    .description =
      "Report whether the server's certificate will be verified "
      "during the TLS handshake: true on a new handle, or whatever "
      "was last given to L<nbd_set_tls_verify_peer(3)> (a URI's "
      "C<tls-verify-peer> parameter sets it too).  See that page for "
      "what the verification checks.\n\n"
      "The value is reported whether or not TLS is enabled; it only "
      "matters once L<nbd_set_tls(3)> asks for TLS with certificates.",
    .see_also = "nbd_set_tls_verify_peer(3)",
    .cannot_fail = true,
  },
  {
    .name = "set_tls_username",
    .args = { A_STRING ("username") },
    .ret = RET_ERR,
    .permitted = ST_CREATED,
    .version = "1.0",
    .summary = "set the TLS username",
    .description =
      "Set the user name the client presents when it authenticates "
      "with a TLS pre-shared key.  The server looks the name up in "
      "its own key file, and the client uses the key stored under "
      "the same name in the file given to "
      "L<nbd_set_tls_psk_file(3)>, so both files must have an entry "
      "for it.  The string is copied.\n\n"
      "When no name is set the client uses the name of the local "
      "user that the program runs as (its effective user ID).  "
      "Certificate based TLS ignores this setting.  A URI passed to "
      "L<nbd_connect_uri(3)> may set it too, through its user part "
      "or the C<tls-username> parameter.\n\n"
      TLS_SETTING_NOTE,
    .see_also = "nbd_get_tls_username(3) nbd_set_tls_psk_file(3) nbd_set_tls(3)",
  },
  {
    .name = "get_tls_username",
    .ret = RET_STRING,
    .version = "1.0",
    .summary = "get the current TLS username",
    .description =
      "Return the user name that will be presented for TLS "
      "pre-shared key authentication: the one set with "
      "L<nbd_set_tls_username(3)> (or by a URI), or, when none was "
      "set, the local user name: the value of the C<LOGNAME> "
      "environment variable if it is set (even to the empty string), "
      "else the name of the user the program runs as, looked "
      "up in the password database from the effective user ID.  The "
      "result is newly allocated and the caller must free it.\n\n"
      "Besides C<ENOMEM>, the call fails when no name was set and "
      "the local user cannot be found in the password database; the "
      "error number is then the one the lookup reported, or "
      "C<ENOENT>.",
    .see_also = "nbd_set_tls_username(3)",
  },
  {
    .name = "set_tls_psk_file",
    .args = { A_PATH ("filename") },
    .ret = RET_ERR,
    .permitted = ST_CREATED,
    .version = "1.0",
    .summary = "set the TLS Pre-Shared Keys (PSK) filename",
    .description =
      "Name the file of pre-shared keys (in the C<username:hexkey> format "
      "written by C<psktool>) used to authenticate with TLS-PSK instead of "
      "certificates.  There is no default: PSK authentication is not "
      "attempted unless a file is given.  The key is looked up under the "
      "name from L<nbd_set_tls_username(3)>.\n\n"
      TLS_SETTING_NOTE
      "\n\n"
      "The file is only read when the TLS handshake starts, during a "
      "connect call; it is not checked here.  The connect call then "
      "fails if the file cannot be opened or read (with the error "
      "number from the system, such as C<ENOENT> or C<EACCES>), or "
      "with C<EINVAL> when the file has no entry for the user name "
      "or the key is not valid hexadecimal.  Keep the file readable "
      "only by the user running the program, since it holds secrets.",
    .see_also = "nbd_set_tls_username(3) nbd_set_tls(3) nbd_set_uri_allow_local_file(3)",
  },
  {
    .name = "set_tls_hostname",
    .args = { A_STRING ("hostname") },
    .ret = RET_ERR,
    .permitted = ST_CREATED,
    .version = "1.22",
    .summary = "set the TLS hostname",
    .description =
      "Override the server name that TLS uses to check the server's "
      "certificate.  Normally the host given to a connect call such as "
      "L<nbd_connect_tcp(3)> is used, and there is none at all for "
      "connections like L<nbd_connect_unix(3)>.  Setting it is handy when the "
      "socket leads to a proxy and the certificate belongs to the real "
      "server behind it.\n\n"
      TLS_SETTING_NOTE
      "\n\n"
      "The name is also sent in the TLS handshake as the server name "
      "indication, so that a server hosting several names can pick "
      "the right certificate (this is skipped when the name is a "
      "numeric IP address).  Verification still requires "
      "L<nbd_set_tls_verify_peer(3)> to be true, its default.  The "
      "string is copied; L<nbd_get_tls_hostname(3)> reports the name "
      "in effect.",
    .see_also = "nbd_get_tls_hostname(3) nbd_set_tls(3) nbd_set_tls_verify_peer(3)",
  },
  {
    .name = "get_tls_hostname",
    .ret = RET_STRING,
    .version = "1.22",
    .summary = "get the effective TLS hostname",
    .description =
      "Return the host name that TLS checks the server's certificate "
      "against (and sends as the server name indication).  It is the "
      "name set with L<nbd_set_tls_hostname(3)> if any; otherwise "
      "the host the handle connected to with L<nbd_connect_tcp(3)> "
      "or a TCP URI.\n\n"
      "Before connecting, or for connections without a host such as "
      "L<nbd_connect_unix(3)>, L<nbd_connect_socket(3)> or "
      "L<nbd_connect_command(3)>, there may be no name at all: the "
      "result is then the empty string, which is not an error, and "
      "the certificate chain alone is verified.  The string is newly "
      "allocated and must be freed by the caller; the only failure "
      "is C<ENOMEM>.",
    .see_also = "nbd_set_tls_hostname(3)",
  },
  {
    .name = "set_tls_priority",
    .args = { A_STRING ("priority") },
    .ret = RET_ERR,
    .permitted = ST_CREATED,
    .version = "1.24",
    .summary = "set the TLS priority string",
    .description =
      "Choose the GnuTLS priority string for the session: which protocol "
      "versions, ciphers, key exchanges and MACs may be used, and in which "
      "order of preference (the syntax is described under \"Priority "
      "strings\" in the GnuTLS manual).  A handle starts with the default "
      "chosen when libnbd was built with C<./configure "
      "--with-tls-priority=PRIORITY>, or C<NORMAL> if none was chosen.\n\n"
      "The string is only checked when TLS starts: a string GnuTLS does not "
      "accept makes the TLS handshake fail, and the error message shows where "
      "in the string the problem is.  Change it only when you know why; a "
      "priority string taken from an untrusted source can weaken the "
      "connection's security or make GnuTLS read local configuration "
      "files.\n\n"
      "The call works even when libnbd has no TLS support, but the setting "
      "only matters once L<nbd_set_tls(3)> asks for TLS.",
    .see_also = "nbd_get_tls_priority(3) nbd_set_tls(3) "
      "nbd_set_uri_allow_tls_priority(3) nbd_create(3)",
  },
  {
    .name = "get_tls_priority",
    .ret = RET_STRING,
    .version = "1.24",
    .summary = "get the current TLS priority",
    .description =
      "Return the GnuTLS priority string that the handle will use "
      "when a TLS session starts.  It is the string last set with "
      "L<nbd_set_tls_priority(3)> or by a URI's C<tls-priority> "
      "parameter (when L<nbd_set_uri_allow_tls_priority(3)> allows "
      "it), or else the default chosen when the library was built "
      "(C<NORMAL> unless the build picked another).\n\n"
      "The string is returned as stored: it is not checked here, "
      "only when TLS starts.  The result is newly allocated and the "
      "caller must free it; the only failure is C<ENOMEM>.",
    .see_also = "nbd_set_tls_priority(3) nbd_create(3)",
  },

  /* ---- Protocol feature requests ---- */
  {
    .name = "set_request_structured_replies",
    .args = { A_BOOL ("request") },
    .ret = RET_ERR,
    .permitted = ST_CREATED,
    .version = "1.2",
    .summary = "control use of structured replies",
    .description =
      "Decide whether the client asks for structured replies during the "
      "handshake.  This is on by default, and features such as block status "
      "(L<nbd_can_meta_context(3)>) and the C<DF> flag (L<nbd_can_df(3)>) "
      "depend on it.  Turning it off is mainly useful to test how a server "
      "copes with simpler clients.\n\n"
      "Turning it off also stops extended headers from being requested, "
      "whatever L<nbd_set_request_extended_headers(3)> says."
      "\n\n"
      "On the wire the request is C<NBD_OPT_STRUCTURED_REPLY>, sent "
      "during the handshake only to fixed newstyle servers (and only "
      "when extended headers were not agreed, since those imply "
      "structured replies).  A server that refuses it is still "
      "usable, with simple replies.  The setting can only be changed "
      "before connecting; in option mode the request can be made by "
      "hand with L<nbd_opt_structured_reply(3)>, and "
      "L<nbd_get_structured_replies_negotiated(3)> tells what was "
      "agreed.",
    .see_also = "nbd_get_request_structured_replies(3) "
      "nbd_get_structured_replies_negotiated(3) nbd_set_request_extended_headers(3) "
      "nbd_set_handshake_flags(3) nbd_opt_structured_reply(3) nbd_can_meta_context(3) "
      "nbd_can_df(3)",
  },
  GET_REQUEST_CALL ("get_request_structured_replies", "1.2",
                    "see if structured replies are attempted",
                    "structured replies", "structured_replies",
                    "structured_reply"),
  {
    .name = "set_request_extended_headers",
    .args = { A_BOOL ("request") },
    .ret = RET_ERR,
    .permitted = ST_CREATED,
    .version = "1.18",
    .summary = "control use of extended headers",
    .description =
      "Decide whether the client asks for extended headers during the "
      "handshake.  This extension allows 64-bit lengths for zero, trim and "
      "block status requests; it is requested by default.  Turning it off "
      "is mainly useful for testing servers.\n\n"
      "Because extended headers imply structured replies, this setting is "
      "ignored when L<nbd_set_request_structured_replies(3)> is false."
      "\n\n"
      "On the wire the request is C<NBD_OPT_EXTENDED_HEADERS>, sent "
      "during the handshake before the export is selected, and only "
      "to a fixed newstyle server.  If the server refuses, the "
      "client falls back to asking for structured replies, so a "
      "refusal never prevents the connection.  After connecting, "
      "L<nbd_get_extended_headers_negotiated(3)> tells what was "
      "agreed.  The setting can only be changed before connecting "
      "(C<EINVAL> otherwise); in option mode the request can still "
      "be made later by hand with L<nbd_opt_extended_headers(3)>.",
    .see_also = "nbd_get_request_extended_headers(3) "
      "nbd_get_extended_headers_negotiated(3) nbd_set_request_structured_replies(3) "
      "nbd_opt_extended_headers(3)",
  },
  GET_REQUEST_CALL ("get_request_extended_headers", "1.18",
                    "see if extended headers are attempted",
                    "extended headers", "extended_headers",
                    "extended_headers"),
  {
    .name = "set_handshake_flags",
    .args = { A_FLAGS ("flags", "handshake_flags") },
    .ret = RET_ERR,
    .permitted = ST_CREATED,
    .version = "1.2",
    .summary = "control use of handshake flags",
    .description =
      "Restrict which newstyle handshake flags the client is willing to use.  "
      "By default every flag known to libnbd is offered (and used when the "
      "server also advertises it), since dropping one can rule out other "
      "features.  Clearing bits lets you test a server against older "
      "clients.  C<flags> is a bitwise OR of:\n\n"
      "- C<LIBNBD_HANDSHAKE_FLAG_FIXED_NEWSTYLE>: the server tolerates "
      "unknown options; without it the client cannot safely ask for TLS, "
      "structured replies or other extensions.\n"
      "- C<LIBNBD_HANDSHAKE_FLAG_NO_ZEROES>: lets the server skip the zero "
      "padding it would otherwise send when the old C<NBD_OPT_EXPORT_NAME> "
      "path is used.\n\n"
      MASK_NOTE ("LIBNBD_HANDSHAKE_FLAG_MASK") "  To clear one bit only, "
      "start from "
      "L<nbd_get_handshake_flags(3)> rather than a constant, as later "
      "versions may add flags.",
    .see_also = "nbd_get_handshake_flags(3) nbd_set_request_structured_replies(3) "
      "nbd_get_protocol(3)",
  },
  {
    .name = "get_handshake_flags",
    .ret = RET_FLAGS,
    .ret_set = "handshake_flags",
    .version = "1.2",
    .summary = "see which handshake flags are supported",
    .description =
      "Return the handshake flags as a bitmask of C<LIBNBD_HANDSHAKE_FLAG_*> "
      "values.  Before a connection is made this is the set the client is "
      "prepared to use (see L<nbd_set_handshake_flags(3)>); once connected it "
      "is the set both sides actually agreed on.\n\n"
      NEWER_BITS_NOTE
      "\n\n"
      "The flags are only exchanged in the newstyle handshake: with "
      "an oldstyle server none apply.  A program that needs to know "
      "whether the server uses fixed newstyle can look for "
      "C<LIBNBD_HANDSHAKE_FLAG_FIXED_NEWSTYLE> in the result after "
      "connecting, together with L<nbd_get_protocol(3)>.",
    .see_also = "nbd_set_handshake_flags(3) nbd_get_protocol(3) nbd_aio_is_created(3) "
      "nbd_aio_is_ready(3)",
    .cannot_fail = true,
  },
  {
    .name = "set_pread_initialize",
    .args = { A_BOOL ("request") },
    .ret = RET_ERR,
    .version = "1.12",
    .summary = "control whether libnbd pre-initializes read buffers",
    .description =
      "By default, read calls such as L<nbd_pread(3)> and "
      "L<nbd_aio_pread(3)> zero the caller's buffer before doing anything "
      "else, even before argument checks.  That way a program which ignores "
      "a read error cannot leak stale heap contents (this was the cause of "
      "CVE-2022-0485 in an application).\n\n"
      "Setting C<request> to false skips the zeroing, saving a little time "
      "for programs that never use the buffer after a failed read or that "
      "initialize it themselves."
      "\n\n"
      "The zeroing is a plain C<memset> of the whole buffer, so for "
      "very large reads it costs about as much as one extra pass "
      "over the memory.  The setting applies to every read issued on "
      "the handle from then on, including commands already being "
      "prepared by other threads, and can be changed at any time.  "
      "Only turn it off when the program checks every read's result; "
      "the data in a buffer after a failed read is never meaningful "
      "either way.",
    .see_also = "nbd_get_pread_initialize(3) nbd_pread(3) nbd_pread_structured(3) "
      "nbd_aio_pread(3) nbd_set_strict_mode(3)",
  },
  {
    .name = "get_pread_initialize",
    .ret = RET_BOOL,
    .version = "1.12",
    .summary = "see whether libnbd pre-initializes read buffers",
    .description =
      "Report whether the read calls (L<nbd_pread(3)>, "
      "L<nbd_pread_structured(3)> and their C<nbd_aio_*> forms) zero "
      "the caller's buffer before doing anything else.  This is true "
      "on a new handle and stays so unless "
      "L<nbd_set_pread_initialize(3)> turns it off.\n\n"
      "While it is true, a buffer passed to a read that fails, or "
      "that the server answers only in part, holds zeroes (or some "
      "of the data) rather than whatever the memory contained "
      "before, so a program that forgets to check for an error "
      "cannot leak old memory contents.",
    .see_also = "nbd_set_pread_initialize(3) nbd_pread(3)",
    .cannot_fail = true,
  },
  {
    .name = "set_strict_mode",
    .args = { A_FLAGS ("flags", "strict") },
    .ret = RET_ERR,
    .version = "1.6",
    .summary = "control how strictly to follow NBD protocol",
    .description =
      "Choose which client-side sanity checks are applied before a request "
      "is sent.  By default all are enabled, so requests whose effect the NBD "
      "protocol leaves undefined fail locally without any network traffic.  "
      "Clearing bits lets such requests reach the server, which is mostly "
      "useful for testing servers.  C<flags> is a bitwise OR of:\n\n"
      "- C<LIBNBD_STRICT_COMMANDS>: reject commands or flags the server did "
      "not advertise (for example a write to a read-only export, or FUA when "
      "L<nbd_can_fua(3)> is false).\n"
      "- C<LIBNBD_STRICT_FLAGS>: reject command flags unknown to libnbd or "
      "not meaningful for the command.  Flags above the 16 bits the protocol "
      "can carry are always rejected.\n"
      "- C<LIBNBD_STRICT_BOUNDS>: reject requests reaching past the end of "
      "the export.\n"
      "- C<LIBNBD_STRICT_ZERO_SIZE>: reject requests of length 0.\n"
      "- C<LIBNBD_STRICT_ALIGN>: reject offsets and lengths not aligned to "
      "the minimum block size the server reported (L<nbd_get_block_size(3)>).\n"
      "- C<LIBNBD_STRICT_PAYLOAD>: reject writes larger than the server's "
      "maximum payload size.\n"
      "- C<LIBNBD_STRICT_AUTO_FLAG>: let libnbd add flags it knows are "
      "required, such as C<LIBNBD_CMD_FLAG_PAYLOAD_LEN> with extended "
      "headers.\n\n"
      MASK_NOTE ("LIBNBD_STRICT_MASK") "  Later versions may add checks, "
      "so to relax one check start from L<nbd_get_strict_mode(3)>.",
    .see_also = "nbd_get_strict_mode(3) nbd_set_handshake_flags(3) "
      "nbd_set_pread_initialize(3) nbd_get_block_size(3) nbd_can_fua(3)",
  },
  {
    .name = "get_strict_mode",
    .ret = RET_FLAGS,
    .ret_set = "strict",
    .version = "1.6",
    .summary = "see which strictness flags are in effect",
    .description =
      "Return the client-side checks applied to commands before they "
      "are sent, as a bitmask of C<LIBNBD_STRICT_*> values.  A new "
      "handle has every check this build knows about enabled; "
      "L<nbd_set_strict_mode(3)> describes each bit and how to "
      "change them.\n\n"
      "To switch off one check while keeping the others, including "
      "ones added by later versions, read the current value and "
      "clear the bit:\n\n"
      "  nbd_set_strict_mode (nbd,\n"
      "                       nbd_get_strict_mode (nbd) & ~LIBNBD_STRICT_BOUNDS);\n\n"
      NEWER_BITS_NOTE,
    .see_also = "nbd_set_strict_mode(3)",
    .cannot_fail = true,
  },
  {
    .name = "set_opt_mode",
    .args = { A_BOOL ("enable") },
    .ret = RET_ERR,
    .permitted = ST_CREATED,
    .version = "1.4",
    .summary = "control option mode, for pausing during option negotiation",
    .description =
      "When C<enable> is true, the C<nbd_connect_*> calls (and their "
      "asynchronous forms) stop once the newstyle handshake reaches the "
      "option phase, leaving the handle negotiating instead of ready.  The "
      "application can then issue C<nbd_opt_*> requests itself, for example "
      "L<nbd_opt_list(3)> or L<nbd_opt_info(3)>, change settings such as "
      "L<nbd_set_export_name(3)>, and finish with L<nbd_opt_go(3)>.  A failed "
      "L<nbd_opt_go(3)> returns to negotiating so another export may be "
      "tried; L<nbd_opt_abort(3)> ends the session cleanly.\n\n"
      "The default is false.  Oldstyle servers have no option phase, so the "
      "setting has no effect with them."
      "\n\n"
      "A program that lists a server's exports and then opens the "
      "one it wants might do (with C<show_export> as in the example "
      "of L<nbd_opt_list(3)>):\n\n"
      "  nbd_set_opt_mode (nbd, true);\n"
      "  if (nbd_connect_uri (nbd, \"nbd://example.com\") == -1)\n"
      "    goto error;\n"
      "  /* the handle is negotiating: ask questions */\n"
      "  if (nbd_opt_list (nbd, (nbd_list_callback) {\n"
      "                           .callback = show_export }) == -1)\n"
      "    goto error;\n"
      "  nbd_set_export_name (nbd, \"disk2\");\n"
      "  if (nbd_opt_go (nbd) == -1)\n"
      "    goto error;\n"
      "  /* the handle is ready: nbd_pread etc. work from here on */\n\n"
      "The setting can only be changed before connecting; calling it "
      "later fails with C<EINVAL>.  Settings that are only read at "
      "the end of the handshake, such as the export name, the meta "
      "context list and L<nbd_set_full_info(3)>, may still be "
      "changed while negotiating.",
    .see_also = "nbd_get_opt_mode(3) nbd_aio_is_negotiating(3) nbd_opt_go(3) "
      "nbd_opt_abort(3) nbd_opt_info(3) nbd_opt_list(3) nbd_opt_starttls(3) "
      "nbd_set_export_name(3)",
  },
  {
    .name = "get_opt_mode",
    .ret = RET_BOOL,
    .version = "1.4",
    .summary = "return whether option mode was enabled",
    .description =
      "Report whether option mode is enabled: true after "
      "L<nbd_set_opt_mode(3)> was called with true, false on a new "
      "handle.  In option mode the connect calls stop once the "
      "newstyle handshake reaches the option phase, and the handle "
      "stays negotiating (L<nbd_aio_is_negotiating(3)>) until the "
      "program finishes with L<nbd_opt_go(3)> or L<nbd_opt_abort(3)>.\n\n"
      "The setting says nothing about the server: an oldstyle server "
      "has no option phase, so a handle connected to one goes "
      "straight to the ready state even when this returns true.",
    .see_also = "nbd_set_opt_mode(3) nbd_aio_is_negotiating(3)",
    .cannot_fail = true,
  },

  /* ---- Meta contexts ---- */
  {
    .name = "set_request_meta_context",
    .args = { A_BOOL ("request") },
    .ret = RET_ERR,
    .permitted = ST_CREATED | ST_NEGOTIATING,
    .version = "1.16",
    .summary = "control whether connect automatically requests meta contexts",
    .description =
      "Decide whether finishing the handshake (any C<nbd_connect_*> call "
      "without option mode, or L<nbd_opt_go(3)> and L<nbd_opt_info(3)> with "
      "it) automatically sends C<NBD_OPT_SET_META_CONTEXT> for the contexts "
      "registered with L<nbd_add_meta_context(3)>.  The default is true.  "
      "Nothing is sent anyway when the list is empty or the server has "
      "neither structured replies nor extended headers.\n\n"
      "Turning it off avoids renegotiating when L<nbd_opt_info(3)> and "
      "L<nbd_opt_go(3)> are used on the same export, and leaves the timing "
      "to L<nbd_opt_set_meta_context(3)> for tests.  Without negotiated "
      "contexts, L<nbd_block_status(3)> will fail."
      "\n\n"
      "The setting may be changed before connecting and, in option "
      "mode, while negotiating; changing it has no effect on "
      "contexts already agreed.",
    .see_also = "nbd_get_request_meta_context(3) nbd_add_meta_context(3) "
      "nbd_opt_set_meta_context(3) nbd_opt_list_meta_context(3) nbd_opt_go(3) "
      "nbd_opt_info(3) nbd_can_meta_context(3) nbd_block_status(3)",
  },
  {
    .name = "get_request_meta_context",
    .ret = RET_BOOL,
    .version = "1.16",
    .summary = "see if connect automatically requests meta contexts",
    .description =
      "Report whether the handshake automatically selects the "
      "metadata contexts listed with L<nbd_add_meta_context(3)>, by "
      "sending C<NBD_OPT_SET_META_CONTEXT> before C<NBD_OPT_GO> (or "
      "C<NBD_OPT_INFO>).  This is true on a new handle and false "
      "after L<nbd_set_request_meta_context(3)> was called with "
      "false.\n\n"
      "Even when it is true nothing is sent if the list is empty or "
      "the server supports neither structured replies nor extended "
      "headers; which contexts were actually agreed is told by "
      "L<nbd_can_meta_context(3)>.",
    .see_also = "nbd_set_request_meta_context(3) nbd_add_meta_context(3)",
  },
  {
    .name = "add_meta_context",
    .args = { A_STRING ("name") },
    .ret = RET_ERR,
    .permitted = ST_CREATED | ST_NEGOTIATING,
    .version = "1.0",
    .summary = "ask server to negotiate metadata context",
    .description =
      "Append C<name> to the list of metadata contexts the client will ask "
      "the server for.  A metadata context selects what kind of information "
      "L<nbd_block_status(3)> reports; C<LIBNBD_CONTEXT_BASE_ALLOCATION> "
      "(C<\"base:allocation\">) describes holes and zeroed areas.  Other "
      "names are server specific, for example qemu-nbd's "
      "C<\"qemu:dirty-bitmap:NAME\"> and C<\"qemu:allocation-depth\">.\n\n"
      "The list starts empty and may hold any number of entries; inspect it "
      "with L<nbd_get_nr_meta_contexts(3)> and L<nbd_get_meta_context(3)> and "
      "empty it with L<nbd_clear_meta_contexts(3)>.  After connecting, "
      "L<nbd_can_meta_context(3)> tells which contexts the server accepted.\n\n"
      "Names are UTF-8; names over 4096 bytes fail with C<ENAMETOOLONG>."
      "\n\n"
      "The name is copied.  Set up the list before connecting, or in "
      "option mode before L<nbd_opt_go(3)>; the contexts are "
      "requested with C<NBD_OPT_SET_META_CONTEXT> as part of the "
      "handshake (see L<nbd_set_request_meta_context(3)>).  For "
      "example, to learn which areas of an export are allocated and "
      "which parts of a qemu dirty bitmap are set:\n\n"
      "  nbd_add_meta_context (nbd, LIBNBD_CONTEXT_BASE_ALLOCATION);\n"
      "  nbd_add_meta_context (nbd, \"qemu:dirty-bitmap:backup0\");\n"
      "  if (nbd_connect_uri (nbd, uri) == -1)\n"
      "    goto error;\n"
      "  if (nbd_can_meta_context (nbd, LIBNBD_CONTEXT_BASE_ALLOCATION) != 1)\n"
      "    fprintf (stderr, \"server has no allocation information\\n\");",
    .see_also = "nbd_clear_meta_contexts(3) nbd_get_nr_meta_contexts(3) "
      "nbd_get_meta_context(3) nbd_can_meta_context(3) nbd_block_status(3) "
      "nbd_set_request_meta_context(3) nbd_opt_list_meta_context(3)",
  },
  {
    .name = "get_nr_meta_contexts",
    .ret = RET_SIZE,
    .version = "1.6",
    .summary = "return the current number of requested meta contexts",
    .description =
      "Return the number of metadata context names in the handle's "
      "request list, the list that L<nbd_add_meta_context(3)> "
      "appends to and L<nbd_clear_meta_contexts(3)> empties.  A new "
      "handle has none.  Together with L<nbd_get_meta_context(3)> it "
      "lets a program walk the list:\n\n"
      "  ssize_t n = nbd_get_nr_meta_contexts (nbd);\n"
      "  for (ssize_t i = 0; i < n; i++) {\n"
      "    char *name = nbd_get_meta_context (nbd, i);\n"
      "    ...\n"
      "    free (name);\n"
      "  }\n\n"
      "The list only records what the client will request; the "
      "server may accept some, all or none of the names, as "
      "L<nbd_can_meta_context(3)> tells after connecting.",
    .see_also = "nbd_add_meta_context(3) nbd_get_meta_context(3) "
      "nbd_clear_meta_contexts(3) nbd_can_meta_context(3)",
  },
  {
    .name = "get_meta_context",
    .args = { A_SIZE ("i") },
    .ret = RET_STRING,
    .version = "1.6",
    .summary = "return the i'th meta context request",
    .description =
      "Return entry C<i> (counting from 0) of the handle's list of "
      "metadata contexts to request, in the order they were added "
      "with L<nbd_add_meta_context(3)>.  The result is a newly "
      "allocated copy which the caller must free.\n\n"
      "C<i> must be less than L<nbd_get_nr_meta_contexts(3)>; a "
      "larger index fails with C<EINVAL>.  Out of memory gives "
      "C<ENOMEM>.  The entry is the name as requested, which the "
      "server may not have accepted; see L<nbd_can_meta_context(3)> "
      "for that.",
    .see_also = "nbd_add_meta_context(3) nbd_get_nr_meta_contexts(3) "
      "nbd_clear_meta_contexts(3)",
  },
  {
    .name = "clear_meta_contexts",
    .ret = RET_ERR,
    .permitted = ST_CREATED | ST_NEGOTIATING,
    .version = "1.6",
    .summary = "reset the list of requested meta contexts",
    .description =
      "Empty the handle's list of metadata contexts to request, so "
      "that it can be refilled with L<nbd_add_meta_context(3)>.  "
      "Nothing is sent to the server, and contexts already agreed on "
      "a connection are not withdrawn by this call.\n\n"
      "It is mainly of use in option mode (L<nbd_set_opt_mode(3)>): "
      "after probing one export with one set of contexts, clear the "
      "list, add another set and then issue L<nbd_opt_info(3)>, "
      "L<nbd_opt_go(3)> or L<nbd_opt_set_meta_context(3)>, which "
      "send the new list.  Lists given explicitly to the "
      "C<*_queries> calls, such as "
      "L<nbd_opt_set_meta_context_queries(3)>, do not use the "
      "handle's list at all.",
    .see_also = "nbd_add_meta_context(3) nbd_get_nr_meta_contexts(3) "
      "nbd_get_meta_context(3) nbd_set_opt_mode(3) nbd_opt_set_meta_context(3)",
  },

  /* ---- URI policy ---- */
  {
    .name = "set_uri_allow_transports",
    .args = { A_FLAGS ("mask", "allow_transport") },
    .ret = RET_ERR,
    .permitted = ST_CREATED,
    .version = "1.2",
    .summary = "set the allowed transports in NBD URIs",
    .description =
      "Limit the transports that a URI passed to L<nbd_connect_uri(3)> or "
      "L<nbd_aio_connect_uri(3)> may use; a URI naming any other transport is "
      "refused.  C<mask> is a bitwise OR of C<LIBNBD_ALLOW_TRANSPORT_TCP>, "
      "C<LIBNBD_ALLOW_TRANSPORT_UNIX>, C<LIBNBD_ALLOW_TRANSPORT_VSOCK> and "
      "C<LIBNBD_ALLOW_TRANSPORT_SSH>.  Everything is allowed by default.\n\n"
      MASK_NOTE ("LIBNBD_ALLOW_TRANSPORT_MASK")
      "\n\n"
      "The check happens when the URI is parsed, before anything is "
      "connected: a URI whose scheme names a transport outside "
      "C<mask> (C<nbd:> and C<nbds:> are TCP, C<nbd+unix:> is Unix, "
      "C<nbd+vsock:> vsock and C<nbd+ssh:> SSH) makes "
      "L<nbd_connect_uri(3)> fail with C<EPERM>.  Programs that take "
      "URIs from untrusted users typically restrict this, for "
      "example to TCP only so that a URI cannot reach local Unix "
      "sockets or start an SSH command.  Direct calls such as "
      "L<nbd_connect_unix(3)> are not affected.",
    .see_also = "nbd_connect_uri(3) nbd_aio_connect_uri(3) nbd_set_uri_allow_tls(3) "
      "nbd_set_uri_allow_local_file(3)",
  },
  {
    .name = "set_uri_allow_tls",
    .args = { A_ENUM ("tls", "tls") },
    .ret = RET_ERR,
    .permitted = ST_CREATED,
    .version = "1.2",
    .summary = "set the allowed TLS settings in NBD URIs",
    .description =
      "Limit whether URIs given to L<nbd_connect_uri(3)> may or must ask for "
      "TLS:\n\n"
      "- C<LIBNBD_TLS_DISABLE>: TLS schemes such as C<nbds:> are refused.\n"
      "- C<LIBNBD_TLS_ALLOW>: both plain (C<nbd:>) and TLS (C<nbds:>) schemes "
      "are accepted.  This is the default.\n"
      "- C<LIBNBD_TLS_REQUIRE>: only TLS schemes are accepted.\n\n"
      "Other values fail with C<EINVAL>."
      "\n\n"
      "The check is made when the URI is parsed, so a URI that "
      "breaks the rule fails with C<EPERM> before any connection is "
      "attempted.  C<LIBNBD_TLS_REQUIRE> suits a program that must "
      "never send data unencrypted, whatever URI it is given.  This "
      "setting only concerns URIs: the TLS policy of the connection "
      "itself is set by the URI's scheme, or by L<nbd_set_tls(3)> "
      "for the direct connect calls.",
    .see_also = "nbd_connect_uri(3) nbd_set_uri_allow_transports(3) "
      "nbd_set_uri_allow_local_file(3) nbd_set_tls(3)",
  },
  {
    .name = "set_uri_allow_local_file",
    .args = { A_BOOL ("allow") },
    .ret = RET_ERR,
    .permitted = ST_CREATED,
    .version = "1.2",
    .summary = "allow NBD URIs to reference local files",
    .description =
      "Decide whether a URI passed to L<nbd_connect_uri(3)> or "
      "L<nbd_aio_connect_uri(3)> may name files on the local machine "
      "for libnbd to read.  The query parameters concerned are "
      "C<tls-psk-file> and C<tls-certificates>.  The default is "
      "false, so a URI that contains either fails with C<EPERM> "
      "before any connection is attempted.\n\n"
      "Keep it off in programs that take URIs from users or other "
      "untrusted places: otherwise a URI could make the program read "
      "a file it can access but the URI's author cannot.  Enable it "
      "when the URIs come from a trusted configuration.  Files set "
      "directly with L<nbd_set_tls_psk_file(3)> or "
      "L<nbd_set_tls_certificates(3)> are not affected by this "
      "setting.",
    .see_also = "nbd_connect_uri(3) nbd_set_uri_allow_transports(3) "
      "nbd_set_uri_allow_tls(3) nbd_set_tls_psk_file(3)",
  },
  {
    .name = "set_uri_allow_tls_priority",
    .args = { A_BOOL ("allow") },
    .ret = RET_ERR,
    .permitted = ST_CREATED,
    .version = "1.24",
    .summary = "set if 'tls-priority' is allowed in NBD URIs",
    .description =
      "Decide whether a URI given to L<nbd_connect_uri(3)> may set the TLS "
      "priority string with the query parameter C<?tls-priority=PRIORITY> "
      "(see L<nbd_set_tls_priority(3)>).  It is refused by default: a "
      "priority string is powerful enough to lower the security of the "
      "connection or to make GnuTLS read local configuration files, which a "
      "program accepting URIs from others should not allow."
      "\n\n"
      "When the parameter is refused, a URI containing it makes "
      "L<nbd_connect_uri(3)> fail with C<EPERM> before anything is "
      "connected.  Allowing it is reasonable when URIs come from a "
      "trusted configuration, for instance to let an administrator "
      "ask for a post-quantum key exchange without changing the "
      "program.  A priority set directly with "
      "L<nbd_set_tls_priority(3)> is not affected.",
    .see_also = "nbd_connect_uri(3) nbd_set_tls_priority(3) "
      "nbd_set_uri_allow_local_file(3) nbd_create(3)",
  },

  /* ---- Socket activation ---- */
  {
    .name = "set_socket_activation_name",
    .args = { A_STRING ("socket_name") },
    .ret = RET_ERR,
    .permitted = ST_CREATED,
    .version = "1.16",
    .summary = "set the socket activation name",
    .description =
      "Set the name attached to the listening socket handed to a server "
      "started by L<nbd_connect_systemd_socket_activation(3)>.  It reaches "
      "the server through the C<LISTEN_FDNAMES> environment variable; a few "
      "servers (such as C<qemu-storage-daemon>) can refer to the socket by "
      "this name, while most ignore it.\n\n"
      "The name must be a short alphanumeric string: ASCII letters and "
      "digits only (anything else fails with C<EINVAL>), at most 32 of "
      "them (longer fails with C<ENAMETOOLONG>).  The default is the empty "
      "string, in which case the server sees the name C<unknown>; setting "
      "the empty string restores it.",
    .see_also = "nbd_get_socket_activation_name(3) "
      "nbd_connect_systemd_socket_activation(3)",
  },
  {
    .name = "get_socket_activation_name",
    .ret = RET_STRING,
    .version = "1.16",
    .summary = "get the socket activation name",
    .description =
      "Return the name that "
      "L<nbd_connect_systemd_socket_activation(3)> will give the "
      "listening socket it passes to the server (through "
      "C<LISTEN_FDNAMES>).  It is the string set with "
      "L<nbd_set_socket_activation_name(3)>; on a new handle it is "
      "the empty string, meaning that the server will see the name "
      "C<unknown>.\n\n"
      "The result is newly allocated and the caller must free it; "
      "the only failure is C<ENOMEM>.",
    .see_also = "nbd_set_socket_activation_name(3) "
      "nbd_connect_systemd_socket_activation(3)",
  },

  /* ---- Library information ---- */
  {
    .name = "get_version",
    .ret = RET_STATIC_STRING,
    .version = "1.0",
    .summary = "return the version of the library",
    .description =
      "Return the library version as a string of the form "
      "C<MAJOR.MINOR.RELEASE>, for example C<\"1.24.4\">.  The major number "
      "is 1 for every release with the stable API (0 was used for early "
      "experimental releases).  An even minor number marks a stable branch, "
      "an odd one a development branch whose new calls may still change.  "
      "The release number grows with each release of a branch.\n\n"
      "The string is static and must not be freed.  For compile time checks "
      "use the C<LIBNBD_HAVE_NBD_*> macros of C<libnbd.h> instead."
      "\n\n"
      "Comparing the version at run time is useful when a program "
      "was built against one version of the library and may run with "
      "another, to decide whether to use a call added later.  Parse "
      "the numbers rather than comparing strings:\n\n"
      "  unsigned major, minor;\n"
      "  if (sscanf (nbd_get_version (nbd), \"%u.%u\", &major, &minor) == 2 &&\n"
      "      (major > 1 || (major == 1 && minor >= 18))) {\n"
      "    /* calls added in 1.18, such as nbd_block_status_64, exist */\n"
      "  }\n\n"
      "The answer does not depend on the handle: any handle, in any "
      "state, gives the same string.",
    .see_also = "nbd_get_package_name(3) nbd_get_version_extra(3) nbd_create(3)",
    .cannot_fail = true,
  },
  {
    .name = "get_version_extra",
    .ret = RET_STATIC_STRING,
    .version = "1.24",
    .summary = "return the extra version of the library",
    .description =
      "Return the free-form version text chosen when the library was built, "
      "with C<./configure --with-extra=\"...\">.  Distributions use it to "
      "record their own package release next to the upstream version of "
      "L<nbd_get_version(3)>, for example C<\"1.24.4-1\">.  When the build "
      "set nothing the result is the empty string C<\"\">.\n\n"
      "The string is static: it stays valid as long as the library is "
      "loaded, and must not be freed.",
    .see_also = "nbd_get_version(3) nbd_get_package_name(3)",
    .cannot_fail = true,
  },
  {
    .name = "get_package_name",
    .ret = RET_STATIC_STRING,
    .version = "1.0",
    .summary = "return the name of the library",
    .description =
      "Return the name of the library package, which is C<\"libnbd\"> "
      "for this library unless a build renamed it.  The string is "
      "static: it remains valid as long as the library is loaded and "
      "must not be freed.\n\n"
      "Together with L<nbd_get_version(3)> it is handy for printing "
      "which library a program is using, for example in the output "
      "of a C<--version> option.",
    .see_also = "nbd_get_version(3)",
    .cannot_fail = true,
  },
  {
    .name = "supports_tls",
    .ret = RET_BOOL,
    .version = "1.0",
    .summary = "true if libnbd was compiled with support for TLS",
    .description =
      "Return true when the library was built with TLS support "
      "(GnuTLS), false otherwise.  The answer is fixed at build time "
      "and does not depend on the handle's settings.\n\n"
      "Without TLS support L<nbd_set_tls(3)> accepts only "
      "C<LIBNBD_TLS_DISABLE> (other values fail with C<ENOTSUP>), "
      "and a URI that asks for TLS, such as one with the C<nbds:> "
      "scheme, cannot be connected to.  A program can therefore test "
      "this first and give a clear message instead of a failed "
      "connection.",
    .see_also = "nbd_set_tls(3) nbd_supports_uri(3) nbd_supports_vsock(3)",
    .cannot_fail = true,
  },
  {
    .name = "supports_vsock",
    .ret = RET_BOOL,
    .version = "1.16",
    .summary = "true if libnbd was compiled with support for AF_VSOCK",
    .description =
      "Return true when the library was built with support for "
      "C<AF_VSOCK> sockets, the transport virtual machines use to "
      "talk to their host (and the host to its guests) without a "
      "network.  This is what L<nbd_connect_vsock(3)>, "
      "L<nbd_aio_connect_vsock(3)> and C<nbd+vsock:> or "
      "C<nbds+vsock:> URIs need; without it they fail with "
      "C<ENOTSUP>.\n\n"
      "The answer only reflects how the library was built.  Whether "
      "a vsock connection can work also depends on the running "
      "system: on Linux the kernel needs the vsock modules for the "
      "hypervisor in use, and connections to the local machine "
      "(C<VMADDR_CID_LOCAL>) need the C<vsock_loopback> module.",
    .see_also = "nbd_connect_vsock(3) nbd_connect_uri(3) nbd_supports_tls(3)",
    .cannot_fail = true,
  },
  {
    .name = "supports_uri",
    .ret = RET_BOOL,
    .version = "1.0",
    .summary = "true if libnbd was compiled with support for NBD URIs",
    .description =
      "Return true when the library was built with support for NBD "
      "URIs, false otherwise.  The answer is fixed at build time.\n\n"
      "When it is false, L<nbd_connect_uri(3)>, "
      "L<nbd_aio_connect_uri(3)> and L<nbd_get_uri(3)> always fail "
      "with C<ENOTSUP>, so a program that lets users give either a "
      "URI or another kind of address can check this before offering "
      "the URI form.",
    .see_also = "nbd_connect_uri(3) nbd_aio_connect_uri(3) nbd_get_uri(3) nbd_is_uri(3)",
    .cannot_fail = true,
  },
  {
    .name = "is_uri",
    .args = { A_STRING ("uri") },
    .ret = RET_BOOL,
    .version = "1.22",
    .summary = "detect if a string could be an NBD URI",
    .description =
      "Guess whether the string C<uri> looks like an NBD URI, returning true "
      "if so and false otherwise.  Programs that accept either a URI or, say, "
      "a local file name in the same argument can use it to pick the "
      "interpretation (C<nbdcopy> does this).\n\n"
      "The test is only a heuristic: a true result does not mean that "
      "L<nbd_connect_uri(3)> will accept the string or succeed."
      "\n\n"
      "The test accepts a string that begins with one of the NBD "
      "schemes (C<nbd>, C<nbds>, C<nbd+unix>, C<nbds+unix>, "
      "C<nbd+vsock>, C<nbds+vsock>, C<nbd+ssh>, C<nbds+ssh>) "
      "followed by C<://>; nothing else in the string is examined, "
      "and no connection is made.  In a build without URI support "
      "(see L<nbd_supports_uri(3)>) the call fails with C<ENOTSUP>.",
    .see_also = "nbd_connect_uri(3) nbd_aio_connect_uri(3) nbd_get_uri(3) "
      "nbd_supports_uri(3)",
  },
  {
    .name = "get_uri",
    .ret = RET_STRING,
    .permitted = ST_CONNECTING | ST_NEGOTIATING | ST_CONNECTED | ST_CLOSED | ST_DEAD,
    .version = "1.8",
    .summary = "construct an NBD URI for a connection",
    .description =
      "Try to build an NBD URI which, passed to "
      "L<nbd_connect_uri(3)>, would reach the same server and export "
      "again.  The scheme follows the transport and whether TLS is "
      "used (C<nbds:> when TLS is required, or when it was allowed "
      "and did get negotiated); the path is the export name; for "
      "Unix sockets the path of the socket goes in the C<socket> "
      "query parameter.  After a connection made with "
      "L<nbd_connect_uri(3)> the original URI is returned.  The "
      "result is newly allocated and must be freed by the caller.\n\n"
      "This is best effort and it fails, returning C<NULL>, when the "
      "handle lacks the information: C<EINVAL> when the server "
      "address is unknown (for example after "
      "L<nbd_connect_socket(3)> or L<nbd_connect_command(3)>) or is "
      "an unnamed or abstract Unix socket, C<EAFNOSUPPORT> for an "
      "address family that has no URI form, and C<ENOTSUP> in a "
      "build without URI support.  The URI is meant for messages and "
      "for reconnecting later; it does not contain secrets such as "
      "the PSK file, and it is not guaranteed to be the only or best "
      "way to reach the server.",
    .see_also = "nbd_connect_uri(3) nbd_aio_connect_uri(3) nbd_is_uri(3) "
      "nbd_supports_uri(3) nbd_connect_socket(3)",
  },

  {
    .name = "get_handle_size",
    .ret = RET_SIZE,
    .version = "1.24",
    .summary = "return the approximate size of the handle",
    .description =
      "Estimate how many bytes of memory the handle holds: the handle "
      "itself, the strings it keeps (export name, TLS settings, handle name "
      "and so on), its send and receive buffers, the records of commands "
      "queued, in flight or completed and not yet retired, and the meta "
      "contexts requested or agreed.  The figure changes as the handle is "
      "used: it grows, for example, with every command in flight or meta "
      "context added.\n\n"
      "It is an estimate, meant for language bindings with a garbage "
      "collector that need a hint of the memory each handle keeps alive.  "
      "It leaves out memory owned by the caller (such as the buffers passed "
      "to L<nbd_aio_pread(3)>), the TLS library's session state, and the "
      "overhead of the memory allocator.",
    .see_also = "nbd_create(3) nbd_aio_in_flight(3)",
  },

  /* ---- Statistics ---- */
  STATS_CALL ("stats_bytes_sent",
              "statistics of bytes sent over connection so far",
              STATS_BYTES_DESC ("written to", "request", "write", "handed to"),
              "nbd_stats_bytes_received(3) nbd_stats_chunks_sent(3) "
              "nbd_stats_chunks_received(3) nbd_get_tls_negotiated(3)"),
  STATS_CALL ("stats_chunks_sent",
              "statistics of chunks sent over connection so far",
              STATS_CHUNKS_DESC ("sent",
                                 "a handshake option or a request together "
                                 "with its payload."),
              "nbd_stats_chunks_received(3) nbd_stats_bytes_sent(3) "
              "nbd_stats_bytes_received(3) nbd_set_strict_mode(3)"),
  STATS_CALL ("stats_bytes_received",
              "statistics of bytes received over connection so far",
              STATS_BYTES_DESC ("read from", "reply", "reply", "obtained from"),
              "nbd_stats_bytes_sent(3) nbd_stats_chunks_sent(3) "
              "nbd_stats_chunks_received(3) nbd_get_tls_negotiated(3)"),
  STATS_CALL ("stats_chunks_received",
              "statistics of chunks received over connection so far",
              STATS_CHUNKS_DESC ("received",
                                 "an option reply, a simple reply, or one "
                                 "piece of a structured reply; so with "
                                 "structured replies a single command may "
                                 "account for several chunks."),
              "nbd_stats_chunks_sent(3) nbd_stats_bytes_sent(3) "
              "nbd_stats_bytes_received(3) "
              "nbd_get_structured_replies_negotiated(3)"),

  { .name = NULL }
};
