#!/bin/bash
# export-info against two exports with different flags and block sizes;
# every flag must equal what Debian's nbdinfo (the system libnbd) reports
# for the same export.
source "$(dirname "$0")/check-lib.sh"
need nbdkit nbdinfo python3

# Each "name: yes|no" line of export-info must match nbdinfo --json.
compare_with_nbdinfo () {
    nbdinfo --json "$1" > "$tmp/info.json" || fail "nbdinfo $1 failed"
    echo "$out" > "$tmp/ours"
    python3 - "$tmp/info.json" "$tmp/ours" <<'PY' || fail "differs from nbdinfo"
import json, sys
export = json.load (open (sys.argv[1]))["exports"][0]
keys = { "read-only": "is_read_only", "rotational": "is_rotational" }
checked = 0
for line in open (sys.argv[2]):
    name, _, value = line.strip ().partition (": ")
    key = keys.get (name, name.replace ("-", "_"))
    if value in ("yes", "no") and key in export:
        if export[key] != (value == "yes"):
            sys.exit ("%s: ours %s, nbdinfo %s" % (name, value, export[key]))
        checked += 1
if checked < 9:
    sys.exit ("only %d flags compared" % checked)
print ("%d flags equal to nbdinfo's" % checked)
PY
}

start_nbdkit rw memory 1M
run export-info "$(uri_of rw)"
[ $rc -eq 0 ] || fail "export-info failed"
expect "size: 1048576" "read-only: no" "can-flush: yes" "can-trim: yes" \
       "protocol: newstyle-fixed" "structured-replies: yes"
compare_with_nbdinfo "$(uri_of rw)"

start_nbdkit ro -r --filter=blocksize-policy pattern 3M \
    blocksize-minimum=512 blocksize-preferred=4096 blocksize-maximum=65536
run export-info "$(uri_of ro)"
[ $rc -eq 0 ] || fail "export-info failed"
expect "size: 3145728" "read-only: yes" "can-trim: no" \
       "block-size-minimum: 512" "block-size-preferred: 4096" \
       "block-size-maximum: 65536"
compare_with_nbdinfo "$(uri_of ro)"
