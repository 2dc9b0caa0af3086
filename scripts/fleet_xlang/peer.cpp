// The C++ peer of scripts/fleet_xlang.py (bindings/cpp/wx_token.hpp): same protocol as peer.c.
#include <wx_token.hpp>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

static std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

static std::uint64_t fnv1a(const std::string& s) {
    std::uint64_t h = 14695981039346656037ULL;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
    return h;
}

int main() {
    const std::string mp = env("WXF_MP"), wecom = env("WXF_WECOM");
    try {
        wx_token::options o, w;
        w.platform = "wecom";
        w.corpid = env("WXF_CORPID");
        w.agentid = std::stoull(env("WXF_AGENTID"));
        if (!env("WXF_CENTRAL").empty()) {
            o.central = w.central = env("WXF_CENTRAL");
            o.central_key = w.central_key = env("WXF_CENTRAL_KEY");
            wx_token::register_app(mp, o);
            wx_token::register_app(wecom, w);
        } else {
            o.api_base = w.api_base = env("WXF_API_BASE");
            o.endpoint = "classic";
            o.store = w.store = env("WXF_STORE");
            o.store_prefix = w.store_prefix = env("WXF_STORE_PREFIX");
            wx_token::register_app(mp, env("WXF_MP_SECRET"), o);
            wx_token::register_app(wecom, env("WXF_WECOM_SECRET"), w);
        }
    } catch (const std::exception& e) {
        std::cerr << "cpp: register: " << e.what() << "\n";
        return 1;
    }
    std::cout << "ready" << std::endl;
    while (!std::filesystem::exists(env("WXF_BARRIER"))) std::this_thread::sleep_for(std::chrono::milliseconds(2));

    std::mutex m;
    std::set<std::uint64_t> seen[3];
    bool failed = false;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++) {
        threads.emplace_back([&] {
            for (int i = 0; i < 5; i++) {
                try {
                    std::uint64_t fp[3] = {fnv1a(wx_token::get(mp)), fnv1a(wx_token::ticket(mp, wx_token::ticket_kind::jsapi)),
                                           fnv1a(wx_token::get(wecom))};
                    std::lock_guard<std::mutex> g(m);
                    for (int k = 0; k < 3; k++) seen[k].insert(fp[k]);
                } catch (const std::exception& e) {
                    std::lock_guard<std::mutex> g(m);
                    std::cerr << "cpp: " << e.what() << "\n";
                    failed = true;
                    return;
                }
            }
        });
    }
    for (auto& th : threads) th.join();
    if (failed || seen[0].size() != 1 || seen[1].size() != 1 || seen[2].size() != 1) {
        std::cerr << "cpp: the threads disagree or failed\n";
        return 1;
    }
    std::printf("mp_token %016" PRIx64 "\njsapi %016" PRIx64 "\nwecom_token %016" PRIx64 "\n", *seen[0].begin(),
                *seen[1].begin(), *seen[2].begin());
    wx_token::shutdown();
    return 0;
}
