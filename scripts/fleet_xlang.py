#!/usr/bin/env python3
"""A fleet of four languages sharing one token: the cross-language test of issues #12 and #13.

One fake WeChat (classic endpoint: every token fetch mints a new token, so a second fetch would
show) and one real redis-server on 127.0.0.1. Four processes, one per language (a C program on
include/wx_token.h, a C++ program on bindings/cpp/wx_token.hpp, Python on bindings/python, C#
on WxToken.dll under Mono; their sources are in scripts/fleet_xlang/), register ONE mp app and
ONE WeCom id (platform "wecom", corpid, agentid), are released together by a barrier file, and
each gets the mp token, the mp jsapi ticket and the WeCom token 5 times from 4 threads. Each
prints a fingerprint (FNV-1a 64) of the three values, never the values. Checked:

* every process agrees on every fingerprint;
* the fake counted exactly one token fetch for the mp app, one getticket, one WeCom gettoken;
* the token and ticket work: a fifth reader (this script, through the Python binding) takes
  them from the same store or server without fetching, their fingerprints match, the fake's
  business endpoints accept the tokens and its browser check accepts a wx.config signature.

Twice: with a Redis `store` (+ `store_prefix`) and the secrets in every process, then in client
mode: one wx-tokend holds the secrets and the four register with `central` + `central_key` and
no secret. Prints `N passed, N failed`; exits 1 on a failure; stops every process it started.

Env: WX_TOKEN_LIB, WX_FAKE_BIN, WX_TOKEND_BIN (default target/debug/...; built if missing);
WX_CSHARP_DLL (default bindings/csharp/build/mono/WxToken.dll if newer than its sources, else
compiled here with mcs).
"""
import glob
import json
import select
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "scripts", "fleet_xlang")
WORK = os.path.join(ROOT, "target", "fleet-xlang")
LIB = os.environ.get("WX_TOKEN_LIB") or os.path.join(ROOT, "target/debug/libwx_token.so")
FAKE_BIN = os.environ.get("WX_FAKE_BIN") or os.path.join(ROOT, "target/debug/wx-fake-wechat")
TOKEND_BIN = os.environ.get("WX_TOKEND_BIN") or os.path.join(ROOT, "target/debug/wx-tokend")
LANGS = ("c", "cpp", "python", "csharp")
VALUES = ("mp_token", "jsapi", "wecom_token")

procs = []  # every process started here, stopped in stop_all()
results = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, "" if ok or not detail else ": " + detail), flush=True)
    return ok


def start(args, **kw):
    p = subprocess.Popen(args, **kw)
    procs.append(p)
    return p


def stop_all():
    for p in reversed(procs):
        if p.poll() is None:
            if p.stdin:
                p.stdin.close()  # the fake exits on stdin EOF
            p.terminate()
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run(args, **kw):
    subprocess.run(args, check=True, **kw)


def fnv1a(s):
    h = 14695981039346656037
    for b in s.encode():
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s did not listen on %d" % (what, port))


def http(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as r:
        return json.loads(r.read().decode())


# ---- building ------------------------------------------------------------------------------------

def csharp_dll():
    given = os.environ.get("WX_CSHARP_DLL") or os.path.join(ROOT, "bindings/csharp/build/mono/WxToken.dll")
    sources = glob.glob(os.path.join(ROOT, "bindings/csharp/src/WxToken/*.cs"))
    if os.path.exists(given) and os.path.getmtime(given) >= max(map(os.path.getmtime, sources)):
        return given
    # as bindings/csharp/common.sh compiles it for Mono
    facades = os.path.dirname(glob.glob("/usr/lib/mono/4.5/Facades/System.Runtime.dll")[0])
    out = os.path.join(WORK, "lib", "WxToken.dll")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    run(["mcs", "-langversion:7.2", "-nologo", "-unsafe", "-target:library", "-out:" + out,
         "-r:%s/System.Runtime.dll" % facades, "-r:%s/System.Runtime.InteropServices.RuntimeInformation.dll" % facades]
        + sources)
    return out


def build():
    missing = [p for p in (LIB, FAKE_BIN, TOKEND_BIN) if not os.path.exists(p)]
    if missing:
        print("building %s" % ", ".join(missing), flush=True)
        run(["cargo", "build", "-q", "-p", "wx_token", "-p", "wx_fake", "-p", "wx_tokend", "--lib", "--bins"], cwd=ROOT)
    if not shutil.which("mcs") or not shutil.which("mono"):  # installed as the C# suite installs it
        run(["bash", "-c", "source common.sh && ensure_mono"], cwd=os.path.join(ROOT, "bindings/csharp"))
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    libdir = os.path.dirname(LIB)
    link = ["-L" + libdir, "-lwx_token", "-Wl,-rpath," + libdir, "-pthread"]
    cc = start(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I" + os.path.join(ROOT, "include"),
                os.path.join(HERE, "peer.c"), "-o", os.path.join(WORK, "peer_c")] + link)
    cxx = start(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-I" + os.path.join(ROOT, "include"),
                 "-I" + os.path.join(ROOT, "bindings/cpp"), os.path.join(HERE, "peer.cpp"),
                 "-o", os.path.join(WORK, "peer_cpp")] + link)
    dll = csharp_dll()
    shutil.copy(dll, WORK)  # Mono loads an exe's references from its directory
    run(["mcs", "-langversion:7.2", "-nologo", "-target:exe", "-out:" + os.path.join(WORK, "Peer.exe"),
         "-r:" + os.path.join(WORK, "WxToken.dll"), os.path.join(HERE, "Peer.cs")])
    if cc.wait() != 0 or cxx.wait() != 0:
        raise RuntimeError("the C or C++ peer did not compile")
    return {
        "c": [os.path.join(WORK, "peer_c")],
        "cpp": [os.path.join(WORK, "peer_cpp")],
        "python": [sys.executable, os.path.join(HERE, "peer.py")],
        "csharp": ["mono", "--debug", os.path.join(WORK, "Peer.exe")],
    }


# ---- one fleet -----------------------------------------------------------------------------------

def race(peers, env, tag):
    """Starts the four peers, releases them together, returns {lang: {value: fingerprint}}."""
    barrier = os.path.join(WORK, "go-" + tag)
    env = dict(os.environ, WX_TOKEN_LIB=LIB, PYTHONPATH=os.path.join(ROOT, "bindings/python"),
               WXF_BARRIER=barrier, **env)
    lines = {lang: [] for lang in LANGS}
    started = {}
    readers = []
    for lang in LANGS:
        p = start(peers[lang], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        started[lang] = p
        t = threading.Thread(target=lambda p=p, out=lines[lang]: out.extend(l.strip() for l in p.stdout), daemon=True)
        t.start()
        readers.append(t)
    deadline = time.monotonic() + 30
    while not all("ready" in lines[l] or started[l].poll() is not None for l in LANGS):
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    check("%s: all four processes registered before the start" % tag, all("ready" in lines[l] for l in LANGS),
          str({l: lines[l] for l in LANGS}))
    open(barrier, "w").close()
    for lang in LANGS:
        try:
            started[lang].wait(max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            started[lang].kill()
            started[lang].wait()
    for t in readers:
        t.join(5)
    fps = {}
    for lang in LANGS:
        got = dict(l.split(" ", 1) for l in lines[lang] if " " in l)
        fps[lang] = got
        check("%s: %s got the mp token, jsapi ticket and WeCom token from 4 threads" % (tag, lang),
              started[lang].returncode == 0 and all(v in got for v in VALUES),
              "exit %s, stdout %s" % (started[lang].returncode, lines[lang]))
    for v in VALUES:
        seen = {lang: fps[lang].get(v) for lang in LANGS}
        check("%s: every process has the same %s (fingerprint %s)" % (tag, v, seen["c"]),
              len(set(seen.values())) == 1 and None not in seen.values(), str(seen))
    return fps


def verify(fake, fps, tag, mp, corp, wecom, **opts):
    """A fifth reader (this process) takes the values from the same store/server, without fetching,
    and uses them at the fake's business endpoints; then the fake's counters say one fetch each."""
    import wx_token

    try:
        wecom_opts = dict(platform="wecom", corpid=corp, agentid=opts.pop("agentid"))
        secrets = opts.pop("secrets", (None, None))
        mp_opts = dict(opts, endpoint="classic") if "store" in opts else dict(opts)
        wx_token.register(mp, secrets[0], **mp_opts)
        wx_token.register(wecom, secrets[1], **opts, **wecom_opts)
        token, ticket, wtoken = wx_token.get(mp), wx_token.ticket(mp, "jsapi"), wx_token.get(wecom)
        fleet = fps["c"]
        check("%s: a fifth reader sees the fleet's values" % tag,
              (fnv1a(token), fnv1a(ticket), fnv1a(wtoken)) == tuple(fleet.get(v) for v in VALUES))
        q = urllib.parse.quote
        ans = http(fake + "/cgi-bin/get_api_domain_ip?access_token=" + q(token))
        check("%s: the mp token works at the business endpoint" % tag, "ip_list" in ans, str(ans))
        ans = http(fake + "/cgi-bin/getcallbackip?access_token=" + q(wtoken))
        check("%s: the WeCom token works at the business endpoint" % tag, ans.get("errcode") == 0, str(ans))
        current = http("%s/_fake/ticket?owner=%s&kind=jsapi" % (fake, q(mp)))
        check("%s: the jsapi ticket is the fake's valid one" % tag, fnv1a(current["ticket"]) == fleet.get("jsapi"))
        url = "https://example.com/page?x=1"
        ans = http(fake + "/_fake/jssdk_check", dict(wx_token.jssdk_config(mp, url), url=url))
        check("%s: the browser check accepts wx.config signed with it" % tag, ans.get("ok") is True, str(ans))
    except Exception as e:  # a failure of the check, reported as one
        check("%s: the fifth reader" % tag, False, repr(e))
    stats = http(fake + "/_fake/stats")["apps"]
    a, c = stats.get(mp, {}), stats.get(corp, {})
    check("%s: one token fetch for the mp app" % tag,
          a.get("token_requests") == 1 and a.get("stable_requests") == 0, str(a))
    check("%s: one getticket for the jsapi ticket" % tag, a.get("ticket_requests") == 1, str(a))
    check("%s: one gettoken for the WeCom secret" % tag, c.get("wecom_token_requests") == 1, str(c))


def main():
    t0 = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    peers = build()
    print("built the peers in %.1f s" % (time.monotonic() - t0), flush=True)
    run_id = str(os.getpid())
    apps = {"redis": ("wxfleetredis", "wwfleetredis", 1000002), "central": ("wxfleetcentral", "wwfleetcentral", 1000003)}
    secret = {name: ("mp-secret-" + run_id + name, "wecom-secret-" + run_id + name) for name in apps}
    fake_args = [FAKE_BIN, "--listen", "127.0.0.1:0", "--exit-on-stdin-eof"]
    for name, (mp, corp, agent) in apps.items():
        fake_args += ["--app", "%s:%s" % (mp, secret[name][0]), "--wecom", "%s:%s:%d" % (corp, secret[name][1], agent)]
    fake = start(fake_args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if not select.select([fake.stdout], [], [], 15)[0]:
        raise RuntimeError("the fake printed nothing in 15 s")
    line = fake.stdout.readline().strip()
    if not line.startswith("listening on http://127.0.0.1:"):
        raise RuntimeError("the fake did not start: %r" % line)
    fake_url = line[len("listening on "):]

    redis_port = free_port()
    redis = start(["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "", "--appendonly", "no"],
                  stdout=subprocess.DEVNULL)
    tokend_port = free_port()
    key = "fleet-xlang-key-%s-0123456789" % run_id
    mp, corp, agent = apps["central"]
    with open(os.path.join(WORK, "tokend.toml"), "w") as f:
        f.write('listen = "127.0.0.1:%d"\nlog_requests = false\n\n' % tokend_port)
        f.write('[[app]]\nappid = "%s"\nsecret_env = "WXF_TOKEND_MP_SECRET"\n'
                'options = { api_base = "%s", endpoint = "classic" }\n\n' % (mp, fake_url))
        f.write('[[app]]\nappid = "%s.app"\nsecret_env = "WXF_TOKEND_WECOM_SECRET"\n'
                'options = { api_base = "%s", platform = "wecom", corpid = "%s", agentid = %d }\n\n'
                % (corp, fake_url, corp, agent))
        f.write('[[client]]\nname = "fleet"\nkey_env = "WXF_TOKEND_KEY"\napps = ["%s", "%s.app"]\n' % (mp, corp))
    tokend = start([TOKEND_BIN, "--config", os.path.join(WORK, "tokend.toml")],
                   env=dict(os.environ, WXF_TOKEND_MP_SECRET=secret["central"][0],
                            WXF_TOKEND_WECOM_SECRET=secret["central"][1], WXF_TOKEND_KEY=key),
                   stdout=subprocess.DEVNULL, stderr=open(os.path.join(WORK, "tokend.log"), "w"))
    wait_port(redis_port, redis, "redis-server")
    wait_port(tokend_port, tokend, "wx-tokend")
    store = "redis://127.0.0.1:%d/0" % redis_port
    prefix = "wxfleet%s:" % run_id

    # 1. A Redis store: the secrets in every process, one fetch for the fleet.
    mp, corp, agent = apps["redis"]
    ids = dict(WXF_MP=mp, WXF_WECOM=corp + ".app", WXF_CORPID=corp, WXF_AGENTID=str(agent))
    fps = race(peers, dict(ids, WXF_API_BASE=fake_url, WXF_STORE=store, WXF_STORE_PREFIX=prefix,
                           WXF_MP_SECRET=secret["redis"][0], WXF_WECOM_SECRET=secret["redis"][1]), "redis")
    verify(fake_url, fps, "redis", mp, corp, corp + ".app", agentid=agent, secrets=secret["redis"],
           api_base=fake_url, store=store, store_prefix=prefix)

    # 2. Client mode: wx-tokend holds the secrets; no process of the fleet has one.
    mp, corp, agent = apps["central"]
    ids = dict(WXF_MP=mp, WXF_WECOM=corp + ".app", WXF_CORPID=corp, WXF_AGENTID=str(agent))
    central = "http://127.0.0.1:%d" % tokend_port
    fps = race(peers, dict(ids, WXF_CENTRAL=central, WXF_CENTRAL_KEY=key), "central")
    verify(fake_url, fps, "central", mp, corp, corp + ".app", agentid=agent, central=central, central_key=key)
    print("took %.1f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(ROOT, "bindings/python"))
    os.environ["WX_TOKEN_LIB"] = LIB
    try:
        main()
    except Exception as e:  # setup failed: counted, reported, and everything stopped
        check("setup", False, repr(e))
    finally:
        stop_all()
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    sys.exit(1 if results["failed"] or not results["passed"] else 0)
