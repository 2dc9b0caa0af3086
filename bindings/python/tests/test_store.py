"""A shared store across languages: Python processes and Rust processes (the engine's
examples/store_peer) share one token through a file store or a real redis-server, with one
upstream fetch."""

import json
import os
import subprocess
import sys
import time
from typing import List, Tuple

import pytest

from conftest import PKG_ROOT, REPO, fresh_appid, secret_for

STORE_PEER = os.environ.get("WX_STORE_PEER_BIN", os.path.join(REPO, "target", "debug", "examples", "store_peer"))

# One Python worker: register with the shared store, wait for the go file, print the token's
# fingerprint (never the token itself).
PY_PEER = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
import wx_token
appid, secret, options, go = sys.argv[2:6]
wx_token.register(appid, secret, **json.loads(options))
while not os.path.exists(go):
    time.sleep(0.001)
token = wx_token.get(appid)
h = 0xcbf29ce484222325
for b in token.encode():
    h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
print("fnv1a64:%016x" % h)
"""


def fingerprint(token: str) -> str:
    h = 0xCBF29CE484222325
    for b in token.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "fnv1a64:%016x" % h


@pytest.fixture(params=["file", "redis"])
def store_url(request, tmp_path) -> str:
    if request.param == "file":
        return "file:%s" % (tmp_path / "store")
    return request.getfixturevalue("redis").url  # type: ignore[no-any-return]


def run_fleet(tmp_path, appid: str, secret: str, options: dict, copies: int,
              py_peer: str = PY_PEER, peer_args: Tuple[str, ...] = ()) -> List[str]:
    """Starts `copies` Python workers (running `py_peer`) and as many store_peer processes (2
    threads each, plus `peer_args`), lets them all ask at once, and returns every fingerprint
    they printed."""
    if not os.path.isfile(STORE_PEER):
        pytest.fail("%s not built (cargo build -p wx_token --example store_peer)" % STORE_PEER)
    go = str(tmp_path / "go")
    procs: List["subprocess.Popen[str]"] = []
    for _ in range(copies):
        procs.append(subprocess.Popen(
            [sys.executable, "-c", py_peer, PKG_ROOT, appid, secret, json.dumps(options), go],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        procs.append(subprocess.Popen(
            [STORE_PEER, "--appid", appid, "--secret", secret, "--options", json.dumps(options),
             "--threads", "2", "--go-file", go, *peer_args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    time.sleep(1.0)  # every process registered and waiting
    open(go, "w").close()
    seen: List[str] = []
    for p in procs:
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        assert secret not in out + err
        seen.extend(out.split())
    assert len(seen) == copies * 3
    return seen


def test_python_and_rust_processes_share_one_store(fake, tmp_path, store_url) -> None:
    appid = fresh_appid("pystore")
    secret = secret_for(appid)
    fake.add_app(appid, secret)
    fake.config(delay_ms=300)  # the first fetch is in flight while every process asks
    options = {"api_base": fake.base_url, "endpoint": "classic", "store": store_url}
    seen = run_fleet(tmp_path, appid, secret, options, 3)
    assert set(seen) == {fingerprint(fake.current(appid))}, seen
    assert fake.token_fetches(appid) == 1, "Python and Rust processes together: one fetch"
