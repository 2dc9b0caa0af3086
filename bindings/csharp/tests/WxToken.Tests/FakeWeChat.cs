using System;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;

namespace WxToken.Tests
{
    // The project's real fake WeChat server (target/debug/wx-fake-wechat), as a child process on 127.0.0.1.
    // Its stdin stays an open pipe: with --exit-on-stdin-eof it dies with this process even if teardown never runs.
    public sealed class FakeWeChat : IDisposable
    {
        static int seq;
        readonly Process proc;
        public readonly string BaseUrl;

        static FakeWeChat()
        {
            // Mono's synchronous HttpWebRequest waits on thread-pool work: tests that make 32 concurrent business calls
            // would otherwise starve the pool (it grows by about one thread per 500 ms) and time out.
            int w, io;
            ThreadPool.GetMinThreads(out w, out io);
            ThreadPool.SetMinThreads(Math.Max(w, 128), Math.Max(io, 128));
        }

        public FakeWeChat(params string[] extraArgs)
        {
            string bin = Environment.GetEnvironmentVariable("WX_FAKE_BIN");
            if (string.IsNullOrEmpty(bin) || !File.Exists(bin))
                throw new InvalidOperationException("WX_FAKE_BIN must name the wx-fake-wechat binary (test.sh sets it); got '" + bin + "'");
            var psi = new ProcessStartInfo(bin, "--listen 127.0.0.1:0 --exit-on-stdin-eof " + string.Join(" ", extraArgs))
            {
                UseShellExecute = false,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
            };
            ServicePointManager.DefaultConnectionLimit = 256; // Mono defaults to 2 per host: concurrent tests would queue
            proc = Process.Start(psi);
            string line = proc.StandardOutput.ReadLine() ?? "";
            var m = Regex.Match(line, @"listening on (http://127\.0\.0\.1:\d+)");
            if (!m.Success) { Dispose(); throw new InvalidOperationException("fake did not start: '" + line + "'"); }
            BaseUrl = m.Groups[1].Value;
        }

        // A fresh appid per test, so the engine's per-app state (cache, backoff, force-refresh limit) never leaks between tests.
        public static string NewAppId(string tag)
        {
            return "wx" + tag + "_" + Interlocked.Increment(ref seq) + "_" + Process.GetCurrentProcess().Id;
        }

        public string AddApp(string appId, string secret)
        {
            Post("/_fake/apps", "{\"appid\":" + Json(appId) + ",\"secret\":" + Json(secret) + "}");
            return appId;
        }

        public WxTokenOptions Options(WxEndpoint endpoint = WxEndpoint.Classic)
        {
            return new WxTokenOptions
            {
                ApiBase = BaseUrl,
                Endpoint = endpoint,
                RetryMinMs = 50,
                RetryMaxMs = 200,
                ErrorCooldownMs = 300,
                TimeoutMs = 1500,
            };
        }

        // Adds the app to the fake and registers it with the binding.
        public string NewApp(string tag, WxEndpoint endpoint = WxEndpoint.Classic, string secret = "s3cret")
        {
            string appId = AddApp(NewAppId(tag), secret);
            WxAccessToken.Register(appId, secret, Options(endpoint));
            return appId;
        }

        public void Fault(string appId, string kind, int count = 1, string extra = "")
        {
            Post("/_fake/faults", "{\"kind\":\"" + kind + "\",\"count\":" + count + ",\"appid\":" + Json(appId) + extra + "}");
        }

        // One counter of one app from GET /_fake/stats.
        public int Stat(string appId, string counter)
        {
            string json = Http("GET", "/_fake/stats", null);
            int at = json.IndexOf(Json(appId) + ":{", StringComparison.Ordinal);
            if (at < 0) return 0;
            string app = json.Substring(at, json.IndexOf('}', at) - at);
            var m = Regex.Match(app, "\"" + counter + "\":(\\d+)");
            return m.Success ? int.Parse(m.Groups[1].Value) : 0;
        }

        public int TokenRequests(string appId) { return Stat(appId, "token_requests") + Stat(appId, "stable_requests"); }

        public string Current(string appId)
        {
            string json = Http("GET", "/_fake/current?appid=" + Uri.EscapeDataString(appId), null);
            return Regex.Match(json, "\"access_token\":\"([^\"]*)\"").Groups[1].Value;
        }

        // The business API a real app would call with the token.
        public string ApiCall(string token)
        {
            return Http("GET", "/cgi-bin/get_api_domain_ip?access_token=" + Uri.EscapeDataString(token), null);
        }

        public void Revoke(string token) { Post("/_fake/revoke", "{\"token\":" + Json(token) + "}"); }
        public void Expire(string appId) { Post("/_fake/expire", "{\"appid\":" + Json(appId) + "}"); }

        public string Post(string path, string body) { return Http("POST", path, body); }

        public string Http(string method, string path, string body)
        {
            var req = (HttpWebRequest)WebRequest.Create(BaseUrl + path);
            req.Method = method;
            req.Proxy = null;
            req.KeepAlive = false;
            req.Timeout = 10000;
            if (body != null)
            {
                byte[] b = Encoding.UTF8.GetBytes(body);
                req.ContentType = "application/json";
                req.ContentLength = b.Length;
                using (var s = req.GetRequestStream()) s.Write(b, 0, b.Length);
            }
            try
            {
                using (var resp = (HttpWebResponse)req.GetResponse())
                using (var r = new StreamReader(resp.GetResponseStream(), Encoding.UTF8))
                    return r.ReadToEnd();
            }
            catch (WebException e) when (e.Response != null)
            {
                using (var r = new StreamReader(e.Response.GetResponseStream(), Encoding.UTF8))
                    throw new InvalidOperationException(method + " " + path + " -> " + r.ReadToEnd(), e);
            }
        }

        public static string Json(string s)
        {
            var sb = new StringBuilder("\"");
            foreach (char c in s)
            {
                if (c == '"' || c == '\\') sb.Append('\\').Append(c);
                else if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4"));
                else sb.Append(c);
            }
            return sb.Append('"').ToString();
        }

        public void Dispose()
        {
            try { proc.StandardInput.Close(); } catch { }
            try { if (!proc.WaitForExit(2000)) { proc.Kill(); proc.WaitForExit(2000); } } catch { }
            proc.Dispose();
        }
    }
}
