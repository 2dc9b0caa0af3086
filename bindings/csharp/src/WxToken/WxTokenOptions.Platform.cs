using System.Globalization;
using System.Text;

namespace WxToken
{
    /// <summary>Which WeChat platform an id belongs to (<c>platform</c> of <c>options_json</c>).</summary>
    public enum WxPlatform
    {
        /// <summary><c>mp</c>, the default: an Official Account or Mini Program; the id is its AppID (api.weixin.qq.com).</summary>
        Mp,
        /// <summary><c>wecom</c>: WeCom (企业微信); the id is a label of one corp secret (qyapi.weixin.qq.com), with <see cref="WxTokenOptions.CorpId"/>.</summary>
        WeCom,
    }

    public sealed partial class WxTokenOptions
    {
        /// <summary><c>platform</c>: <see cref="WxPlatform.Mp"/> (default) or <see cref="WxPlatform.WeCom"/>. Register one id per WeCom secret (each app, contacts sync…), all with the same <see cref="CorpId"/>.</summary>
        public WxPlatform? Platform { get; set; }

        /// <summary><c>corpid</c>: WeCom's corp id (required with <see cref="WxPlatform.WeCom"/>).</summary>
        public string CorpId { get; set; }

        /// <summary><c>agentid</c>: the WeCom app's agentid, for <c>wx.agentConfig</c> (<see cref="WxTicketKind.AgentConfig"/> tickets).</summary>
        public long? AgentId { get; set; }

        void AppendPlatform(StringBuilder sb)
        {
            if (Platform.HasValue) Str(sb, "platform", Platform.Value == WxPlatform.WeCom ? "wecom" : "mp");
            if (CorpId != null) Str(sb, "corpid", CorpId);
            if (AgentId.HasValue)
            {
                if (AgentId.Value < 0) throw new System.ArgumentOutOfRangeException(nameof(AgentId), AgentId.Value, "must not be negative");
                Key(sb, "agentid");
                sb.Append(AgentId.Value.ToString(CultureInfo.InvariantCulture));
            }
        }
    }
}
