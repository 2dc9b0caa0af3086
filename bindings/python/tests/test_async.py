"""asyncio: get_async / invalidate_async never block the event loop, share one executor job
per app, and passive_refresh works on async def functions."""

import asyncio
import concurrent.futures
import time
from typing import Any, Dict, List

import pytest

import wx_token

#: The longest the event loop may go without running a ready coroutine (issue #12).
MAX_STALL = 0.050


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor, counting the jobs the binding hands it."""

    def __init__(self) -> None:
        super().__init__(max_workers=8)
        self.jobs = 0

    def submit(self, *args: Any, **kwargs: Any) -> "concurrent.futures.Future[Any]":
        self.jobs += 1
        return super().submit(*args, **kwargs)


async def _watch_stalls(stop: asyncio.Event, stalls: List[float], tick: float = 0.005) -> None:
    """Sleeps `tick` over and over; any wake-up much later than asked is a loop stall."""
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.sleep(tick)
        stalls.append(time.perf_counter() - t0 - tick)


def test_100_concurrent_get_async_on_a_cold_app_never_stall_the_loop(fake, new_app) -> None:
    fake.config(delay_ms=600)  # a slow WeChat: a blocking get would freeze the loop 0.6 s
    appid = new_app("async100")

    async def main() -> Dict[str, Any]:
        executor = CountingExecutor()
        asyncio.get_running_loop().set_default_executor(executor)
        stop = asyncio.Event()
        stalls: List[float] = []
        watcher = asyncio.create_task(_watch_stalls(stop, stalls))
        await asyncio.sleep(0.02)
        t0 = time.perf_counter()
        tokens = await asyncio.gather(*(wx_token.get_async(appid) for _ in range(100)))
        elapsed = time.perf_counter() - t0
        again = await wx_token.get_async(appid)  # cached: no executor job
        stop.set()
        await watcher
        return {"tokens": tokens, "stalls": stalls, "jobs": executor.jobs, "elapsed": elapsed,
                "again": again}

    r = asyncio.run(main())
    assert len(set(r["tokens"])) == 1 and r["again"] == r["tokens"][0]
    assert fake.api(r["tokens"][0]).get("ip_list")
    assert r["elapsed"] >= 0.5, "the fetch really was slow"
    assert max(r["stalls"]) < MAX_STALL, "loop stalled %.0f ms" % (max(r["stalls"]) * 1000)
    assert r["jobs"] == 1, "100 coroutines, one executor job"
    assert fake.token_fetches(appid) == 1


def test_get_async_errors_are_raised_in_the_awaiting_coroutine(fake, new_app) -> None:
    appid = new_app("asyncerr", register=False)

    async def main() -> None:
        with pytest.raises(wx_token.UnknownAppError):
            await wx_token.get_async(appid)
        with pytest.raises(wx_token.InvalidArgumentError):
            await wx_token.get_async("bad\0id")
        wx_token.register(appid, "wrong-secret", api_base=fake.base_url, endpoint="classic")
        with pytest.raises(wx_token.WeChatError) as ei:
            await wx_token.get_async(appid)
        assert ei.value.errcode == 40125

    asyncio.run(main())


def test_a_cancelled_waiter_does_not_cancel_the_shared_fetch(fake, new_app) -> None:
    fake.config(delay_ms=400)
    appid = new_app("asynccancel")

    async def main() -> str:
        first = asyncio.create_task(wx_token.get_async(appid))
        second = asyncio.create_task(wx_token.get_async(appid))
        await asyncio.sleep(0.1)
        first.cancel()
        token = await second
        with pytest.raises(asyncio.CancelledError):
            await first
        return token

    token = asyncio.run(main())
    assert token == fake.current(appid)
    assert fake.token_fetches(appid) == 1


def test_invalidate_async_reports_a_token_once_for_all_coroutines(fake, new_app) -> None:
    appid = new_app("asyncinv")

    async def main() -> List[str]:
        old = await wx_token.get_async(appid)
        fake.revoke(old)
        await asyncio.gather(*(wx_token.invalidate_async(appid, old) for _ in range(50)))
        # Reported late, after the replacement: nothing happens, without a thread hop.
        await wx_token.invalidate_async(appid, old)
        return [old, await wx_token.get_async(appid)]

    old, new = asyncio.run(main())
    assert new != old and fake.api(new).get("ip_list")
    assert fake.token_fetches(appid) == 2


def test_force_refresh_async_and_invalidate_async_need_their_arguments(fake, new_app) -> None:
    appid = new_app("asyncforce")

    async def main() -> None:
        old = await wx_token.get_async(appid)
        with pytest.raises(wx_token.InvalidArgumentError):
            await wx_token.invalidate_async(appid, None)  # type: ignore[arg-type]
        await wx_token.force_refresh_async(appid)
        assert await wx_token.get_async(appid) != old
        with pytest.raises(wx_token.RateLimitedError):
            await wx_token.force_refresh_async(appid)

    asyncio.run(main())


def test_passive_refresh_on_an_async_function_retries_once_with_a_new_token(fake, new_app) -> None:
    appid = new_app("asyncpassive")
    used: List[str] = []

    @wx_token.passive_refresh(appid)
    async def ips(token: str, label: str) -> Dict[str, Any]:
        used.append(token)
        answer = await asyncio.get_running_loop().run_in_executor(None, fake.api, token)
        return dict(answer, label=label)

    assert asyncio.iscoroutinefunction(ips)

    async def main() -> Dict[str, Any]:
        stale = await wx_token.get_async(appid)
        fake.revoke(stale)  # WeChat now answers 40001 for it
        return await ips("x")

    answer = asyncio.run(main())
    assert answer.get("ip_list") and answer["label"] == "x"
    assert len(used) == 2 and used[0] != used[1]
    assert used[1] == fake.current(appid)


def test_async_passive_refresh_on_a_raised_rejection_and_never_loops(fake, new_app) -> None:
    appid = new_app("asyncraise")
    calls: List[str] = []

    class ApiError(Exception):
        def __init__(self, errcode: int) -> None:
            super().__init__("errcode %d" % errcode)
            self.errcode = errcode

    async def always_rejected(token: str) -> None:
        calls.append(token)
        raise ApiError(40001)

    async def main() -> None:
        with pytest.raises(ApiError):
            await wx_token.call_with_token_async(appid, always_rejected)

    asyncio.run(main())
    assert len(calls) == 2 and calls[0] != calls[1], "one retry, with a new token, then no more"
