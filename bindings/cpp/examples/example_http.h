/*
 * example_http.h: the one WeChat API call the examples make, GET
 * {api_base}/cgi-bin/get_api_domain_ip?access_token=TOKEN, kept out of the library on purpose
 * (wx_token only fetches tokens; your program calls WeChat with its own HTTP client).
 *
 * Built with -DWX_EXAMPLE_WITH_CURL (and libcurl: apt-get install libcurl4-openssl-dev), it uses
 * libcurl and so works with https://api.weixin.qq.com. Without it, a minimal plain-HTTP/1.0 GET
 * over a socket is used, which is enough for the project's fake WeChat on 127.0.0.1 but cannot
 * speak https.
 *
 * Plain C99 + POSIX, usable from C and C++. Not a general HTTP client.
 */
#ifndef WX_EXAMPLE_HTTP_H
#define WX_EXAMPLE_HTTP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef WX_EXAMPLE_WITH_CURL
#include <curl/curl.h>
#else
#include <netdb.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#endif

#define WX_EXAMPLE_MAX_BODY (1024 * 1024)

#ifdef WX_EXAMPLE_WITH_CURL
#define WX_EXAMPLE_HTTP_CLIENT "libcurl"
#else
#define WX_EXAMPLE_HTTP_CLIENT "plain-socket"
#endif

typedef struct {
    char *data; /* NUL-terminated */
    size_t len;
} wx_example_buf;

static int wx_example_buf_append(wx_example_buf *b, const char *p, size_t n) {
    char *grown;
    if (b->len + n > WX_EXAMPLE_MAX_BODY) return -1;
    grown = (char *)realloc(b->data, b->len + n + 1);
    if (!grown) return -1;
    b->data = grown;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* "{api_base}/cgi-bin/get_api_domain_ip?access_token=" + percent-encoded token; malloc'd. */
static char *wx_example_api_url(const char *api_base, const char *token) {
    static const char hex[] = "0123456789ABCDEF";
    const char *path = "/cgi-bin/get_api_domain_ip?access_token=";
    size_t n = strlen(api_base) + strlen(path) + 3 * strlen(token) + 1;
    char *url = (char *)malloc(n), *o;
    const unsigned char *t;
    if (!url) return NULL;
    o = url + sprintf(url, "%s%s", api_base, path);
    for (t = (const unsigned char *)token; *t; ++t) {
        if ((*t >= 'A' && *t <= 'Z') || (*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9') || *t == '-' ||
            *t == '_' || *t == '.' || *t == '~') {
            *o++ = (char)*t;
        } else {
            *o++ = '%';
            *o++ = hex[*t >> 4];
            *o++ = hex[*t & 15];
        }
    }
    *o = '\0';
    return url;
}

#ifdef WX_EXAMPLE_WITH_CURL

/* Call once at the start and end of main (libcurl's global state). */
static int wx_example_http_init(void) { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1; }
static void wx_example_http_cleanup(void) { curl_global_cleanup(); }

static size_t wx_example_curl_write(char *p, size_t size, size_t nmemb, void *userdata) {
    return wx_example_buf_append((wx_example_buf *)userdata, p, size * nmemb) == 0 ? size * nmemb : 0;
}

/* GET url; on success returns 0 and the malloc'd body in *body (free it); else -1 and a
 * message in err. */
static int wx_example_http_get(const char *url, char **body, char *err, size_t errlen) {
    wx_example_buf b = {NULL, 0};
    long code = 0;
    CURLcode rc;
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errlen, "curl_easy_init failed");
        return -1;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, wx_example_curl_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    rc = curl_easy_perform(h);
    if (rc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK || code != 200) {
        if (rc != CURLE_OK) {
            snprintf(err, errlen, "curl: %s", curl_easy_strerror(rc));
        } else {
            snprintf(err, errlen, "HTTP status %ld", code);
        }
        free(b.data);
        return -1;
    }
    *body = b.data ? b.data : (char *)calloc(1, 1);
    return *body ? 0 : -1;
}

#else /* plain HTTP over a socket */

static int wx_example_http_init(void) { return 0; }
static void wx_example_http_cleanup(void) {}

/* GET url (http:// only); on success returns 0 and the malloc'd body in *body (free it); else -1
 * and a message in err. */
static int wx_example_http_get(const char *url, char **body, char *err, size_t errlen) {
    char host[256], port[16] = "80", req[8192], chunk[4096];
    const char *p, *path, *colon, *hdr_end;
    struct addrinfo hints, *res = NULL, *ai;
    wx_example_buf b = {NULL, 0};
    int fd = -1, rc;
    size_t hostlen;
    ssize_t n;

    if (strncmp(url, "http://", 7) != 0) {
        snprintf(err, errlen, "this build speaks plain http:// only (for the local fake); rebuild with "
                              "-DWX_EXAMPLE_WITH_CURL and libcurl for %.*s", 40, url);
        return -1;
    }
    p = url + 7;
    path = strchr(p, '/');
    if (!path) path = p + strlen(p);
    colon = (const char *)memchr(p, ':', (size_t)(path - p));
    hostlen = (size_t)((colon ? colon : path) - p);
    if (hostlen == 0 || hostlen >= sizeof host) {
        snprintf(err, errlen, "bad URL host");
        return -1;
    }
    memcpy(host, p, hostlen);
    host[hostlen] = '\0';
    if (colon) {
        size_t plen = (size_t)(path - colon - 1);
        if (plen == 0 || plen >= sizeof port) {
            snprintf(err, errlen, "bad URL port");
            return -1;
        }
        memcpy(port, colon + 1, plen);
        port[plen] = '\0';
    }
    if (snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n", *path ? path : "/",
                 host) >= (int)sizeof req) {
        snprintf(err, errlen, "URL too long");
        return -1;
    }

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        snprintf(err, errlen, "getaddrinfo(%s): %s", host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "cannot connect to %s:%s", host, port);
        return -1;
    }
    {
        size_t off = 0, want = strlen(req);
        while (off < want) {
            n = send(fd, req + off, want - off, 0);
            if (n <= 0) {
                snprintf(err, errlen, "send failed");
                close(fd);
                return -1;
            }
            off += (size_t)n;
        }
    }
    while ((n = recv(fd, chunk, sizeof chunk, 0)) > 0) {
        if (wx_example_buf_append(&b, chunk, (size_t)n) != 0) {
            snprintf(err, errlen, "response too large");
            close(fd);
            free(b.data);
            return -1;
        }
    }
    close(fd);
    if (n < 0 || !b.data || strncmp(b.data, "HTTP/1.", 7) != 0 || strncmp(b.data + 8, " 200", 4) != 0 ||
        !(hdr_end = strstr(b.data, "\r\n\r\n"))) {
        snprintf(err, errlen, "bad HTTP response: %.60s", b.data ? b.data : "(none)");
        free(b.data);
        return -1;
    }
    hdr_end += 4;
    memmove(b.data, hdr_end, strlen(hdr_end) + 1);
    *body = b.data;
    return 0;
}

#endif /* WX_EXAMPLE_WITH_CURL */

/* WeChat's "errcode" in a JSON reply, 0 when there is none. Good enough for these replies. */
static long wx_example_errcode(const char *json) {
    const char *p = strstr(json, "\"errcode\"");
    if (!p) return 0;
    p = strchr(p, ':');
    return p ? strtol(p + 1, NULL, 10) : 0;
}

#endif /* WX_EXAMPLE_HTTP_H */
