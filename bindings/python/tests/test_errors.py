"""Every failure surfaces as the right WxTokenError subclass, with status, errcode and
errmsg, and never with the secret in it."""

import pickle

import pytest

import wx_token
from wx_token import _errors
from conftest import SECRET_MARK, assert_no_secret, fresh_appid


def _raises(cls, fn, *args, **kwargs):
    with pytest.raises(cls) as ei:
        fn(*args, **kwargs)
    exc = ei.value
    assert isinstance(exc, wx_token.WxTokenError)
    assert exc.status == cls.STATUS
    assert isinstance(exc.errmsg, str) and exc.errmsg
    assert_no_secret(exc)
    return exc


def test_unknown_app(fake) -> None:
    e = _raises(wx_token.UnknownAppError, wx_token.get, "wx_never_registered")
    assert e.errcode == 0
    assert "wx_never_registered" in e.errmsg
    assert str(e).startswith("UNKNOWN_APP: ")
    assert isinstance(e, LookupError)


@pytest.mark.parametrize(
    "appid, secret, options",
    [
        ("", "s", {}),
        ("has space", "s", {}),
        ("x" * 200, "s", {}),
        ("wxok", "", {}),
        ("wxok", "s", {"no_such_option": 1}),
        ("wxok", "s", {"endpoint": "sideways"}),
        ("wxok", "s", {"api_base": "http://example.com"}),  # plain http only for loopback
        ("wxok", "s", {"timeout_ms": "soon"}),
        ("wxok", "s", {"timeout_ms": object()}),  # not JSON-serializable
        (b"wxbytes", "s", {}),
        ("wxok", 1234, {}),
        ("wxok", None, {}),  # NULL secret: the engine requires one (outside client mode)
        ("wxok", SECRET_MARK + "\0tail", {}),  # NUL would silently truncate in C
        ("wxok", SECRET_MARK + "\ud800", {}),  # lone surrogate: not UTF-8
    ],
)
def test_invalid_arguments(appid, secret, options) -> None:
    e = _raises(wx_token.InvalidArgumentError, wx_token.register, appid, secret, **options)
    assert isinstance(e, ValueError)
    assert e.__context__ is None or SECRET_MARK not in repr(e.__context__)


def test_get_with_bad_appid_type() -> None:
    _raises(wx_token.InvalidArgumentError, wx_token.get, 42)  # type: ignore[arg-type]


def test_wrong_secret_is_wechat_error_40125(fake, new_app) -> None:
    appid = new_app("badsecret", secret=SECRET_MARK + "-WRONG")
    e = _raises(wx_token.WeChatError, wx_token.get, appid)
    assert e.errcode == 40125
    assert "40125" in str(e)
    # Within the cooldown: the same error, without asking WeChat again.
    e2 = _raises(wx_token.WeChatError, wx_token.get, appid)
    assert e2.errcode == 40125
    assert fake.token_fetches(appid) == 1


@pytest.mark.parametrize(
    "fault, errcode, wechat_errmsg",
    [
        ({"kind": "quota"}, 45009, "reach max api daily quota limit"),
        ({"kind": "busy"}, -1, "system error"),
        ({"kind": "errcode", "errcode": 40164, "errmsg": "invalid ip 1.2.3.4"}, 40164, "invalid ip 1.2.3.4"),
    ],
)
def test_wechat_errcodes(fake, new_app, fault, errcode, wechat_errmsg) -> None:
    appid = new_app("errcode")
    fake.fault(appid=appid, count=5, **fault)
    e = _raises(wx_token.WeChatError, wx_token.get, appid)
    assert e.errcode == errcode
    assert e.wechat_errmsg == wechat_errmsg, "WeChat's own errmsg, verbatim"
    assert pickle.loads(pickle.dumps(e)).wechat_errmsg == wechat_errmsg


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "http_status", "status": 500},
        {"kind": "http_status", "status": 404},
        {"kind": "redirect"},
        {"kind": "reset"},
        {"kind": "hang", "delay_ms": 3000},
    ],
)
def test_network_errors(fake, new_app, fault) -> None:
    appid = new_app("net", timeout_ms=500)
    fake.fault(appid=appid, count=3, **fault)
    e = _raises(wx_token.NetworkError, wx_token.get, appid)
    assert e.wechat_errmsg == ""
    assert e.errcode == 0


def test_connection_refused_is_network_error(fake) -> None:
    appid = fresh_appid("refused")
    wx_token.register(appid, SECRET_MARK + "-refused", api_base="http://127.0.0.1:1", endpoint="classic",
                      timeout_ms=500)
    _raises(wx_token.NetworkError, wx_token.get, appid)


@pytest.mark.parametrize("kind", ["malformed", "missing_fields", "huge"])
def test_protocol_errors(fake, new_app, kind) -> None:
    appid = new_app("proto")
    fake.fault(appid=appid, kind=kind, count=2)
    _raises(wx_token.ProtocolError, wx_token.get, appid)


def test_recovers_after_a_transient_error(fake, new_app) -> None:
    import time

    appid = new_app("recover")
    fake.fault(appid=appid, kind="http_status", status=503)
    _raises(wx_token.NetworkError, wx_token.get, appid)
    deadline = time.monotonic() + 5
    while True:
        try:
            token = wx_token.get(appid)
            break
        except wx_token.NetworkError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert fake.api(token) == {"ip_list": ["127.0.0.1"]}


def test_rate_limited_has_its_class(fake, new_app) -> None:
    appid = new_app("ratelim")
    wx_token.get(appid)
    wx_token.force_refresh(appid)
    _raises(wx_token.RateLimitedError, wx_token.force_refresh, appid)


def test_status_mapping_covers_every_error_status() -> None:
    expected = {
        1: wx_token.InvalidArgumentError,
        3: wx_token.UnknownAppError,
        4: wx_token.WeChatError,
        5: wx_token.NetworkError,
        6: wx_token.ProtocolError,
        7: wx_token.StoreError,
        8: wx_token.InternalError,
        9: wx_token.RateLimitedError,
    }
    for status, cls in expected.items():
        e = _errors.error_for(status, 7, "msg")
        assert type(e) is cls and e.status == status and e.errcode == 7 and e.errmsg == "msg"
    e = _errors.error_for(99, 0, "future status")
    assert type(e) is wx_token.WxTokenError and e.status == 99
    assert wx_token.StoreError("x").status_name == "STORE"
    assert wx_token.InternalError("x").status_name == "PANIC"


def test_exceptions_pickle_round_trip() -> None:
    e = _errors.error_for(4, 40125, "WeChat errcode 40125: invalid appsecret")
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is wx_token.WeChatError
    assert (e2.status, e2.errcode, e2.errmsg) == (4, 40125, e.errmsg)
    assert str(e2) == str(e)


def test_secret_never_in_any_error_text(fake, new_app) -> None:
    """One app with a distinctive secret, driven through every failure the fake can produce."""
    appid = new_app("leak", secret=SECRET_MARK + "-leak")  # wrong secret on purpose
    errors = []
    for attempt in range(2):
        try:
            wx_token.get(appid)
        except wx_token.WxTokenError as e:
            errors.append(e)
    good = new_app("leakgood")
    for kind in ["malformed", "missing_fields", "http_status", "redirect", "reset", "quota", "busy"]:
        appid2 = new_app("leak" + kind)
        fake.fault(appid=appid2, kind=kind, count=2)
        try:
            wx_token.get(appid2)
        except wx_token.WxTokenError as e:
            errors.append(e)
    wx_token.get(good)
    wx_token.force_refresh(good)
    try:
        wx_token.force_refresh(good)
    except wx_token.WxTokenError as e:
        errors.append(e)
    assert len(errors) >= 9
    for e in errors:
        assert_no_secret(e)
