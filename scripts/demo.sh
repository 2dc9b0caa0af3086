#!/usr/bin/env bash
# The main job: fetch, cache and refresh a token through the C ABI.
#
#   scripts/demo.sh                                   against the project's local fake WeChat
#   WX_APPID=wx... WX_SECRET=... scripts/demo.sh      against the real WeChat (stable_token)
#
# With the fake, tokens live 20 s so that the refresh ahead of expiry shows within seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet -p wx_token -p wx_fake
lib=target/release
cc -std=c11 -O2 -Wall -Wextra -Werror -Iinclude examples/demo.c -o "$lib/wx-token-demo" \
    -L"$lib" -lwx_token -Wl,-rpath,"$PWD/$lib"

if [[ -n "${WX_APPID:-}" && -n "${WX_SECRET:-}" ]]; then
    echo "using the real WeChat for $WX_APPID"
    export WX_OPTIONS="${WX_OPTIONS:-}"
    exec "$lib/wx-token-demo"
fi

fake_out=$(mktemp)
# The fake exits when this script's pipe to its stdin closes, whatever way the script ends.
coproc FAKE { exec "$lib/wx-fake-wechat" --app wx_demo_appid:demo_secret --lifetime 20 --overlap 5 --exit-on-stdin-eof >"$fake_out"; }
trap 'kill "$FAKE_PID" 2>/dev/null || true; rm -f "$fake_out"' EXIT
for _ in $(seq 100); do grep -q listening "$fake_out" && break; sleep 0.05; done
base=$(sed -n 's/^listening on //p' "$fake_out")
echo "using the local fake WeChat at $base (tokens live 20 s)"
WX_APPID=wx_demo_appid WX_SECRET=demo_secret \
    WX_OPTIONS="{\"api_base\":\"$base\",\"refresh_ahead_secs\":10}" \
    WX_DEMO_WAIT_REFRESH=1 WX_DEMO_INVALIDATE=1 \
    "$lib/wx-token-demo"
