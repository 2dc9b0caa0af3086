using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Reflection;
using NUnit.Framework;

namespace WxToken.Tests
{
    // The production modes, reached by configuration alone: a Redis store shared with another process, and client
    // mode against a real wx-tokend with no secret in this process. Plus the guard that keeps WxTokenOptions complete.
    [TestFixture]
    public class ModeTests : FakeFixture
    {
        [Test]
        public void RedisStore_OneUpstreamFetchAcrossThisProcessAndARustPeer()
        {
            using (var redis = new RedisServer())
            {
                string app = Fake.AddApp(FakeWeChat.NewAppId("redis"), "redis-secret");
                WxTokenOptions o = Fake.Options();
                o.Store = redis.Url;
                o.StorePrefix = "cs_test:";
                WxAccessToken.Register(app, "redis-secret", o);
                string token = WxAccessToken.Get(app);

                string peerOptions = "{\"api_base\":\"" + Fake.BaseUrl + "\",\"endpoint\":\"classic\",\"store\":\"" + redis.Url + "\",\"store_prefix\":\"cs_test:\"}";
                string output = StorePeer("--appid " + app + " --secret redis-secret --threads 4 --options " + Quote(peerOptions));
                var lines = output.Split(new[] { '\n' }, StringSplitOptions.RemoveEmptyEntries);
                Assert.AreEqual(4, lines.Length, output);
                foreach (var l in lines) Assert.AreEqual(Fingerprint(token), l.Trim(), "the peer got this process's token from Redis");
                Assert.AreEqual(1, Fake.TokenRequests(app), "one upstream fetch for the fleet");
                Assert.AreEqual(0, WxAccessToken.GetStats(app).TokensFromStore, "this process fetched it itself");
            }
        }

        [Test]
        public void ClientMode_NoSecret_TokensComeFromWxTokend()
        {
            string app = Fake.AddApp(FakeWeChat.NewAppId("central"), "central-secret");
            using (var tokend = new Tokend(app, "central-secret", Fake.BaseUrl))
            {
                WxAccessToken.Register(app, null, new WxTokenOptions { Central = tokend.BaseUrl, CentralKey = Tokend.ClientKey });
                string t1 = WxAccessToken.Get(app);
                Assert.AreEqual(Fake.Current(app), t1);
                StringAssert.Contains("ip_list", Fake.ApiCall(t1));
                // The passive refresh is forwarded to the server: one more upstream fetch, a token WeChat accepts.
                Fake.Revoke(t1);
                string json = WxAccessToken.Call(app, Fake.ApiCall);
                StringAssert.Contains("ip_list", json);
                Assert.AreNotEqual(t1, WxAccessToken.Get(app));
                Assert.AreEqual(2, Fake.TokenRequests(app));
                Assert.AreEqual(2, WxAccessToken.GetStats(app).Fetches, "this process fetched from the central server");
            }
        }

        [Test]
        public void ClientMode_NullSecretWithoutCentral_IsRefused()
        {
            var e = Assert.Throws<ArgumentNullException>(() => WxAccessToken.Register(FakeWeChat.NewAppId("nosecret"), null, Fake.Options()));
            Assert.AreEqual("appSecret", e.ParamName);
        }

        // The engine's schema (wx_token_options_schema, read through the library) names every options_json key; each
        // must have a WxTokenOptions property named after it, of the schema's type, that serializes to that key, and
        // the schema's default set through the property must be accepted by the engine.
        [Test]
        public void EveryEngineOption_HasATypedProperty()
        {
            object parsed;
            Assert.IsTrue(Json.TryParse(WxAccessToken.OptionsSchema, out parsed), WxAccessToken.OptionsSchema);
            var schema = (Dictionary<string, object>)parsed;
            Assert.That(schema.Count, Is.GreaterThanOrEqualTo(14));
            var missing = new List<string>();
            foreach (var kv in schema)
            {
                string property = Pascal(kv.Key);
                var entry = (Dictionary<string, object>)kv.Value;
                PropertyInfo p = typeof(WxTokenOptions).GetProperty(property);
                if (p == null) { missing.Add(kv.Key + " (WxTokenOptions." + property + ")"); continue; }
                string type = (string)entry["type"];
                Type t = p.PropertyType;
                if (type == "integer") Assert.AreEqual(typeof(int?), t, property);
                else if (type == "string") Assert.IsTrue(t == typeof(string) || (Nullable.GetUnderlyingType(t) ?? typeof(object)).IsEnum, property + " is " + t);
                else Assert.Fail(kv.Key + ": unknown schema type " + type);
                Assert.IsFalse(string.IsNullOrEmpty((string)entry["meaning"]), kv.Key);

                object def = entry["default"];
                var o = new WxTokenOptions();
                p.SetValue(o, def == null ? Example(kv.Key, t) : Value(def, t));
                if (kv.Key == "store_prefix") o.Store = "memory";
                if (kv.Key == "central") o.CentralKey = "k";
                if (kv.Key == "central_key") o.Central = "https://tokens.example";
                StringAssert.Contains("\"" + kv.Key + "\":", o.ToJson(), property + " serializes to its key");
                if (def != null)
                    Assert.DoesNotThrow(() => WxAccessToken.Register(FakeWeChat.NewAppId("schema"), "s", o), kv.Key + "'s default through " + property);
            }
            Assert.IsEmpty(missing, "engine options without a WxTokenOptions property");
            // And the other way: a property whose key the engine no longer accepts would make every Register that sets
            // it fail at run time (the engine refuses unknown keys), so it fails here first.
            var stale = typeof(WxTokenOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance)
                .Select(p => p.Name).Where(name => !schema.Keys.Any(k => Pascal(k) == name)).ToList();
            Assert.IsEmpty(stale, "WxTokenOptions properties that are not engine options");
        }

        static string Pascal(string key)
        {
            return string.Concat(key.Split('_').Select(w => char.ToUpperInvariant(w[0]) + w.Substring(1)));
        }

        static object Value(object def, Type t)
        {
            Type u = Nullable.GetUnderlyingType(t) ?? t;
            if (u.IsEnum) return Enum.Parse(u, (string)def, true);
            if (u == typeof(int)) return Convert.ToInt32(def, CultureInfo.InvariantCulture);
            return def;
        }

        static object Example(string key, Type t)
        {
            if (t == typeof(int?)) return 1000;
            return key == "central" ? "https://tokens.example" : "k";
        }

        internal static string StorePeer(string args)
        {
            string bin = Environment.GetEnvironmentVariable("WX_STORE_PEER_BIN");
            if (string.IsNullOrEmpty(bin) || !File.Exists(bin))
                throw new InvalidOperationException("WX_STORE_PEER_BIN must name target/debug/examples/store_peer; got '" + bin + "'");
            var psi = new ProcessStartInfo(bin, args) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            using (var p = Process.Start(psi))
            {
                var err = p.StandardError.ReadToEndAsync();
                string output = p.StandardOutput.ReadToEnd();
                Assert.IsTrue(p.WaitForExit(30000), "store_peer hung");
                Assert.AreEqual(0, p.ExitCode, output + err.Result);
                return output;
            }
        }

        // ProcessStartInfo splits arguments by the Windows rules on every platform: double quotes, backslash escapes.
        internal static string Quote(string s) { return "\"" + s.Replace("\"", "\\\"") + "\""; }

        // store_peer's fingerprint of a token: FNV-1a 64 of its bytes.
        internal static string Fingerprint(string token)
        {
            ulong h = 0xcbf29ce484222325;
            foreach (byte b in System.Text.Encoding.UTF8.GetBytes(token)) h = unchecked((h ^ b) * 0x100000001b3);
            return "fnv1a64:" + h.ToString("x16", CultureInfo.InvariantCulture);
        }
    }
}
