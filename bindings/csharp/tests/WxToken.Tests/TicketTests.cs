using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
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

        // SHA-1 vectors computed outside .NET (python3 hashlib): BCL crypto aborts this CoreCLR (no libssl 1.x).
        const string Sha1OfDocStringWithPage = "7ef0ce40d246013341df17e1f5b324eb062029c7";   // sha1("jsapi_ticket=" DocTicket "&noncestr=" DocNonce "&timestamp=" DocTimestamp "&url=" Page)
        const string Sha1OfSortedCardValues = "8b0489f51d0a326259b35832385cdde93a182c6b";  // sha1("".join(sorted(CardValues)))
        const string Sha1OfBa = "2fd22ce656b849cb086889e5eacd1da49228eb0a";
        static readonly string[] CardValues = { "wx_card_ticket_T", "1414587457", "pFS7Fjg8kV1IdDz01r4SQwMkuCKc", "nonce-Z", "openid-a" };

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
        string WeComId(string corpId, string label, int? agentId)
        {
            string secret = corpId + "-" + label + "-secret";
            Fake.Post("/_fake/wecom", "{\"corpid\":" + FakeWeChat.Json(corpId) + ",\"secret\":" + FakeWeChat.Json(secret)
                + (agentId.HasValue ? ",\"agentid\":" + agentId.Value : "") + "}");
            string id = corpId + "." + label;
            WxTokenOptions o = Fake.Options();
            o.Endpoint = null; // WeCom has one token API
            o.Platform = "wecom";
            o.Corpid = corpId;
            o.Agentid = agentId;
            WxAccessToken.Register(id, secret, o);
            return id;
        }

        // --- signatures (pure) -------------------------------------------------------------------------------

        [Test]
        public void Signature_MatchesWeChatsDocumentedVector()
        {
            Assert.AreEqual(DocSignature, WxJsSdk.Signature(DocTicket, DocNonce, DocTimestamp, DocUrl));
            Assert.AreEqual(DocSignature, WxJsSdk.Signature(DocTicket, DocNonce, 1414587457L, DocUrl));
            Assert.AreEqual(Sha1OfDocStringWithPage, WxJsSdk.Signature(DocTicket, DocNonce, DocTimestamp, Page), "values raw, not URL-encoded");
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
            Assert.AreEqual(Sha1OfSortedCardValues, WxCardSign.Compute(CardValues));
            Assert.AreEqual(Sha1OfSortedCardValues, WxCardSign.Compute(CardValues.Reverse()));
            Assert.AreEqual(Sha1OfSortedCardValues, WxCardSign.Compute(CardValues.OrderBy(v => v, StringComparer.Ordinal)));
            // By bytes: "B" (0x42) before "a" (0x61), where a culture-aware sort puts "a" first.
            Assert.AreEqual(Sha1OfBa, WxCardSign.Compute("a", "B"));
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
            o.Endpoint = null;
            o.Platform = "wecom";
            var e = Assert.Throws<WxTokenException>(() => WxAccessToken.Register("wwcs_nocorp.app", "s", o));
            Assert.AreEqual(WxStatus.InvalidArgument, e.Status);
            StringAssert.Contains("corpid", e.Message);
        }

        // --- the READMEs' JS-SDK walk-throughs ---------------------------------------------------------------

        // The READMEs' JS-SDK walk-throughs (complete programs marked <!-- test: csharp -->, which test.sh builds into
        // the probe directory; ReadmeSampleTests runs every sample), run as a user would run them: the page each one
        // renders carries a wx.config that the browser check accepts for the URL it printed.
        [Test]
        public void ReadmeJsSdkSamples_RenderAWxConfigTheBrowserAccepts()
        {
            string[] samples = Directory.GetFiles(Environment.GetEnvironmentVariable("WX_PROBE_DIR"), "readme_*.cs")
                .Where(f => File.ReadAllText(f).Contains("WxJsSdk.Config")).OrderBy(f => f, StringComparer.Ordinal).ToArray();
            Assert.AreEqual(new[] { "readme_csharp_jssdk.cs", "readme_top_jssdk.cs" }, samples.Select(Path.GetFileName).ToArray(),
                "a JS-SDK walk-through in each README");
            foreach (string src in samples)
            {
                string app = Fake.AddApp(FakeWeChat.NewAppId("readme_js"), "readme-secret");
                var env = new Dictionary<string, string> { { "WX_APPID", app }, { "WX_SECRET", "readme-secret" }, { "WX_API_BASE", Fake.BaseUrl } };
                int exit;
                string output = ChildProcess.Run(Path.ChangeExtension(src, ".exe"), null, Environment.GetEnvironmentVariable("WX_TOKEN_LIB"), env, out exit);
                Assert.AreEqual(0, exit, src + ":\n" + output);
                string url = Regex.Match(output, @"^page: (\S+)", RegexOptions.Multiline).Groups[1].Value;
                string config = Regex.Match(output, @"wx\.config\((\{.*?\})\);").Groups[1].Value;
                Assert.IsNotEmpty(url, output);
                Assert.IsNotEmpty(config, output);
                Assert.IsTrue(BrowserAccepts(config, url), src + ": " + config + " for " + url);
                Assert.AreEqual(1, Fake.Stat(app, "ticket_requests"), src);
            }
        }

        // --- a shared store and the central server -----------------------------------------------------------

        [Test]
        public void TwoProcessesSharingRedis_FetchOneTicket()
        {
            using (var redis = new RedisServer())
            {
                string app = Fake.AddApp(FakeWeChat.NewAppId("tk_redis"), "s3cret");
                WxTokenOptions o = Fake.Options();
                o.Store = redis.Url;
                WxAccessToken.Register(app, "s3cret", o);
                string mine = WxTicket.Get(app);
                // Another process of the fleet (the engine's own peer, in Rust) takes the ticket over from the store.
                string options = "{\"api_base\":\"" + Fake.BaseUrl + "\",\"endpoint\":\"classic\",\"store\":\"" + redis.Url + "\"}";
                string output = ModeTests.StorePeer("--appid " + app + " --secret s3cret --ticket jsapi --options " + ModeTests.Quote(options));
                Assert.AreEqual(ModeTests.Fingerprint(mine), output.Trim());
                Assert.AreEqual(1, Fake.Stat(app, "ticket_requests"), "one getticket for both processes");
                Assert.AreEqual(1, Fake.TokenRequests(app));
            }
        }

        [Test]
        public void ClientMode_GetsTicketsAndConfigsWithoutTheSecret()
        {
            string app = Fake.AddApp(FakeWeChat.NewAppId("tk_central"), "central-secret");
            using (var tokend = new Tokend(app, "central-secret", Fake.BaseUrl))
            {
                WxAccessToken.Register(app, null, new WxTokenOptions { Central = tokend.BaseUrl, CentralKey = Tokend.ClientKey });
                string ticket = WxTicket.Get(app);
                Assert.AreEqual(FakeTicket(app, "jsapi"), ticket);
                WxJsSdkConfig cfg = WxJsSdk.Config(app, Page);
                Assert.AreEqual(app, cfg.AppId);
                Assert.IsTrue(BrowserAccepts(cfg.Json, Page));
                Assert.AreEqual(1, Fake.Stat(app, "ticket_requests"));
            }
        }
    }
}
