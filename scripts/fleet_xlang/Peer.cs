// The C# peer of scripts/fleet_xlang.py (WxToken.dll on Mono): same protocol as peer.c.
using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using WxToken;

static class Peer
{
    static string Env(string name) { return Environment.GetEnvironmentVariable(name) ?? ""; }

    static string Fnv1a(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (byte b in System.Text.Encoding.UTF8.GetBytes(s)) h = (h ^ b) * 1099511628211UL;
        return h.ToString("x16");
    }

    static int Main()
    {
        string mp = Env("WXF_MP"), wecom = Env("WXF_WECOM");
        var o = new WxTokenOptions();
        var w = new WxTokenOptions { Platform = "wecom", Corpid = Env("WXF_CORPID"), Agentid = int.Parse(Env("WXF_AGENTID")) };
        bool central = Env("WXF_CENTRAL") != "";
        if (central)
        {
            o.Central = w.Central = Env("WXF_CENTRAL");
            o.CentralKey = w.CentralKey = Env("WXF_CENTRAL_KEY");
        }
        else
        {
            o.ApiBase = w.ApiBase = Env("WXF_API_BASE");
            o.Endpoint = WxEndpoint.Classic;
            o.Store = w.Store = Env("WXF_STORE");
            o.StorePrefix = w.StorePrefix = Env("WXF_STORE_PREFIX");
        }
        WxAccessToken.Register(mp, central ? null : Env("WXF_MP_SECRET"), o);
        WxAccessToken.Register(wecom, central ? null : Env("WXF_WECOM_SECRET"), w);
        Console.WriteLine("ready");
        Console.Out.Flush();
        while (!File.Exists(Env("WXF_BARRIER"))) Thread.Sleep(2);

        var seen = new[] { new HashSet<string>(), new HashSet<string>(), new HashSet<string>() };
        var errors = new List<string>();
        var threads = new List<Thread>();
        for (int t = 0; t < 4; t++)
        {
            var th = new Thread(() =>
            {
                try
                {
                    for (int i = 0; i < 5; i++)
                    {
                        string[] fps = { Fnv1a(WxAccessToken.Get(mp)), Fnv1a(WxTicket.Get(mp, WxTicketKind.Jsapi)), Fnv1a(WxAccessToken.Get(wecom)) };
                        lock (seen) for (int k = 0; k < 3; k++) seen[k].Add(fps[k]);
                    }
                }
                catch (Exception e)
                {
                    lock (seen) errors.Add(e.Message);
                }
            });
            th.Start();
            threads.Add(th);
        }
        foreach (var th in threads) th.Join();
        if (errors.Count > 0 || seen[0].Count != 1 || seen[1].Count != 1 || seen[2].Count != 1)
        {
            Console.Error.WriteLine("csharp: the threads disagree or failed: " + string.Join("; ", errors));
            return 1;
        }
        foreach (var s in seen[0]) Console.WriteLine("mp_token " + s);
        foreach (var s in seen[1]) Console.WriteLine("jsapi " + s);
        foreach (var s in seen[2]) Console.WriteLine("wecom_token " + s);
        WxAccessToken.Shutdown();
        return 0;
    }
}
