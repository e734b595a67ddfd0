//! Target `frame`: the input is one client-protocol frame body (the bytes
//! after the 4-byte length prefix), given to every decoder of
//! `zk_wire::client`: `Request::parse`, `Reply::parse` with each op code,
//! `ConnectRequest::parse`, `ConnectResponse::parse`, `WatchEvent::parse`,
//! `parse_request_prefix`, `parse_reply_header`, `FourLetterWord::parse`,
//! the unchecked multi iterators and `PathList::read`.
//!
//! Checks: no panic and no endless iterator; every lazy list of a decoded
//! record (multi ops and results, path lists) iterates to exactly the
//! length it announced, without an error; the prefix decoders agree with
//! the full decoders (same xid, op code, path, reply header), on the whole
//! body and on its cut prefixes.

use core::fmt::{self, Write};

use zk_wire::client::{
    self, ConnectRequest, ConnectResponse, FourLetterWord, MultiOpIter, MultiResultIter, OpCode,
    PathList, Reader, Reply, ReplyBody, Request, RequestBody, WatchEvent,
};

/// Discards formatted text (exercises the `Debug` impls without allocating).
struct Discard;

impl Write for Discard {
    fn write_str(&mut self, _: &str) -> fmt::Result {
        Ok(())
    }
}

fn debug(v: &dyn fmt::Debug) {
    let _ = write!(Discard, "{v:?}");
}

fn walk_paths(list: &PathList<'_>, bound: usize) {
    let mut n = 0;
    for p in list.iter() {
        n += 1;
        assert!(n <= bound, "path list iterates past its input");
        let _ = p.len();
    }
    assert_eq!(n, list.len(), "path list length");
}

fn walk_request_body(body: &RequestBody<'_>, bound: usize) {
    let _ = (body.path(), body.watch());
    match body {
        RequestBody::Multi(ops) => {
            let mut n = 0;
            for op in ops.iter() {
                n += 1;
                assert!(n <= bound, "multi ops iterate past their input");
                let op = op.expect("a checked multi yields no error");
                let _ = (op.path(), op.body_path(), op.request_name());
                assert!(!matches!(op.body, RequestBody::Multi(_)), "nested multi");
                walk_request_body(&op.body, bound);
            }
            assert_eq!(n, ops.len(), "multi ops length");
            assert_eq!(ops.is_empty(), n == 0);
            let _ = (ops.first(), ops.has_write(), ops.raw());
        }
        RequestBody::SetWatches {
            data, exist, child, ..
        } => {
            for l in [data, exist, child] {
                walk_paths(l, bound);
            }
        }
        RequestBody::SetWatches2 {
            data,
            exist,
            child,
            persistent,
            persistent_recursive,
            ..
        } => {
            for l in [data, exist, child, persistent, persistent_recursive] {
                walk_paths(l, bound);
            }
        }
        _ => {}
    }
}

fn walk_reply_body(body: &ReplyBody<'_>, bound: usize) {
    let _ = (body.stat(), body.path());
    match body {
        ReplyBody::Children(l) | ReplyBody::Ephemerals(l) => walk_paths(l, bound),
        ReplyBody::Children2 { children, .. } => walk_paths(children, bound),
        ReplyBody::Multi(results) => {
            let mut n = 0;
            let mut first_error = None;
            for r in results.iter() {
                n += 1;
                assert!(n <= bound, "multi results iterate past their input");
                let r = r.expect("a checked multi reply yields no error");
                let _ = (r.path(), r.reply_name(), r.is_ok());
                if first_error.is_none() && !r.err().is_ok() {
                    first_error = Some(r.err());
                }
                walk_reply_body(&r.body, bound);
            }
            assert_eq!(n, results.len(), "multi results length");
            assert_eq!(results.first_error(), first_error, "multi first error");
        }
        _ => {}
    }
}

/// Runs the checks over one input.
pub fn run(data: &[u8]) {
    // Each list entry or multi step takes at least 4 bytes.
    let bound = data.len() / 4 + 1;

    match Request::parse(data) {
        Ok(req) => {
            debug(&req);
            let _ = (
                req.name(),
                req.stats_name(),
                req.is_write(),
                req.path(),
                req.watch(),
            );
            walk_request_body(&req.body, bound);
            let whole = client::parse_request_prefix(data)
                .expect("a body Request::parse accepts is a valid prefix");
            assert_eq!((whole.xid, whole.opcode), (req.xid, req.opcode));
            if let (Some(a), Some(b)) = (whole.path, req.path()) {
                assert_eq!(a, b, "prefix path differs from the request's path");
            }
            let p = req.prefix();
            assert_eq!((p.xid, p.opcode, p.path), (req.xid, req.opcode, req.path()));
            // The same body cut at a few places: still a valid prefix.
            for cut in [8, 9, 12, 13, data.len() / 2, data.len().saturating_sub(1)] {
                if cut < 8 || cut >= data.len() {
                    continue;
                }
                let p = client::parse_request_prefix(&data[..cut])
                    .unwrap_or_else(|e| panic!("prefix of {cut} bytes of a valid request: {e}"));
                assert_eq!((p.xid, p.opcode), (req.xid, req.opcode));
                if let (Some(a), Some(b)) = (p.path, req.path()) {
                    assert_eq!(a, b, "cut prefix path differs from the request's path");
                }
            }
        }
        Err(e) => {
            debug(&e);
        }
    }
    if let Ok(p) = client::parse_request_prefix(data) {
        debug(&p);
        for op in MultiOpIter::new(p.record).take(bound + 1) {
            debug(&op);
        }
    }

    let header = client::parse_reply_header(data);
    for opcode in OpCode::ALL {
        let _ = (opcode.name(), opcode.request_name(), opcode.reply_name());
        assert_eq!(OpCode::from_i32(opcode.code()), Some(opcode));
        if let Ok(reply) = Reply::parse(data, opcode) {
            debug(&reply);
            let _ = reply.is_ok();
            assert_eq!(
                header,
                Ok(reply.header),
                "reply header differs from parse_reply_header"
            );
            walk_reply_body(&reply.body, bound);
        }
    }
    if let Ok(h) = header {
        let _ = (
            h.is_watch_event(),
            h.is_ping(),
            h.is_auth(),
            h.is_set_watches(),
        );
        let _ = (h.err.name(), client::special_xid_opcode(h.xid));
        // The record after the 16-byte header, as an unchecked multi result.
        let mut n = 0;
        for r in MultiResultIter::new(&data[16.min(data.len())..]) {
            n += 1;
            assert!(n <= bound, "MultiResultIter iterates past its input");
            debug(&r);
        }
    }

    if let Ok(c) = ConnectRequest::parse(data) {
        debug(&c);
        let _ = (c.is_reconnect(), c.name());
    }
    if let Ok(c) = ConnectResponse::parse(data) {
        debug(&c);
        let _ = (c.is_expired(), c.name());
    }
    let _ = client::looks_like_connect_request(data);
    let _ = client::looks_like_connect_response(data);
    if let Ok(ev) = WatchEvent::parse(data) {
        debug(&ev);
        let _ = (ev.name(), ev.event_type.name(), ev.state.name());
    }
    if let Some(w) = FourLetterWord::parse(data) {
        assert_eq!(FourLetterWord::parse(w.as_str().as_bytes()), Some(w));
        let _ = w.argument_len();
    }

    let mut n = 0;
    for op in MultiOpIter::new(data) {
        n += 1;
        assert!(n <= bound, "MultiOpIter iterates past its input");
        debug(&op);
    }
    let mut r = Reader::new(data);
    if let Ok(list) = PathList::read(&mut r) {
        walk_paths(&list, bound);
    }
}
