#!/usr/bin/env bash
# The C# binding's tests (NUnit 2.6.4), on Mono and on CoreCLR 3.1, both run by tools/MiniRunner.cs, against the real
# libwx_token.so and the real fake WeChat server. Prints one "N passed, N failed" line per runtime.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source ./common.sh

ensure_native
ensure_mono
ensure_coreclr
mkdir -p "$BUILD"
build_mono
build_core
build_package
build_samples

status=0

# The same NUnit 2.6 tests on each runtime, run by MiniRunner (compiled into the test exe), which prints a
# "N passed, N failed" line and exits nonzero on any failure.
run_tests() { # NAME HOST...
    local name=$1 rc summary
    shift
    set +e
    (cd "$BUILD/$name" && WX_PROBE_DIR=$BUILD/$name/probe WX_PKG_APP=$BUILD/pkgtest/app-$name timeout 600 "$@" \
        WxToken.Tests.exe --timeout 60 </dev/null >"$name.log" 2>&1)
    rc=$?
    set -e
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$BUILD/$name/$name.log" | tail -1 || true)
    if [ "$rc" -ne 0 ] || [ -z "$summary" ]; then
        status=1
        grep -A12 '^FAIL ' "$BUILD/$name/$name.log" | head -80 >&2 || true
        [ -n "$summary" ] || tail -20 "$BUILD/$name/$name.log" >&2
    fi
    local label=$name
    [ "$name" = core ] && label=coreclr
    echo "$label: ${summary:-0 passed, 0 failed}"
}

run_tests mono mono --debug
run_tests core "$DOTNET"

exit $status
