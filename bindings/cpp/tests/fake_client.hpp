// fake_client.hpp: a tiny blocking HTTP/1.0 client for the tests, to steer the fake WeChat
// (/_fake/*) and call its business API. Plain http:// on loopback only.
#ifndef WX_TOKEN_TEST_FAKE_CLIENT_HPP
#define WX_TOKEN_TEST_FAKE_CLIENT_HPP

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace fake {

struct response {
    int status = 0;
    std::string body;
};

inline response request(const std::string& base, const std::string& method, const std::string& path,
                        const std::string& body = "") {
    if (base.rfind("http://", 0) != 0) throw std::runtime_error("fake base must be http://: " + base);
    std::string hostport = base.substr(7);
    const auto slash = hostport.find('/');
    if (slash != std::string::npos) hostport.resize(slash);
    const auto colon = hostport.rfind(':');
    const std::string host = hostport.substr(0, colon);
    const std::string port = colon == std::string::npos ? "80" : hostport.substr(colon + 1);

    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0) throw std::runtime_error("getaddrinfo " + host);
    int fd = -1;
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) throw std::runtime_error("cannot connect to " + base);

    std::string req = method + " " + path + " HTTP/1.0\r\nHost: " + hostport + "\r\nConnection: close\r\n";
    if (!body.empty() || method == "POST") {
        req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    }
    req += "\r\n" + body;
    for (std::size_t off = 0; off < req.size();) {
        const ssize_t n = send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
        if (n <= 0) {
            close(fd);
            throw std::runtime_error("send failed");
        }
        off += static_cast<std::size_t>(n);
    }
    std::string raw;
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) raw.append(buf, static_cast<std::size_t>(n));
    close(fd);
    const auto hdr_end = raw.find("\r\n\r\n");
    if (raw.rfind("HTTP/1.", 0) != 0 || hdr_end == std::string::npos || raw.size() < 12) {
        throw std::runtime_error("bad HTTP response from fake: " + raw.substr(0, 60));
    }
    response r;
    r.status = std::atoi(raw.c_str() + 9);
    r.body = raw.substr(hdr_end + 4);
    return r;
}

// The first number after "key": in a JSON text (good enough for the fake's flat answers),
// searching from the first occurrence of `scope` (e.g. "\"wx_app\"") if given.
inline long long json_number(const std::string& json, const std::string& key, const std::string& scope = "") {
    std::size_t from = 0;
    if (!scope.empty()) {
        from = json.find(scope);
        if (from == std::string::npos) return -1;
    }
    const auto k = json.find("\"" + key + "\"", from);
    if (k == std::string::npos) return -1;
    const auto c = json.find(':', k);
    return std::strtoll(json.c_str() + c + 1, nullptr, 10);
}

// The string value of "key" in a flat JSON object.
inline std::string json_string(const std::string& json, const std::string& key) {
    const auto k = json.find("\"" + key + "\"");
    if (k == std::string::npos) return "";
    const auto q1 = json.find('"', json.find(':', k) + 1);
    const auto q2 = json.find('"', q1 + 1);
    return json.substr(q1 + 1, q2 - q1 - 1);
}

}  // namespace fake

#endif
