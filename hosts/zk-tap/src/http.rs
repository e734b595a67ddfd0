//! A bounded HTTP/1.1 server on smoltcp TCP sockets.
//!
//! Built to keep answering Prometheus while the box is hostile territory
//! (it sits on a mirror port): a fixed number of sockets listen on the
//! port, each holding one connection at a time; every phase of a
//! connection has a deadline (handshake, request, response, close), so a
//! SYN flood or a slow client occupies a socket for at most that long; a
//! request larger than [`MAX_REQUEST`] bytes gets `431` and is closed.
//! One response buffer is shared: connections with a parsed request take
//! turns to render into it. Every response says `Connection: close`.
//!
//! Requests are parsed with `httparse` (no_std, no allocation). What is
//! answered is up to a [`Handler`].

use core::fmt::{self, Write};
use core::net::IpAddr;

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::{Duration, Instant};

/// Largest request (request line and headers) read.
pub const MAX_REQUEST: usize = 1024;
/// Most connections served at once (sockets listening).
pub const MAX_CONNS: usize = 8;
/// Most request headers parsed.
const MAX_HEADERS: usize = 24;
/// Clients remembered as trusted (they completed a handshake).
pub const TRUSTED: usize = 8;
/// How long a client stays trusted after its last handshake.
pub const TRUST_FOR: Duration = Duration::from_secs(900);
/// Listening sockets an untrusted SYN may not take: kept for trusted
/// clients (Prometheus, which scrapes again and again).
pub const RESERVED_FOR_TRUSTED: usize = 1;
/// Room kept in front of a body for the status line and headers.
const HEAD_ROOM: usize = 192;

/// How long each phase of a connection may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// From SYN to established (a spoofed SYN never completes).
    pub handshake: Duration,
    /// From established to a whole request.
    pub request: Duration,
    /// From rendering to the last byte handed to TCP.
    pub response: Duration,
    /// From our FIN to the end of the connection.
    pub close: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            handshake: Duration::from_millis(1000),
            request: Duration::from_millis(2000),
            response: Duration::from_millis(10_000),
            close: Duration::from_millis(2000),
        }
    }
}

/// What the server did, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// Connections established.
    pub accepted: u64,
    /// Responses by status class: 2xx, 4xx, 5xx.
    pub responses: [u64; 3],
    /// Handshakes that did not complete in time (SYN floods).
    pub handshake_timeouts: u64,
    /// Half-open connections dropped to make room for a new SYN.
    pub handshakes_evicted: u64,
    /// SYNs dropped because no socket could be freed for them.
    pub syns_dropped: u64,
    /// Requests that did not arrive whole in time.
    pub request_timeouts: u64,
    /// Requests over [`MAX_REQUEST`] bytes.
    pub too_large: u64,
    /// Responses not taken by the client in time.
    pub response_timeouts: u64,
    /// Responses that did not fit the response buffer.
    pub overflows: u64,
}

/// A parsed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'r> {
    /// `GET`, `HEAD`, ...
    pub method: &'r str,
    /// The path, before any `?`.
    pub path: &'r str,
    /// What follows the `?` (empty without one).
    pub query: &'r str,
}

/// A response's status and content type; the body is what the handler
/// wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Status code (200, 400, 404, ...).
    pub code: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
}

impl Status {
    /// 200 with a content type.
    pub const fn ok(content_type: &'static str) -> Status {
        Status {
            code: 200,
            content_type,
        }
    }

    /// An error status with a text body.
    pub const fn error(code: u16) -> Status {
        Status {
            code,
            content_type: "text/plain; charset=utf-8",
        }
    }
}

/// Answers requests.
pub trait Handler {
    /// Writes the body of the response to `req` into `body` and returns
    /// its status. A write error means the body did not fit.
    fn respond(&mut self, now: Instant, req: &Request<'_>, body: &mut Cursor<'_>) -> Status;
}

/// A `fmt::Write` over a byte slice that fails, and says so, when full.
pub struct Cursor<'b> {
    buf: &'b mut [u8],
    len: usize,
    overflow: bool,
}

impl<'b> Cursor<'b> {
    /// An empty cursor over `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Cursor {
            buf,
            len: 0,
            overflow: false,
        }
    }

    /// Bytes written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when a write did not fit.
    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    /// What was written.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Forgets what was written.
    pub fn clear(&mut self) {
        self.len = 0;
        self.overflow = false;
    }
}

impl Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            self.overflow = true;
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

const fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        _ => "Unknown",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Listening (or about to).
    Idle,
    /// A SYN arrived; waiting for the handshake's last ACK.
    Handshake,
    /// Established; reading the request.
    Reading,
    /// A whole request; waiting for the response buffer.
    Ready,
    /// Handing the response to TCP.
    Sending,
    /// Our FIN is queued; waiting for the end.
    Closing,
}

struct Conn {
    handle: SocketHandle,
    phase: Phase,
    since: Instant,
    req: [u8; MAX_REQUEST],
    len: usize,
}

/// The response being sent: the shared buffer and who owns it.
struct Outgoing<'a> {
    buf: &'a mut [u8],
    owner: Option<usize>,
    start: usize,
    end: usize,
}

/// Storage of one HTTP socket.
pub struct SocketBuffers<'a> {
    /// Receive buffer (a request fits in [`MAX_REQUEST`] bytes).
    pub rx: &'a mut [u8],
    /// Transmit buffer.
    pub tx: &'a mut [u8],
}

/// The server: its sockets, deadlines, and shared response buffer.
pub struct HttpServer<'a> {
    port: u16,
    conns: heapless::Vec<Conn, MAX_CONNS>,
    out: Outgoing<'a>,
    /// Deadlines of each phase.
    pub deadlines: Deadlines,
    /// What it did.
    pub stats: HttpStats,
    trusted: heapless::Vec<(IpAddr, Instant), TRUSTED>,
}

impl<'a> HttpServer<'a> {
    /// A server on `port` with one listening socket per entry of
    /// `buffers` (at most [`MAX_CONNS`]), added to `sockets`, and
    /// `response` as the shared response buffer (the largest response,
    /// headers included).
    pub fn new(
        port: u16,
        buffers: impl IntoIterator<Item = SocketBuffers<'a>>,
        response: &'a mut [u8],
        sockets: &mut SocketSet<'a>,
    ) -> Self {
        let mut conns = heapless::Vec::new();
        for b in buffers.into_iter().take(MAX_CONNS) {
            let sock = tcp::Socket::new(tcp::SocketBuffer::new(b.rx), tcp::SocketBuffer::new(b.tx));
            let handle = sockets.add(sock);
            let _ = conns.push(Conn {
                handle,
                phase: Phase::Idle,
                since: Instant::ZERO,
                req: [0; MAX_REQUEST],
                len: 0,
            });
        }
        HttpServer {
            port,
            conns,
            out: Outgoing {
                buf: response,
                owner: None,
                start: 0,
                end: 0,
            },
            deadlines: Deadlines::default(),
            stats: HttpStats::default(),
            trusted: heapless::Vec::new(),
        }
    }

    /// The port served.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sockets serving (connections at most at once).
    pub fn sockets(&self) -> usize {
        self.conns.len()
    }

    /// Sockets listening now (a SYN arriving takes one).
    pub fn free_listeners(&self, sockets: &SocketSet<'_>) -> usize {
        self.conns
            .iter()
            .filter(|c| sockets.get::<tcp::Socket>(c.handle).state() == State::Listen)
            .count()
    }

    /// Makes room for one more SYN: drops the half-open connection from
    /// an untrusted client (see [`HttpServer::is_trusted`]) that has waited
    /// longest for its handshake to complete, and listens again. False
    /// when there is none (every socket serves a client that completed
    /// its handshake, or is a trusted client's handshake).
    ///
    /// A SYN flood (spoofed sources never complete a handshake) then
    /// churns through its own half-open sockets only, while clients that
    /// proved their address before keep the socket they get.
    pub fn evict_oldest_handshake(&mut self, now: Instant, sockets: &mut SocketSet<'_>) -> bool {
        let oldest = (0..self.conns.len())
            .filter(|&i| {
                let s = sockets.get::<tcp::Socket>(self.conns[i].handle);
                s.state() == State::SynReceived
                    && !s
                        .remote_endpoint()
                        .is_some_and(|e| self.is_trusted(e.addr.into()))
            })
            .min_by_key(|&i| self.conns[i].since);
        let Some(i) = oldest else {
            return false;
        };
        let sock = sockets.get_mut::<tcp::Socket>(self.conns[i].handle);
        sock.abort();
        self.stats.handshakes_evicted += 1;
        self.set(i, Phase::Idle, now);
        sock.listen(self.port).is_ok()
    }

    /// True for a client address that completed a handshake within
    /// [`TRUST_FOR`] (it owns its address: a spoofer cannot).
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|&(a, _)| a == ip)
    }

    /// Remembers a client that completed a handshake (the least recently
    /// seen of [`TRUSTED`] is forgotten when full).
    fn trust(&mut self, ip: IpAddr, now: Instant) {
        if let Some(e) = self.trusted.iter_mut().find(|e| e.0 == ip) {
            e.1 = now;
            return;
        }
        self.trusted.retain(|e| now - e.1 < TRUST_FOR);
        if self.trusted.is_full()
            && let Some(i) = (0..self.trusted.len()).min_by_key(|&i| self.trusted[i].1)
        {
            self.trusted.swap_remove(i);
        }
        let _ = self.trusted.push((ip, now));
    }

    /// Moves every connection on: accepts, reads, answers through
    /// `handler`, sends, closes, and enforces the deadlines.
    pub fn poll(&mut self, now: Instant, sockets: &mut SocketSet<'_>, handler: &mut impl Handler) {
        for i in 0..self.conns.len() {
            let handle = self.conns[i].handle;
            let sock = sockets.get_mut::<tcp::Socket>(handle);
            self.step(i, now, sock, handler);
        }
    }

    fn count(&mut self, code: u16) {
        let class = match code {
            200..=299 => 0,
            400..=499 => 1,
            _ => 2,
        };
        self.stats.responses[class] += 1;
    }

    /// Queues a short canned response and closes.
    fn canned(&mut self, i: usize, now: Instant, sock: &mut tcp::Socket<'_>, code: u16, msg: &str) {
        let mut head = [0u8; HEAD_ROOM + 64];
        let mut c = Cursor::new(&mut head);
        let _ = write!(
            c,
            "HTTP/1.1 {code} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
            reason(code),
            msg.len()
        );
        let _ = sock.send_slice(c.as_bytes());
        sock.close();
        self.count(code);
        self.set(i, Phase::Closing, now);
    }

    fn set(&mut self, i: usize, phase: Phase, now: Instant) {
        let c = &mut self.conns[i];
        c.phase = phase;
        c.since = now;
    }

    fn release(&mut self, i: usize) {
        if self.out.owner == Some(i) {
            self.out.owner = None;
        }
    }

    /// Drops the connection at once and listens again.
    fn reset(&mut self, i: usize, now: Instant, sock: &mut tcp::Socket<'_>) {
        sock.abort();
        self.release(i);
        self.set(i, Phase::Idle, now);
    }

    fn step(
        &mut self,
        i: usize,
        now: Instant,
        sock: &mut tcp::Socket<'_>,
        handler: &mut impl Handler,
    ) {
        let phase = self.conns[i].phase;
        let elapsed = now - self.conns[i].since;
        let d = self.deadlines;
        match sock.state() {
            State::Closed => {
                self.release(i);
                if sock.listen(self.port).is_ok() {
                    self.set(i, Phase::Idle, now);
                }
                return;
            }
            State::TimeWait => {
                // Both FINs are through: the connection is over. Free the
                // socket now instead of holding it for TIME-WAIT.
                self.reset(i, now, sock);
                return;
            }
            State::Listen => {
                if phase != Phase::Idle {
                    self.release(i);
                    self.set(i, Phase::Idle, now);
                }
                return;
            }
            State::SynReceived => {
                if phase == Phase::Idle {
                    self.set(i, Phase::Handshake, now);
                } else if elapsed > d.handshake {
                    self.stats.handshake_timeouts += 1;
                    tap_debug!("http: handshake timed out");
                    self.reset(i, now, sock);
                }
                return;
            }
            _ => {}
        }
        match phase {
            Phase::Idle | Phase::Handshake => {
                self.stats.accepted += 1;
                if let Some(e) = sock.remote_endpoint() {
                    self.trust(e.addr.into(), now);
                }
                self.conns[i].len = 0;
                self.set(i, Phase::Reading, now);
                self.read(i, now, sock);
            }
            Phase::Reading => {
                if elapsed > d.request {
                    self.stats.request_timeouts += 1;
                    self.canned(i, now, sock, 408, "request not received in time\n");
                } else {
                    self.read(i, now, sock);
                }
            }
            Phase::Ready => {}
            Phase::Sending => {
                if elapsed > d.response {
                    self.stats.response_timeouts += 1;
                    self.reset(i, now, sock);
                    return;
                }
            }
            Phase::Closing => {
                if elapsed > d.close {
                    self.reset(i, now, sock);
                }
                return;
            }
        }
        if self.conns[i].phase == Phase::Ready && self.out.owner.is_none() {
            self.render(i, now, sock, handler);
        }
        if self.conns[i].phase == Phase::Sending {
            self.send(i, now, sock);
        }
    }

    fn read(&mut self, i: usize, now: Instant, sock: &mut tcp::Socket<'_>) {
        let c = &mut self.conns[i];
        while c.len < MAX_REQUEST && sock.can_recv() {
            match sock.recv_slice(&mut c.req[c.len..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => c.len += n,
            }
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&c.req[..c.len]) {
            Ok(httparse::Status::Complete(_)) => self.conns[i].phase = Phase::Ready,
            Ok(httparse::Status::Partial) if c.len >= MAX_REQUEST => {
                self.stats.too_large += 1;
                self.canned(i, now, sock, 431, "request too large\n");
            }
            Ok(httparse::Status::Partial) => {
                if !sock.may_recv() {
                    // The client closed before sending a whole request.
                    self.reset(i, now, sock);
                }
            }
            Err(httparse::Error::TooManyHeaders) => {
                self.stats.too_large += 1;
                self.canned(i, now, sock, 431, "too many headers\n");
            }
            Err(_) => self.canned(i, now, sock, 400, "malformed request\n"),
        }
    }

    fn render(
        &mut self,
        i: usize,
        now: Instant,
        sock: &mut tcp::Socket<'_>,
        handler: &mut impl Handler,
    ) {
        let c = &self.conns[i];
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        if !matches!(
            parsed.parse(&c.req[..c.len]),
            Ok(httparse::Status::Complete(_))
        ) {
            self.canned(i, now, sock, 400, "malformed request\n");
            return;
        }
        let method = parsed.method.unwrap_or("");
        let target = parsed.path.unwrap_or("");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if method != "GET" && method != "HEAD" {
            self.canned(i, now, sock, 405, "only GET and HEAD\n");
            return;
        }
        let head_only = method == "HEAD";
        let req = Request {
            method,
            path,
            query,
        };
        let buf = &mut *self.out.buf;
        if buf.len() <= HEAD_ROOM {
            self.canned(i, now, sock, 500, "no response buffer\n");
            return;
        }
        let (head, body) = buf.split_at_mut(HEAD_ROOM);
        let mut cur = Cursor::new(body);
        let status = handler.respond(now, &req, &mut cur);
        if cur.overflowed() {
            self.stats.overflows += 1;
            self.canned(
                i,
                now,
                sock,
                500,
                "response larger than the response buffer: ask for fewer rows (?top=N)\n",
            );
            return;
        }
        let body_len = cur.len();
        let mut line = [0u8; HEAD_ROOM];
        let mut h = Cursor::new(&mut line);
        let _ = write!(
            h,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {body_len}\r\nConnection: close\r\n\r\n",
            status.code,
            reason(status.code),
            status.content_type
        );
        let hl = h.len();
        let start = HEAD_ROOM - hl;
        head[start..].copy_from_slice(h.as_bytes());
        self.out.owner = Some(i);
        self.out.start = start;
        self.out.end = if head_only {
            HEAD_ROOM
        } else {
            HEAD_ROOM + body_len
        };
        self.count(status.code);
        self.set(i, Phase::Sending, now);
    }

    fn send(&mut self, i: usize, now: Instant, sock: &mut tcp::Socket<'_>) {
        let o = &mut self.out;
        while o.start < o.end && sock.can_send() {
            match sock.send_slice(&o.buf[o.start..o.end]) {
                Ok(0) | Err(_) => break,
                Ok(n) => o.start += n,
            }
        }
        if o.start >= o.end {
            sock.close();
            self.release(i);
            self.set(i, Phase::Closing, now);
        }
    }
}

/// Parses `a=1&b=2` into (key, value) pairs (no percent-decoding: the
/// endpoints take plain words and numbers).
pub fn query_pairs(q: &str) -> impl Iterator<Item = (&str, &str)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_fails_when_full_and_keeps_what_fit() {
        let mut b = [0u8; 8];
        let mut c = Cursor::new(&mut b);
        assert!(write!(c, "1234").is_ok());
        assert!(write!(c, "56789").is_err());
        assert!(c.overflowed());
        assert_eq!(c.as_bytes(), b"1234");
        c.clear();
        assert!(c.is_empty() && !c.overflowed());
    }

    #[test]
    fn query_pairs_split_on_ampersands_and_equals() {
        let v: heapless::Vec<(&str, &str), 4> =
            query_pairs("top=3&&window=cumulative&flag").collect();
        assert_eq!(
            &v[..],
            &[("top", "3"), ("window", "cumulative"), ("flag", "")]
        );
    }
}
