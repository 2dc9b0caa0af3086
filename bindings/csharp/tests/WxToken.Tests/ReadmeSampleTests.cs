using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using NUnit.Framework;

namespace WxToken.Tests
{
    // Every complete C# program in README.md and bindings/csharp/README.md (scripts/readme_samples.py extracts them,
    // test.sh builds them as probe/readme_*.exe), run as a user would run it: against the fake WeChat, with
    // WX_APPID/WX_SECRET. The one that takes its mode from the environment runs in all three modes.
    [TestFixture]
    public class ReadmeSampleTests : FakeFixture
    {
        static IEnumerable<string> Samples()
        {
            string dir = Environment.GetEnvironmentVariable("WX_PROBE_DIR");
            return Directory.GetFiles(dir, "readme_*.exe").OrderBy(f => f, StringComparer.Ordinal);
        }

        string Run(string exe, Dictionary<string, string> env)
        {
            int exit;
            string output = ChildProcess.Run(exe, null, Environment.GetEnvironmentVariable("WX_TOKEN_LIB"), env, out exit);
            Assert.AreEqual(0, exit, Path.GetFileName(exe) + ":\n" + output);
            return output;
        }

        [Test]
        public void EveryCompleteSample_RunsAgainstTheFake()
        {
            var samples = Samples().ToList();
            Assert.That(samples.Count, Is.GreaterThanOrEqualTo(4), "the top README's and the C# README's programs");
            foreach (string exe in samples)
            {
                string source = File.ReadAllText(Path.ChangeExtension(exe, ".cs"));
                string app = Fake.AddApp(FakeWeChat.NewAppId("readme"), "readme-secret");
                var env = new Dictionary<string, string> { { "WX_APPID", app }, { "WX_SECRET", "readme-secret" }, { "WX_API_BASE", Fake.BaseUrl } };
                string output = Run(exe, env);
                if (source.Contains("get_api_domain_ip")) StringAssert.Contains("ip_list", output, exe);
                if (source.Contains("Events +=")) StringAssert.Contains("token_fetched", output, exe);
                Assert.AreEqual(1, Fake.TokenRequests(app), exe);
                if (source.Contains("WX_CENTRAL")) ModesByConfiguration(exe);
            }
        }

        void ModesByConfiguration(string exe)
        {
            using (var redis = new RedisServer())
            {
                string app = Fake.AddApp(FakeWeChat.NewAppId("readme_redis"), "readme-secret");
                var env = new Dictionary<string, string> { { "WX_APPID", app }, { "WX_SECRET", "readme-secret" }, { "WX_API_BASE", Fake.BaseUrl }, { "WX_STORE", redis.Url } };
                StringAssert.Contains("fetched here: 1, taken from the store: 0", Run(exe, env));
                StringAssert.Contains("fetched here: 0, taken from the store: 1", Run(exe, env), "the second process shares the first's token");
                Assert.AreEqual(1, Fake.TokenRequests(app));
            }
            string central = Fake.AddApp(FakeWeChat.NewAppId("readme_central"), "central-secret");
            using (var tokend = new Tokend(central, "central-secret", Fake.BaseUrl))
            {
                var env = new Dictionary<string, string> { { "WX_APPID", central }, { "WX_CENTRAL", tokend.BaseUrl }, { "WX_CENTRAL_KEY", Tokend.ClientKey } };
                StringAssert.Contains("fetched here: 1", Run(exe, env), "from the central server, with no secret here");
                Assert.AreEqual(1, Fake.TokenRequests(central));
            }
        }
    }
}
