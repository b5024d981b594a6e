#!/usr/bin/env bash
# The one test command (README "Test it"): build, unit tests, end-to-end tests.
# Usage: tests/run.sh [extra pytest arguments, e.g. -k pop3 or -x]
# Honours CARGO_TARGET_DIR (default: target/ in the repository).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
# The e2e harness passes no FERRYMAIL_* variable to the server, but cargo
# test would see them: they are configuration, and a stray one fails tests.
ferrymail_vars=$(compgen -e | grep '^FERRYMAIL_' || true)
if [[ -n $ferrymail_vars ]]; then
    echo "warning: these FERRYMAIL_* variables are set and apply to cargo test:" $ferrymail_vars >&2
fi

echo "== prerequisites"
missing=0
need() { # need <what> <install hint> <check command...>
    local what=$1 hint=$2
    shift 2
    if ! "$@" >/dev/null 2>&1; then
        echo "missing: $what -> $hint" >&2
        missing=1
    fi
}
need cargo "install Rust 1.95 with rustup: https://rustup.rs" command -v cargo
need rustfmt "rustup component add rustfmt" cargo fmt --version
need clippy "rustup component add clippy" cargo clippy --version
need python3 "apt-get install -y python3" command -v python3
need "python module pytest" "python3 -m pip install -r tests/e2e/requirements.txt" python3 -c 'import pytest'
need swaks "apt-get install -y swaks" command -v swaks
need "GNU mailutils (mail.mailutils)" "apt-get install -y mailutils" command -v mail.mailutils
need systemd-analyze "apt-get install -y systemd" command -v systemd-analyze
need curl "apt-get install -y curl" command -v curl
need mbsync "apt-get install -y --no-install-recommends isync" command -v mbsync
# The plugin kits' e2e test builds a plugin in each language with `make`.
need make "apt-get install -y --no-install-recommends make" command -v make
need "python3 venv (componentize-py)" "apt-get install -y --no-install-recommends python3-venv" python3 -c 'import ensurepip, venv'
need "clang, wasm-ld and wasi-libc (the C kit)" \
    "apt-get install -y --no-install-recommends clang lld wasi-libc libclang-rt-14-dev-wasm32" \
    sh -c 'command -v clang && command -v wasm-ld && test -f /usr/lib/wasm32-wasi/libc.a &&
        ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a'
need "node and npm (componentize-js)" "apt-get install -y --no-install-recommends nodejs npm" sh -c 'command -v node && command -v npm'
need "Node.js 20.19+ (componentize-js; Debian 12 has 18)" "npm install -g node@20" \
    node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a == 20 && b >= 19) ? 0 : 1)'
need "swaks TLS (Net::SSLeay, IO::Socket::SSL)" "apt-get install -y libnet-ssleay-perl libio-socket-ssl-perl" \
    perl -MNet::SSLeay -MIO::Socket::SSL -e1
if command -v rustup >/dev/null 2>&1; then
    need "rust target wasm32-wasip2" "rustup target add wasm32-wasip2" \
        sh -c 'rustup target list --installed | grep -qx wasm32-wasip2'
fi
if ((missing)); then
    echo "install the missing prerequisites above, then run tests/run.sh again" >&2
    exit 1
fi

# Style and lints gate what lands: a warning is a failure here, as in review.
echo "== cargo fmt --check, cargo clippy (warnings are errors)"
cargo fmt --all --check
cargo clippy --release --workspace --all-targets -- -D warnings

echo "== cargo build --release (the Rust wasm plugins build with it)"
cargo build --release

echo "== python example plugin (componentize-py)"
plugins/examples/build-python.sh

# --all-targets includes the criterion benches, which run each benchmark
# once in test mode so they cannot rot (a separate `cargo bench -p` would
# resolve features differently and rebuild wasmtime).
echo "== cargo test --release --workspace --all-targets (unit, integration, benches in test mode)"
cargo test --release --workspace --all-targets

echo "== end-to-end tests (tests/e2e)"
FM_TEST_BIN="$(cd "$CARGO_TARGET_DIR" && pwd)/release/ferrymail"
export FM_TEST_BIN
python3 -m pytest tests/e2e -q "$@"
