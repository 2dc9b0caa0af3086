"""An asyncio web service (aiohttp) that uses an access_token without ever blocking its event
loop: ``await wx_token.get_async`` for the token, and ``@wx_token.passive_refresh`` on an
``async def`` so a token WeChat rejects is replaced and the call retried once.

    GET /ips      calls WeChat's get_api_domain_ip with the app's token
    GET /health   {"ok": true}

Configuration (environment):
    WX_APPID, WX_SECRET   the official account's credentials (required: without them the app
                          refuses to start rather than call WeChat with made-up ones)
    WX_API_BASE           optional, e.g. http://127.0.0.1:PORT for the project's fake WeChat

Run (pip install aiohttp):

    WX_APPID=... WX_SECRET=... python examples/aiohttp_app.py --port 8080

The same pattern works in FastAPI or Starlette: register at startup, ``await
wx_token.get_async(APPID)`` or call a ``passive_refresh``-decorated ``async def`` in the route.
"""

import argparse
import logging
import os
from typing import Any, Dict

from aiohttp import ClientSession, ClientTimeout, web

import wx_token

if not os.environ.get("WX_APPID") or not os.environ.get("WX_SECRET"):
    raise SystemExit("aiohttp_app: set WX_APPID and WX_SECRET (and WX_API_BASE=http://127.0.0.1:PORT "
                     "to use the project's fake WeChat instead of the real one)")
APPID = os.environ["WX_APPID"]
API_BASE = os.environ.get("WX_API_BASE", "https://api.weixin.qq.com")

wx_token.register(APPID, os.environ["WX_SECRET"], api_base=API_BASE)

SESSION = web.AppKey("session", ClientSession)


@wx_token.passive_refresh(APPID)
async def get_api_domain_ip(token: str, session: ClientSession) -> Dict[str, Any]:
    """One WeChat API call. On 40001/42001/40014 the decorator reports this token and awaits
    this function once more with a fresh one."""
    async with session.get(API_BASE + "/cgi-bin/get_api_domain_ip",
                           params={"access_token": token}) as resp:
        return await resp.json(content_type=None)  # type: ignore[no-any-return]


async def ips(request: web.Request) -> web.Response:
    try:
        answer = await get_api_domain_ip(request.app[SESSION])
    except wx_token.WxTokenError as e:
        # The message never contains the secret, so it is safe to show and log.
        return web.json_response({"error": e.status_name, "errcode": e.errcode,
                                  "errmsg": e.errmsg}, status=502)
    if answer.get("errcode"):
        return web.json_response(answer, status=502)
    return web.json_response(answer)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def session_ctx(app: web.Application) -> Any:
    async with ClientSession(timeout=ClientTimeout(total=10)) as session:
        app[SESSION] = session
        yield


def make_app() -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_get("/ips", ips)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)  # the engine's events, on the "wx_token" logger
    web.run_app(make_app(), host=args.host, port=args.port,
                print=lambda *a: print("serving on http://%s:%d" % (args.host, args.port), flush=True))


if __name__ == "__main__":
    main()
