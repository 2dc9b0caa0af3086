using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace WxToken
{
    /// <summary>
    /// WeChat access_tokens for this process: register each app once at startup, then call <see cref="Get"/> (or
    /// <see cref="GetAsync"/>) wherever a token is needed. The native engine caches the token, fetches it once
    /// however many threads ask, refreshes it in the background before it expires, and backs off on errors.
    /// All members are thread-safe. The state is process-wide, like the engine's.
    /// </summary>
    public static partial class WxAccessToken
    {
        static readonly object SlotsGate = new object();
        // Copy-on-write: lookups read an immutable snapshot without locking; apps are registered a handful of times.
        static Dictionary<string, AppSlot> slots = new Dictionary<string, AppSlot>(StringComparer.Ordinal);

        /// <summary>
        /// Registers an app, or updates its secret and options. Nothing is fetched yet: the first <see cref="Get"/> does that.
        /// The cached token survives re-registration unless the secret, <see cref="WxTokenOptions.ApiBase"/> or endpoint changes.
        /// The secret stays in native memory only, is never logged and never appears in an exception message.
        /// </summary>
        /// <param name="appId">The AppID, e.g. <c>wx1234567890abcdef</c>.</param>
        /// <param name="appSecret">The AppSecret.</param>
        /// <param name="options">Engine options, or <c>null</c> for the defaults (stable endpoint on api.weixin.qq.com).</param>
        /// <exception cref="ArgumentNullException"><paramref name="appId"/> or <paramref name="appSecret"/> is null.</exception>
        /// <exception cref="WxTokenException">The engine rejected the arguments or options (<see cref="WxStatus.InvalidArgument"/>), or the native library is missing.</exception>
        public static void Register(string appId, string appSecret, WxTokenOptions options = null)
        {
            byte[] appIdZ = Utf8.Z(appId, nameof(appId));
            byte[] secretZ = Utf8.Z(appSecret, nameof(appSecret));
            string json = options == null ? null : options.ToJson();
            byte[] optionsZ = json == null ? null : Utf8.Z(json, nameof(options));
            NativeLibraryLoader.Ensure();
            NativeCalls.Register(appId, appIdZ, secretZ, optionsZ);
            Slot(appId);
        }

        /// <summary>
        /// A valid access_token for <paramref name="appId"/>. A cached token costs tens of nanoseconds and returns the same
        /// string instance until the token changes; otherwise the call blocks on one fetch shared by all threads.
        /// </summary>
        /// <param name="appId">A registered AppID.</param>
        /// <returns>The token, to put in WeChat API calls as <c>access_token</c>.</returns>
        /// <exception cref="WxTokenException">No token could be had: see <see cref="WxTokenException.Status"/> and <see cref="WxTokenException.ErrCode"/>.</exception>
        public static string Get(string appId)
        {
            return Slot(appId).Get();
        }

        /// <summary>
        /// Like <see cref="Get"/>, without blocking the calling thread when a fetch is needed: concurrent callers for one
        /// app share a single fetch running on one thread-pool thread. A cached token completes synchronously.
        /// </summary>
        /// <param name="appId">A registered AppID.</param>
        /// <param name="cancellationToken">Stops this caller's wait (the shared fetch itself carries on for the others).</param>
        /// <returns>The token.</returns>
        /// <exception cref="WxTokenException">As for <see cref="Get"/> (through the task).</exception>
        public static Task<string> GetAsync(string appId, CancellationToken cancellationToken = default(CancellationToken))
        {
            AppSlot slot = Slot(appId);
            string cached = slot.TryCached();
            if (cached != null) return Task.FromResult(cached);
            Task<string> fetch = slot.FetchShared();
            if (!cancellationToken.CanBeCanceled || fetch.IsCompleted) return fetch;
            return WithCancellation(fetch, cancellationToken);
        }

        /// <summary>
        /// The passive refresh: tell the engine that WeChat rejected <paramref name="staleToken"/> (errcode 40001, 42001 or
        /// 40014). If it is still the cached token, a replacement is fetched before this returns (one fetch however many
        /// callers report it); if the cache has moved on already, nothing happens. <see cref="Call{T}"/> does this for you.
        /// </summary>
        /// <param name="appId">A registered AppID.</param>
        /// <param name="staleToken">The token the failed WeChat call used.</param>
        /// <exception cref="WxTokenException">The replacement could not be fetched, or (stable endpoint) WeChat kept handing back the
        /// rejected token and a forced refresh would exceed WeChat's limits (<see cref="WxStatus.RateLimited"/>).</exception>
        public static void Invalidate(string appId, string staleToken)
        {
            AppSlot slot = Slot(appId);
            NativeCalls.Invalidate(appId, slot.AppIdZ, Utf8.Z(staleToken, nameof(staleToken)));
        }

        /// <summary>
        /// Forces a new token now (WeChat's <c>force_refresh</c> on the stable endpoint), limited by the engine to one per
        /// 30 s and 20 a day per app. Prefer <see cref="Invalidate"/>, which only refreshes a token WeChat actually rejected.
        /// </summary>
        /// <param name="appId">A registered AppID.</param>
        /// <exception cref="WxTokenException"><see cref="WxStatus.RateLimited"/> beyond the limits, or the fetch failed.</exception>
        public static void ForceRefresh(string appId)
        {
            AppSlot slot = Slot(appId);
            NativeCalls.Invalidate(appId, slot.AppIdZ, null);
        }

        /// <summary>The native engine's version, e.g. <c>0.1.0</c>.</summary>
        /// <exception cref="WxTokenLibraryNotFoundException">The native library is missing.</exception>
        public static string EngineVersion
        {
            get { NativeLibraryLoader.Ensure(); return NativeCalls.Version(); }
        }

        /// <summary>
        /// Stops the engine's background refresh thread and waits for refreshes in progress. Optional (for example in an
        /// application's shutdown hook); cached tokens stay usable and any later call resumes background work.
        /// </summary>
        public static void Shutdown()
        {
            NativeLibraryLoader.Ensure();
            NativeCalls.Shutdown();
        }

        internal static string StatusName(int status)
        {
            NativeLibraryLoader.Ensure();
            return NativeCalls.StatusName(status);
        }

        static AppSlot Slot(string appId)
        {
            if (appId == null) throw new ArgumentNullException(nameof(appId));
            AppSlot slot;
            if (Volatile.Read(ref slots).TryGetValue(appId, out slot)) return slot;
            return AddSlot(appId);
        }

        // Also serves apps registered by other code in the process (another binding, C): the engine knows them.
        static AppSlot AddSlot(string appId)
        {
            byte[] appIdZ = Utf8.Z(appId, nameof(appId));
            NativeLibraryLoader.Ensure();
            IntPtr counter = NativeCalls.GenerationCounter(appId, appIdZ); // UnknownApp if never registered
            lock (SlotsGate)
            {
                AppSlot slot;
                if (slots.TryGetValue(appId, out slot)) return slot;
                slot = new AppSlot(appId, appIdZ, counter);
                var copy = new Dictionary<string, AppSlot>(slots, StringComparer.Ordinal);
                copy[appId] = slot;
                Volatile.Write(ref slots, copy);
                return slot;
            }
        }

        static async Task<string> WithCancellation(Task<string> task, CancellationToken ct)
        {
            var cancelled = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            using (ct.Register(s => ((TaskCompletionSource<bool>)s).TrySetResult(true), cancelled))
            {
                if (await Task.WhenAny(task, cancelled.Task).ConfigureAwait(false) != task)
                    throw new OperationCanceledException(ct);
            }
            return await task.ConfigureAwait(false);
        }
    }
}
