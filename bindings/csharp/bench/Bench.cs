using System;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using System.Threading;
using WxToken;
using WxToken.Tests;

// The cached-Get benchmark (bench.sh): WxAccessToken.Get against the seed's hand-rolled cache and a plain
// P/Invoke per call, in one process, against the real engine and the real fake WeChat. Prints a markdown table.
public static unsafe class Bench
{
    const int Rounds = 7;
    static string appId;
    static readonly MethodInfo AllocatedBytes = typeof(GC).GetMethod("GetAllocatedBytesForCurrentThread");

    // ---- the seed's approach: a static field plus an expiry check (WebClient only runs when it has expired) ----
    static string seedToken;
    static DateTime seedExpires;
    static string seedUrl;

    [MethodImpl(MethodImplOptions.NoInlining)]
    static string SeedGetAccessToken()
    {
        if (seedToken == null || DateTime.Now >= seedExpires)
        {
            string json = new WebClient().DownloadString(seedUrl);
            seedToken = Regex.Match(json, "\"access_token\":\"([^\"]+)\"").Groups[1].Value;
            int expiresIn = int.Parse(Regex.Match(json, "\"expires_in\":(\\d+)").Groups[1].Value, CultureInfo.InvariantCulture);
            seedExpires = DateTime.Now.AddSeconds(expiresIn - 60);
        }
        return seedToken;
    }

    // ---- the alternative design: one P/Invoke per Get, into a reused pinned buffer, decoding a new string ----
    static byte[] appIdZ;
    static readonly byte[] buffer = new byte[513];

    [MethodImpl(MethodImplOptions.NoInlining)]
    static string PInvokeGet()
    {
        UIntPtr len;
        fixed (byte* p = buffer)
        {
            int st = NativeMethods.wx_token_get(appIdZ, p, (UIntPtr)buffer.Length, out len);
            if (st != 0) throw new InvalidOperationException("status " + st);
        }
        return Utf8.Decode(buffer, (int)len);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static string BindingGet() { return WxAccessToken.Get(appId); }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static string BindingGetAsync() { return WxAccessToken.GetAsync(appId).Result; }

    static long Allocated()
    {
        return AllocatedBytes != null ? (long)AllocatedBytes.Invoke(null, null) : GC.GetTotalMemory(false);
    }

    // Best-of-rounds ns per call (best: least disturbed by the machine), and bytes allocated per call.
    static void Measure(string name, Func<string> f, int iterations)
    {
        for (int i = 0; i < iterations / 10; i++) f();
        double best = double.MaxValue;
        long bytes = 0;
        for (int r = 0; r < Rounds; r++)
        {
            long a0 = Allocated();
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < iterations; i++) f();
            sw.Stop();
            long a1 = Allocated();
            bytes = a1 - a0 - (AllocatedBytes != null ? 0 : 0);
            best = Math.Min(best, sw.Elapsed.TotalMilliseconds * 1e6 / iterations);
        }
        Console.WriteLine("| {0} | {1:F1} | {2:F2} |", name, best, (double)bytes / iterations);
    }

    static void Threads(string name, Func<string> f, int threads, int iterations)
    {
        var start = new ManualResetEventSlim(false);
        var ts = new Thread[threads];
        for (int t = 0; t < threads; t++) { ts[t] = new Thread(() => { start.Wait(); for (int i = 0; i < iterations; i++) f(); }); ts[t].Start(); }
        var sw = Stopwatch.StartNew();
        start.Set();
        foreach (var t in ts) t.Join();
        Console.WriteLine("| {0}, {1} threads | {2:F1} (wall time / calls per thread) | |", name, threads,
            sw.Elapsed.TotalMilliseconds * 1e6 / iterations);
    }

    public static int Main(string[] args)
    {
        int n = args.Length > 0 ? int.Parse(args[0]) : 2000000;
        using (var fake = new FakeWeChat())
        {
            appId = fake.NewApp("bench");
            appIdZ = Utf8.Z(appId, "appId");
            fake.AddApp("wxseed", "seedsecret");
            seedUrl = fake.BaseUrl + "/cgi-bin/token?grant_type=client_credential&appid=wxseed&secret=seedsecret";
            string t = BindingGet();
            if (t != PInvokeGet() || SeedGetAccessToken().Length == 0) throw new InvalidOperationException("setup");

            bool mono = Type.GetType("Mono.Runtime") != null;
            Console.WriteLine("Runtime: {0} {1}; engine {2}; {3} calls per round, best of {4} rounds; allocation from {5}.",
                mono ? "Mono" : "CoreCLR", Environment.Version, WxAccessToken.EngineVersion, n, Rounds,
                AllocatedBytes != null ? "GC.GetAllocatedBytesForCurrentThread" : "GC.GetTotalMemory");
            Console.WriteLine();
            Console.WriteLine("| cached get | ns/call | bytes allocated/call |");
            Console.WriteLine("|---|---:|---:|");
            Measure("`WxAccessToken.Get` (binding)", BindingGet, n);
            Measure("seed: static field + `DateTime.Now` expiry check", SeedGetAccessToken, n);
            Measure("one P/Invoke per call (`wx_token_get`, pinned buffer, new string)", PInvokeGet, n / 4);
            Measure("`WxAccessToken.GetAsync(...).Result` (binding)", BindingGetAsync, n / 4);
            Threads("`WxAccessToken.Get`", BindingGet, Environment.ProcessorCount, n);
            if (!ReferenceEquals(BindingGet(), BindingGet())) throw new InvalidOperationException("cached Get must return one instance");
        }
        return 0;
    }
}
