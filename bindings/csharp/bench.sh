#!/usr/bin/env bash
# Benchmark of a cached WxAccessToken.Get on Mono and CoreCLR, against the seed's hand-rolled cache, with the release
# engine. Writes docs/bench/csharp.md (figures + the command). Not run by CI. Usage: bindings/csharp/bench.sh [CALLS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
REPO_ROOT=$(cd ../.. && pwd)
if [ -z "${WX_TOKEN_LIB:-}" ]; then
    (cd "$REPO_ROOT" && cargo build -q --release -p wx_token -p wx_fake)
    export WX_TOKEN_LIB=$REPO_ROOT/target/release/libwx_token.so WX_FAKE_BIN=$REPO_ROOT/target/release/wx-fake-wechat
fi
source ./common.sh
ensure_native
ensure_mono
ensure_coreclr
CALLS=${1:-2000000}
BENCH_SRC="$HERE/bench/Bench.cs $HERE/tests/WxToken.Tests/FakeWeChat.cs"
OPT="-optimize+ -unsafe"

out=$BUILD/bench-mono && rm -rf "$out" && mkdir -p "$out"
$MCS $OPT -target:library -out:"$out/WxToken.dll" -r:"$MONO_FACADES/System.Runtime.dll" \
    -r:"$MONO_FACADES/System.Runtime.InteropServices.RuntimeInformation.dll" $LIB_SRC
$MCS $OPT -target:exe -out:"$out/WxToken.Bench.exe" -r:"$out/WxToken.dll" -r:System.dll $BENCH_SRC
mono_out=$(mono --optimize=all "$out/WxToken.Bench.exe" "$CALLS" </dev/null)

out=$BUILD/bench-core && rm -rf "$out" && mkdir -p "$out"
$MCS $OPT -nostdlib -target:library -out:"$out/WxToken.dll" $CORE_REFS $LIB_SRC
$MCS $OPT -nostdlib -target:exe -out:"$out/WxToken.Bench.exe" $CORE_REFS -r:"$out/WxToken.dll" $BENCH_SRC
runtimeconfig "$out/WxToken.Bench.runtimeconfig.json"
core_out=$("$DOTNET" "$out/WxToken.Bench.exe" "$CALLS" </dev/null)

doc=$REPO/docs/bench/csharp.md
mkdir -p "$(dirname "$doc")"
{
    echo "# C# binding: cost of a cached \`Get\`"
    echo
    echo "Produced by \`bindings/csharp/bench.sh $CALLS\` (source: \`bindings/csharp/bench/Bench.cs\`) on $(date -u +%Y-%m-%d),"
    echo "$(nproc) CPU(s) \`$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\`, $(mono --version | head -1 | sed 's/ (.*//'),"
    echo ".NET Core $(basename "$FX") (PyPI dotnetcore2), engine \`$(basename "$(dirname "$WX_TOKEN_LIB")")\` build, fake WeChat on loopback."
    echo "Each figure is the best of 7 rounds; \"bytes allocated\" is measured on the calling thread."
    echo
    echo "## Mono"
    echo
    echo "$mono_out"
    echo
    echo "## CoreCLR"
    echo
    echo "$core_out"
    echo
    sed -n '/^<!-- analysis -->/,$p' "$HERE/bench/analysis.md"
} > "$doc"
echo "wrote $doc"
echo "$mono_out"
echo "$core_out"
