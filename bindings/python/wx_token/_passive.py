"""The passive-refresh helper: run a WeChat API call with a token and, if WeChat rejects
that token (errcode 40001, 42001 or 40014), report it to the engine and run the call once
more with a fresh token. Never more than once: a second rejection is returned (or raised)
to the caller as it is.
"""

import functools
import inspect
from typing import Any, Awaitable, Callable, Mapping, Optional, TypeVar

from ._async import get_async, invalidate_async
from ._client import get, invalidate
from ._errors import WxTokenError

__all__ = [
    "TOKEN_REJECTED_ERRCODES",
    "call_with_token",
    "call_with_token_async",
    "passive_refresh",
    "rejected_errcode",
]

#: WeChat errcodes meaning "this access_token is no good": 40001 invalid credential,
#: 42001 expired, 40014 invalid access_token.
TOKEN_REJECTED_ERRCODES = frozenset({40001, 42001, 40014})

T = TypeVar("T")


def _as_int(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def rejected_errcode(outcome: Any) -> Optional[int]:
    """The token-rejection errcode that ``outcome`` carries, or None.

    ``outcome`` is what a WeChat call returned or raised: a mapping (the decoded JSON
    answer, ``{"errcode": 40001, ...}``) or any object or exception with an ``errcode``
    attribute (wechatpy's ``WeChatClientException``, your own exception class...). Errors
    of this library (``WxTokenError``) are never treated as rejections: they come from
    fetching a token, not from using one.
    """
    if isinstance(outcome, WxTokenError):
        return None
    if isinstance(outcome, Mapping):
        code = _as_int(outcome.get("errcode"))
    else:
        code = _as_int(getattr(outcome, "errcode", None))
    return code if code in TOKEN_REJECTED_ERRCODES else None


def call_with_token(appid: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Calls ``fn(token, *args, **kwargs)`` with a token for ``appid``; if the outcome shows
    WeChat rejected the token (see :func:`rejected_errcode`), invalidates exactly that token
    and calls ``fn`` once more with a fresh one, returning (or raising) whatever the second
    call gives.

    Errors of the engine while getting or replacing the token (e.g. ``RateLimitedError``
    when the stable endpoint hands back the rejected token and a forced refresh is not
    allowed yet) propagate as :class:`WxTokenError`.

    If ``fn`` turns out to return an awaitable (a coroutine function hidden behind another
    decorator), the result is an awaitable that does the same with
    :func:`call_with_token_async`'s non-blocking calls.
    """
    token = get(appid)
    try:
        result = fn(token, *args, **kwargs)
    except Exception as exc:
        if rejected_errcode(exc) is None:
            raise
        invalidate(appid, token)
        return fn(get(appid), *args, **kwargs)
    if inspect.isawaitable(result):
        return _finish_async(appid, token, result, fn, args, kwargs)  # type: ignore[return-value, arg-type]
    if rejected_errcode(result) is not None:
        invalidate(appid, token)
        return fn(get(appid), *args, **kwargs)
    return result


async def call_with_token_async(appid: str, fn: Callable[..., Awaitable[T]], *args: Any,
                                **kwargs: Any) -> T:
    """:func:`call_with_token` for an ``async def`` ``fn``: awaits ``fn(token, ...)``; on a
    rejection, ``await invalidate_async(appid, token)`` and awaits ``fn`` once more with a
    fresh token. Never blocks the event loop (see :func:`wx_token.get_async`)."""
    token = await get_async(appid)
    return await _finish_async(appid, token, fn(token, *args, **kwargs), fn, args, kwargs)


async def _finish_async(appid: str, token: str, first: Awaitable[T],
                        fn: Callable[..., Awaitable[T]], args: Any, kwargs: Any) -> T:
    try:
        result = await first
    except Exception as exc:
        if rejected_errcode(exc) is None:
            raise
        await invalidate_async(appid, token)
        return await fn(await get_async(appid), *args, **kwargs)
    if rejected_errcode(result) is not None:
        await invalidate_async(appid, token)
        return await fn(await get_async(appid), *args, **kwargs)
    return result


def passive_refresh(appid: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator form of :func:`call_with_token` (and of :func:`call_with_token_async` for an
    ``async def``): the decorated function takes the token as its first argument, and callers
    leave it out::

        @wx_token.passive_refresh("wx1234")
        def menu(token: str) -> dict:
            return requests.get(URL, params={"access_token": token}).json()

        @wx_token.passive_refresh("wx1234")
        async def menu_async(token: str) -> dict:
            async with session.get(URL, params={"access_token": token}) as r:
                return await r.json()

        menu()              # retried once with a fresh token after 40001 / 42001 / 40014
        await menu_async()  # the same, without blocking the event loop
    """

    def decorate(fn: Callable[..., T]) -> Callable[..., T]:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await call_with_token_async(appid, fn, *args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            return call_with_token(appid, fn, *args, **kwargs)

        return wrapper

    return decorate
