"""The passive-refresh helper: one retry with a fresh token after 40001/42001/40014."""

import importlib
import io
import json
import os
import sys
import urllib.parse
import urllib.request
from typing import Any, Dict, List

import pytest

import wx_token


def _api(token: str, fake: Any, calls: List[str]) -> Dict[str, Any]:
    calls.append(token)
    return fake.api(token)


def test_revoked_token_is_replaced_and_call_retried_once(fake, new_app) -> None:
    appid = new_app("pr_revoke")
    first = wx_token.get(appid)
    fake.revoke(first)
    calls: List[str] = []
    answer = wx_token.call_with_token(appid, _api, fake, calls)
    assert answer == {"ip_list": ["127.0.0.1"]}
    assert len(calls) == 2
    assert calls[0] == first and calls[1] != first
    assert wx_token.get(appid) == calls[1]
    assert fake.token_fetches(appid) == 2


def test_expired_token_42001(fake, new_app) -> None:
    appid = new_app("pr_expire")
    first = wx_token.get(appid)
    fake.expire(appid)
    assert fake.api(first)["errcode"] == 42001
    calls: List[str] = []

    @wx_token.passive_refresh(appid)
    def ips(token: str, fake_: Any) -> Dict[str, Any]:
        return _api(token, fake_, calls)

    assert ips(fake) == {"ip_list": ["127.0.0.1"]}
    assert len(calls) == 2
    assert ips.__name__ == "ips"


def test_never_loops(fake, new_app) -> None:
    appid = new_app("pr_loop")
    calls: List[str] = []

    def always_rejected(token: str) -> Dict[str, Any]:
        calls.append(token)
        return {"errcode": 40001, "errmsg": "invalid credential"}

    answer = wx_token.call_with_token(appid, always_rejected)
    assert answer["errcode"] == 40001
    assert len(calls) == 2


class ApiError(Exception):
    def __init__(self, errcode: int) -> None:
        super().__init__("api error %d" % errcode)
        self.errcode = errcode


def test_exception_with_errcode_is_retried_once(fake, new_app) -> None:
    # Two passive refreshes in a row: the engine's pacing is not under test here.
    appid = new_app("pr_exc", passive_refresh_interval_secs=0)
    calls: List[str] = []

    def flaky(token: str) -> str:
        calls.append(token)
        if len(calls) == 1:
            raise ApiError(40014)
        return "ok"

    assert wx_token.call_with_token(appid, flaky) == "ok"
    assert len(calls) == 2 and calls[0] != calls[1]

    calls.clear()

    def always(token: str) -> str:
        calls.append(token)
        raise ApiError(42001)

    with pytest.raises(ApiError):
        wx_token.call_with_token(appid, always)
    assert len(calls) == 2


@pytest.mark.parametrize("outcome", [{"errcode": 45009}, {"errcode": 0}, {"ip_list": []}, "text", None])
def test_other_outcomes_are_not_retried(fake, new_app, outcome) -> None:
    appid = new_app("pr_other")
    calls: List[str] = []

    def fn(token: str) -> Any:
        calls.append(token)
        return outcome

    assert wx_token.call_with_token(appid, fn) == outcome
    assert len(calls) == 1
    assert fake.token_fetches(appid) == 1


def test_unrelated_exception_propagates_without_retry(fake, new_app) -> None:
    appid = new_app("pr_unrel")
    calls: List[str] = []

    def boom(token: str) -> None:
        calls.append(token)
        raise KeyError("boom")

    with pytest.raises(KeyError):
        wx_token.call_with_token(appid, boom)
    assert len(calls) == 1


def test_token_fetch_errors_are_not_mistaken_for_rejections(fake, new_app) -> None:
    assert wx_token.rejected_errcode(wx_token.WeChatError("x", 40001)) is None
    assert wx_token.rejected_errcode({"errcode": "40001"}) == 40001
    assert wx_token.rejected_errcode({"errcode": True}) is None
    assert wx_token.rejected_errcode(ApiError(42001)) == 42001


def test_example_wsgi_app(fake, new_app, monkeypatch) -> None:
    """The example WSGI app serves a view that uses the token, and recovers from a revoked
    token through the passive-refresh decorator."""
    appid = new_app("wsgi", register=False)
    from conftest import secret_for

    monkeypatch.setenv("WX_APPID", appid)
    monkeypatch.setenv("WX_SECRET", secret_for(appid))
    monkeypatch.setenv("WX_API_BASE", fake.base_url)
    examples = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
    monkeypatch.syspath_prepend(examples)
    sys.modules.pop("wsgi_app", None)
    app_mod = importlib.import_module("wsgi_app")

    def call(path: str):  # type: ignore[no-untyped-def]
        from wsgiref.util import setup_testing_defaults

        environ: Dict[str, Any] = {"PATH_INFO": path}
        setup_testing_defaults(environ)
        status: List[str] = []
        body = b"".join(app_mod.application(environ, lambda s, h: status.append(s)))
        return status[0], json.loads(body)

    assert call("/health") == ("200 OK", {"ok": True})
    assert call("/ips") == ("200 OK", {"ip_list": ["127.0.0.1"]})
    fake.revoke(wx_token.get(appid))
    assert call("/ips") == ("200 OK", {"ip_list": ["127.0.0.1"]})
    assert fake.token_fetches(appid) == 2
    assert call("/nope")[0] == "404 Not Found"
