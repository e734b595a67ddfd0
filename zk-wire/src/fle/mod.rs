//! Leader election (Fast Leader Election, default port 3888): the
//! connection handshake and the vote notifications.
//!
//! Wire format, defined by ZooKeeper's
//! `zookeeper-server/.../server/quorum/QuorumCnxManager.java` (the
//! connection) and `FastLeaderElection.java` (`buildMsg` and
//! `Messenger.WorkerReceiver`, the notification):
//!
//! - The server that opens a connection first sends an **initial message**
//!   ([`InitialMessage`]). Up to 3.4 it is the bare server id (`long sid`,
//!   8 bytes, never negative). From 3.5 it is `long protocolVersion`
//!   (-65536, `PROTOCOL_VERSION_V1`; 3.6+ may send -65535,
//!   `PROTOCOL_VERSION_V2`, with several addresses), `long sid`,
//!   `int length` (1 to 2048, `maxBuffer`) and that many bytes of the
//!   sender's election address, `host:port` (V2: `host:port|host:port...`).
//!   Only the lower id keeps a connection it opened to a higher id; the
//!   higher id closes it and connects back, so both forms appear.
//! - After that, both directions carry `int length` + message, the length
//!   between 1 and 512 KiB (`PACKETMAXSIZE`). Each message is a
//!   **notification** ([`Notification`]), all fields big-endian:
//!
//!   | bytes | fields                                                        | sent by        |
//!   |-------|---------------------------------------------------------------|----------------|
//!   | 28    | `int state, long leader, long zxid, long electionEpoch`        | 3.3            |
//!   | 36    | ... `long peerEpoch`                                           | 3.4.0 to 3.4.5 |
//!   | 40    | ... `int version` (1)                                          | 3.4.6+         |
//!   | 44+n  | ... `int version` (2), `int configLength`, config text (n bytes) | 3.5+         |
//!
//!   `state` is the sender's `QuorumPeer.ServerState` ordinal
//!   ([`ServerState`]); the config text is the sender's membership
//!   ([`DynamicConfig`]). A 28-byte notification has no peer epoch; like
//!   ZooKeeper, the decoder takes it from the zxid's upper 32 bits.
//!
//! [`FleFramer`] cuts a direction into frames: it tells the two initial
//! forms from a length prefix by their first four bytes (`ff ff ff ff`
//! starts a versioned initial message, `00 00 00 00` a 3.4 one, and a
//! notification's length is at least 28).

mod config;

pub use config::{
    ClientAddr, DynamicConfig, MAX_ADDRESSES, Role, ServerSpec, Servers, parse_host_port,
};

use crate::client::Reader;
use crate::stream::{FrameStatus, Framer};
use crate::{Error, Result};
use core::iter::FusedIterator;

/// `QuorumCnxManager.PROTOCOL_VERSION_V1` (3.5+): one election address.
pub const PROTOCOL_VERSION_V1: i64 = -65536;
/// `QuorumCnxManager.PROTOCOL_VERSION_V2` (3.6+ with multi-address): several addresses.
pub const PROTOCOL_VERSION_V2: i64 = -65535;
/// Longest address text an initial message may carry (`QuorumCnxManager.maxBuffer`).
pub const MAX_ADDRESS_LEN: usize = 2048;
/// Longest election message (`QuorumCnxManager.PACKETMAXSIZE`).
pub const MAX_MESSAGE_LEN: u32 = 512 * 1024;
/// Shortest notification ZooKeeper has ever sent (3.3's 28 bytes).
pub const MIN_NOTIFICATION_LEN: usize = 28;

/// A server's state as sent in a notification (`QuorumPeer.ServerState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ServerState {
    /// Electing a leader (0).
    Looking = 0,
    /// Following a leader (1).
    Following = 1,
    /// Leading (2).
    Leading = 2,
    /// Observing a leader (3).
    Observing = 3,
}

impl ServerState {
    /// The state with this ordinal.
    pub const fn from_i32(v: i32) -> Option<ServerState> {
        Some(match v {
            0 => ServerState::Looking,
            1 => ServerState::Following,
            2 => ServerState::Leading,
            3 => ServerState::Observing,
            _ => return None,
        })
    }

    /// The wire value.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// ZooKeeper's name: `LOOKING`, `FOLLOWING`, `LEADING`, `OBSERVING`.
    pub const fn name(self) -> &'static str {
        match self {
            ServerState::Looking => "LOOKING",
            ServerState::Following => "FOLLOWING",
            ServerState::Leading => "LEADING",
            ServerState::Observing => "OBSERVING",
        }
    }
}

/// The first bytes the connecting server sends on an election connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InitialMessage<'a> {
    /// Up to 3.4: the sender's server id alone (8 bytes).
    Legacy {
        /// The sender's server id.
        sid: i64,
    },
    /// 3.5+: protocol version, server id and election address(es).
    Versioned {
        /// [`PROTOCOL_VERSION_V1`] or [`PROTOCOL_VERSION_V2`].
        protocol_version: i64,
        /// The sender's server id.
        sid: i64,
        /// The sender's election address(es), `host:port[|host:port...]`.
        addresses: &'a str,
    },
}

impl<'a> InitialMessage<'a> {
    /// Decodes an initial message (the whole frame as [`FleFramer`] cut it).
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let first = r.i64()?;
        if first >= 0 {
            return Ok(InitialMessage::Legacy { sid: first });
        }
        if first != PROTOCOL_VERSION_V1 && first != PROTOCOL_VERSION_V2 {
            return Err(Error::UnknownOpcode);
        }
        let sid = r.i64()?;
        let len = r.i32()?;
        if len <= 0 {
            return Err(Error::BadLength);
        }
        if len as usize > MAX_ADDRESS_LEN {
            return Err(Error::OverLimit);
        }
        let text = r.take(len as usize)?;
        let addresses = core::str::from_utf8(text).map_err(|_| Error::BadUtf8)?;
        for a in addresses.split('|') {
            parse_host_port(a)?;
        }
        Ok(InitialMessage::Versioned {
            protocol_version: first,
            sid,
            addresses,
        })
    }

    /// The sender's server id.
    pub const fn sid(&self) -> i64 {
        match *self {
            InitialMessage::Legacy { sid } | InitialMessage::Versioned { sid, .. } => sid,
        }
    }

    /// The protocol version (`None` for the 3.4 form).
    pub const fn protocol_version(&self) -> Option<i64> {
        match *self {
            InitialMessage::Legacy { .. } => None,
            InitialMessage::Versioned {
                protocol_version, ..
            } => Some(protocol_version),
        }
    }

    /// The sender's election addresses as `(host, port)` (none for the 3.4 form).
    pub fn addresses(&self) -> Addresses<'a> {
        Addresses {
            parts: match *self {
                InitialMessage::Legacy { .. } => None,
                InitialMessage::Versioned { addresses, .. } => Some(addresses.split('|')),
            },
        }
    }
}

/// Iterator over the addresses of an [`InitialMessage`].
#[derive(Debug, Clone)]
pub struct Addresses<'a> {
    parts: Option<core::str::Split<'a, char>>,
}

impl<'a> Iterator for Addresses<'a> {
    type Item = (&'a str, u16);

    fn next(&mut self) -> Option<(&'a str, u16)> {
        let parts = self.parts.as_mut()?;
        for p in parts.by_ref() {
            // Checked by `InitialMessage::parse`.
            if let Ok(hp) = parse_host_port(p) {
                return Some(hp);
            }
        }
        None
    }
}

impl FusedIterator for Addresses<'_> {}

/// A vote notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Notification<'a> {
    /// The sender's state.
    pub state: ServerState,
    /// The server id the sender votes for (or follows / is, when not looking).
    pub leader: i64,
    /// The last zxid of the proposed leader.
    pub zxid: i64,
    /// The election round (`logicalclock`) of the sender.
    pub election_epoch: i64,
    /// The epoch of the proposed leader (from the zxid in 28-byte notifications).
    pub peer_epoch: i64,
    /// The message format version: 0 (28/36 bytes), 1 (40 bytes), 2 (with config).
    pub version: i32,
    /// The sender's dynamic configuration text (version 2).
    pub config: Option<&'a str>,
    /// Length of the notification (without the 4-byte length prefix).
    pub len: usize,
}

impl<'a> Notification<'a> {
    /// Decodes a notification body (the bytes after the length prefix).
    ///
    /// Fewer than 28 bytes is [`Error::Truncated`], a state other than
    /// 0..=3 is [`Error::UnknownOpcode`], a config length that is negative
    /// or runs past the body is [`Error::BadLength`], config text that is
    /// not UTF-8 is [`Error::BadUtf8`]. Bytes after the fields are ignored,
    /// as ZooKeeper does.
    pub fn parse(body: &'a [u8]) -> Result<Self> {
        let len = body.len();
        if len < MIN_NOTIFICATION_LEN {
            return Err(Error::Truncated);
        }
        let mut r = Reader::new(body);
        let state = ServerState::from_i32(r.i32()?).ok_or(Error::UnknownOpcode)?;
        let leader = r.i64()?;
        let zxid = r.i64()?;
        let election_epoch = r.i64()?;
        let mut n = Notification {
            state,
            leader,
            zxid,
            election_epoch,
            peer_epoch: zxid >> 32,
            version: 0,
            config: None,
            len,
        };
        if len == MIN_NOTIFICATION_LEN {
            return Ok(n);
        }
        n.peer_epoch = r.i64()?;
        if len == 36 {
            return Ok(n);
        }
        n.version = r.i32()?;
        if n.version > 1 {
            let clen = r.i32()?;
            if clen < 0 || clen as usize > r.remaining() {
                return Err(Error::BadLength);
            }
            let text = r.take(clen as usize)?;
            n.config = Some(core::str::from_utf8(text).map_err(|_| Error::BadUtf8)?);
        }
        Ok(n)
    }

    /// The config text parsed ([`DynamicConfig::parse`]), if there is one.
    pub fn dynamic_config(&self) -> Option<Result<DynamicConfig<'a>>> {
        self.config.map(DynamicConfig::parse)
    }
}

/// One election frame, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FleMessage<'a> {
    /// The connection's initial message.
    Initial(InitialMessage<'a>),
    /// A vote notification.
    Notification(Notification<'a>),
}

impl<'a> FleMessage<'a> {
    /// Decodes one frame as [`FleFramer`] cut it (initial message, or
    /// length prefix + notification).
    pub fn parse(frame: &'a [u8]) -> Result<Self> {
        let head = frame.get(..4).ok_or(Error::Truncated)?;
        if head == [0xff; 4] || head == [0; 4] {
            return InitialMessage::parse(frame).map(FleMessage::Initial);
        }
        let len = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if len < 0 {
            return Err(Error::BadLength);
        }
        let body = frame.get(4..4 + len as usize).ok_or(Error::Truncated)?;
        Notification::parse(body).map(FleMessage::Notification)
    }

    /// `Initial` or `Notification`.
    pub const fn name(&self) -> &'static str {
        match self {
            FleMessage::Initial(_) => "Initial",
            FleMessage::Notification(_) => "Notification",
        }
    }
}

/// Frames of one direction of an election connection: initial messages
/// (both forms) and length-prefixed notifications.
#[derive(Debug, Clone, Copy)]
pub struct FleFramer {
    /// Largest message length accepted (default [`MAX_MESSAGE_LEN`]).
    pub max_len: u32,
}

impl Default for FleFramer {
    fn default() -> Self {
        FleFramer {
            max_len: MAX_MESSAGE_LEN,
        }
    }
}

fn be_i32(d: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

fn be_i64(d: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[at..at + 8]);
    i64::from_be_bytes(b)
}

impl Framer for FleFramer {
    fn check(&self, data: &[u8]) -> core::result::Result<FrameStatus, Error> {
        let partial = |need: usize, exact: bool| Ok(FrameStatus::Partial { need, exact });
        if data.len() < 4 {
            return partial(4, false);
        }
        let first = be_i32(data, 0);
        if first == 0 {
            // 3.4 initial message: a non-negative sid below 2^32.
            return if data.len() >= 8 {
                Ok(FrameStatus::Complete(8))
            } else {
                partial(8, true)
            };
        }
        if first == -1 {
            if data.len() < 8 {
                return partial(20, false);
            }
            let v = be_i64(data, 0);
            if v != PROTOCOL_VERSION_V1 && v != PROTOCOL_VERSION_V2 {
                return Err(Error::UnknownOpcode);
            }
            if data.len() < 20 {
                return partial(20, false);
            }
            let len = be_i32(data, 16);
            if len <= 0 {
                return Err(Error::BadLength);
            }
            if len as usize > MAX_ADDRESS_LEN {
                return Err(Error::OverLimit);
            }
            let total = 20 + len as usize;
            return if data.len() >= total {
                Ok(FrameStatus::Complete(total))
            } else {
                partial(total, true)
            };
        }
        if first < MIN_NOTIFICATION_LEN as i32 {
            return Err(Error::BadLength);
        }
        if first as u32 > self.max_len {
            return Err(Error::OverLimit);
        }
        let total = 4 + first as usize;
        if data.len() >= total {
            Ok(FrameStatus::Complete(total))
        } else {
            partial(total, true)
        }
    }

    fn plausible(&self, data: &[u8]) -> bool {
        if data.len() < 8 {
            return false;
        }
        let first = be_i32(data, 0);
        if first == -1 {
            let v = be_i64(data, 0);
            return v == PROTOCOL_VERSION_V1 || v == PROTOCOL_VERSION_V2;
        }
        // Mid-stream, only notifications of a length ZooKeeper sends.
        let len = first as usize;
        let known = matches!(len, 28 | 36 | 40) || (44..=self.max_len as usize).contains(&len);
        first > 0 && known && ServerState::from_i32(be_i32(data, 4)).is_some()
    }

    fn header_len(&self) -> usize {
        8
    }
}

#[cfg(test)]
pub(crate) mod test_msgs {
    //! Builders for election frames (tests of this module and the tracker).
    extern crate std;
    use crate::client::test_enc::Enc;
    use std::vec::Vec;

    /// A 3.5+ initial message.
    pub(crate) fn initial(sid: i64, addr: &str) -> Vec<u8> {
        Enc::new()
            .i64(super::PROTOCOL_VERSION_V1)
            .i64(sid)
            .s(addr)
            .done()
    }

    /// A length-prefixed version-2 notification.
    pub(crate) fn notification(
        state: i32,
        leader: i64,
        zxid: i64,
        epoch: i64,
        config: &str,
    ) -> Vec<u8> {
        let body = Enc::new()
            .i32(state)
            .i64(leader)
            .i64(zxid)
            .i64(epoch)
            .i64(zxid >> 32)
            .i32(2)
            .s(config)
            .done();
        Enc::new().buf(&body).done()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::test_msgs::*;
    use super::*;
    use crate::ErrorCounts;
    use crate::client::test_enc::{Enc, Noise};
    use crate::stream::{ChunkPool, HalfStream, Item, StreamCounters};
    use std::vec;
    use std::vec::Vec;

    fn body28() -> Enc {
        Enc::new().i32(0).i64(3).i64(0x1_0000_0005).i64(2)
    }

    #[test]
    fn notifications_of_every_length() {
        let b = body28().done();
        let n = Notification::parse(&b).unwrap();
        assert_eq!(
            (n.state, n.leader, n.zxid, n.election_epoch),
            (ServerState::Looking, 3, 0x1_0000_0005, 2)
        );
        assert_eq!((n.peer_epoch, n.version, n.config, n.len), (1, 0, None, 28));

        let b = body28().i64(7).done();
        let n = Notification::parse(&b).unwrap();
        assert_eq!((n.peer_epoch, n.version, n.len), (7, 0, 36));

        let b = body28().i64(7).i32(1).done();
        let n = Notification::parse(&b).unwrap();
        assert_eq!((n.peer_epoch, n.version, n.len), (7, 1, 40));

        let cfg = "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nversion=0";
        let b = Enc::new()
            .i32(2)
            .i64(1)
            .i64(5)
            .i64(4)
            .i64(0)
            .i32(2)
            .s(cfg)
            .done();
        let n = Notification::parse(&b).unwrap();
        assert_eq!(n.state, ServerState::Leading);
        assert_eq!((n.version, n.config, n.len), (2, Some(cfg), 44 + cfg.len()));
        let c = n.dynamic_config().unwrap().unwrap();
        assert_eq!(c.server(1).unwrap().election_port, 3888);
    }

    #[test]
    fn bad_notifications_are_precise_errors() {
        let b = body28().done();
        assert_eq!(Notification::parse(&b[..27]), Err(Error::Truncated));
        let b = Enc::new().i32(4).i64(0).i64(0).i64(0).done();
        assert_eq!(Notification::parse(&b), Err(Error::UnknownOpcode));
        // Version 2 whose config length lies.
        let b = body28().i64(0).i32(2).i32(100).raw(b"short").done();
        assert_eq!(Notification::parse(&b), Err(Error::BadLength));
        let b = body28().i64(0).i32(2).i32(-5).done();
        assert_eq!(Notification::parse(&b), Err(Error::BadLength));
        // Version 2 cut before its config length.
        let b = body28().i64(0).i32(2).u8(0).done();
        assert_eq!(Notification::parse(&b), Err(Error::Truncated));
        let b = body28().i64(0).i32(2).buf(&[0xc3, 0x28]).done();
        assert_eq!(Notification::parse(&b), Err(Error::BadUtf8));
    }

    #[test]
    fn initial_messages_both_forms() {
        let b = initial(2, "localhost:2784");
        let m = InitialMessage::parse(&b).unwrap();
        assert_eq!(m.sid(), 2);
        assert_eq!(m.protocol_version(), Some(PROTOCOL_VERSION_V1));
        assert_eq!(m.addresses().collect::<Vec<_>>(), [("localhost", 2784)]);

        let b = Enc::new()
            .i64(PROTOCOL_VERSION_V2)
            .i64(3)
            .s("10.0.0.3:3888|[fd00::3]:3888")
            .done();
        let m = InitialMessage::parse(&b).unwrap();
        assert_eq!(
            m.addresses().collect::<Vec<_>>(),
            [("10.0.0.3", 3888), ("fd00::3", 3888)]
        );

        let b = Enc::new().i64(5).done();
        let m = InitialMessage::parse(&b).unwrap();
        assert_eq!((m.sid(), m.protocol_version()), (5, None));
        assert_eq!(m.addresses().next(), None);
    }

    #[test]
    fn bad_initial_messages() {
        let b = Enc::new().i64(-7).i64(1).s("h:1").done();
        assert_eq!(InitialMessage::parse(&b), Err(Error::UnknownOpcode));
        let b = Enc::new().i64(PROTOCOL_VERSION_V1).i64(1).i32(0).done();
        assert_eq!(InitialMessage::parse(&b), Err(Error::BadLength));
        let b = Enc::new().i64(PROTOCOL_VERSION_V1).i64(1).i32(4096).done();
        assert_eq!(InitialMessage::parse(&b), Err(Error::OverLimit));
        let b = Enc::new().i64(PROTOCOL_VERSION_V1).i64(1).i32(9).done();
        assert_eq!(InitialMessage::parse(&b), Err(Error::Truncated));
        let b = Enc::new()
            .i64(PROTOCOL_VERSION_V1)
            .i64(1)
            .s("nohostport")
            .done();
        assert_eq!(InitialMessage::parse(&b), Err(Error::Malformed));
        assert_eq!(InitialMessage::parse(&[0; 5]), Err(Error::Truncated));
    }

    fn frames_of(stream: &[u8], cuts: &[usize]) -> (Vec<Vec<u8>>, ErrorCounts, StreamCounters) {
        let mut pool = ChunkPool::new(vec![0u8; 4096 * 4], 4096);
        let mut hs = HalfStream::new();
        hs.syn(&mut pool, 0);
        let mut c = StreamCounters::default();
        let mut errors = ErrorCounts::ZERO;
        let mut out = Vec::new();
        let mut at = 0;
        for &end in cuts.iter().chain(core::iter::once(&stream.len())) {
            if end <= at {
                continue;
            }
            hs.push(
                &mut pool,
                &FleFramer::default(),
                1 + at as u32,
                &stream[at..end],
                end - at,
                &mut c,
                &mut errors,
                &mut |it| {
                    if let Item::Frame(f) = it {
                        out.push(f.to_vec())
                    }
                },
            );
            at = end;
        }
        (out, errors, c)
    }

    #[test]
    fn framer_splits_initial_and_notifications_even_byte_by_byte() {
        let init = initial(2, "localhost:2784");
        let n1 = notification(0, 2, 0, 1, "version=0");
        let n2 = notification(0, 3, 0, 1, "version=0");
        let stream = [init.clone(), n1.clone(), n2.clone()].concat();
        let (f, errors, _) = frames_of(&stream, &[]);
        assert_eq!(f, [init.clone(), n1.clone(), n2.clone()]);
        assert_eq!(errors, ErrorCounts::ZERO);
        let cuts: Vec<usize> = (1..stream.len()).collect();
        let (f, _, _) = frames_of(&stream, &cuts);
        assert_eq!(f, [init, n1, n2]);
        let msgs: Vec<&str> = f
            .iter()
            .map(|x| FleMessage::parse(x).unwrap().name())
            .collect();
        assert_eq!(msgs, ["Initial", "Notification", "Notification"]);
    }

    #[test]
    fn framer_takes_the_legacy_initial_message() {
        let init = Enc::new().i64(1).done();
        let n = notification(1, 3, 0, 1, "");
        let (f, _, _) = frames_of(&[init.clone(), n.clone()].concat(), &[3]);
        assert_eq!(f, [init, n]);
        assert_eq!(
            FleMessage::parse(&f[0]).unwrap(),
            FleMessage::Initial(InitialMessage::Legacy { sid: 1 })
        );
    }

    #[test]
    fn garbage_and_lying_lengths_resynchronise() {
        let n = notification(0, 2, 0, 1, "version=0");
        let mut stream = n.clone();
        stream.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
        stream.extend_from_slice(&[0xAB; 50]);
        stream.extend_from_slice(&n);
        stream.extend_from_slice(&n);
        stream.extend_from_slice(&5u32.to_be_bytes()); // too short to be a notification
        stream.extend_from_slice(&n);
        let (f, errors, c) = frames_of(&stream, &[]);
        assert_eq!(f, [n.clone(), n.clone(), n.clone(), n]);
        assert!(errors.get(Error::OverLimit) >= 1);
        assert!(errors.get(Error::BadLength) >= 1);
        assert_eq!(c.resyncs, 2);
    }

    #[test]
    fn every_truncation_of_a_frame_is_an_error_never_a_panic() {
        let frames = [
            initial(3, "127.0.0.3:3888"),
            notification(0, 3, 0x2_0000_0001, 2, "server.3=127.0.0.3:2888:3888;2181"),
        ];
        for f in &frames {
            assert!(FleMessage::parse(f).is_ok());
            for cut in 0..f.len() {
                assert!(FleMessage::parse(&f[..cut]).is_err(), "cut {cut}");
            }
        }
        let mut noise = Noise::new(7);
        for _ in 0..2000 {
            let mut b = frames[noise.below(2)].clone();
            noise.mutate(&mut b);
            let _ = FleMessage::parse(&b);
            let _ = FleFramer::default().check(&b);
            let _ = FleFramer::default().plausible(&b);
        }
    }
}
