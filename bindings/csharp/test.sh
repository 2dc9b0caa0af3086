#!/usr/bin/env bash
# The C# binding's tests, on Mono (nunit-console, NUnit 2.6.4) and on CoreCLR 3.1 (MiniRunner), against the real
# libwx_token.so and the real fake WeChat server. Prints one "N passed, N failed" line per runtime.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source ./common.sh

ensure_native
ensure_mono
ensure_coreclr
mkdir -p "$BUILD"
build_mono
build_core

status=0

# Mono + nunit-console. Its exit code is errors+failures mod 256, so the counts come from the XML.
set +e
(cd "$BUILD/mono" && WX_PROBE_DIR=$BUILD/mono/probe timeout 600 mono --debug /usr/lib/nunit/nunit-console.exe \
    -nologo -noshadow -nodots -labels -timeout=60000 -result=TestResult.xml WxToken.Tests.dll </dev/null >mono.log 2>&1)
mono_rc=$?
set -e
read -r total errors failures < <(python3 - "$BUILD/mono/TestResult.xml" <<'PY' 2>/dev/null || echo "0 0 0"
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
print(r.get("total"), r.get("errors"), r.get("failures"))
PY
)
mono_failed=$((errors + failures))
mono_passed=$((total - mono_failed))
if [ "$mono_rc" -ne 0 ] || [ "$mono_failed" -ne 0 ] || [ "$total" -eq 0 ]; then
    status=1
    sed -n '/^Errors and Failures:/,/^Tests Not Run:/p' "$BUILD/mono/mono.log" | head -80 >&2
    [ "$total" -eq 0 ] && tail -20 "$BUILD/mono/mono.log" >&2
fi
echo "mono: $mono_passed passed, $mono_failed failed"

# CoreCLR + MiniRunner (compiled into the test exe).
set +e
(cd "$BUILD/core" && WX_PROBE_DIR=$BUILD/core/probe timeout 600 "$DOTNET" WxToken.Tests.exe --timeout 60 </dev/null >core.log 2>&1)
core_rc=$?
set -e
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$BUILD/core/core.log" | tail -1 || true)
if [ "$core_rc" -ne 0 ] || [ -z "$summary" ]; then
    status=1
    grep -A12 '^FAIL ' "$BUILD/core/core.log" | head -80 >&2 || tail -20 "$BUILD/core/core.log" >&2
fi
echo "coreclr: ${summary:-0 passed, 0 failed}"

exit $status
