#!/usr/bin/env bash
# The engine's tests again under AddressSanitizer, when a nightly toolchain is installed
# (sanitizers are nightly-only). Without one, says so and succeeds: the step is optional.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "sanitize: no nightly toolchain, AddressSanitizer run skipped"
    exit 0
fi
target=$(rustc -vV | sed -n 's/^host: //p')
# A target dir of its own: instrumented artifacts must not mix with the normal ones. --target
# keeps build scripts and proc macros uninstrumented.
export RUSTFLAGS="-Zsanitizer=address" ASAN_OPTIONS="detect_leaks=0" CARGO_TARGET_DIR=target/asan
# The store tests run examples/store_peer processes: instrumented too.
cargo +nightly build -p wx_token --target "$target" --example store_peer
cargo +nightly test -p wx_token --target "$target" --lib --test engine --test fork --test store --test shutdown
