# Sourced by the tests that run Debian's Python nbd module (built against
# the system libnbd) on the library just built: sets $python, or skips
# the test when that cannot work.

# Debian's Python module cannot load a sanitizer build of the library.
if [ -n "${SANITIZER_CFLAGS:-}" ]; then
    echo "sanitizer build: skipping"
    exit 77
fi
python=/usr/bin/python3
if ! [ -x $python ] || ! $python -c 'import nbd' 2>/dev/null; then
    echo "python3-libnbd missing: skipping"
    exit 77
fi
if ! command -v nbdkit >/dev/null; then
    echo "nbdkit missing: skipping"
    exit 77
fi
