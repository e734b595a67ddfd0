//! The session handshake: the first frame in each direction of a client
//! connection.
//!
//! Wire format: `ConnectRequest { int protocolVersion; long lastZxidSeen;
//! int timeOut; long sessionId; buffer passwd }` and `ConnectResponse { int
//! protocolVersion; int timeOut; long sessionId; buffer passwd }` from
//! `zookeeper-jute/src/main/resources/zookeeper.jute`, each optionally
//! followed by one `boolean readOnly` byte. Clients and servers since 3.4
//! write that byte (`ClientCnxn` / `ZooKeeperServer`; in 3.9 the field moved
//! into the jute records and `compat/ProtocolManager.java` reads it when
//! present). Neither record has a request or reply header.
//!
//! A session that cannot be resumed is answered with timeout 0, session id
//! 0 and a zeroed password (`ZooKeeperServer.finishSessionInit`).

use super::jute::Reader;
use crate::Result;

/// Largest session timeout (ms) the heuristics accept: one day.
const SANE_TIMEOUT_MAX: i32 = 86_400_000;

/// A client's session handshake (`ConnectRequest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConnectRequest<'a> {
    /// Protocol version, always 0.
    pub protocol_version: i32,
    /// The last zxid the client has seen (0 for a new session).
    pub last_zxid_seen: i64,
    /// Requested session timeout, ms.
    pub timeout: i32,
    /// 0 for a new session, the session to resume otherwise.
    pub session_id: i64,
    /// Session password (16 bytes; zeros for a new session).
    pub passwd: &'a [u8],
    /// The trailing readOnly flag, when the client sent one.
    pub read_only: Option<bool>,
}

impl<'a> ConnectRequest<'a> {
    /// Decodes a whole frame body.
    pub fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let protocol_version = r.i32()?;
        let last_zxid_seen = r.i64()?;
        let timeout = r.i32()?;
        let session_id = r.i64()?;
        let passwd = r.buffer()?;
        let read_only = if r.is_empty() { None } else { Some(r.bool()?) };
        Ok(ConnectRequest {
            protocol_version,
            last_zxid_seen,
            timeout,
            session_id,
            passwd,
            read_only,
        })
    }

    /// True when the client resumes an existing session (`session_id != 0`).
    #[inline]
    pub const fn is_reconnect(&self) -> bool {
        self.session_id != 0
    }

    /// Message name compatible with the older analyzer: `"ConnectRequest"`,
    /// or `"ReConnectRequest"` for a reconnect.
    #[inline]
    pub const fn name(&self) -> &'static str {
        if self.is_reconnect() {
            "ReConnectRequest"
        } else {
            "ConnectRequest"
        }
    }
}

/// The server's answer to a [`ConnectRequest`] (`ConnectResponse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConnectResponse<'a> {
    /// Protocol version, always 0.
    pub protocol_version: i32,
    /// Negotiated session timeout, ms; 0 when the session is refused/expired.
    pub timeout: i32,
    /// The session id (0 when refused).
    pub session_id: i64,
    /// Session password (16 bytes).
    pub passwd: &'a [u8],
    /// The trailing readOnly flag (true from a read-only server), when sent.
    pub read_only: Option<bool>,
}

impl<'a> ConnectResponse<'a> {
    /// Decodes a whole frame body.
    pub fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let protocol_version = r.i32()?;
        let timeout = r.i32()?;
        let session_id = r.i64()?;
        let passwd = r.buffer()?;
        let read_only = if r.is_empty() { None } else { Some(r.bool()?) };
        Ok(ConnectResponse {
            protocol_version,
            timeout,
            session_id,
            passwd,
            read_only,
        })
    }

    /// True when the server refused the session (timeout 0: expired or
    /// unknown session).
    #[inline]
    pub const fn is_expired(&self) -> bool {
        self.timeout <= 0
    }

    /// Message name compatible with the older analyzer: `"ConnectReply"`,
    /// or `"SessionExpiration"` when the session was refused.
    #[inline]
    pub const fn name(&self) -> &'static str {
        if self.is_expired() {
            "SessionExpiration"
        } else {
            "ConnectReply"
        }
    }
}

/// The password length a handshake body of this length must carry, when
/// the length is one of the shapes real peers send: a 16-byte password
/// (`full` bytes) or an empty one (`full - 16`), each optionally followed
/// by a readOnly byte that must then be 0 or 1.
#[inline]
fn handshake_passwd_len(body: &[u8], full: usize) -> Option<usize> {
    let short = full.checked_sub(16)?;
    let record = match body.len() {
        n if n == full || n == short => n,
        n if n == full.checked_add(1)? || n == short.checked_add(1)? => {
            if !matches!(body.last(), Some(0 | 1)) {
                return None;
            }
            n.checked_sub(1)?
        }
        _ => return None,
    };
    Some(if record == full { 16 } else { 0 })
}

/// Heuristic for captures that start mid-connection: could this client
/// frame body be a [`ConnectRequest`]? Checks the exact length (28/29 or
/// 44/45 bytes), protocol version 0, a non-negative last zxid, a timeout in
/// 1 ms..=1 day, a password length of 0 or 16 matching the length, and a
/// readOnly byte of 0 or 1. A request frame (xid, type, path...) fails it.
pub fn looks_like_connect_request(body: &[u8]) -> bool {
    let Some(passwd_len) = handshake_passwd_len(body, 44) else {
        return false;
    };
    let Ok(c) = ConnectRequest::parse(body) else {
        return false;
    };
    c.protocol_version == 0
        && c.last_zxid_seen >= 0
        && c.timeout > 0
        && c.timeout <= SANE_TIMEOUT_MAX
        && c.passwd.len() == passwd_len
}

/// Heuristic for captures that start mid-connection: could this server
/// frame body be a [`ConnectResponse`]? Checks the exact length (20/21 or
/// 36/37 bytes), protocol version 0, a timeout in 0..=1 day (0 = refused),
/// a password length matching the length, a readOnly byte of 0 or 1, and
/// that a refused session (timeout 0) carries session id 0.
pub fn looks_like_connect_response(body: &[u8]) -> bool {
    let Some(passwd_len) = handshake_passwd_len(body, 36) else {
        return false;
    };
    let Ok(c) = ConnectResponse::parse(body) else {
        return false;
    };
    c.protocol_version == 0
        && c.timeout >= 0
        && c.timeout <= SANE_TIMEOUT_MAX
        && c.passwd.len() == passwd_len
        && (c.timeout > 0 || c.session_id == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::client::test_enc::{Enc, Noise};
    extern crate std;
    use std::vec::Vec;

    const PW: [u8; 16] = [7; 16];

    fn request(session: i64, ro: Option<bool>) -> Vec<u8> {
        let e = Enc::new()
            .i32(0)
            .i64(0x1_0000_0042)
            .i32(30_000)
            .i64(session)
            .buf(&PW);
        match ro {
            Some(v) => e.bool(v).done(),
            None => e.done(),
        }
    }

    fn response(timeout: i32, session: i64, ro: Option<bool>) -> Vec<u8> {
        let e = Enc::new().i32(0).i32(timeout).i64(session).buf(&PW);
        match ro {
            Some(v) => e.bool(v).done(),
            None => e.done(),
        }
    }

    #[test]
    fn request_round_trips_with_and_without_read_only() {
        let b = request(0, Some(true));
        assert_eq!(b.len(), 45);
        let c = ConnectRequest::parse(&b).unwrap();
        assert_eq!(
            c,
            ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0x1_0000_0042,
                timeout: 30_000,
                session_id: 0,
                passwd: &PW,
                read_only: Some(true),
            }
        );
        assert!(!c.is_reconnect());
        assert_eq!(c.name(), "ConnectRequest");
        let b = request(0x0100_0000_0000_0001, None);
        assert_eq!(b.len(), 44);
        let c = ConnectRequest::parse(&b).unwrap();
        assert_eq!(c.read_only, None);
        assert!(c.is_reconnect());
        assert_eq!(c.name(), "ReConnectRequest");
    }

    #[test]
    fn response_round_trips() {
        let b = response(4_000, 0x0200_0000_0000_0009, Some(false));
        let c = ConnectResponse::parse(&b).unwrap();
        assert_eq!(
            c,
            ConnectResponse {
                protocol_version: 0,
                timeout: 4_000,
                session_id: 0x0200_0000_0000_0009,
                passwd: &PW,
                read_only: Some(false),
            }
        );
        assert!(!c.is_expired());
        assert_eq!(c.name(), "ConnectReply");
        let b = response(0, 0, None);
        let c = ConnectResponse::parse(&b).unwrap();
        assert!(c.is_expired());
        assert_eq!(c.name(), "SessionExpiration");
    }

    #[test]
    fn every_truncation_errs_except_the_optional_flag() {
        let b = request(5, Some(false));
        for n in 0..b.len() {
            let r = ConnectRequest::parse(&b[..n]);
            if n == 44 {
                assert_eq!(r.map(|c| c.read_only), Ok(None));
            } else {
                assert_eq!(r, Err(Error::Truncated), "cut at {n}");
            }
        }
        let b = response(5, 5, Some(true));
        for n in 0..b.len() {
            let r = ConnectResponse::parse(&b[..n]);
            if n == 36 {
                assert!(r.is_ok());
            } else {
                assert_eq!(r, Err(Error::Truncated), "cut at {n}");
            }
        }
    }

    #[test]
    fn lying_password_length() {
        let b = Enc::new().i32(0).i64(0).i32(1).i64(0).i32(-2).done();
        assert_eq!(ConnectRequest::parse(&b), Err(Error::BadLength));
        let b = Enc::new()
            .i32(0)
            .i32(1)
            .i64(0)
            .i32(i32::MAX)
            .raw(&PW)
            .done();
        assert_eq!(ConnectResponse::parse(&b), Err(Error::Truncated));
    }

    #[test]
    fn heuristics_accept_real_handshakes() {
        assert!(looks_like_connect_request(&request(0, Some(false))));
        assert!(looks_like_connect_request(&request(0, None)));
        assert!(looks_like_connect_request(&request(
            -0x7f00_0000_0000_0001,
            Some(true)
        )));
        let empty_pw = Enc::new().i32(0).i64(0).i32(10_000).i64(0).buf(&[]).done();
        assert!(looks_like_connect_request(&empty_pw));
        assert!(looks_like_connect_response(&response(
            4_000,
            77,
            Some(false)
        )));
        assert!(looks_like_connect_response(&response(4_000, 77, None)));
        assert!(looks_like_connect_response(&response(0, 0, Some(false))));
    }

    #[test]
    fn heuristics_reject_ordinary_frames() {
        // A getData request: xid 1, type 4, path, watch.
        let get = Enc::new()
            .req(1, 4)
            .s("/zookeeper/quota/a/b/c/d/e/f")
            .bool(false)
            .done();
        assert!(!looks_like_connect_request(&get));
        // A request with a 44-byte body whose "timeout" is path text.
        let b = Enc::new()
            .req(0, 1)
            .s("/abcdefghijklmnopqrstuvwxyz0123")
            .done();
        assert_eq!(b.len(), 43);
        let b = Enc::new()
            .req(0, 1)
            .s("/abcdefghijklmnopqrstuvwxyz01234")
            .done();
        assert_eq!(b.len(), 44);
        assert!(!looks_like_connect_request(&b));
        // Wrong protocol version, timeout, readOnly byte, password length.
        let mut b = request(0, Some(false));
        b[3] = 1;
        assert!(!looks_like_connect_request(&b));
        let b = Enc::new().i32(0).i64(0).i32(0).i64(0).buf(&PW).done();
        assert!(!looks_like_connect_request(&b));
        let mut b = request(0, Some(false));
        b[44] = 2;
        assert!(!looks_like_connect_request(&b));
        let b = Enc::new()
            .i32(0)
            .i64(0)
            .i32(10)
            .i64(0)
            .buf(&[1; 15])
            .u8(0)
            .done();
        assert!(!looks_like_connect_request(&b));
        // A ping reply (header only) and a refused session with an id.
        assert!(!looks_like_connect_response(
            &Enc::new().rep(-2, 5, 0).done()
        ));
        assert!(!looks_like_connect_response(&response(0, 9, None)));
        assert!(!looks_like_connect_response(&response(-5, 0, None)));
        assert!(!looks_like_connect_request(&[]));
        assert!(!looks_like_connect_response(&[]));
    }

    #[test]
    fn noise_never_panics() {
        let base = request(3, Some(true));
        let mut n = Noise::new(0xc0ec);
        for _ in 0..20_000 {
            let mut b = base.clone();
            n.mutate(&mut b);
            let cut = n.below(b.len() + 1);
            let b = b.get(..cut).unwrap_or(&b);
            let _ = ConnectRequest::parse(b);
            let _ = ConnectResponse::parse(b);
            let _ = looks_like_connect_request(b);
            let _ = looks_like_connect_response(b);
        }
    }
}
