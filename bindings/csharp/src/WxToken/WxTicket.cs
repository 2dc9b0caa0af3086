using System;
using System.Threading;
using System.Threading.Tasks;

namespace WxToken
{
    /// <summary>The JS-SDK tickets WeChat and WeCom hand out (<c>kind</c> of <c>wx_ticket_get</c>).</summary>
    public enum WxTicketKind
    {
        /// <summary><c>jsapi</c>: for an mp app the <c>jsapi_ticket</c> that signs <c>wx.config</c>; for a WeCom id the corp ticket that signs WeCom's <c>wx.config</c>.</summary>
        Jsapi,
        /// <summary><c>wx_card</c> (mp only): the card <c>api_ticket</c>, signed into <c>cardSign</c> by <see cref="WxCardSign.Compute(string[])"/>.</summary>
        WxCard,
        /// <summary><c>agent_config</c> (WeCom only): the app's own ticket that signs <c>wx.agentConfig</c>; needs <see cref="WxTokenOptions.Agentid"/>.</summary>
        AgentConfig,
    }

    /// <summary>
    /// JS-SDK tickets, with the access token's guarantees: cached in the engine, fetched once per (app, kind) however
    /// many threads ask, shared through the app's store or the central server (one fetch per fleet), refreshed ahead,
    /// and counted from when a ticket was first seen (WeChat hands a valid ticket back with a full <c>expires_in</c>,
    /// which never extends it). No managed cache: a cached ticket costs one engine call, which does no I/O.
    /// All members are thread-safe.
    /// </summary>
    public static class WxTicket
    {
        /// <summary>A valid ticket of <paramref name="kind"/> for <paramref name="appId"/> (an mp AppID or a WeCom id).</summary>
        /// <param name="appId">A registered id.</param>
        /// <param name="kind">The ticket; default <see cref="WxTicketKind.Jsapi"/>.</param>
        /// <returns>The ticket.</returns>
        /// <exception cref="ArgumentNullException"><paramref name="appId"/> is null.</exception>
        /// <exception cref="WxTokenException"><see cref="WxStatus.InvalidArgument"/> for a kind the id's platform does not have,
        /// <see cref="WxStatus.UnknownApp"/>, <see cref="WxStatus.RateLimited"/> (WeCom's hourly ticket limit), or the error of the
        /// fetch (of the ticket, or of the token it needs).</exception>
        public static string Get(string appId, WxTicketKind kind = WxTicketKind.Jsapi)
        {
            byte[] appIdZ = Utf8.Z(appId, nameof(appId));
            byte[] kindZ = KindZ(kind);
            NativeLibraryLoader.Ensure();
            return TicketCalls.TicketGet(appId, appIdZ, kindZ);
        }

        /// <summary>
        /// <see cref="Get"/> without blocking the caller: the engine call runs on a pool thread (concurrent callers
        /// still share the engine's one fetch).
        /// </summary>
        /// <param name="appId">A registered id.</param>
        /// <param name="kind">The ticket; default <see cref="WxTicketKind.Jsapi"/>.</param>
        /// <param name="cancellationToken">Stops this caller's wait, not the fetch.</param>
        /// <returns>The ticket.</returns>
        /// <exception cref="WxTokenException">As for <see cref="Get"/>, through the task; nothing is thrown synchronously.</exception>
        public static Task<string> GetAsync(string appId, WxTicketKind kind = WxTicketKind.Jsapi,
            CancellationToken cancellationToken = default(CancellationToken))
        {
            // Every failure, a bad argument included, faults the task (as WxAccessToken.GetAsync does).
            return Task.Run(() => Get(appId, kind), cancellationToken);
        }

        /// <summary>
        /// A page's <c>wx.config</c> failed with "invalid signature" although its URL was right: if <paramref name="staleTicket"/>
        /// is still the engine's ticket of <paramref name="kind"/>, it is withdrawn and its replacement fetched before this
        /// returns (one fetch however many callers report it); if the engine has moved on, nothing happens. WeChat may hand
        /// the same ticket back (it calls it valid): it then stays in service.
        /// </summary>
        /// <param name="appId">A registered id.</param>
        /// <param name="kind">The ticket's kind.</param>
        /// <param name="staleTicket">The ticket the failing page was signed with.</param>
        /// <exception cref="ArgumentNullException">An argument is null.</exception>
        /// <exception cref="WxTokenException"><see cref="WxStatus.RateLimited"/> when the passive refresh pacing
        /// (the options <c>passive_refresh_interval_secs</c> and <c>passive_refresh_daily_limit</c>, per kind) or WeCom's hourly limit refuses
        /// (the ticket stays in service), or the replacement's error.</exception>
        public static void Invalidate(string appId, WxTicketKind kind, string staleTicket)
        {
            byte[] appIdZ = Utf8.Z(appId, nameof(appId));
            byte[] kindZ = KindZ(kind);
            byte[] staleZ = Utf8.Z(staleTicket, nameof(staleTicket));
            NativeLibraryLoader.Ensure();
            TicketCalls.TicketInvalidate(appId, appIdZ, kindZ, staleZ);
        }

        /// <summary>The engine's name of a kind: <c>jsapi</c>, <c>wx_card</c> or <c>agent_config</c>.</summary>
        /// <param name="kind">A kind.</param>
        /// <returns>Its name in the C ABI, the central server's URLs and the stores.</returns>
        public static string KindName(WxTicketKind kind)
        {
            switch (kind)
            {
                case WxTicketKind.Jsapi: return "jsapi";
                case WxTicketKind.WxCard: return "wx_card";
                case WxTicketKind.AgentConfig: return "agent_config";
                default: throw new ArgumentOutOfRangeException(nameof(kind), kind, "not a WxTicketKind");
            }
        }

        internal static byte[] KindZ(WxTicketKind kind)
        {
            return Utf8.Z(KindName(kind), nameof(kind));
        }
    }
}
