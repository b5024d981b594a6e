#!/usr/bin/env bash
# Runs every fuzz target in turn for SECS seconds each (default 600), one at
# a time and niced: the machine is shared. Works on stable Rust through
# RUSTC_BOOTSTRAP=1 (cargo fuzz needs nightly-only -Z flags).
#   fuzz/run.sh                  # all targets, 10 minutes each
#   SECS=60 fuzz/run.sh smtp_data
# Crashes land in fuzz/artifacts/<target>/; the working corpus in
# fuzz/corpus/<target>/ (not committed); seeds/<target>/ is the small
# committed seed corpus.
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-fuzz}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
SECS=${SECS:-600}
targets=("$@")
((${#targets[@]})) || targets=(smtp_command smtp_session smtp_data smtp_reply pop3_session imap_session)
cargo fuzz build -O
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    echo "== $t for ${SECS}s"
    nice -n 10 cargo fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        > "artifacts/$t.log" 2>&1 || { status=1; echo "!! $t found a failure: see fuzz/artifacts/$t.log"; }
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+ *DONE' "artifacts/$t.log" || true
done
exit $status
