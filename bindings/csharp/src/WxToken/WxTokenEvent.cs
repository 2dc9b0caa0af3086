using System;

namespace WxToken
{
    /// <summary>How serious a <see cref="WxTokenEvent"/> is. The numbers are the engine's (<c>WX_LEVEL_*</c>); the names
    /// are those of <c>Microsoft.Extensions.Logging.LogLevel</c>, whose numbers are one higher (the README's adapter).</summary>
    public enum WxEventLevel
    {
        /// <summary>Detail for debugging (<c>WX_LEVEL_DEBUG</c>).</summary>
        Debug = 0,
        /// <summary>Normal operation worth a log line: a token fetched, a store recovered (<c>WX_LEVEL_INFO</c>).</summary>
        Information = 1,
        /// <summary>Trouble the engine is riding out: a refresh failed while the current token is still valid, a store outage (<c>WX_LEVEL_WARN</c>).</summary>
        Warning = 2,
        /// <summary>Callers are or will be failing: the token expired with no replacement (<c>WX_LEVEL_ERROR</c>).</summary>
        Error = 3,
    }

    /// <summary>The stable names of <see cref="WxTokenEvent.Kind"/>, to alert on. The engine may add kinds; treat an unknown one by its level.</summary>
    public static class WxEventKind
    {
        /// <summary>Information: a token was fetched from upstream (WeChat or the central server).</summary>
        public const string TokenFetched = "token_fetched";
        /// <summary>Warning: a fetch failed; <see cref="WxTokenEvent.Status"/> and <see cref="WxTokenEvent.ErrCode"/> say why, the message when it is retried. The current token may still serve.</summary>
        public const string RefreshFailed = "refresh_failed";
        /// <summary>Error: the token expired and no replacement could be had; once per expiry.</summary>
        public const string TokenExpired = "token_expired";
        /// <summary>Warning: a shared store could not be read or written.</summary>
        public const string StoreUnavailable = "store_unavailable";
        /// <summary>Information: the store answers again after <see cref="StoreUnavailable"/>.</summary>
        public const string StoreRecovered = "store_recovered";
        /// <summary>Warning: a token was fetched directly from upstream because the store was unreachable.</summary>
        public const string FallbackFetch = "fallback_fetch";
    }

    /// <summary>
    /// Something an operator should know, from <see cref="WxAccessToken.Events"/>. It never contains an AppSecret, a
    /// central key or a whole token (the engine names a token by its last 4 characters and its length).
    /// </summary>
    public sealed class WxTokenEvent : EventArgs
    {
        /// <summary>How serious it is.</summary>
        public WxEventLevel Level { get; }

        /// <summary>The AppID it concerns, or <c>null</c> for a process-wide event.</summary>
        public string AppId { get; }

        /// <summary>What happened: one of <see cref="WxEventKind"/>'s names (or a newer one).</summary>
        public string Kind { get; }

        /// <summary>A one-line human-readable description.</summary>
        public string Message { get; }

        /// <summary>The status of the failure reported, <see cref="WxStatus.Ok"/> for good news.</summary>
        public WxStatus Status { get; }

        /// <summary>WeChat's errcode (for example 40164, IP not whitelisted), or 0.</summary>
        public int ErrCode { get; }

        /// <summary>When the binding received it (UTC).</summary>
        public DateTimeOffset Timestamp { get; }

        internal WxTokenEvent(WxEventLevel level, string appId, string kind, string message, WxStatus status, int errCode)
        {
            Level = level;
            AppId = string.IsNullOrEmpty(appId) ? null : appId;
            Kind = kind;
            Message = message;
            Status = status;
            ErrCode = errCode;
            Timestamp = DateTimeOffset.UtcNow;
        }

        /// <summary>One log line: level, kind, app, message.</summary>
        public override string ToString()
        {
            return Level + " " + Kind + (AppId == null ? "" : " " + AppId) + ": " + Message;
        }
    }
}
