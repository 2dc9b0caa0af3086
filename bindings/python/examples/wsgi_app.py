"""A small WSGI app that uses an access_token the way a Django or Flask view would.

    GET /ips      calls WeChat's get_api_domain_ip with the app's token (with passive refresh)
    GET /health   {"ok": true}

Configuration (environment):
    WX_APPID, WX_SECRET   the official account's credentials (required: without them the app
                          refuses to start rather than call WeChat with made-up ones)
    WX_API_BASE           optional, e.g. http://127.0.0.1:PORT for the project's fake WeChat

Run it with the standard library's server (or gunicorn: `gunicorn -w 4 wsgi_app:application`):

    WX_APPID=wx_demo_appid WX_SECRET=demo_secret WX_API_BASE=http://127.0.0.1:PORT \\
        python examples/wsgi_app.py --port 8000
"""

import argparse
import json
import os
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Iterable, List, Tuple

import wx_token

if not os.environ.get("WX_APPID") or not os.environ.get("WX_SECRET"):
    raise SystemExit("wsgi_app: set WX_APPID and WX_SECRET (and WX_API_BASE=http://127.0.0.1:PORT "
                     "to use the project's fake WeChat instead of the real one)")
APPID = os.environ["WX_APPID"]
API_BASE = os.environ.get("WX_API_BASE", "https://api.weixin.qq.com")

# Register once per process, at import. Under gunicorn this runs in the master with
# --preload, or in each worker otherwise; both work (see the README's notes on workers).
wx_token.register(APPID, os.environ["WX_SECRET"], api_base=API_BASE)


@wx_token.passive_refresh(APPID)
def get_api_domain_ip(token: str) -> Dict[str, Any]:
    """One WeChat API call. If WeChat answers 40001/42001/40014, the decorator reports the
    token to the engine and calls this once more with a fresh one."""
    url = API_BASE + "/cgi-bin/get_api_domain_ip?" + urllib.parse.urlencode({"access_token": token})
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


StartResponse = Callable[[str, List[Tuple[str, str]]], Any]


def _json(start_response: StartResponse, status: str, body: Any) -> Iterable[bytes]:
    data = json.dumps(body).encode("utf-8")
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def application(environ: Dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path == "/health":
        return _json(start_response, "200 OK", {"ok": True})
    if path == "/ips":
        try:
            answer = get_api_domain_ip()
        except wx_token.WxTokenError as e:
            # e.g. WeChatError(errcode=40125) for a wrong secret, NetworkError...
            # The message never contains the secret, so it is safe to log.
            return _json(start_response, "502 Bad Gateway",
                         {"error": e.status_name, "errcode": e.errcode, "errmsg": e.errmsg})
        if "errcode" in answer and answer["errcode"] != 0:
            return _json(start_response, "502 Bad Gateway", answer)
        return _json(start_response, "200 OK", answer)
    return _json(start_response, "404 Not Found", {"error": "not found"})


def main() -> None:
    from wsgiref.simple_server import make_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    with make_server(args.host, args.port, application) as server:
        host, port = server.server_address[:2]
        print("serving on http://%s:%d" % (str(host), int(port)), flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
