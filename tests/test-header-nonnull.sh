#!/bin/bash
# The attributes of <libnbd.h> at work: GCC (12 or later) warns about a
# literal NULL passed where the header says nonnull, and about a handle
# from nbd_create released with free(); a program may switch the nonnull
# attribute off by defining LIBNBD_ATTRIBUTE_NONNULL itself; a compiler
# that is not GCC sees plain declarations.  And the library built with
# the header keeps its run-time checks: NULL still fails with EFAULT.
set -euo pipefail

: "${abs_top_srcdir:?must be set (run via make check)}"
: "${abs_top_builddir:?must be set (run via make check)}"
: "${CC:=cc}"
: "${SANITIZER_CFLAGS:=}"

gcc_major="$(echo __GNUC__ | $CC -E -P - 2>/dev/null | tr -d '[:space:]')"
clang="$(echo __clang__ | $CC -E -P - 2>/dev/null | tr -d '[:space:]')"
if test "$clang" != "__clang__" || ! test "$gcc_major" -ge 12 2>/dev/null; then
    echo "$0: SKIP: $CC is not GCC 12 or later"
    exit 77
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail=0
inc="-I$abs_top_srcdir/include"

cat > "$tmp/null-arg.c" <<'C'
#include <stdlib.h>
#include <libnbd.h>
int
main (void)
{
  struct nbd_handle *h = nbd_create ();
  int r = nbd_set_export_name (h, NULL);
  nbd_close (h);
  return r == -1 ? EXIT_SUCCESS : EXIT_FAILURE;
}
C
cat > "$tmp/null-handle.c" <<'C'
#include <libnbd.h>
int
main (void)
{
  return nbd_get_debug (NULL);
}
C
cat > "$tmp/bad-free.c" <<'C'
#include <stdlib.h>
#include <libnbd.h>
int
main (void)
{
  struct nbd_handle *h = nbd_create ();
  free (h);
  return 0;
}
C
cat > "$tmp/good-free.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <libnbd.h>
int
main (void)
{
  struct nbd_handle *h = nbd_create ();
  char *name;
  if (h == NULL)
    return EXIT_FAILURE;
  name = nbd_get_export_name (h);
  if (name == NULL)
    return EXIT_FAILURE;
  printf ("[%s]\n", name);
  free (name);
  nbd_close (h);
  return EXIT_SUCCESS;
}
C

# compile NAME EXPECTED-WARNING|"" [CFLAGS...]: compile tmp/NAME.c with
# -Wall; the warning (a -W option name) must appear, or none at all.
compile ()
{
    local name="$1" want="$2"
    shift 2
    if ! $CC -std=gnu11 -Wall -O2 $inc "$@" -c "$tmp/$name.c" -o "$tmp/$name.o" \
         2> "$tmp/$name.err"; then
        cat "$tmp/$name.err"
        echo "$0: $name.c does not compile"
        fail=1
        return
    fi
    if test -n "$want"; then
        if ! grep -q -- "\[$want\]" "$tmp/$name.err"; then
            cat "$tmp/$name.err"
            echo "$0: $name.c: expected a $want warning"
            fail=1
        fi
    elif test -s "$tmp/$name.err"; then
        cat "$tmp/$name.err"
        echo "$0: $name.c: expected no warning"
        fail=1
    fi
}

compile null-arg -Wnonnull
grep -q "argument 2 null where non-null expected" "$tmp/null-arg.err" || {
    echo "$0: null-arg.c: the warning does not name argument 2"; fail=1; }
compile null-handle -Wnonnull
compile bad-free -Wmismatched-dealloc
compile good-free ""
# A program that defines the macro itself gets no nonnull attributes.
compile null-arg "" '-DLIBNBD_ATTRIBUTE_NONNULL(...)='
# Not GCC: no attributes at all, so no warning and no __attribute__ in
# the declarations.  The system headers need __GNUC__, so they are read
# first and the macro is dropped just before <libnbd.h>.
cat > "$tmp/not-gcc.c" <<'C'
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/socket.h>
#undef __GNUC__
#include <libnbd.h>
#ifdef LIBNBD_GCC_VERSION
#error "LIBNBD_GCC_VERSION defined without __GNUC__"
#endif
int
main (void)
{
  return nbd_set_export_name (NULL, NULL);
}
C
compile not-gcc "" -Wno-builtin-macro-redefined
if $CC -E $inc "$tmp/not-gcc.c" 2>/dev/null |
        sed -n '/nbd_set_export_name/,/;/p' | grep -q '__attribute__'; then
    echo "$0: without __GNUC__ the declarations still carry __attribute__"
    fail=1
fi
# Clang says it is GCC 4.2: it gets no attributes either, and no warning.
if command -v clang > /dev/null 2>&1; then
    if ! clang -Wall $inc -c "$tmp/null-arg.c" -o "$tmp/clang.o" 2> "$tmp/clang.err" ||
            test -s "$tmp/clang.err"; then
        cat "$tmp/clang.err"
        echo "$0: clang: null-arg.c should compile without warnings"
        fail=1
    fi
fi

# The library's own NULL checks survive the attributes: a NULL pointer
# passed at run time (the attribute disabled in this caller, as in
# null-arg.c above) fails with EFAULT instead of crashing.
cat > "$tmp/efault.c" <<'C'
#define LIBNBD_ATTRIBUTE_NONNULL(...)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <libnbd.h>
static int bad;
static void
expect_efault (int r, const char *what)
{
  if (r != -1 || nbd_get_errno () != EFAULT) {
    fprintf (stderr, "%s: returned %d, errno %d (%s)\n", what, r,
             nbd_get_errno (), nbd_get_error ());
    bad = 1;
  }
}
int
main (void)
{
  struct nbd_handle *h = nbd_create ();
  char buf[512];
  if (h == NULL)
    return EXIT_FAILURE;
  expect_efault (nbd_set_export_name (h, NULL), "nbd_set_export_name");
  expect_efault (nbd_connect_tcp (h, "localhost", NULL), "nbd_connect_tcp");
  expect_efault (nbd_get_debug (NULL), "nbd_get_debug");
  expect_efault (nbd_get_handle_size (NULL), "nbd_get_handle_size");
  expect_efault (nbd_pread (NULL, buf, sizeof buf, 0, 0), "nbd_pread");
  if (nbd_get_handle_name (NULL) != NULL || nbd_get_errno () != EFAULT) {
    fprintf (stderr, "nbd_get_handle_name (NULL) did not fail with EFAULT\n");
    bad = 1;
  }
  nbd_close (h);
  return bad ? EXIT_FAILURE : EXIT_SUCCESS;
}
C
if ! $CC -std=gnu11 -Wall -O2 $SANITIZER_CFLAGS $inc "$tmp/efault.c" -o "$tmp/efault" \
     -L"$abs_top_builddir/lib/.libs" -lnbd; then
    echo "$0: efault.c does not build"
    fail=1
elif ! LD_LIBRARY_PATH="$abs_top_builddir/lib/.libs" "$tmp/efault"; then
    echo "$0: NULL arguments did not fail with EFAULT"
    fail=1
fi

exit $fail
