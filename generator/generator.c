/* Turns the API description (api-*.c) into:
 *   include/libnbd.h      the public header
 *   lib/api.c             public entry points: checks, locking, tracing
 *   lib/unlocked.h        prototypes of the nbd_unlocked_* implementations
 *   lib/libnbd.syms       the linker version script
 *   docs/nbd_<call>.3     one man page per call
 *   docs/api-calls.txt    the list of calls (used by tests)
 *
 * Usage: generator OUTDIR
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <config.h>

#include "api.h"

/* The newest symbol-version node: calls may name any even minor version
 * from 1.0 up to this one.
 */
#define LATEST_MINOR 24

static const struct call *calls[512];
static size_t ncalls;
static FILE *out;
static const char *outdir;

static void
die (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fprintf (stderr, "generator: ");
  vfprintf (stderr, fmt, ap);
  fprintf (stderr, "\n");
  va_end (ap);
  exit (EXIT_FAILURE);
}

static void
pr (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  vfprintf (out, fmt, ap);
  va_end (ap);
}

/* Write to a temporary file and rename it over the target only when the
 * content changed, so that make does not rebuild everything each run.
 */
static char tmp_path[4200], final_path[4096];

static void
open_output (const char *relpath)
{
  snprintf (final_path, sizeof final_path, "%s/%s", outdir, relpath);
  snprintf (tmp_path, sizeof tmp_path, "%s.tmp", final_path);
  out = fopen (tmp_path, "w");
  if (!out)
    die ("%s: %s", tmp_path, strerror (errno));
}

static int
same_content (const char *a, const char *b)
{
  FILE *fa = fopen (a, "r"), *fb = fopen (b, "r");
  int same = fa && fb;
  while (same) {
    int ca = getc (fa), cb = getc (fb);
    if (ca != cb)
      same = 0;
    else if (ca == EOF)
      break;
  }
  if (fa) fclose (fa);
  if (fb) fclose (fb);
  return same;
}

static void
close_output (void)
{
  if (fclose (out) != 0)
    die ("%s: %s", tmp_path, strerror (errno));
  if (same_content (tmp_path, final_path))
    remove (tmp_path);
  else if (rename (tmp_path, final_path) != 0)
    die ("rename %s: %s", final_path, strerror (errno));
}

static const char *
upper (const char *s)
{
  static char buf[8][256];
  static int i;
  char *r = buf[i++ % 8];
  size_t n;
  for (n = 0; s[n] && n < 255; n++)
    r[n] = toupper ((unsigned char) s[n]);
  r[n] = 0;
  return r;
}

static const struct constset *
find_set (const char *name)
{
  for (const struct constset *s = api_constsets; s->name; s++)
    if (strcmp (s->name, name) == 0)
      return s;
  die ("unknown enum or flag set %s", name);
  return NULL;
}

static const struct closure *
find_closure (const char *name)
{
  for (const struct closure *c = api_closures; c->name; c++)
    if (strcmp (c->name, name) == 0)
      return c;
  die ("unknown closure %s", name);
  return NULL;
}

static unsigned long
set_mask (const struct constset *s)
{
  unsigned long m = 0;
  for (const struct enum_value *v = s->values; v->name; v++)
    m |= v->value;
  return m;
}

/* ---- Loading and validating the description ---- */

static int
version_minor (const char *v)
{
  int major, minor;
  if (sscanf (v, "%d.%d", &major, &minor) != 2 || major != 1 || minor < 0
      || minor > LATEST_MINOR || minor % 2)
    die ("bad version %s", v);
  return minor;
}

static void
add_table (const struct call *table)
{
  for (const struct call *c = table; c->name; c++) {
    if (ncalls >= sizeof calls / sizeof calls[0])
      die ("too many calls");
    for (size_t i = 0; i < ncalls; i++)
      if (strcmp (calls[i]->name, c->name) == 0)
        die ("call %s described twice", c->name);
    if (!c->version || !c->summary || !c->description)
      die ("call %s: version, summary and description are required", c->name);
    if (c->extension != (strncmp (c->name, "ext_", 4) == 0))
      die ("call %s: extensions, and only they, are named nbd_ext_*", c->name);
    if (!c->extension)
      version_minor (c->version);
    for (const struct arg *a = c->args; a->kind != ARG_END; a++) {
      if (a->kind == ARG_ENUM || a->kind == ARG_FLAGS)
        find_set (a->set);
      if (a->kind == ARG_CLOSURE)
        find_closure (a->closure);
    }
    for (const struct optarg *o = c->optargs; o->kind != OPT_END; o++) {
      if (o->kind == OPT_FLAGS)
        find_set (o->set);
      if (o->kind == OPT_CLOSURE)
        find_closure (o->closure);
    }
    calls[ncalls++] = c;
  }
}

static int
cmp_calls (const void *a, const void *b)
{
  const struct call *ca = *(const struct call **) a;
  const struct call *cb = *(const struct call **) b;
  return strcmp (ca->name, cb->name);
}

/* ---- C types ---- */

static const char *
ret_type (const struct call *c)
{
  switch (c->ret) {
  case RET_ERR: case RET_BOOL: case RET_INT: case RET_ENUM: case RET_FD:
    return "int";
  case RET_INT64: case RET_COOKIE: return "int64_t";
  case RET_UINT: return "unsigned";
  case RET_UINT64: return "uint64_t";
  case RET_UINTPTR: return "uintptr_t";
  case RET_FLAGS: return "uint32_t";
  case RET_STRING: return "char *";
  case RET_STATIC_STRING: return "const char *";
  case RET_SIZE: return "ssize_t";
  case RET_VOID: return "void";
  case RET_HANDLE: return "struct nbd_handle *";
  }
  die ("bad return kind");
  return NULL;
}

/* The value returned on error, or NULL if the call cannot fail. */
static const char *
ret_error_value (const struct call *c)
{
  switch (c->ret) {
  case RET_ERR: case RET_BOOL: case RET_INT: case RET_ENUM: case RET_FD:
  case RET_INT64: case RET_COOKIE: case RET_SIZE:
    return "-1";
  case RET_STRING: case RET_STATIC_STRING: case RET_HANDLE:
    return "NULL";
  default:
    return NULL;
  }
}

/* Print one argument's C parameter(s).  `by_pointer` passes closures by
 * address (the internal convention: the implementation zeroes what it
 * takes over).
 */
static void
print_param (const struct arg *a, int by_pointer)
{
  switch (a->kind) {
  case ARG_BOOL: pr ("bool %s", a->name); break;
  case ARG_INT: case ARG_FD: case ARG_ENUM: pr ("int %s", a->name); break;
  case ARG_UINT: pr ("unsigned %s", a->name); break;
  case ARG_UINT32: case ARG_FLAGS: pr ("uint32_t %s", a->name); break;
  case ARG_INT64: pr ("int64_t %s", a->name); break;
  case ARG_UINT64: pr ("uint64_t %s", a->name); break;
  case ARG_UINTPTR: pr ("uintptr_t %s", a->name); break;
  case ARG_SIZE: pr ("size_t %s", a->name); break;
  case ARG_STRING: case ARG_PATH: case ARG_STRING_CB:
    pr ("const char *%s", a->name); break;
  case ARG_STRING_LIST: pr ("char **%s", a->name); break;
  case ARG_BYTES_IN: case ARG_BYTES_PERSIST_IN: case ARG_BYTES_IN_CB:
    pr ("const void *%s, size_t %s", a->name, a->len_name); break;
  case ARG_BYTES_OUT: case ARG_BYTES_PERSIST_OUT:
    pr ("void *%s, size_t %s", a->name, a->len_name); break;
  case ARG_SOCKADDR:
    pr ("const struct sockaddr *%s, socklen_t %s", a->name, a->len_name); break;
  case ARG_CLOSURE:
    pr ("nbd_%s_callback %s%s_callback", a->closure, by_pointer ? "*" : "",
        a->closure);
    break;
  case ARG_EXTENT64:
    pr ("nbd_extent *%s, size_t %s", a->name, a->len_name); break;
  case ARG_UINT32_ARRAY:
    pr ("uint32_t *%s, size_t %s", a->name, a->len_name); break;
  case ARG_MUTABLE_INT: pr ("int *%s", a->name); break;
  case ARG_END: break;
  }
}

static void
print_optparam (const struct optarg *o, int by_pointer)
{
  if (o->kind == OPT_CLOSURE)
    pr ("nbd_%s_callback %s%s_callback", o->closure, by_pointer ? "*" : "",
        o->closure);
  else
    pr ("uint32_t %s", o->name);
}

static void
print_params (const struct call *c, int by_pointer)
{
  int first = 1;
  if (!c->no_handle) {
    pr ("struct nbd_handle *h");
    first = 0;
  }
  for (const struct arg *a = c->args; a->kind != ARG_END; a++) {
    pr ("%s", first ? "" : ", ");
    print_param (a, by_pointer);
    first = 0;
  }
  for (const struct optarg *o = c->optargs; o->kind != OPT_END; o++) {
    pr ("%s", first ? "" : ", ");
    print_optparam (o, by_pointer);
    first = 0;
  }
  if (first)
    pr ("void");
}

/* Argument names for a call from the entry point to the implementation. */
static void
print_call_args (const struct call *c)
{
  pr ("h");
  for (const struct arg *a = c->args; a->kind != ARG_END; a++) {
    if (a->kind == ARG_CLOSURE)
      pr (", &%s_callback", a->closure);
    else
      pr (", %s", a->name);
    if (a->len_name)
      pr (", %s", a->len_name);
  }
  for (const struct optarg *o = c->optargs; o->kind != OPT_END; o++) {
    if (o->kind == OPT_CLOSURE)
      pr (", &%s_callback", o->closure);
    else
      pr (", %s", o->name);
  }
}

static void
print_prototype (const struct call *c, const char *prefix, int by_pointer)
{
  const char *rt = ret_type (c);
  pr ("%s%s%snbd_%s%s (", prefix, rt, rt[strlen (rt) - 1] == '*' ? "" : " ",
      by_pointer ? "unlocked_" : "", c->name);
  print_params (c, by_pointer);
  pr (")");
}

/* ---- Compiler attributes of the declarations ---- */

/* How many C parameters an argument occupies. */
static int
param_count (const struct arg *a)
{
  return a->len_name ? 2 : 1;
}

/* Arguments that are pointers the call dereferences: NULL is a caller
 * bug, flagged at compile time by the nonnull attribute (and still
 * refused with EFAULT at run time).
 */
static int
is_nonnull_pointer (const struct arg *a)
{
  switch (a->kind) {
  case ARG_STRING: case ARG_PATH: case ARG_STRING_LIST:
  case ARG_BYTES_IN: case ARG_BYTES_OUT:
  case ARG_BYTES_PERSIST_IN: case ARG_BYTES_PERSIST_OUT: case ARG_SOCKADDR:
    return 1;
  default:
    return 0;
  }
}

/* The 1-based positions of the parameters that must not be NULL, written
 * into buf as "1, 2"; returns the number of positions.
 */
static int
nonnull_positions (const struct call *c, char *buf, size_t size)
{
  int pos = 1, n = 0;
  size_t len = 0;

  buf[0] = 0;
  if (!c->no_handle) {
    if (!c->null_handle_ok) {
      len += snprintf (buf + len, size - len, "1");
      n++;
    }
    pos++;
  }
  for (const struct arg *a = c->args; a->kind != ARG_END; a++) {
    if (is_nonnull_pointer (a) && len < size) {
      len += snprintf (buf + len, size - len, "%s%d", n ? ", " : "", pos);
      n++;
    }
    pos += param_count (a);
  }
  return n;
}

/* The attributes after a declaration in the header, "" if none: strings
 * the caller frees name their deallocator, so GCC can pair them up.
 */
static void
print_attributes (const struct call *c)
{
  char positions[64];

  if (c->ret == RET_STRING)
    pr ("\n    LIBNBD_ATTRIBUTE_ALLOC_DEALLOC (__builtin_free)");
  else if (c->ret == RET_HANDLE)
    pr ("\n    LIBNBD_ATTRIBUTE_ALLOC_DEALLOC (nbd_close)");
  if (nonnull_positions (c, positions, sizeof positions) > 0)
    pr ("%sLIBNBD_ATTRIBUTE_NONNULL (%s)",
        c->ret == RET_STRING || c->ret == RET_HANDLE ? " " : "\n    ", positions);
}

/* The attribute macros.  Only GCC 12 and later get them (older ones
 * lack the two-argument malloc attribute); every other compiler sees
 * plain declarations.  A program may define LIBNBD_ATTRIBUTE_NONNULL
 * itself, for instance empty to test how the library handles NULL.
 */
static void
emit_attribute_macros (void)
{
  pr ("#if defined (__GNUC__)\n"
      "#define LIBNBD_GCC_VERSION \\\n"
      "    (__GNUC__ * 10000 + __GNUC_MINOR__ * 100 + __GNUC_PATCHLEVEL__)\n"
      "#endif\n\n");
  pr ("#ifndef LIBNBD_ATTRIBUTE_NONNULL\n"
      "#if defined (__GNUC__) && LIBNBD_GCC_VERSION >= 120000\n"
      "#define LIBNBD_ATTRIBUTE_NONNULL(...) __attribute__ ((__nonnull__ (__VA_ARGS__)))\n"
      "#else\n"
      "#define LIBNBD_ATTRIBUTE_NONNULL(...)\n"
      "#endif\n"
      "#endif\n\n");
  pr ("#if defined (__GNUC__) && LIBNBD_GCC_VERSION >= 120000\n"
      "#define LIBNBD_ATTRIBUTE_ALLOC_DEALLOC(fn) \\\n"
      "    __attribute__ ((__malloc__, __malloc__ (fn, 1)))\n"
      "#else\n"
      "#define LIBNBD_ATTRIBUTE_ALLOC_DEALLOC(fn)\n"
      "#endif\n\n");
}

/* ---- include/libnbd.h ---- */

static void
print_closure_typedef (const struct closure *cl, const char *indent)
{
  pr ("%stypedef struct {\n", indent);
  pr ("%s  int (*callback) (void *user_data", indent);
  for (const struct arg *a = cl->args; a->kind != ARG_END; a++) {
    pr (", ");
    print_param (a, 0);
  }
  pr (");\n");
  pr ("%s  void *user_data;\n", indent);
  pr ("%s  void (*free) (void *user_data);\n", indent);
  pr ("%s} nbd_%s_callback;\n", indent, cl->name);
}

static void
emit_header (void)
{
  open_output ("include/libnbd.h");
  pr ("/* libnbd: NBD client library.  Generated from generator/api-*.c by\n"
      " * generator/generator.c: do not edit.  LGPLv2+.\n"
      " */\n\n");
  pr ("#ifndef LIBNBD_H\n#define LIBNBD_H\n\n");
  pr ("#include <stdbool.h>\n#include <stddef.h>\n#include <stdint.h>\n");
  pr ("#include <sys/types.h>\n#include <sys/socket.h>\n\n");
  pr ("#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
  pr ("struct nbd_handle;\n\n");
  emit_attribute_macros ();

  for (const struct constset *s = api_constsets; s->name; s++) {
    for (const struct enum_value *v = s->values; v->name; v++) {
      if (s->is_flags)
        pr ("#define LIBNBD_%s_%-24s 0x%02lxU\n", s->prefix, v->name, v->value);
      else
        pr ("#define LIBNBD_%s_%-24s %lu\n", s->prefix, v->name, v->value);
    }
    if (s->is_flags)
      pr ("#define LIBNBD_%s_%-24s 0x%02lxU\n", s->prefix, "MASK", set_mask (s));
    pr ("\n");
  }
  for (const struct constant *k = api_constants; k->name; k++)
    pr ("#define LIBNBD_%-32s %s\n", k->name, k->value);
  pr ("\n");

  pr ("typedef struct {\n  uint64_t length;\n  uint64_t flags;\n} nbd_extent;\n\n");
  for (const struct closure *cl = api_closures; cl->name; cl++) {
    print_closure_typedef (cl, "");
    pr ("#define LIBNBD_HAVE_NBD_%s_CALLBACK 1\n\n", upper (cl->name));
  }
  /* Optional closures get a NULL initialiser. */
  for (const struct closure *cl = api_closures; cl->name; cl++) {
    int optional = 0;
    for (size_t i = 0; i < ncalls && !optional; i++)
      for (const struct optarg *o = calls[i]->optargs; o->kind != OPT_END; o++)
        if (o->kind == OPT_CLOSURE && strcmp (o->closure, cl->name) == 0)
          optional = 1;
    if (optional)
      pr ("#define NBD_NULL_%s ((nbd_%s_callback) { .callback = NULL })\n",
          upper (cl->name), cl->name);
  }
  pr ("\n");

  /* nbd_create names nbd_close as its deallocator, so nbd_close must be
   * declared first whatever the order of the list.
   */
  pr ("extern void nbd_close (struct nbd_handle *h); /* forward declaration */\n\n");
  for (size_t i = 0; i < ncalls; i++) {
    const struct call *c = calls[i];
    if (c->extension)
      continue;
    print_prototype (c, "extern ", 0);
    print_attributes (c);
    pr (";\n#define LIBNBD_HAVE_NBD_%s 1\n\n", upper (c->name));
  }

  pr ("#ifdef __cplusplus\n}\n#endif\n\n#endif /* LIBNBD_H */\n");
  close_output ();
}

/* <libnbd-ext.h>: the extensions, so that <libnbd.h> stays exactly
 * upstream's surface.
 */
static void
emit_ext_header (void)
{
  open_output ("include/libnbd-ext.h");
  pr ("/* libnbd-ext: this library's extensions to the libnbd API (see\n"
      " * libnbd-ext(3)).  Generated from generator/api-ext.c by\n"
      " * generator/generator.c: do not edit.  LGPLv2+.\n"
      " */\n\n");
  pr ("#ifndef LIBNBD_EXT_H\n#define LIBNBD_EXT_H\n\n#include <libnbd.h>\n\n");
  pr ("#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
  for (size_t i = 0; i < ncalls; i++) {
    const struct call *c = calls[i];
    if (!c->extension)
      continue;
    print_prototype (c, "extern ", 0);
    print_attributes (c);
    pr (";\n#define LIBNBD_HAVE_NBD_%s 1\n\n", upper (c->name));
  }
  pr ("#ifdef __cplusplus\n}\n#endif\n\n#endif /* LIBNBD_EXT_H */\n");
  close_output ();
}

/* ---- lib/unlocked.h ---- */

static void
emit_unlocked_h (void)
{
  open_output ("lib/unlocked.h");
  pr ("/* Generated by generator/generator.c: do not edit.\n"
      " * Each public call nbd_X is checked and locked by lib/api.c, which\n"
      " * then calls nbd_unlocked_X.  Closures are passed by address: an\n"
      " * implementation that keeps one zeroes the caller's copy, and the\n"
      " * entry point frees whatever was not kept.\n"
      " */\n\n");
  pr ("#ifndef LIBNBD_UNLOCKED_H\n#define LIBNBD_UNLOCKED_H\n\n");
  for (size_t i = 0; i < ncalls; i++) {
    const struct call *c = calls[i];
    if (c->handwritten || c->not_implemented)
      continue;
    print_prototype (c, "extern ", 1);
    pr (";\n");
  }
  pr ("\n#endif\n");
  close_output ();
}

/* ---- lib/api.c ---- */

static const char *state_names[] = {
  "newly created", "connecting", "negotiating", "connected",
  "shut down", "dead",
};

static void
print_state_text (unsigned mask)
{
  int n = 0, total = 0;
  for (int b = 0; b < 6; b++)
    if (mask & (1u << b))
      total++;
  for (int b = 0; b < 6; b++)
    if (mask & (1u << b)) {
      pr ("%s%s", n == 0 ? "" : n == total - 1 ? " or " : ", ", state_names[b]);
      n++;
    }
}

static void
print_fail (const struct call *c, const char *err, const char *name,
            const char *suffix, const char *what)
{
  pr ("    set_error (%s, \"%s%s: %s\");\n", err, name, suffix, what);
  pr ("    ret = %s;\n    goto out;\n  }\n", ret_error_value (c));
}

static void
print_flags_check (const struct call *c, const char *name, const char *setname,
                   unsigned subset)
{
  const struct constset *s = find_set (setname);
  unsigned long mask = subset == NO_FLAGS ? 0 : subset ? subset : set_mask (s);
  if (strcmp (setname, "cmd_flags") == 0) {
    /* Unknown command flags are only refused when strict mode asks for it;
     * anything over 16 bits can never go on the wire.
     */
    pr ("  if ((%s & ~0x%lxU) != 0 &&\n"
        "      ((h->strict & LIBNBD_STRICT_FLAGS) || %s > UINT16_MAX)) {\n",
        name, mask, name);
  }
  else
    pr ("  if ((%s & ~0x%lxU) != 0) {\n", name, mask);
  pr ("    set_error (EINVAL, \"%s: invalid value for flag: 0x%%x\", %s);\n",
      name, name);
  pr ("    ret = %s;\n    goto out;\n  }\n", ret_error_value (c));
}

static void
print_trace_enter (const struct call *c)
{
  pr ("  if (h->debug) {\n");
  pr ("    struct nbd_trace t;\n    nbd_internal_trace_start (&t);\n");
  for (const struct arg *a = c->args; a->kind != ARG_END; a++) {
    switch (a->kind) {
    case ARG_BOOL:
      pr ("    nbd_internal_trace_add (&t, \"%s=%%s\", %s ? \"true\" : \"false\");\n",
          a->name, a->name); break;
    case ARG_INT: case ARG_FD: case ARG_ENUM:
      pr ("    nbd_internal_trace_add (&t, \"%s=%%d\", %s);\n", a->name, a->name); break;
    case ARG_UINT:
      pr ("    nbd_internal_trace_add (&t, \"%s=%%u\", %s);\n", a->name, a->name); break;
    case ARG_UINT32: case ARG_FLAGS:
      pr ("    nbd_internal_trace_add (&t, \"%s=0x%%\" PRIx32, %s);\n", a->name, a->name); break;
    case ARG_INT64:
      pr ("    nbd_internal_trace_add (&t, \"%s=%%\" PRIi64, %s);\n", a->name, a->name); break;
    case ARG_UINT64:
      pr ("    nbd_internal_trace_add (&t, \"%s=%%\" PRIu64, %s);\n", a->name, a->name); break;
    case ARG_UINTPTR:
      pr ("    nbd_internal_trace_add (&t, \"%s=0x%%\" PRIxPTR, %s);\n", a->name, a->name); break;
    case ARG_SIZE:
      pr ("    nbd_internal_trace_add (&t, \"%s=%%zu\", %s);\n", a->name, a->name); break;
    case ARG_STRING: case ARG_PATH:
      pr ("    nbd_internal_trace_add_string (&t, \"%s\", %s);\n", a->name, a->name); break;
    case ARG_STRING_LIST:
      pr ("    nbd_internal_trace_add_list (&t, \"%s\", %s);\n", a->name, a->name); break;
    case ARG_BYTES_IN: case ARG_BYTES_PERSIST_IN:
    case ARG_BYTES_OUT: case ARG_BYTES_PERSIST_OUT:
      pr ("    nbd_internal_trace_add (&t, \"%s=<buf> %s=%%zu\", %s);\n",
          a->name, a->len_name, a->len_name); break;
    case ARG_SOCKADDR:
      pr ("    nbd_internal_trace_add (&t, \"%s=<sockaddr> %s=%%u\", (unsigned) %s);\n",
          a->name, a->len_name, a->len_name); break;
    case ARG_CLOSURE:
      pr ("    nbd_internal_trace_add (&t, \"%s=<fun>\");\n", a->closure); break;
    default: break;
    }
  }
  for (const struct optarg *o = c->optargs; o->kind != OPT_END; o++) {
    if (o->kind == OPT_CLOSURE)
      pr ("    nbd_internal_trace_add (&t, \"%s=%%s\", %s_callback.callback ? \"<fun>\" : \"NULL\");\n",
          o->closure, o->closure);
    else
      pr ("    nbd_internal_trace_add (&t, \"%s=0x%%\" PRIx32, %s);\n", o->name, o->name);
  }
  pr ("    nbd_internal_trace_finish (h, &t, \"enter:\");\n  }\n");
}

static void
print_trace_leave (const struct call *c)
{
  const char *err = ret_error_value (c);
  pr ("  if (h->debug) {\n");
  if (err)
    pr ("    if (ret == %s)\n"
        "      nbd_internal_debug (h, \"leave: error=\\\"%%s\\\"\", nbd_get_error ());\n"
        "    else\n", err);
  switch (c->ret) {
  case RET_ERR: case RET_BOOL: case RET_INT: case RET_ENUM: case RET_FD:
    pr ("      nbd_internal_debug (h, \"leave: ret=%%d\", ret);\n"); break;
  case RET_INT64: case RET_COOKIE:
    pr ("      nbd_internal_debug (h, \"leave: ret=%%\" PRIi64, ret);\n"); break;
  case RET_UINT:
    pr ("      nbd_internal_debug (h, \"leave: ret=%%u\", ret);\n"); break;
  case RET_UINT64:
    pr ("      nbd_internal_debug (h, \"leave: ret=%%\" PRIu64, ret);\n"); break;
  case RET_UINTPTR:
    pr ("      nbd_internal_debug (h, \"leave: ret=0x%%\" PRIxPTR, ret);\n"); break;
  case RET_FLAGS:
    pr ("      nbd_internal_debug (h, \"leave: ret=0x%%\" PRIx32, ret);\n"); break;
  case RET_SIZE:
    pr ("      nbd_internal_debug (h, \"leave: ret=%%zd\", ret);\n"); break;
  case RET_STRING: case RET_STATIC_STRING:
    pr ("      nbd_internal_debug_string (h, \"leave: ret=\", ret);\n"); break;
  default:
    pr ("      ;\n"); break;
  }
  pr ("  }\n");
}

/* The output buffer of a read (nbd_pread and its forms), or NULL. */
static const struct arg *
read_buffer_arg (const struct call *c)
{
  for (const struct arg *a = c->args; a->kind != ARG_END; a++)
    if (a->kind == ARG_BYTES_OUT || a->kind == ARG_BYTES_PERSIST_OUT)
      return a;
  return NULL;
}

static void
emit_entry_point (const struct call *c)
{
  const char *err = ret_error_value (c);
  const char *rt = ret_type (c);
  const struct arg *rbuf = read_buffer_arg (c);

  print_prototype (c, "", 0);
  pr ("\n{\n");
  pr ("  %s%sret;\n\n", rt, rt[strlen (rt) - 1] == '*' ? "" : " ");
  pr ("  const char *prev_context = nbd_internal_enter_context (\"nbd_%s\");\n",
      c->name);
  if (err)
    pr ("  if (h == NULL) {\n"
        "    set_error (EFAULT, \"the handle must not be NULL\");\n"
        "    ret = %s;\n    goto out_unlocked;\n  }\n", err);
  else
    pr ("  if (h == NULL) {\n"
        "    /* No failure value exists for this call: report 0 and leave an error. */\n"
        "    set_error (EFAULT, \"the handle must not be NULL\");\n"
        "    nbd_internal_leave_context (prev_context);\n"
        "    return 0;\n  }\n");
  if (!c->unlocked)
    pr ("  pthread_mutex_lock (&h->lock);\n");
  print_trace_enter (c);
  /* nbd_set_pread_initialize: a read refused by any check below still
   * leaves zeroes in the caller's buffer.  Reads that get past the checks
   * are zeroed by the library where the server did not fill them.
   */
  if (rbuf)
    pr ("  bool checks_passed = false;\n");

  if (c->permitted) {
    pr ("  if (!nbd_internal_state_allows (h, 0x%x, \"", c->permitted);
    print_state_text (c->permitted);
    pr ("\")) {\n    ret = %s;\n    goto out;\n  }\n", err ? err : "0");
  }

  for (const struct arg *a = c->args; a->kind != ARG_END; a++) {
    switch (a->kind) {
    case ARG_STRING: case ARG_PATH: case ARG_STRING_LIST:
    case ARG_BYTES_IN: case ARG_BYTES_OUT:
    case ARG_BYTES_PERSIST_IN: case ARG_BYTES_PERSIST_OUT: case ARG_SOCKADDR:
      pr ("  if (%s == NULL) {\n", a->name);
      print_fail (c, "EFAULT", a->name, "", "must not be NULL");
      break;
    case ARG_CLOSURE:
      /* As libnbd: a closure with only .free is not NULL (it is a
       * freeing action); the other checks still run and .free runs once.
       */
      pr ("  if (%s_callback.callback == NULL && %s_callback.free == NULL) {\n",
          a->closure, a->closure);
      print_fail (c, "EFAULT", a->closure, "_callback", "the callback must not be NULL");
      break;
    case ARG_FD:
      pr ("  if (%s < 0) {\n", a->name);
      print_fail (c, "EBADF", a->name, "", "invalid file descriptor");
      break;
    case ARG_ENUM: {
      const struct constset *s = find_set (a->set);
      pr ("  switch (%s) {\n", a->name);
      for (const struct enum_value *v = s->values; v->name; v++)
        pr ("  case LIBNBD_%s_%s:\n", s->prefix, v->name);
      pr ("    break;\n  default:\n");
      pr ("    set_error (EINVAL, \"%s: invalid value for parameter: %%d\", %s);\n",
          a->name, a->name);
      pr ("    ret = %s;\n    goto out;\n  }\n", err);
      break;
    }
    case ARG_FLAGS:
      print_flags_check (c, a->name, a->set, 0);
      break;
    default:
      break;
    }
  }
  for (const struct optarg *o = c->optargs; o->kind != OPT_END; o++)
    if (o->kind == OPT_FLAGS)
      print_flags_check (c, o->name, o->set, o->subset);

  if (c->not_implemented) {
    pr ("  set_error (ENOTSUP, \"not implemented\");\n");
    pr ("  ret = %s;\n", err ? err : "0");
  }
  else {
    if (rbuf)
      pr ("  checks_passed = true;\n");
    pr ("  ret = nbd_unlocked_%s (", c->name);
    print_call_args (c);
    pr (");\n");
  }
  pr ("  goto out;\n");
  pr ("\n out:\n");
  /* A blocking command completed by another thread may come back with
   * the lock already given up (lib/wait.c): then neither unlock nor
   * trace (the handle is no longer this thread's to read).
   */
  if (c->may_release_lock && !c->unlocked && err)
    pr ("  if (nbd_internal_take_lock_released ())\n    goto out_unlocked;\n");
  if (rbuf)
    pr ("  if (!checks_passed && h->pread_initialize && %s != NULL)\n"
        "    memset (%s, 0, %s);\n", rbuf->name, rbuf->name, rbuf->len_name);
  print_trace_leave (c);
  if (!c->unlocked)
    pr ("  pthread_mutex_unlock (&h->lock);\n");
  if (err)
    pr (" out_unlocked:\n");
  /* Closures the implementation did not take over are finished here, on
   * every path, so each .free runs exactly once.
   */
  for (const struct arg *a = c->args; a->kind != ARG_END; a++)
    if (a->kind == ARG_CLOSURE)
      pr ("  if (%s_callback.free)\n    %s_callback.free (%s_callback.user_data);\n",
          a->closure, a->closure, a->closure);
  for (const struct optarg *o = c->optargs; o->kind != OPT_END; o++)
    if (o->kind == OPT_CLOSURE)
      pr ("  if (%s_callback.free)\n    %s_callback.free (%s_callback.user_data);\n",
          o->closure, o->closure, o->closure);
  pr ("  nbd_internal_leave_context (prev_context);\n");
  pr ("  return ret;\n}\n\n");
}

static void
emit_api_c (void)
{
  open_output ("lib/api.c");
  pr ("/* Public entry points.  Generated by generator/generator.c from\n"
      " * generator/api-*.c: do not edit.\n */\n\n");
  pr ("#include <config.h>\n\n#include <errno.h>\n#include <inttypes.h>\n"
      "#include <pthread.h>\n#include <stdint.h>\n#include <stdlib.h>\n#include <string.h>\n\n"
      "#include \"internal.h\"\n\n");
  for (size_t i = 0; i < ncalls; i++)
    if (!calls[i]->handwritten)
      emit_entry_point (calls[i]);
  close_output ();
}

/* ---- lib/libnbd.syms ---- */

static void
emit_syms (void)
{
  int prev = -1;
  open_output ("lib/libnbd.syms");
  pr ("# Generated by generator/generator.c: do not edit.\n");
  /* One node per version that added calls; each inherits the previous one. */
  for (int minor = 0; minor <= LATEST_MINOR; minor += 2) {
    char v[16];
    int any = 0;
    snprintf (v, sizeof v, "1.%d", minor);
    for (size_t i = 0; i < ncalls; i++)
      if (strcmp (calls[i]->version, v) == 0) {
        if (!any)
          pr ("\nLIBNBD_%s {\n  global:\n", v);
        any = 1;
        pr ("    nbd_%s;\n", calls[i]->name);
      }
    if (!any)
      continue;
    if (prev < 0)
      pr ("  local: *;\n};\n");
    else
      pr ("} LIBNBD_1.%d;\n", prev);
    prev = minor;
  }
  /* The extensions last, inheriting every upstream node. */
  pr ("\nLIBNBD_EXT_1 {\n  global:\n");
  for (size_t i = 0; i < ncalls; i++)
    if (calls[i]->extension)
      pr ("    nbd_%s;\n", calls[i]->name);
  pr ("} LIBNBD_1.%d;\n", prev);
  close_output ();
}

/* ---- man pages ---- */

/* Inline markup to troff; `verbatim` keeps spacing as is. */
static void
man_inline (const char *s, size_t len)
{
  for (size_t i = 0; i < len; i++) {
    char ch = s[i];
    if ((ch == 'C' || ch == 'B' || ch == 'I' || ch == 'L') && i + 1 < len
        && s[i + 1] == '<') {
      int depth = 1;
      size_t j = i + 2;
      while (j < len && depth > 0) {
        if (s[j] == '<') depth++;
        else if (s[j] == '>') depth--;
        if (depth > 0) j++;
      }
      size_t inner = i + 2, inner_len = j - inner;
      if (ch == 'L') {
        const char *paren = memchr (s + inner, '(', inner_len);
        size_t name_len = paren ? (size_t) (paren - (s + inner)) : inner_len;
        pr ("\\fB");
        man_inline (s + inner, name_len);
        pr ("\\fR");
        if (paren)
          man_inline (paren, inner_len - name_len);
      }
      else {
        pr (ch == 'I' ? "\\fI" : "\\fB");
        man_inline (s + inner, inner_len);
        pr ("\\fR");
      }
      i = j;
      continue;
    }
    if (ch == '\\')
      pr ("\\e");
    else if (ch == '-')
      pr ("\\-");
    else
      pr ("%c", ch);
  }
}

static void
man_line_start (const char *s, size_t len)
{
  if (len > 0 && (s[0] == '.' || s[0] == '\''))
    pr ("\\&");
  man_inline (s, len);
  pr ("\n");
}

static void
man_text (const char *text)
{
  const char *p = text;
  int in_verbatim = 0;
  pr (".PP\n");
  while (*p) {
    const char *eol = strchr (p, '\n');
    size_t len = eol ? (size_t) (eol - p) : strlen (p);
    if (len == 0) {
      if (in_verbatim) { pr (".fi\n.in\n"); in_verbatim = 0; }
      pr (".PP\n");
    }
    else if (len >= 2 && p[0] == ' ' && p[1] == ' ') {
      if (!in_verbatim) { pr (".in +4n\n.nf\n"); in_verbatim = 1; }
      man_line_start (p + 2, len - 2);
    }
    else if (len >= 2 && p[0] == '-' && p[1] == ' ') {
      if (in_verbatim) { pr (".fi\n.in\n"); in_verbatim = 0; }
      pr (".IP \\(bu 2\n");
      man_line_start (p + 2, len - 2);
    }
    else {
      if (in_verbatim) { pr (".fi\n.in\n"); in_verbatim = 0; }
      man_line_start (p, len);
    }
    p += len;
    if (*p == '\n')
      p++;
  }
  if (in_verbatim)
    pr (".fi\n.in\n");
}

static void
emit_man_page (const struct call *c)
{
  char rel[512];
  FILE *saved;
  static char buf[65536];

  snprintf (rel, sizeof rel, "docs/nbd_%s.3", c->name);
  open_output (rel);
  pr (".\\\" t\n");
  pr (".\\\" Generated by generator/generator.c: do not edit.\n");
  pr (".TH NBD_%s 3 \"\" \"libnbd %s\" \"LIBNBD\"\n", upper (c->name), PACKAGE_VERSION);
  pr (".SH NAME\nnbd_%s \\- ", c->name);
  man_inline (c->summary, strlen (c->summary));
  pr ("\n.SH SYNOPSIS\n.nf\n.B #include <%s>\n.PP\n",
      c->extension ? "libnbd-ext.h" : "libnbd.h");

  /* Render the prototype into a buffer, then escape it. */
  saved = out;
  {
    FILE *mem = fmemopen (buf, sizeof buf - 1, "w");
    if (!mem)
      die ("fmemopen: %s", strerror (errno));
    out = mem;
    for (const struct arg *a = c->args; a->kind != ARG_END; a++)
      if (a->kind == ARG_CLOSURE) {
        print_closure_typedef (find_closure (a->closure), "");
        pr ("\n");
      }
    for (const struct optarg *o = c->optargs; o->kind != OPT_END; o++)
      if (o->kind == OPT_CLOSURE) {
        print_closure_typedef (find_closure (o->closure), "");
        pr ("\n");
      }
    print_prototype (c, "", 0);
    pr (";");
    long n = ftell (mem);
    fclose (mem);
    buf[n] = 0;
  }
  out = saved;
  for (char *line = buf; line && *line; ) {
    char *nl = strchr (line, '\n');
    size_t len = nl ? (size_t) (nl - line) : strlen (line);
    if (len == 0)
      pr (".PP\n");
    else {
      /* Wrap long prototypes after commas. */
      size_t start = 0, col = 0;
      for (size_t i = 0; i < len; i++, col++) {
        if (line[i] == ',' && col > 56) {
          pr ("\\&");
          man_inline (line + start, i + 1 - start);
          pr ("\n");
          start = i + 2;
          col = 0;
          i++;
          pr ("\\&    ");
        }
      }
      if (start == 0)
        man_line_start (line, len);
      else {
        man_inline (line + start, len - start);
        pr ("\n");
      }
    }
    line = nl ? nl + 1 : NULL;
  }
  pr (".fi\n");

  pr (".SH DESCRIPTION\n");
  man_text (c->description);

  pr (".SH \"RETURN VALUE\"\n.PP\n");
  switch (c->ret) {
  case RET_ERR: pr ("On success 0 is returned.\n"); break;
  case RET_BOOL: pr ("Returns 1 for true and 0 for false.\n"); break;
  case RET_INT: pr ("Returns an integer greater than or equal to 0.\n"); break;
  case RET_INT64: pr ("Returns a 64 bit signed integer greater than or equal to 0.\n"); break;
  case RET_COOKIE:
    pr ("Returns the cookie of the command, a number greater than or equal to 1 that\n"
        "is unique within this handle and identifies the command in later calls.\n");
    break;
  case RET_UINT: case RET_UINT64: pr ("Returns an unsigned integer.\n"); break;
  case RET_UINTPTR: pr ("Returns the stored value.\n"); break;
  case RET_FLAGS:
    pr ("Returns a bitmask of \\fBLIBNBD_%s_*\\fR flags.\n", find_set (c->ret_set)->prefix);
    break;
  case RET_ENUM:
    pr ("Returns one of the \\fBLIBNBD_%s_*\\fR values.\n",
        c->ret_set ? find_set (c->ret_set)->prefix : "");
    break;
  case RET_FD: pr ("Returns a file descriptor.\n"); break;
  case RET_STRING:
    pr ("Returns a newly allocated string which the caller must release with\n"
        "\\fBfree\\fR(3).\n");
    break;
  case RET_STATIC_STRING:
    pr ("Returns a string owned by the library; the caller must not free it.\n");
    break;
  case RET_SIZE: pr ("Returns a count greater than or equal to 0.\n"); break;
  case RET_VOID: pr ("This call returns nothing.\n"); break;
  case RET_HANDLE: pr ("Returns a new handle.\n"); break;
  }

  pr (".SH ERRORS\n.PP\n");
  if (c->cannot_fail || !ret_error_value (c))
    pr ("This call cannot fail.\n");
  else if (c->signal_safe)
    pr ("It fails, returning \\fB%s\\fR, only when the handle is NULL.\n"
        "Because it must be safe in a signal handler it sets no error then:\n"
        "\\fBnbd_get_error\\fR(3) and \\fBnbd_get_errno\\fR(3) keep what they held.\n",
        ret_error_value (c));
  else {
    pr ("On failure \\fB%s\\fR is returned; \\fBnbd_get_error\\fR(3) and\n"
        "\\fBnbd_get_errno\\fR(3) then describe the error.\n",
        ret_error_value (c));
    int nulls = 0;
    for (const struct arg *a = c->args; a->kind != ARG_END; a++)
      if (is_nonnull_pointer (a) || a->kind == ARG_CLOSURE)
        nulls = 1;
    if (!c->no_handle || nulls)
      pr (".PP\nA NULL handle%s fails with \\fBEFAULT\\fR.\n",
          nulls ? " or NULL pointer argument" : "");
    if (c->permitted)
      pr (".PP\nCalling it in a state not listed under HANDLE STATE fails with\n"
          "\\fBENOTCONN\\fR before connecting and \\fBEINVAL\\fR otherwise.\n");
    if (c->not_implemented)
      pr (".PP\nThis build does not implement this call yet: it always fails\n"
          "with \\fBENOTSUP\\fR.\n");
  }
  {
    char positions[64];
    if (nonnull_positions (c, positions, sizeof positions) > 0) {
      int first = 1;
      pr (".PP\nThese parameters must not be NULL:");
      if (!c->no_handle && !c->null_handle_ok) {
        pr (" \\fIh\\fR");
        first = 0;
      }
      for (const struct arg *a = c->args; a->kind != ARG_END; a++)
        if (is_nonnull_pointer (a)) {
          pr ("%s \\fI%s\\fR", first ? "" : ",", a->name);
          first = 0;
        }
      pr (".\nThe header marks them so that GCC 12 or later warns about a\n"
          "literal NULL at compile time (see \\fBEFAULT\\fR under \"ERROR HANDLING\"\n"
          "and \"VERSIONS\" in \\fBlibnbd\\fR(3)).\n");
    }
  }

  if (!c->no_handle) {
    static const char *rows[] = {
      "Handle created, before connecting",
      "Connecting",
      "Connecting & handshaking (opt_mode)",
      "Connected to the server",
      "Connection shut down",
      "Handle dead",
    };
    pr (".SH \"HANDLE STATE\"\n.PP\n");
    pr ("\\fBnbd_%s\\fR may be called in these states:\n", c->name);
    pr (".TS\nallbox;\nl l.\n");
    for (int b = 0; b < 6; b++)
      pr ("%s\t%s\n", rows[b],
          c->permitted == 0 || (c->permitted & (1u << b)) ? "allowed" : "error");
    pr (".TE\n");
  }

  if (c->extension)
    pr (".SH VERSION\n.PP\nThis call is an extension of this library, not part of "
        "upstream libnbd:\nit is declared in \\fB<libnbd-ext.h>\\fR and exported "
        "under the symbol version\n\\fBLIBNBD_EXT_1\\fR (see \\fBlibnbd-ext\\fR(3)).\n");
  else
    pr (".SH VERSION\n.PP\nThis call first appeared in libnbd %s.\n", c->version);
  pr (".PP\nTo check for it at compile time, test the macro:\n.PP\n.in +4n\n.nf\n"
      "#define LIBNBD_HAVE_NBD_%s 1\n.fi\n.in\n", upper (c->name));

  pr (".SH \"SEE ALSO\"\n.PP\n");
  {
    char links[2048];
    snprintf (links, sizeof links, "%s%slibnbd(3)", c->see_also ? c->see_also : "",
              c->see_also && *c->see_also ? " " : "");
    int first = 1;
    for (char *tok = strtok (links, " \n"); tok; tok = strtok (NULL, " \n")) {
      char *paren = strchr (tok, '(');
      if (!first)
        pr (",\n");
      if (paren) {
        *paren = 0;
        pr ("\\fB%s\\fR(%s", tok, paren + 1);
      }
      else
        pr ("\\fB%s\\fR", tok);
      first = 0;
    }
    pr ("\n");
  }
  close_output ();
}

static void
emit_call_list (void)
{
  open_output ("docs/api-calls.txt");
  for (size_t i = 0; i < ncalls; i++)
    pr ("nbd_%s %s%s\n", calls[i]->name, calls[i]->version,
        calls[i]->not_implemented ? " not-implemented" : "");
  close_output ();
}

static void
make_dir (const char *rel)
{
  char path[4096];
  snprintf (path, sizeof path, "%s/%s", outdir, rel);
  if (mkdir (path, 0755) != 0 && errno != EEXIST)
    die ("mkdir %s: %s", path, strerror (errno));
}

int
main (int argc, char *argv[])
{
  if (argc != 2)
    die ("usage: generator OUTDIR");
  outdir = argv[1];

  add_table (api_handle_calls);
  add_table (api_connect_calls);
  add_table (api_info_calls);
  add_table (api_command_calls);
  add_table (api_ext_calls);
  qsort (calls, ncalls, sizeof calls[0], cmp_calls);

  make_dir ("include");
  make_dir ("lib");
  make_dir ("docs");
  emit_header ();
  emit_ext_header ();
  emit_unlocked_h ();
  emit_api_c ();
  emit_syms ();
  for (size_t i = 0; i < ncalls; i++)
    emit_man_page (calls[i]);
  emit_call_list ();
  return 0;
}
