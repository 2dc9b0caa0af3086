"""JS-SDK tickets, signatures and WeCom from Python, against the real fake WeChat (which plays
getticket, WeCom's gettoken and ticket endpoints, and the browser's wx.config check), a real
redis-server shared with Rust processes, and a real wx-tokend."""

import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from typing import Any, Dict, List

import pytest

import wx_token
from conftest import PKG_ROOT, fresh_appid, secret_for
from test_central import CLIENT_KEY, tokend  # noqa: F401  (a fixture)
from test_readme import SAMPLES
from test_store import PY_PEER, fingerprint, run_fleet

# WeChat's documented example (JS-SDK documentation, appendix 1).
DOC_TICKET = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
DOC_NONCE = "Wm3WZYTPz0wzccnW"
DOC_TIMESTAMP = "1414587457"
DOC_URL = "http://mp.weixin.qq.com"
DOC_SIGNATURE = "f4d90daf4b3bca3078ab155816175ba34c443a7b"

PAGE = "https://shop.example/item?id=5&from=timeline"


def app_counter(fake: Any, owner: str, counter: str) -> int:
    return int(fake.stats()["apps"].get(owner, {}).get(counter, 0))


def fake_ticket(fake: Any, owner: str, kind: str) -> str:
    q = urllib.parse.urlencode({"owner": owner, "kind": kind})
    return fake._call("GET", "/_fake/ticket?" + q)["ticket"]  # type: ignore[no-any-return]


def browser_check(fake: Any, config: Dict[str, str], url: str) -> Dict[str, Any]:
    """The fake plays the browser's wx.config / wx.agentConfig with what the server rendered."""
    return fake._call("POST", "/_fake/jssdk_check", dict(config, url=url))  # type: ignore[no-any-return]


def ticket_app(new_app: Any, tag: str, **options: Any) -> str:
    # Reports are not paced in tests that report several tickets in a row.
    return new_app(tag, passive_refresh_interval_secs=0, **options)  # type: ignore[no-any-return]


def wecom_id(fake: Any, corpid: str, label: str, agentid: Any = None) -> str:
    """One registered id per WeCom corp secret (the fake learns the secret first)."""
    secret = "%s-%s-secret" % (corpid, label)
    body: Dict[str, Any] = {"corpid": corpid, "secret": secret}
    if agentid is not None:
        body["agentid"] = agentid
    fake._call("POST", "/_fake/wecom", body)
    appid = "%s.%s" % (corpid, label)
    opts: Dict[str, Any] = {"platform": "wecom", "corpid": corpid, "api_base": fake.base_url,
                            "retry_min_ms": 50, "retry_max_ms": 200, "timeout_ms": 3000}
    if agentid is not None:
        opts["agentid"] = agentid
    wx_token.register(appid, secret, **opts)
    return appid


# --- signatures (pure) -------------------------------------------------------------------------


def test_jssdk_signature_matches_wechats_documented_vector() -> None:
    assert wx_token.jssdk_signature(DOC_TICKET, DOC_NONCE, DOC_TIMESTAMP, DOC_URL) == DOC_SIGNATURE
    assert wx_token.jssdk_signature(DOC_TICKET, DOC_NONCE, int(DOC_TIMESTAMP), DOC_URL) == DOC_SIGNATURE
    raw = "jsapi_ticket=%s&noncestr=%s&timestamp=%s&url=%s" % (DOC_TICKET, DOC_NONCE, DOC_TIMESTAMP, PAGE)
    assert wx_token.jssdk_signature(DOC_TICKET, DOC_NONCE, DOC_TIMESTAMP, PAGE) == hashlib.sha1(raw.encode()).hexdigest()


def test_jssdk_signature_cuts_the_url_at_the_fragment() -> None:
    plain = wx_token.jssdk_signature(DOC_TICKET, DOC_NONCE, DOC_TIMESTAMP, DOC_URL)
    assert wx_token.jssdk_signature(DOC_TICKET, DOC_NONCE, DOC_TIMESTAMP, DOC_URL + "#/cart?x=1") == plain
    assert wx_token.jssdk_signature(DOC_TICKET, DOC_NONCE, DOC_TIMESTAMP, DOC_URL + "/") != plain
    with pytest.raises(wx_token.InvalidArgumentError):
        wx_token.jssdk_signature(DOC_TICKET, DOC_NONCE, DOC_TIMESTAMP, "a\0b")
    with pytest.raises(wx_token.InvalidArgumentError):
        wx_token.jssdk_signature(DOC_TICKET, None, DOC_TIMESTAMP, DOC_URL)  # type: ignore[arg-type]


def test_card_signature_sorts_the_values() -> None:
    values = ["wx_card_ticket_T", "1414587457", "pFS7Fjg8kV1IdDz01r4SQwMkuCKc", "nonce-Z", "openid-a"]
    expected = hashlib.sha1("".join(sorted(values)).encode()).hexdigest()
    assert wx_token.card_signature(values) == expected
    assert wx_token.card_signature(reversed(values)) == expected
    assert wx_token.card_signature(tuple(sorted(values))) == expected
    # Sorted by bytes: "B" (0x42) before "a" (0x61); a naive case-insensitive sort would differ.
    assert wx_token.card_signature(["a", "B"]) == hashlib.sha1(b"Ba").hexdigest()
    with pytest.raises(wx_token.InvalidArgumentError):
        wx_token.card_signature([])
    with pytest.raises(wx_token.InvalidArgumentError):
        wx_token.card_signature("ab")  # type: ignore[arg-type]
    with pytest.raises(wx_token.InvalidArgumentError):
        wx_token.card_signature(["x"] * 65)


# --- mp tickets --------------------------------------------------------------------------------


def test_one_jsapi_ticket_fetch_for_many_concurrent_callers(fake, new_app) -> None:
    appid = ticket_app(new_app, "tkconc")
    # Slow getticket down so that every thread asks while the one fetch is in flight.
    fake.fault(kind="slow", delay_ms=300, path="/cgi-bin/ticket/getticket")
    go = threading.Event()
    seen: List[str] = []
    errors: List[BaseException] = []

    def worker() -> None:
        go.wait()
        try:
            seen.append(wx_token.ticket(appid, "jsapi"))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert len(seen) == 16 and set(seen) == {fake_ticket(fake, appid, "jsapi")}
    assert app_counter(fake, appid, "ticket_requests") == 1
    assert fake.token_fetches(appid) == 1, "the ticket was fetched with the app's one token"
    assert wx_token.ticket(appid) == seen[0], "then cached"
    assert app_counter(fake, appid, "ticket_requests") == 1


def test_jsapi_and_wx_card_tickets_are_apart(fake, new_app) -> None:
    appid = ticket_app(new_app, "tkcard")
    jsapi = wx_token.ticket(appid, "jsapi")
    card = wx_token.ticket(appid, "wx_card")
    assert jsapi != card
    assert card == fake_ticket(fake, appid, "wx_card")
    with pytest.raises(wx_token.InvalidArgumentError):
        wx_token.ticket(appid, "agent_config")  # type: ignore[arg-type]  # WeCom only
    with pytest.raises(wx_token.InvalidArgumentError):
        wx_token.jssdk_config(appid, PAGE, "wx_card")  # card pages use card_signature
    with pytest.raises(wx_token.UnknownAppError):
        wx_token.ticket("wxpy_never_registered_ticket")


def test_jssdk_config_is_accepted_by_the_browser_check(fake, new_app) -> None:
    appid = ticket_app(new_app, "tkcfg")
    url = PAGE + "#/detail"
    cfg = wx_token.jssdk_config(appid, url)
    assert set(cfg) == {"appId", "timestamp", "nonceStr", "signature"}
    assert cfg["appId"] == appid and len(cfg["signature"]) == 40
    assert abs(int(cfg["timestamp"]) - time.time()) < 60
    assert browser_check(fake, cfg, url) == {"ok": True}
    assert browser_check(fake, cfg, PAGE) == {"ok": True}, "the fragment is not signed"
    # The check can fail: another page's URL, or a signature over another ticket.
    assert browser_check(fake, cfg, PAGE + "&other=1")["ok"] is False
    # The same signature the pure function computes from the app's ticket.
    assert cfg["signature"] == wx_token.jssdk_signature(wx_token.ticket(appid), cfg["nonceStr"], cfg["timestamp"], url)
    # A fresh nonce on every call.
    nonces = {wx_token.jssdk_config(appid, url)["nonceStr"] for _ in range(20)}
    assert len(nonces) == 20
    assert app_counter(fake, appid, "ticket_requests") == 1
    with pytest.raises(wx_token.InvalidArgumentError):
        wx_token.jssdk_config(appid, "")


def test_invalidate_ticket_compares_before_replacing(fake, new_app) -> None:
    appid = ticket_app(new_app, "tkinval")
    t1 = wx_token.ticket(appid)
    # A report of a ticket that is not the cached one does nothing.
    wx_token.invalidate_ticket(appid, "jsapi", "some-older-ticket")
    assert app_counter(fake, appid, "ticket_requests") == 1
    # WeChat still calls t1 valid: reported, it is asked for again and stays in service.
    wx_token.invalidate_ticket(appid, "jsapi", t1)
    assert app_counter(fake, appid, "ticket_requests") == 2
    assert wx_token.ticket(appid) == t1
    # Once WeChat has moved on, the report brings the new ticket, once however many report it.
    fake._call("POST", "/_fake/expire_tickets", {})
    reporters = [threading.Thread(target=wx_token.invalidate_ticket, args=(appid, "jsapi", t1)) for _ in range(8)]
    for r in reporters:
        r.start()
    for r in reporters:
        r.join(30)
    t2 = wx_token.ticket(appid)
    assert t2 != t1 and t2 == fake_ticket(fake, appid, "jsapi")
    assert app_counter(fake, appid, "ticket_requests") == 3
    # The old ticket reported again: the cache has moved on, nothing happens.
    wx_token.invalidate_ticket(appid, "jsapi", t1)
    assert wx_token.ticket(appid) == t2 and app_counter(fake, appid, "ticket_requests") == 3
    with pytest.raises(wx_token.InvalidArgumentError):
        wx_token.invalidate_ticket(appid, "jsapi", None)  # type: ignore[arg-type]


def test_getticket_40001_refreshes_the_token_once_and_retries(fake, new_app) -> None:
    appid = ticket_app(new_app, "tk40001")
    t0 = wx_token.get(appid)
    fake.revoke(t0)
    fake.fault(kind="errcode", errcode=40001, errmsg="invalid credential", path="/cgi-bin/ticket/getticket")
    ticket = wx_token.ticket(appid)
    assert ticket == fake_ticket(fake, appid, "jsapi")
    assert wx_token.get(appid) != t0 and fake.token_fetches(appid) == 2


def test_async_ticket_is_shared_and_config_checks(fake, new_app) -> None:
    appid = ticket_app(new_app, "tkasync")
    fake.fault(kind="slow", delay_ms=200, path="/cgi-bin/ticket/getticket")

    async def main() -> Any:
        tickets = await asyncio.gather(*(wx_token.ticket_async(appid) for _ in range(20)))
        cfg = await wx_token.jssdk_config_async(appid, PAGE)
        return tickets, cfg

    tickets, cfg = asyncio.run(main())
    assert set(tickets) == {fake_ticket(fake, appid, "jsapi")}
    assert app_counter(fake, appid, "ticket_requests") == 1
    assert browser_check(fake, cfg, PAGE) == {"ok": True}


# --- WeCom -------------------------------------------------------------------------------------


def test_wecom_one_id_per_secret_and_tickets_that_do_not_collide(fake) -> None:
    corpid = "wwpy%d" % os.getpid()
    approval = wecom_id(fake, corpid, "approval", agentid=1000002)
    contacts = wecom_id(fake, corpid, "contacts")
    # Two secrets of one corp: two tokens, each fetched once, each accepted by a WeCom API.
    ta, tc = wx_token.get(approval), wx_token.get(contacts)
    assert ta != tc
    assert app_counter(fake, corpid, "wecom_token_requests") == 2
    for t in (ta, tc):
        q = urllib.parse.urlencode({"access_token": t})
        assert fake._call("GET", "/cgi-bin/getcallbackip?" + q).get("errcode") == 0
    # The corp ticket (one per corp) and the approval app's agent ticket are apart.
    corp_ticket = wx_token.ticket(approval, "jsapi")
    agent_ticket = wx_token.ticket(approval, "agent_config")
    assert corp_ticket != agent_ticket
    assert corp_ticket == fake_ticket(fake, corpid, "corp_jsapi")
    assert agent_ticket == fake_ticket(fake, "%s/1000002" % corpid, "agent_config")
    assert wx_token.ticket(approval, "jsapi") == corp_ticket, "asking for one does not replace the other"
    with pytest.raises(wx_token.InvalidArgumentError):
        wx_token.ticket(approval, "wx_card")  # type: ignore[arg-type]  # mp only
    with pytest.raises(wx_token.InvalidArgumentError):
        wx_token.jssdk_config(contacts, PAGE, "agent_config")  # no agentid for this secret
    # wx.config (appId is the corpid) and wx.agentConfig both pass the browser's check.
    cfg = wx_token.jssdk_config(approval, PAGE)
    assert cfg["appId"] == corpid and browser_check(fake, cfg, PAGE) == {"ok": True}
    agent = wx_token.jssdk_config(approval, PAGE, kind="agent_config")
    assert set(agent) == {"corpid", "agentid", "timestamp", "nonceStr", "signature"}
    assert agent["corpid"] == corpid and agent["agentid"] == "1000002"
    assert browser_check(fake, agent, PAGE) == {"ok": True}
    # Signed with the corp ticket, an agentConfig is refused: the kinds really differ.
    wrong = dict(agent, signature=wx_token.jssdk_signature(corp_ticket, agent["nonceStr"], agent["timestamp"], PAGE))
    assert browser_check(fake, wrong, PAGE)["ok"] is False


# --- a fleet: Python and Rust processes, one Redis, one ticket ----------------------------------

# The store test's Python worker, asking for the jsapi ticket instead of the token.
PY_TICKET_PEER = PY_PEER.replace("wx_token.get(appid)", 'wx_token.ticket(appid, "jsapi")')


def test_python_and_rust_processes_share_one_ticket_through_redis(fake, redis, tmp_path) -> None:
    assert PY_TICKET_PEER != PY_PEER
    appid = fresh_appid("tkfleet")
    secret = secret_for(appid)
    fake.add_app(appid, secret)
    fake.fault(kind="slow", delay_ms=300, path="/cgi-bin/ticket/getticket")
    options = {"api_base": fake.base_url, "endpoint": "classic", "store": redis.url}
    seen = run_fleet(tmp_path, appid, secret, options, 2, PY_TICKET_PEER, ("--ticket", "jsapi"))
    assert set(seen) == {fingerprint(fake_ticket(fake, appid, "jsapi"))}, seen
    assert app_counter(fake, appid, "ticket_requests") == 1, "one getticket for the whole fleet"
    assert fake.token_fetches(appid) == 1


def test_client_mode_gets_tickets_and_configs_without_the_secret(fake, tokend) -> None:  # noqa: F811
    appid = tokend["appid"]
    wx_token.register(appid, None, central=tokend["base"], central_key=CLIENT_KEY)
    t = wx_token.ticket(appid)
    assert t == fake_ticket(fake, appid, "jsapi")
    cfg = wx_token.jssdk_config(appid, PAGE)
    assert cfg["appId"] == appid and browser_check(fake, cfg, PAGE) == {"ok": True}
    assert app_counter(fake, appid, "ticket_requests") == 1


# --- the READMEs' JS-SDK walk-throughs ---------------------------------------------------------

JSSDK_SAMPLES = [s for s in SAMPLES if s[0].split(":")[1].startswith("jssdk")]


def test_each_readme_has_a_jssdk_walk_through() -> None:
    assert sorted(w for w, _ in JSSDK_SAMPLES) == ["README.md:jssdk", "bindings/python/README.md:jssdk_aiohttp"]


@pytest.mark.parametrize("where,code", JSSDK_SAMPLES, ids=[s[0] for s in JSSDK_SAMPLES])
def test_readme_jssdk_sample_serves_a_wx_config_the_browser_accepts(where, code, fake, new_app, tmp_path) -> None:
    appid = new_app("readmejs", register=False)
    env = dict(os.environ, WX_APPID=appid, WX_SECRET=secret_for(appid), WX_API_BASE=fake.base_url,
               PYTHONPATH=PKG_ROOT)
    script = tmp_path / "sample.py"
    script.write_text(code)
    proc = subprocess.run([sys.executable, str(script)], cwd=str(tmp_path), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout
    url = re.search(r"^page: (\S+)$", proc.stdout, re.M)
    config = re.search(r"wx\.config\((\{.*?\})\);", proc.stdout)
    assert url and config, proc.stdout
    cfg = json.loads(config.group(1))
    assert cfg["jsApiList"] and browser_check(fake, cfg, url.group(1)) == {"ok": True}, proc.stdout
    assert app_counter(fake, appid, "ticket_requests") == 1
