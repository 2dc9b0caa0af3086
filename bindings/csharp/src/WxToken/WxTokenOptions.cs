using System;
using System.Globalization;
using System.Text;

namespace WxToken
{
    /// <summary>Which WeChat token API the engine calls.</summary>
    public enum WxEndpoint
    {
        /// <summary><c>POST /cgi-bin/stable_token</c>, WeChat's recommendation and the default: several fetchers do not overwrite each other's token.</summary>
        Stable,
        /// <summary><c>GET /cgi-bin/token</c>, the seed's endpoint: every fetch mints a new token and ends the previous one after a short overlap.</summary>
        Classic,
    }

    /// <summary>
    /// Per-app engine options: one property per key of the engine's <c>options_json</c> (<c>wx_token_register</c> in
    /// <c>wx_token.h</c>), named after the key (<c>store_prefix</c> is <see cref="StorePrefix"/>). Every property is
    /// optional: <c>null</c> keeps the engine's default, shown in each summary. Durations are whole milliseconds or
    /// seconds, as the key's suffix says. Switching a service from one process to a shared store to a central server
    /// is a matter of these properties only.
    /// </summary>
    public sealed class WxTokenOptions
    {
        /// <summary><c>api_base</c>: scheme and host of WeChat's API; default <c>https://api.weixin.qq.com</c>. Plain http is accepted only for loopback hosts (tests, local proxies).</summary>
        public string ApiBase { get; set; }

        /// <summary><c>endpoint</c>: which token API; default <see cref="WxEndpoint.Stable"/>.</summary>
        public WxEndpoint? Endpoint { get; set; }

        /// <summary><c>platform</c>: <c>"mp"</c> (the default: an Official Account or Mini Program, the id is its appid) or <c>"wecom"</c> (WeCom: the id is a label of one corp secret, tokens from <c>qyapi.weixin.qq.com</c>; needs <see cref="Corpid"/>).</summary>
        public string Platform { get; set; }

        /// <summary><c>corpid</c>: WeCom, the corp's id (required with <see cref="Platform"/> <c>"wecom"</c>).</summary>
        public string Corpid { get; set; }

        /// <summary><c>agentid</c>: WeCom, the app's agentid, for <c>wx.agentConfig</c> (<c>agent_config</c> tickets).</summary>
        public int? Agentid { get; set; }

        /// <summary><c>refresh_ahead_secs</c>: how many seconds before expiry the background refresh starts; default 300, capped by the engine at half the token's lifetime. 0 to 86400.</summary>
        public int? RefreshAheadSecs { get; set; }

        /// <summary><c>timeout_ms</c>: timeout of one upstream request in milliseconds; default 5000. 1 to 600000.</summary>
        public int? TimeoutMs { get; set; }

        /// <summary><c>retry_min_ms</c>: first backoff after a transient failure; doubles up to <see cref="RetryMaxMs"/>. Default 500.</summary>
        public int? RetryMinMs { get; set; }

        /// <summary><c>retry_max_ms</c>: longest backoff after repeated transient failures; default 60000.</summary>
        public int? RetryMaxMs { get; set; }

        /// <summary><c>error_cooldown_ms</c>: how long a terminal failure (bad secret, IP not whitelisted, quota) is answered from memory before WeChat is asked again; default 30000, doubling while it repeats, up to an hour.</summary>
        public int? ErrorCooldownMs { get; set; }

        /// <summary>
        /// <c>store</c>: where the token is shared. <c>"memory"</c> (the default: this process only),
        /// <c>"file:/abs/dir"</c> (processes on one host), <c>"redis://[user:pass@]host:port/db"</c> or <c>"rediss://…"</c>
        /// (processes on several hosts). A Redis password in it is a secret: the engine never logs it.
        /// </summary>
        public string Store { get; set; }

        /// <summary><c>store_prefix</c>: prefix of the shared store's keys; default <c>"wx_token:"</c>. Needs <see cref="Store"/>.</summary>
        public string StorePrefix { get; set; }

        /// <summary><c>lease_ms</c>: how long a shared store's refresh lease lasts (100 to 600000); default 10000, or twice <see cref="TimeoutMs"/> if larger.</summary>
        public int? LeaseMs { get; set; }

        /// <summary><c>store_sync_ms</c>: how often a process re-reads a shared store for tokens other processes published; default 10000.</summary>
        public int? StoreSyncMs { get; set; }

        /// <summary><c>store_fallback_per_hour</c>: direct fetches from WeChat per app per hour for the whole host while the shared store is unreachable and no token is valid (0 to 60; stable endpoint only, never with classic); default 2.</summary>
        public int? StoreFallbackPerHour { get; set; }

        /// <summary><c>store_tls_ca_file</c>: TLS Redis store (<c>rediss://…</c>): absolute path of a PEM CA bundle to trust instead of the public roots.</summary>
        public string StoreTlsCaFile { get; set; }

        /// <summary><c>store_tls_cert_file</c>: TLS Redis store: absolute path of a PEM client certificate (with <see cref="StoreTlsKeyFile"/>).</summary>
        public string StoreTlsCertFile { get; set; }

        /// <summary><c>store_tls_key_file</c>: TLS Redis store: absolute path of the PEM private key of <see cref="StoreTlsCertFile"/>.</summary>
        public string StoreTlsKeyFile { get; set; }

        /// <summary><c>passive_refresh_interval_secs</c>: least time between two fetches started by invalidating the current token (0 to 86400; 0: no spacing); default 30. Within it <c>Invalidate</c> answers RATE_LIMITED and the token stays in service.</summary>
        public int? PassiveRefreshIntervalSecs { get; set; }

        /// <summary><c>passive_refresh_daily_limit</c>: most such fetches per app in any 24 hours (0 to 10000); default 100.</summary>
        public int? PassiveRefreshDailyLimit { get; set; }

        /// <summary>
        /// <c>central</c>: client mode. The base URL of a wx-tokend server (https, or http on loopback) that holds the
        /// AppSecret; register with a <c>null</c> secret. Several, comma-separated, are failed over in order.
        /// Needs <see cref="CentralKey"/>; no <see cref="Store"/>.
        /// </summary>
        public string Central { get; set; }

        /// <summary><c>central_key</c>: this client's key for the <see cref="Central"/> server. A secret: the engine never logs it.</summary>
        public string CentralKey { get; set; }

        /// <summary><c>refresh_workers</c>: process-wide, the threads running background refreshes (1 to 256); the pool is the largest value any registration gave, 8 if none did.</summary>
        public int? RefreshWorkers { get; set; }

        /// <summary><c>refresh_rate_per_sec</c>: process-wide, background refreshes per second to this app's upstream, shared by all its apps (1 to 100000); the lowest value any registration for it gave applies, 50 if none did.</summary>
        public int? RefreshRatePerSec { get; set; }

        // The engine's options_json, or null when every option is left at its default. Internal: it carries the
        // central key and any Redis password, and a public string method invites logging it.
        internal string ToJson()
        {
            var sb = new StringBuilder("{");
            Str(sb, "api_base", ApiBase);
            if (Endpoint.HasValue) Str(sb, "endpoint", Endpoint.Value == WxEndpoint.Classic ? "classic" : "stable");
            Str(sb, "platform", Platform);
            Str(sb, "corpid", Corpid);
            Num(sb, "agentid", Agentid, nameof(Agentid));
            Num(sb, "refresh_ahead_secs", RefreshAheadSecs, nameof(RefreshAheadSecs));
            Num(sb, "timeout_ms", TimeoutMs, nameof(TimeoutMs));
            Num(sb, "retry_min_ms", RetryMinMs, nameof(RetryMinMs));
            Num(sb, "retry_max_ms", RetryMaxMs, nameof(RetryMaxMs));
            Num(sb, "error_cooldown_ms", ErrorCooldownMs, nameof(ErrorCooldownMs));
            Str(sb, "store", Store);
            Str(sb, "store_prefix", StorePrefix);
            Num(sb, "lease_ms", LeaseMs, nameof(LeaseMs));
            Num(sb, "store_sync_ms", StoreSyncMs, nameof(StoreSyncMs));
            Num(sb, "store_fallback_per_hour", StoreFallbackPerHour, nameof(StoreFallbackPerHour));
            Str(sb, "store_tls_ca_file", StoreTlsCaFile);
            Str(sb, "store_tls_cert_file", StoreTlsCertFile);
            Str(sb, "store_tls_key_file", StoreTlsKeyFile);
            Num(sb, "passive_refresh_interval_secs", PassiveRefreshIntervalSecs, nameof(PassiveRefreshIntervalSecs));
            Num(sb, "passive_refresh_daily_limit", PassiveRefreshDailyLimit, nameof(PassiveRefreshDailyLimit));
            Str(sb, "central", Central);
            Str(sb, "central_key", CentralKey);
            Num(sb, "refresh_workers", RefreshWorkers, nameof(RefreshWorkers));
            Num(sb, "refresh_rate_per_sec", RefreshRatePerSec, nameof(RefreshRatePerSec));
            if (sb.Length == 1) return null;
            return sb.Append('}').ToString();
        }

        static void Key(StringBuilder sb, string key)
        {
            if (sb.Length > 1) sb.Append(',');
            sb.Append('"').Append(key).Append("\":");
        }

        // Ranges are the engine's to check (it names the key and the range); only a negative number, which no key
        // accepts, is refused here with the usual .NET exception.
        static void Num(StringBuilder sb, string key, int? value, string property)
        {
            if (!value.HasValue) return;
            if (value.Value < 0) throw new ArgumentOutOfRangeException(property, value.Value, "must not be negative");
            Key(sb, key);
            sb.Append(value.Value.ToString(CultureInfo.InvariantCulture));
        }

        static void Str(StringBuilder sb, string key, string value)
        {
            if (value == null) return;
            Key(sb, key);
            sb.Append('"');
            foreach (char c in value)
            {
                if (c == '"' || c == '\\') sb.Append('\\').Append(c);
                else if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                else sb.Append(c);
            }
            sb.Append('"');
        }
    }
}
