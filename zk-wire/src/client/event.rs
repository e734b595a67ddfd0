//! Watch notifications: the server-to-client frames with xid -1.
//!
//! Wire format: a `ReplyHeader { int xid = -1; long zxid; int err }` then
//! `WatcherEvent { int type; int state; ustring path }`, both records of
//! `zookeeper-jute/src/main/resources/zookeeper.jute`. The numbers are
//! `Watcher.Event.EventType` and `Watcher.Event.KeeperState`
//! (`zookeeper-server/src/main/java/org/apache/zookeeper/Watcher.java`);
//! the xid is `ClientCnxn.NOTIFICATION_XID`. Before 3.9 the header's zxid is
//! always -1; from 3.9 it carries the zxid of the change that fired the
//! watch.

use super::XID_WATCH_EVENT;
use super::jute::Reader;
use super::reply::ReplyHeader;
use crate::{Error, Result};

/// What happened to the watched node, `Watcher.Event.EventType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EventType {
    /// `None` (-1): a session state change, not a node event.
    None,
    /// `NodeCreated` (1).
    NodeCreated,
    /// `NodeDeleted` (2).
    NodeDeleted,
    /// `NodeDataChanged` (3).
    NodeDataChanged,
    /// `NodeChildrenChanged` (4).
    NodeChildrenChanged,
    /// `DataWatchRemoved` (5) (3.5+).
    DataWatchRemoved,
    /// `ChildWatchRemoved` (6) (3.5+).
    ChildWatchRemoved,
    /// `PersistentWatchRemoved` (7) (3.6+).
    PersistentWatchRemoved,
    /// A value ZooKeeper does not define.
    Unknown(i32),
}

impl EventType {
    /// The event type for a wire value.
    #[inline]
    pub const fn from_i32(v: i32) -> EventType {
        match v {
            -1 => EventType::None,
            1 => EventType::NodeCreated,
            2 => EventType::NodeDeleted,
            3 => EventType::NodeDataChanged,
            4 => EventType::NodeChildrenChanged,
            5 => EventType::DataWatchRemoved,
            6 => EventType::ChildWatchRemoved,
            7 => EventType::PersistentWatchRemoved,
            other => EventType::Unknown(other),
        }
    }

    /// The wire value.
    #[inline]
    pub const fn code(self) -> i32 {
        match self {
            EventType::None => -1,
            EventType::NodeCreated => 1,
            EventType::NodeDeleted => 2,
            EventType::NodeDataChanged => 3,
            EventType::NodeChildrenChanged => 4,
            EventType::DataWatchRemoved => 5,
            EventType::ChildWatchRemoved => 6,
            EventType::PersistentWatchRemoved => 7,
            EventType::Unknown(v) => v,
        }
    }

    /// ZooKeeper's name (`"NodeDataChanged"`), `"Unknown"` for an undefined value.
    pub const fn name(self) -> &'static str {
        match self {
            EventType::None => "None",
            EventType::NodeCreated => "NodeCreated",
            EventType::NodeDeleted => "NodeDeleted",
            EventType::NodeDataChanged => "NodeDataChanged",
            EventType::NodeChildrenChanged => "NodeChildrenChanged",
            EventType::DataWatchRemoved => "DataWatchRemoved",
            EventType::ChildWatchRemoved => "ChildWatchRemoved",
            EventType::PersistentWatchRemoved => "PersistentWatchRemoved",
            EventType::Unknown(_) => "Unknown",
        }
    }
}

/// The client's session state, `Watcher.Event.KeeperState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum KeeperState {
    /// `Disconnected` (0).
    Disconnected,
    /// `NoSyncConnected` (1), deprecated.
    NoSyncConnected,
    /// `SyncConnected` (3): the state of every event the server sends.
    SyncConnected,
    /// `AuthFailed` (4).
    AuthFailed,
    /// `ConnectedReadOnly` (5).
    ConnectedReadOnly,
    /// `SaslAuthenticated` (6).
    SaslAuthenticated,
    /// `Closed` (7) (3.5+).
    Closed,
    /// `Expired` (-112).
    Expired,
    /// ZooKeeper's deprecated `Unknown` (-1), or a value it does not define.
    Unknown(i32),
}

impl KeeperState {
    /// The state for a wire value.
    #[inline]
    pub const fn from_i32(v: i32) -> KeeperState {
        match v {
            0 => KeeperState::Disconnected,
            1 => KeeperState::NoSyncConnected,
            3 => KeeperState::SyncConnected,
            4 => KeeperState::AuthFailed,
            5 => KeeperState::ConnectedReadOnly,
            6 => KeeperState::SaslAuthenticated,
            7 => KeeperState::Closed,
            -112 => KeeperState::Expired,
            other => KeeperState::Unknown(other),
        }
    }

    /// The wire value.
    #[inline]
    pub const fn code(self) -> i32 {
        match self {
            KeeperState::Disconnected => 0,
            KeeperState::NoSyncConnected => 1,
            KeeperState::SyncConnected => 3,
            KeeperState::AuthFailed => 4,
            KeeperState::ConnectedReadOnly => 5,
            KeeperState::SaslAuthenticated => 6,
            KeeperState::Closed => 7,
            KeeperState::Expired => -112,
            KeeperState::Unknown(v) => v,
        }
    }

    /// ZooKeeper's name (`"SyncConnected"`), `"Unknown"` otherwise.
    pub const fn name(self) -> &'static str {
        match self {
            KeeperState::Disconnected => "Disconnected",
            KeeperState::NoSyncConnected => "NoSyncConnected",
            KeeperState::SyncConnected => "SyncConnected",
            KeeperState::AuthFailed => "AuthFailed",
            KeeperState::ConnectedReadOnly => "ConnectedReadOnly",
            KeeperState::SaslAuthenticated => "SaslAuthenticated",
            KeeperState::Closed => "Closed",
            KeeperState::Expired => "Expired",
            KeeperState::Unknown(_) => "Unknown",
        }
    }
}

/// A watch notification (`WatcherEvent` after a reply header with xid -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WatchEvent<'a> {
    /// The header's zxid: -1 before ZooKeeper 3.9, the firing change's zxid from 3.9.
    pub zxid: i64,
    /// What happened.
    pub event_type: EventType,
    /// The session state (always `SyncConnected` for events from a server).
    pub state: KeeperState,
    /// The node the event is about (`""` for a null path).
    pub path: &'a str,
}

impl<'a> WatchEvent<'a> {
    /// Decodes a whole server frame body: the 16-byte reply header (its xid
    /// must be -1, else [`Error::Malformed`]) then the `WatcherEvent`.
    pub fn parse(frame_body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(frame_body);
        let header = ReplyHeader::read(&mut r)?;
        if header.xid != XID_WATCH_EVENT {
            return Err(Error::Malformed);
        }
        let event_type = EventType::from_i32(r.i32()?);
        let state = KeeperState::from_i32(r.i32()?);
        let path = r.ustring()?;
        Ok(WatchEvent {
            zxid: header.zxid,
            event_type,
            state,
            path,
        })
    }

    /// The event's message name, the event type's (`"NodeDataChanged"`).
    #[inline]
    pub const fn name(&self) -> &'static str {
        self.event_type.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::test_enc::{Enc, Noise};

    fn event(ty: i32, state: i32, path: &str) -> std::vec::Vec<u8> {
        Enc::new().rep(-1, -1, 0).i32(ty).i32(state).s(path).done()
    }
    extern crate std;

    #[test]
    fn parses_a_data_changed_event() {
        let b = event(3, 3, "/app/config");
        let e = WatchEvent::parse(&b).unwrap();
        assert_eq!(
            e,
            WatchEvent {
                zxid: -1,
                event_type: EventType::NodeDataChanged,
                state: KeeperState::SyncConnected,
                path: "/app/config",
            }
        );
        assert_eq!(e.name(), "NodeDataChanged");
    }

    #[test]
    fn carries_the_3_9_zxid() {
        let b = Enc::new()
            .rep(-1, 0x5_0000_0007, 0)
            .i32(1)
            .i32(3)
            .s("/n")
            .done();
        assert_eq!(WatchEvent::parse(&b).unwrap().zxid, 0x5_0000_0007);
    }

    #[test]
    fn every_event_type_and_state_round_trips() {
        for v in [-1, 1, 2, 3, 4, 5, 6, 7, 0, 8, i32::MIN] {
            assert_eq!(EventType::from_i32(v).code(), v);
        }
        for v in [0, 1, 3, 4, 5, 6, 7, -112, -1, 2, 99] {
            assert_eq!(KeeperState::from_i32(v).code(), v);
        }
        assert_eq!(EventType::from_i32(0), EventType::Unknown(0));
        assert_eq!(EventType::from_i32(7).name(), "PersistentWatchRemoved");
        assert_eq!(KeeperState::from_i32(-112).name(), "Expired");
        assert_eq!(KeeperState::from_i32(-1).name(), "Unknown");
        assert_eq!(KeeperState::from_i32(5), KeeperState::ConnectedReadOnly);
    }

    #[test]
    fn wrong_xid_is_malformed() {
        let b = Enc::new().rep(5, -1, 0).i32(3).i32(3).s("/a").done();
        assert_eq!(WatchEvent::parse(&b), Err(Error::Malformed));
    }

    #[test]
    fn every_truncation_errs() {
        let b = event(4, 3, "/a/b");
        for n in 0..b.len() {
            assert!(WatchEvent::parse(&b[..n]).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn bad_path_is_reported() {
        let b = Enc::new().rep(-1, -1, 0).i32(3).i32(3).buf(&[0xff]).done();
        assert_eq!(WatchEvent::parse(&b), Err(Error::BadUtf8));
        let b = Enc::new().rep(-1, -1, 0).i32(3).i32(3).i32(-2).done();
        assert_eq!(WatchEvent::parse(&b), Err(Error::BadLength));
        let b = Enc::new().rep(-1, -1, 0).i32(3).i32(3).i32(i32::MAX).done();
        assert_eq!(WatchEvent::parse(&b), Err(Error::Truncated));
    }

    #[test]
    fn noise_never_panics() {
        let base = event(3, 3, "/some/path");
        let mut n = Noise::new(0xe7e7);
        for _ in 0..20_000 {
            let mut b = base.clone();
            n.mutate(&mut b);
            let cut = n.below(b.len() + 1);
            let _ = WatchEvent::parse(b.get(..cut).unwrap_or(&b));
        }
    }
}
