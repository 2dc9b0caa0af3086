"""The Python peer of scripts/fleet_xlang.py (bindings/python, WX_TOKEN_LIB): same protocol as peer.c."""
import os
import sys
import threading
import time

import wx_token


def fnv1a(s: str) -> str:
    h = 14695981039346656037
    for b in s.encode():
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def register(mp: str, wecom: str) -> None:
    e = os.environ
    wecom_opts = dict(platform="wecom", corpid=e["WXF_CORPID"], agentid=int(e["WXF_AGENTID"]))
    if e.get("WXF_CENTRAL"):
        client = dict(central=e["WXF_CENTRAL"], central_key=e["WXF_CENTRAL_KEY"])
        wx_token.register(mp, None, **client)
        wx_token.register(wecom, None, **client, **wecom_opts)
    else:
        shared = dict(api_base=e["WXF_API_BASE"], store=e["WXF_STORE"], store_prefix=e["WXF_STORE_PREFIX"])
        wx_token.register(mp, e["WXF_MP_SECRET"], endpoint="classic", **shared)
        wx_token.register(wecom, e["WXF_WECOM_SECRET"], **shared, **wecom_opts)


def main() -> int:
    mp, wecom = os.environ["WXF_MP"], os.environ["WXF_WECOM"]
    register(mp, wecom)
    print("ready", flush=True)
    while not os.path.exists(os.environ["WXF_BARRIER"]):
        time.sleep(0.002)
    seen = [set(), set(), set()]
    errors = []

    def work() -> None:
        try:
            for _ in range(5):
                fps = (fnv1a(wx_token.get(mp)), fnv1a(wx_token.ticket(mp, "jsapi")), fnv1a(wx_token.get(wecom)))
                for k in range(3):
                    seen[k].add(fps[k])
        except Exception as e:  # reported, and the peer fails
            errors.append(repr(e))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors or any(len(s) != 1 for s in seen):
        print("python: the threads disagree or failed: %s" % errors, file=sys.stderr)
        return 1
    print("mp_token %s\njsapi %s\nwecom_token %s" % tuple(next(iter(s)) for s in seen), flush=True)
    wx_token.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
