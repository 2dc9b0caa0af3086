# Sourced by test.sh and bench.sh: toolchain installation and the build. Expects to run in bindings/csharp/.
# Installs what a fresh Debian 12 lacks (quietly, idempotently) and builds into build/.

HERE=$(pwd)
REPO=$(cd ../.. && pwd)
BUILD=$HERE/build
export WX_TOKEN_LIB=${WX_TOKEN_LIB:-$REPO/target/debug/libwx_token.so}
export WX_FAKE_BIN=${WX_FAKE_BIN:-$REPO/target/debug/wx-fake-wechat}
export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

log() { echo "[csharp] $*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
    if [ -z "${APT_UPDATED:-}" ]; then as_root apt-get update -qq >/dev/null; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

ensure_native() {
    if [ ! -f "$WX_TOKEN_LIB" ] || [ ! -x "$WX_FAKE_BIN" ]; then
        log "building the engine and the fake WeChat (cargo build -p wx_token -p wx_fake)"
        (cd "$REPO" && cargo build -q -p wx_token -p wx_fake)
    fi
    [ -f "$WX_TOKEN_LIB" ] || { log "WX_TOKEN_LIB=$WX_TOKEN_LIB does not exist"; exit 1; }
    [ -x "$WX_FAKE_BIN" ] || { log "WX_FAKE_BIN=$WX_FAKE_BIN does not exist"; exit 1; }
}

ensure_mono() {
    if ! command -v mcs >/dev/null || ! command -v mono >/dev/null || [ ! -f /usr/lib/nunit/nunit-console.exe ] \
        || ! ls /usr/lib/cli/nunit.framework-2.6*/nunit.framework.dll >/dev/null 2>&1; then
        log "installing mono-devel, nunit-console and libnunit-cil-dev (apt)"
        apt_install mono-devel nunit-console libnunit-cil-dev
    fi
    NUNIT=$(ls /usr/lib/cli/nunit.framework-2.6*/nunit.framework.dll | head -1)
    MONO_FACADES=$(dirname "$(ls /usr/lib/mono/4.5/Facades/System.Runtime.dll)")
}

ensure_coreclr() {
    VENV=$BUILD/venv
    if ! "$VENV/bin/python" -c 'import dotnetcore2' >/dev/null 2>&1; then
        log "installing .NET Core 3.1 from PyPI (dotnetcore2==3.1.23) into $VENV"
        python3 -m venv "$VENV" >/dev/null 2>&1 || { apt_install python3-venv; rm -rf "$VENV"; python3 -m venv "$VENV"; }
        "$VENV/bin/pip" install -q --disable-pip-version-check dotnetcore2==3.1.23
    fi
    DN=$("$VENV/bin/python" -c 'import dotnetcore2,os;print(os.path.join(os.path.dirname(dotnetcore2.__file__),"bin"))')
    DOTNET=$DN/dotnet
    FX=$(ls -d "$DN"/shared/Microsoft.NETCore.App/3.1.* | sort -V | tail -1)
    # every framework assembly except the WinRT ones, which mcs cannot load
    CORE_REFS=$(for f in "$FX"/*.dll; do case $f in *WindowsRuntime*) ;; *) printf ' -r:%s' "$f";; esac; done)
}

MCS="mcs -langversion:7.2 -nologo -debug -warnaserror+ -nowarn:1702"
LIB_SRC=$(ls "$HERE"/src/WxToken/*.cs)
TEST_SRC=$(ls "$HERE"/tests/WxToken.Tests/*.cs)

runtimeconfig() {
    printf '{"runtimeOptions":{"tfm":"netcoreapp3.1","framework":{"name":"Microsoft.NETCore.App","version":"3.1.0"},"configProperties":{"System.Globalization.Invariant":true}}}\n' > "$1"
}

# Mono: the library against Mono's profile, the tests as a dll for nunit-console, the probe app.
build_mono() {
    local out=$BUILD/mono
    rm -rf "$out" && mkdir -p "$out/probe"
    cp "$NUNIT" "$out/"
    $MCS -unsafe -target:library -doc:"$out/WxToken.xml" -out:"$out/WxToken.dll" \
        -r:"$MONO_FACADES/System.Runtime.dll" -r:"$MONO_FACADES/System.Runtime.InteropServices.RuntimeInformation.dll" $LIB_SRC
    $MCS -target:library -out:"$out/WxToken.Tests.dll" -r:"$out/WxToken.dll" -r:"$out/nunit.framework.dll" \
        -r:"$MONO_FACADES/System.Runtime.dll" -r:"$MONO_FACADES/System.Threading.Tasks.dll" -r:System.dll $TEST_SRC
    cp "$out/WxToken.dll" "$out/probe/"
    $MCS -target:exe -out:"$out/probe/WxProbe.exe" -r:"$out/WxToken.dll" "$HERE/tests/WxProbe/Program.cs"
    $MCS -target:exe -out:"$out/probe/GetAccessToken.exe" -r:"$out/WxToken.dll" -r:System.dll "$HERE/examples/GetAccessToken/Program.cs"
}

# CoreCLR: everything compiled against the runtime's own assemblies (catches any API it lacks); the tests and
# MiniRunner in one exe.
build_core() {
    local out=$BUILD/core
    rm -rf "$out" && mkdir -p "$out/probe"
    cp "$NUNIT" "$out/"
    $MCS -nostdlib -unsafe -target:library -out:"$out/WxToken.dll" $CORE_REFS $LIB_SRC
    $MCS -nostdlib -target:exe -out:"$out/WxToken.Tests.exe" $CORE_REFS -r:"$out/WxToken.dll" -r:"$out/nunit.framework.dll" \
        $TEST_SRC "$HERE/tools/MiniRunner.cs"
    runtimeconfig "$out/WxToken.Tests.runtimeconfig.json"
    cp "$out/WxToken.dll" "$out/probe/"
    $MCS -nostdlib -target:exe -out:"$out/probe/WxProbe.exe" $CORE_REFS -r:"$out/WxToken.dll" "$HERE/tests/WxProbe/Program.cs"
    runtimeconfig "$out/probe/WxProbe.runtimeconfig.json"
    $MCS -nostdlib -target:exe -out:"$out/probe/GetAccessToken.exe" $CORE_REFS -r:"$out/WxToken.dll" "$HERE/examples/GetAccessToken/Program.cs"
    runtimeconfig "$out/probe/GetAccessToken.runtimeconfig.json"
}
