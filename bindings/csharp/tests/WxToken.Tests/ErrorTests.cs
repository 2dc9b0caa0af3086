using System;
using System.Threading.Tasks;
using NUnit.Framework;

namespace WxToken.Tests
{
    [TestFixture]
    public class ErrorTests : FakeFixture
    {
        WxTokenException GetFails(string app)
        {
            return Assert.Throws<WxTokenException>(() => WxAccessToken.Get(app));
        }

        [Test]
        public void WrongSecret_IsWeChatError40125_AndIsRememberedDuringTheCooldown()
        {
            string app = Fake.AddApp(FakeWeChat.NewAppId("badsecret"), "right");
            WxAccessToken.Register(app, "Wr0ngS3cretValue", Fake.Options());
            var e = GetFails(app);
            Assert.AreEqual(WxStatus.WeChatError, e.Status);
            Assert.AreEqual(40125, e.ErrCode);
            Assert.IsNotNull(e.ErrMsg);
            Assert.AreEqual(app, e.AppId);
            StringAssert.Contains("40125", e.Message);
            StringAssert.DoesNotContain("Wr0ngS3cretValue", e.Message, "the secret never appears in a message");
            var again = GetFails(app);
            Assert.AreEqual(40125, again.ErrCode);
            Assert.AreEqual(1, Fake.TokenRequests(app), "the cooldown answers from memory");
        }

        [Test]
        public void Quota_IsWeChatError45009_WithErrMsg()
        {
            string app = Fake.NewApp("quota");
            Fake.Fault(app, "quota");
            var e = GetFails(app);
            Assert.AreEqual(WxStatus.WeChatError, e.Status);
            Assert.AreEqual(45009, e.ErrCode);
            Assert.AreEqual("reach max api daily quota limit", e.ErrMsg);
        }

        [Test]
        public void GetAsync_FaultsTheTaskWithTheSameException()
        {
            string app = Fake.NewApp("async_err");
            Fake.Fault(app, "quota");
            var e = Assert.Throws<WxTokenException>(() => WxAccessToken.GetAsync(app).GetAwaiter().GetResult());
            Assert.AreEqual(45009, e.ErrCode);
        }

        [Test]
        public void GetAsync_OfAnUnregisteredApp_FaultsTheTaskInsteadOfThrowing()
        {
            Task<string> t = null;
            Assert.DoesNotThrow(() => t = WxAccessToken.GetAsync("wx_never_registered_async"));
            var e = Assert.Throws<WxTokenException>(() => t.GetAwaiter().GetResult());
            Assert.AreEqual(WxStatus.UnknownApp, e.Status);
            Assert.DoesNotThrow(() => t = WxAccessToken.GetAsync(null));
            Assert.Throws<ArgumentNullException>(() => t.GetAwaiter().GetResult());
        }

        [Test]
        public void PassiveRefresh_WhenNoReplacementCanBeHad_Throws()
        {
            string app = Fake.NewApp("pr_noreplacement");
            Fake.Revoke(WxAccessToken.Get(app));
            Fake.Fault(app, "quota");
            int calls = 0;
            var e = Assert.Throws<WxTokenException>(() => WxAccessToken.Call(app, t => { calls++; return Fake.ApiCall(t); }));
            Assert.AreEqual(45009, e.ErrCode);
            Assert.AreEqual(1, calls);
        }

        [Test]
        public void CustomErrcode_CarriesWeChatsErrMsgVerbatim()
        {
            string app = Fake.NewApp("errcode");
            Fake.Fault(app, "errcode", 1, ",\"errcode\":40164,\"errmsg\":\"invalid ip 1.2.3.4, not in whitelist\"");
            var e = GetFails(app);
            Assert.AreEqual(40164, e.ErrCode);
            Assert.AreEqual("invalid ip 1.2.3.4, not in whitelist", e.ErrMsg);
        }

        [Test]
        public void Busy_IsTransient_AndSucceedsAfterTheBackoff()
        {
            string app = Fake.NewApp("busy");
            Fake.Fault(app, "busy");
            var e = GetFails(app);
            Assert.AreEqual(WxStatus.WeChatError, e.Status);
            Assert.AreEqual(-1, e.ErrCode);
            Assert.AreEqual("system error", e.ErrMsg);
            System.Threading.Thread.Sleep(300); // retry_max_ms is 200
            string token = WxAccessToken.Get(app);
            Assert.AreEqual(Fake.Current(app), token);
        }

        [TestCase("http_status", "")]
        [TestCase("reset", "")]
        [TestCase("redirect", "")]
        [TestCase("hang", ",\"delay_ms\":3000")]
        public void NetworkFaults_AreNetwork(string kind, string extra)
        {
            string app = Fake.NewApp("net_" + kind);
            Fake.Fault(app, kind, 1, extra);
            var e = GetFails(app);
            Assert.AreEqual(WxStatus.Network, e.Status, e.Message);
            Assert.AreEqual(0, e.ErrCode);
            Assert.IsNull(e.ErrMsg);
        }

        [TestCase("malformed")]
        [TestCase("missing_fields")]
        [TestCase("huge")]
        public void UnintelligibleAnswers_AreProtocol(string kind)
        {
            string app = Fake.NewApp("proto_" + kind);
            Fake.Fault(app, kind);
            var e = GetFails(app);
            Assert.AreEqual(WxStatus.Protocol, e.Status, e.Message);
            Assert.AreEqual(0, e.ErrCode);
        }

        [Test]
        public void ConnectionRefused_IsNetwork()
        {
            string app = FakeWeChat.NewAppId("refused");
            var o = Fake.Options();
            o.ApiBase = "http://127.0.0.1:1";
            WxAccessToken.Register(app, "s", o);
            Assert.AreEqual(WxStatus.Network, GetFails(app).Status);
        }

        [Test]
        public void UnknownApp_IsUnknownApp()
        {
            var e = GetFails("wx_never_registered");
            Assert.AreEqual(WxStatus.UnknownApp, e.Status);
            StringAssert.Contains("wx_never_registered", e.Message);
            Assert.AreEqual(WxStatus.UnknownApp, Assert.Throws<WxTokenException>(() => WxAccessToken.Invalidate("wx_never_registered", "t")).Status);
        }

        [Test]
        public void BadOptions_AreInvalidArgument()
        {
            var o = new WxTokenOptions { ApiBase = "http://example.com" }; // plain http only for loopback
            var e = Assert.Throws<WxTokenException>(() => WxAccessToken.Register(FakeWeChat.NewAppId("badopt"), "s", o));
            Assert.AreEqual(WxStatus.InvalidArgument, e.Status);
            Assert.Throws<ArgumentOutOfRangeException>(() => WxAccessToken.Register("wx1", "s", new WxTokenOptions { TimeoutMs = -1 }));
        }

        [Test]
        public void ManagedArgumentChecks()
        {
            Assert.Throws<ArgumentNullException>(() => WxAccessToken.Get(null));
            Assert.Throws<ArgumentNullException>(() => WxAccessToken.Register("wx1", null));
            Assert.Throws<ArgumentException>(() => WxAccessToken.Register("wx\01", "s"));
            string app = Fake.NewApp("nullstale");
            Assert.Throws<ArgumentNullException>(() => WxAccessToken.Invalidate(app, null));
        }

        [Test]
        public void OptionsJson_IsTheEnginesFormat()
        {
            Assert.IsNull(new WxTokenOptions().ToJson());
            var o = new WxTokenOptions
            {
                ApiBase = "http://127.0.0.1:9/a\"b",
                Endpoint = WxEndpoint.Classic,
                RefreshAheadSecs = 600,
                TimeoutMs = 2000,
                RetryMinMs = 50,
                RetryMaxMs = 1000,
                ErrorCooldownMs = 3000,
            };
            Assert.AreEqual("{\"api_base\":\"http://127.0.0.1:9/a\\\"b\",\"endpoint\":\"classic\",\"refresh_ahead_secs\":600,"
                + "\"timeout_ms\":2000,\"retry_min_ms\":50,\"retry_max_ms\":1000,\"error_cooldown_ms\":3000}", o.ToJson());
        }

        [Test]
        public void ErrCodeOf_ReadsWeChatJson()
        {
            Assert.AreEqual(0, WxAccessToken.ErrCodeOf("{\"ip_list\":[]}"));
            Assert.AreEqual(40001, WxAccessToken.ErrCodeOf("{\"errcode\":40001,\"errmsg\":\"invalid credential\"}"));
            Assert.AreEqual(-1, WxAccessToken.ErrCodeOf("{\"errcode\" : -1}"));
            Assert.AreEqual(0, WxAccessToken.ErrCodeOf(null));
            Assert.AreEqual(0, WxAccessToken.ErrCodeOf("<html>502 Bad Gateway</html>"));
            Assert.AreEqual(0, WxAccessToken.ErrCodeOf("{\"errcode\":\"40001\"}"), "a string is not WeChat's errcode");
        }

        [Test]
        public void ErrCodeOf_ReadsOnlyTheTopLevel()
        {
            // A batch answer whose items carry their own errcodes: the answer itself succeeded.
            Assert.AreEqual(0, WxAccessToken.ErrCodeOf("{\"items\":[{\"errcode\":40001}],\"info\":{\"errcode\":42001}}"));
            Assert.AreEqual(0, WxAccessToken.ErrCodeOf("{\"note\":\"\\\"errcode\\\":40001\"}"), "inside a string");
            Assert.AreEqual(0, WxAccessToken.ErrCodeOf("[{\"errcode\":40001}]"), "not an object");
            Assert.AreEqual(40001, WxAccessToken.ErrCodeOf("{\"items\":[{\"errcode\":0},{\"a\":\"}]\"}],\"errcode\":40001}"));
        }
    }
}
