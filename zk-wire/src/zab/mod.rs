//! The quorum protocol (ZAB, default port 2888): what the leader and its
//! learners (followers, observers) say to each other.
//!
//! Wire format: a learner connects to the leader's quorum port; both
//! directions are a sequence of jute records
//! (`zookeeper-jute/src/main/resources/zookeeper.jute`, module
//! `org.apache.zookeeper.server.quorum`) with **no outer length prefix**:
//!
//! ```text
//! QuorumPacket { int type; long zxid; buffer data; vector<Id> authinfo }   Id { ustring scheme; ustring id }
//! ```
//!
//! `type` is one of the constants of `server/quorum/Leader.java`
//! ([`PacketType`], 1 to 19); `data` depends on it ([`Payload`]), as the
//! senders build it in `Leader.java`, `LearnerHandler.java` and
//! `Learner.java`:
//!
//! | type | dir | `zxid` | `data` |
//! |------|-----|--------|--------|
//! | REQUEST (1) | L→ | -1 | `long sessionId, int cxid, int type` + the client's request record; `authinfo` = the session's ids |
//! | PROPOSAL (2), INFORM (8) | →L | the txn's | `TxnHeader` + txn record ([`Txn`]) |
//! | ACK (3) | L→ | acked zxid | null |
//! | COMMIT (4) | →L | committed zxid | null |
//! | PING (5) | both | leader: last proposal size (3.5+), learner: echoed | leader: null; learner: `(long session, int timeout)*` |
//! | REVALIDATE (6) | both | -1 | learner: `long session, int timeout`; leader: `long session, boolean valid` |
//! | SYNC (7) | →L | 0 | null |
//! | COMMITANDACTIVATE (9) | →L | reconfig zxid | `long designatedLeader` |
//! | NEWLEADER (10) | →L | new epoch << 32 | config text (3.5+), null before |
//! | FOLLOWERINFO (11), OBSERVERINFO (16) | L→ | accepted epoch << 32 | `LearnerInfo { long serverid; int protocolVersion; long configVersion }` (8 or 12 bytes before 3.5) |
//! | UPTODATE (12) | →L | -1 | null |
//! | DIFF (13), TRUNC (14), SNAP (15) | →L | sync point | null |
//! | LEADERINFO (17) | →L | new epoch << 32 | `int protocolVersion` (0x10000) |
//! | ACKEPOCH (18) | L→ | last logged zxid | `int currentEpoch` (-1: already accepted) |
//! | INFORMANDACTIVATE (19) | →L | reconfig zxid | `long designatedLeader` + `TxnHeader` + txn record |
//!
//! After `SNAP` the leader writes its whole database *outside* any
//! `QuorumPacket` (`ZKDatabase.serializeSnapshot`) and ends it with the jute
//! string `"BenWasHere"`; [`ZabFramer`] passes over it in pieces (see
//! [`ZabFramer::set_snapshot`]).
//!
//! Framing needs the record itself: [`ZabFramer`] reads the header
//! (16 bytes: type, zxid, data length), skips the data and walks the
//! authinfo vector. A packet larger than the reassembly chunk is assumed to
//! have no authinfo (only `REQUEST` carries any, and those are small), so
//! the stream can skip its tail and stay in step.

mod txn;

pub use txn::{
    MultiTxn, SubTxn, SubTxns, TXN_HEADER_LEN, Txn, TxnBody, TxnHeader, txn_type, txn_type_name,
};

use crate::client::{OpCode, Reader, RequestBody};
use crate::stream::{FrameStatus, Framer};
use crate::{Error, Result};
use core::cell::Cell;
use core::iter::FusedIterator;

/// Bytes of a `QuorumPacket` header: type, zxid, data length.
pub const HEADER_LEN: usize = 16;

/// Most authinfo entries accepted on one packet; more is [`Error::OverLimit`].
pub const MAX_AUTH_IDS: usize = 1024;

/// The jute string `"BenWasHere"` that ends a snapshot sent after `SNAP`.
pub const SNAPSHOT_SIGNATURE: [u8; 14] = *b"\0\0\0\x0aBenWasHere";

/// Largest zxid epoch (upper 32 bits) [`ZabFramer::plausible`] accepts when
/// hunting for a packet start; real epochs grow by one per election.
pub const MAX_PLAUSIBLE_EPOCH: i64 = 0x00ff_ffff;

/// Quorum packet types, the constants of `Leader.java`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PacketType {
    /// A learner forwards a client's write (1).
    Request = 1,
    /// The leader proposes a transaction (2).
    Proposal = 2,
    /// A follower has logged a proposal (3).
    Ack = 3,
    /// The leader commits a proposal (4).
    Commit = 4,
    /// Liveness, and the learner's session touches (5).
    Ping = 5,
    /// A learner asks whether a moved session is still valid (6).
    Revalidate = 6,
    /// Answer to a client `sync` (7).
    Sync = 7,
    /// A committed proposal, sent to observers (8).
    Inform = 8,
    /// COMMIT of a reconfig (9).
    CommitAndActivate = 9,
    /// The leader's epoch and, from 3.5, its config (10).
    NewLeader = 10,
    /// A follower's id and versions (11).
    FollowerInfo = 11,
    /// The learner is in sync and may serve clients (12).
    UpToDate = 12,
    /// Sync by sending the missing transactions (13).
    Diff = 13,
    /// Sync by truncating the learner's log (14).
    Trunc = 14,
    /// Sync by sending a whole snapshot (15).
    Snap = 15,
    /// An observer's id and versions (16).
    ObserverInfo = 16,
    /// The leader's new epoch and protocol version (17).
    LeaderInfo = 17,
    /// A learner acknowledges the new epoch (18).
    AckEpoch = 18,
    /// INFORM of a reconfig (19).
    InformAndActivate = 19,
}

impl PacketType {
    /// Number of packet types.
    pub const COUNT: usize = 19;

    /// Every type, by wire value order.
    pub const ALL: [PacketType; PacketType::COUNT] = [
        PacketType::Request,
        PacketType::Proposal,
        PacketType::Ack,
        PacketType::Commit,
        PacketType::Ping,
        PacketType::Revalidate,
        PacketType::Sync,
        PacketType::Inform,
        PacketType::CommitAndActivate,
        PacketType::NewLeader,
        PacketType::FollowerInfo,
        PacketType::UpToDate,
        PacketType::Diff,
        PacketType::Trunc,
        PacketType::Snap,
        PacketType::ObserverInfo,
        PacketType::LeaderInfo,
        PacketType::AckEpoch,
        PacketType::InformAndActivate,
    ];

    /// The type with this wire value.
    pub const fn from_i32(v: i32) -> Option<PacketType> {
        if v >= 1 && v <= PacketType::COUNT as i32 {
            Some(Self::ALL[v as usize - 1])
        } else {
            None
        }
    }

    /// The wire value.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// Position in [`PacketType::ALL`] (for counter tables).
    pub const fn index(self) -> usize {
        self as usize - 1
    }

    /// ZooKeeper's name: `PROPOSAL`, `COMMITANDACTIVATE`, ...
    pub const fn name(self) -> &'static str {
        match self {
            PacketType::Request => "REQUEST",
            PacketType::Proposal => "PROPOSAL",
            PacketType::Ack => "ACK",
            PacketType::Commit => "COMMIT",
            PacketType::Ping => "PING",
            PacketType::Revalidate => "REVALIDATE",
            PacketType::Sync => "SYNC",
            PacketType::Inform => "INFORM",
            PacketType::CommitAndActivate => "COMMITANDACTIVATE",
            PacketType::NewLeader => "NEWLEADER",
            PacketType::FollowerInfo => "FOLLOWERINFO",
            PacketType::UpToDate => "UPTODATE",
            PacketType::Diff => "DIFF",
            PacketType::Trunc => "TRUNC",
            PacketType::Snap => "SNAP",
            PacketType::ObserverInfo => "OBSERVERINFO",
            PacketType::LeaderInfo => "LEADERINFO",
            PacketType::AckEpoch => "ACKEPOCH",
            PacketType::InformAndActivate => "INFORMANDACTIVATE",
        }
    }
}

/// One counter per [`PacketType`]: quorum packets seen, by type. Adding a
/// type changes nothing for users of this type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PacketCounts([u64; PacketType::COUNT]);

impl PacketCounts {
    /// Counts one packet of type `t`.
    #[inline]
    pub fn add(&mut self, t: PacketType) {
        self.0[t.index()] += 1;
    }

    /// Packets of type `t`.
    #[inline]
    pub const fn get(&self, t: PacketType) -> u64 {
        self.0[t.index()]
    }

    /// Packets of every type.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The types seen at least once, with their counts, in wire value order.
    pub fn nonzero(&self) -> impl Iterator<Item = (PacketType, u64)> + '_ {
        PacketType::ALL
            .into_iter()
            .map(|t| (t, self.get(t)))
            .filter(|&(_, n)| n > 0)
    }
}

/// A `vector<Id>`: checked once, iterated lazily as `(scheme, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AuthInfo<'a> {
    raw: &'a [u8],
    len: usize,
}

impl<'a> AuthInfo<'a> {
    /// No ids.
    pub const EMPTY: AuthInfo<'static> = AuthInfo { raw: &[], len: 0 };

    /// Reads and checks a `vector<Id>` (null reads as empty).
    pub fn read(r: &mut Reader<'a>) -> Result<Self> {
        let len = r.vector_len(8)?;
        if len > MAX_AUTH_IDS {
            return Err(Error::OverLimit);
        }
        let start = r.rest();
        for _ in 0..len {
            r.ustring()?;
            r.ustring()?;
        }
        Ok(AuthInfo {
            raw: &start[..start.len() - r.remaining()],
            len,
        })
    }

    /// Number of ids.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// True when there are none.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ids as `(scheme, id)`.
    pub fn iter(&self) -> AuthIds<'a> {
        AuthIds {
            r: Reader::new(self.raw),
            left: self.len,
        }
    }
}

/// Iterator over an [`AuthInfo`].
#[derive(Debug, Clone)]
pub struct AuthIds<'a> {
    r: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for AuthIds<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        match (self.r.ustring(), self.r.ustring()) {
            (Ok(s), Ok(i)) => Some((s, i)),
            _ => {
                self.left = 0;
                None
            }
        }
    }
}

impl FusedIterator for AuthIds<'_> {}

/// A `QuorumPacket`, borrowed from the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QuorumPacket<'a> {
    /// The packet type.
    pub packet_type: PacketType,
    /// The zxid field (its meaning depends on the type).
    pub zxid: i64,
    /// The data declared length (-1 for null).
    pub data_len: i32,
    /// The data bytes seen (all of them unless [`QuorumPacket::is_prefix`]).
    pub data: &'a [u8],
    /// The authinfo ids (empty for a prefix).
    pub auth: AuthInfo<'a>,
}

impl<'a> QuorumPacket<'a> {
    /// Decodes one whole packet; answers it and the bytes it used.
    pub fn parse(bytes: &'a [u8]) -> Result<(Self, usize)> {
        let mut r = Reader::new(bytes);
        let t = r.i32()?;
        let packet_type = PacketType::from_i32(t).ok_or(Error::UnknownOpcode)?;
        let zxid = r.i64()?;
        let mut peek = r;
        let data_len = peek.i32()?;
        let data = r.buffer()?;
        let auth = AuthInfo::read(&mut r)?;
        Ok((
            QuorumPacket {
                packet_type,
                zxid,
                data_len,
                data,
                auth,
            },
            bytes.len() - r.remaining(),
        ))
    }

    /// Decodes the first bytes of a packet that was larger than the
    /// reassembly chunk or damaged by lost segments: type, zxid, data
    /// length and whatever data is there.
    pub fn parse_prefix(prefix: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(prefix);
        let t = r.i32()?;
        let packet_type = PacketType::from_i32(t).ok_or(Error::UnknownOpcode)?;
        let zxid = r.i64()?;
        let data_len = r.i32()?;
        if data_len < -1 {
            return Err(Error::BadLength);
        }
        let n = (data_len.max(0) as usize).min(r.remaining());
        Ok(QuorumPacket {
            packet_type,
            zxid,
            data_len,
            data: r.take(n)?,
            auth: AuthInfo::EMPTY,
        })
    }

    /// True when only the first bytes of the data were seen.
    pub fn is_prefix(&self) -> bool {
        self.data.len() < self.data_len.max(0) as usize
    }

    /// Decodes the data for this packet's type ([`Payload::parse`]); a
    /// prefix decodes to what its first bytes hold.
    pub fn payload(&self) -> Result<Payload<'a>> {
        if self.is_prefix() {
            Payload::parse_prefix(self.packet_type, self.data)
        } else {
            Payload::parse(self.packet_type, self.data)
        }
    }
}

/// `LearnerInfo`, the data of FOLLOWERINFO / OBSERVERINFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LearnerInfo {
    /// The learner's server id.
    pub sid: i64,
    /// Its protocol version (0x10000 from 3.4; absent in 3.3's 8 bytes).
    pub protocol_version: Option<i32>,
    /// The version of its config (3.5+).
    pub config_version: Option<i64>,
}

/// A client request a learner forwards to the leader (REQUEST data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ForwardedRequest<'a> {
    /// The client's session.
    pub session: i64,
    /// The client's xid.
    pub cxid: i32,
    /// The request type.
    pub opcode: OpCode,
    /// The request record.
    pub body: ForwardedBody<'a>,
}

/// The record of a [`ForwardedRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ForwardedBody<'a> {
    /// A client request record (as on port 2181).
    Request(RequestBody<'a>),
    /// createSession: the requested timeout.
    CreateSession {
        /// Session timeout, ms.
        timeout: i32,
    },
    /// The first bytes of a record larger than the reassembly chunk.
    Prefix {
        /// The path, when the request has one and it fits.
        path: Option<&'a str>,
    },
}

impl<'a> ForwardedBody<'a> {
    /// The path of the request, if it has one.
    pub fn path(&self) -> Option<&'a str> {
        match self {
            ForwardedBody::Request(b) => b.path(),
            ForwardedBody::CreateSession { .. } => None,
            ForwardedBody::Prefix { path } => *path,
        }
    }
}

/// Session touches a learner reports in its PING (`long session, int timeout` pairs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SessionTouches<'a> {
    raw: &'a [u8],
}

impl<'a> SessionTouches<'a> {
    /// Number of sessions.
    pub const fn len(&self) -> usize {
        self.raw.len() / 12
    }

    /// True when there are none.
    pub const fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The `(session, timeout)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (i64, i32)> + 'a {
        self.raw.chunks_exact(12).map(|c| {
            let mut s = [0u8; 8];
            s.copy_from_slice(&c[..8]);
            (
                i64::from_be_bytes(s),
                i32::from_be_bytes([c[8], c[9], c[10], c[11]]),
            )
        })
    }
}

/// The data of a packet, decoded for its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Payload<'a> {
    /// No data (null or empty).
    Empty,
    /// REQUEST.
    Request(ForwardedRequest<'a>),
    /// PROPOSAL, INFORM.
    Txn(Txn<'a>),
    /// FOLLOWERINFO, OBSERVERINFO.
    LearnerInfo(LearnerInfo),
    /// LEADERINFO.
    LeaderInfo {
        /// The leader's protocol version (0x10000).
        protocol_version: i32,
    },
    /// ACKEPOCH.
    AckEpoch {
        /// The learner's current epoch (-1 when it had already accepted the new one).
        epoch: i32,
    },
    /// NEWLEADER (3.5+): the leader's config text.
    NewLeader {
        /// The dynamic config text.
        config: &'a str,
    },
    /// REVALIDATE from a learner.
    Revalidate {
        /// The session.
        session: i64,
        /// Its timeout, ms.
        timeout: i32,
    },
    /// REVALIDATE answer from the leader.
    RevalidateReply {
        /// The session.
        session: i64,
        /// Whether it is still valid.
        valid: bool,
    },
    /// PING from a learner.
    Ping(SessionTouches<'a>),
    /// COMMITANDACTIVATE (no txn) and INFORMANDACTIVATE (with its txn).
    Activate {
        /// The server designated to lead under the new config.
        leader: i64,
        /// The reconfig transaction (INFORMANDACTIVATE).
        txn: Option<Txn<'a>>,
    },
    /// Data on a type that normally has none (kept, not decoded).
    Unexpected(&'a [u8]),
}

fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

impl<'a> Payload<'a> {
    /// Decodes the data of a packet of type `t`.
    ///
    /// A record cut short is [`Error::Truncated`], a REQUEST of an unknown
    /// type [`Error::UnknownOpcode`], a PING or REVALIDATE whose length
    /// fits no form [`Error::BadLength`], text that is not UTF-8
    /// [`Error::BadUtf8`].
    pub fn parse(t: PacketType, data: &'a [u8]) -> Result<Self> {
        use PacketType::*;
        let mut r = Reader::new(data);
        Ok(match t {
            Request => Payload::Request(read_request(&mut r, true)?),
            Proposal | Inform => Payload::Txn(Txn::parse(data)?),
            FollowerInfo | ObserverInfo => {
                let sid = r.i64()?;
                let protocol_version = r.i32().ok();
                let config_version = protocol_version.and_then(|_| r.i64().ok());
                Payload::LearnerInfo(LearnerInfo {
                    sid,
                    protocol_version,
                    config_version,
                })
            }
            LeaderInfo => Payload::LeaderInfo {
                protocol_version: r.i32()?,
            },
            AckEpoch => Payload::AckEpoch { epoch: r.i32()? },
            NewLeader if data.is_empty() => Payload::Empty,
            NewLeader => Payload::NewLeader {
                config: core::str::from_utf8(data).map_err(|_| Error::BadUtf8)?,
            },
            Revalidate => match data.len() {
                12 => Payload::Revalidate {
                    session: r.i64()?,
                    timeout: r.i32()?,
                },
                9 => Payload::RevalidateReply {
                    session: r.i64()?,
                    valid: r.bool()?,
                },
                n if n < 9 => return Err(Error::Truncated),
                _ => return Err(Error::BadLength),
            },
            Ping if data.is_empty() => Payload::Empty,
            Ping if data.len().is_multiple_of(12) => Payload::Ping(SessionTouches { raw: data }),
            Ping => return Err(Error::BadLength),
            CommitAndActivate => Payload::Activate {
                leader: r.i64()?,
                txn: None,
            },
            InformAndActivate => {
                let leader = r.i64()?;
                Payload::Activate {
                    leader,
                    txn: Some(Txn::parse(r.rest())?),
                }
            }
            Ack | Commit | Sync | UpToDate | Diff | Trunc | Snap => {
                if data.is_empty() {
                    Payload::Empty
                } else {
                    Payload::Unexpected(data)
                }
            }
        })
    }

    /// Decodes the first bytes of the data of a packet of type `t` that was
    /// larger than the reassembly chunk: headers, and paths when they fit.
    pub fn parse_prefix(t: PacketType, data: &'a [u8]) -> Result<Self> {
        use PacketType::*;
        let mut r = Reader::new(data);
        Ok(match t {
            Request => Payload::Request(read_request(&mut r, false)?),
            Proposal | Inform => Payload::Txn(Txn::parse_prefix(data)?),
            InformAndActivate => {
                let leader = r.i64()?;
                Payload::Activate {
                    leader,
                    txn: Some(Txn::parse_prefix(r.rest())?),
                }
            }
            NewLeader => Payload::NewLeader {
                config: match core::str::from_utf8(data) {
                    Ok(s) => s,
                    Err(e) => core::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or(""),
                },
            },
            Ping => Payload::Ping(SessionTouches {
                raw: &data[..data.len() - data.len() % 12],
            }),
            _ => Self::parse(t, data)?,
        })
    }

    /// The transaction, for PROPOSAL, INFORM and INFORMANDACTIVATE.
    pub fn txn(&self) -> Option<&Txn<'a>> {
        match self {
            Payload::Txn(t) => Some(t),
            Payload::Activate { txn: Some(t), .. } => Some(t),
            _ => None,
        }
    }
}

fn read_request<'a>(r: &mut Reader<'a>, whole: bool) -> Result<ForwardedRequest<'a>> {
    let session = r.i64()?;
    let cxid = r.i32()?;
    let t = r.i32()?;
    let opcode = OpCode::from_i32(t).ok_or(Error::UnknownOpcode)?;
    let body = match opcode {
        OpCode::CreateSession => ForwardedBody::CreateSession { timeout: r.i32()? },
        _ if whole => ForwardedBody::Request(RequestBody::read(opcode, r)?),
        _ => ForwardedBody::Prefix {
            path: if opcode.has_path() {
                r.ustring().ok()
            } else {
                None
            },
        },
    };
    Ok(ForwardedRequest {
        session,
        cxid,
        opcode,
        body,
    })
}

fn be_i32_at(d: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

/// What a [`ZabFramer`] expects next in its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ZabMode {
    /// Quorum packets.
    #[default]
    Packets,
    /// The snapshot that follows a SNAP packet, up to its signature.
    Snapshot,
}

/// Frames of one direction of a quorum connection.
///
/// In [`ZabMode::Packets`] each frame is one `QuorumPacket`. After a SNAP
/// the caller switches it to [`ZabMode::Snapshot`] (the mode is a `Cell`,
/// so the frame callback can flip it while the stream holds the framer):
/// the snapshot is then handed out in pieces (each a "frame") up to and
/// including [`SNAPSHOT_SIGNATURE`]; the piece that ends with it tells the
/// caller to switch back. Memory stays bounded whatever the snapshot size.
#[derive(Debug, Clone)]
pub struct ZabFramer {
    /// Largest data length accepted (jute.maxbuffer plus slack).
    pub max_len: u32,
    mode: Cell<ZabMode>,
}

impl Default for ZabFramer {
    fn default() -> Self {
        ZabFramer::new(crate::stream::LengthPrefixed::DEFAULT_MAX_LEN)
    }
}

impl ZabFramer {
    /// A framer expecting packets, accepting data up to `max_len` bytes.
    pub const fn new(max_len: u32) -> Self {
        ZabFramer {
            max_len,
            mode: Cell::new(ZabMode::Packets),
        }
    }

    /// What the framer expects now.
    pub fn mode(&self) -> ZabMode {
        self.mode.get()
    }

    /// Sets what comes next (after a SNAP: [`ZabMode::Snapshot`]).
    pub fn set_mode(&self, m: ZabMode) {
        self.mode.set(m)
    }

    /// [`ZabFramer::set_mode`] with [`ZabMode::Snapshot`] or [`ZabMode::Packets`].
    pub fn set_snapshot(&self, on: bool) {
        self.set_mode(if on {
            ZabMode::Snapshot
        } else {
            ZabMode::Packets
        })
    }

    fn check_packet(&self, data: &[u8]) -> core::result::Result<FrameStatus, Error> {
        let partial = |need: usize, exact: bool| Ok(FrameStatus::Partial { need, exact });
        if data.len() < 4 {
            return partial(HEADER_LEN, false);
        }
        if PacketType::from_i32(be_i32_at(data, 0)).is_none() {
            return Err(Error::UnknownOpcode);
        }
        if data.len() < HEADER_LEN {
            return partial(HEADER_LEN, false);
        }
        let dlen = be_i32_at(data, 12);
        if dlen < -1 {
            return Err(Error::BadLength);
        }
        if dlen > 0 && dlen as u32 > self.max_len {
            return Err(Error::OverLimit);
        }
        let mut off = HEADER_LEN + dlen.max(0) as usize;
        // The authinfo count: until it is seen, assume it is null (see the
        // module notes), which makes the length exact for skipping.
        if data.len() < off + 4 {
            return partial(off + 4, true);
        }
        let count = be_i32_at(data, off);
        off += 4;
        if count < -1 {
            return Err(Error::BadLength);
        }
        if count > 0 && count as usize > MAX_AUTH_IDS {
            return Err(Error::OverLimit);
        }
        let limit = HEADER_LEN + self.max_len as usize + 4;
        for i in 0..count.max(0) as usize * 2 {
            if data.len() < off + 4 {
                return partial(off + 4, false);
            }
            let n = be_i32_at(data, off);
            if n < -1 {
                return Err(Error::BadLength);
            }
            off += 4 + n.max(0) as usize;
            if off > limit {
                return Err(Error::OverLimit);
            }
            if data.len() < off {
                let last = i + 1 == count as usize * 2;
                return partial(off, last);
            }
        }
        Ok(FrameStatus::Complete(off))
    }

    fn check_snapshot(&self, data: &[u8]) -> core::result::Result<FrameStatus, Error> {
        let sig = SNAPSHOT_SIGNATURE.len();
        if let Some(k) = data.windows(sig).position(|w| w == SNAPSHOT_SIGNATURE) {
            return Ok(FrameStatus::Complete(k + sig));
        }
        if data.len() >= sig {
            // Keep a tail that may hold the start of the signature.
            return Ok(FrameStatus::Complete(data.len() - (sig - 1)));
        }
        Ok(FrameStatus::Partial {
            need: sig,
            exact: false,
        })
    }

    /// Could a packet start here? Strict: the type's usual data length,
    /// a zxid of a plausible epoch, the authinfo count when visible, and a
    /// PROPOSAL's txn zxid equal to its own.
    pub fn plausible_packet(&self, data: &[u8]) -> bool {
        use PacketType::*;
        if data.len() < HEADER_LEN {
            return false;
        }
        let Some(t) = PacketType::from_i32(be_i32_at(data, 0)) else {
            return false;
        };
        let zxid = be_i64(&data[4..12]);
        if zxid < -1 || (zxid >> 32) > MAX_PLAUSIBLE_EPOCH {
            return false;
        }
        let dlen = be_i32_at(data, 12);
        if dlen < -1 || (dlen > 0 && dlen as u32 > self.max_len) {
            return false;
        }
        let epoch_start = zxid > 0 && zxid & 0xffff_ffff == 0;
        let ok = match t {
            Ack | Diff | Trunc | Snap | Sync => dlen <= 0 && zxid >= 0,
            Commit => dlen <= 0 && zxid > 0,
            UpToDate => dlen <= 0 && zxid == -1,
            LeaderInfo => dlen == 4 && epoch_start,
            AckEpoch => dlen == 4 && zxid >= 0,
            CommitAndActivate => dlen == 8 && zxid > 0,
            FollowerInfo | ObserverInfo => matches!(dlen, 8 | 12 | 20) && zxid >= 0,
            Revalidate => matches!(dlen, 9 | 12) && zxid == -1,
            Ping => (dlen <= 0 || (dlen as u32).is_multiple_of(12)) && zxid >= 0,
            Proposal | Inform => dlen >= TXN_HEADER_LEN as i32 && zxid > 0,
            InformAndActivate => dlen >= 8 + TXN_HEADER_LEN as i32 && zxid > 0,
            Request => dlen >= 16 && zxid == -1,
            NewLeader => zxid >= 0 && zxid & 0xffff_ffff == 0,
        };
        if !ok {
            return false;
        }
        let d = &data[HEADER_LEN..];
        let ok_data = match t {
            // The forwarded request's type.
            Request if d.len() >= 16 => OpCode::from_i32(be_i32_at(d, 12)).is_some(),
            // The txn header repeats the zxid and names a known type.
            Proposal | Inform if d.len() >= TXN_HEADER_LEN => {
                be_i64(&d[12..20]) == zxid && txn_type_name(be_i32_at(d, 28)).is_some()
            }
            // Config text starts with a letter.
            NewLeader if dlen > 0 && !d.is_empty() => d[0].is_ascii_alphabetic(),
            _ => true,
        };
        if !ok_data {
            return false;
        }
        let off = HEADER_LEN + dlen.max(0) as usize;
        if data.len() >= off + 4 {
            let count = be_i32_at(data, off);
            if !(-1..=64).contains(&count) {
                return false;
            }
        }
        true
    }
}

impl Framer for ZabFramer {
    fn check(&self, data: &[u8]) -> core::result::Result<FrameStatus, Error> {
        match self.mode.get() {
            ZabMode::Packets => self.check_packet(data),
            ZabMode::Snapshot => self.check_snapshot(data),
        }
    }

    fn plausible(&self, data: &[u8]) -> bool {
        match self.mode.get() {
            ZabMode::Packets => self.plausible_packet(data),
            ZabMode::Snapshot => {
                data.starts_with(&SNAPSHOT_SIGNATURE) || self.plausible_packet(data)
            }
        }
    }

    fn header_len(&self) -> usize {
        HEADER_LEN
    }
}

#[cfg(test)]
pub(crate) mod test_packets {
    //! Builders for quorum packets.
    extern crate std;
    use crate::client::test_enc::Enc;
    use std::vec::Vec;

    /// A packet with null authinfo.
    pub(crate) fn packet(t: i32, zxid: i64, data: Option<&[u8]>) -> Vec<u8> {
        let e = Enc::new().i32(t).i64(zxid);
        let e = match data {
            Some(d) => e.buf(d),
            None => e.null(),
        };
        e.null().done()
    }

    /// A packet with authinfo ids.
    pub(crate) fn packet_auth(t: i32, zxid: i64, data: &[u8], ids: &[(&str, &str)]) -> Vec<u8> {
        let mut e = Enc::new().i32(t).i64(zxid).buf(data).i32(ids.len() as i32);
        for (s, i) in ids {
            e = e.s(s).s(i);
        }
        e.done()
    }

    /// A PROPOSAL of a create.
    pub(crate) fn proposal(zxid: i64, path: &str) -> Vec<u8> {
        let txn = super::txn::test_txn::create(0x5, zxid, path, b"v").done();
        packet(2, zxid, Some(&txn))
    }

    /// FOLLOWERINFO of 3.5+.
    pub(crate) fn follower_info(sid: i64, epoch: i64) -> Vec<u8> {
        let li = Enc::new().i64(sid).i32(0x10000).i64(0).done();
        packet(11, epoch << 32, Some(&li))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::test_packets::*;
    use super::*;
    use crate::ErrorCounts;
    use crate::client::test_enc::{Enc, Noise};
    use crate::stream::{ChunkPool, HalfStream, Item, StreamCounters};
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn packet_types_match_leader_java() {
        let expect = [
            (1, "REQUEST"),
            (2, "PROPOSAL"),
            (3, "ACK"),
            (4, "COMMIT"),
            (5, "PING"),
            (6, "REVALIDATE"),
            (7, "SYNC"),
            (8, "INFORM"),
            (9, "COMMITANDACTIVATE"),
            (10, "NEWLEADER"),
            (11, "FOLLOWERINFO"),
            (12, "UPTODATE"),
            (13, "DIFF"),
            (14, "TRUNC"),
            (15, "SNAP"),
            (16, "OBSERVERINFO"),
            (17, "LEADERINFO"),
            (18, "ACKEPOCH"),
            (19, "INFORMANDACTIVATE"),
        ];
        for (code, name) in expect {
            let t = PacketType::from_i32(code).unwrap();
            assert_eq!(
                (t.code(), t.name(), t.index()),
                (code, name, code as usize - 1)
            );
        }
        assert_eq!(PacketType::from_i32(0), None);
        assert_eq!(PacketType::from_i32(20), None);
    }

    #[test]
    fn payloads_of_every_type() {
        let li = Enc::new().i64(2).i32(0x10000).i64(0).done();
        let p = Payload::parse(PacketType::FollowerInfo, &li).unwrap();
        assert_eq!(
            p,
            Payload::LearnerInfo(LearnerInfo {
                sid: 2,
                protocol_version: Some(0x10000),
                config_version: Some(0)
            })
        );
        let li34 = Enc::new().i64(2).i32(0x10000).done();
        let p = Payload::parse(PacketType::ObserverInfo, &li34).unwrap();
        assert!(matches!(
            p,
            Payload::LearnerInfo(LearnerInfo {
                config_version: None,
                ..
            })
        ));
        let v = 0x10000i32.to_be_bytes();
        assert_eq!(
            Payload::parse(PacketType::LeaderInfo, &v),
            Ok(Payload::LeaderInfo {
                protocol_version: 0x10000
            })
        );
        assert_eq!(
            Payload::parse(PacketType::AckEpoch, &(-1i32).to_be_bytes()),
            Ok(Payload::AckEpoch { epoch: -1 })
        );
        let rv = Enc::new().i64(0x3001df405ba0000).i32(10000).done();
        assert_eq!(
            Payload::parse(PacketType::Revalidate, &rv),
            Ok(Payload::Revalidate {
                session: 0x3001df405ba0000,
                timeout: 10000
            })
        );
        let rr = Enc::new().i64(7).bool(true).done();
        assert_eq!(
            Payload::parse(PacketType::Revalidate, &rr),
            Ok(Payload::RevalidateReply {
                session: 7,
                valid: true
            })
        );
        assert_eq!(
            Payload::parse(PacketType::Revalidate, &rr[..5]),
            Err(Error::Truncated)
        );
        let pings = Enc::new().i64(1).i32(3000).i64(2).i32(4000).done();
        let Payload::Ping(t) = Payload::parse(PacketType::Ping, &pings).unwrap() else {
            panic!()
        };
        assert_eq!(t.iter().collect::<Vec<_>>(), [(1, 3000), (2, 4000)]);
        assert_eq!(
            Payload::parse(PacketType::Ping, &pings[..5]),
            Err(Error::BadLength)
        );
        assert_eq!(
            Payload::parse(PacketType::CommitAndActivate, &3i64.to_be_bytes()),
            Ok(Payload::Activate {
                leader: 3,
                txn: None
            })
        );
        let txn = super::txn::test_txn::create(9, 0x1_0000_0006, "/r", b"").done();
        let ia = Enc::new().i64(3).raw(&txn).done();
        let p = Payload::parse(PacketType::InformAndActivate, &ia).unwrap();
        assert_eq!(p.txn().unwrap().header.session, 9);
        assert_eq!(
            Payload::parse(PacketType::NewLeader, b"version=0"),
            Ok(Payload::NewLeader {
                config: "version=0"
            })
        );
        assert_eq!(Payload::parse(PacketType::Commit, &[]), Ok(Payload::Empty));
        assert_eq!(
            Payload::parse(PacketType::Commit, &[1]),
            Ok(Payload::Unexpected(&[1]))
        );
    }

    #[test]
    fn forwarded_requests() {
        let create = Enc::new()
            .i64(0x100000001)
            .i32(1)
            .i32(1)
            .s("/fwd")
            .buf(b"data")
            .acls(&[(31, "world", "anyone")])
            .i32(0)
            .done();
        let Payload::Request(r) = Payload::parse(PacketType::Request, &create).unwrap() else {
            panic!()
        };
        assert_eq!(
            (r.session, r.cxid, r.opcode),
            (0x100000001, 1, OpCode::Create)
        );
        assert_eq!(r.body.path(), Some("/fwd"));
        let Payload::Request(r) =
            Payload::parse_prefix(PacketType::Request, &create[..24]).unwrap()
        else {
            panic!()
        };
        assert_eq!(r.body, ForwardedBody::Prefix { path: Some("/fwd") });
        let cs = Enc::new()
            .i64(0x100000001)
            .i32(0)
            .i32(-10)
            .i32(30000)
            .done();
        let Payload::Request(r) = Payload::parse(PacketType::Request, &cs).unwrap() else {
            panic!()
        };
        assert_eq!(r.body, ForwardedBody::CreateSession { timeout: 30000 });
        let close = Enc::new().i64(1).i32(2).i32(-11).done();
        assert!(Payload::parse(PacketType::Request, &close).is_ok());
        let unknown = Enc::new().i64(1).i32(2).i32(55).done();
        assert_eq!(
            Payload::parse(PacketType::Request, &unknown),
            Err(Error::UnknownOpcode)
        );
    }

    #[test]
    fn packets_parse_with_and_without_authinfo() {
        let b = packet_auth(1, -1, b"0123456789abcdef", &[("ip", "127.0.0.1")]);
        let (p, used) = QuorumPacket::parse(&b).unwrap();
        assert_eq!(used, b.len());
        assert_eq!(p.packet_type, PacketType::Request);
        assert_eq!(p.auth.iter().collect::<Vec<_>>(), [("ip", "127.0.0.1")]);
        let b = packet(3, 0x1_0000_0001, None);
        let (p, used) = QuorumPacket::parse(&b).unwrap();
        assert_eq!(
            (used, p.data_len, p.data, p.auth.len()),
            (20, -1, &[][..], 0)
        );
        assert_eq!(
            QuorumPacket::parse(&packet(20, 0, None)),
            Err(Error::UnknownOpcode)
        );
        let big = proposal(0x2_0000_0001, "/p");
        let pre = QuorumPacket::parse_prefix(&big[..56]).unwrap();
        assert!(pre.is_prefix());
        let Payload::Txn(t) = pre.payload().unwrap() else {
            panic!()
        };
        assert_eq!(t.header.zxid, 0x2_0000_0001);
        for cut in 0..big.len() {
            assert!(QuorumPacket::parse(&big[..cut]).is_err());
        }
    }

    struct Rig {
        pool: ChunkPool<Vec<u8>>,
        hs: HalfStream,
        c: StreamCounters,
        errors: ErrorCounts,
        framer: ZabFramer,
        frames: Vec<Vec<u8>>,
        partials: Vec<(Vec<u8>, usize)>,
        snapshots: Vec<usize>,
        snap_bytes: usize,
        seq: u32,
    }

    impl Rig {
        fn new(chunk: usize, synced: bool) -> Self {
            let mut pool = ChunkPool::new(vec![0u8; chunk * 4], chunk);
            let mut hs = HalfStream::new();
            if synced {
                hs.syn(&mut pool, 0);
            }
            Rig {
                pool,
                hs,
                c: StreamCounters::default(),
                errors: ErrorCounts::ZERO,
                framer: ZabFramer::default(),
                frames: Vec::new(),
                partials: Vec::new(),
                snapshots: Vec::new(),
                snap_bytes: 0,
                seq: 1,
            }
        }

        /// Feeds bytes as the next segment; a decoded SNAP switches the
        /// framer to the snapshot, as the tracker does.
        fn push(&mut self, bytes: &[u8]) {
            self.push_at(self.seq, bytes);
            self.seq = self.seq.wrapping_add(bytes.len() as u32);
        }

        fn push_at(&mut self, seq: u32, bytes: &[u8]) {
            let framer = &self.framer;
            let (frames, partials, snapshots, snap_bytes) = (
                &mut self.frames,
                &mut self.partials,
                &mut self.snapshots,
                &mut self.snap_bytes,
            );
            self.hs.push(
                &mut self.pool,
                framer,
                seq,
                bytes,
                bytes.len(),
                &mut self.c,
                &mut self.errors,
                &mut |it| match it {
                    Item::Frame(f) if framer.mode() == ZabMode::Snapshot => {
                        *snap_bytes += f.len();
                        if f.ends_with(&SNAPSHOT_SIGNATURE) {
                            snapshots.push(*snap_bytes);
                            *snap_bytes = 0;
                            framer.set_snapshot(false);
                        }
                    }
                    Item::Frame(f) => {
                        if QuorumPacket::parse(f).map(|p| p.0.packet_type) == Ok(PacketType::Snap) {
                            framer.set_snapshot(true);
                        }
                        frames.push(f.to_vec())
                    }
                    Item::Partial { prefix, total_len } => {
                        partials.push((prefix.to_vec(), total_len))
                    }
                },
            );
        }
    }

    #[test]
    fn packets_split_at_every_byte_boundary() {
        let a = packet_auth(1, -1, b"0123456789abcdef", &[("ip", "10.0.0.1")]);
        let b = proposal(0x1_0000_0001, "/x");
        let stream = [a.clone(), b.clone()].concat();
        for cut in 1..stream.len() {
            let mut r = Rig::new(1024, true);
            r.push(&stream[..cut]);
            r.push(&stream[cut..]);
            assert_eq!(r.frames, [a.clone(), b.clone()], "cut {cut}");
            assert_eq!(r.errors, ErrorCounts::ZERO);
        }
    }

    #[test]
    fn snapshot_after_snap_is_skipped_up_to_its_signature_in_any_segmentation() {
        let snap = packet(15, 0x1_0000_0000, None);
        let mut snapshot: Vec<u8> = Enc::new().i32(0).done();
        // Database bytes that look like packets and half signatures.
        for i in 0..40u8 {
            snapshot.extend_from_slice(&packet(3, i as i64, None));
            snapshot.extend_from_slice(&SNAPSHOT_SIGNATURE[..(i as usize % 13) + 1]);
            snapshot.extend_from_slice(b"/zookeeper/quota");
        }
        snapshot.extend_from_slice(&SNAPSHOT_SIGNATURE);
        let newleader = packet(10, 0x1_0000_0000, Some(b"version=0"));
        let stream = [snap.clone(), snapshot.clone(), newleader.clone()].concat();
        for seg in [1usize, 7, 13, 14, 15, 100, 3000] {
            let mut r = Rig::new(256, true);
            for piece in stream.chunks(seg) {
                r.push(piece);
            }
            assert_eq!(
                r.frames,
                [snap.clone(), newleader.clone()],
                "segments of {seg}"
            );
            assert_eq!(r.snapshots, [snapshot.len()], "segments of {seg}");
            assert_eq!(r.errors, ErrorCounts::ZERO, "segments of {seg}");
            assert_eq!(r.pool.in_use(), 0);
        }
    }

    #[test]
    fn large_proposal_yields_its_prefix_and_the_stream_stays_in_step() {
        let txn = super::txn::test_txn::create(5, 0x1_0000_0002, "/big", &vec![7u8; 5000]).done();
        let big = packet(2, 0x1_0000_0002, Some(&txn));
        let commit = packet(4, 0x1_0000_0002, None);
        let stream = [big.clone(), commit.clone()].concat();
        let mut r = Rig::new(512, true);
        for piece in stream.chunks(1448) {
            r.push(piece);
        }
        assert_eq!(r.frames, [commit]);
        assert_eq!(r.partials.len(), 1);
        let (prefix, total) = &r.partials[0];
        assert_eq!(*total, big.len());
        let p = QuorumPacket::parse_prefix(prefix).unwrap();
        assert_eq!(
            p.payload().unwrap().txn().unwrap().body.path(),
            Some("/big")
        );
        assert_eq!(r.c.oversize, 1);
    }

    #[test]
    fn capture_starting_mid_stream_and_garbage_resynchronise() {
        let pkts: Vec<Vec<u8>> = (1..=6)
            .flat_map(|i| {
                [
                    proposal(0x1_0000_0000 + i, "/p"),
                    packet(4, 0x1_0000_0000 + i, None),
                    packet(5, 0x40, None),
                ]
            })
            .collect();
        let all = pkts.concat();
        // Not synced, starting 5 bytes into the first packet.
        let mut r = Rig::new(1024, false);
        r.push_at(1000, &all[5..]);
        assert_eq!(r.frames, pkts[1..]);
        assert_eq!(r.c.resyncs, 1);
        // Garbage and a lying data length in the middle of a synced stream.
        let mut r = Rig::new(1024, true);
        let mut junk = Enc::new().i32(2).i64(1).i32(0x7fff_0000).done();
        junk.extend_from_slice(&[0xEE; 33]);
        junk.extend_from_slice(&Enc::new().i32(77).i64(0).i32(-1).i32(-1).done());
        r.push(&[pkts[0].clone(), junk, pkts[1].clone(), pkts[2].clone()].concat());
        assert_eq!(r.frames, pkts[..3]);
        assert!(r.errors.get(Error::OverLimit) >= 1);
    }

    #[test]
    fn noise_never_panics() {
        let samples = [
            proposal(0x1_0000_0001, "/n"),
            packet_auth(
                1,
                -1,
                &Enc::new()
                    .i64(1)
                    .i32(1)
                    .i32(5)
                    .s("/a")
                    .buf(b"")
                    .i32(0)
                    .done(),
                &[("ip", "a")],
            ),
            follower_info(2, 1),
            packet(17, 0x1_0000_0000, Some(&0x10000i32.to_be_bytes())),
        ];
        let mut noise = Noise::new(11);
        let f = ZabFramer::default();
        for _ in 0..4000 {
            let mut b = samples[noise.below(samples.len())].clone();
            noise.mutate(&mut b);
            if let Ok((p, _)) = QuorumPacket::parse(&b) {
                let _ = p.payload();
            }
            if let Ok(p) = QuorumPacket::parse_prefix(&b) {
                let _ = p.payload();
            }
            let _ = f.check(&b);
            let _ = f.plausible(&b);
            f.set_snapshot(true);
            let _ = f.check(&b);
            f.set_snapshot(false);
        }
    }
}
