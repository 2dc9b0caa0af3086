#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks for the test command. Idempotent and quiet:
# nothing is installed that is already there. (Each binding's test script installs its own
# language toolchain the same way, so it can also be run alone.)
set -euo pipefail

missing=()
for pair in cc:gcc c++:g++ valgrind:valgrind pkg-config:pkg-config cmake:cmake redis-server:redis-server redis-sentinel:redis-sentinel python3:python3 objcopy:binutils faketime:faketime curl:curl; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
