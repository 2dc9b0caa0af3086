#!/usr/bin/env bash
# Builds WxToken.<version>.nupkg without the .NET SDK: WxToken.dll (mcs, Mono's profile) with its XML docs under
# lib/netstandard2.0/, the stripped engine under runtimes/linux-x64/native/, nuget/WxToken.targets under build/ for
# .NET Framework projects, and the nuspec, assembled as the OPC zip `nuget pack` writes.
#
#   bindings/csharp/pack.sh [--native PATH/libwx_token.so] [--out DIR]
#
# --native defaults to target/release/libwx_token.so (built with `cargo build --release -p wx_token` if missing).
# The repository URL comes from WX_REPOSITORY_URL, else from `git remote get-url origin`.
# The version is WxToken.csproj's <Version>. Prints the package's path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source ./common.sh

native=$REPO/target/release/libwx_token.so
out=$BUILD/nupkg
while [ $# -gt 0 ]; do
    case $1 in
        --native) native=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) log "unknown argument $1"; exit 2 ;;
    esac
done
if [ ! -f "$native" ] && [ "$native" = "$REPO/target/release/libwx_token.so" ]; then
    log "building the engine (cargo build --release -p wx_token)"
    (cd "$REPO" && cargo build -q --release -p wx_token)
fi
[ -f "$native" ] || { log "$native does not exist"; exit 1; }
repo_url=${WX_REPOSITORY_URL:-$(git -C "$REPO" remote get-url origin 2>/dev/null || true)}
[ -n "$repo_url" ] || { log "set WX_REPOSITORY_URL (no git remote 'origin' to take it from)"; exit 1; }
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' src/WxToken/WxToken.csproj | head -1)
description=$(sed -n 's:.*<Description>\(.*\)</Description>.*:\1:p' src/WxToken/WxToken.csproj | head -1)

ensure_mono
stage=$BUILD/pack-stage
rm -rf "$stage" && mkdir -p "$stage/lib/netstandard2.0" "$stage/runtimes/linux-x64/native" "$stage/build" "$out"
compile_lib "$stage/lib/netstandard2.0" -debug- -optimize+
cp "$native" "$stage/runtimes/linux-x64/native/libwx_token.so"
strip --strip-unneeded "$stage/runtimes/linux-x64/native/libwx_token.so"
cp nuget/WxToken.targets "$stage/build/WxToken.targets"
cp README.md "$stage/README.md"

python3 - "$stage" "$out/WxToken.$version.nupkg" "$version" "$repo_url" "$description" <<'PY'
import hashlib, os, sys, zipfile
from xml.sax.saxutils import escape
stage, target, version, repo_url, description = sys.argv[1:]
nuspec = f"""<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">
  <metadata>
    <id>WxToken</id>
    <version>{escape(version)}</version>
    <authors>wx-token contributors</authors>
    <license type="expression">MIT OR Apache-2.0</license>
    <licenseUrl>https://licenses.nuget.org/MIT%20OR%20Apache-2.0</licenseUrl>
    <repository type="git" url="{escape(repo_url)}" />
    <projectUrl>{escape(repo_url)}</projectUrl>
    <readme>README.md</readme>
    <description>{escape(description)}</description>
    <tags>wechat weixin access_token</tags>
    <dependencies>
      <group targetFramework=".NETStandard2.0" />
    </dependencies>
  </metadata>
</package>
"""
files = sorted(os.path.relpath(os.path.join(d, f), stage) for d, _, fs in os.walk(stage) for f in fs)
# OPC parts: content types for every extension, the package relationship to the manifest and the core properties.
core = "package/services/metadata/core-properties/" + hashlib.sha1(version.encode()).hexdigest() + ".psmdcp"
exts = sorted({os.path.splitext(f)[1][1:] for f in files} | {"nuspec", "rels", "psmdcp"})
content_types = ('<?xml version="1.0" encoding="utf-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    + "".join(f'<Default Extension="{e}" ContentType="application/octet" />' for e in exts if e != "rels")
    + '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml" /></Types>')
rels = ('<?xml version="1.0" encoding="utf-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Type="http://schemas.microsoft.com/packaging/2010/07/manifest" Target="/WxToken.nuspec" Id="R1" />'
    f'<Relationship Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="/{core}" Id="R2" /></Relationships>')
props = ('<?xml version="1.0" encoding="utf-8"?><coreProperties xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns="http://schemas.openxmlformats.org/package/2006/metadata/core-properties">'
    f'<dc:creator>wx-token contributors</dc:creator><dc:description>{escape(description)}</dc:description>'
    f'<dc:identifier>WxToken</dc:identifier><version>{escape(version)}</version></coreProperties>')
tmp = target + ".tmp"
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("_rels/.rels", rels)
    z.writestr("WxToken.nuspec", nuspec)
    for f in files:
        z.write(os.path.join(stage, f), f)
    z.writestr(core, props)
    z.writestr("[Content_Types].xml", content_types)
os.replace(tmp, target)
PY
echo "$out/WxToken.$version.nupkg"
