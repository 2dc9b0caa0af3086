using System;
using System.Collections.Generic;

namespace WxToken
{
    /// <summary>One app's counters since it was registered in this process (<c>wx_token_stats_json</c>), for monitoring.</summary>
    public sealed class WxTokenStats
    {
        /// <summary>Upstream fetches this process made, failed ones included (from WeChat, or the central server in client mode).</summary>
        public long Fetches { get; }

        /// <summary>Total time spent in those fetches.</summary>
        public TimeSpan FetchTimeTotal { get; }

        /// <summary>How long the last fetch took, or <c>null</c> before the first one.</summary>
        public TimeSpan? LastFetchTime { get; }

        /// <summary>Tokens taken from a shared store that another process had fetched.</summary>
        public long TokensFromStore { get; }

        /// <summary>Failed fetches, counted per (status, errcode).</summary>
        public IReadOnlyList<WxFailureCount> Failures { get; }

        WxTokenStats(long fetches, TimeSpan total, TimeSpan? last, long fromStore, IReadOnlyList<WxFailureCount> failures)
        {
            Fetches = fetches;
            FetchTimeTotal = total;
            LastFetchTime = last;
            TokensFromStore = fromStore;
            Failures = failures;
        }

        internal static WxTokenStats Parse(string json, Func<string, WxStatus> statusOf)
        {
            object parsed;
            var o = Json.TryParse(json, out parsed) ? parsed as Dictionary<string, object> : null;
            if (o == null) throw new WxTokenException(WxStatus.Protocol, 0, null, null, "wx_token_stats_json returned something that is not a JSON object");
            var failures = new List<WxFailureCount>();
            object list;
            if (o.TryGetValue("failures", out list) && list is List<object>)
                foreach (object f in (List<object>)list)
                {
                    var fo = f as Dictionary<string, object>;
                    if (fo == null) continue;
                    failures.Add(new WxFailureCount(statusOf(Json.Str(fo, "status")), (int)Json.Long(fo, "errcode"), Json.Long(fo, "count")));
                }
            double? last = Json.Double(o, "last_fetch_seconds");
            return new WxTokenStats(Json.Long(o, "fetches"), TimeSpan.FromSeconds(Json.Double(o, "fetch_seconds_total") ?? 0),
                last.HasValue ? TimeSpan.FromSeconds(last.Value) : (TimeSpan?)null, Json.Long(o, "tokens_from_store"), failures.AsReadOnly());
        }
    }

    /// <summary>How often fetches failed with one status and errcode.</summary>
    public sealed class WxFailureCount
    {
        /// <summary>The failure's status.</summary>
        public WxStatus Status { get; }

        /// <summary>WeChat's errcode, or 0.</summary>
        public int ErrCode { get; }

        /// <summary>How many fetches failed this way.</summary>
        public long Count { get; }

        internal WxFailureCount(WxStatus status, int errCode, long count)
        {
            Status = status;
            ErrCode = errCode;
            Count = count;
        }

        /// <summary>For logs: <c>WeChatError 40164 x3</c>.</summary>
        public override string ToString()
        {
            return Status + (ErrCode != 0 ? " " + ErrCode : "") + " x" + Count;
        }
    }
}
