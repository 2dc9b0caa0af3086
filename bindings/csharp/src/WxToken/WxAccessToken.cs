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
        /// <param name="appSecret">The AppSecret; <c>null</c> in client mode (<see cref="WxTokenOptions.Central"/> set), where the central server holds it.</param>
        /// <param name="options">Engine options, or <c>null</c> for the defaults (stable endpoint on api.weixin.qq.com, memory store).</param>
        /// <exception cref="ArgumentNullException"><paramref name="appId"/> is null, or <paramref name="appSecret"/> is null without <see cref="WxTokenOptions.Central"/>.</exception>
        /// <exception cref="WxTokenException">The engine rejected the arguments or options (<see cref="WxStatus.InvalidArgument"/>, with the key and the reason), or the native library is missing.</exception>
        public static void Register(string appId, string appSecret, WxTokenOptions options = null)
        {
            byte[] appIdZ = Utf8.Z(appId, nameof(appId));
            if (appSecret == null && (options == null || options.Central == null))
                throw new ArgumentNullException(nameof(appSecret), "an AppSecret is required unless options.Central names a central server (client mode)");
            byte[] secretZ = appSecret == null ? null : Utf8.Z(appSecret, nameof(appSecret));
            string json = options == null ? null : options.ToJson();
            byte[] optionsZ = json == null ? null : Utf8.Z(json, nameof(options));
            try
            {
                NativeLibraryLoader.Ensure();
                NativeCalls.Register(appId, appIdZ, secretZ, optionsZ);
            }
            finally
            {
                // Best effort against secrets lingering in the managed heap (the strings themselves cannot be wiped).
                if (secretZ != null) Array.Clear(secretZ, 0, secretZ.Length);
                if (optionsZ != null) Array.Clear(optionsZ, 0, optionsZ.Length);
            }
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
        /// Every failure, an unregistered app or a null <paramref name="appId"/> included, comes through the task.
        /// </summary>
        /// <param name="appId">A registered AppID.</param>
        /// <param name="cancellationToken">Stops this caller's wait (the shared fetch itself carries on for the others).</param>
        /// <returns>The token.</returns>
        /// <exception cref="WxTokenException">As for <see cref="Get"/> (through the task).</exception>
        public static Task<string> GetAsync(string appId, CancellationToken cancellationToken = default(CancellationToken))
        {
            Task<string> fetch;
            try
            {
                AppSlot slot = Slot(appId);
                string cached = slot.TryCached();
                if (cached != null) return Task.FromResult(cached);
                fetch = slot.FetchShared();
            }
            catch (Exception e)
            {
                var failed = new TaskCompletionSource<string>();
                failed.SetException(e);
                return failed.Task;
            }
            if (!cancellationToken.CanBeCanceled || fetch.IsCompleted) return fetch;
            return WithCancellation(fetch, cancellationToken);
        }

        /// <summary>
        /// The passive refresh: tell the engine that WeChat rejected <paramref name="staleToken"/> (errcode 40001, 42001 or
        /// 40014). If it is still the cached token, a replacement is fetched before this returns (one fetch however many
        /// callers report it); if the cache has moved on already, nothing happens. <see cref="Call{T}(string, Func{string, T}, Func{T, int})"/> does this for you.
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

        /// <summary>
        /// What an operator should know, as it happens: a token fetched, a refresh failing while the current token still
        /// serves (with WeChat's errcode, e.g. 40164), a token expired with no replacement, a shared store down and back.
        /// Process-wide, for every app. Handlers run synchronously on the engine's thread that saw the event (often the
        /// background refresher, possibly several at once): keep them short, log and return. A handler may call back
        /// into the library. An exception a handler throws is caught (and written to <see cref="System.Diagnostics.Trace"/>);
        /// it never reaches the engine, and the other handlers still run. Events never contain a secret or a whole token.
        /// Subscribing loads the native library (and so may throw <see cref="WxTokenLibraryNotFoundException"/>).
        /// Only one event sink exists per process: do not also call <c>wx_set_event_callback</c> from other code.
        /// </summary>
        public static event EventHandler<WxTokenEvent> Events
        {
            add { WxEvents.Add(value); }
            remove { WxEvents.Remove(value); }
        }

        /// <summary>The lowest level <see cref="Events"/> delivers; default <see cref="WxEventLevel.Information"/>.</summary>
        public static WxEventLevel EventLevel
        {
            get { return WxEvents.MinLevel; }
            set { WxEvents.MinLevel = value; }
        }

        /// <summary>The app's counters since it was registered in this process: fetches, their duration, failures by errcode. No I/O.</summary>
        /// <param name="appId">A registered AppID.</param>
        /// <returns>A snapshot.</returns>
        /// <exception cref="WxTokenException"><see cref="WxStatus.UnknownApp"/> if the app was never registered.</exception>
        public static WxTokenStats GetStats(string appId)
        {
            AppSlot slot = Slot(appId);
            return WxTokenStats.Parse(NativeCalls.StatsJson(appId, slot.AppIdZ), StatusFromName);
        }

        // The engine's status names ("WECHAT_ERROR") as WxStatus, asked of the engine itself so they cannot drift.
        static WxStatus StatusFromName(string name)
        {
            foreach (WxStatus s in Enum.GetValues(typeof(WxStatus)))
                if (s >= WxStatus.Ok && NativeCalls.StatusName((int)s) == name) return s;
            return WxStatus.Protocol;
        }

        // The engine's options schema (wx_token_options_schema): every options_json key with type, default and meaning.
        internal static string OptionsSchema
        {
            get { NativeLibraryLoader.Ensure(); return NativeCalls.OptionsSchema(); }
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
