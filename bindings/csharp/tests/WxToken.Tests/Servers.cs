using System;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace WxToken.Tests
{
    // Real servers the store and central tests run against: redis-server and wx-tokend, as child processes on
    // 127.0.0.1, killed on Dispose.
    public static class Ports
    {
        public static int Free()
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            int port = ((IPEndPoint)l.LocalEndpoint).Port;
            l.Stop();
            return port;
        }

        public static void WaitListening(int port, Process proc, string what)
        {
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (true)
            {
                try
                {
                    using (var c = new TcpClient()) { c.Connect(IPAddress.Loopback, port); return; }
                }
                catch (SocketException)
                {
                    if (proc.HasExited) throw new InvalidOperationException(what + " exited with " + proc.ExitCode);
                    if (DateTime.UtcNow > deadline) throw new TimeoutException(what + " did not listen on " + port);
                    Thread.Sleep(50);
                }
            }
        }

        public static void Stop(Process p)
        {
            if (p == null) return;
            try { if (!p.HasExited) { p.Kill(); p.WaitForExit(5000); } } catch { }
            p.Dispose();
        }
    }

    // redis-server with no persistence on a free port; Stop/Start keep the port, for outage tests.
    public sealed class RedisServer : IDisposable
    {
        public readonly int Port = Ports.Free();
        Process proc;

        public RedisServer() { Start(); }

        public string Url { get { return "redis://127.0.0.1:" + Port + "/0"; } }

        public void Start()
        {
            var psi = new ProcessStartInfo("redis-server", "--port " + Port + " --bind 127.0.0.1 --save \"\" --appendonly no")
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
            };
            proc = Process.Start(psi);
            proc.StandardOutput.ReadToEndAsync(); // drain, never block it
            Ports.WaitListening(Port, proc, "redis-server");
        }

        public void Stop() { Ports.Stop(proc); proc = null; }

        public void Dispose() { Stop(); }
    }

    // wx-tokend (WX_TOKEND_BIN) serving one app of the fake WeChat to one client key.
    public sealed class Tokend : IDisposable
    {
        public const string ClientKey = "csharp-client-key-0123456789";
        public readonly string BaseUrl;
        readonly Process proc;
        readonly string dir;

        public Tokend(string appId, string secret, string apiBase)
        {
            string bin = Environment.GetEnvironmentVariable("WX_TOKEND_BIN");
            if (string.IsNullOrEmpty(bin) || !File.Exists(bin))
                throw new InvalidOperationException("WX_TOKEND_BIN must name the wx-tokend binary (test.sh sets it); got '" + bin + "'");
            int port = Ports.Free();
            dir = Path.Combine(Path.GetTempPath(), "wx-cs-tokend-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(dir);
            string config = Path.Combine(dir, "tokend.toml");
            File.WriteAllText(config,
                "listen = \"127.0.0.1:" + port + "\"\n\n" +
                "[[app]]\nappid = \"" + appId + "\"\nsecret_env = \"WX_CS_TOKEND_SECRET\"\n" +
                "options = { api_base = \"" + apiBase + "\", endpoint = \"classic\" }\n\n" +
                "[[client]]\nname = \"csharp\"\nkey_env = \"WX_CS_TOKEND_KEY\"\napps = [\"" + appId + "\"]\n");
            var psi = new ProcessStartInfo(bin, "--config " + config)
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            psi.EnvironmentVariables["WX_CS_TOKEND_SECRET"] = secret;
            psi.EnvironmentVariables["WX_CS_TOKEND_KEY"] = ClientKey;
            proc = Process.Start(psi);
            proc.StandardOutput.ReadToEndAsync();
            proc.StandardError.ReadToEndAsync();
            Ports.WaitListening(port, proc, "wx-tokend");
            BaseUrl = "http://127.0.0.1:" + port;
        }

        public void Dispose()
        {
            Ports.Stop(proc);
            try { Directory.Delete(dir, true); } catch { }
        }
    }
}
