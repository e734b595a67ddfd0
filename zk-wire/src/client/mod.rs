//! The ZooKeeper client protocol (default port 2181): session handshake,
//! requests, replies, watch events and four-letter words.
//!
//! Wire format: after the TCP connect, each direction is a sequence of
//! frames, a 4-byte big-endian length then that many bytes of body, except
//! that a client may instead open with a raw four-letter word. The bodies
//! are Apache Jute records (`zookeeper-jute/src/main/resources/zookeeper.jute`):
//!
//! - client -> server: first a `ConnectRequest` ([`ConnectRequest`]), then
//!   `RequestHeader { xid, type }` + the request record ([`Request`]);
//! - server -> client: first a `ConnectResponse` ([`ConnectResponse`]),
//!   then `ReplyHeader { xid, zxid, err }` + the response record
//!   ([`Reply`]), or, with xid -1, a `WatcherEvent` ([`WatchEvent`]).
//!
//! The numbers come from ZooKeeper's `ZooDefs.OpCode`, `KeeperException.Code`,
//! `Watcher.Event`, `CreateMode` and `ClientCnxn` (special xids); multi
//! layouts from `MultiOperationRecord` / `MultiResponse`; which reply record
//! answers which op code from `server/FinalRequestProcessor`. Covers
//! ZooKeeper 3.4 to 3.9.
//!
//! Every function here takes one frame *body* (the bytes after the length
//! prefix), borrows from it, never allocates and never panics: malformed
//! input is an [`Error`](crate::Error). Replies carry no op code: the caller
//! pairs a reply with its request by xid and passes the request's
//! [`OpCode`] to [`Reply::parse`]. For frames larger than the reassembly
//! buffer, [`parse_request_prefix`] and [`parse_reply_header`] read what the
//! first bytes hold.

mod codes;
mod connect;
mod event;
mod four_letter;
pub mod jute;
mod reply;
mod request;
#[cfg(test)]
pub(crate) mod test_enc;

pub use codes::{CreateMode, ErrorCode, OpCode, add_watch_mode_name, watcher_type_name};
pub use connect::{
    ConnectRequest, ConnectResponse, looks_like_connect_request, looks_like_connect_response,
};
pub use event::{EventType, KeeperState, WatchEvent};
pub use four_letter::FourLetterWord;
pub use jute::{PathIter, PathList, Reader};
pub use reply::{
    MultiResult, MultiResultIter, MultiResults, Reply, ReplyBody, ReplyHeader, Stat,
    parse_reply_header,
};
pub use request::{
    MultiOp, MultiOpIter, MultiOps, Request, RequestBody, RequestPrefix, parse_request_prefix,
};

/// xid of a watch notification (`ClientCnxn.NOTIFICATION_XID`).
pub const XID_WATCH_EVENT: i32 = -1;
/// xid of a ping and its reply (`ClientCnxn.PING_XID`).
pub const XID_PING: i32 = -2;
/// xid of an auth request and its reply (`ClientCnxn.AUTHPACKET_XID`).
pub const XID_AUTH: i32 = -4;
/// xid of a setWatches / setWatches2 request and its reply (`ClientCnxn.SET_WATCHES_XID`).
pub const XID_SET_WATCHES: i32 = -8;

/// The op code a special xid implies, for pairing a reply whose request was
/// not seen: -1 notification, -2 ping, -4 auth, -8 setWatches (a
/// setWatches2 reply looks the same: header only). `None` for other xids.
#[inline]
pub const fn special_xid_opcode(xid: i32) -> Option<OpCode> {
    match xid {
        XID_WATCH_EVENT => Some(OpCode::Notification),
        XID_PING => Some(OpCode::Ping),
        XID_AUTH => Some(OpCode::Auth),
        XID_SET_WATCHES => Some(OpCode::SetWatches),
        _ => None,
    }
}

/// A stable 64-bit hash of a path (FNV-1a 64), for remembering a request's
/// path without keeping the bytes.
#[inline]
pub const fn path_hash(path: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut rest = path.as_bytes();
    let mut h = OFFSET;
    while let [b, tail @ ..] = rest {
        h ^= *b as u64;
        h = h.wrapping_mul(PRIME);
        rest = tail;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_hash_is_fnv1a_64() {
        // Reference values of FNV-1a 64.
        assert_eq!(path_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(path_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(path_hash("foobar"), 0x8594_4171_f739_67e8);
        assert_ne!(path_hash("/a/b"), path_hash("/a/c"));
        const H: u64 = path_hash("/zookeeper");
        assert_eq!(H, path_hash("/zookeeper"));
    }

    #[test]
    fn special_xids_match_client_cnxn() {
        assert_eq!(
            [XID_WATCH_EVENT, XID_PING, XID_AUTH, XID_SET_WATCHES],
            [-1, -2, -4, -8]
        );
        assert_eq!(special_xid_opcode(-2), Some(OpCode::Ping));
        assert_eq!(special_xid_opcode(-4), Some(OpCode::Auth));
        assert_eq!(special_xid_opcode(-8), Some(OpCode::SetWatches));
        assert_eq!(special_xid_opcode(-1), Some(OpCode::Notification));
        assert_eq!(special_xid_opcode(-3), None);
        assert_eq!(special_xid_opcode(1), None);
    }
}
