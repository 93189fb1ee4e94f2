/* libnbd API description: the types every api-*.c table is written in.
 *
 * The generator reads only these tables.  Each public call is one
 * `struct call`; the implicit first parameter `struct nbd_handle *h`
 * is never listed.
 */
#ifndef GENERATOR_API_H
#define GENERATOR_API_H

#include <stdbool.h>
#include <stddef.h>

/* Argument kinds.  Most produce one C parameter named `name`; the
 * exceptions are noted.
 */
enum arg_kind {
  ARG_END = 0,          /* terminates an args[] list */
  ARG_BOOL,             /* bool name */
  ARG_INT,              /* int name */
  ARG_UINT,             /* unsigned name */
  ARG_UINT32,           /* uint32_t name */
  ARG_INT64,            /* int64_t name */
  ARG_UINT64,           /* uint64_t name */
  ARG_UINTPTR,          /* uintptr_t name */
  ARG_SIZE,             /* size_t name */
  ARG_FD,               /* int name; must be >= 0 (else EBADF) */
  ARG_STRING,           /* const char *name; NULL rejected with EFAULT */
  ARG_PATH,             /* const char *name; NULL rejected with EFAULT */
  ARG_STRING_LIST,      /* char **name; NULL rejected with EFAULT */
  ARG_BYTES_IN,         /* const void *name, size_t len_name */
  ARG_BYTES_OUT,        /* void *name, size_t len_name */
  ARG_BYTES_PERSIST_IN, /* const void *name, size_t len_name (kept until the command completes) */
  ARG_BYTES_PERSIST_OUT,/* void *name, size_t len_name (kept until the command completes) */
  ARG_SOCKADDR,         /* const struct sockaddr *name, socklen_t len_name */
  ARG_ENUM,             /* int name; value checked against the enum `set` */
  ARG_FLAGS,            /* uint32_t name; bits checked against the flag set `set` */
  ARG_CLOSURE,          /* nbd_<closure>_callback name (required: .callback non-NULL) */
  ARG_EXTENT64,         /* only inside closures: nbd_extent *name, size_t len_name */
  ARG_MUTABLE_INT,      /* only inside closures: int *name */
  ARG_UINT32_ARRAY,     /* only inside closures: uint32_t *name, size_t len_name */
  ARG_STRING_CB,        /* only inside closures: const char *name */
  ARG_BYTES_IN_CB,      /* only inside closures: const void *name, size_t len_name */
};

struct arg {
  enum arg_kind kind;
  const char *name;
  const char *len_name;     /* second parameter of the two-parameter kinds */
  const char *set;          /* ARG_ENUM / ARG_FLAGS: name of an enum or flag set */
  const char *closure;      /* ARG_CLOSURE: name of a closure, e.g. "completion" */
};

/* Optional arguments come after the required ones, in this order. */
enum optarg_kind {
  OPT_END = 0,
  OPT_CLOSURE,      /* nbd_<closure>_callback name; .callback may be NULL */
  OPT_FLAGS,        /* uint32_t flags */
};

struct optarg {
  enum optarg_kind kind;
  const char *name;
  const char *set;          /* OPT_FLAGS: flag set name */
  const char *closure;      /* OPT_CLOSURE: closure name */
  unsigned subset;          /* OPT_FLAGS: if non-zero, only these bits are valid for this call */
};

enum ret_kind {
  RET_ERR,            /* int: 0 ok, -1 error */
  RET_BOOL,           /* int: 0 false, 1 true, -1 error */
  RET_INT,            /* int: >= 0 ok, -1 error */
  RET_INT64,          /* int64_t: >= 0 ok, -1 error */
  RET_UINT,           /* unsigned: never fails */
  RET_UINT64,         /* uint64_t: never fails */
  RET_UINTPTR,        /* uintptr_t: never fails */
  RET_FLAGS,          /* uint32_t: never fails (a flag set named by ret_set) */
  RET_ENUM,           /* int: value of the enum ret_set, -1 error */
  RET_FD,             /* int: file descriptor, -1 error */
  RET_COOKIE,         /* int64_t: cookie >= 1, -1 error */
  RET_STRING,         /* char *: caller frees, NULL error */
  RET_STATIC_STRING,  /* const char *: owned by the library, NULL error */
  RET_SIZE,           /* ssize_t: >= 0 ok, -1 error */
  RET_VOID,           /* void (nbd_close) */
  RET_HANDLE,         /* struct nbd_handle * (nbd_create) */
};

/* Handle states in which a call may run.  0 means "any state". */
enum {
  ST_CREATED     = 1 << 0,
  ST_CONNECTING  = 1 << 1,
  ST_NEGOTIATING = 1 << 2,
  ST_CONNECTED   = 1 << 3,   /* ready or processing */
  ST_CLOSED      = 1 << 4,
  ST_DEAD        = 1 << 5,
};

/* O_FLAGS subset meaning "this call accepts no flags at all". */
#define NO_FLAGS 0x80000000u

#define MAX_ARGS 8
#define MAX_OPTARGS 3

struct call {
  const char *name;         /* without the nbd_ prefix */
  struct arg args[MAX_ARGS];
  struct optarg optargs[MAX_OPTARGS];
  enum ret_kind ret;
  const char *ret_set;      /* RET_FLAGS / RET_ENUM */
  unsigned permitted;       /* ST_* mask, 0 = any */
  const char *version;      /* first version, "1.0" ... "1.24" */
  const char *summary;      /* one line, lower case, no full stop */
  const char *description;  /* markup: see below */
  const char *see_also;     /* space separated: "nbd_foo(3) libnbd(3)" */
  bool unlocked;            /* true: the entry point does not take the handle lock */
  bool cannot_fail;         /* true: the call never sets an error */
  bool no_handle;           /* true: no handle parameter (nbd_create, nbd_get_error...) */
  bool null_handle_ok;      /* true: a NULL handle is valid (nbd_close): no nonnull attribute */
  bool handwritten;         /* true: entry point written by hand in lib/, not generated */
  bool is_async;            /* true: nbd_aio_* call completed via a completion closure */
  bool not_implemented;     /* true: generated entry point fails with ENOTSUP */
  bool extension;           /* true: beyond upstream: <libnbd-ext.h>, node LIBNBD_EXT_1 */
  bool may_release_lock;    /* true: may return with the handle lock given up (wait.c) */
  bool signal_safe;         /* true: async-signal-safe, so it fails (NULL handle) silently */
};

/* Description markup (rendered to troff by the generator):
 *   - paragraphs separated by blank lines;
 *   - a line starting with "- " starts a bullet item;
 *   - lines starting with two spaces are shown verbatim (code);
 *   - inline: C<code>, B<bold>, I<italic>, L<nbd_foo(3)> (a reference).
 */

/* Enums and flag sets. */
struct enum_value {
  const char *name;         /* without prefix, e.g. "DISABLE" */
  unsigned long value;
};

struct constset {
  const char *name;         /* the set's name used in struct arg, e.g. "tls" */
  const char *prefix;       /* e.g. "TLS" gives LIBNBD_TLS_DISABLE */
  bool is_flags;            /* flags: values are bits, a _MASK is emitted */
  struct enum_value values[24];
};

/* Closures: the callback's arguments after `void *user_data`. */
struct closure {
  const char *name;         /* "chunk" gives nbd_chunk_callback */
  struct arg args[MAX_ARGS];
};

/* Plain constants emitted as #define LIBNBD_<name> <value>. */
struct constant {
  const char *name;
  const char *value;        /* C text, e.g. "0x01U" or "\"base:allocation\"" */
};

/* The tables, one per area (api-*.c); each ends with an entry whose name is NULL. */
extern const struct call api_handle_calls[];
extern const struct call api_connect_calls[];
extern const struct call api_command_calls[];
extern const struct call api_ext_calls[];
extern const struct call api_info_calls[];
extern const struct constset api_constsets[];
extern const struct closure api_closures[];
extern const struct constant api_constants[];

/* Shorthands for writing tables. */
#define A_BOOL(n)           { ARG_BOOL, n, NULL, NULL, NULL }
#define A_INT(n)            { ARG_INT, n, NULL, NULL, NULL }
#define A_UINT(n)           { ARG_UINT, n, NULL, NULL, NULL }
#define A_UINT32(n)         { ARG_UINT32, n, NULL, NULL, NULL }
#define A_INT64(n)          { ARG_INT64, n, NULL, NULL, NULL }
#define A_UINT64(n)         { ARG_UINT64, n, NULL, NULL, NULL }
#define A_UINTPTR(n)        { ARG_UINTPTR, n, NULL, NULL, NULL }
#define A_SIZE(n)           { ARG_SIZE, n, NULL, NULL, NULL }
#define A_FD(n)             { ARG_FD, n, NULL, NULL, NULL }
#define A_STRING(n)         { ARG_STRING, n, NULL, NULL, NULL }
#define A_PATH(n)           { ARG_PATH, n, NULL, NULL, NULL }
#define A_STRING_LIST(n)    { ARG_STRING_LIST, n, NULL, NULL, NULL }
#define A_BYTES_IN(n, l)    { ARG_BYTES_IN, n, l, NULL, NULL }
#define A_BYTES_OUT(n, l)   { ARG_BYTES_OUT, n, l, NULL, NULL }
#define A_BYTES_PIN(n, l)   { ARG_BYTES_PERSIST_IN, n, l, NULL, NULL }
#define A_BYTES_POUT(n, l)  { ARG_BYTES_PERSIST_OUT, n, l, NULL, NULL }
#define A_SOCKADDR(n, l)    { ARG_SOCKADDR, n, l, NULL, NULL }
#define A_ENUM(n, s)        { ARG_ENUM, n, NULL, s, NULL }
#define A_FLAGS(n, s)       { ARG_FLAGS, n, NULL, s, NULL }
#define A_CLOSURE(c)        { ARG_CLOSURE, c, NULL, NULL, c }
#define O_CLOSURE(c)        { OPT_CLOSURE, c, NULL, c, 0 }
#define O_FLAGS(n, s, sub)  { OPT_FLAGS, n, s, NULL, sub }

#endif
