"""invalidate(appid, stale_token) and force_refresh(appid) semantics."""

import threading

import pytest

import wx_token
from wx_token import _client


def test_invalidate_current_token_fetches_a_replacement(fake, new_app) -> None:
    appid = new_app("inv")
    old = wx_token.get(appid)
    wx_token.invalidate(appid, old)
    assert appid not in _client._cache  # the binding-side entry is dropped
    # The replacement was fetched before invalidate returned.
    assert fake.token_fetches(appid) == 2
    new = wx_token.get(appid)
    assert new != old
    assert new == fake.current(appid)
    assert fake.token_fetches(appid) == 2


def test_invalidate_a_token_the_cache_moved_past_does_nothing(fake, new_app) -> None:
    appid = new_app("invstale")
    old = wx_token.get(appid)
    wx_token.invalidate(appid, old)
    new = wx_token.get(appid)
    wx_token.invalidate(appid, old)  # reported late, by another worker thread
    assert wx_token.get(appid) == new
    assert fake.token_fetches(appid) == 2


def test_invalidate_an_unknown_token_does_nothing(fake, new_app) -> None:
    appid = new_app("invother")
    tok = wx_token.get(appid)
    wx_token.invalidate(appid, "not-a-token-we-ever-had")
    assert wx_token.get(appid) == tok
    assert fake.token_fetches(appid) == 1


def test_many_threads_reporting_one_token_share_one_fetch(fake, new_app) -> None:
    appid = new_app("invmany")
    old = wx_token.get(appid)
    barrier = threading.Barrier(16)
    errors = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            wx_token.invalidate(appid, old)
        except BaseException as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert fake.token_fetches(appid) == 2
    assert wx_token.get(appid) != old


def test_no_thread_sees_an_invalidated_token_again(fake, new_app) -> None:
    """After invalidate(T) returns, no get() anywhere in the process returns T."""
    # Ten reports in a row: the engine's passive refresh pacing is not under test here.
    appid = new_app("invsee", passive_refresh_interval_secs=0)
    for _ in range(10):
        old = wx_token.get(appid)
        wx_token.invalidate(appid, old)
        seen = []

        def reader() -> None:
            for _ in range(200):
                seen.append(wx_token.get(appid))

        threads = [threading.Thread(target=reader) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert old not in seen


def test_force_refresh_replaces_the_token_then_is_rate_limited(fake, new_app) -> None:
    appid = new_app("force")
    old = wx_token.get(appid)
    wx_token.force_refresh(appid)
    new = wx_token.get(appid)
    assert new != old
    with pytest.raises(wx_token.RateLimitedError) as ei:
        wx_token.force_refresh(appid)
    assert ei.value.status == wx_token.STATUS_RATE_LIMITED
    # The token stays in service.
    assert wx_token.get(appid) == new


def test_stable_endpoint_revoked_token_is_replaced_in_normal_mode(fake, new_app) -> None:
    appid = new_app("stable", endpoint="stable")
    old = wx_token.get(appid)
    assert fake.app_stats(appid)["stable_requests"] == 1
    fake.revoke(old)
    wx_token.invalidate(appid, old)
    new = wx_token.get(appid)
    assert new != old
    assert fake.app_stats(appid)["stable_requests"] == 2
    assert fake.app_stats(appid)["force_requests"] == 0
    assert fake.api(new) == {"ip_list": ["127.0.0.1"]}


def test_stable_endpoint_same_token_back_forces_once_then_rate_limits(fake, new_app) -> None:
    appid = new_app("stableforce", endpoint="stable")
    old = wx_token.get(appid)
    # WeChat rejected it (as far as the caller knows), but normal mode hands it back:
    # only then is force_refresh spent.
    wx_token.invalidate(appid, old)
    new = wx_token.get(appid)
    assert new != old
    assert fake.app_stats(appid)["force_requests"] == 1
    # A second forced refresh within 30 s is refused and the token stays in service.
    with pytest.raises(wx_token.RateLimitedError):
        wx_token.invalidate(appid, new)
    assert wx_token.get(appid) == new
    assert fake.app_stats(appid)["force_requests"] == 1


def test_invalidate_unknown_app(fake) -> None:
    with pytest.raises(wx_token.UnknownAppError):
        wx_token.invalidate("wx_never_registered_inv", "x")


def test_invalidate_requires_the_rejected_token_and_never_forces(fake, new_app) -> None:
    """invalidate(appid) without a token used to spend one of WeChat's 20 daily forced
    refreshes; now it is an error that names force_refresh, and nothing reaches WeChat."""
    appid = new_app("needtoken", endpoint="stable")
    token = wx_token.get(appid)
    before = fake.app_stats(appid)
    for bad in ((appid,), (appid, None)):
        with pytest.raises((TypeError, wx_token.InvalidArgumentError)) as ei:
            wx_token.invalidate(*bad)  # type: ignore[call-arg]
        if isinstance(ei.value, wx_token.InvalidArgumentError):
            assert "force_refresh" in str(ei.value)
    assert fake.app_stats(appid) == before
    assert wx_token.get(appid) == token
