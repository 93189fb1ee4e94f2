#!/bin/bash
# libev-loop: the reads of aio-poll, driven by a libev loop.
source "$(dirname "$0")/check-lib.sh"
[ "${libev_built:-yes}" = yes ] || skip "libev-loop not built: configure found no libev (libev-dev)"
check_pattern_reads libev-loop
