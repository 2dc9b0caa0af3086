"""The examples run as their docstrings say: the aiohttp service against the fake WeChat
(with a passive refresh through an async def), and every example refuses to start without
WX_APPID/WX_SECRET instead of calling WeChat with made-up credentials."""

import json
import os
import subprocess
import sys
import urllib.request
from typing import Any, Dict, Iterator, Tuple

import pytest

from conftest import PKG_ROOT, free_port, secret_for

EXAMPLES = os.path.join(PKG_ROOT, "examples")


def _env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WX_APPID", "WX_SECRET", "WX_API_BASE")}
    env["PYTHONPATH"] = PKG_ROOT
    env.update(extra)
    return env


def _get(url: str) -> Tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture
def aiohttp_service(fake, new_app) -> Iterator[Dict[str, str]]:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        pytest.fail("aiohttp is not installed (bindings/python/test.sh installs it)")
    appid = new_app("aiohttp", register=False)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, os.path.join(EXAMPLES, "aiohttp_app.py"), "--port", str(port)],
        env=_env(WX_APPID=appid, WX_SECRET=secret_for(appid), WX_API_BASE=fake.base_url),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving on"), line + proc.stdout.read()
        yield {"appid": appid, "base": "http://127.0.0.1:%d" % port}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_aiohttp_example_serves_and_recovers_from_a_rejected_token(fake, aiohttp_service) -> None:
    base, appid = aiohttp_service["base"], aiohttp_service["appid"]
    assert _get(base + "/health") == (200, {"ok": True})
    assert _get(base + "/ips") == (200, {"ip_list": ["127.0.0.1"]})
    fake.revoke(fake.current(appid))  # WeChat now answers 40001 for the service's token
    assert _get(base + "/ips") == (200, {"ip_list": ["127.0.0.1"]})
    assert fake.token_fetches(appid) == 2
    assert fake.app_stats(appid)["api_requests"] == 3  # one call, then one retry, then one


@pytest.mark.parametrize("example", ["aiohttp_app.py", "wsgi_app.py"])
@pytest.mark.parametrize("missing", ["WX_APPID", "WX_SECRET"])
def test_examples_refuse_to_run_without_credentials(example: str, missing: str) -> None:
    env = _env(WX_APPID="wx_some_app", WX_SECRET="some-secret")
    del env[missing]
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, example), "--port", "0"],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=30)
    assert proc.returncode != 0
    assert "WX_APPID and WX_SECRET" in proc.stderr
    assert "serving on" not in proc.stdout
