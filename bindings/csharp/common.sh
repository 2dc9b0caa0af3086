# Sourced by test.sh and bench.sh: toolchain installation and the build. Expects to run in bindings/csharp/.
# Installs what a fresh Debian 12 lacks (quietly, idempotently) and builds into build/.

HERE=$(pwd)
REPO=$(cd ../.. && pwd)
BUILD=$HERE/build
export WX_TOKEN_LIB=${WX_TOKEN_LIB:-$REPO/target/debug/libwx_token.so}
export WX_FAKE_BIN=${WX_FAKE_BIN:-$REPO/target/debug/wx-fake-wechat}
export WX_TOKEND_BIN=${WX_TOKEND_BIN:-$REPO/target/debug/wx-tokend}
export WX_STORE_PEER_BIN=${WX_STORE_PEER_BIN:-$REPO/target/debug/examples/store_peer}
export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

log() { echo "[csharp] $*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
    if [ -z "${APT_UPDATED:-}" ]; then as_root apt-get update -qq >/dev/null; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

ensure_native() {
    if [ ! -f "$WX_TOKEN_LIB" ] || [ ! -x "$WX_FAKE_BIN" ] || [ ! -x "$WX_TOKEND_BIN" ]; then
        log "building the engine, the fake WeChat and wx-tokend (cargo build -p wx_token -p wx_fake -p wx_tokend)"
        (cd "$REPO" && cargo build -q -p wx_token -p wx_fake -p wx_tokend)
    fi
    if [ ! -x "$WX_STORE_PEER_BIN" ]; then
        log "building examples/store_peer"
        (cd "$REPO" && cargo build -q -p wx_token --example store_peer)
    fi
    local v
    for v in WX_TOKEN_LIB WX_FAKE_BIN WX_TOKEND_BIN WX_STORE_PEER_BIN; do
        [ -f "${!v}" ] || { log "$v=${!v} does not exist"; exit 1; }
    done
    if ! command -v redis-server >/dev/null || ! command -v unzip >/dev/null; then
        log "installing redis-server and unzip (apt)"
        apt_install redis-server unzip
    fi
}

ensure_mono() {
    if ! command -v mcs >/dev/null || ! command -v mono >/dev/null \
        || ! ls /usr/lib/cli/nunit.framework-2.6*/nunit.framework.dll >/dev/null 2>&1; then
        log "installing mono-devel and libnunit-cil-dev (apt)"
        apt_install mono-devel libnunit-cil-dev
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

# WxToken.dll and its XML docs against Mono's profile (mscorlib and facades). The same file runs on CoreCLR, whose
# mscorlib/System facades forward to its own assemblies, as any .NET Framework library does: the package ships it.
compile_lib() { # OUT_DIR [extra mcs flags]
    local out=$1
    shift
    $MCS -unsafe -target:library -doc:"$out/WxToken.xml" -out:"$out/WxToken.dll" "$@" \
        -r:"$MONO_FACADES/System.Runtime.dll" -r:"$MONO_FACADES/System.Runtime.InteropServices.RuntimeInformation.dll" $LIB_SRC
}

# Mono: the library against Mono's profile, the tests with MiniRunner in one exe (as on CoreCLR), the probe app.
# Not nunit-console: it never exits once an engine thread has called into the test domain (an event), because Mono
# waits for that thread, which lives on in native code.
build_mono() {
    local out=$BUILD/mono
    rm -rf "$out" && mkdir -p "$out/probe"
    cp "$NUNIT" "$out/"
    compile_lib "$out"
    $MCS -target:exe -out:"$out/WxToken.Tests.exe" -r:"$out/WxToken.dll" -r:"$out/nunit.framework.dll" \
        -r:"$MONO_FACADES/System.Runtime.dll" -r:"$MONO_FACADES/System.Threading.Tasks.dll" -r:System.dll \
        -r:System.Core.dll -r:System.IO.Compression.dll -r:System.IO.Compression.FileSystem.dll $TEST_SRC "$HERE/tools/MiniRunner.cs"
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

# The NuGet package, and a consumer app built against it alone, laid out as restore and build leave them: the package
# extracted in a global-packages folder (<id lowercase>/<version>/), the app's output directory holding WxToken.dll
# from lib/netstandard2.0/ and the runtimes/ tree (a RID-less build copies it). One app per runtime.
build_package() {
    local pkgs=$BUILD/pkgtest/packages app
    # A package scripts/package.sh built (CI: the one that ships) is tested as it is; else one is packed here.
    if [ -z "${WX_PKG_FILE:-}" ]; then
        WX_PKG_FILE=$(WX_REPOSITORY_URL=${WX_REPOSITORY_URL:-https://example.invalid/wx-token.git} \
            ./pack.sh --native "$WX_TOKEN_LIB" --out "$BUILD/nupkg" | tail -1)
    fi
    [ -f "$WX_PKG_FILE" ] || { log "WX_PKG_FILE $WX_PKG_FILE does not exist"; return 1; }
    export WX_PKG_FILE
    local version
    version=$(basename "$WX_PKG_FILE" .nupkg)
    version=${version#WxToken.}
    rm -rf "$BUILD/pkgtest" && mkdir -p "$pkgs/wxtoken/$version"
    local pkg=$pkgs/wxtoken/$version
    (cd "$pkg" && unzip -q "$WX_PKG_FILE" && cp "$WX_PKG_FILE" "wxtoken.$version.nupkg" && mv WxToken.nuspec wxtoken.nuspec)
    for rt in mono core; do
        app=$BUILD/pkgtest/app-$rt
        mkdir -p "$app"
        cp "$HERE/examples/GetAccessToken/Program.cs" "$BUILD/pkgtest/Program.cs"
        cp "$pkg/lib/netstandard2.0/WxToken.dll" "$pkg/lib/netstandard2.0/WxToken.xml" "$app/"
        cp -r "$pkg/runtimes" "$app/"
    done
    $MCS -target:exe -out:"$BUILD/pkgtest/app-mono/GetAccessToken.exe" -r:"$pkg/lib/netstandard2.0/WxToken.dll" -r:System.dll \
        "$BUILD/pkgtest/Program.cs"
    $MCS -nostdlib -target:exe -out:"$BUILD/pkgtest/app-core/GetAccessToken.exe" $CORE_REFS -r:"$pkg/lib/netstandard2.0/WxToken.dll" \
        "$BUILD/pkgtest/Program.cs"
    runtimeconfig "$BUILD/pkgtest/app-core/GetAccessToken.runtimeconfig.json"
}

# Every complete C# program in the READMEs (marked <!-- test: csharp -->; scripts/readme_samples.py --strict fails
# on an unmarked C# block), built for both runtimes into the probe directories as readme_<readme>_<name>.exe, with
# its source next to it; ReadmeSampleTests runs them.
build_samples() {
    local src=$BUILD/samples tag md name path rest
    rm -rf "$src" && mkdir -p "$src"
    for tag in top csharp; do
        md=$REPO/README.md
        [ "$tag" = csharp ] && md=$HERE/README.md
        python3 "$REPO/scripts/readme_samples.py" extract "$md" --lang csharp --strict --out "$src/$tag" >"$src/$tag.list"
        while IFS=$'\t' read -r name path rest; do
            name=readme_${tag}_$name
            cp "$path" "$BUILD/mono/probe/$name.cs"
            cp "$path" "$BUILD/core/probe/$name.cs"
            $MCS -target:exe -out:"$BUILD/mono/probe/$name.exe" -r:"$BUILD/mono/WxToken.dll" -r:System.dll -r:System.Net.Http.dll "$path"
            $MCS -nostdlib -target:exe -out:"$BUILD/core/probe/$name.exe" $CORE_REFS -r:"$BUILD/core/WxToken.dll" "$path"
            runtimeconfig "$BUILD/core/probe/$name.runtimeconfig.json"
        done <"$src/$tag.list"
    done
}
