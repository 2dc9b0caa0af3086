"""get / cached get / token_info / concurrency / long tokens / expiry."""

import os
import threading
import time

import pytest

import wx_token
from wx_token import _client, _ffi


def test_library_loaded_by_absolute_path_and_version_matches() -> None:
    assert os.path.isabs(wx_token.LIBRARY_PATH)
    assert wx_token.library_version() == wx_token.__version__


def test_get_returns_the_fakes_token_and_it_works(fake, new_app) -> None:
    appid = new_app("get")
    token = wx_token.get(appid)
    assert isinstance(token, str)
    assert len(token) == 136
    assert token == fake.current(appid)
    assert fake.api(token) == {"ip_list": ["127.0.0.1"]}
    assert fake.token_fetches(appid) == 1


def test_cached_get_makes_no_request(fake, new_app) -> None:
    appid = new_app("cached")
    first = wx_token.get(appid)
    for _ in range(10000):
        assert wx_token.get(appid) == first
    assert fake.token_fetches(appid) == 1
    # The binding-side entry is what answered.
    assert _client._cache[appid][0] == first


def test_register_fetches_nothing(fake, new_app) -> None:
    appid = new_app("lazy")
    assert fake.token_fetches(appid) == 0


def test_token_info(fake, new_app) -> None:
    appid = new_app("info")
    info = wx_token.token_info(appid)
    assert info.access_token == wx_token.get(appid)
    assert info.generation >= 1
    assert 7100 < info.expires_in <= 7200
    assert info.access_token not in repr(info)


def test_64_threads_share_one_fetch(fake, new_app) -> None:
    appid = new_app("threads64")
    # Hold the fetch for a while so that all 64 threads are waiting on it together.
    fake.fault(kind="slow", delay_ms=400, appid=appid)
    barrier = threading.Barrier(64)
    results = []
    errors = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            t = wx_token.get(appid)
            with lock:
                results.append(t)
        except BaseException as e:  # pragma: no cover - reported below
            with lock:
                errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert len(results) == 64
    assert len(set(results)) == 1
    assert fake.token_fetches(appid) == 1
    assert fake.api(results[0]) == {"ip_list": ["127.0.0.1"]}


def test_many_threads_cached_reads_agree(fake, new_app) -> None:
    appid = new_app("threadsread")
    expected = wx_token.get(appid)
    seen = set()

    def worker() -> None:
        for _ in range(2000):
            seen.add(wx_token.get(appid))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {expected}
    assert fake.token_fetches(appid) == 1


def test_512_byte_token(fake, new_app) -> None:
    fake.config(token_len=512)
    appid = new_app("tok512")
    token = wx_token.get(appid)
    assert len(token) == 512
    assert wx_token.get(appid) == token
    assert fake.api(token) == {"ip_list": ["127.0.0.1"]}


def test_513_byte_token_is_a_protocol_error(fake, new_app) -> None:
    fake.config(token_len=513)
    appid = new_app("tok513")
    with pytest.raises(wx_token.ProtocolError):
        wx_token.get(appid)


def test_engine_side_change_is_seen_without_the_binding_being_told(fake, new_app) -> None:
    """Another caller in the process (here: the raw C function) invalidates the token; the
    binding's cached copy must not be handed out again: the generation counter changed."""
    appid = new_app("raw")
    old = wx_token.get(appid)
    assert _ffi.lib.wx_token_invalidate(appid.encode(), old.encode()) == 0
    assert appid in _client._cache  # the binding was not told...
    new = wx_token.get(appid)
    assert new != old  # ...but noticed
    assert new == fake.current(appid)


def test_new_secret_drops_the_cached_token(fake, new_app) -> None:
    appid = new_app("resecret")
    old = wx_token.get(appid)
    # Same secret and upstream: the token survives re-registration.
    wx_token.register(appid, "%s" % _secret(appid), api_base=fake.base_url, endpoint="classic")
    assert wx_token.get(appid) == old
    fake.add_app(appid, "another-secret-x")
    wx_token.register(appid, "another-secret-x", api_base=fake.base_url, endpoint="classic")
    new = wx_token.get(appid)
    assert new != old
    assert fake.token_fetches(appid) == 2


def _secret(appid: str) -> str:
    from conftest import secret_for

    return secret_for(appid)


def test_expired_token_is_replaced(fake, new_app) -> None:
    """With a 2 s lifetime the engine refreshes ahead (at half-life) and the binding follows;
    a token past its life is never handed out."""
    fake.config(lifetime_secs=2)
    appid = new_app("short")
    first = wx_token.get(appid)
    info = wx_token.token_info(appid)
    assert info.expires_in <= 2.0
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        t = wx_token.get(appid)
        assert fake.api(t) == {"ip_list": ["127.0.0.1"]}, "handed out a dead token"
        if t != first:
            break
        time.sleep(0.05)
    else:
        pytest.fail("token never replaced")
    assert _client._cache[appid][2] <= time.monotonic() + 2.0


def test_binding_deadline_never_outlives_the_engines(fake, new_app) -> None:
    fake.config(lifetime_secs=60)
    appid = new_app("deadline")
    before = time.monotonic()
    wx_token.get(appid)
    entry = _client._cache[appid]
    assert entry[2] <= before + 60 - _client.EXPIRY_MARGIN_SECS + 0.001
