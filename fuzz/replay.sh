#!/bin/sh
# Run one fuzz target once over its seed corpus and its regression inputs
# (the automake test driver calls this with the target as $1).  A crash,
# a sanitizer report or a broken API contract fails the test; the target
# prints "Running: FILE" before each input, so the log names the culprit.
set -e
prog=$1
name=$(basename "$prog")
name=${name#fuzz-}
: "${srcdir:=.}"
files=$(find "$srcdir/corpus/$name" "$srcdir/regress/$name" -type f ! -name "README*" 2>/dev/null | LC_ALL=C sort)
if test -z "$files"; then
    echo "$0: no inputs for $name in $srcdir/corpus/$name" >&2
    exit 1
fi
# shellcheck disable=SC2086  # file names are ours: no blanks
exec "$prog" $files
