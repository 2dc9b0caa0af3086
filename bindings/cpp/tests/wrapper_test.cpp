// Tests of wx_token.hpp against the real library and the real fake WeChat process.
//
// Needs WX_FAKE_URL=http://127.0.0.1:PORT (a running wx-fake-wechat; test.sh starts one).
// Each test adds its own app to the fake through /_fake/apps, so tests do not share tokens.
// Prints one line per test and then `N passed, N failed`; exits 1 if any failed.
#include <wx_token.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <unistd.h>

#include "fake_client.hpp"

namespace {

std::string g_fake;  // base URL of the fake
// Appended to the appids a test adds to the fake, so runs sharing one fake (test.sh runs the
// shared and the static build) never see each other's tokens or counters.
const std::string g_run = std::to_string(::getpid());

struct failure : std::exception {
    std::string msg;
    explicit failure(std::string m) : msg(std::move(m)) {}
    const char* what() const noexcept override { return msg.c_str(); }
};

#define CHECK(cond)                                                                                  \
    do {                                                                                             \
        if (!(cond)) throw failure(std::string(__FILE__ ":") + std::to_string(__LINE__) + ": " #cond); \
    } while (0)

#define CHECK_EQ(a, b)                                                                              \
    do {                                                                                            \
        const auto& va_ = (a);                                                                      \
        const auto& vb_ = (b);                                                                      \
        if (!(va_ == vb_)) {                                                                        \
            std::ostringstream os_;                                                                 \
            os_ << __FILE__ ":" << __LINE__ << ": " #a " == " #b ": " << va_ << " != " << vb_;     \
            throw failure(os_.str());                                                               \
        }                                                                                           \
    } while (0)

// Runs `body`, which must throw wx_token::error with status `st`; returns it.
wx_token::error expect_error(wx_token::status st, const std::function<void()>& body, int line) {
    try {
        body();
    } catch (const wx_token::error& e) {
        if (!e.is(st)) {
            throw failure("line " + std::to_string(line) + ": expected status " +
                          wx_token::status_name(static_cast<int>(st)) + ", got " + e.what());
        }
        return e;
    }
    throw failure("line " + std::to_string(line) + ": expected wx_token::error " +
                  wx_token::status_name(static_cast<int>(st)) + ", nothing thrown");
}
#define EXPECT_ERROR(st, ...) expect_error(wx_token::status::st, [&] { __VA_ARGS__; }, __LINE__)

std::string json_str(const std::string& s) {
    std::string out;
    wx_token::options::append_json_string(out, s);
    return out;
}

// Adds `appid` with `secret` to the fake.
void fake_app(const std::string& appid, const std::string& secret) {
    const auto r = fake::request(g_fake, "POST", "/_fake/apps",
                                 "{\"appid\":" + json_str(appid) + ",\"secret\":" + json_str(secret) + "}");
    if (r.status != 200) throw failure("POST /_fake/apps: " + std::to_string(r.status) + " " + r.body);
}

void fake_post(const std::string& path, const std::string& body) {
    const auto r = fake::request(g_fake, "POST", path, body);
    if (r.status != 200) throw failure("POST " + path + ": " + std::to_string(r.status) + " " + r.body);
}

long long issued(const std::string& appid) {
    return fake::json_number(fake::request(g_fake, "GET", "/_fake/stats").body, "issued", "\"" + appid + "\"");
}

wx_token::options fake_options(const char* endpoint = "classic") {
    wx_token::options o;
    o.api_base = g_fake;
    o.endpoint = endpoint;
    o.timeout_ms = 3000;
    return o;
}

// A fresh app known to the fake and registered with the library.
std::string new_app(const std::string& name, const char* endpoint = "classic") {
    const std::string appid = "wx_cpp_" + name + "_" + g_run;
    const std::string secret = "s3cret+ \"q\\" + name + "_" + g_run;  // needs escaping in JSON and in a query
    fake_app(appid, secret);
    wx_token::register_app(appid, secret, fake_options(endpoint));
    return appid;
}

// The fake's business API: WeChat's errcode for this token (0 = accepted).
long call_api(const std::string& token) {
    const auto r = fake::request(g_fake, "GET", "/cgi-bin/get_api_domain_ip?access_token=" + token);
    return static_cast<long>(fake::json_number(r.body, "errcode") < 0 ? 0 : fake::json_number(r.body, "errcode"));
}

// ---------------------------------------------------------------------------------------------

void version_and_status_names() {
    const std::string v = wx_token::version();
    CHECK(!v.empty());
    CHECK(v.find('.') != std::string::npos);
    CHECK_EQ(std::string(wx_token::status_name(WX_OK)), std::string("OK"));
    CHECK_EQ(std::string(wx_token::status_name(static_cast<int>(wx_token::status::rate_limited))),
             std::string("RATE_LIMITED"));
    CHECK_EQ(std::string(wx_token::status_name(9999)), std::string("UNKNOWN"));
}

void options_json() {
    CHECK_EQ(wx_token::options{}.to_json(), std::string("{}"));
    wx_token::options o;
    o.api_base = "http://127.0.0.1:1";
    o.endpoint = "classic";
    o.refresh_ahead_secs = 60;
    o.timeout_ms = 2000;
    o.retry_min_ms = 0;
    o.retry_max_ms = 18446744073709551615ULL;
    o.error_cooldown_ms = 1;
    CHECK_EQ(o.to_json(), std::string("{\"api_base\":\"http://127.0.0.1:1\",\"endpoint\":\"classic\","
                                      "\"refresh_ahead_secs\":60,\"timeout_ms\":2000,\"retry_min_ms\":0,"
                                      "\"retry_max_ms\":18446744073709551615,\"error_cooldown_ms\":1}"));
    wx_token::options t;
    t.timeout_ms = 5;
    CHECK_EQ(t.to_json(), std::string("{\"timeout_ms\":5}"));
}

void options_json_escaping() {
    wx_token::options o;
    o.endpoint = std::string("a\"b\\c\nd\te\x01\x1f/\xe5\xbe\xae");
    CHECK_EQ(o.to_json(), std::string("{\"endpoint\":\"a\\\"b\\\\c\\nd\\te\\u0001\\u001f/\xe5\xbe\xae\"}"));
    // Escaped properly, the library sees a well-formed object and rejects the value itself.
    const auto e = EXPECT_ERROR(invalid_argument, wx_token::register_app("wx_cpp_esc", "s", o));
    CHECK(e.message().find("endpoint") != std::string::npos);
}

void register_rejects_bad_options() {
    wx_token::options o;
    o.endpoint = "bogus";
    const auto e = EXPECT_ERROR(invalid_argument, wx_token::register_app("wx_cpp_bad", "s", o));
    CHECK_EQ(e.errcode(), 0);
    CHECK(std::string(e.what()).find("INVALID_ARGUMENT") != std::string::npos);
    CHECK(std::string(e.what()).find("wx_token_register") != std::string::npos);
    CHECK(!e.message().empty());
    wx_token::options plain;
    plain.api_base = "http://example.com";  // plain http only for loopback
    EXPECT_ERROR(invalid_argument, wx_token::register_app("wx_cpp_bad", "s", plain));
    EXPECT_ERROR(invalid_argument, wx_token::register_app("", "s"));
}

void embedded_nul_rejected() {
    const std::string with_nul("wx_cpp\0x", 8);
    auto e = EXPECT_ERROR(invalid_argument, wx_token::register_app(with_nul, "s"));
    CHECK(e.message().find("NUL") != std::string::npos);
    EXPECT_ERROR(invalid_argument, wx_token::register_app("wx_cpp_nul", std::string("s\0t", 3)));
    EXPECT_ERROR(invalid_argument, (void)wx_token::get(with_nul));
    EXPECT_ERROR(invalid_argument, wx_token::invalidate("wx_cpp_nul", std::string("t\0k", 3)));
}

void unknown_app() {
    const auto e = EXPECT_ERROR(unknown_app, (void)wx_token::get("wx_cpp_never_registered"));
    CHECK_EQ(e.errcode(), 0);
    EXPECT_ERROR(unknown_app, wx_token::force_refresh("wx_cpp_never_registered"));
}

void get_fetches_once_then_caches() {
    const auto app = new_app("get");
    const std::string t1 = wx_token::get(app);
    const std::string t2 = wx_token::get(app);
    CHECK_EQ(t1.size(), std::size_t(136));  // the fake's default token length
    CHECK_EQ(t1, t2);
    CHECK_EQ(issued(app), 1);
    const auto info = wx_token::get_info(app);
    CHECK_EQ(info.token, t1);
    CHECK(info.generation != 0);
    CHECK(info.expires_in.count() > 7000 * 1000 && info.expires_in.count() <= 7200 * 1000);
    CHECK_EQ(call_api(t1), 0L);
}

void reregister_keeps_token() {
    const auto app = new_app("rereg");
    const std::string t1 = wx_token::get(app);
    auto o = fake_options();
    o.refresh_ahead_secs = 120;
    wx_token::register_app(app, std::string("s3cret+ \"q\\") + "rereg_" + g_run, o);  // same secret and base
    CHECK_EQ(wx_token::get(app), t1);
}

void wrong_secret_is_wechat_error() {
    const std::string appid = "wx_cpp_wrong_" + g_run;
    fake_app(appid, "right");
    wx_token::register_app(appid, "Wrong-Secret-xyz", fake_options());
    const auto e = EXPECT_ERROR(wechat_error, (void)wx_token::get(appid));
    CHECK_EQ(e.errcode(), 40125);
    CHECK(std::string(e.what()).find("Wrong-Secret-xyz") == std::string::npos);
    CHECK(e.message().find("Wrong-Secret-xyz") == std::string::npos);
    // Within the cooldown the same error comes from memory.
    const auto again = EXPECT_ERROR(wechat_error, (void)wx_token::get(appid));
    CHECK_EQ(again.errcode(), 40125);
}

void network_error() {
    wx_token::options o;
    o.api_base = "http://127.0.0.1:1";  // nothing listens there
    o.endpoint = "classic";
    o.timeout_ms = 2000;
    wx_token::register_app("wx_cpp_net", "s", o);
    const auto e = EXPECT_ERROR(network, (void)wx_token::get("wx_cpp_net"));
    CHECK_EQ(e.errcode(), 0);
    CHECK(!e.message().empty());
}

void error_is_a_runtime_error() {
    bool caught = false;
    try {
        (void)wx_token::get("wx_cpp_never_registered");
    } catch (const std::runtime_error& e) {
        caught = std::string(e.what()).find("UNKNOWN_APP") != std::string::npos;
    }
    CHECK(caught);
}

void longest_token_and_too_long_token() {
    fake_post("/_fake/config", "{\"token_len\":512}");
    std::string t;
    try {
        const auto app = new_app("len512");
        t = wx_token::get(app);
        fake_post("/_fake/config", "{\"token_len\":513}");
        const auto app2 = new_app("len513");
        EXPECT_ERROR(protocol, (void)wx_token::get(app2));
    } catch (...) {
        fake_post("/_fake/config", "{\"token_len\":136}");
        throw;
    }
    fake_post("/_fake/config", "{\"token_len\":136}");
    CHECK_EQ(t.size(), std::size_t(WX_TOKEN_MAX_LEN));
    CHECK_EQ(call_api(t), 0L);
}

void invalidate_replaces_current_token_only() {
    const auto app = new_app("inval");
    const std::string t1 = wx_token::get(app);
    wx_token::invalidate(app, t1);
    const std::string t2 = wx_token::get(app);
    CHECK(t2 != t1);
    CHECK_EQ(issued(app), 2);
    wx_token::invalidate(app, t1);  // stale already: nothing happens
    CHECK_EQ(wx_token::get(app), t2);
    CHECK_EQ(issued(app), 2);
}

void force_refresh_then_rate_limited() {
    const auto app = new_app("force", "stable");
    const std::string t1 = wx_token::get(app);
    wx_token::force_refresh(app);
    const std::string t2 = wx_token::get(app);
    CHECK(t2 != t1);
    CHECK_EQ(call_api(t2), 0L);
    const auto e = EXPECT_ERROR(rate_limited, wx_token::force_refresh(app));  // one per 30 s
    CHECK_EQ(wx_token::get(app), t2);
    CHECK(!e.message().empty());
}

void with_token_retries_once_after_revoked_token() {
    const auto app = new_app("revoked", "stable");
    const std::string stale = wx_token::get(app);
    fake_post("/_fake/revoke", "{\"token\":\"" + stale + "\"}");
    std::vector<std::string> seen;
    const long errcode = wx_token::with_token(app, [&](const std::string& token) {
        seen.push_back(token);
        return call_api(token);
    });
    CHECK_EQ(errcode, 0L);
    CHECK_EQ(seen.size(), std::size_t(2));
    CHECK_EQ(seen[0], stale);
    CHECK(seen[1] != stale);
    CHECK_EQ(wx_token::get(app), seen[1]);
}

void with_token_after_expiry() {
    const auto app = new_app("expired");
    const std::string t1 = wx_token::get(app);
    fake_post("/_fake/expire", "{\"appid\":\"" + app + "\"}");
    int calls = 0;
    const auto r = wx_token::with_token(app, [&](const std::string& token) {
        ++calls;
        return std::make_pair(token, call_api(token));
    });
    CHECK_EQ(calls, 2);
    CHECK_EQ(r.second, 0L);
    CHECK(r.first != t1);
}

void with_token_gives_up_after_second_rejection() {
    const auto app = new_app("giveup");
    std::vector<std::string> seen;
    const int e = wx_token::with_token(app, [&](const std::string& token) {
        seen.push_back(token);
        return 40001;
    });
    CHECK_EQ(e, 40001);
    CHECK_EQ(seen.size(), std::size_t(2));
    CHECK(seen[0] != seen[1]);
}

void with_token_no_retry_otherwise() {
    const auto app = new_app("noretry");
    for (int code : {0, 45009, -1, 40125, 41001}) {
        int calls = 0;
        const int e = wx_token::with_token(app, [&](const std::string&) {
            ++calls;
            return code;
        });
        CHECK_EQ(e, code);
        CHECK_EQ(calls, 1);
    }
    CHECK_EQ(issued(app), 1);
    for (int code : {40001, 42001, 40014}) CHECK(wx_token::is_token_errcode(code));
    CHECK(!wx_token::is_token_errcode(0));
}

struct reply {
    std::string body;
    int errcode = 0;
};

struct opaque {
    int code;
};

void with_token_result_shapes() {
    const auto app = new_app("shapes");
    int calls = 0;
    // A struct with an `errcode` member.
    const reply r = wx_token::with_token(app, [&](const std::string&) {
        return reply{"x", ++calls == 1 ? 42001 : 0};
    });
    CHECK_EQ(calls, 2);
    CHECK_EQ(r.errcode, 0);
    CHECK_EQ(r.body, std::string("x"));
    // A tuple whose last element is the errcode. (A fresh app for each shape: the engine paces
    // passive refreshes of one app to one per 30 s.)
    calls = 0;
    const auto t = wx_token::with_token(new_app("shapes_tuple"), [&](const std::string& tok) {
        return std::make_tuple(tok.size(), std::string("y"), ++calls == 1 ? 40014L : 0L);
    });
    CHECK_EQ(calls, 2);
    CHECK_EQ(std::get<2>(t), 0L);
    // An explicit extractor for a type the wrapper knows nothing about.
    calls = 0;
    const opaque o = wx_token::with_token(
        new_app("shapes_opaque"), [&](const std::string&) { return opaque{++calls == 1 ? 40001 : 7}; },
        [](const opaque& x) { return x.code; });
    CHECK_EQ(calls, 2);
    CHECK_EQ(o.code, 7);
    CHECK_EQ(wx_token::errcode_of(std::make_pair(1, 40001)), 40001LL);
    CHECK_EQ(wx_token::errcode_of(reply{"", 5}), 5LL);
}

void with_token_propagates_exceptions() {
    const auto app = new_app("throws");
    int calls = 0;
    bool caught = false;
    try {
        wx_token::with_token(app, [&](const std::string&) -> int {
            ++calls;
            throw std::logic_error("from the call");
        });
    } catch (const std::logic_error& e) {
        caught = std::string(e.what()) == "from the call";
    }
    CHECK(caught);
    CHECK_EQ(calls, 1);
    // A token error from the library itself is thrown before the call is made.
    calls = 0;
    EXPECT_ERROR(unknown_app, wx_token::with_token("wx_cpp_never_registered", [&](const std::string&) {
                     return ++calls;
                 }));
    CHECK_EQ(calls, 0);
}

void concurrent_gets_share_one_fetch() {
    const auto app = new_app("threads");
    fake_post("/_fake/config", "{\"delay_ms\":200}");  // make the threads overlap the fetch
    std::vector<std::string> tokens(8);
    std::atomic<int> errors{0};
    {
        std::vector<std::thread> threads;
        for (std::size_t i = 0; i < tokens.size(); ++i) {
            threads.emplace_back([&, i] {
                try {
                    tokens[i] = wx_token::get(app);
                } catch (...) {
                    ++errors;
                }
            });
        }
        for (auto& th : threads) th.join();
    }
    fake_post("/_fake/config", "{\"delay_ms\":0}");
    CHECK_EQ(errors.load(), 0);
    CHECK_EQ(std::set<std::string>(tokens.begin(), tokens.end()).size(), std::size_t(1));
    CHECK_EQ(issued(app), 1);
}

struct test_case {
    const char* name;
    void (*fn)();
};

}  // namespace

int main() {
    const char* url = std::getenv("WX_FAKE_URL");
    if (!url || !*url) {
        std::cerr << "wrapper_test: set WX_FAKE_URL to a running wx-fake-wechat (bindings/cpp/test.sh does)\n";
        return 2;
    }
    g_fake = url;
    const test_case tests[] = {
        {"version_and_status_names", version_and_status_names},
        {"options_json", options_json},
        {"options_json_escaping", options_json_escaping},
        {"register_rejects_bad_options", register_rejects_bad_options},
        {"embedded_nul_rejected", embedded_nul_rejected},
        {"unknown_app", unknown_app},
        {"get_fetches_once_then_caches", get_fetches_once_then_caches},
        {"reregister_keeps_token", reregister_keeps_token},
        {"wrong_secret_is_wechat_error", wrong_secret_is_wechat_error},
        {"network_error", network_error},
        {"error_is_a_runtime_error", error_is_a_runtime_error},
        {"longest_token_and_too_long_token", longest_token_and_too_long_token},
        {"invalidate_replaces_current_token_only", invalidate_replaces_current_token_only},
        {"force_refresh_then_rate_limited", force_refresh_then_rate_limited},
        {"with_token_retries_once_after_revoked_token", with_token_retries_once_after_revoked_token},
        {"with_token_after_expiry", with_token_after_expiry},
        {"with_token_gives_up_after_second_rejection", with_token_gives_up_after_second_rejection},
        {"with_token_no_retry_otherwise", with_token_no_retry_otherwise},
        {"with_token_result_shapes", with_token_result_shapes},
        {"with_token_propagates_exceptions", with_token_propagates_exceptions},
        {"concurrent_gets_share_one_fetch", concurrent_gets_share_one_fetch},
    };
    int passed = 0, failed = 0;
    for (const auto& t : tests) {
        try {
            t.fn();
            ++passed;
            std::cout << "ok   " << t.name << "\n";
        } catch (const std::exception& e) {
            ++failed;
            std::cout << "FAIL " << t.name << ": " << e.what() << "\n";
        }
    }
    wx_token::shutdown();
    std::cout << passed << " passed, " << failed << " failed\n";
    return failed == 0 ? 0 : 1;
}
