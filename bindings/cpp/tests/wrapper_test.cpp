// Tests of wx_token.hpp against the real library and the real fake WeChat process.
//
// Needs WX_FAKE_URL=http://127.0.0.1:PORT (a running wx-fake-wechat; test.sh starts one).
// Each test adds its own app to the fake through /_fake/apps, so tests do not share tokens.
// Prints one line per test and then `N passed, N failed`; exits 1 if any failed.
#include <wx_token.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
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
std::string new_app_with(const std::string& name, const wx_token::options& opts) {
    const std::string appid = "wx_cpp_" + name + "_" + g_run;
    const std::string secret = "s3cret+ \"q\\" + name + "_" + g_run;  // needs escaping in JSON and in a query
    fake_app(appid, secret);
    wx_token::register_app(appid, secret, opts);
    return appid;
}

std::string new_app(const std::string& name, const char* endpoint = "classic") {
    return new_app_with(name, fake_options(endpoint));
}

// An app whose passive refreshes are not paced (the engine allows one per 30 s by default), for
// tests that report several tokens of one app in a row.
std::string new_unpaced_app(const std::string& name) {
    auto opts = fake_options("classic");
    opts.passive_refresh_interval_secs = 0;
    return new_app_with(name, opts);
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

// Runs `get` on `n` threads at once; what each returned, and how many threw.
std::vector<std::string> on_threads(std::size_t n, const std::function<std::string()>& get, int& errors) {
    std::vector<std::string> out(n);
    std::atomic<int> failed{0};
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
            try {
                out[i] = get();
            } catch (...) {
                ++failed;
            }
        });
    }
    for (auto& th : threads) th.join();
    errors = failed.load();
    return out;
}

void concurrent_gets_share_one_fetch() {
    const auto app = new_app("threads");
    fake_post("/_fake/config", "{\"delay_ms\":200}");  // make the threads overlap the fetch
    int errors = 0;
    const auto tokens = on_threads(8, [&] { return wx_token::get(app); }, errors);
    fake_post("/_fake/config", "{\"delay_ms\":0}");
    CHECK_EQ(errors, 0);
    CHECK_EQ(std::set<std::string>(tokens.begin(), tokens.end()).size(), std::size_t(1));
    CHECK_EQ(issued(app), 1);
}

// ---- options parity, stats, errcodes -------------------------------------------------------

// Every key of the library's options schema is a member of wx_token::options, of the type the
// schema gives, and every member is a key: a new engine option fails this until it is added.
void options_cover_the_schema() {
    const auto schema = wx_token::detail::parse_json(wx_token::options_schema());
    CHECK(schema && schema->kind == wx_token::detail::json::type::object);
    CHECK(schema->keys.size() >= 14);
    std::vector<std::string> members;
    // Each key names its own member: a copy-paste slip (f("lease_ms", store_sync_ms)) would
    // send one member under two keys and leave the other key unsettable, and the name checks
    // below would not see it.
    std::vector<const void*> addresses;
    wx_token::options{}.for_each_field([&](const char* name, const auto& member) {
        using T = std::decay_t<decltype(member)>;
        if (std::find(addresses.begin(), addresses.end(), &member) != addresses.end()) {
            throw failure(std::string("options key ") + name + " names a member another key already names");
        }
        addresses.push_back(&member);
        const auto* entry = schema->find(name);
        if (!entry) throw failure(std::string("options member ") + name + " is not in the library's schema");
        const auto* type = entry->find("type");
        CHECK(type != nullptr);
        const char* expected = std::is_same_v<T, std::string> ? "string" : "integer";
        if (type->string != expected) throw failure(std::string(name) + ": schema type " + type->string);
        members.emplace_back(name);
    });
    for (const auto& key : schema->keys) {
        if (std::find(members.begin(), members.end(), key) == members.end()) {
            throw failure("the library's option \"" + key + "\" has no member in wx_token::options");
        }
    }
}

// Each schema default, set through its member, is accepted by the library.
void options_defaults_register() {
    const auto schema = wx_token::detail::parse_json(wx_token::options_schema());
    CHECK(schema.has_value());
    wx_token::options o;
    o.store = "memory";
    std::string* strings[] = {&o.api_base, &o.endpoint, &o.store_prefix};
    const char* string_keys[] = {"api_base", "endpoint", "store_prefix"};
    for (std::size_t i = 0; i < 3; ++i) *strings[i] = schema->find(string_keys[i])->find("default")->string;
    std::optional<std::uint64_t>* ints[] = {&o.refresh_ahead_secs, &o.timeout_ms,    &o.retry_min_ms,
                                            &o.retry_max_ms,       &o.error_cooldown_ms, &o.store_sync_ms,
                                            &o.store_fallback_per_hour};
    const char* int_keys[] = {"refresh_ahead_secs", "timeout_ms",    "retry_min_ms",           "retry_max_ms",
                              "error_cooldown_ms",  "store_sync_ms", "store_fallback_per_hour"};
    for (std::size_t i = 0; i < 7; ++i) {
        *ints[i] = static_cast<std::uint64_t>(schema->find(int_keys[i])->find("default")->integer);
    }
    CHECK_EQ(*o.timeout_ms, std::uint64_t(5000));
    wx_token::register_app("wx_cpp_defaults_" + g_run, "s", o);
}

void options_json_new_members() {
    wx_token::options o;
    o.store = "redis://127.0.0.1:6379/0";
    o.store_prefix = "p:";
    o.lease_ms = 3000;
    o.store_sync_ms = 500;
    o.store_fallback_per_hour = 0;
    CHECK_EQ(o.to_json(), std::string("{\"store\":\"redis://127.0.0.1:6379/0\",\"store_prefix\":\"p:\",\"lease_ms\":3000,"
                                      "\"store_sync_ms\":500,\"store_fallback_per_hour\":0}"));
    wx_token::options c;
    c.central = "http://127.0.0.1:1";
    c.central_key = "k\"ey";
    CHECK_EQ(c.to_json(), std::string("{\"central\":\"http://127.0.0.1:1\",\"central_key\":\"k\\\"ey\"}"));
    // No secret without central: the library says so.
    const auto e = EXPECT_ERROR(invalid_argument, wx_token::register_app("wx_cpp_nosecret", wx_token::options{}));
    CHECK(!e.message().empty());
}

void stats_are_typed() {
    const auto app = new_app("stats");
    auto s = wx_token::stats(app);
    CHECK_EQ(s.fetches, std::uint64_t(0));
    CHECK(!s.last_fetch_seconds);
    (void)wx_token::get(app);
    s = wx_token::stats(app);
    CHECK_EQ(s.fetches, std::uint64_t(1));
    CHECK(s.last_fetch_seconds && *s.last_fetch_seconds > 0);
    CHECK(s.fetch_seconds_total >= *s.last_fetch_seconds);
    CHECK(s.failures.empty());
    const std::string wrong = "wx_cpp_stats_wrong_" + g_run;
    fake_app(wrong, "right");
    wx_token::register_app(wrong, "wrong", fake_options());
    EXPECT_ERROR(wechat_error, (void)wx_token::get(wrong));
    s = wx_token::stats(wrong);
    CHECK_EQ(s.failures.size(), std::size_t(1));
    CHECK_EQ(s.failures[0].status, WX_WECHAT_ERROR);
    CHECK_EQ(s.failures[0].status_name, std::string("WECHAT_ERROR"));
    CHECK_EQ(s.failures[0].errcode, 40125);
    CHECK_EQ(s.failures[0].count, std::uint64_t(1));
    EXPECT_ERROR(unknown_app, (void)wx_token::stats("wx_cpp_never_registered"));
}

void errcode_only_at_the_top_level_of_json() {
    CHECK_EQ(wx_token::errcode_in_json("{\"errcode\":40001,\"errmsg\":\"invalid credential\"}"), 40001LL);
    CHECK_EQ(wx_token::errcode_in_json(" {\"errmsg\":\"ok\", \"errcode\" : 42001 } "), 42001LL);
    CHECK_EQ(wx_token::errcode_in_json("{\"data\":{\"errcode\":40001},\"errcode\":0}"), 0LL);
    CHECK_EQ(wx_token::errcode_in_json("{\"list\":[{\"errcode\":40001}]}"), 0LL);
    CHECK_EQ(wx_token::errcode_in_json("{\"msg\":\"errcode\\\":40001\"}"), 0LL);
    CHECK_EQ(wx_token::errcode_in_json("{\"errcode\":\"40001\"}"), 0LL);
    CHECK_EQ(wx_token::errcode_in_json("errcode 40001"), 0LL);
    CHECK_EQ(wx_token::errcode_in_json("{\"errcode\":40001"), 0LL);
    CHECK_EQ(wx_token::errcode_in_json("{\"s\":\"\\u00e9\\ud83d\\ude00\",\"errcode\":40014}"), 40014LL);
    CHECK_EQ(wx_token::errcode_of(std::string("{\"errcode\":40001}")), 40001LL);
}

// A JSON string result: the fake's raw answer, read at its top level.
void with_token_string_result() {
    const auto app = new_app("strres", "stable");
    const std::string stale = wx_token::get(app);
    fake_post("/_fake/revoke", "{\"token\":\"" + stale + "\"}");
    int calls = 0;
    const std::string body = wx_token::with_token(app, [&](const std::string& token) {
        ++calls;
        return fake::request(g_fake, "GET", "/cgi-bin/get_api_domain_ip?access_token=" + token).body;
    });
    CHECK_EQ(calls, 2);
    CHECK(body.find("ip_list") != std::string::npos);
    // A nested errcode is not a rejection of the token.
    calls = 0;
    const std::string nested = wx_token::with_token(app, [&](const std::string&) {
        ++calls;
        return std::string("{\"errcode\":0,\"result\":{\"errcode\":40001}}");
    });
    CHECK_EQ(calls, 1);
    CHECK(!nested.empty());
}

struct sdk_error : std::runtime_error {
    int code;
    explicit sdk_error(int c) : std::runtime_error("sdk error " + std::to_string(c)), code(c) {}
};

// SDKs that throw on an errcode (as Senparc's ErrorJsonResultException does in C#).
void with_token_finds_the_rejection_in_an_exception() {
    const auto app = new_unpaced_app("exc");
    const auto by_type = [](const std::exception& e) -> long long {
        const auto* s = dynamic_cast<const sdk_error*>(&e);
        return s ? s->code : 0;
    };
    std::vector<std::string> seen;
    const int r = wx_token::with_token(
        app,
        [&](const std::string& token) {
            seen.push_back(token);
            if (seen.size() == 1) throw sdk_error(40001);
            return 0;
        },
        wx_token::default_errcode{}, by_type);
    CHECK_EQ(r, 0);
    CHECK_EQ(seen.size(), std::size_t(2));
    CHECK(seen[0] != seen[1]);
    CHECK_EQ(wx_token::get(app), seen[1]);
    // Any other exception propagates after one call.
    int calls = 0;
    bool caught = false;
    try {
        wx_token::with_token(
            app, [&](const std::string&) -> int { ++calls; throw sdk_error(45009); }, wx_token::default_errcode{},
            by_type);
    } catch (const sdk_error& e) {
        caught = e.code == 45009;
    }
    CHECK(caught && calls == 1);
    // A rejection in the second call's exception propagates: never a third call.
    calls = 0;
    caught = false;
    try {
        wx_token::with_token(
            app, [&](const std::string&) -> int { ++calls; throw std::runtime_error("{\"errcode\":42001}"); },
            wx_token::default_errcode{}, wx_token::errcode_in_what);
    } catch (const std::runtime_error&) {
        caught = true;
    }
    CHECK(caught);
    CHECK_EQ(calls, 2);
    // Non-standard exceptions, with an exception_ptr extractor.
    calls = 0;
    const int v = wx_token::with_token(
        app,
        [&](const std::string&) {
            if (++calls == 1) throw 40014;
            return 5;
        },
        wx_token::default_errcode{},
        [](std::exception_ptr ep) -> long long {
            try {
                std::rethrow_exception(ep);
            } catch (int code) {
                return code;
            } catch (...) {
                return 0;
            }
        });
    CHECK_EQ(v, 5);
    CHECK_EQ(calls, 2);
}

// ---- events ----------------------------------------------------------------------------------

struct recorded {
    std::mutex mu;
    std::vector<wx_token::event> events;
    std::vector<bool> token_served;  // whether get() worked from inside the handler, per event

    std::vector<wx_token::event> of(const std::string& app) {
        std::lock_guard<std::mutex> lock(mu);
        std::vector<wx_token::event> out;
        for (const auto& e : events) {
            if (e.app == app) out.push_back(e);
        }
        return out;
    }
};

bool eventually(int seconds, const std::function<bool()>& cond) {
    for (int i = 0; i < seconds * 50; ++i) {
        if (cond()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return cond();
}

// WeChat answers 40164 (IP not whitelisted) from the refresh ahead of expiry on: the handler
// hears it while the token is still served.
void events_report_a_40164_refresh_failure_before_expiry() {
    const std::string appid = "wx_cpp_ev40164_" + g_run;
    const std::string secret = "ev-secret-" + g_run;
    fake_app(appid, secret);
    auto rec = std::make_shared<recorded>();
    wx_token::set_event_handler(
        [rec, appid](const wx_token::event& e) {
            bool served = false;
            if (e.app == appid) {
                try {
                    served = !wx_token::get(e.app).empty();  // calling back into the library is fine
                } catch (const wx_token::error&) {
                }
            }
            std::lock_guard<std::mutex> lock(rec->mu);
            rec->events.push_back(e);
            rec->token_served.push_back(served);
        },
        wx_token::level::info);
    fake_post("/_fake/config", "{\"lifetime_secs\":4}");
    std::string token;
    try {
        auto o = fake_options();
        o.refresh_ahead_secs = 3;  // capped at half the lifetime: refresh 2 s after the fetch
        o.error_cooldown_ms = 400;
        wx_token::register_app(appid, secret, o);
        token = wx_token::get(appid);
    } catch (...) {
        fake_post("/_fake/config", "{\"lifetime_secs\":7200}");
        throw;
    }
    fake_post("/_fake/config", "{\"lifetime_secs\":7200}");
    fake_post("/_fake/faults", "{\"kind\":\"errcode\",\"errcode\":40164,\"errmsg\":\"invalid ip, not in whitelist\","
                               "\"appid\":\"" + appid + "\",\"count\":1000}");
    const bool failed = eventually(15, [&] {
        for (const auto& e : rec->of(appid)) {
            if (e.kind == "refresh_failed") return true;
        }
        return false;
    });
    fake::request(g_fake, "DELETE", "/_fake/faults");
    wx_token::clear_event_handler();
    CHECK(failed);
    std::lock_guard<std::mutex> lock(rec->mu);
    bool checked = false;
    for (std::size_t i = 0; i < rec->events.size(); ++i) {
        const auto& e = rec->events[i];
        CHECK(e.message.find(secret) == std::string::npos);
        CHECK(e.message.find(token) == std::string::npos);
        if (e.app != appid || e.kind != "refresh_failed" || checked) continue;
        checked = true;
        CHECK(e.level == wx_token::level::warn);
        CHECK_EQ(e.errcode, 40164);
        CHECK_EQ(e.status, WX_WECHAT_ERROR);
        CHECK(rec->token_served[i]);  // reported while the token was still good
    }
    CHECK(!rec->events.empty() && rec->events.front().kind == "token_fetched");
}

// A handler that throws does not disturb the library; nothing reaches Rust.
void throwing_event_handler_is_contained() {
    const auto before = wx_token::event_handler_exceptions();
    std::atomic<int> calls{0};
    wx_token::set_event_handler([&calls](const wx_token::event&) {
        if (++calls % 2) throw std::runtime_error("a logger that fails");
        throw 42;  // not even a std::exception
    });
    const auto app = new_unpaced_app("evthrow");
    const std::string t1 = wx_token::get(app);
    wx_token::invalidate(app, t1);
    const std::string t2 = wx_token::get(app);
    CHECK(t2 != t1);
    CHECK_EQ(calls.load(), 2);
    CHECK_EQ(wx_token::event_handler_exceptions() - before, std::uint64_t(2));
    // Replacing the handler from inside one would wait for itself: refused (and contained).
    wx_token::set_event_handler([](const wx_token::event&) { wx_token::clear_event_handler(); });
    wx_token::invalidate(app, t2);
    CHECK_EQ(wx_token::event_handler_exceptions() - before, std::uint64_t(3));
    wx_token::clear_event_handler();
    EXPECT_ERROR(invalid_argument, wx_token::set_event_handler([](const wx_token::event&) {},
                                                               static_cast<wx_token::level>(9)));
}

// ---- production modes: a Redis store, and client mode ----------------------------------------

std::string required_env(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v) throw failure(std::string(name) + " is not set (bindings/cpp/test.sh sets it)");
    return v;
}

std::string g_self;  // this program's path, to start a second process

// Runs this program again as another process of the fleet (see print_token), registered like
// this one, and returns what it printed.
std::string second_process(const std::string& appid, const std::string& secret, const wx_token::options& o,
                           const char* mode) {
    ::setenv("WX_CHILD_APPID", appid.c_str(), 1);
    ::setenv("WX_CHILD_SECRET", secret.c_str(), 1);
    ::setenv("WX_CHILD_OPTIONS", o.to_json().c_str(), 1);
    std::string out;
    FILE* child = ::popen((g_self + " " + mode).c_str(), "r");
    CHECK(child != nullptr);
    char buf[1024];
    while (std::fgets(buf, sizeof buf, child)) out += buf;
    CHECK_EQ(::pclose(child), 0);
    return out;
}

// Adds `appid` to the fake and registers it with the Redis store test.sh started; its options.
wx_token::options register_redis_app(const std::string& appid, const std::string& secret) {
    fake_app(appid, secret);
    auto o = fake_options();
    o.store = required_env("WX_REDIS_URL");
    o.store_prefix = "wx_cpp_test:";
    wx_token::register_app(appid, secret, o);
    return o;
}

// Two processes sharing one Redis store make one upstream fetch between them.
void redis_store_shared_between_processes() {
    const std::string appid = "wx_cpp_redis_" + g_run;
    const std::string secret = "redis-secret";
    const auto o = register_redis_app(appid, secret);
    const std::string mine = wx_token::get(appid);
    CHECK_EQ(second_process(appid, secret, o, "--print-token"), mine + "\n");
    CHECK_EQ(issued(appid), 1);
    CHECK(wx_token::stats(appid).fetches == 1);
}

// Client mode against the wx-tokend test.sh started (it holds WX_TOKEND_APPID's secret).
wx_token::options central_options() {
    wx_token::options o;
    o.central = required_env("WX_TOKEND_URL");
    o.central_key = required_env("WX_TOKEND_KEY");
    o.timeout_ms = 3000;
    return o;
}

// Client mode: no secret in this process; a real wx-tokend holds it.
void client_mode_against_wx_tokend() {
    const std::string appid = required_env("WX_TOKEND_APPID");
    auto o = central_options();
    wx_token::register_app(appid, o);
    const std::string token = wx_token::get(appid);
    CHECK_EQ(call_api(token), 0L);
    const auto current = fake::request(g_fake, "GET", "/_fake/current?appid=" + appid);
    CHECK_EQ(fake::json_string(current.body, "access_token"), token);
    // A wrong key is refused by the server.
    o.central_key = "not-the-key-0123456789";
    wx_token::register_app(appid + "_x", o);
    EXPECT_ERROR(invalid_argument, (void)wx_token::get(appid + "_x"));
}

// ---- JS-SDK tickets, signatures, WeCom ---------------------------------------------------------

// WeChat's documented example (JS-SDK documentation, appendix 1).
const char* const k_doc_ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";
const char* const k_page = "https://shop.example/item?id=5&from=timeline";

std::string fake_ticket(const std::string& owner, const char* kind) {
    const auto r = fake::request(g_fake, "GET", "/_fake/ticket?owner=" + owner + "&kind=" + kind);
    return r.status == 200 ? fake::json_string(r.body, "ticket") : std::string();
}

long long app_counter(const std::string& owner, const std::string& counter) {
    return fake::json_number(fake::request(g_fake, "GET", "/_fake/stats").body, counter, "\"" + owner + "\":{");
}

// The fake plays the browser's wx.config / wx.agentConfig with the object a server rendered.
bool browser_accepts(const std::string& config_json, const std::string& url) {
    const std::string body = config_json.substr(0, config_json.rfind('}')) + ",\"url\":" + json_str(url) + "}";
    const auto r = fake::request(g_fake, "POST", "/_fake/jssdk_check", body);
    return r.body.find("\"ok\":true") != std::string::npos;
}

std::string new_ticket_app(const std::string& name) { return new_unpaced_app(name); }

void jssdk_signature_documented_vector() {
    const std::string sig = wx_token::jssdk_signature(k_doc_ticket, "Wm3WZYTPz0wzccnW", "1414587457", "http://mp.weixin.qq.com");
    CHECK_EQ(sig, std::string("f4d90daf4b3bca3078ab155816175ba34c443a7b"));
    // The URL is cut at '#'; a different URL is a different signature.
    CHECK_EQ(wx_token::jssdk_signature(k_doc_ticket, "Wm3WZYTPz0wzccnW", "1414587457", "http://mp.weixin.qq.com#/cart"), sig);
    CHECK(wx_token::jssdk_signature(k_doc_ticket, "Wm3WZYTPz0wzccnW", "1414587457", "http://mp.weixin.qq.com/") != sig);
    EXPECT_ERROR(invalid_argument, (void)wx_token::jssdk_signature(k_doc_ticket, std::string("n\0x", 3), "1", "u"));
}

void card_signature_sorts_values() {
    std::vector<std::string> values = {"wx_card_ticket_T", "1414587457", "pFS7Fjg8kV1IdDz01r4SQwMkuCKc", "nonce-Z", "openid-a"};
    // sha1 of the values sorted and concatenated (python3: hashlib.sha1("".join(sorted(values)).encode())).
    const std::string expected = "8b0489f51d0a326259b35832385cdde93a182c6b";
    CHECK_EQ(wx_token::card_signature(values), expected);
    std::reverse(values.begin(), values.end());
    CHECK_EQ(wx_token::card_signature(values), expected);
    CHECK_EQ(wx_token::card_signature({"a", "B"}), std::string("2fd22ce656b849cb086889e5eacd1da49228eb0a"));  // sha1("Ba"): by bytes
    EXPECT_ERROR(invalid_argument, (void)wx_token::card_signature({}));
    EXPECT_ERROR(invalid_argument, (void)wx_token::card_signature(std::vector<std::string>(65, "x")));
}

void ticket_fetched_once_for_concurrent_callers() {
    const auto app = new_ticket_app("tk_conc");
    fake_post("/_fake/faults", "{\"kind\":\"slow\",\"delay_ms\":300,\"path\":\"/cgi-bin/ticket/getticket\"}");
    int errors = 0;
    const auto tickets = on_threads(8, [&] { return wx_token::ticket(app, wx_token::ticket_kind::jsapi); }, errors);
    CHECK_EQ(errors, 0);
    CHECK_EQ(std::set<std::string>(tickets.begin(), tickets.end()).size(), std::size_t(1));
    CHECK_EQ(tickets[0], fake_ticket(app, "jsapi"));
    CHECK_EQ(app_counter(app, "ticket_requests"), 1LL);
    CHECK_EQ(issued(app), 1);
    CHECK(wx_token::ticket(app, wx_token::ticket_kind::wx_card) != tickets[0]);
    CHECK_EQ(wx_token::ticket(app, wx_token::ticket_kind::wx_card), fake_ticket(app, "wx_card"));
    EXPECT_ERROR(invalid_argument, (void)wx_token::ticket(app, wx_token::ticket_kind::agent_config));  // WeCom only
}

void jssdk_config_passes_the_browser_check() {
    const auto app = new_ticket_app("tk_cfg");
    const std::string url = std::string(k_page) + "#/detail";
    const auto cfg = wx_token::jssdk_config(app, url);
    CHECK_EQ(cfg.app_id, app);
    CHECK(cfg.corpid.empty());
    CHECK_EQ(cfg.signature.size(), std::size_t(40));
    CHECK_EQ(cfg.nonce_str.size(), std::size_t(16));
    CHECK(browser_accepts(cfg.json, url));
    CHECK(browser_accepts(cfg.json, k_page));
    CHECK(!browser_accepts(cfg.json, std::string(k_page) + "&other=1"));  // the check can fail
    const std::string rendered = cfg.to_json({"chooseImage", "</script>"});
    CHECK(rendered.find("\"jsApiList\":[\"chooseImage\",\"\\u003c/script\\u003e\"]") != std::string::npos);
    CHECK(browser_accepts(rendered, url));
    CHECK_EQ(wx_token::jssdk_signature(wx_token::ticket(app), cfg.nonce_str, cfg.timestamp, url), cfg.signature);
    CHECK(wx_token::jssdk_config(app, url).nonce_str != cfg.nonce_str);
    CHECK_EQ(app_counter(app, "ticket_requests"), 1LL);
    EXPECT_ERROR(invalid_argument, (void)wx_token::jssdk_config(app, ""));
    EXPECT_ERROR(invalid_argument, (void)wx_token::jssdk_config(app, url, wx_token::ticket_kind::wx_card));
}

void invalidate_ticket_compares_before_replacing() {
    const auto app = new_ticket_app("tk_inval");
    const std::string t1 = wx_token::ticket(app);
    wx_token::invalidate_ticket(app, wx_token::ticket_kind::jsapi, "some-older-ticket");
    CHECK_EQ(app_counter(app, "ticket_requests"), 1LL);
    // The cached ticket reported: asked for again at once. WeChat still calls it valid and hands
    // it back, so it stays in service. (Not /_fake/expire_tickets here: it would expire the
    // tickets wx-tokend keeps for the central app across this suite's two runs.)
    wx_token::invalidate_ticket(app, wx_token::ticket_kind::jsapi, t1);
    CHECK_EQ(app_counter(app, "ticket_requests"), 2LL);
    CHECK_EQ(wx_token::ticket(app), t1);
    CHECK_EQ(t1, fake_ticket(app, "jsapi"));
    EXPECT_ERROR(invalid_argument, wx_token::invalidate_ticket(app, wx_token::ticket_kind::jsapi, std::string("t\0x", 3)));
    CHECK_EQ(app_counter(app, "ticket_requests"), 2LL);
}

void wecom_one_id_per_secret_tickets_apart() {
    const std::string corp = "wwcpp" + g_run;
    fake_post("/_fake/wecom", "{\"corpid\":\"" + corp + "\",\"secret\":\"approval-secret\",\"agentid\":1000002}");
    fake_post("/_fake/wecom", "{\"corpid\":\"" + corp + "\",\"secret\":\"contacts-secret\"}");
    wx_token::options o;
    o.api_base = g_fake;
    o.platform = "wecom";
    o.corpid = corp;
    o.timeout_ms = 3000;
    wx_token::register_app(corp + ".contacts", "contacts-secret", o);
    o.agentid = 1000002;
    wx_token::register_app(corp + ".approval", "approval-secret", o);
    const std::string ta = wx_token::get(corp + ".approval"), tc = wx_token::get(corp + ".contacts");
    CHECK(ta != tc);
    CHECK_EQ(app_counter(corp, "wecom_token_requests"), 2LL);
    const std::string corp_ticket = wx_token::ticket(corp + ".approval", wx_token::ticket_kind::jsapi);
    const std::string agent_ticket = wx_token::ticket(corp + ".approval", wx_token::ticket_kind::agent_config);
    CHECK(corp_ticket != agent_ticket);
    CHECK_EQ(corp_ticket, fake_ticket(corp, "corp_jsapi"));
    CHECK_EQ(agent_ticket, fake_ticket(corp + "/1000002", "agent_config"));
    CHECK_EQ(wx_token::ticket(corp + ".approval"), corp_ticket);
    EXPECT_ERROR(invalid_argument, (void)wx_token::jssdk_config(corp + ".contacts", k_page, wx_token::ticket_kind::agent_config));
    const auto cfg = wx_token::jssdk_config(corp + ".approval", k_page);
    CHECK_EQ(cfg.app_id, corp);
    CHECK(browser_accepts(cfg.json, k_page));
    const auto agent = wx_token::jssdk_config(corp + ".approval", k_page, wx_token::ticket_kind::agent_config);
    CHECK_EQ(agent.corpid, corp);
    CHECK_EQ(agent.agentid, std::string("1000002"));
    CHECK(browser_accepts(agent.json, k_page));
    std::string wrong = agent.json;
    wrong.replace(wrong.find(agent.signature), agent.signature.size(),
                  wx_token::jssdk_signature(corp_ticket, agent.nonce_str, agent.timestamp, k_page));
    CHECK(!browser_accepts(wrong, k_page));  // signed with the corp ticket: refused
}

// Two processes sharing one Redis store fetch one ticket between them.
void redis_ticket_shared_between_processes() {
    const std::string appid = "wx_cpp_redis_tk_" + g_run;
    const std::string secret = "redis-secret";
    const auto o = register_redis_app(appid, secret);
    const std::string mine = wx_token::ticket(appid);
    CHECK_EQ(second_process(appid, secret, o, "--print-ticket"), mine + "\n");
    CHECK_EQ(app_counter(appid, "ticket_requests"), 1LL);
    CHECK_EQ(issued(appid), 1);
}

// Client mode: tickets and wx.config from a real wx-tokend, no secret in this process.
void client_mode_tickets_against_wx_tokend() {
    const std::string appid = required_env("WX_TOKEND_APPID");
    auto o = central_options();
    wx_token::register_app(appid, o);
    CHECK_EQ(wx_token::ticket(appid), fake_ticket(appid, "jsapi"));
    const auto cfg = wx_token::jssdk_config(appid, k_page);
    CHECK_EQ(cfg.app_id, appid);
    CHECK(browser_accepts(cfg.json, k_page));
}

// The child half of redis_store_shared_between_processes.
int print_token(bool ticket) {
    try {
        const std::string appid = required_env("WX_CHILD_APPID");
        const std::string json = required_env("WX_CHILD_OPTIONS");
        if (::wx_token_register(appid.c_str(), required_env("WX_CHILD_SECRET").c_str(), json.c_str()) != WX_OK) return 3;
        std::cout << (ticket ? wx_token::ticket(appid) : wx_token::get(appid)) << "\n";
        wx_token::shutdown();
        return 0;
    } catch (const std::exception& e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
}

struct test_case {
    const char* name;
    void (*fn)();
};

}  // namespace

int main(int argc, char** argv) {
    g_self = argv[0];
    if (argc == 2 && std::string(argv[1]) == "--print-token") return print_token(false);
    if (argc == 2 && std::string(argv[1]) == "--print-ticket") return print_token(true);
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
        {"options_cover_the_schema", options_cover_the_schema},
        {"options_defaults_register", options_defaults_register},
        {"options_json_new_members", options_json_new_members},
        {"stats_are_typed", stats_are_typed},
        {"errcode_only_at_the_top_level_of_json", errcode_only_at_the_top_level_of_json},
        {"with_token_string_result", with_token_string_result},
        {"with_token_finds_the_rejection_in_an_exception", with_token_finds_the_rejection_in_an_exception},
        {"events_report_a_40164_refresh_failure_before_expiry", events_report_a_40164_refresh_failure_before_expiry},
        {"throwing_event_handler_is_contained", throwing_event_handler_is_contained},
        {"redis_store_shared_between_processes", redis_store_shared_between_processes},
        {"client_mode_against_wx_tokend", client_mode_against_wx_tokend},
        {"jssdk_signature_documented_vector", jssdk_signature_documented_vector},
        {"card_signature_sorts_values", card_signature_sorts_values},
        {"ticket_fetched_once_for_concurrent_callers", ticket_fetched_once_for_concurrent_callers},
        {"jssdk_config_passes_the_browser_check", jssdk_config_passes_the_browser_check},
        {"invalidate_ticket_compares_before_replacing", invalidate_ticket_compares_before_replacing},
        {"wecom_one_id_per_secret_tickets_apart", wecom_one_id_per_secret_tickets_apart},
        {"redis_ticket_shared_between_processes", redis_ticket_shared_between_processes},
        {"client_mode_tickets_against_wx_tokend", client_mode_tickets_against_wx_tokend},
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
