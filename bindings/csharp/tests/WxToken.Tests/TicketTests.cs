using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;

namespace WxToken.Tests
{
    // JS-SDK tickets, signatures and WeCom, against the real fake WeChat: its getticket, WeCom gettoken and ticket
    // endpoints, and its /_fake/jssdk_check, which plays the browser's wx.config with what a server rendered.
    [TestFixture]
    public class TicketTests : FakeFixture
    {
        // WeChat's documented example (JS-SDK documentation, appendix 1).
        const string DocTicket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";
        const string DocNonce = "Wm3WZYTPz0wzccnW";
        const string DocTimestamp = "1414587457";
        const string DocUrl = "http://mp.weixin.qq.com";
        const string DocSignature = "f4d90daf4b3bca3078ab155816175ba34c443a7b";
        const string Page = "https://shop.example/item?id=5&from=timeline";

        static string Sha1Hex(string s)
        {
            using (var sha = SHA1.Create())
                return string.Concat(sha.ComputeHash(Encoding.UTF8.GetBytes(s)).Select(b => b.ToString("x2")));
        }

        string FakeTicket(string owner, string kind)
        {
            string json = Fake.Http("GET", "/_fake/ticket?owner=" + Uri.EscapeDataString(owner) + "&kind=" + kind, null);
            return Regex.Match(json, "\"ticket\":\"([^\"]*)\"").Groups[1].Value;
        }

        // The fake plays the browser: does the rendered config pass wx.config / wx.agentConfig on the page at `url`?
        bool BrowserAccepts(string configJson, string url)
        {
            string body = configJson.Substring(0, configJson.LastIndexOf('}')) + ",\"url\":" + FakeWeChat.Json(url) + "}";
            return Fake.Post("/_fake/jssdk_check", body).Replace(" ", "").Contains("\"ok\":true");
        }

        void SlowTicketEndpoint(string path, int ms)
        {
            Fake.Post("/_fake/faults", "{\"kind\":\"slow\",\"delay_ms\":" + ms + ",\"path\":\"" + path + "\"}");
        }

        // One registered id per WeCom corp secret; the fake learns the secret first.
        string WeComId(string corpId, string label, long? agentId)
        {
            string secret = corpId + "-" + label + "-secret";
            Fake.Post("/_fake/wecom", "{\"corpid\":" + FakeWeChat.Json(corpId) + ",\"secret\":" + FakeWeChat.Json(secret)
                + (agentId.HasValue ? ",\"agentid\":" + agentId.Value : "") + "}");
            string id = corpId + "." + label;
            WxTokenOptions o = Fake.Options();
            o.Platform = WxPlatform.WeCom;
            o.CorpId = corpId;
            o.AgentId = agentId;
            WxAccessToken.Register(id, secret, o);
            return id;
        }

        // --- signatures (pure) -------------------------------------------------------------------------------

        [Test]
        public void Signature_MatchesWeChatsDocumentedVector()
        {
            Assert.AreEqual(DocSignature, WxJsSdk.Signature(DocTicket, DocNonce, DocTimestamp, DocUrl));
            Assert.AreEqual(DocSignature, WxJsSdk.Signature(DocTicket, DocNonce, 1414587457L, DocUrl));
            Assert.AreEqual(Sha1Hex("jsapi_ticket=" + DocTicket + "&noncestr=" + DocNonce + "&timestamp=" + DocTimestamp + "&url=" + Page),
                WxJsSdk.Signature(DocTicket, DocNonce, DocTimestamp, Page), "values raw, not URL-encoded");
        }

        [Test]
        public void Signature_CutsTheUrlAtTheFragment()
        {
            string plain = WxJsSdk.Signature(DocTicket, DocNonce, DocTimestamp, DocUrl);
            Assert.AreEqual(plain, WxJsSdk.Signature(DocTicket, DocNonce, DocTimestamp, DocUrl + "#/cart?x=1"));
            Assert.AreNotEqual(plain, WxJsSdk.Signature(DocTicket, DocNonce, DocTimestamp, DocUrl + "/"));
            Assert.Throws<ArgumentNullException>(() => WxJsSdk.Signature(DocTicket, null, DocTimestamp, DocUrl));
            Assert.Throws<ArgumentException>(() => WxJsSdk.Signature(DocTicket, DocNonce, DocTimestamp, "a\0b"));
        }

        [Test]
        public void CardSign_SortsTheValues()
        {
            var values = new[] { "wx_card_ticket_T", "1414587457", "pFS7Fjg8kV1IdDz01r4SQwMkuCKc", "nonce-Z", "openid-a" };
            string expected = Sha1Hex(string.Concat(values.OrderBy(v => v, StringComparer.Ordinal)));
            Assert.AreEqual(expected, WxCardSign.Compute(values));
            Assert.AreEqual(expected, WxCardSign.Compute(values.Reverse()));
            // By bytes: "B" (0x42) before "a" (0x61), where a culture-aware sort puts "a" first.
            Assert.AreEqual(Sha1Hex("Ba"), WxCardSign.Compute("a", "B"));
            Assert.AreEqual(WxStatus.InvalidArgument, Assert.Throws<WxTokenException>(() => WxCardSign.Compute()).Status);
            Assert.AreEqual(WxStatus.InvalidArgument,
                Assert.Throws<WxTokenException>(() => WxCardSign.Compute(Enumerable.Repeat("x", 65))).Status);
            Assert.Throws<ArgumentNullException>(() => WxCardSign.Compute("a", null));
        }

        // --- mp tickets ---------------------------------------------------------------------------------------

        [Test]
        public void JsapiTicket_FetchedOnceForManyConcurrentCallers()
        {
            string app = Fake.NewApp("tk_conc");
            SlowTicketEndpoint("/cgi-bin/ticket/getticket", 300); // every task asks while the one fetch is in flight
            var go = new ManualResetEventSlim(false);
            var tasks = Enumerable.Range(0, 32).Select(i => Task.Factory.StartNew(() => { go.Wait(); return WxTicket.Get(app, WxTicketKind.Jsapi); },
                TaskCreationOptions.LongRunning)).ToArray();
            go.Set();
            Assert.IsTrue(Task.WaitAll(tasks, 20000));
            Assert.AreEqual(new[] { FakeTicket(app, "jsapi") }, tasks.Select(t => t.Result).Distinct().ToArray());
            Assert.AreEqual(1, Fake.Stat(app, "ticket_requests"));
            Assert.AreEqual(1, Fake.TokenRequests(app), "fetched with the app's one token");
            Assert.AreEqual(tasks[0].Result, WxTicket.Get(app));
            Assert.AreEqual(1, Fake.Stat(app, "ticket_requests"), "then cached");
        }

        [Test]
        public async Task GetAsyncAndConfigAsync_ShareTheEnginesFetch()
        {
            string app = Fake.NewApp("tk_async");
            SlowTicketEndpoint("/cgi-bin/ticket/getticket", 200);
            string[] tickets = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => WxTicket.GetAsync(app)));
            Assert.AreEqual(new[] { FakeTicket(app, "jsapi") }, tickets.Distinct().ToArray());
            WxJsSdkConfig cfg = await WxJsSdk.ConfigAsync(app, Page);
            Assert.IsTrue(BrowserAccepts(cfg.Json, Page));
            Assert.AreEqual(1, Fake.Stat(app, "ticket_requests"));
        }

        [Test]
        public void JsapiAndCardTickets_AreApart_AndKindsArePerPlatform()
        {
            string app = Fake.NewApp("tk_card");
            string card = WxTicket.Get(app, WxTicketKind.WxCard);
            Assert.AreEqual(FakeTicket(app, "wx_card"), card);
            Assert.AreNotEqual(card, WxTicket.Get(app, WxTicketKind.Jsapi));
            Assert.AreEqual(WxStatus.InvalidArgument, Assert.Throws<WxTokenException>(() => WxTicket.Get(app, WxTicketKind.AgentConfig)).Status);
            Assert.AreEqual(WxStatus.InvalidArgument, Assert.Throws<WxTokenException>(() => WxJsSdk.Config(app, Page, WxTicketKind.WxCard)).Status);
            Assert.AreEqual(WxStatus.UnknownApp, Assert.Throws<WxTokenException>(() => WxTicket.Get("wx_never_registered_ticket")).Status);
            Assert.AreEqual("agent_config", WxTicket.KindName(WxTicketKind.AgentConfig));
        }

        [Test]
        public void Config_IsAcceptedByTheBrowserCheck()
        {
            string app = Fake.NewApp("tk_cfg");
            string url = Page + "#/detail";
            WxJsSdkConfig cfg = WxJsSdk.Config(app, url);
            Assert.AreEqual(WxTicketKind.Jsapi, cfg.Kind);
            Assert.AreEqual(app, cfg.AppId);
            Assert.IsNull(cfg.CorpId);
            Assert.AreEqual(40, cfg.Signature.Length);
            long now = (long)(DateTime.UtcNow - new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc)).TotalSeconds;
            Assert.Less(Math.Abs(long.Parse(cfg.Timestamp) - now), 60);
            Assert.IsTrue(BrowserAccepts(cfg.Json, url));
            Assert.IsTrue(BrowserAccepts(cfg.Json, Page), "the fragment is not signed");
            Assert.IsFalse(BrowserAccepts(cfg.Json, Page + "&other=1"), "another page's URL fails, so the check can fail");
            string rendered = cfg.ToJson(new[] { "chooseImage", "</script>" });
            StringAssert.Contains("\"jsApiList\":[\"chooseImage\",\"\\u003c/script\\u003e\"]", rendered);
            Assert.IsTrue(BrowserAccepts(rendered, url), "the page's object with jsApiList passes too");
            Assert.AreEqual(WxJsSdk.Signature(WxTicket.Get(app), cfg.NonceStr, cfg.Timestamp, url), cfg.Signature);
            Assert.AreEqual(20, Enumerable.Range(0, 20).Select(i => WxJsSdk.Config(app, url).NonceStr).Distinct().Count(), "a fresh nonce every call");
            Assert.AreEqual(1, Fake.Stat(app, "ticket_requests"));
            Assert.AreEqual(WxStatus.InvalidArgument, Assert.Throws<WxTokenException>(() => WxJsSdk.Config(app, "")).Status);
        }

        [Test]
        public void Invalidate_ComparesBeforeReplacing()
        {
            string app = Fake.NewApp("tk_inval");
            string t1 = WxTicket.Get(app);
            WxTicket.Invalidate(app, WxTicketKind.Jsapi, "some-older-ticket");
            Assert.AreEqual(1, Fake.Stat(app, "ticket_requests"), "a ticket that is not the cached one: nothing happens");
            // WeChat has moved on (the page failed): reported by many at once, the new ticket is fetched once.
            Fake.Post("/_fake/expire_tickets", "{}");
            var reports = Enumerable.Range(0, 8).Select(i => Task.Factory.StartNew(() => WxTicket.Invalidate(app, WxTicketKind.Jsapi, t1),
                TaskCreationOptions.LongRunning)).ToArray();
            Assert.IsTrue(Task.WaitAll(reports, 20000));
            string t2 = WxTicket.Get(app);
            Assert.AreNotEqual(t1, t2);
            Assert.AreEqual(FakeTicket(app, "jsapi"), t2);
            Assert.AreEqual(2, Fake.Stat(app, "ticket_requests"));
            // The old ticket reported again: the cache has moved on.
            WxTicket.Invalidate(app, WxTicketKind.Jsapi, t1);
            Assert.AreEqual(t2, WxTicket.Get(app));
            Assert.AreEqual(2, Fake.Stat(app, "ticket_requests"));
            Assert.Throws<ArgumentNullException>(() => WxTicket.Invalidate(app, WxTicketKind.Jsapi, null));
        }

        // --- WeCom --------------------------------------------------------------------------------------------

        [Test]
        public void WeCom_OneIdPerSecret_AndAgentTicketsApartFromCorpTickets()
        {
            string corp = "wwcs" + Process.GetCurrentProcess().Id;
            string approval = WeComId(corp, "approval", 1000002);
            string contacts = WeComId(corp, "contacts", null);
            string ta = WxAccessToken.Get(approval), tc = WxAccessToken.Get(contacts);
            Assert.AreNotEqual(ta, tc, "two secrets of one corp: two tokens");
            Assert.AreEqual(2, Fake.Stat(corp, "wecom_token_requests"));
            foreach (string t in new[] { ta, tc })
                StringAssert.Contains("\"errcode\":0", Fake.Http("GET", "/cgi-bin/getcallbackip?access_token=" + Uri.EscapeDataString(t), null).Replace(" ", ""));

            string corpTicket = WxTicket.Get(approval, WxTicketKind.Jsapi);
            string agentTicket = WxTicket.Get(approval, WxTicketKind.AgentConfig);
            Assert.AreNotEqual(corpTicket, agentTicket);
            Assert.AreEqual(FakeTicket(corp, "corp_jsapi"), corpTicket);
            Assert.AreEqual(FakeTicket(corp + "/1000002", "agent_config"), agentTicket);
            Assert.AreEqual(corpTicket, WxTicket.Get(approval, WxTicketKind.Jsapi), "one kind never replaces the other");
            Assert.AreEqual(WxStatus.InvalidArgument, Assert.Throws<WxTokenException>(() => WxTicket.Get(approval, WxTicketKind.WxCard)).Status);
            Assert.AreEqual(WxStatus.InvalidArgument,
                Assert.Throws<WxTokenException>(() => WxJsSdk.Config(contacts, Page, WxTicketKind.AgentConfig)).Status, "no agentid for this secret");

            WxJsSdkConfig cfg = WxJsSdk.Config(approval, Page);
            Assert.AreEqual(corp, cfg.AppId, "WeCom's wx.config takes the corpid as appId");
            Assert.IsTrue(BrowserAccepts(cfg.Json, Page));
            WxJsSdkConfig agent = WxJsSdk.Config(approval, Page, WxTicketKind.AgentConfig);
            Assert.AreEqual(corp, agent.CorpId);
            Assert.AreEqual("1000002", agent.AgentId);
            Assert.IsNull(agent.AppId);
            Assert.IsTrue(BrowserAccepts(agent.Json, Page));
            // Signed with the corp ticket, wx.agentConfig fails: the kinds really differ.
            string wrong = agent.Json.Replace(agent.Signature, WxJsSdk.Signature(corpTicket, agent.NonceStr, agent.Timestamp, Page));
            Assert.IsFalse(BrowserAccepts(wrong, Page));
        }

        [Test]
        public void WeCom_WithoutCorpId_IsRefusedAtRegister()
        {
            WxTokenOptions o = Fake.Options();
            o.Platform = WxPlatform.WeCom;
            var e = Assert.Throws<WxTokenException>(() => WxAccessToken.Register("wwcs_nocorp.app", "s", o));
            Assert.AreEqual(WxStatus.InvalidArgument, e.Status);
            StringAssert.Contains("corpid", e.Message);
        }

        // --- the READMEs' JS-SDK walk-throughs ---------------------------------------------------------------

        // Every complete C# sample of README.md and bindings/csharp/README.md (marked <!-- test: csharp -->, extracted
        // by scripts/readme_samples.py) is compiled for the runtime running the tests and run as a user would run it;
        // the page it serves carries a wx.config that the browser check accepts for the URL the page was served at.
        [Test]
        public void ReadmeJsSdkSamples_ServePagesWhoseWxConfigPasses()
        {
            string repo = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(typeof(TicketTests).Assembly.Location), "..", "..", "..", ".."));
            string dir = Path.Combine(Path.GetTempPath(), "wx_readme_cs_" + Process.GetCurrentProcess().Id + "_" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(dir);
            try
            {
                var sources = new List<string>();
                foreach (string md in new[] { Path.Combine(repo, "README.md"), Path.Combine(repo, "bindings", "csharp", "README.md") })
                {
                    string list = Run("python3", Quote(Path.Combine(repo, "scripts", "readme_samples.py")) + " extract " + Quote(md)
                        + " --lang csharp --out " + Quote(Path.Combine(dir, Path.GetFileName(Path.GetDirectoryName(md)))));
                    sources.AddRange(list.Split('\n').Where(l => l.Contains("\t")).Select(l => l.Split('\t')[1]).Where(s => File.ReadAllText(s).Contains("WxJsSdk")));
                }
                Assert.AreEqual(2, sources.Count, "a JS-SDK walk-through in each README");
                string lib = typeof(WxTicket).Assembly.Location;
                foreach (string src in sources)
                {
                    string exe = Compile(src, lib);
                    string app = Fake.AddApp(FakeWeChat.NewAppId("readme_js"), "readme-secret");
                    var env = new Dictionary<string, string> { { "WX_APPID", app }, { "WX_SECRET", "readme-secret" }, { "WX_API_BASE", Fake.BaseUrl } };
                    int exit;
                    string output = ChildProcess.Run(exe, null, Environment.GetEnvironmentVariable("WX_TOKEN_LIB"), env, out exit);
                    Assert.AreEqual(0, exit, src + ":\n" + output);
                    string url = Regex.Match(output, @"^page: (\S+)", RegexOptions.Multiline).Groups[1].Value;
                    string config = Regex.Match(output, @"wx\.config\((\{.*?\})\);").Groups[1].Value;
                    Assert.IsNotEmpty(url, output);
                    Assert.IsNotEmpty(config, output);
                    Assert.IsTrue(BrowserAccepts(config, url), src + ": " + config + " for " + url);
                    Assert.AreEqual(1, Fake.Stat(app, "ticket_requests"), src);
                }
            }
            finally
            {
                try { Directory.Delete(dir, true); } catch (IOException) { }
            }
        }

        static string Quote(string s) { return "\"" + s + "\""; }

        static string Run(string file, string args)
        {
            var psi = new ProcessStartInfo(file, args) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            using (var p = Process.Start(psi))
            {
                var err = p.StandardError.ReadToEndAsync();
                string output = p.StandardOutput.ReadToEnd();
                Assert.IsTrue(p.WaitForExit(120000), file + " hung");
                Assert.AreEqual(0, p.ExitCode, file + " " + args + ":\n" + output + err.Result);
                return output;
            }
        }

        // mcs, as test.sh builds everything: against Mono's profile, or against the running CoreCLR's own framework.
        static string Compile(string src, string wxTokenDll)
        {
            string dir = Path.GetDirectoryName(src);
            string exe = Path.ChangeExtension(src, ".exe");
            File.Copy(wxTokenDll, Path.Combine(dir, "WxToken.dll"), true);
            var args = new StringBuilder("-langversion:7.2 -nologo -warnaserror+ -target:exe -out:" + Quote(exe) + " -r:" + Quote(Path.Combine(dir, "WxToken.dll")));
            if (Type.GetType("Mono.Runtime") != null)
                args.Append(" -r:System.dll");
            else
            {
                args.Append(" -nostdlib");
                foreach (string f in Directory.GetFiles(Path.GetDirectoryName(typeof(object).Assembly.Location), "*.dll"))
                    if (!f.Contains("WindowsRuntime")) // as common.sh's CORE_REFS: mcs cannot load the WinRT ones
                        args.Append(" -r:").Append(Quote(f));
                File.WriteAllText(Path.ChangeExtension(src, ".runtimeconfig.json"),
                    "{\"runtimeOptions\":{\"tfm\":\"netcoreapp3.1\",\"framework\":{\"name\":\"Microsoft.NETCore.App\",\"version\":\"3.1.0\"},\"configProperties\":{\"System.Globalization.Invariant\":true}}}\n");
            }
            args.Append(' ').Append(Quote(src));
            Run("mcs", args.ToString());
            return exe;
        }
    }
}
