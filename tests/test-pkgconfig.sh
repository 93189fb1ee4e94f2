#!/bin/bash
# "make install DESTDIR=..." installs the header, the library, the
# pkg-config file and the man pages; a program built with
# "pkg-config --cflags --libs libnbd" against that tree runs and uses the
# installed library.
set -euo pipefail

: "${abs_top_builddir:?must be set (run via make check)}"
: "${prefix:?}" "${libdir:?}" "${includedir:?}" "${mandir:?}"
: "${PACKAGE_VERSION:?}"
: "${CC:=cc}"
: "${MAKE:=make}"
: "${SANITIZER_CFLAGS:=}"

if ! command -v pkg-config >/dev/null 2>&1; then
    echo "$0: SKIP: pkg-config not installed"
    exit 77
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
dest="$tmp/root"

# A separate make, not part of the one running the tests.
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
    $MAKE -C "$abs_top_builddir" install DESTDIR="$dest" > "$tmp/install.log" 2>&1 || {
    cat "$tmp/install.log"
    echo "$0: make install DESTDIR=$dest failed"
    exit 1
}

fail=0
pages=
if test "${DOCS_ENABLED:-yes}" = yes; then
    pages="$mandir/man3/libnbd.3 $mandir/man3/nbd_create.3
           $mandir/man3/nbd_get_version.3 $mandir/man3/nbd_aio_pread.3"
fi
for f in "$includedir/libnbd.h" "$libdir/libnbd.so.0" "$libdir/libnbd.so" \
         "$libdir/pkgconfig/libnbd.pc" $pages; do
    if ! test -e "$dest$f"; then
        echo "$0: not installed: $f"
        fail=1
    fi
done
# All the man pages, or none with ./configure --disable-docs.
n="$(ls "$dest$mandir/man3" 2>/dev/null | grep -c '^nbd_.*\.3$' || true)"
if test "${DOCS_ENABLED:-yes}" = yes && test "$n" -lt 160; then
    echo "$0: only $n man pages installed in $mandir/man3"
    fail=1
elif test "${DOCS_ENABLED:-yes}" = no && test "$n" -ne 0; then
    echo "$0: $n man pages installed although docs are disabled"
    fail=1
fi
test $fail -eq 0 || exit 1

export PKG_CONFIG_PATH="$dest$libdir/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$dest"

version="$(pkg-config --modversion libnbd)"
if test "$version" != "$PACKAGE_VERSION"; then
    echo "$0: pkg-config --modversion libnbd: $version, expected $PACKAGE_VERSION"
    exit 1
fi
flags="$(pkg-config --cflags --libs libnbd)"
echo "pkg-config --cflags --libs libnbd: $flags"
case "$flags" in
    *"-I$dest$includedir"*) ;;
    *) echo "$0: --cflags does not point into $dest$includedir"; exit 1 ;;
esac

cat > "$tmp/prog.c" <<'PROG'
#include <stdio.h>
#include <stdlib.h>
#include <libnbd.h>

int
main (void)
{
  struct nbd_handle *h = nbd_create ();

  if (h == NULL) {
    fprintf (stderr, "%s\n", nbd_get_error ());
    return EXIT_FAILURE;
  }
  printf ("%s %s\n", nbd_get_package_name (h), nbd_get_version (h));
  nbd_close (h);
  return EXIT_SUCCESS;
}
PROG

# shellcheck disable=SC2086 # word splitting of the flags is intended
$CC $SANITIZER_CFLAGS -o "$tmp/prog" "$tmp/prog.c" $flags

export LD_LIBRARY_PATH="$dest$libdir"
# It loads the installed library, not the build tree's nor the system's.
if command -v ldd >/dev/null 2>&1; then
    ldd "$tmp/prog" | tee "$tmp/ldd"
    grep -q "libnbd.so.0 => $dest$libdir/libnbd.so.0" "$tmp/ldd" || {
        echo "$0: prog does not load $dest$libdir/libnbd.so.0"; exit 1; }
fi
out="$("$tmp/prog")"
echo "prog printed: $out"
if test "$out" != "libnbd $PACKAGE_VERSION"; then
    echo "$0: expected 'libnbd $PACKAGE_VERSION'"
    exit 1
fi
