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
    /// Per-app engine options. Every property is optional: <c>null</c> keeps the engine's default
    /// (shown in each property's summary). Serialized to the engine's <c>options_json</c> by <see cref="ToJson"/>.
    /// </summary>
    public sealed partial class WxTokenOptions
    {
        /// <summary>Scheme and host of WeChat's API; default <c>https://api.weixin.qq.com</c>. Plain http is accepted only for loopback hosts (tests, local proxies).</summary>
        public string ApiBase { get; set; }

        /// <summary>Token endpoint; default <see cref="WxEndpoint.Stable"/>.</summary>
        public WxEndpoint? Endpoint { get; set; }

        /// <summary>How long before expiry the background refresh starts (whole seconds); default 300 s, capped by the engine at half the token's lifetime.</summary>
        public TimeSpan? RefreshAhead { get; set; }

        /// <summary>Timeout of one request to WeChat (milliseconds); default 5 s.</summary>
        public TimeSpan? Timeout { get; set; }

        /// <summary>First backoff after a transient failure; doubles up to <see cref="RetryMax"/>. Default 500 ms.</summary>
        public TimeSpan? RetryMin { get; set; }

        /// <summary>Longest backoff after repeated transient failures; default 60 s.</summary>
        public TimeSpan? RetryMax { get; set; }

        /// <summary>How long a terminal failure (bad secret, IP not whitelisted, quota) is answered from memory before WeChat is asked again; default 30 s.</summary>
        public TimeSpan? ErrorCooldown { get; set; }

        /// <summary>The engine's <c>options_json</c> for these options, or <c>null</c> when every option is left at its default.</summary>
        /// <exception cref="ArgumentOutOfRangeException">A duration is negative.</exception>
        public string ToJson()
        {
            var sb = new StringBuilder("{");
            if (ApiBase != null) Str(sb, "api_base", ApiBase);
            if (Endpoint.HasValue) Str(sb, "endpoint", Endpoint.Value == WxEndpoint.Classic ? "classic" : "stable");
            Num(sb, "refresh_ahead_secs", RefreshAhead, true, nameof(RefreshAhead));
            Num(sb, "timeout_ms", Timeout, false, nameof(Timeout));
            Num(sb, "retry_min_ms", RetryMin, false, nameof(RetryMin));
            Num(sb, "retry_max_ms", RetryMax, false, nameof(RetryMax));
            Num(sb, "error_cooldown_ms", ErrorCooldown, false, nameof(ErrorCooldown));
            AppendPlatform(sb);
            if (sb.Length == 1) return null;
            return sb.Append('}').ToString();
        }

        static void Key(StringBuilder sb, string key)
        {
            if (sb.Length > 1) sb.Append(',');
            sb.Append('"').Append(key).Append("\":");
        }

        static void Num(StringBuilder sb, string key, TimeSpan? value, bool seconds, string property)
        {
            if (!value.HasValue) return;
            if (value.Value < TimeSpan.Zero) throw new ArgumentOutOfRangeException(property, value.Value, "must not be negative");
            long n = seconds ? (long)value.Value.TotalSeconds : (long)value.Value.TotalMilliseconds;
            Key(sb, key);
            sb.Append(n.ToString(CultureInfo.InvariantCulture));
        }

        static void Str(StringBuilder sb, string key, string value)
        {
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
