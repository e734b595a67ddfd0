//! Client-protocol frames cut out of real captures, classified and paired,
//! for the decoder benches (each reply knows its request's op code).
//!
//! Reassembly is zk-wire's own [`HalfStream`] with a framer that accepts
//! any length prefix up to jute.maxbuffer; classification follows the
//! protocol: the first client frame after a SYN is a `ConnectRequest`, the
//! first server frame after it a `ConnectResponse`; later client frames are
//! requests (`RequestHeader { xid, type }`), server frames replies paired by
//! xid, or watch events (xid -1). Connections that open with a four-letter
//! word carry no frames and are skipped.

use std::collections::HashMap;
use std::net::SocketAddr;
use zk_wire::ErrorCounts;

use zk_wire::client::{self, FourLetterWord, OpCode};
use zk_wire::packet::{self, LinkType};
use zk_wire::stream::{ChunkPool, HalfStream, Item, LengthPrefixed, StreamCounters};

use crate::pcap::Capture;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The client's session handshake.
    ConnectRequest,
    /// The server's answer to it.
    ConnectResponse,
    /// A request.
    Request,
    /// A reply, with its request's op code when known.
    Reply(Option<OpCode>),
    /// A watch notification (xid -1).
    WatchEvent,
}

/// One whole frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFrame {
    /// What it is.
    pub kind: Kind,
    /// The frame, length prefix included.
    pub frame: Vec<u8>,
}

impl ClientFrame {
    /// The bytes after the length prefix (what the decoders take).
    pub fn body(&self) -> &[u8] {
        &self.frame[4..]
    }
}

#[derive(Default)]
struct Conn {
    c2s: HalfStream,
    s2c: HalfStream,
    expect_connect: bool,
    expect_response: bool,
    four_letter: bool,
    started: bool,
    xids: HashMap<i32, OpCode>,
}

const CHUNK: usize = LengthPrefixed::DEFAULT_MAX_LEN as usize + 4;

/// Every whole client-protocol frame of a capture, in wire order, for
/// servers on `ports`.
pub fn client_frames(cap: &Capture, ports: &[u16]) -> Vec<ClientFrame> {
    let Some(link) = LinkType::from_linktype(cap.link_type) else {
        return Vec::new();
    };
    let framer = LengthPrefixed {
        min_len: 0,
        max_len: LengthPrefixed::DEFAULT_MAX_LEN,
        header_len: 0,
        plausible_body: |_| true,
    };
    // Chunks are handed out lazily; calloc'd pages cost nothing until used.
    let mut pool = ChunkPool::new(vec![0u8; CHUNK * 16], CHUNK);
    let mut counters = StreamCounters::default();
    let mut errors = ErrorCounts::ZERO;
    let mut conns: HashMap<(SocketAddr, SocketAddr), Conn> = HashMap::new();
    let mut out = Vec::new();
    for r in &cap.records {
        let Ok(Some(seg)) = packet::parse(link, &r.data) else {
            continue;
        };
        let (client, server, from_client) = if ports.contains(&seg.dst.port()) {
            (seg.src, seg.dst, true)
        } else if ports.contains(&seg.src.port()) {
            (seg.dst, seg.src, false)
        } else {
            continue;
        };
        let conn = conns.entry((client, server)).or_default();
        if seg.flags.syn {
            if from_client {
                conn.c2s.syn(&mut pool, seg.seq);
                conn.expect_connect = true;
            } else {
                conn.s2c.syn(&mut pool, seg.seq);
            }
        }
        if seg.wire_len > 0 && from_client && !conn.started {
            conn.started = true;
            conn.four_letter = seg
                .payload
                .get(..4)
                .and_then(FourLetterWord::parse)
                .is_some();
        }
        if seg.wire_len > 0 && !conn.four_letter {
            let Conn {
                c2s,
                s2c,
                expect_connect,
                expect_response,
                xids,
                ..
            } = conn;
            let half = if from_client { c2s } else { s2c };
            half.push(
                &mut pool,
                &framer,
                seg.seq,
                seg.payload,
                seg.wire_len,
                &mut counters,
                &mut errors,
                &mut |item| {
                    let Item::Frame(frame) = item else { return };
                    let body = &frame[4..];
                    let kind = if from_client {
                        if std::mem::take(expect_connect)
                            || (xids.is_empty() && client::looks_like_connect_request(body))
                        {
                            *expect_response = true;
                            Kind::ConnectRequest
                        } else {
                            if let Ok(p) = client::parse_request_prefix(body) {
                                xids.insert(p.xid, p.opcode);
                            }
                            Kind::Request
                        }
                    } else if std::mem::take(expect_response) {
                        Kind::ConnectResponse
                    } else {
                        match client::parse_reply_header(body) {
                            Ok(h) if h.xid == client::XID_WATCH_EVENT => Kind::WatchEvent,
                            Ok(h) => Kind::Reply(
                                xids.remove(&h.xid)
                                    .or_else(|| client::special_xid_opcode(h.xid)),
                            ),
                            Err(_) => Kind::Reply(None),
                        }
                    };
                    out.push(ClientFrame {
                        kind,
                        frame: frame.to_vec(),
                    });
                },
            );
        }
        if seg.flags.fin || seg.flags.rst {
            let half = if from_client {
                &mut conn.c2s
            } else {
                &mut conn.s2c
            };
            half.close(&mut pool, &mut counters);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(name: &str) -> Capture {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/captures/zktraffic/"
        );
        Capture::read(std::path::Path::new(&format!("{dir}{name}"))).unwrap()
    }

    #[test]
    fn dump_pcap_frames_are_classified_and_paired() {
        let frames = client_frames(&shared("dump.pcap"), &[2181]);
        let count = |k: Kind| frames.iter().filter(|f| f.kind == k).count();
        // 13 requests, 13 replies, 1 watch event (see the captures' README).
        assert_eq!(
            frames.iter().filter(|f| f.kind == Kind::Request).count(),
            13
        );
        let replies: Vec<_> = frames
            .iter()
            .filter_map(|f| match f.kind {
                Kind::Reply(op) => Some(op),
                _ => None,
            })
            .collect();
        assert_eq!(replies.len(), 13);
        assert!(replies.iter().all(Option::is_some));
        assert_eq!(count(Kind::WatchEvent), 1);
    }

    #[test]
    fn split_length_prefix_is_reassembled() {
        let frames = client_frames(&shared("create-pyzookeeper.pcap"), &[2181]);
        assert!(frames.iter().any(|f| {
            f.kind == Kind::Request
                && client::Request::parse(f.body()).is_ok_and(|r| r.opcode == OpCode::Create)
        }));
    }
}
