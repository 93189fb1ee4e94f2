#!/bin/bash
# The soak (soak.c) on the library just built.  By hand:
#   CONFORMANCE_SOAK_SECONDS=600 make -C tests/conformance check TESTS=soak.sh
# CONFORMANCE_SOAK_VALGRIND=1 runs it under valgrind (leaks are errors);
# CONFORMANCE_SOAK_LIB=system runs it on Debian's libnbd instead.
set -u
build=${abs_top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
seconds=${CONFORMANCE_SOAK_SECONDS:-600}
command -v nbdkit >/dev/null || { echo "nbdkit missing: skipping"; exit 77; }

if [ "${CONFORMANCE_SOAK_LIB:-ours}" = system ]; then
    libpath=
else
    libpath=$build/lib/.libs
fi
run=()
if [ "${CONFORMANCE_SOAK_VALGRIND:-0}" = 1 ]; then
    [ -z "${SANITIZER_CFLAGS:-}" ] || { echo "valgrind with sanitizers: skipping"; exit 77; }
    run=(valgrind --leak-check=full --error-exitcode=1 --quiet --num-callers=30)
fi
# ldd shows which libnbd.so.0 the run will load.
LD_LIBRARY_PATH=$libpath ldd "$build/tests/conformance/soak" | grep libnbd
# nbdkit logs every injected error: keep those out of the log.
env LD_LIBRARY_PATH="$libpath" CONFORMANCE_SOAK_SECONDS="$seconds" \
    timeout -k 10 $((seconds + 240)) "${run[@]}" "$build/tests/conformance/soak" \
    2> >(grep -v 'injecting EIO error' >&2)
