using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace WxToken
{
    /// <summary>
    /// What a page passes to <c>wx.config</c> (or WeCom's <c>wx.agentConfig</c>), as <see cref="WxJsSdk.Config"/> made it:
    /// a fresh nonce from the OS's CSPRNG, the current time, and the signature of the page's URL with the current ticket.
    /// Render <see cref="ToJson(IEnumerable{string})"/> into the page.
    /// </summary>
    public sealed class WxJsSdkConfig
    {
        /// <summary>The ticket that signed it: <see cref="WxTicketKind.Jsapi"/> (<c>wx.config</c>) or <see cref="WxTicketKind.AgentConfig"/> (<c>wx.agentConfig</c>).</summary>
        public WxTicketKind Kind { get; private set; }

        /// <summary><c>appId</c> of <c>wx.config</c>: the AppID, or a WeCom id's corpid; <c>null</c> for <c>wx.agentConfig</c>.</summary>
        public string AppId { get; private set; }

        /// <summary><c>corpid</c> of <c>wx.agentConfig</c>; <c>null</c> for <c>wx.config</c>.</summary>
        public string CorpId { get; private set; }

        /// <summary><c>agentid</c> of <c>wx.agentConfig</c> (a string, as the JS-SDK takes it); <c>null</c> for <c>wx.config</c>.</summary>
        public string AgentId { get; private set; }

        /// <summary><c>timestamp</c>: seconds since the Unix epoch, as a string.</summary>
        public string Timestamp { get; private set; }

        /// <summary><c>nonceStr</c>: 16 random characters, new on every call.</summary>
        public string NonceStr { get; private set; }

        /// <summary><c>signature</c>: 40 lowercase hex digits.</summary>
        public string Signature { get; private set; }

        /// <summary>The engine's JSON object, exactly as the page needs it (without <c>jsApiList</c>).</summary>
        public string Json { get; private set; }

        /// <summary>The object for the page with <c>jsApiList</c> added, e.g. <c>ToJson(new[] { "chooseImage" })</c>.</summary>
        /// <param name="jsApiList">The JS-SDK APIs the page uses.</param>
        /// <returns>A JSON object literal, safe to put in a <c>&lt;script&gt;</c> (no <c>&lt;</c>, <c>&gt;</c> or <c>&amp;</c> raw).</returns>
        public string ToJson(IEnumerable<string> jsApiList)
        {
            if (jsApiList == null) throw new ArgumentNullException(nameof(jsApiList));
            var sb = new StringBuilder(Json, 0, Json.Length - 1, Json.Length + 64).Append(",\"jsApiList\":[");
            bool first = true;
            foreach (string api in jsApiList)
            {
                if (api == null) throw new ArgumentException("contains null", nameof(jsApiList));
                if (!first) sb.Append(',');
                first = false;
                AppendString(sb, api);
            }
            return sb.Append("]}").ToString();
        }

        /// <summary>The JSON, for logging: no secret is in it (the ticket is not).</summary>
        /// <returns><see cref="Json"/>.</returns>
        public override string ToString() { return Json; }

        internal static WxJsSdkConfig Parse(WxTicketKind kind, string json)
        {
            object parsed;
            var o = WxToken.Json.TryParse(json, out parsed) ? parsed as Dictionary<string, object> : null;
            var c = new WxJsSdkConfig
            {
                Kind = kind,
                Json = json,
                AppId = WxToken.Json.Str(o, "appId"),
                CorpId = WxToken.Json.Str(o, "corpid"),
                AgentId = WxToken.Json.Str(o, "agentid"),
                Timestamp = WxToken.Json.Str(o, "timestamp"),
                NonceStr = WxToken.Json.Str(o, "nonceStr"),
                Signature = WxToken.Json.Str(o, "signature"),
            };
            if (c.Timestamp == null || c.NonceStr == null || c.Signature == null || (c.AppId == null && c.CorpId == null))
                throw new WxTokenException(WxStatus.Protocol, 0, null, null, "wx_token jssdk config: unexpected JSON from the engine: " + json);
            return c;
        }

        // JSON string, also safe inside an HTML <script>.
        static void AppendString(StringBuilder sb, string value)
        {
            sb.Append('"');
            foreach (char c in value)
            {
                if (c == '"' || c == '\\') sb.Append('\\').Append(c);
                else if (c < 0x20 || c == '<' || c == '>' || c == '&' || c == '\u2028' || c == '\u2029')
                    sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                else sb.Append(c);
            }
            sb.Append('"');
        }
    }

    /// <summary>
    /// The JS-SDK signature a page's <c>wx.config</c> (and WeCom's <c>wx.config</c> / <c>wx.agentConfig</c>) checks.
    /// All members are thread-safe.
    /// </summary>
    public static class WxJsSdk
    {
        /// <summary>
        /// The <c>wx.config</c> (<paramref name="kind"/> <see cref="WxTicketKind.Jsapi"/>, the default) or <c>wx.agentConfig</c>
        /// (<see cref="WxTicketKind.AgentConfig"/>, WeCom) of the page at <paramref name="url"/>: a fresh nonce, the current
        /// time and the signature with the current ticket (see <see cref="WxTicket.Get"/>).
        /// </summary>
        /// <param name="appId">A registered id.</param>
        /// <param name="url">The page's full URL, as <c>location.href</c> says (the engine cuts it at '#').</param>
        /// <param name="kind">Which ticket signs it.</param>
        /// <returns>The config to render into the page.</returns>
        /// <exception cref="ArgumentNullException">An argument is null.</exception>
        /// <exception cref="WxTokenException"><see cref="WxStatus.InvalidArgument"/> for an empty URL or one with control
        /// characters, <see cref="WxTicketKind.WxCard"/> (use <see cref="WxCardSign"/>), or AgentConfig without
        /// <see cref="WxTokenOptions.Agentid"/>; otherwise as for <see cref="WxTicket.Get"/>.</exception>
        public static WxJsSdkConfig Config(string appId, string url, WxTicketKind kind = WxTicketKind.Jsapi)
        {
            byte[] appIdZ = Utf8.Z(appId, nameof(appId));
            byte[] urlZ = Utf8.Z(url, nameof(url));
            byte[] kindZ = WxTicket.KindZ(kind);
            NativeLibraryLoader.Ensure();
            return WxJsSdkConfig.Parse(kind, TicketCalls.JsSdkConfig(appId, appIdZ, kindZ, urlZ));
        }

        /// <summary><see cref="Config"/> without blocking the caller when the ticket must be fetched (it runs on a pool thread).</summary>
        /// <param name="appId">A registered id.</param>
        /// <param name="url">The page's full URL.</param>
        /// <param name="kind">Which ticket signs it.</param>
        /// <param name="cancellationToken">Stops this caller's wait.</param>
        /// <returns>The config.</returns>
        /// <exception cref="WxTokenException">As for <see cref="Config"/>, through the task; nothing is thrown synchronously.</exception>
        public static Task<WxJsSdkConfig> ConfigAsync(string appId, string url, WxTicketKind kind = WxTicketKind.Jsapi,
            CancellationToken cancellationToken = default(CancellationToken))
        {
            return Task.Run(() => Config(appId, url, kind), cancellationToken);
        }

        /// <summary>
        /// WeChat's algorithm: lowercase hex <c>sha1("jsapi_ticket=" ticket "&amp;noncestr=" nonceStr "&amp;timestamp=" timestamp
        /// "&amp;url=" url)</c>, values raw (no URL-encoding), <paramref name="url"/> cut at its first '#'. Pure: no I/O, no
        /// registration. Most servers want <see cref="Config"/>.
        /// </summary>
        /// <param name="ticket">The ticket.</param>
        /// <param name="nonceStr">The nonce.</param>
        /// <param name="timestamp">The timestamp, as the page passes it.</param>
        /// <param name="url">The page's URL.</param>
        /// <returns>40 lowercase hex digits.</returns>
        /// <exception cref="ArgumentNullException">An argument is null.</exception>
        public static string Signature(string ticket, string nonceStr, string timestamp, string url)
        {
            byte[] t = Utf8.Z(ticket, nameof(ticket)), n = Utf8.Z(nonceStr, nameof(nonceStr));
            byte[] ts = Utf8.Z(timestamp, nameof(timestamp)), u = Utf8.Z(url, nameof(url));
            NativeLibraryLoader.Ensure();
            return TicketCalls.JsSdkSignature(t, n, ts, u);
        }

        /// <summary><see cref="Signature(string, string, string, string)"/> with the timestamp in seconds since the Unix epoch.</summary>
        /// <param name="ticket">The ticket.</param>
        /// <param name="nonceStr">The nonce.</param>
        /// <param name="timestamp">Seconds since the Unix epoch.</param>
        /// <param name="url">The page's URL.</param>
        /// <returns>40 lowercase hex digits.</returns>
        public static string Signature(string ticket, string nonceStr, long timestamp, string url)
        {
            return Signature(ticket, nonceStr, timestamp.ToString(CultureInfo.InvariantCulture), url);
        }
    }

    /// <summary>WeChat's <c>cardSign</c> for card pages (<c>wx.addCard</c>, <c>wx.chooseCard</c>).</summary>
    public static class WxCardSign
    {
        /// <summary>
        /// Lowercase hex SHA-1 of <paramref name="values"/> (the <see cref="WxTicketKind.WxCard"/> ticket, timestamp, card_id,
        /// code, openid, nonce_str… whichever the page uses) sorted by their UTF-8 bytes and concatenated. Pure: no I/O.
        /// </summary>
        /// <param name="values">1 to 64 values, in any order.</param>
        /// <returns>40 lowercase hex digits.</returns>
        /// <exception cref="ArgumentNullException"><paramref name="values"/> or one of them is null.</exception>
        /// <exception cref="WxTokenException"><see cref="WxStatus.InvalidArgument"/> for no values or more than 64.</exception>
        public static string Compute(params string[] values)
        {
            return Compute((IEnumerable<string>)values);
        }

        /// <summary><see cref="Compute(string[])"/> for any sequence of values.</summary>
        /// <param name="values">1 to 64 values, in any order.</param>
        /// <returns>40 lowercase hex digits.</returns>
        public static string Compute(IEnumerable<string> values)
        {
            if (values == null) throw new ArgumentNullException(nameof(values));
            var z = new List<byte[]>();
            foreach (string v in values) z.Add(Utf8.Z(v, nameof(values)));
            NativeLibraryLoader.Ensure();
            return TicketCalls.CardSignature(z.ToArray());
        }
    }
}
