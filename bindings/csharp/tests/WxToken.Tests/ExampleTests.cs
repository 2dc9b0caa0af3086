using System.Collections.Generic;
using System.IO;
using NUnit.Framework;

namespace WxToken.Tests
{
    // The README's example program (the seed's GetAccessToken on the binding), run as a user would run it.
    [TestFixture]
    public class ExampleTests : FakeFixture
    {
        [Test]
        public void SeedExample_GetsATokenAndCallsTheApi()
        {
            string appId = Fake.AddApp(FakeWeChat.NewAppId("example"), "example-secret");
            string exe = Path.Combine(System.Environment.GetEnvironmentVariable("WX_PROBE_DIR"), "GetAccessToken.exe");
            var env = new Dictionary<string, string> { { "WX_APPID", appId }, { "WX_SECRET", "example-secret" }, { "WX_API_BASE", Fake.BaseUrl } };
            int exit;
            string output = ChildProcess.Run(exe, null, System.Environment.GetEnvironmentVariable("WX_TOKEN_LIB"), env, out exit);
            Assert.AreEqual(0, exit, output);
            StringAssert.Contains("(136 chars)", output);
            StringAssert.Contains("same instance on the next call: True", output);
            StringAssert.Contains("ip_list", output);
            Assert.AreEqual(1, Fake.TokenRequests(appId));
        }

        [Test]
        public void SeedExample_WrongSecret_ReportsErrcode()
        {
            string appId = Fake.AddApp(FakeWeChat.NewAppId("example_bad"), "right");
            string exe = Path.Combine(System.Environment.GetEnvironmentVariable("WX_PROBE_DIR"), "GetAccessToken.exe");
            var env = new Dictionary<string, string> { { "WX_APPID", appId }, { "WX_SECRET", "wrong" }, { "WX_API_BASE", Fake.BaseUrl } };
            int exit;
            string output = ChildProcess.Run(exe, null, System.Environment.GetEnvironmentVariable("WX_TOKEN_LIB"), env, out exit);
            Assert.AreEqual(1, exit, output);
            StringAssert.Contains("WeChatError errcode=40125", output);
        }
    

        [Test]
        public void SeedExample_WithoutCredentials_RefusesToRun()
        {
            string appId = Fake.AddApp(FakeWeChat.NewAppId("example_nocred"), "example-secret");
            string exe = Path.Combine(System.Environment.GetEnvironmentVariable("WX_PROBE_DIR"), "GetAccessToken.exe");
            // WX_APPSECRET (the old name) is not read: without WX_SECRET nothing is registered or fetched.
            var env = new Dictionary<string, string> { { "WX_APPID", appId }, { "WX_APPSECRET", "example-secret" }, { "WX_API_BASE", Fake.BaseUrl } };
            int exit;
            string output = ChildProcess.Run(exe, null, System.Environment.GetEnvironmentVariable("WX_TOKEN_LIB"), env, out exit);
            Assert.AreEqual(2, exit, output);
            StringAssert.Contains("set WX_APPID and WX_SECRET", output);
            Assert.AreEqual(0, Fake.TokenRequests(appId));
        }
    }
}
