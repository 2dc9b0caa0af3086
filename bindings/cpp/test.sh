#!/usr/bin/env bash
# C and C++ consumers of wx_token, tested the way they would use it:
#   1. scripts/install.sh into bindings/cpp/build/prefix (release build, soname libwx_token.so.0)
#   2. checks of the installed layout, soname, exported symbols, .pc and CMake files, and a
#      --destdir staged install
#   3. wx_token.hpp compiles alone with -std=c++17 -Wall -Wextra -Werror -pedantic (+ more)
#   4. built from the prefix via pkg-config, shared (wx_token) and static (wx_token-static):
#      the wrapper's tests, the C example, the C++ example
#   5. built via CMake: find_package(wx_token) and pkg_check_modules, shared and static
#   6. every program runs against a real wx-fake-wechat under valgrind (no errors, no
#      definite/indirect leaks); the wrapper's tests also against a real redis-server (a store
#      shared by two processes) and a real wx-tokend (client mode, no secret)
#   7. the README's complete samples (marked <!-- test: cpp -->), compiled and run in every
#      mode they support (memory store, Redis, central server)
# Prints `N passed, N failed` (the wrapper's own tests count one each) and exits 1 on failure.
#
# Env: WX_FAKE_BIN (default <repo>/target/debug/wx-fake-wechat, built if missing),
#      WX_TOKEND_BIN (default <repo>/target/debug/wx-tokend, built if missing),
#      WX_CPP_KEEP_LOGS=1 to print where the per-step logs are (bindings/cpp/build/logs).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BUILD="$HERE/build"
PREFIX="$BUILD/prefix"
BIN="$BUILD/bin"
LOGS="$BUILD/logs"
WX_FAKE_BIN="${WX_FAKE_BIN:-$REPO/target/debug/wx-fake-wechat}"
WX_TOKEND_BIN="${WX_TOKEND_BIN:-$REPO/target/debug/wx-tokend}"
VALGRIND=(valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect)

passed=0
failed=0
failures=()

say() { printf '%s\n' "$*"; }
ok() { passed=$((passed + 1)); say "ok   $1"; }
not_ok() {
    failed=$((failed + 1))
    failures+=("$1")
    say "FAIL $1"
    if [ -n "${2:-}" ] && [ -f "$2" ]; then sed 's/^/     | /' "$2" | tail -n 40; fi
}
# check NAME CMD...: runs CMD with its output in $LOGS/NAME.log; one pass or one failure.
check() {
    local name="$1"; shift
    local log="$LOGS/$name.log"
    if "$@" >"$log" 2>&1; then ok "$name"; else not_ok "$name" "$log"; fi
}

apt_install() { # idempotent, quiet; refreshes the package lists once if a package is unknown
    local pkg="$1"
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then return 1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null 2>&1; }
}
need() { # need COMMAND PACKAGE
    command -v "$1" >/dev/null || apt_install "$2" || { echo "test.sh: $1 is missing (apt package $2)" >&2; exit 1; }
}
need gcc gcc
need g++ g++
need make make
need pkg-config pkg-config
need cmake cmake
need valgrind valgrind
need readelf binutils
need redis-server redis-server
need python3 python3
# Optional: lets the examples' libcurl path be built and run too (the plain-socket path always is).
pkg-config --exists libcurl 2>/dev/null || apt_install libcurl4-openssl-dev || true

rm -rf "$BIN" "$LOGS" "$BUILD/cmake-config" "$BUILD/cmake-pkgconfig" "$BUILD/stage"
mkdir -p "$BUILD" "$BIN" "$LOGS"

# --- the fake WeChat -------------------------------------------------------------------------
if [ ! -x "$WX_FAKE_BIN" ]; then
    say "building wx-fake-wechat"
    (cd "$REPO" && cargo build -q -p wx_fake --bin wx-fake-wechat) || { echo "test.sh: cannot build the fake" >&2; exit 1; }
fi
if [ ! -x "$WX_TOKEND_BIN" ]; then
    say "building wx-tokend"
    (cd "$REPO" && cargo build -q -p wx_tokend --bin wx-tokend) || { echo "test.sh: cannot build wx-tokend" >&2; exit 1; }
fi

# --- 1. install ------------------------------------------------------------------------------
say "installing into $PREFIX (release build; the first one takes a minute or two)"
rm -rf "$PREFIX"
check install "$REPO/scripts/install.sh" --prefix "$PREFIX"
[ -f "$PREFIX/lib/pkgconfig/wx_token.pc" ] || { say "nothing installed; stopping"; say "$passed passed, $failed failed"; exit 1; }
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
VERSION="$(pkg-config --modversion wx_token)"
MAJOR="${VERSION%%.*}"

# --- 2. what got installed ---------------------------------------------------------------------
layout() {
    local lib="$PREFIX/lib" f
    for f in "$lib/libwx_token.so.$VERSION" "$lib/libwx_token.a" "$PREFIX/include/wx_token.h" \
             "$PREFIX/include/wx_token.hpp" "$lib/pkgconfig/wx_token.pc" "$lib/pkgconfig/wx_token-static.pc" \
             "$lib/cmake/wx_token/wx_token-config.cmake" "$lib/cmake/wx_token/wx_token-config-version.cmake"; do
        [ -f "$f" ] && [ ! -L "$f" ] || { echo "missing file $f"; return 1; }
    done
    [ "$(readlink "$lib/libwx_token.so.$MAJOR")" = "libwx_token.so.$VERSION" ] || { echo "bad .so.$MAJOR link"; return 1; }
    [ "$(readlink "$lib/libwx_token.so")" = "libwx_token.so.$MAJOR" ] || { echo "bad .so link"; return 1; }
    readelf -d "$lib/libwx_token.so.$VERSION" | grep -F "Library soname: [libwx_token.so.$MAJOR]" ||
        { echo "soname is not libwx_token.so.$MAJOR"; readelf -d "$lib/libwx_token.so.$VERSION" | grep -i soname; return 1; }
    cmp -s "$PREFIX/include/wx_token.h" "$REPO/include/wx_token.h" || { echo "installed wx_token.h differs"; return 1; }
    cmp -s "$PREFIX/include/wx_token.hpp" "$HERE/wx_token.hpp" || { echo "installed wx_token.hpp differs"; return 1; }
    [ "$VERSION" = "$(sed -n 's/^version *= *"\(.*\)"$/\1/p' "$REPO/Cargo.toml" | head -n 1)" ] ||
        { echo "pkg-config version $VERSION differs from Cargo.toml"; return 1; }
}
check installed-layout-and-soname layout

exports() { # the .so exports exactly the functions wx_token.h declares
    local lib="$PREFIX/lib/libwx_token.so.$VERSION"
    diff <(sed -n 's/^[a-z].*[ *]\(wx_[a-z_]*\)(.*/\1/p' "$PREFIX/include/wx_token.h" | sort -u) \
         <(nm -D --defined-only "$lib" | awk '$2 ~ /^[TtWi]$/ {print $3}' | sort -u)
}
check exported-symbols-match-header exports

pcfiles() {
    local cf libs slibs
    cf="$(pkg-config --cflags wx_token | xargs)"; libs="$(pkg-config --libs wx_token | xargs)"
    slibs="$(pkg-config --static --libs wx_token-static | xargs)"
    echo "cflags: $cf"; echo "libs: $libs"; echo "static: $slibs"
    [ "$cf" = "-I$PREFIX/include" ] || return 1
    [ "$libs" = "-L$PREFIX/lib -lwx_token" ] || return 1
    # Libs.private carries the system libraries rustc reported (-lpthread, -ldl, ... at least).
    case " $(pkg-config --static --libs wx_token) " in *" -lpthread "*) ;; *) echo "no -lpthread in Libs.private"; return 1 ;; esac
    case "$slibs" in "$PREFIX/lib/libwx_token.a "*"-lpthread"*) ;; *) return 1 ;; esac
    pkg-config --atleast-version "$MAJOR.0" wx_token
}
check pkg-config-files pcfiles

staged() { # --destdir: files land under the stage, but name the real prefix
    local stage="$BUILD/stage"
    "$REPO/scripts/install.sh" --no-build --prefix /opt/wx_token --libdir /opt/wx_token/lib64 --destdir "$stage" || return 1
    [ -f "$stage/opt/wx_token/lib64/libwx_token.so.$VERSION" ] && [ -f "$stage/opt/wx_token/include/wx_token.hpp" ] || return 1
    grep -qx 'prefix=/opt/wx_token' "$stage/opt/wx_token/lib64/pkgconfig/wx_token.pc" || return 1
    grep -qx 'libdir=${prefix}/lib64' "$stage/opt/wx_token/lib64/pkgconfig/wx_token.pc" || return 1
    grep -qF '${_wx_token_libdir}/../include"' "$stage/opt/wx_token/lib64/cmake/wx_token/wx_token-config.cmake" || return 1
    ! grep -rq "$stage" "$stage/opt/wx_token/lib64/pkgconfig" "$stage/opt/wx_token/lib64/cmake"
}
check install-destdir-staging staged

stripped() { # the installed libraries carry no debug info; --keep-debug puts it in a linked file
    local lib="$PREFIX/lib/libwx_token.so.$VERSION" stage="$BUILD/stage-debug" so
    ! readelf -S "$lib" | grep -q '\.debug_' || { echo "$lib has debug sections"; return 1; }
    ! readelf -S "$lib" | grep -q ' \.symtab' || { echo "$lib has a full symbol table"; return 1; }
    ! readelf -S "$PREFIX/lib/libwx_token.a" 2>/dev/null | grep -q '\.debug_info' || { echo "the archive has debug info"; return 1; }
    echo "stripped .so: $(stat -c %s "$lib") bytes, .a: $(stat -c %s "$PREFIX/lib/libwx_token.a") bytes"
    rm -rf "$stage"
    "$REPO/scripts/install.sh" --no-build --keep-debug --prefix /opt/wx_token --destdir "$stage" || return 1
    so="$stage/opt/wx_token/lib/libwx_token.so.$VERSION"
    readelf -S "$so.debug" | grep -q '\.debug_info' || { echo "no debug info in $so.debug"; return 1; }
    readelf --string-dump=.gnu_debuglink "$so" | grep -qF "libwx_token.so.$VERSION.debug" || { echo "no debuglink"; return 1; }
    ! readelf -S "$so" | grep -q '\.debug_' || return 1
    ! "$REPO/scripts/install.sh" --no-build --keep-debug --no-strip --prefix "$stage/x" 2>/dev/null
}
check installed-libraries-stripped stripped

# --- 3. the header alone -----------------------------------------------------------------------
WARN_CXX=(-std=c++17 -Wall -Wextra -Werror -pedantic -Wshadow -Wconversion -Wsign-conversion -Wold-style-cast -Wnon-virtual-dtor)
header_alone() {
    printf '#include <wx_token.hpp>\nint main() { return wx_token::version().empty(); }\n' >"$BIN/header_alone.cpp"
    g++ "${WARN_CXX[@]}" $(pkg-config --cflags wx_token) -c "$BIN/header_alone.cpp" -o "$BIN/header_alone.o" || return 1
    printf '#include <wx_token.h>\nint main(void) { return wx_token_version() == 0; }\n' >"$BIN/header_c.c"
    gcc -std=c99 -Wall -Wextra -Werror -pedantic $(pkg-config --cflags wx_token) -c "$BIN/header_c.c" -o "$BIN/header_c.o"
}
check header-compiles-cxx17-pedantic-and-c99 header_alone

# --- 4. pkg-config builds ----------------------------------------------------------------------
# shared: pkg-config wx_token (+ an rpath, as the prefix is not a system directory)
# static: pkg-config --static wx_token-static (the archive + Libs.private system libraries)
SHARED_FLAGS=($(pkg-config --cflags --libs wx_token) "-Wl,-rpath,$PREFIX/lib")
STATIC_FLAGS=($(pkg-config --static --cflags --libs wx_token-static))
linked_as() { # linked_as shared|static BINARY
    if [ "$1" = shared ]; then
        readelf -d "$2" | grep -F "Shared library: [libwx_token.so.$MAJOR]"
    else
        ! readelf -d "$2" | grep -F "libwx_token" && nm "$2" | grep -E ' T wx_token_get$'
    fi
}
build_c() { # build_c MODE SRC OUT [extra...]
    local mode="$1" src="$2" out="$3"; shift 3
    local flags; if [ "$mode" = shared ]; then flags=("${SHARED_FLAGS[@]}"); else flags=("${STATIC_FLAGS[@]}"); fi
    gcc -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -pedantic -I"$HERE/examples" "$src" "${flags[@]}" "$@" -o "$out" || return 1
    linked_as "$mode" "$out"
}
build_cxx() {
    local mode="$1" src="$2" out="$3"; shift 3
    local flags; if [ "$mode" = shared ]; then flags=("${SHARED_FLAGS[@]}"); else flags=("${STATIC_FLAGS[@]}"); fi
    g++ "${WARN_CXX[@]}" -Wno-old-style-cast -pthread -I"$HERE/examples" -I"$HERE/tests" "$src" "${flags[@]}" "$@" -o "$out" || return 1
    linked_as "$mode" "$out"
}
for mode in shared static; do
    check "pkg-config-$mode-build-wrapper-tests" build_cxx "$mode" "$HERE/tests/wrapper_test.cpp" "$BIN/wrapper_test_$mode"
    check "pkg-config-$mode-build-c-example" build_c "$mode" "$HERE/examples/get_token.c" "$BIN/get_token_c_$mode"
    check "pkg-config-$mode-build-cpp-example" build_cxx "$mode" "$HERE/examples/get_token.cpp" "$BIN/get_token_cpp_$mode"
done
if pkg-config --exists libcurl; then
    check pkg-config-static-build-cpp-example-libcurl build_cxx static "$HERE/examples/get_token.cpp" \
        "$BIN/get_token_cpp_curl" -DWX_EXAMPLE_WITH_CURL $(pkg-config --libs libcurl)
else
    say "note: libcurl (libcurl4-openssl-dev) not available: the examples' libcurl path is not built"
fi

# --- 5. CMake builds ---------------------------------------------------------------------------
check cmake-find-package-build bash -c "cmake -S '$HERE/examples' -B '$BUILD/cmake-config' -DCMAKE_PREFIX_PATH='$PREFIX' \
    && cmake --build '$BUILD/cmake-config' -j 2"
check cmake-pkg-check-modules-build bash -c "cmake -S '$HERE/examples' -B '$BUILD/cmake-pkgconfig' -DWX_USE_PKG_CONFIG=ON \
    -DWX_EXAMPLE_CURL=OFF && cmake --build '$BUILD/cmake-pkgconfig' -j 2"
cmake_link_modes() {
    local d m
    for d in cmake-config cmake-pkgconfig; do
        for m in shared static; do
            linked_as "$m" "$BUILD/$d/get_token_c_$m" && linked_as "$m" "$BUILD/$d/get_token_cpp_$m" || return 1
        done
    done
}
check cmake-link-modes cmake_link_modes

# --- 6. run everything against the fake, under valgrind ----------------------------------------
CENTRAL_APPID=wx_cpp_central
CENTRAL_SECRET="central-secret-$$"
CENTRAL_KEY="cpp-client-key-$$-0123456789"
coproc FAKE { exec "$WX_FAKE_BIN" --listen 127.0.0.1:0 --app wx_demo_appid:demo_secret \
    --app "$CENTRAL_APPID:$CENTRAL_SECRET" --exit-on-stdin-eof 2>"$LOGS/fake.stderr"; }
FAKE_IN="${FAKE[1]}"
FAKE_OUT="${FAKE[0]}"
REDIS_PID=
TOKEND_PID=
stop_fake() {
    if [ -n "${FAKE_IN:-}" ]; then
        exec {FAKE_IN}>&- || true
        FAKE_IN=
        wait "$FAKE_PID" 2>/dev/null || true
    fi
    for pid in $REDIS_PID $TOKEND_PID; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    REDIS_PID= TOKEND_PID=
}
trap stop_fake EXIT
line=""
read -r -t 20 line <&"$FAKE_OUT" || true
case "$line" in
    "listening on http://127.0.0.1:"*) FAKE_URL="${line#listening on }" ;;
    *) say "test.sh: the fake did not start: '$line'"; cat "$LOGS/fake.stderr" >&2 || true; exit 1 ;;
esac
say "fake WeChat at $FAKE_URL"

# A real redis-server and a real wx-tokend (holding the secret of $CENTRAL_APPID), on free ports.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { # wait_port PORT: until something accepts on it (10 s)
    local i
    for i in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
REDIS_PORT="$(free_port)"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no >"$LOGS/redis.log" 2>&1 &
REDIS_PID=$!
TOKEND_PORT="$(free_port)"
cat >"$BUILD/tokend.toml" <<EOF
listen = "127.0.0.1:$TOKEND_PORT"
log_requests = false

[[app]]
appid = "$CENTRAL_APPID"
secret_env = "WX_CPP_CENTRAL_SECRET"
options = { api_base = "$FAKE_URL", endpoint = "classic" }

[[client]]
name = "cpp-tests"
key_env = "WX_CPP_CENTRAL_KEY"
apps = ["$CENTRAL_APPID"]
EOF
WX_CPP_CENTRAL_SECRET="$CENTRAL_SECRET" WX_CPP_CENTRAL_KEY="$CENTRAL_KEY" \
    "$WX_TOKEND_BIN" --config "$BUILD/tokend.toml" >"$LOGS/tokend.log" 2>&1 &
TOKEND_PID=$!
wait_port "$REDIS_PORT" || { say "test.sh: redis-server did not start"; cat "$LOGS/redis.log"; exit 1; }
wait_port "$TOKEND_PORT" || { say "test.sh: wx-tokend did not start"; cat "$LOGS/tokend.log"; exit 1; }
export WX_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export WX_TOKEND_URL="http://127.0.0.1:$TOKEND_PORT" WX_TOKEND_KEY="$CENTRAL_KEY" WX_TOKEND_APPID="$CENTRAL_APPID"

# Runs a wrapper test binary under valgrind; its own N passed / N failed go into the totals.
run_wrapper_tests() {
    local mode="$1" log="$LOGS/valgrind-wrapper-tests-$mode.log" rc=0 summary p f
    [ -x "$BIN/wrapper_test_$mode" ] || { not_ok "valgrind-wrapper-tests-$mode (not built)"; return; }
    WX_FAKE_URL="$FAKE_URL" "${VALGRIND[@]}" "$BIN/wrapper_test_$mode" >"$log" 2>&1 || rc=$?
    summary="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)"
    if [ -z "$summary" ]; then not_ok "wrapper-tests-$mode (no summary, exit $rc)" "$log"; return; fi
    p="${summary%% passed*}"; f="${summary#*, }"; f="${f%% failed}"
    passed=$((passed + p)); failed=$((failed + f))
    grep -E '^FAIL ' "$log" | sed "s/^/     [$mode] /" || true
    [ "$f" = 0 ] || failures+=("wrapper-tests-$mode: $f failed")
    say "     wrapper tests ($mode): $summary"
    if [ "$rc" = 0 ] && grep -q 'ERROR SUMMARY: 0 errors' "$log"; then
        ok "valgrind-wrapper-tests-$mode"
    else
        not_ok "valgrind-wrapper-tests-$mode (exit $rc)" "$log"
    fi
}
run_wrapper_tests shared
run_wrapper_tests static

# An example must get a token, call the fake's API with it and exit 0, cleanly under valgrind.
run_example() {
    local bin="$1"
    WX_API_BASE="$FAKE_URL" "${VALGRIND[@]}" "$bin" || return 1
}
example() {
    local name="$1" bin="$2" log="$LOGS/$1.log"
    if [ ! -x "$bin" ]; then not_ok "$name (not built)"; return; fi
    if run_example "$bin" >"$log" 2>&1 && grep -q '^get_api_domain_ip: {"ip_list":\["127.0.0.1"\]}' "$log" &&
        grep -q 'ERROR SUMMARY: 0 errors' "$log"; then
        ok "$name"
    else
        not_ok "$name" "$log"
    fi
}
for mode in shared static; do
    example "valgrind-pkg-config-$mode-c-example" "$BIN/get_token_c_$mode"
    example "valgrind-pkg-config-$mode-cpp-example" "$BIN/get_token_cpp_$mode"
done
[ ! -e "$BIN/get_token_cpp_curl" ] || example valgrind-pkg-config-static-cpp-example-libcurl "$BIN/get_token_cpp_curl"
for d in cmake-config cmake-pkgconfig; do
    for mode in shared static; do
        example "valgrind-$d-$mode-c-example" "$BUILD/$d/get_token_c_$mode"
        example "valgrind-$d-$mode-cpp-example" "$BUILD/$d/get_token_cpp_$mode"
    done
done

# A wrong secret: the example reports WeChat's errcode and fails (exit 1), still leak-free.
wrong_secret() {
    local rc=0 out
    out="$(WX_APPID=wx_demo_appid WX_SECRET=wrong WX_API_BASE="$FAKE_URL" "${VALGRIND[@]}" "$BIN/get_token_c_static" 2>&1)" || rc=$?
    printf '%s\n' "$out"
    [ "$rc" = 1 ] || { echo "exit $rc, expected 1"; return 1; }
    grep -q 'errcode 40125' <<<"$out" && grep -q 'ERROR SUMMARY: 0 errors' <<<"$out"
}
check valgrind-c-example-wrong-secret wrong_secret

# Without WX_APPID/WX_SECRET the examples use the fake's demo app, and refuse a real WeChat.
no_demo_secret_for_wechat() {
    local bin rc
    for bin in "$BIN/get_token_c_shared" "$BIN/get_token_cpp_shared"; do
        rc=0
        env -u WX_APPID -u WX_SECRET WX_API_BASE=https://api.weixin.qq.com "$bin" || rc=$?
        [ "$rc" = 2 ] || { echo "$bin: exit $rc, expected 2"; return 1; }
    done
}
check examples-refuse-wechat-without-credentials no_demo_secret_for_wechat

# --- 7. the README's complete samples ----------------------------------------------------------
# Each sample marked <!-- test: cpp --> is compiled as the README says and run in every mode
# its marker lists; a sample must also refuse to run without credentials.
readme_samples() {
    local line name src attrs modes mode out rc
    "$REPO/scripts/readme_samples.py" extract "$HERE/README.md" --lang cpp --out "$BIN/readme" >"$BIN/readme.list" || return 1
    while IFS=$'\t' read -r name src attrs; do
        echo "== sample $name ($attrs)"
        g++ "${WARN_CXX[@]}" "$src" "${SHARED_FLAGS[@]}" -o "$BIN/readme/$name" || return 1
        modes="$(sed -n 's/.*modes=\([^ ]*\).*/\1/p' <<<"$attrs")"
        for mode in ${modes//,/ }; do
            echo "-- mode $mode"
            case "$mode" in
                memory) out="$(WX_APPID=wx_demo_appid WX_SECRET=demo_secret WX_API_BASE="$FAKE_URL" "$BIN/readme/$name" 2>&1)" ;;
                redis) # the second process takes the first one's token over from the store
                    out="$(WX_APPID=wx_demo_appid WX_SECRET=demo_secret WX_API_BASE="$FAKE_URL" WX_STORE="$WX_REDIS_URL" "$BIN/readme/$name" 2>&1 &&
                        WX_APPID=wx_demo_appid WX_SECRET=demo_secret WX_API_BASE="$FAKE_URL" WX_STORE="$WX_REDIS_URL" "$BIN/readme/$name" 2>&1)" ;;
                central) out="$(WX_APPID="$CENTRAL_APPID" WX_CENTRAL="$WX_TOKEND_URL" WX_CENTRAL_KEY="$CENTRAL_KEY" "$BIN/readme/$name" 2>&1)" ;;
                *) echo "unknown mode $mode"; return 1 ;;
            esac || { printf '%s\n' "$out"; return 1; }
            printf '%s\n' "$out"
            grep -q '^token: 136 bytes' <<<"$out" || return 1
            if [ "$mode" = redis ]; then grep -q 'fetches so far: 0' <<<"$out" || { echo "no token shared through Redis"; return 1; }; fi
        done
        rc=0
        out="$(env -u WX_SECRET WX_APPID=wx_demo_appid "$BIN/readme/$name" 2>&1)" || rc=$?
        printf '%s\n' "$out"
        [ "$rc" = 1 ] || { echo "runs without a secret (exit $rc)"; return 1; }
    done <"$BIN/readme.list"
}
check readme-cpp-samples readme_samples

stop_fake
trap - EXIT

say ""
if [ "${#failures[@]}" -gt 0 ]; then
    say "failures:"
    printf '  %s\n' "${failures[@]}"
fi
[ -z "${WX_CPP_KEEP_LOGS:-}" ] || say "logs: $LOGS"
say "$passed passed, $failed failed"
[ "$failed" = 0 ]
