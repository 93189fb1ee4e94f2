#!/bin/bash
# glib-loop: the reads of aio-poll, driven by a glib main loop.
source "$(dirname "$0")/check-lib.sh"
[ "${glib_built:-yes}" = yes ] || skip "glib-loop not built: configure found no glib-2.0 (libglib2.0-dev)"
check_pattern_reads glib-loop
