// get_token.cpp: get an access_token and call a WeChat API with it, with the C++ wrapper.
//
// Against the project's fake WeChat (default):
//     wx-fake-wechat --listen 127.0.0.1:8088 &      # registers wx_demo_appid / demo_secret
//     ./get_token_cpp                                # or WX_API_BASE=http://127.0.0.1:PORT
// Against the real WeChat (needs the libcurl build, see example_http.h):
//     WX_APPID=wx... WX_SECRET=... ./get_token_cpp
//
// wx_token::with_token does the passive refresh: if WeChat rejects the token with 40001,
// 42001 or 40014, the token is invalidated and the call made once more with a new one.
// Exit status: 0 on success, 1 on a failure, 2 on bad configuration.
#include <wx_token.hpp>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "example_http.h"

namespace {

// What one WeChat API call gave: the body and WeChat's errcode (0 = success). Its `errcode`
// member is what with_token looks at.
struct api_reply {
    std::string body;
    long errcode = 0;
    std::string transport_error;  // set when the HTTP request itself failed
};

api_reply get_api_domain_ip(const std::string& api_base, const std::string& token) {
    api_reply r;
    std::unique_ptr<char, decltype(&std::free)> url(wx_example_api_url(api_base.c_str(), token.c_str()), &std::free);
    char* body = nullptr;
    char err[256];
    if (!url || wx_example_http_get(url.get(), &body, err, sizeof err) != 0) {
        r.transport_error = url ? err : "out of memory";
        return r;
    }
    std::unique_ptr<char, decltype(&std::free)> owned(body, &std::free);
    r.body = body;
    r.errcode = wx_example_errcode(body);
    return r;
}

std::string env(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v ? v : fallback;
}

}  // namespace

int main() {
    const bool real = std::getenv("WX_APPID") && std::getenv("WX_SECRET");
    const std::string appid = real ? env("WX_APPID", "") : "wx_demo_appid";
    const std::string secret = real ? env("WX_SECRET", "") : "demo_secret";

    wx_token::options opts;
    opts.api_base = env("WX_API_BASE", real ? "https://api.weixin.qq.com" : "http://127.0.0.1:8088");
    // The demo credentials are for the local fake only (plain http, which the library allows
    // only on loopback); never send them to WeChat.
    if (!real && opts.api_base.rfind("http://", 0) != 0) {
        std::cerr << "set WX_APPID and WX_SECRET to use " << opts.api_base << "\n";
        return 2;
    }
    opts.endpoint = env("WX_ENDPOINT", "stable");
    opts.timeout_ms = 5000;

    std::cout << "wx_token " << wx_token::version() << ", app " << appid << ", " << opts.api_base
              << " (HTTP: " << WX_EXAMPLE_HTTP_CLIENT << ")\n";
    if (wx_example_http_init() != 0) {
        std::cerr << "HTTP client initialisation failed\n";
        return 1;
    }
    int rc = 1;
    try {
        wx_token::register_app(appid, secret, opts);
        int calls = 0;
        api_reply reply = wx_token::with_token(appid, [&](const std::string& token) {
            ++calls;
            std::cout << (calls == 1 ? "token: " : "new token: ") << token.substr(0, 6) << "... (" << token.size()
                      << " bytes)\n";
            return get_api_domain_ip(opts.api_base, token);
        });
        if (calls > 1) std::cout << "WeChat rejected the first token: passive refresh\n";
        if (!reply.transport_error.empty()) {
            std::cerr << "WeChat API call failed: " << reply.transport_error << "\n";
        } else if (reply.errcode != 0) {
            std::cerr << "WeChat API error " << reply.errcode << ": " << reply.body << "\n";
        } else {
            std::cout << "get_api_domain_ip: " << reply.body << "\n";
            rc = 0;
        }
    } catch (const wx_token::error& e) {
        // e.status(): WX_* status; e.errcode(): WeChat's errcode (e.g. 40125: wrong secret).
        std::cerr << e.what() << " (errcode " << e.errcode() << ")\n";
        rc = e.is(wx_token::status::invalid_argument) ? 2 : 1;
    }
    wx_token::shutdown();  // joins the background refresher before exit
    wx_example_http_cleanup();
    return rc;
}
