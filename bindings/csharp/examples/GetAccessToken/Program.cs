using System;
using System.Net;
using WxToken;

namespace WxToken.Examples
{
    // The seed article's GetAccessToken(), rewritten on the binding. The original downloaded a new token on every
    // call (each download ends the previous token for every other server, and the daily quota is 2000), and left
    // caching and refreshing to the reader. Here the engine caches, refreshes ahead of expiry, shares one fetch
    // between threads, and the passive refresh handles a token WeChat rejects.
    public static class WeChat
    {
        static string AppId;

        // Once per process, at startup (Main, or Program.cs in ASP.NET Core). The credentials come from the
        // environment and nowhere else: no demo secret to fall back on, so a misconfigured deployment stops here
        // instead of sending WeChat a wrong secret (and spending quota on 40125s).
        public static void Init(string appId, string secret)
        {
            AppId = appId;
            var options = new WxTokenOptions();
            string apiBase = Environment.GetEnvironmentVariable("WX_API_BASE"); // e.g. the fake WeChat, for a dry run
            if (!string.IsNullOrEmpty(apiBase)) options.ApiBase = apiBase;
            WxAccessToken.Register(appId, secret, options);
        }

        /// <summary>获取AccessToken: the cached token, fetched from WeChat only when needed.</summary>
        public static string GetAccessToken()
        {
            return WxAccessToken.Get(AppId);
        }

        /// <summary>A WeChat API call with the passive refresh: a 40001/42001/40014 answer is retried once with a new token.</summary>
        public static string GetApiDomainIp()
        {
            string apiBase = Environment.GetEnvironmentVariable("WX_API_BASE") ?? "https://api.weixin.qq.com";
            return WxAccessToken.Call(AppId, token =>
                new WebClient().DownloadString(apiBase + "/cgi-bin/get_api_domain_ip?access_token=" + Uri.EscapeDataString(token)));
        }
    }

    public static class Program
    {
        public static int Main()
        {
            string appId = Environment.GetEnvironmentVariable("WX_APPID");
            string secret = Environment.GetEnvironmentVariable("WX_SECRET");
            if (string.IsNullOrEmpty(appId) || string.IsNullOrEmpty(secret))
            {
                Console.Error.WriteLine("set WX_APPID and WX_SECRET (and WX_API_BASE=http://127.0.0.1:PORT to use the fake WeChat)");
                return 2;
            }
            try
            {
                WeChat.Init(appId, secret);
                string token = WeChat.GetAccessToken();
                // A token is a bearer credential: log a prefix, never the whole thing.
                Console.WriteLine("access_token: " + token.Substring(0, Math.Min(8, token.Length)) + "... (" + token.Length + " chars)");
                Console.WriteLine("same instance on the next call: " + ReferenceEquals(token, WeChat.GetAccessToken()));
                Console.WriteLine("get_api_domain_ip: " + WeChat.GetApiDomainIp());
                return 0;
            }
            catch (WxTokenException e)
            {
                Console.Error.WriteLine("no access_token: " + e.Status + " errcode=" + e.ErrCode + " errmsg=" + e.ErrMsg);
                Console.Error.WriteLine(e.Message);
                return 1;
            }
        }
    }
}
