//! Just enough HTTP/1.1 to serve one request per connection.
//!
//! Hand-written on purpose: fault injection needs to reset sockets, truncate
//! bodies and stream huge ones, which a server framework would hide.

use std::io::{self, Read, Write};

/// Request line plus headers; anything longer is refused rather than buffered.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Every legitimate body here (a stable_token or control JSON) is tiny.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// Path without the query string, as sent (not percent-decoded).
    pub path: String,
    /// Raw query string (without `?`), empty if none.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// First value of a query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_param(&self.query, name)
    }
}

#[derive(Debug)]
pub enum ReadError {
    /// The peer closed before sending a full request head; nothing to answer.
    Closed,
    Io(io::Error),
    HeadTooLarge,
    BodyTooLarge,
    Malformed(&'static str),
}

impl ReadError {
    /// The answer owed to the client, if the connection can still carry one.
    pub fn response(&self) -> Option<Response> {
        let (status, msg) = match self {
            ReadError::Closed | ReadError::Io(_) => return None,
            ReadError::HeadTooLarge => (431, "request head too large"),
            ReadError::BodyTooLarge => (413, "request body too large"),
            ReadError::Malformed(why) => (400, *why),
        };
        Some(Response::text(status, msg))
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Reads one request. Takes a writer too because `Expect: 100-continue`
/// clients (curl, for bodies over 1 KiB) wait for an interim answer.
pub fn read_request<S: Read + Write>(stream: &mut S) -> Result<Request, ReadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    // Only the newly read bytes (and 3 before them) can complete the terminator.
    let mut scanned = 0;
    let head_end = loop {
        if let Some(pos) = find(&buf[scanned..], b"\r\n\r\n") {
            break scanned + pos;
        }
        scanned = buf.len().saturating_sub(3);
        if buf.len() > MAX_HEAD_BYTES {
            return Err(ReadError::HeadTooLarge);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(if buf.is_empty() {
                ReadError::Closed
            } else {
                ReadError::Malformed("incomplete request head")
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if head_end > MAX_HEAD_BYTES {
        return Err(ReadError::HeadTooLarge);
    }
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| ReadError::Malformed("request head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && !t.is_empty() => (m, t, v),
        _ => return Err(ReadError::Malformed("bad request line")),
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Malformed("unsupported HTTP version"));
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or(ReadError::Malformed("bad header line"))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    };
    let mut req = Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: Vec::new(),
    };

    let already = buf.split_off(head_end + 4);
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let content_length = match req.header("content-length") {
        Some(v) => Some(
            v.parse::<usize>()
                .map_err(|_| ReadError::Malformed("bad Content-Length"))?,
        ),
        None => None,
    };
    if !chunked && content_length.unwrap_or(0) > MAX_BODY_BYTES {
        return Err(ReadError::BodyTooLarge);
    }
    let expects_body = chunked || content_length.unwrap_or(0) > 0;
    if expects_body
        && req
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        stream.flush()?;
    }
    req.body = if chunked {
        read_chunked(stream, already)?
    } else {
        read_exact_body(stream, already, content_length.unwrap_or(0))?
    };
    Ok(req)
}

fn read_exact_body<R: Read>(
    stream: &mut R,
    mut body: Vec<u8>,
    len: usize,
) -> Result<Vec<u8>, ReadError> {
    let mut chunk = [0u8; 4096];
    while body.len() < len {
        let want = (len - body.len()).min(chunk.len());
        let n = stream.read(&mut chunk[..want])?;
        if n == 0 {
            return Err(ReadError::Malformed("body shorter than Content-Length"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    Ok(body)
}

/// Decodes `Transfer-Encoding: chunked`, bounded by [`MAX_BODY_BYTES`].
fn read_chunked<R: Read>(stream: &mut R, mut raw: Vec<u8>) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    let mut pos = 0;
    let mut chunk = [0u8; 4096];
    // Pulls more bytes until `raw[pos..]` holds `need` bytes.
    let mut fill = |raw: &mut Vec<u8>, need: usize| -> Result<(), ReadError> {
        while raw.len() < need {
            if raw.len() > MAX_BODY_BYTES * 2 {
                return Err(ReadError::BodyTooLarge);
            }
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(ReadError::Malformed("truncated chunked body"));
            }
            raw.extend_from_slice(&chunk[..n]);
        }
        Ok(())
    };
    loop {
        let line_end = loop {
            if let Some(i) = find(&raw[pos..], b"\r\n") {
                break pos + i;
            }
            if raw.len() - pos > 1024 {
                return Err(ReadError::Malformed("bad chunk size line"));
            }
            let have = raw.len();
            fill(&mut raw, have + 1)?;
        };
        let size_line = std::str::from_utf8(&raw[pos..line_end])
            .map_err(|_| ReadError::Malformed("bad chunk size line"))?;
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| ReadError::Malformed("bad chunk size"))?;
        pos = line_end + 2;
        if size == 0 {
            // Trailers are not used by anyone talking to this fake; skip to the blank line.
            loop {
                if let Some(i) = find(&raw[pos..], b"\r\n") {
                    if i == 0 {
                        return Ok(body);
                    }
                    pos += i + 2;
                    continue;
                }
                let have = raw.len();
                fill(&mut raw, have + 1)?;
            }
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(ReadError::BodyTooLarge);
        }
        fill(&mut raw, pos + size + 2)?;
        body.extend_from_slice(&raw[pos..pos + size]);
        if &raw[pos + size..pos + size + 2] != b"\r\n" {
            return Err(ReadError::Malformed("chunk not followed by CRLF"));
        }
        pos += size + 2;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// First value of `name` in a raw query string, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, so a client
/// that forgets to encode `+` in a secret gets "invalid appsecret", like upstream.
/// Broken `%` escapes are kept literally instead of failing the request.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

pub const JSON: &str = "application/json; encoding=utf-8";
pub const TEXT: &str = "text/plain; charset=utf-8";

#[derive(Debug)]
pub enum Body {
    Full(Vec<u8>),
    /// `head`, then `fill` repeated, then `tail`: `len` bytes in all, streamed
    /// so a 16 MiB answer never sits in memory.
    Filled {
        head: &'static [u8],
        fill: u8,
        tail: &'static [u8],
        len: u64,
    },
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Full(b) => b.len() as u64,
            Body::Filled { len, .. } => *len,
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::raw(status, Some(JSON), value.to_string().into_bytes())
    }

    pub fn text(status: u16, msg: &str) -> Response {
        Response::raw(status, Some(TEXT), format!("{msg}\n").into_bytes())
    }

    pub fn raw(status: u16, content_type: Option<&'static str>, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body: Body::Full(body),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// Writes the whole response; every answer closes the connection, so
    /// Content-Length is always exact and keep-alive never comes into play.
    pub fn write_to<W: Write>(&self, w: &mut W) -> io::Result<()> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        if let Some(ct) = self.content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        w.write_all(head.as_bytes())?;
        match &self.body {
            Body::Full(b) => w.write_all(b)?,
            Body::Filled {
                head,
                fill,
                tail,
                len,
            } => {
                w.write_all(head)?;
                let mut left = len.saturating_sub((head.len() + tail.len()) as u64);
                let block = [*fill; 64 * 1024];
                while left > 0 {
                    let n = left.min(block.len() as u64) as usize;
                    w.write_all(&block[..n])?;
                    left -= n as u64;
                }
                w.write_all(tail)?;
            }
        }
        w.flush()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Read + Write double: reads from a script, collects writes.
    struct Pipe {
        input: io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Pipe {
        fn new(input: &[u8]) -> Pipe {
            Pipe {
                input: io::Cursor::new(input.to_vec()),
                output: Vec::new(),
            }
        }
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            // One byte at a time shakes out boundary bugs in the parser.
            let n = buf.len().min(1);
            self.input.read(&mut buf[..n])
        }
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn parses_get_with_query() {
        let mut p = Pipe::new(b"GET /cgi-bin/token?a=1&b=x%26y+z HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = read_request(&mut p).unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/cgi-bin/token");
        assert_eq!(r.query_param("a").as_deref(), Some("1"));
        assert_eq!(r.query_param("b").as_deref(), Some("x&y z"));
        assert_eq!(r.query_param("c"), None);
        assert_eq!(r.header("HOST"), Some("x"));
    }

    #[test]
    fn reads_content_length_body_and_answers_expect() {
        let mut p = Pipe::new(
            b"POST /x HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
        );
        let r = read_request(&mut p).unwrap();
        assert_eq!(r.body, b"hello");
        assert_eq!(p.output, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn reads_chunked_body() {
        let mut p = Pipe::new(
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-T: 1\r\n\r\n",
        );
        let r = read_request(&mut p).unwrap();
        assert_eq!(r.body, b"abcde");
    }

    #[test]
    fn refuses_oversized_head_and_body() {
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES + 10));
        big.extend_from_slice(b"\r\n\r\n");
        assert!(matches!(
            read_request(&mut Pipe::new(&big)),
            Err(ReadError::HeadTooLarge)
        ));
        let req = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_BYTES + 1
        );
        assert!(matches!(
            read_request(&mut Pipe::new(req.as_bytes())),
            Err(ReadError::BodyTooLarge)
        ));
    }

    #[test]
    fn empty_connection_is_closed_not_malformed() {
        assert!(matches!(
            read_request(&mut Pipe::new(b"")),
            Err(ReadError::Closed)
        ));
        assert!(matches!(
            read_request(&mut Pipe::new(b"GET / HT")),
            Err(ReadError::Malformed(_))
        ));
    }

    #[test]
    fn percent_decoding_handles_utf8_and_broken_escapes() {
        assert_eq!(percent_decode("%E5%BE%AE%E4%BF%A1"), "微信");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%2"), "%zz%2");
        assert_eq!(percent_decode("a%2Bb+c%25"), "a+b c%");
    }

    #[test]
    fn filled_body_has_exact_length() {
        let r = Response {
            status: 200,
            content_type: Some(JSON),
            headers: Vec::new(),
            body: Body::Filled {
                head: b"\"",
                fill: b'a',
                tail: b"\"",
                len: 200_000,
            },
        };
        let mut out = Vec::new();
        r.write_to(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("Content-Length: 200000\r\n"));
        assert!(head.contains("Connection: close"));
        assert_eq!(body.len(), 200_000);
        assert!(body.starts_with("\"a") && body.ends_with("a\""));
    }
}
