#!/usr/bin/env bash
# Load test of wx-tokend against the local fake WeChat, on loopback. Prints the load
# generator's figures (see docs/bench/server.md).
#   server/scripts/bench.sh [REQUESTS] [CONNECTIONS] [log_requests: true|false]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-200000}
C=${2:-32}
LOG=${3:-true}
cargo build --release --quiet -p wx_tokend -p wx_fake --bin wx-tokend --bin wx-fake-wechat --example load
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

target/release/wx-fake-wechat --app wx_bench_app:bench_secret_123 --port-file "$dir/fake.url" >/dev/null &
pids+=($!)
for _ in $(seq 50); do [ -s "$dir/fake.url" ] && break; sleep 0.1; done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/wx-tokend.toml" <<TOML
listen = "127.0.0.1:$port"
log_requests = $LOG
# One key makes every request here: lift the per-key request budget (1000/s by default) and
# let all connections come from one peer, to measure the server rather than its limits.
requests_per_second = 0
max_connections_per_peer = 1024
[[app]]
appid = "wx_bench_app"
secret_env = "WX_SECRET_BENCH"
options = { api_base = "$(cat "$dir/fake.url")" }
[[client]]
name = "bench"
key_env = "WX_TOKEND_KEY"
apps = ["wx_bench_app"]
TOML
export WX_SECRET_BENCH=bench_secret_123 WX_TOKEND_KEY=bench-key-0123456789abcdef
target/release/wx-tokend --config "$dir/wx-tokend.toml" 2>"$dir/wx-tokend.log" &
pids+=($!)
for _ in $(seq 50); do grep -q '"listening"' "$dir/wx-tokend.log" && break; sleep 0.1; done
target/release/examples/load --addr "127.0.0.1:$port" --appid wx_bench_app -n "$N" -c "$C"
echo "upstream fetches: $(curl -s "$(cat "$dir/fake.url")/_fake/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["stable_requests"]+s["token_requests"]+s["force_requests"])')"
