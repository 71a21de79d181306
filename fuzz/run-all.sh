#!/bin/sh
# Runs every fuzz target one after another for SECONDS each (default 600), at low CPU
# priority, in cargo-fuzz's default build: optimised, AddressSanitizer, and debug assertions
# with overflow checks on (which `-O` would turn off). New inputs go to fuzz/work/<target>/
# (git-ignored); the committed seeds in fuzz/corpus/<target>/ are read but never written.
# Crashes land in fuzz/artifacts/<target>/.
# Usage: fuzz/run-all.sh [SECONDS] [TARGET...]   (see docs/fuzzing.md); FUZZ_NICE sets the
# niceness (default 19), e.g. to run two halves of the list side by side on an idle machine.
set -u
cd "$(dirname "$0")"
seconds=${1:-600}
[ $# -gt 0 ] && shift
targets=${*:-"startup framing extended scram auth_file admin_command config"}
export RUSTC_BOOTSTRAP=1
status=0
for target in $targets; do
    mkdir -p "work/$target"
    echo "=== $target: ${seconds}s, started $(date -u +%FT%TZ)"
    nice -n "${FUZZ_NICE:-19}" cargo fuzz run "$target" "work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=5 -print_final_stats=1 ||
        status=1
    echo "=== $target: finished $(date -u +%FT%TZ), exit $status"
done
exit $status
