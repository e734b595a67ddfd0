//! The numbers of the client protocol: operation codes, error codes and
//! create modes.
//!
//! Defined by ZooKeeper in `zookeeper-server/src/main/java/org/apache/zookeeper/`:
//! `ZooDefs.OpCode` (the `type` field of `RequestHeader` and `MultiHeader`),
//! `KeeperException.Code` (the `err` field of `ReplyHeader`, `MultiHeader`
//! and `ErrorResponse`) and `CreateMode` (the `flags` field of
//! `CreateRequest` / `CreateTTLRequest`). Covers ZooKeeper 3.4 to 3.9.

/// A request type, `ZooDefs.OpCode`: every code ZooKeeper 3.4 to 3.9 defines.
///
/// Variant names are ZooKeeper's constant names in CamelCase (`auth` is
/// [`OpCode::Auth`], `closeSession` is [`OpCode::CloseSession`]); the
/// message names ([`OpCode::name`]) follow the older analyzer's vocabulary
/// (`SetAuth`, `Close`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(i32)]
pub enum OpCode {
    /// `notification` (0): watch events; never sent as a request.
    Notification = 0,
    /// `create` (1).
    Create = 1,
    /// `delete` (2).
    Delete = 2,
    /// `exists` (3).
    Exists = 3,
    /// `getData` (4).
    GetData = 4,
    /// `setData` (5).
    SetData = 5,
    /// `getACL` (6).
    GetACL = 6,
    /// `setACL` (7).
    SetACL = 7,
    /// `getChildren` (8).
    GetChildren = 8,
    /// `sync` (9).
    Sync = 9,
    /// `ping` (11), sent with xid -2.
    Ping = 11,
    /// `getChildren2` (12): children plus the parent's Stat.
    GetChildren2 = 12,
    /// `check` (13): version check, meaningful inside `multi`.
    Check = 13,
    /// `multi` (14): an atomic transaction of sub-operations.
    Multi = 14,
    /// `create2` (15): create returning the new node's Stat (3.5+).
    Create2 = 15,
    /// `reconfig` (16): dynamic reconfiguration (3.5+).
    Reconfig = 16,
    /// `checkWatches` (17) (3.5+).
    CheckWatches = 17,
    /// `removeWatches` (18) (3.5+).
    RemoveWatches = 18,
    /// `createContainer` (19) (3.5.1+).
    CreateContainer = 19,
    /// `deleteContainer` (20): sent by the server's container manager.
    DeleteContainer = 20,
    /// `createTTL` (21) (3.5.3+).
    CreateTTL = 21,
    /// `multiRead` (22): a batch of reads (3.6+).
    MultiRead = 22,
    /// `auth` (100): `AuthPacket`, sent with xid -4 ("SetAuth").
    Auth = 100,
    /// `setWatches` (101): re-registers watches after a reconnect, xid -8.
    SetWatches = 101,
    /// `sasl` (102).
    Sasl = 102,
    /// `getEphemerals` (103) (3.6+).
    GetEphemerals = 103,
    /// `getAllChildrenNumber` (104) (3.6+).
    GetAllChildrenNumber = 104,
    /// `setWatches2` (105): `setWatches` with persistent watches (3.6+).
    SetWatches2 = 105,
    /// `addWatch` (106): persistent and persistent-recursive watches (3.6+).
    AddWatch = 106,
    /// `whoAmI` (107) (3.9+).
    WhoAmI = 107,
    /// `createSession` (-10): the server-side form of a connect.
    CreateSession = -10,
    /// `closeSession` (-11) ("Close").
    CloseSession = -11,
    /// `error` (-1): a failed transaction; also the type of an error result
    /// inside a multi reply.
    Error = -1,
}

impl OpCode {
    /// Alias of [`OpCode::Auth`] under its message name.
    #[allow(non_upper_case_globals)]
    pub const SetAuth: OpCode = OpCode::Auth;
    /// Alias of [`OpCode::CloseSession`] under its message name.
    #[allow(non_upper_case_globals)]
    pub const Close: OpCode = OpCode::CloseSession;

    /// Number of op codes ([`OpCode::ALL`]`.len()`).
    pub const COUNT: usize = 33;

    /// Every op code, in [`OpCode::index`] order (for counter tables).
    pub const ALL: [OpCode; OpCode::COUNT] = [
        OpCode::Notification,
        OpCode::Create,
        OpCode::Delete,
        OpCode::Exists,
        OpCode::GetData,
        OpCode::SetData,
        OpCode::GetACL,
        OpCode::SetACL,
        OpCode::GetChildren,
        OpCode::Sync,
        OpCode::Ping,
        OpCode::GetChildren2,
        OpCode::Check,
        OpCode::Multi,
        OpCode::Create2,
        OpCode::Reconfig,
        OpCode::CheckWatches,
        OpCode::RemoveWatches,
        OpCode::CreateContainer,
        OpCode::DeleteContainer,
        OpCode::CreateTTL,
        OpCode::MultiRead,
        OpCode::Auth,
        OpCode::SetWatches,
        OpCode::Sasl,
        OpCode::GetEphemerals,
        OpCode::GetAllChildrenNumber,
        OpCode::SetWatches2,
        OpCode::AddWatch,
        OpCode::WhoAmI,
        OpCode::CreateSession,
        OpCode::CloseSession,
        OpCode::Error,
    ];

    /// The op code with this wire value, if ZooKeeper defines one.
    #[inline]
    pub const fn from_i32(v: i32) -> Option<OpCode> {
        Some(match v {
            0 => OpCode::Notification,
            1 => OpCode::Create,
            2 => OpCode::Delete,
            3 => OpCode::Exists,
            4 => OpCode::GetData,
            5 => OpCode::SetData,
            6 => OpCode::GetACL,
            7 => OpCode::SetACL,
            8 => OpCode::GetChildren,
            9 => OpCode::Sync,
            11 => OpCode::Ping,
            12 => OpCode::GetChildren2,
            13 => OpCode::Check,
            14 => OpCode::Multi,
            15 => OpCode::Create2,
            16 => OpCode::Reconfig,
            17 => OpCode::CheckWatches,
            18 => OpCode::RemoveWatches,
            19 => OpCode::CreateContainer,
            20 => OpCode::DeleteContainer,
            21 => OpCode::CreateTTL,
            22 => OpCode::MultiRead,
            100 => OpCode::Auth,
            101 => OpCode::SetWatches,
            102 => OpCode::Sasl,
            103 => OpCode::GetEphemerals,
            104 => OpCode::GetAllChildrenNumber,
            105 => OpCode::SetWatches2,
            106 => OpCode::AddWatch,
            107 => OpCode::WhoAmI,
            -10 => OpCode::CreateSession,
            -11 => OpCode::CloseSession,
            -1 => OpCode::Error,
            _ => return None,
        })
    }

    /// The wire value.
    #[inline]
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// Position in [`OpCode::ALL`] (dense, for counter tables).
    #[inline]
    pub const fn index(self) -> usize {
        match self {
            OpCode::Notification => 0,
            OpCode::Create => 1,
            OpCode::Delete => 2,
            OpCode::Exists => 3,
            OpCode::GetData => 4,
            OpCode::SetData => 5,
            OpCode::GetACL => 6,
            OpCode::SetACL => 7,
            OpCode::GetChildren => 8,
            OpCode::Sync => 9,
            OpCode::Ping => 10,
            OpCode::GetChildren2 => 11,
            OpCode::Check => 12,
            OpCode::Multi => 13,
            OpCode::Create2 => 14,
            OpCode::Reconfig => 15,
            OpCode::CheckWatches => 16,
            OpCode::RemoveWatches => 17,
            OpCode::CreateContainer => 18,
            OpCode::DeleteContainer => 19,
            OpCode::CreateTTL => 20,
            OpCode::MultiRead => 21,
            OpCode::Auth => 22,
            OpCode::SetWatches => 23,
            OpCode::Sasl => 24,
            OpCode::GetEphemerals => 25,
            OpCode::GetAllChildrenNumber => 26,
            OpCode::SetWatches2 => 27,
            OpCode::AddWatch => 28,
            OpCode::WhoAmI => 29,
            OpCode::CreateSession => 30,
            OpCode::CloseSession => 31,
            OpCode::Error => 32,
        }
    }

    /// The operation's message name: `"GetData"`, `"SetAuth"`, `"Close"`, ...
    pub const fn name(self) -> &'static str {
        match self {
            OpCode::Notification => "Notification",
            OpCode::Create => "Create",
            OpCode::Delete => "Delete",
            OpCode::Exists => "Exists",
            OpCode::GetData => "GetData",
            OpCode::SetData => "SetData",
            OpCode::GetACL => "GetACL",
            OpCode::SetACL => "SetACL",
            OpCode::GetChildren => "GetChildren",
            OpCode::Sync => "Sync",
            OpCode::Ping => "Ping",
            OpCode::GetChildren2 => "GetChildren2",
            OpCode::Check => "Check",
            OpCode::Multi => "Multi",
            OpCode::Create2 => "Create2",
            OpCode::Reconfig => "Reconfig",
            OpCode::CheckWatches => "CheckWatches",
            OpCode::RemoveWatches => "RemoveWatches",
            OpCode::CreateContainer => "CreateContainer",
            OpCode::DeleteContainer => "DeleteContainer",
            OpCode::CreateTTL => "CreateTTL",
            OpCode::MultiRead => "MultiRead",
            OpCode::Auth => "SetAuth",
            OpCode::SetWatches => "SetWatches",
            OpCode::Sasl => "Sasl",
            OpCode::GetEphemerals => "GetEphemerals",
            OpCode::GetAllChildrenNumber => "GetAllChildrenNumber",
            OpCode::SetWatches2 => "SetWatches2",
            OpCode::AddWatch => "AddWatch",
            OpCode::WhoAmI => "WhoAmI",
            OpCode::CreateSession => "CreateSession",
            OpCode::CloseSession => "Close",
            OpCode::Error => "Error",
        }
    }

    /// The request message name, a stats key compatible with the older
    /// daemon: `"GetDataRequest"`, `"SetAuthRequest"`, `"CloseRequest"`,
    /// `"GetAclRequest"`, `"CheckRequest"`, ...
    pub const fn request_name(self) -> &'static str {
        match self {
            OpCode::Notification => "NotificationRequest",
            OpCode::Create => "CreateRequest",
            OpCode::Delete => "DeleteRequest",
            OpCode::Exists => "ExistsRequest",
            OpCode::GetData => "GetDataRequest",
            OpCode::SetData => "SetDataRequest",
            OpCode::GetACL => "GetAclRequest",
            OpCode::SetACL => "SetAclRequest",
            OpCode::GetChildren => "GetChildrenRequest",
            OpCode::Sync => "SyncRequest",
            OpCode::Ping => "PingRequest",
            OpCode::GetChildren2 => "GetChildren2Request",
            OpCode::Check => "CheckRequest",
            OpCode::Multi => "MultiRequest",
            OpCode::Create2 => "Create2Request",
            OpCode::Reconfig => "ReconfigRequest",
            OpCode::CheckWatches => "CheckWatchesRequest",
            OpCode::RemoveWatches => "RemoveWatchesRequest",
            OpCode::CreateContainer => "CreateContainerRequest",
            OpCode::DeleteContainer => "DeleteContainerRequest",
            OpCode::CreateTTL => "CreateTTLRequest",
            OpCode::MultiRead => "MultiReadRequest",
            OpCode::Auth => "SetAuthRequest",
            OpCode::SetWatches => "SetWatchesRequest",
            OpCode::Sasl => "SaslRequest",
            OpCode::GetEphemerals => "GetEphemeralsRequest",
            OpCode::GetAllChildrenNumber => "GetAllChildrenNumberRequest",
            OpCode::SetWatches2 => "SetWatches2Request",
            OpCode::AddWatch => "AddWatchRequest",
            OpCode::WhoAmI => "WhoAmIRequest",
            OpCode::CreateSession => "ConnectRequest",
            OpCode::CloseSession => "CloseRequest",
            OpCode::Error => "ErrorRequest",
        }
    }

    /// The reply message name: `"GetDataReply"`, `"SetAuthReply"`,
    /// `"CloseReply"`, `"PingReply"`, ...; a notification is a `"WatchEvent"`.
    pub const fn reply_name(self) -> &'static str {
        match self {
            OpCode::Notification => "WatchEvent",
            OpCode::Create => "CreateReply",
            OpCode::Delete => "DeleteReply",
            OpCode::Exists => "ExistsReply",
            OpCode::GetData => "GetDataReply",
            OpCode::SetData => "SetDataReply",
            OpCode::GetACL => "GetAclReply",
            OpCode::SetACL => "SetAclReply",
            OpCode::GetChildren => "GetChildrenReply",
            OpCode::Sync => "SyncReply",
            OpCode::Ping => "PingReply",
            OpCode::GetChildren2 => "GetChildren2Reply",
            OpCode::Check => "CheckReply",
            OpCode::Multi => "MultiReply",
            OpCode::Create2 => "Create2Reply",
            OpCode::Reconfig => "ReconfigReply",
            OpCode::CheckWatches => "CheckWatchesReply",
            OpCode::RemoveWatches => "RemoveWatchesReply",
            OpCode::CreateContainer => "CreateContainerReply",
            OpCode::DeleteContainer => "DeleteContainerReply",
            OpCode::CreateTTL => "CreateTTLReply",
            OpCode::MultiRead => "MultiReadReply",
            OpCode::Auth => "SetAuthReply",
            OpCode::SetWatches => "SetWatchesReply",
            OpCode::Sasl => "SaslReply",
            OpCode::GetEphemerals => "GetEphemeralsReply",
            OpCode::GetAllChildrenNumber => "GetAllChildrenNumberReply",
            OpCode::SetWatches2 => "SetWatches2Reply",
            OpCode::AddWatch => "AddWatchReply",
            OpCode::WhoAmI => "WhoAmIReply",
            OpCode::CreateSession => "ConnectReply",
            OpCode::CloseSession => "CloseReply",
            OpCode::Error => "ErrorReply",
        }
    }

    /// True for operations that change the tree: every create, delete,
    /// deleteContainer, setData, setACL and reconfig. `multi` is decided
    /// by its sub-operations ([`crate::client::MultiOps::has_write`]).
    #[inline]
    pub const fn is_write(self) -> bool {
        matches!(
            self,
            OpCode::Create
                | OpCode::Create2
                | OpCode::CreateContainer
                | OpCode::CreateTTL
                | OpCode::Delete
                | OpCode::DeleteContainer
                | OpCode::SetData
                | OpCode::SetACL
                | OpCode::Reconfig
        )
    }

    /// True for the create family (create, create2, createContainer, createTTL).
    #[inline]
    pub const fn is_create(self) -> bool {
        matches!(
            self,
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTTL
        )
    }

    /// True when the request record starts with a `ustring` path (so a
    /// truncated frame may still show it).
    #[inline]
    pub const fn has_path(self) -> bool {
        matches!(
            self,
            OpCode::Create
                | OpCode::Create2
                | OpCode::CreateContainer
                | OpCode::CreateTTL
                | OpCode::Delete
                | OpCode::DeleteContainer
                | OpCode::Exists
                | OpCode::GetData
                | OpCode::SetData
                | OpCode::GetACL
                | OpCode::SetACL
                | OpCode::GetChildren
                | OpCode::GetChildren2
                | OpCode::Sync
                | OpCode::Check
                | OpCode::CheckWatches
                | OpCode::RemoveWatches
                | OpCode::GetEphemerals
                | OpCode::GetAllChildrenNumber
                | OpCode::AddWatch
        )
    }

    /// False for the codes a client never sends as a request type:
    /// notification (0), error (-1) and createSession (-10).
    #[inline]
    pub const fn is_client_request(self) -> bool {
        !matches!(
            self,
            OpCode::Notification | OpCode::Error | OpCode::CreateSession
        )
    }
}

/// A ZooKeeper error code, `KeeperException.Code`, as carried in
/// `ReplyHeader.err`; unknown values are kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ErrorCode(pub i32);

impl ErrorCode {
    /// `Ok` (0).
    pub const OK: ErrorCode = ErrorCode(0);
    /// `SystemError` (-1).
    pub const SYSTEM_ERROR: ErrorCode = ErrorCode(-1);
    /// `RuntimeInconsistency` (-2); also the result of the multi sub-ops after a failed one.
    pub const RUNTIME_INCONSISTENCY: ErrorCode = ErrorCode(-2);
    /// `DataInconsistency` (-3).
    pub const DATA_INCONSISTENCY: ErrorCode = ErrorCode(-3);
    /// `ConnectionLoss` (-4).
    pub const CONNECTION_LOSS: ErrorCode = ErrorCode(-4);
    /// `MarshallingError` (-5).
    pub const MARSHALLING_ERROR: ErrorCode = ErrorCode(-5);
    /// `Unimplemented` (-6).
    pub const UNIMPLEMENTED: ErrorCode = ErrorCode(-6);
    /// `OperationTimeout` (-7).
    pub const OPERATION_TIMEOUT: ErrorCode = ErrorCode(-7);
    /// `BadArguments` (-8).
    pub const BAD_ARGUMENTS: ErrorCode = ErrorCode(-8);
    /// `UnknownSession` (-12).
    pub const UNKNOWN_SESSION: ErrorCode = ErrorCode(-12);
    /// `NewConfigNoQuorum` (-13).
    pub const NEW_CONFIG_NO_QUORUM: ErrorCode = ErrorCode(-13);
    /// `ReconfigInProgress` (-14).
    pub const RECONFIG_IN_PROGRESS: ErrorCode = ErrorCode(-14);
    /// `APIError` (-100).
    pub const API_ERROR: ErrorCode = ErrorCode(-100);
    /// `NoNode` (-101).
    pub const NO_NODE: ErrorCode = ErrorCode(-101);
    /// `NoAuth` (-102).
    pub const NO_AUTH: ErrorCode = ErrorCode(-102);
    /// `BadVersion` (-103).
    pub const BAD_VERSION: ErrorCode = ErrorCode(-103);
    /// `NoChildrenForEphemerals` (-108).
    pub const NO_CHILDREN_FOR_EPHEMERALS: ErrorCode = ErrorCode(-108);
    /// `NodeExists` (-110).
    pub const NODE_EXISTS: ErrorCode = ErrorCode(-110);
    /// `NotEmpty` (-111).
    pub const NOT_EMPTY: ErrorCode = ErrorCode(-111);
    /// `SessionExpired` (-112).
    pub const SESSION_EXPIRED: ErrorCode = ErrorCode(-112);
    /// `InvalidCallback` (-113).
    pub const INVALID_CALLBACK: ErrorCode = ErrorCode(-113);
    /// `InvalidACL` (-114).
    pub const INVALID_ACL: ErrorCode = ErrorCode(-114);
    /// `AuthFailed` (-115).
    pub const AUTH_FAILED: ErrorCode = ErrorCode(-115);
    /// `SessionMoved` (-118).
    pub const SESSION_MOVED: ErrorCode = ErrorCode(-118);
    /// `NotReadOnly` (-119).
    pub const NOT_READ_ONLY: ErrorCode = ErrorCode(-119);
    /// `EphemeralOnLocalSession` (-120).
    pub const EPHEMERAL_ON_LOCAL_SESSION: ErrorCode = ErrorCode(-120);
    /// `NoWatcher` (-121).
    pub const NO_WATCHER: ErrorCode = ErrorCode(-121);
    /// `RequestTimeout` (-122).
    pub const REQUEST_TIMEOUT: ErrorCode = ErrorCode(-122);
    /// `ReconfigDisabled` (-123).
    pub const RECONFIG_DISABLED: ErrorCode = ErrorCode(-123);
    /// `SessionClosedRequireSaslAuth` (-124).
    pub const SESSION_CLOSED_REQUIRE_SASL_AUTH: ErrorCode = ErrorCode(-124);
    /// `QuotaExceeded` (-125).
    pub const QUOTA_EXCEEDED: ErrorCode = ErrorCode(-125);
    /// `Throttled` (-127, `THROTTLEDOP`).
    pub const THROTTLED: ErrorCode = ErrorCode(-127);

    /// The code's name (`"Ok"`, `"NoNode"`, ...), `None` for a value
    /// ZooKeeper does not define.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "Ok",
            -1 => "SystemError",
            -2 => "RuntimeInconsistency",
            -3 => "DataInconsistency",
            -4 => "ConnectionLoss",
            -5 => "MarshallingError",
            -6 => "Unimplemented",
            -7 => "OperationTimeout",
            -8 => "BadArguments",
            -12 => "UnknownSession",
            -13 => "NewConfigNoQuorum",
            -14 => "ReconfigInProgress",
            -100 => "APIError",
            -101 => "NoNode",
            -102 => "NoAuth",
            -103 => "BadVersion",
            -108 => "NoChildrenForEphemerals",
            -110 => "NodeExists",
            -111 => "NotEmpty",
            -112 => "SessionExpired",
            -113 => "InvalidCallback",
            -114 => "InvalidACL",
            -115 => "AuthFailed",
            -118 => "SessionMoved",
            -119 => "NotReadOnly",
            -120 => "EphemeralOnLocalSession",
            -121 => "NoWatcher",
            -122 => "RequestTimeout",
            -123 => "ReconfigDisabled",
            -124 => "SessionClosedRequireSaslAuth",
            -125 => "QuotaExceeded",
            -127 => "Throttled",
            _ => return None,
        })
    }

    /// True for `Ok` (0).
    #[inline]
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }
}

impl From<i32> for ErrorCode {
    #[inline]
    fn from(v: i32) -> Self {
        ErrorCode(v)
    }
}

/// How a node is created, `CreateMode`, decoded from the create request's
/// `flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CreateMode {
    /// `PERSISTENT` (0).
    Persistent,
    /// `EPHEMERAL` (1).
    Ephemeral,
    /// `PERSISTENT_SEQUENTIAL` (2).
    PersistentSequential,
    /// `EPHEMERAL_SEQUENTIAL` (3).
    EphemeralSequential,
    /// `CONTAINER` (4).
    Container,
    /// `PERSISTENT_WITH_TTL` (5).
    PersistentWithTtl,
    /// `PERSISTENT_SEQUENTIAL_WITH_TTL` (6).
    PersistentSequentialWithTtl,
    /// A flags value ZooKeeper does not define (the server answers BadArguments).
    Unknown(i32),
}

impl CreateMode {
    /// The mode for a create request's `flags`.
    #[inline]
    pub const fn from_flags(flags: i32) -> CreateMode {
        match flags {
            0 => CreateMode::Persistent,
            1 => CreateMode::Ephemeral,
            2 => CreateMode::PersistentSequential,
            3 => CreateMode::EphemeralSequential,
            4 => CreateMode::Container,
            5 => CreateMode::PersistentWithTtl,
            6 => CreateMode::PersistentSequentialWithTtl,
            other => CreateMode::Unknown(other),
        }
    }

    /// The `flags` value on the wire.
    #[inline]
    pub const fn flags(self) -> i32 {
        match self {
            CreateMode::Persistent => 0,
            CreateMode::Ephemeral => 1,
            CreateMode::PersistentSequential => 2,
            CreateMode::EphemeralSequential => 3,
            CreateMode::Container => 4,
            CreateMode::PersistentWithTtl => 5,
            CreateMode::PersistentSequentialWithTtl => 6,
            CreateMode::Unknown(v) => v,
        }
    }

    /// ZooKeeper's name for the mode (`"EPHEMERAL_SEQUENTIAL"`), `"UNKNOWN"`
    /// for an undefined value.
    pub const fn name(self) -> &'static str {
        match self {
            CreateMode::Persistent => "PERSISTENT",
            CreateMode::Ephemeral => "EPHEMERAL",
            CreateMode::PersistentSequential => "PERSISTENT_SEQUENTIAL",
            CreateMode::EphemeralSequential => "EPHEMERAL_SEQUENTIAL",
            CreateMode::Container => "CONTAINER",
            CreateMode::PersistentWithTtl => "PERSISTENT_WITH_TTL",
            CreateMode::PersistentSequentialWithTtl => "PERSISTENT_SEQUENTIAL_WITH_TTL",
            CreateMode::Unknown(_) => "UNKNOWN",
        }
    }

    /// True for the ephemeral modes (the node dies with the session).
    #[inline]
    pub const fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// True for the sequential modes (the server appends a counter).
    #[inline]
    pub const fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// True for the TTL modes.
    #[inline]
    pub const fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// True for `CONTAINER`.
    #[inline]
    pub const fn is_container(self) -> bool {
        matches!(self, CreateMode::Container)
    }
}

/// ZooKeeper's name for a `Watcher.WatcherType` value, the `type` field
/// of `CheckWatchesRequest` / `RemoveWatchesRequest`: Children 1, Data 2,
/// Any 3, Persistent 4, PersistentRecursive 5.
pub const fn watcher_type_name(t: i32) -> Option<&'static str> {
    Some(match t {
        1 => "Children",
        2 => "Data",
        3 => "Any",
        4 => "Persistent",
        5 => "PersistentRecursive",
        _ => return None,
    })
}

/// ZooKeeper's name for an `AddWatchRequest.mode` (`ZooDefs.AddWatchModes`):
/// persistent 0, persistentRecursive 1.
pub const fn add_watch_mode_name(mode: i32) -> Option<&'static str> {
    match mode {
        0 => Some("PERSISTENT"),
        1 => Some("PERSISTENT_RECURSIVE"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_opcode_round_trips_and_indexes_densely() {
        for (i, op) in OpCode::ALL.iter().enumerate() {
            assert_eq!(OpCode::from_i32(op.code()), Some(*op));
            assert_eq!(op.index(), i);
            assert!(op.request_name().ends_with("Request"), "{op:?}");
            assert!(
                op.reply_name().ends_with("Reply") || *op == OpCode::Notification,
                "{op:?}"
            );
        }
    }

    #[test]
    fn opcode_numbers_match_zoodefs() {
        let table = [
            (0, "Notification"),
            (1, "Create"),
            (2, "Delete"),
            (3, "Exists"),
            (4, "GetData"),
            (5, "SetData"),
            (6, "GetACL"),
            (7, "SetACL"),
            (8, "GetChildren"),
            (9, "Sync"),
            (11, "Ping"),
            (12, "GetChildren2"),
            (13, "Check"),
            (14, "Multi"),
            (15, "Create2"),
            (16, "Reconfig"),
            (17, "CheckWatches"),
            (18, "RemoveWatches"),
            (19, "CreateContainer"),
            (20, "DeleteContainer"),
            (21, "CreateTTL"),
            (22, "MultiRead"),
            (100, "SetAuth"),
            (101, "SetWatches"),
            (102, "Sasl"),
            (103, "GetEphemerals"),
            (104, "GetAllChildrenNumber"),
            (105, "SetWatches2"),
            (106, "AddWatch"),
            (107, "WhoAmI"),
            (-10, "CreateSession"),
            (-11, "Close"),
            (-1, "Error"),
        ];
        assert_eq!(table.len(), OpCode::COUNT);
        for (code, name) in table {
            assert_eq!(
                OpCode::from_i32(code).map(OpCode::name),
                Some(name),
                "{code}"
            );
        }
        for bad in [10, 23, 99, 108, -2, -9, -12, i32::MIN, i32::MAX] {
            assert_eq!(OpCode::from_i32(bad), None, "{bad}");
        }
    }

    #[test]
    fn message_names() {
        assert_eq!(OpCode::GetData.request_name(), "GetDataRequest");
        assert_eq!(OpCode::GetData.reply_name(), "GetDataReply");
        assert_eq!(OpCode::Auth.request_name(), "SetAuthRequest");
        assert_eq!(OpCode::SetAuth.reply_name(), "SetAuthReply");
        assert_eq!(OpCode::Close.request_name(), "CloseRequest");
        assert_eq!(OpCode::CloseSession.reply_name(), "CloseReply");
        assert_eq!(OpCode::Ping.request_name(), "PingRequest");
        assert_eq!(OpCode::Ping.reply_name(), "PingReply");
        assert_eq!(OpCode::Multi.request_name(), "MultiRequest");
        assert_eq!(OpCode::GetACL.name(), "GetACL");
        assert_eq!(OpCode::GetACL.request_name(), "GetAclRequest");
        assert_eq!(OpCode::Check.request_name(), "CheckRequest");
        assert_eq!(OpCode::Notification.reply_name(), "WatchEvent");
    }

    #[test]
    fn aliases_work_in_patterns() {
        let op = OpCode::from_i32(100).unwrap();
        assert!(matches!(op, OpCode::SetAuth));
        assert!(matches!(OpCode::from_i32(-11), Some(OpCode::Close)));
    }

    #[test]
    fn writes() {
        let writes: heapless::Vec<OpCode, 40> = OpCode::ALL
            .iter()
            .copied()
            .filter(|o| o.is_write())
            .collect();
        assert_eq!(
            &writes[..],
            &[
                OpCode::Create,
                OpCode::Delete,
                OpCode::SetData,
                OpCode::SetACL,
                OpCode::Create2,
                OpCode::Reconfig,
                OpCode::CreateContainer,
                OpCode::DeleteContainer,
                OpCode::CreateTTL,
            ]
        );
        assert!(!OpCode::Multi.is_write());
        assert!(!OpCode::Check.is_write());
    }

    #[test]
    fn error_codes_match_keeper_exception() {
        let table = [
            (0, "Ok"),
            (-1, "SystemError"),
            (-2, "RuntimeInconsistency"),
            (-3, "DataInconsistency"),
            (-4, "ConnectionLoss"),
            (-5, "MarshallingError"),
            (-6, "Unimplemented"),
            (-7, "OperationTimeout"),
            (-8, "BadArguments"),
            (-12, "UnknownSession"),
            (-13, "NewConfigNoQuorum"),
            (-14, "ReconfigInProgress"),
            (-100, "APIError"),
            (-101, "NoNode"),
            (-102, "NoAuth"),
            (-103, "BadVersion"),
            (-108, "NoChildrenForEphemerals"),
            (-110, "NodeExists"),
            (-111, "NotEmpty"),
            (-112, "SessionExpired"),
            (-113, "InvalidCallback"),
            (-114, "InvalidACL"),
            (-115, "AuthFailed"),
            (-118, "SessionMoved"),
            (-119, "NotReadOnly"),
            (-120, "EphemeralOnLocalSession"),
            (-121, "NoWatcher"),
            (-122, "RequestTimeout"),
            (-123, "ReconfigDisabled"),
            (-124, "SessionClosedRequireSaslAuth"),
            (-125, "QuotaExceeded"),
            (-127, "Throttled"),
        ];
        for (code, name) in table {
            assert_eq!(ErrorCode(code).name(), Some(name));
        }
        assert_eq!(ErrorCode(-126).name(), None);
        assert_eq!(ErrorCode(1).name(), None);
        assert!(ErrorCode::OK.is_ok());
        assert!(!ErrorCode::NO_NODE.is_ok());
        assert_eq!(ErrorCode::from(-101), ErrorCode::NO_NODE);
    }

    #[test]
    fn create_modes_match_zookeeper() {
        for flags in 0..7 {
            let m = CreateMode::from_flags(flags);
            assert_eq!(m.flags(), flags);
            assert_ne!(m.name(), "UNKNOWN");
        }
        assert!(CreateMode::from_flags(1).is_ephemeral());
        assert!(CreateMode::from_flags(3).is_ephemeral());
        assert!(CreateMode::from_flags(3).is_sequential());
        assert!(CreateMode::from_flags(2).is_sequential());
        assert!(!CreateMode::from_flags(2).is_ephemeral());
        assert!(CreateMode::from_flags(4).is_container());
        assert!(CreateMode::from_flags(5).is_ttl());
        assert!(CreateMode::from_flags(6).is_ttl());
        assert!(CreateMode::from_flags(6).is_sequential());
        assert_eq!(CreateMode::from_flags(9), CreateMode::Unknown(9));
        assert_eq!(CreateMode::Unknown(9).flags(), 9);
        assert_eq!(
            CreateMode::EphemeralSequential.name(),
            "EPHEMERAL_SEQUENTIAL"
        );
    }

    #[test]
    fn watch_type_names() {
        assert_eq!(watcher_type_name(3), Some("Any"));
        assert_eq!(watcher_type_name(0), None);
        assert_eq!(add_watch_mode_name(1), Some("PERSISTENT_RECURSIVE"));
        assert_eq!(add_watch_mode_name(2), None);
    }
}
