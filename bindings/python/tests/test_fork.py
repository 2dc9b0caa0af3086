"""fork(): a multiprocessing child (as a pre-fork web server's worker) keeps working."""

import multiprocessing
import os
import threading
import time
from typing import Any, Dict, List, Tuple

import pytest

import wx_token
from conftest import secret_for

ctx = multiprocessing.get_context("fork")


def _run_child(target: Any, *args: Any, timeout: float = float(os.environ.get("WXPY_FORK_TIMEOUT", "30"))) -> Any:
    """Runs target(queue, *args) in a fork child and returns what it put on the queue."""
    q = ctx.Queue()
    p = ctx.Process(target=_child_main, args=(target, q, timeout) + args)
    p.start()
    try:
        try:
            result = q.get(timeout=timeout)
        except Exception:
            p.join(timeout=10)
            raise AssertionError("fork child gave no answer (exit code %r)" % p.exitcode)
    finally:
        p.join(timeout=timeout)
        if p.is_alive():  # pragma: no cover - a hang is a failure, but leave nothing behind
            p.kill()
            p.join()
    assert p.exitcode == 0, p.exitcode
    if isinstance(result, BaseException):
        raise result
    return result


def _child_main(target: Any, q: Any, timeout: float, *args: Any) -> None:
    import faulthandler

    # A hang in the child dumps every thread's Python stack to stderr before exiting.
    faulthandler.dump_traceback_later(max(1.0, timeout - 5), exit=True)
    target(q, *args)


def _child_after_parent_fetched(q: Any, appid: str) -> None:
    try:
        inherited = wx_token.get(appid)
        info = wx_token.token_info(appid)
        wx_token.invalidate(appid, inherited)
        fresh = wx_token.get(appid)
        q.put((inherited, info.access_token, fresh))
    except BaseException as e:  # pragma: no cover
        q.put(e)


def test_fork_child_keeps_working_after_parent_fetched(fake, new_app) -> None:
    appid = new_app("fork")
    parent_token = wx_token.get(appid)
    inherited, engine_token, fresh = _run_child(_child_after_parent_fetched, appid)
    # The child's first get is the inherited token, with no fetch of its own...
    assert inherited == parent_token == engine_token
    # ...and the child can replace it when WeChat rejects it.
    assert fresh != parent_token
    assert fake.api(fresh) == {"ip_list": ["127.0.0.1"]}
    assert fake.token_fetches(appid) == 2
    # The parent is unaffected (its own engine state), and still works.
    assert wx_token.get(appid) == parent_token


def _worker_get(appid: str) -> Tuple[int, str]:
    import os

    return os.getpid(), wx_token.get(appid)


def test_prefork_workers_registered_in_master_share_the_stable_token(fake, new_app) -> None:
    """gunicorn --preload style: register in the master, fetch in the workers. Each worker
    process fetches on its own, and the stable endpoint hands them all the same token, so
    no worker overwrites another's."""
    appid = new_app("prefork", endpoint="stable")
    with ctx.Pool(4) as pool:
        results = pool.map(_worker_get, [appid] * 16, chunksize=1)
    tokens = {t for _, t in results}
    assert len(tokens) == 1
    token = tokens.pop()
    assert fake.api(token) == {"ip_list": ["127.0.0.1"]}
    assert fake.app_stats(appid)["issued"] == 1
    assert fake.app_stats(appid)["force_requests"] == 0


def _init_worker(appid: str, secret: str, base: str) -> None:
    wx_token.register(appid, secret, api_base=base)


def test_workers_registering_after_fork(fake, new_app) -> None:
    """gunicorn without --preload: each worker registers after the fork."""
    appid = new_app("postfork", register=False)
    with ctx.Pool(3, initializer=_init_worker, initargs=(appid, secret_for(appid), fake.base_url)) as pool:
        results = pool.map(_worker_get, [appid] * 9, chunksize=1)
    tokens = {t for _, t in results}
    assert len(tokens) == 1
    assert fake.api(tokens.pop()) == {"ip_list": ["127.0.0.1"]}


def _child_get(q: Any, appid: str) -> None:
    try:
        q.put(wx_token.get(appid))
    except BaseException as e:  # pragma: no cover
        q.put(e)


def test_fork_while_another_thread_is_fetching(fake, new_app) -> None:
    """A fetch in flight in a parent thread does not exist in the child: the child must not
    wait for it forever but fetch for itself."""
    appid = new_app("forkflight")
    fake.fault(appid=appid, kind="slow", delay_ms=1500)
    got: List[str] = []
    t = threading.Thread(target=lambda: got.append(wx_token.get(appid)))
    t.start()
    time.sleep(0.3)  # the parent thread is now blocked in the slow fetch
    start = time.monotonic()
    child_token = _run_child(_child_get, appid, timeout=20)
    assert time.monotonic() - start < 15
    t.join(timeout=20)
    assert got and fake.api(got[0])["ip_list"]
    assert fake.api(child_token) == {"ip_list": ["127.0.0.1"]}


def _child_get_invalidate_get(q: Any, appid: str) -> None:
    try:
        t = wx_token.get(appid)
        wx_token.invalidate(appid, t)
        q.put(wx_token.get(appid))
    except BaseException as e:  # pragma: no cover
        q.put(e)


def test_repeated_forks_with_the_refresher_idle(fake, new_app) -> None:
    """Regression for a fork hang the engine once had (parking_lot wait queues inherited by
    the child): the parent's refresher thread is parked when each child forks; every child
    must refresh without hanging."""
    appid = new_app("forkloop")
    wx_token.get(appid)
    time.sleep(0.05)  # let the refresher settle into its wait
    tokens = set()
    for _ in range(8):
        tokens.add(_run_child(_child_get_invalidate_get, appid, timeout=15))
    assert len(tokens) == 8


def _generation(appid: str) -> int:
    from wx_token import _client

    return _client._counters[appid].value


def _child_background_refreshes(q: Any, appid: str) -> None:
    try:
        g0 = _generation(appid)
        time.sleep(1.8)  # no calls: only the engine's background thread can refresh
        q.put((g0, _generation(appid)))
    except BaseException as e:  # pragma: no cover
        q.put(e)


def test_background_refresh_runs_in_parent_and_child_after_fork(fake, new_app) -> None:
    fake.config(lifetime_secs=2)  # refreshed ahead at half-life
    appid = new_app("forkbg")
    wx_token.get(appid)
    g0, g1 = _run_child(_child_background_refreshes, appid)
    assert g1 > g0, "child's background refresh did not run"
    p0 = _generation(appid)
    time.sleep(1.8)
    assert _generation(appid) > p0, "parent's background refresh stopped after fork"
