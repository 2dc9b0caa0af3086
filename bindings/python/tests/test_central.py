"""Client mode from Python: a business process with no AppSecret gets its tokens from a real
wx-tokend server (which alone holds the secret), and its passive refresh is forwarded."""

import os
import socket
import subprocess
import time
from typing import Iterator

import pytest

import wx_token
from conftest import REPO, fresh_appid, secret_for

TOKEND = os.environ.get("WX_TOKEND_BIN", os.path.join(REPO, "target", "debug", "wx-tokend"))
CLIENT_KEY = "python-client-key-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tokend(fake, tmp_path) -> Iterator[dict]:
    if not os.path.isfile(TOKEND):
        pytest.fail("%s not built (cargo build -p wx_tokend)" % TOKEND)
    appid = fresh_appid("central")
    secret = secret_for(appid)
    fake.add_app(appid, secret)
    port = _free_port()
    config = tmp_path / "tokend.toml"
    config.write_text(
        'listen = "127.0.0.1:%d"\n\n'
        '[[app]]\nappid = "%s"\nsecret_env = "WX_PY_TOKEND_SECRET"\n'
        'options = { api_base = "%s", endpoint = "classic" }\n\n'
        '[[client]]\nname = "python"\nkey_env = "WX_PY_TOKEND_KEY"\napps = ["%s"]\n'
        % (port, appid, fake.base_url, appid)
    )
    env = dict(os.environ, WX_PY_TOKEND_SECRET=secret, WX_PY_TOKEND_KEY=CLIENT_KEY)
    proc = subprocess.Popen([TOKEND, "--config", str(config)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield {"appid": appid, "secret": secret, "base": "http://127.0.0.1:%d" % port}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_process_without_the_secret_gets_tokens_from_the_central_server(fake, tokend) -> None:
    appid = tokend["appid"]
    wx_token.register(appid, None, central=tokend["base"], central_key=CLIENT_KEY)
    t1 = wx_token.get(appid)
    assert fake.api(t1).get("ip_list"), "a token WeChat accepts"
    assert wx_token.get(appid) == t1
    # The passive refresh goes through the server: one more fetch, a new token.
    wx_token.invalidate(appid, t1)
    t2 = wx_token.get(appid)
    assert t2 != t1 and fake.api(t2).get("ip_list")
    assert fake.token_fetches(appid) == 2


def test_a_wrong_client_key_is_an_invalid_argument_without_echoing_it(fake, tokend) -> None:
    appid = fresh_appid("centralbad")
    wx_token.register(appid, None, central=tokend["base"], central_key="wrong-key-for-this-server")
    with pytest.raises(wx_token.InvalidArgumentError) as e:
        wx_token.get(appid)
    assert "401" in str(e.value) and "wrong-key" not in str(e.value)
