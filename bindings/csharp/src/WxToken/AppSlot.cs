using System;
using System.Threading;
using System.Threading.Tasks;

namespace WxToken
{
    // One app as seen from .NET: its appid as cached UTF-8, and a managed copy of the engine's current token.
    //
    // Why a managed cache at all: the engine's own cache is already lock-free, but every P/Invoke has to copy the
    // token out and decode it into a new string. Holding (token, generation, deadline) here lets a cached Get
    // return the *same* string instance with no native call and no allocation. It stays correct because the engine
    // bumps the generation counter (a 64-bit word at a fixed address) whenever the token it hands out changes
    // (refresh, invalidation, new secret), and a deadline covers expiry when a refresh keeps failing.
    internal sealed unsafe class AppSlot
    {
        // A token is not cached for its last moments: a caller should get a token that still has a useful life, and
        // Environment.TickCount (chosen because it is several times cheaper than Stopwatch) may tick coarsely.
        const long MarginMs = 250;
        const long MaxCacheMs = 24L * 3600 * 1000;

        sealed class Entry
        {
            internal readonly string Token;
            internal readonly long Generation;
            internal readonly int Deadline; // Environment.TickCount, compared with wrap-around arithmetic
            internal Entry(string token, long generation, int deadline) { Token = token; Generation = generation; Deadline = deadline; }
        }

        internal readonly string AppId;
        internal readonly byte[] AppIdZ;
        readonly long* counter;
        Entry entry;
        readonly object fetchGate = new object();
        Task<string> pendingFetch;

        internal AppSlot(string appId, byte[] appIdZ, IntPtr counterAddress)
        {
            AppId = appId;
            AppIdZ = appIdZ;
            counter = (long*)counterAddress;
        }

        // The fast path: null when the managed copy cannot be trusted.
        internal string TryCached()
        {
            Entry e = Volatile.Read(ref entry);
            if (e != null && Volatile.Read(ref *counter) == e.Generation && unchecked(e.Deadline - Environment.TickCount) > 0)
                return e.Token;
            return null;
        }

        internal string Get()
        {
            return TryCached() ?? Fetch();
        }

        // Asks the engine (which fetches from WeChat only when its own cache is empty), and caches the answer.
        internal string Fetch()
        {
            int start = Environment.TickCount;
            ulong generation, expiresInMs;
            string token = NativeCalls.GetEx(AppId, AppIdZ, out generation, out expiresInMs);
            long ms = (long)Math.Min(expiresInMs, (ulong)MaxCacheMs) - MarginMs;
            if (ms > 0)
            {
                // Counted from before the call, so the managed deadline is never later than the engine's expiry.
                Entry old = Volatile.Read(ref entry);
                if (old != null && old.Token == token) token = old.Token; // keep handing out one instance
                int deadline = unchecked(start + (int)ms);
                Volatile.Write(ref entry, new Entry(token, (long)generation, deadline));
            }
            return token;
        }

        // Concurrent async callers share one blocking fetch on one pool thread, instead of each parking a thread
        // on the engine's single-flight wait.
        internal Task<string> FetchShared()
        {
            lock (fetchGate)
            {
                if (pendingFetch != null) return pendingFetch;
                Task<string> t = Task.Factory.StartNew(FetchAndClear, CancellationToken.None,
                    TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);
                pendingFetch = t;
                return t;
            }
        }

        string FetchAndClear()
        {
            try { return Fetch(); }
            finally { lock (fetchGate) pendingFetch = null; }
        }
    }
}
