#!/usr/bin/env bash
# Installs wx_token for C and C++ consumers, like any packaged C library:
#
#   <libdir>/libwx_token.so.<version>           (soname libwx_token.so.<major>)
#   <libdir>/libwx_token.so.<major> -> libwx_token.so.<version>
#   <libdir>/libwx_token.so         -> libwx_token.so.<major>
#   <libdir>/libwx_token.a
#   <includedir>/wx_token.h, <includedir>/wx_token.hpp   (C header, C++17 wrapper)
#   <libdir>/pkgconfig/wx_token.pc                 (pkg-config wx_token)
#   <libdir>/pkgconfig/wx_token-static.pc          (pkg-config --static wx_token-static)
#   <libdir>/cmake/wx_token/wx_token-config.cmake  (find_package(wx_token): wx_token::wx_token,
#   <libdir>/cmake/wx_token/wx_token-config-version.cmake           wx_token::wx_token_static)
#
# Usage: scripts/install.sh [--prefix DIR] [--libdir DIR] [--includedir DIR] [--destdir DIR]
#                           [--no-build] [--no-strip | --keep-debug]
#
#   --prefix DIR      install prefix (default /usr/local)
#   --libdir DIR      library directory (default PREFIX/lib)
#   --includedir DIR  header directory (default PREFIX/include)
#   --destdir DIR     stage everything under DIR (for packagers); the installed files still
#                     name PREFIX, LIBDIR and INCLUDEDIR, not DIR (like make's DESTDIR)
#   --no-build        install what the last run of this script built, without calling cargo
#   --no-strip        install the libraries as built, with debug info (the release profile has
#                     debug = 1: about 28 MB for the .so, 65 MB for the .a)
#   --keep-debug      strip, but keep the debug info in LIBDIR/libwx_token.so.<version>.debug,
#                     linked from the library by a .gnu_debuglink (gdb and perf find it there)
#
# By default the libraries are stripped (objcopy/strip from binutils): the .so of everything but
# its dynamic symbols (about 4 MB), the .a of debug info only (its symbols are needed to link).
#
# The release build goes to <repo>/target/install (or $WX_TOKEN_TARGET_DIR), not target/release,
# because it is linked with a versioned soname (WX_TOKEN_SONAME, read by build.rs) while the
# in-tree target/*/libwx_token.so keeps the unversioned one the other bindings' tests use.
# The .pc files name the prefix given here; the CMake config finds everything relative to its
# own location, so a moved tree still works with find_package.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX=/usr/local
LIBDIR=
INCLUDEDIR=
DESTDIR_=
BUILD=1
STRIP=1
KEEP_DEBUG=0

die() { echo "install.sh: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    arg="$1"; shift
    case "$arg" in
        --prefix=*) PREFIX="${arg#*=}" ;;
        --prefix) [ $# -gt 0 ] || die "--prefix needs a value"; PREFIX="$1"; shift ;;
        --libdir=*) LIBDIR="${arg#*=}" ;;
        --libdir) [ $# -gt 0 ] || die "--libdir needs a value"; LIBDIR="$1"; shift ;;
        --includedir=*) INCLUDEDIR="${arg#*=}" ;;
        --includedir) [ $# -gt 0 ] || die "--includedir needs a value"; INCLUDEDIR="$1"; shift ;;
        --destdir=*) DESTDIR_="${arg#*=}" ;;
        --destdir) [ $# -gt 0 ] || die "--destdir needs a value"; DESTDIR_="$1"; shift ;;
        --no-build) BUILD=0 ;;
        --no-strip) STRIP=0 ;;
        --keep-debug) KEEP_DEBUG=1 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$arg' (see --help)" ;;
    esac
done

[ "$STRIP$KEEP_DEBUG" != 01 ] || die "--keep-debug and --no-strip contradict each other"

abspath() { # absolute, normalized, need not exist
    case "$1" in /*) realpath -m "$1" ;; *) realpath -m "$PWD/$1" ;; esac
}
PREFIX="$(abspath "$PREFIX")"
LIBDIR="$(abspath "${LIBDIR:-$PREFIX/lib}")"
INCLUDEDIR="$(abspath "${INCLUDEDIR:-$PREFIX/include}")"
[ -z "$DESTDIR_" ] || DESTDIR_="$(abspath "$DESTDIR_")"

# The version from the [package] table of Cargo.toml; major for the soname ("0" for 0.x,
# as the engine's C ABI promises stable status numbers and additive changes within 0.x).
VERSION="$(awk '/^\[package\]/{p=1;next} /^\[/{p=0} p && $1=="version"{gsub(/"/,"",$3); print $3; exit}' "$REPO/Cargo.toml")"
[[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || die "cannot read the package version from Cargo.toml (got '$VERSION')"
MAJOR="${VERSION%%.*}"
SONAME="libwx_token.so.$MAJOR"

TARGET_DIR="${WX_TOKEN_TARGET_DIR:-$REPO/target/install}"
OUT="$TARGET_DIR/release"
STATIC_LIBS_FILE="$OUT/wx_token.native-static-libs"

if [ "$BUILD" = 1 ]; then
    command -v "${CARGO:-cargo}" >/dev/null || die "cargo not found (install Rust: https://rustup.rs)"
    echo "install.sh: building wx_token $VERSION (release, soname $SONAME) in $TARGET_DIR" >&2
    log="$(mktemp)"
    trap 'rm -f "$log"' EXIT
    # One rustc invocation makes both libraries and prints the system libraries the static one
    # needs (cargo replays the note when the build is already fresh).
    if ! (cd "$REPO" && WX_TOKEN_SONAME="$SONAME" CARGO_TARGET_DIR="$TARGET_DIR" \
            "${CARGO:-cargo}" rustc -p wx_token --lib --release --crate-type cdylib,staticlib \
            -- --print native-static-libs) >"$log" 2>&1; then
        cat "$log" >&2
        die "cargo build failed"
    fi
    libs="$(sed -n 's/^note: native-static-libs: //p' "$log" | tail -n 1)"
    if [ -z "$libs" ]; then
        libs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
        echo "install.sh: warning: rustc printed no native-static-libs; using '$libs'" >&2
    fi
    printf '%s\n' "$libs" >"$STATIC_LIBS_FILE"
fi

for f in "$OUT/libwx_token.so" "$OUT/libwx_token.a" "$STATIC_LIBS_FILE"; do
    [ -f "$f" ] || die "$f is missing; run without --no-build"
done
got_soname="$(readelf -d "$OUT/libwx_token.so" 2>/dev/null | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
[ -z "$got_soname" ] || [ "$got_soname" = "$SONAME" ] || \
    die "$OUT/libwx_token.so has soname '$got_soname', expected '$SONAME' (stale build? run without --no-build)"
NATIVE_LIBS="$(cat "$STATIC_LIBS_FILE")"

D_LIB="$DESTDIR_$LIBDIR"
D_INC="$DESTDIR_$INCLUDEDIR"
D_PC="$D_LIB/pkgconfig"
D_CMAKE="$D_LIB/cmake/wx_token"
install -d "$D_LIB" "$D_INC" "$D_PC" "$D_CMAKE"

REAL="libwx_token.so.$VERSION"
install -m 0755 "$OUT/libwx_token.so" "$D_LIB/$REAL"
install -m 0644 "$OUT/libwx_token.a" "$D_LIB/libwx_token.a"
if [ "$STRIP" = 1 ]; then
    command -v strip >/dev/null && command -v objcopy >/dev/null || die "strip/objcopy not found (apt-get install binutils), or use --no-strip"
    if [ "$KEEP_DEBUG" = 1 ]; then
        objcopy --only-keep-debug "$D_LIB/$REAL" "$D_LIB/$REAL.debug"
        chmod 0644 "$D_LIB/$REAL.debug"
    fi
    # Like Debian's dh_strip: the shared library keeps only what the dynamic linker needs; the
    # archive keeps its symbols (a linker needs them) and loses its debug info.
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$D_LIB/$REAL"
    strip --strip-debug --enable-deterministic-archives "$D_LIB/libwx_token.a"
    if [ "$KEEP_DEBUG" = 1 ]; then
        # The link names the file and its CRC; run from LIBDIR so it records the bare name.
        (cd "$D_LIB" && objcopy --add-gnu-debuglink="$REAL.debug" "$REAL")
    fi
fi
ln -sfn "$REAL" "$D_LIB/$SONAME"
ln -sfn "$SONAME" "$D_LIB/libwx_token.so"

install -m 0644 "$REPO/include/wx_token.h" "$D_INC/wx_token.h"
install -m 0644 "$REPO/bindings/cpp/wx_token.hpp" "$D_INC/wx_token.hpp"

# pkg-config: paths below the prefix are written relative to ${prefix}.
pcpath() {
    case "$1" in
        "$PREFIX") echo '${prefix}' ;;
        "$PREFIX"/*) echo "\${prefix}/${1#"$PREFIX"/}" ;;
        *) echo "$1" ;;
    esac
}
DESCRIPTION="$(sed -n 's/^description *= *"\(.*\)"$/\1/p' "$REPO/Cargo.toml" | head -n 1)"
cat >"$D_PC/wx_token.pc" <<EOF
prefix=$PREFIX
exec_prefix=\${prefix}
libdir=$(pcpath "$LIBDIR")
includedir=$(pcpath "$INCLUDEDIR")

Name: wx_token
Description: ${DESCRIPTION:-WeChat access_token engine}
URL: https://github.com/wx-token/wx-token
Version: $VERSION
Libs: -L\${libdir} -lwx_token
Libs.private: $NATIVE_LIBS
Cflags: -I\${includedir}
EOF
# The same library, linked statically: -lwx_token would pick the .so when both are installed,
# so this one names the archive. Use it with --static so the Libs.private system libraries
# come along: cc app.c $(pkg-config --static --cflags --libs wx_token-static)
cat >"$D_PC/wx_token-static.pc" <<EOF
prefix=$PREFIX
exec_prefix=\${prefix}
libdir=$(pcpath "$LIBDIR")
includedir=$(pcpath "$INCLUDEDIR")

Name: wx_token-static
Description: ${DESCRIPTION:-WeChat access_token engine} (static library; use pkg-config --static)
URL: https://github.com/wx-token/wx-token
Version: $VERSION
Libs: \${libdir}/libwx_token.a
Libs.private: $NATIVE_LIBS
Cflags: -I\${includedir}
EOF

# CMake: relocatable, everything relative to <libdir>/cmake/wx_token.
REL_INC="$(realpath -m --relative-to="$LIBDIR" "$INCLUDEDIR")"
CMAKE_LIBS=""
for l in $NATIVE_LIBS; do
    case "$l" in
        -l*) CMAKE_LIBS="$CMAKE_LIBS;${l#-l}" ;;
        *) CMAKE_LIBS="$CMAKE_LIBS;$l" ;;
    esac
done
CMAKE_LIBS="${CMAKE_LIBS#;}"
cat >"$D_CMAKE/wx_token-config.cmake" <<EOF
# wx_token $VERSION: CMake package configuration, written by scripts/install.sh.
#
#   find_package(wx_token $MAJOR.${VERSION#*.} REQUIRED)   # or just find_package(wx_token REQUIRED)
#   target_link_libraries(app PRIVATE wx_token::wx_token)           # shared, soname $SONAME
#   target_link_libraries(app PRIVATE wx_token::wx_token_static)    # static, + system libraries
#
# Sets wx_token_VERSION, wx_token_INCLUDE_DIRS, wx_token_LIBRARIES (shared),
# wx_token_STATIC_LIBRARIES (archive + system libraries).

get_filename_component(_wx_token_libdir "\${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
get_filename_component(_wx_token_incdir "\${_wx_token_libdir}/$REL_INC" ABSOLUTE)

foreach(_wx_token_f "\${_wx_token_libdir}/$REAL" "\${_wx_token_libdir}/libwx_token.a" "\${_wx_token_incdir}/wx_token.h")
  if(NOT EXISTS "\${_wx_token_f}")
    set(wx_token_FOUND FALSE)
    set(wx_token_NOT_FOUND_MESSAGE "wx_token: \${_wx_token_f} is missing; reinstall with scripts/install.sh")
    return()
  endif()
endforeach()

set(wx_token_VERSION "$VERSION")
set(_wx_token_native_libs "$CMAKE_LIBS")

if(NOT TARGET wx_token::wx_token)
  add_library(wx_token::wx_token SHARED IMPORTED)
  set_target_properties(wx_token::wx_token PROPERTIES
    IMPORTED_LOCATION "\${_wx_token_libdir}/$REAL"
    IMPORTED_SONAME "$SONAME"
    INTERFACE_INCLUDE_DIRECTORIES "\${_wx_token_incdir}")
endif()

if(NOT TARGET wx_token::wx_token_static)
  add_library(wx_token::wx_token_static STATIC IMPORTED)
  set_target_properties(wx_token::wx_token_static PROPERTIES
    IMPORTED_LOCATION "\${_wx_token_libdir}/libwx_token.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "\${_wx_token_incdir}"
    INTERFACE_LINK_LIBRARIES "\${_wx_token_native_libs}")
endif()

set(wx_token_INCLUDE_DIRS "\${_wx_token_incdir}")
set(wx_token_LIBRARIES wx_token::wx_token)
set(wx_token_STATIC_LIBRARIES wx_token::wx_token_static)
unset(_wx_token_f)
unset(_wx_token_libdir)
unset(_wx_token_incdir)
unset(_wx_token_native_libs)
EOF

PTR_BYTES="$(( $(getconf LONG_BIT) / 8 ))"
cat >"$D_CMAKE/wx_token-config-version.cmake" <<EOF
# wx_token $VERSION: which find_package(wx_token <version>) requests this install satisfies.
# 0.x: the same 0.minor (0.1.9 satisfies 0.1, not 0.2); from 1.0: the same major.
set(PACKAGE_VERSION "$VERSION")
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif(NOT PACKAGE_FIND_VERSION_MAJOR STREQUAL "$MAJOR")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif("$MAJOR" STREQUAL "0" AND PACKAGE_FIND_VERSION_COUNT GREATER 1
       AND NOT PACKAGE_FIND_VERSION_MINOR STREQUAL "$(echo "$VERSION" | cut -d. -f2)")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
if(CMAKE_SIZEOF_VOID_P AND NOT CMAKE_SIZEOF_VOID_P STREQUAL "$PTR_BYTES")
  math(EXPR _wx_token_bits "$PTR_BYTES * 8")
  set(PACKAGE_VERSION "\${PACKAGE_VERSION} (\${_wx_token_bits}bit)")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
  unset(_wx_token_bits)
endif()
EOF
chmod 0644 "$D_PC"/*.pc "$D_CMAKE"/*.cmake

echo "install.sh: installed wx_token $VERSION into ${DESTDIR_:+$DESTDIR_ (staged) for }$PREFIX" >&2
[ "$KEEP_DEBUG" = 0 ] || echo "  $D_LIB/$REAL.debug" >&2
for f in "$D_LIB/$REAL" "$D_LIB/$SONAME" "$D_LIB/libwx_token.so" "$D_LIB/libwx_token.a" \
         "$D_INC/wx_token.h" "$D_INC/wx_token.hpp" "$D_PC/wx_token.pc" "$D_PC/wx_token-static.pc" \
         "$D_CMAKE/wx_token-config.cmake" "$D_CMAKE/wx_token-config-version.cmake"; do
    echo "  $f" >&2
done

# Refresh the dynamic linker's cache for system prefixes (what `make install` users expect).
if [ -z "$DESTDIR_" ] && [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then
    case "$LIBDIR" in
        /usr/lib|/usr/lib64|/usr/local/lib|/usr/local/lib64|/usr/lib/*-linux-gnu) ldconfig ;;
        *) echo "install.sh: note: $LIBDIR is not a system library directory; programs need" \
                "-Wl,-rpath,$LIBDIR or LD_LIBRARY_PATH=$LIBDIR (or link wx_token-static)" >&2 ;;
    esac
fi
