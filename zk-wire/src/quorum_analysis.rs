//! What the election and quorum traffic says about the ensemble: elections
//! (who voted for whom, the winner, how long it took), proposal -> ack ->
//! commit timing per zxid (quorum commit latency, per-follower ack lag) and
//! how each learner synchronised when it joined.
//!
//! Fed with [`QuorumEvent`]s from a [`crate::quorum::QuorumTracker`]; the
//! protocol facts it relies on come from ZooKeeper's
//! `FastLeaderElection.lookForLeader` (a server votes in rounds numbered by
//! its `logicalclock`, the notification's election epoch; it adopts a
//! better vote and announces it; servers that are not looking answer a
//! looking one with their current leader) and from `LearnerHandler` /
//! `Leader` (FOLLOWERINFO -> LEADERINFO -> ACKEPOCH -> DIFF|TRUNC|SNAP ->
//! NEWLEADER -> UPTODATE, then PROPOSAL -> ACK -> COMMIT per transaction).
//!
//! **Elections.** Notifications are grouped into episodes: an episode opens
//! with a LOOKING notification and closes when no notification arrived for
//! [`AnalysisConfig::settle`] after it was resolved (or for
//! [`AnalysisConfig::stall`] if it never was). At close it is classified:
//! - an *election* when the last votes of a quorum of voters (in the
//!   highest round) name the same server: that server is the winner, and
//!   the election was decided when the quorum-th of those voters announced
//!   that vote (the finalize wait that follows is not on the wire);
//! - a *join* when fewer than a quorum were looking and servers that were
//!   not looking answered with their leader (a restarted server finding the
//!   established leader).
//!
//! A server that was not voting and starts looking once the episode is
//! resolved opens a new episode when its round is lower, or when it comes
//! more than [`AnalysisConfig::join_after`] after the quorum agreed.
//!
//! The quorum is a majority of the voting members: from the last dynamic
//! config seen, else from the server ids seen. When a connection is
//! (re)established, `QuorumCnxManager` re-sends the last message it sent to
//! that peer: a LOOKING vote identical to the sender's final vote in an
//! election already closed is such a resend, counted as stale, not a vote.
//!
//! **Commits.** The first PROPOSAL of a zxid starts its clock; the first
//! COMMIT stops it (the quorum commit latency); each follower's ACK is timed
//! against the PROPOSAL on its own connection (its ack lag). Proposals sent
//! while a learner synchronises are counted with its sync, not timed.
//!
//! Everything has a fixed capacity (the `MAX_*` constants); what does not
//! fit is counted in [`AnalysisCounters`] and the oldest entry makes room.

use core::net::{IpAddr, SocketAddr};

use smoltcp::time::Instant;

/// Durations of the analysis (smoltcp's, re-exported for hosts).
pub use smoltcp::time::Duration;

use crate::fle::ServerState;
use crate::quorum::{Proto, QuorumEvent, QuorumMessage};
use crate::stats::Histogram;
use crate::zab::{PacketType, Payload};

/// Voters remembered per election.
pub const MAX_VOTERS: usize = 16;
/// Vote changes remembered per election.
pub const MAX_VOTE_LOG: usize = 32;
/// Closed elections (and joins) kept.
pub const MAX_ELECTIONS: usize = 16;
/// Proposals timed at once (a power of two).
pub const MAX_INFLIGHT: usize = 1024;
/// Learner connections followed at once.
pub const MAX_LINKS: usize = 32;
/// Outstanding proposals remembered per learner connection.
pub const MAX_PENDING: usize = 64;
/// Followers with ack-lag figures.
pub const MAX_FOLLOWERS: usize = 32;
/// Completed syncs kept.
pub const MAX_SYNCS: usize = 32;
/// Leaders (one per epoch) kept.
pub const MAX_LEADERS: usize = 16;
/// Server ids remembered for the ensemble size.
pub const MAX_SIDS: usize = 32;

/// Time from `b` to `a`, zero if `a` is earlier.
fn since(a: Instant, b: Instant) -> Duration {
    Duration::from_micros(a.total_micros().saturating_sub(b.total_micros()).max(0) as u64)
}

/// One vote as announced in a LOOKING notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Vote {
    /// Who votes.
    pub voter: i64,
    /// For whom.
    pub leader: i64,
    /// The proposed leader's last zxid.
    pub zxid: i64,
    /// The round (the voter's `logicalclock`).
    pub round: i64,
    /// The proposed leader's epoch.
    pub peer_epoch: i64,
    /// When it was first announced.
    pub ts: Instant,
}

const NO_VOTE: Vote = Vote {
    voter: -1,
    leader: -1,
    zxid: 0,
    round: 0,
    peer_epoch: 0,
    ts: Instant::ZERO,
};

/// A server that was looking during an election episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Voter {
    /// Its server id.
    pub sid: i64,
    /// Its first vote in the episode.
    pub first: Vote,
    /// Its last vote (`ts`: when it first announced it).
    pub last: Vote,
    /// Times it changed its vote.
    pub changes: u32,
    /// LOOKING notifications it sent.
    pub notifications: u32,
    /// Its last notification.
    pub last_seen: Instant,
}

const NO_VOTER: Voter = Voter {
    sid: -1,
    first: NO_VOTE,
    last: NO_VOTE,
    changes: 0,
    notifications: 0,
    last_seen: Instant::ZERO,
};

/// What an episode turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EpisodeKind {
    /// A quorum looked for a leader.
    Election,
    /// Fewer than a quorum looked and found the established leader.
    Join,
}

impl EpisodeKind {
    /// `election` or `join`.
    pub const fn name(self) -> &'static str {
        match self {
            EpisodeKind::Election => "election",
            EpisodeKind::Join => "join",
        }
    }
}

/// An election episode.
#[derive(Debug, Clone)]
pub struct Election {
    /// Sequence number (1, 2, ...), elections and joins alike.
    pub id: u32,
    /// Election or join (final once closed).
    pub kind: EpisodeKind,
    /// First LOOKING notification.
    pub start: Instant,
    /// Last notification of the episode.
    pub last: Instant,
    /// When a quorum's votes first agreed on the winner (elections).
    pub decided: Option<Instant>,
    /// The winner (elections) or the leader found (joins).
    pub winner: Option<i64>,
    /// The highest round seen in LOOKING votes.
    pub round: i64,
    /// The quorum size used.
    pub quorum: usize,
    /// Notifications in the episode (all states).
    pub notifications: u32,
    /// Notifications from non-looking servers (answers to looking ones).
    pub answers: u32,
    /// The leader most answers named.
    pub answered_leader: Option<i64>,
    /// LOOKING notifications whose sender's id was unknown.
    pub unattributed: u32,
    /// LOOKING notifications that re-sent a vote of a closed election.
    pub stale: u32,
    /// Voters that did not fit in [`MAX_VOTERS`].
    pub voters_overflow: u32,
    /// Vote changes that did not fit in [`MAX_VOTE_LOG`].
    pub log_overflow: u32,
    /// Closed (final).
    pub closed: bool,
    voters: [Voter; MAX_VOTERS],
    n_voters: usize,
    log: [Vote; MAX_VOTE_LOG],
    n_log: usize,
    answer_tally: [(i64, u32); 4],
}

impl Election {
    fn open(id: u32, ts: Instant) -> Self {
        Election {
            id,
            kind: EpisodeKind::Election,
            start: ts,
            last: ts,
            decided: None,
            winner: None,
            round: i64::MIN,
            quorum: 1,
            notifications: 0,
            answers: 0,
            answered_leader: None,
            unattributed: 0,
            stale: 0,
            voters_overflow: 0,
            log_overflow: 0,
            closed: false,
            voters: [NO_VOTER; MAX_VOTERS],
            n_voters: 0,
            log: [NO_VOTE; MAX_VOTE_LOG],
            n_log: 0,
            answer_tally: [(-1, 0); 4],
        }
    }

    /// The servers that were looking, in the order they were first seen.
    pub fn voters(&self) -> &[Voter] {
        &self.voters[..self.n_voters]
    }

    /// Every vote announced (each voter's first vote and each change), in
    /// wire order: the votes per round.
    pub fn votes(&self) -> &[Vote] {
        &self.log[..self.n_log]
    }

    /// Start to decision (elections), or start to the last notification.
    pub fn duration(&self) -> Duration {
        since(self.decided.unwrap_or(self.last), self.start)
    }

    fn vote(&mut self, v: Vote, ts: Instant) {
        self.round = self.round.max(v.round);
        let i = match self.voters().iter().position(|x| x.sid == v.voter) {
            Some(i) => i,
            None => {
                if self.n_voters == MAX_VOTERS {
                    self.voters_overflow += 1;
                    return;
                }
                self.voters[self.n_voters] = Voter {
                    sid: v.voter,
                    first: v,
                    last: v,
                    changes: 0,
                    notifications: 0,
                    last_seen: ts,
                };
                self.n_voters += 1;
                self.log_vote(v);
                self.n_voters - 1
            }
        };
        let voter = &mut self.voters[i];
        voter.notifications += 1;
        voter.last_seen = ts;
        if voter.last.leader != v.leader || voter.last.round != v.round {
            voter.changes += 1;
            voter.last = v;
            self.log_vote(v);
        }
    }

    fn log_vote(&mut self, v: Vote) {
        if self.n_log == MAX_VOTE_LOG {
            self.log_overflow += 1;
        } else {
            self.log[self.n_log] = v;
            self.n_log += 1;
        }
    }

    fn answer(&mut self, leader: i64) {
        self.answers += 1;
        let tally = &mut self.answer_tally;
        match tally.iter().position(|t| t.0 == leader) {
            Some(i) => tally[i].1 += 1,
            None => {
                if let Some(slot) = tally.iter_mut().min_by_key(|t| t.1) {
                    *slot = (leader, 1);
                }
            }
        }
        self.answered_leader = tally
            .iter()
            .filter(|t| t.1 > 0)
            .max_by_key(|t| t.1)
            .map(|t| t.0);
    }

    /// The server the last votes of a quorum name (in the highest round),
    /// and when the quorum-th of them announced it.
    fn agreement(&self, quorum: usize) -> Option<(i64, Instant)> {
        let last: [Vote; MAX_VOTERS] =
            core::array::from_fn(|i| self.voters.get(i).map_or(NO_VOTE, |v| v.last));
        let last = &last[..self.n_voters];
        for cand in last.iter().filter(|v| v.round == self.round) {
            let mut times = [Instant::ZERO; MAX_VOTERS];
            let mut n = 0;
            for v in last
                .iter()
                .filter(|v| v.round == self.round && v.leader == cand.leader)
            {
                times[n] = v.ts;
                n += 1;
            }
            if n >= quorum.max(1) {
                let times = &mut times[..n];
                times.sort_unstable();
                return Some((cand.leader, times[quorum.max(1) - 1]));
            }
        }
        None
    }

    fn resolved(&self, quorum: usize) -> bool {
        self.agreement(quorum).is_some() || self.answered_leader.is_some()
    }

    fn close(&mut self, quorum: usize) {
        self.quorum = quorum;
        self.closed = true;
        if let Some((leader, at)) = self.agreement(quorum) {
            self.kind = EpisodeKind::Election;
            self.winner = Some(leader);
            self.decided = Some(at);
        } else if self.answered_leader.is_some() && self.n_voters < quorum {
            self.kind = EpisodeKind::Join;
            self.winner = self.answered_leader;
        } else {
            self.kind = EpisodeKind::Election;
            self.winner = None;
        }
    }
}

/// How a learner synchronised with its leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SyncKind {
    /// The missing transactions were sent.
    Diff,
    /// The learner truncated its log.
    Trunc,
    /// A whole snapshot was sent.
    Snap,
}

impl SyncKind {
    /// `DIFF`, `TRUNC` or `SNAP`.
    pub const fn name(self) -> &'static str {
        match self {
            SyncKind::Diff => "DIFF",
            SyncKind::Trunc => "TRUNC",
            SyncKind::Snap => "SNAP",
        }
    }
}

/// A learner joining a leader: FOLLOWERINFO/OBSERVERINFO to UPTODATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SyncRecord {
    /// The learner's connection address.
    pub learner: SocketAddr,
    /// The learner's id (from its FOLLOWERINFO).
    pub learner_sid: Option<i64>,
    /// Joined as an observer.
    pub observer: bool,
    /// The leader's quorum address.
    pub leader: SocketAddr,
    /// The leader's id, when known.
    pub leader_sid: Option<i64>,
    /// The new epoch (from LEADERINFO).
    pub epoch: Option<i64>,
    /// The learner's last zxid (from ACKEPOCH).
    pub learner_zxid: Option<i64>,
    /// DIFF, TRUNC or SNAP (the first one sent).
    pub kind: Option<SyncKind>,
    /// The zxid of that packet.
    pub sync_zxid: Option<i64>,
    /// Transactions sent during the sync (PROPOSALs).
    pub proposals: u32,
    /// Snapshot bytes sent after SNAP.
    pub snapshot_bytes: u64,
    /// FOLLOWERINFO / OBSERVERINFO.
    pub start: Instant,
    /// UPTODATE, when seen.
    pub end: Option<Instant>,
}

impl SyncRecord {
    /// FOLLOWERINFO to UPTODATE.
    pub fn duration(&self) -> Option<Duration> {
        self.end.map(|e| since(e, self.start))
    }
}

/// Ack-lag figures of one follower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerStats {
    /// Its server id, when known.
    pub sid: Option<i64>,
    /// Its IP (the key when the id is unknown).
    pub ip: IpAddr,
    /// ACK minus PROPOSAL on its connection, µs.
    pub lag: Histogram,
    /// Its last ACK.
    pub last_seen: Instant,
}

/// A leader, one per epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LeaderRecord {
    /// Its quorum address.
    pub addr: SocketAddr,
    /// Its id, when known.
    pub sid: Option<i64>,
    /// The epoch (upper 32 bits of its zxids).
    pub epoch: i64,
    /// First packet seen from it in this epoch.
    pub first_seen: Instant,
    /// Last packet seen.
    pub last_seen: Instant,
    /// Distinct transactions it proposed (outside syncs).
    pub proposals: u64,
    /// Of those, commits timed.
    pub commits: u64,
}

/// Counters of the analysis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnalysisCounters {
    /// Election episodes closed as elections.
    pub elections: u64,
    /// Episodes closed as joins.
    pub joins: u64,
    /// Closed episodes dropped from the history (oldest first).
    pub elections_dropped: u64,
    /// Distinct zxids proposed outside syncs.
    pub proposals: u64,
    /// Commits timed.
    pub commits: u64,
    /// COMMITs of a zxid whose PROPOSAL was not seen.
    pub commits_unmatched: u64,
    /// ACKs timed.
    pub acks: u64,
    /// ACKs of a zxid not outstanding on their connection.
    pub acks_unmatched: u64,
    /// ACKs of an epoch start (NEWLEADER, UPTODATE), not timed.
    pub epoch_acks: u64,
    /// Proposals sent during syncs.
    pub sync_proposals: u64,
    /// Syncs completed (UPTODATE seen).
    pub syncs: u64,
    /// Outstanding proposals dropped to make room.
    pub inflight_evicted: u64,
    /// Per-connection outstanding proposals dropped to make room.
    pub pending_overflow: u64,
    /// Learner connections dropped to make room.
    pub links_evicted: u64,
    /// Followers dropped to make room.
    pub followers_evicted: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Joined before the capture started.
    Unknown,
    /// FOLLOWERINFO seen, sync not finished.
    Syncing,
    /// UPTODATE seen.
    Broadcast,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    zxid: i64,
    proposed: Instant,
    txn_type: i32,
    acks: u16,
    committed: bool,
    used: bool,
}

const NO_INFLIGHT: InFlight = InFlight {
    zxid: 0,
    proposed: Instant::ZERO,
    txn_type: 0,
    acks: 0,
    committed: false,
    used: false,
};

#[derive(Debug, Clone, Copy)]
struct LinkState {
    learner: SocketAddr,
    used: bool,
    phase: Phase,
    last_seen: Instant,
    sync: SyncRecord,
    pending: [(i64, Instant); MAX_PENDING],
    head: usize,
    len: usize,
}

const UNSPECIFIED: SocketAddr = SocketAddr::V4(core::net::SocketAddrV4::new(
    core::net::Ipv4Addr::UNSPECIFIED,
    0,
));

const EMPTY_SYNC: SyncRecord = SyncRecord {
    learner: UNSPECIFIED,
    learner_sid: None,
    observer: false,
    leader: UNSPECIFIED,
    leader_sid: None,
    epoch: None,
    learner_zxid: None,
    kind: None,
    sync_zxid: None,
    proposals: 0,
    snapshot_bytes: 0,
    start: Instant::ZERO,
    end: None,
};

const NO_LINK: LinkState = LinkState {
    learner: UNSPECIFIED,
    used: false,
    phase: Phase::Unknown,
    last_seen: Instant::ZERO,
    sync: EMPTY_SYNC,
    pending: [(0, Instant::ZERO); MAX_PENDING],
    head: 0,
    len: 0,
};

/// How the analysis groups election notifications.
#[derive(Debug, Clone, Copy)]
pub struct AnalysisConfig {
    /// A resolved episode closes after this long without notifications.
    pub settle: Duration,
    /// An unresolved episode closes after this long without notifications.
    pub stall: Duration,
    /// A server that first votes this long after a quorum agreed is joining,
    /// not voting: the agreeing servers left the election after their
    /// finalize wait (200 ms in ZooKeeper), so it cannot have been part of it.
    pub join_after: Duration,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            settle: Duration::from_millis(1000),
            stall: Duration::from_secs(60),
            join_after: Duration::from_millis(400),
        }
    }
}

/// A fact derived from the traffic, handed out as it is established.
#[derive(Debug, Clone, Copy)]
pub enum Finding<'a> {
    /// An election episode closed.
    Election(&'a Election),
    /// A proposal was committed.
    Committed {
        /// Its zxid.
        zxid: i64,
        /// First PROPOSAL to first COMMIT.
        latency: Duration,
        /// ACKs seen before the COMMIT.
        acks: u16,
        /// Its transaction type.
        txn_type: i32,
    },
    /// A follower acknowledged a proposal.
    Acked {
        /// The zxid.
        zxid: i64,
        /// The follower's id, when known.
        sid: Option<i64>,
        /// The follower's connection address.
        learner: SocketAddr,
        /// ACK minus PROPOSAL on its connection.
        lag: Duration,
    },
    /// A learner finished its sync (UPTODATE).
    Synced(&'a SyncRecord),
}

/// The analysis state. Large (about 300 KiB, most of it the per-follower
/// histograms): keep it in a `Box` or a static.
pub struct QuorumAnalysis {
    config: AnalysisConfig,
    /// Counters.
    pub counters: AnalysisCounters,
    current: Option<Election>,
    history: [Option<Election>; MAX_ELECTIONS],
    n_history: usize,
    next_id: u32,
    sids: [i64; MAX_SIDS],
    n_sids: usize,
    config_participants: usize,
    finals: [Vote; MAX_SIDS],
    n_finals: usize,
    inflight: [InFlight; MAX_INFLIGHT],
    links: [LinkState; MAX_LINKS],
    followers: [Option<FollowerStats>; MAX_FOLLOWERS],
    syncs: [SyncRecord; MAX_SYNCS],
    n_syncs: usize,
    leaders: [Option<LeaderRecord>; MAX_LEADERS],
    /// Quorum commit latency, µs.
    pub commit_latency: Histogram,
    last_ts: Instant,
}

impl Default for QuorumAnalysis {
    fn default() -> Self {
        QuorumAnalysis::new(AnalysisConfig::default())
    }
}

impl QuorumAnalysis {
    /// An empty analysis.
    pub fn new(config: AnalysisConfig) -> Self {
        QuorumAnalysis {
            config,
            counters: AnalysisCounters::default(),
            current: None,
            history: [const { None }; MAX_ELECTIONS],
            n_history: 0,
            next_id: 1,
            sids: [0; MAX_SIDS],
            n_sids: 0,
            config_participants: 0,
            finals: [NO_VOTE; MAX_SIDS],
            n_finals: 0,
            inflight: [NO_INFLIGHT; MAX_INFLIGHT],
            links: [NO_LINK; MAX_LINKS],
            followers: [const { None }; MAX_FOLLOWERS],
            syncs: [EMPTY_SYNC; MAX_SYNCS],
            n_syncs: 0,
            leaders: [None; MAX_LEADERS],
            commit_latency: Histogram::new(),
            last_ts: Instant::ZERO,
        }
    }

    /// Voting members: from the last config seen, else the ids seen.
    pub fn ensemble_size(&self) -> usize {
        if self.config_participants > 0 {
            self.config_participants
        } else {
            self.n_sids
        }
    }

    /// A majority of [`QuorumAnalysis::ensemble_size`].
    pub fn quorum(&self) -> usize {
        self.ensemble_size() / 2 + 1
    }

    /// Closed episodes, oldest first (at most [`MAX_ELECTIONS`]).
    pub fn elections(&self) -> impl Iterator<Item = &Election> {
        self.history[..self.n_history].iter().flatten()
    }

    /// The episode in progress, if any.
    pub fn current_election(&self) -> Option<&Election> {
        self.current.as_ref()
    }

    /// Completed syncs, oldest first (at most [`MAX_SYNCS`]).
    pub fn syncs(&self) -> &[SyncRecord] {
        &self.syncs[..self.n_syncs]
    }

    /// Syncs still in progress.
    pub fn syncs_in_progress(&self) -> impl Iterator<Item = &SyncRecord> {
        self.links
            .iter()
            .filter(|l| l.used && l.phase == Phase::Syncing)
            .map(|l| &l.sync)
    }

    /// Followers with ack-lag figures.
    pub fn followers(&self) -> impl Iterator<Item = &FollowerStats> {
        self.followers.iter().flatten()
    }

    /// Leaders seen, one per epoch.
    pub fn leaders(&self) -> impl Iterator<Item = &LeaderRecord> {
        self.leaders.iter().flatten()
    }

    fn see_sid(&mut self, sid: Option<i64>) {
        if let Some(s) = sid
            && s >= 0
            && !self.sids[..self.n_sids].contains(&s)
            && self.n_sids < MAX_SIDS
        {
            self.sids[self.n_sids] = s;
            self.n_sids += 1;
        }
    }

    /// Takes one event; findings it establishes go to `out`.
    pub fn observe(&mut self, ev: &QuorumEvent<'_>, out: &mut impl FnMut(Finding<'_>)) {
        self.tick(ev.ts, out);
        self.last_ts = self.last_ts.max(ev.ts);
        match ev.proto {
            Proto::Election => self.election_event(ev, out),
            Proto::Quorum => self.quorum_event(ev, out),
        }
    }

    /// Lets time pass: closes an episode that has been quiet long enough.
    pub fn tick(&mut self, now: Instant, out: &mut impl FnMut(Finding<'_>)) {
        let quorum = self.quorum();
        let due = match &self.current {
            Some(e) => {
                let quiet = since(now, e.last);
                (e.resolved(quorum) && quiet > self.config.settle) || quiet > self.config.stall
            }
            None => false,
        };
        if due {
            self.close_current(out);
        }
    }

    /// End of input: closes the episode in progress.
    pub fn finish(&mut self, out: &mut impl FnMut(Finding<'_>)) {
        self.close_current(out);
    }

    fn close_current(&mut self, out: &mut impl FnMut(Finding<'_>)) {
        let quorum = self.quorum();
        let Some(mut e) = self.current.take() else {
            return;
        };
        e.close(quorum);
        match e.kind {
            EpisodeKind::Election => self.counters.elections += 1,
            EpisodeKind::Join => self.counters.joins += 1,
        }
        for v in e.voters() {
            let last = v.last;
            match self.finals[..self.n_finals]
                .iter()
                .position(|f| f.voter == v.sid)
            {
                Some(i) => self.finals[i] = last,
                None if self.n_finals < MAX_SIDS => {
                    self.finals[self.n_finals] = last;
                    self.n_finals += 1;
                }
                None => {}
            }
        }
        if self.n_history == MAX_ELECTIONS {
            self.history.rotate_left(1);
            self.n_history -= 1;
            self.counters.elections_dropped += 1;
        }
        self.history[self.n_history] = Some(e);
        self.n_history += 1;
        if let Some(e) = &self.history[self.n_history - 1] {
            out(Finding::Election(e));
        }
    }

    fn election_event(&mut self, ev: &QuorumEvent<'_>, out: &mut impl FnMut(Finding<'_>)) {
        self.see_sid(ev.src_sid);
        self.see_sid(ev.dst_sid);
        let QuorumMessage::Notification(n) = &ev.message else {
            return;
        };
        if let Some(Ok(c)) = n.dynamic_config() {
            self.config_participants = c.participants();
        }
        let looking = n.state == ServerState::Looking;
        if self.current.is_none() {
            if !looking {
                return;
            }
            self.current = Some(Election::open(self.next_id, ev.ts));
            self.next_id += 1;
        }
        let quorum = self.quorum();
        // Once a quorum agreed, a LOOKING vote in a higher round starts a
        // new election. Once an episode is resolved (agreed, or answered),
        // a LOOKING vote from a server that was not voting is a server
        // joining when its round is lower (a looking server adopts the
        // highest round it hears of, so it cannot be part of this episode),
        // or when it comes more than `join_after` after the quorum agreed
        // (a restarted server that adopted the round of a vote re-sent to
        // it sends that round only). A joiner that then adopts a higher
        // round stays in its join.
        let new_episode = match &self.current {
            Some(e) if looking && e.round != i64::MIN && e.resolved(quorum) => {
                let newcomer = ev
                    .src_sid
                    .is_some_and(|s| e.voters().iter().all(|v| v.sid != s));
                let agreed = e.agreement(quorum).map(|(_, at)| at);
                let late = agreed.is_some_and(|at| since(ev.ts, at) > self.config.join_after);
                (n.election_epoch > e.round && agreed.is_some())
                    || (newcomer && (n.election_epoch < e.round || late))
            }
            _ => false,
        };
        if new_episode {
            self.close_current(out);
            self.current = Some(Election::open(self.next_id, ev.ts));
            self.next_id += 1;
        }
        let Some(e) = self.current.as_mut() else {
            return;
        };
        e.notifications += 1;
        e.last = ev.ts;
        if !looking {
            e.answer(n.leader);
            return;
        }
        let Some(voter) = ev.src_sid else {
            e.unattributed += 1;
            return;
        };
        let v = Vote {
            voter,
            leader: n.leader,
            zxid: n.zxid,
            round: n.election_epoch,
            peer_epoch: n.peer_epoch,
            ts: ev.ts,
        };
        let stale = self.finals[..self.n_finals].iter().any(|f| {
            f.voter == voter
                && (f.leader, f.zxid, f.round, f.peer_epoch)
                    == (v.leader, v.zxid, v.round, v.peer_epoch)
        });
        if stale {
            e.stale += 1;
        } else {
            e.vote(v, ev.ts);
        }
    }

    fn link(&mut self, learner: SocketAddr, ts: Instant, create: bool) -> Option<usize> {
        if let Some(i) = self
            .links
            .iter()
            .position(|l| l.used && l.learner == learner)
        {
            self.links[i].last_seen = ts;
            return Some(i);
        }
        if !create {
            return None;
        }
        let i = match self.links.iter().position(|l| !l.used) {
            Some(i) => i,
            None => {
                self.counters.links_evicted += 1;
                self.links
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, l)| l.last_seen)
                    .map_or(0, |(i, _)| i)
            }
        };
        self.links[i] = LinkState {
            learner,
            used: true,
            last_seen: ts,
            ..NO_LINK
        };
        Some(i)
    }

    fn leader(&mut self, addr: SocketAddr, sid: Option<i64>, epoch: i64, ts: Instant) -> usize {
        if let Some(i) = self
            .leaders
            .iter()
            .position(|l| l.is_some_and(|l| l.addr == addr && l.epoch == epoch))
        {
            if let Some(l) = self.leaders[i].as_mut() {
                l.last_seen = ts;
                l.sid = l.sid.or(sid);
            }
            return i;
        }
        let i = match self.leaders.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.leaders.rotate_left(1);
                MAX_LEADERS - 1
            }
        };
        self.leaders[i] = Some(LeaderRecord {
            addr,
            sid,
            epoch,
            first_seen: ts,
            last_seen: ts,
            proposals: 0,
            commits: 0,
        });
        i
    }

    fn follower(&mut self, sid: Option<i64>, ip: IpAddr, ts: Instant) -> usize {
        let found = self.followers.iter().position(|f| {
            f.as_ref().is_some_and(|f| match (sid, f.sid) {
                (Some(a), Some(b)) => a == b,
                _ => f.ip == ip && (sid.is_none() || f.sid.is_none()),
            })
        });
        if let Some(i) = found {
            if let Some(f) = self.followers[i].as_mut() {
                f.sid = f.sid.or(sid);
                f.last_seen = ts;
            }
            return i;
        }
        let i = match self.followers.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.counters.followers_evicted += 1;
                self.followers
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, f)| f.as_ref().map(|f| f.last_seen))
                    .map_or(0, |(i, _)| i)
            }
        };
        self.followers[i] = Some(FollowerStats {
            sid,
            ip,
            lag: Histogram::new(),
            last_seen: ts,
        });
        i
    }

    fn quorum_event(&mut self, ev: &QuorumEvent<'_>, out: &mut impl FnMut(Finding<'_>)) {
        let learner = ev.initiator();
        let leader_addr = ev.acceptor();
        let learner_sid = ev.initiator_sid();
        let leader_sid = ev.acceptor_sid();
        let ts = ev.ts;
        let packet = match &ev.message {
            QuorumMessage::Packet(p) => p,
            QuorumMessage::Snapshot { bytes } => {
                if let Some(i) = self.link(learner, ts, false) {
                    self.links[i].sync.snapshot_bytes += bytes;
                }
                return;
            }
            _ => return,
        };
        let t = packet.packet.packet_type;
        let zxid = packet.packet.zxid;
        match t {
            PacketType::FollowerInfo | PacketType::ObserverInfo => {
                let Some(i) = self.link(learner, ts, true) else {
                    return;
                };
                let sid = match packet.payload {
                    Ok(Payload::LearnerInfo(li)) => Some(li.sid),
                    _ => learner_sid,
                };
                let l = &mut self.links[i];
                l.phase = Phase::Syncing;
                l.len = 0;
                l.sync = SyncRecord {
                    learner,
                    learner_sid: sid,
                    observer: t == PacketType::ObserverInfo,
                    leader: leader_addr,
                    leader_sid,
                    start: ts,
                    ..EMPTY_SYNC
                };
            }
            PacketType::LeaderInfo => {
                if let Some(i) = self.link(learner, ts, false) {
                    self.links[i].sync.epoch = Some(zxid >> 32);
                }
                self.leader(leader_addr, leader_sid, zxid >> 32, ts);
            }
            PacketType::AckEpoch => {
                if let Some(i) = self.link(learner, ts, false) {
                    self.links[i].sync.learner_zxid = Some(zxid);
                }
            }
            PacketType::Diff | PacketType::Trunc | PacketType::Snap => {
                if let Some(i) = self.link(learner, ts, false) {
                    let s = &mut self.links[i].sync;
                    if s.kind.is_none() {
                        s.kind = Some(match t {
                            PacketType::Diff => SyncKind::Diff,
                            PacketType::Trunc => SyncKind::Trunc,
                            _ => SyncKind::Snap,
                        });
                        s.sync_zxid = Some(zxid);
                    }
                }
            }
            PacketType::UpToDate => {
                if let Some(i) = self.link(learner, ts, false)
                    && self.links[i].phase == Phase::Syncing
                {
                    let l = &mut self.links[i];
                    l.phase = Phase::Broadcast;
                    l.sync.end = Some(ts);
                    l.sync.leader_sid = l.sync.leader_sid.or(leader_sid);
                    let rec = l.sync;
                    self.counters.syncs += 1;
                    if self.n_syncs == MAX_SYNCS {
                        self.syncs.rotate_left(1);
                        self.n_syncs -= 1;
                    }
                    self.syncs[self.n_syncs] = rec;
                    self.n_syncs += 1;
                    out(Finding::Synced(&self.syncs[self.n_syncs - 1]));
                }
            }
            PacketType::Proposal => self.proposal(ev, learner, zxid, ts),
            PacketType::Ack if ev.from_initiator => self.ack(learner, learner_sid, zxid, ts, out),
            PacketType::Commit | PacketType::CommitAndActivate if !ev.from_initiator => {
                self.commit(learner, leader_addr, leader_sid, zxid, ts, out)
            }
            _ => {}
        }
    }

    fn proposal(&mut self, ev: &QuorumEvent<'_>, learner: SocketAddr, zxid: i64, ts: Instant) {
        let i = self.link(learner, ts, true);
        let syncing = i.is_some_and(|i| self.links[i].phase == Phase::Syncing);
        if syncing {
            if let Some(i) = i {
                self.links[i].sync.proposals += 1;
            }
            self.counters.sync_proposals += 1;
            return;
        }
        let txn_type = match &ev.message {
            QuorumMessage::Packet(p) => match &p.payload {
                Ok(pl) => pl.txn().map_or(0, |t| t.header.txn_type),
                Err(_) => 0,
            },
            _ => 0,
        };
        let slot = &mut self.inflight[(zxid as u64 as usize) & (MAX_INFLIGHT - 1)];
        if !(slot.used && slot.zxid == zxid) {
            if slot.used && !slot.committed {
                self.counters.inflight_evicted += 1;
            }
            *slot = InFlight {
                zxid,
                proposed: ts,
                txn_type,
                acks: 0,
                committed: false,
                used: true,
            };
            self.counters.proposals += 1;
            let (addr, sid) = (ev.acceptor(), ev.acceptor_sid());
            let li = self.leader(addr, sid, zxid >> 32, ts);
            if let Some(l) = self.leaders[li].as_mut() {
                l.proposals += 1;
            }
        }
        if let Some(i) = i {
            let l = &mut self.links[i];
            if l.len == MAX_PENDING {
                l.head = (l.head + 1) % MAX_PENDING;
                l.len -= 1;
                self.counters.pending_overflow += 1;
            }
            l.pending[(l.head + l.len) % MAX_PENDING] = (zxid, ts);
            l.len += 1;
        }
    }

    fn ack(
        &mut self,
        learner: SocketAddr,
        sid: Option<i64>,
        zxid: i64,
        ts: Instant,
        out: &mut impl FnMut(Finding<'_>),
    ) {
        if zxid & 0xffff_ffff == 0 {
            self.counters.epoch_acks += 1;
            return;
        }
        let Some(i) = self.link(learner, ts, false) else {
            self.counters.acks_unmatched += 1;
            return;
        };
        let l = &mut self.links[i];
        if l.phase == Phase::Syncing {
            return;
        }
        let mut found = None;
        while l.len > 0 {
            let (z, at) = l.pending[l.head];
            if z > zxid {
                break;
            }
            l.head = (l.head + 1) % MAX_PENDING;
            l.len -= 1;
            if z == zxid {
                found = Some(at);
                break;
            }
        }
        let sid = sid.or(l.sync.learner_sid);
        let Some(at) = found else {
            self.counters.acks_unmatched += 1;
            return;
        };
        let lag = since(ts, at);
        self.counters.acks += 1;
        let slot = &mut self.inflight[(zxid as u64 as usize) & (MAX_INFLIGHT - 1)];
        if slot.used && slot.zxid == zxid {
            slot.acks = slot.acks.saturating_add(1);
        }
        let f = self.follower(sid, learner.ip(), ts);
        if let Some(f) = self.followers[f].as_mut() {
            f.lag.record(lag.total_micros());
        }
        out(Finding::Acked {
            zxid,
            sid,
            learner,
            lag,
        });
    }

    fn commit(
        &mut self,
        learner: SocketAddr,
        leader: SocketAddr,
        leader_sid: Option<i64>,
        zxid: i64,
        ts: Instant,
        out: &mut impl FnMut(Finding<'_>),
    ) {
        if self
            .link(learner, ts, false)
            .is_some_and(|i| self.links[i].phase == Phase::Syncing)
        {
            return;
        }
        let slot = &mut self.inflight[(zxid as u64 as usize) & (MAX_INFLIGHT - 1)];
        if !(slot.used && slot.zxid == zxid) {
            self.counters.commits_unmatched += 1;
            return;
        }
        if slot.committed {
            return;
        }
        slot.committed = true;
        let latency = since(ts, slot.proposed);
        let (acks, txn_type) = (slot.acks, slot.txn_type);
        self.commit_latency.record(latency.total_micros());
        self.counters.commits += 1;
        let li = self.leader(leader, leader_sid, zxid >> 32, ts);
        if let Some(l) = self.leaders[li].as_mut() {
            l.commits += 1;
        }
        out(Finding::Committed {
            zxid,
            latency,
            acks,
            txn_type,
        });
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::fle::test_msgs::{initial, notification};
    use crate::quorum::Config;
    use crate::quorum::test_rig::{Conn, Net};
    use crate::zab::test_packets::*;
    use std::format;
    use std::string::String;
    use std::vec::Vec;

    const CFG: &str = "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n\
                       server.2=127.0.0.2:2888:3888:participant;127.0.0.2:2181\n\
                       server.3=127.0.0.3:2888:3888:participant;127.0.0.3:2181\n\
                       version=0";

    /// A network plus an analysis fed from the tracker's events.
    struct Rig {
        net: Net,
        a: std::boxed::Box<QuorumAnalysis>,
        findings: Vec<String>,
    }

    impl Rig {
        fn new() -> Self {
            Rig {
                net: Net::new(Config::default()),
                a: std::boxed::Box::new(QuorumAnalysis::default()),
                findings: Vec::new(),
            }
        }
    }

    /// Sends `bytes` on `c` (from the initiator when `fwd`) and feeds the
    /// events to the analysis.
    fn say(r: &mut Rig, c: &mut Conn, fwd: bool, bytes: &[u8]) {
        use crate::packet::TcpSegment;
        r.net.now += 100;
        let (src, dst, seq) = if fwd {
            (c.a, c.b, c.aseq)
        } else {
            (c.b, c.a, c.bseq)
        };
        let seg = TcpSegment {
            src,
            dst,
            seq,
            ack: 0,
            flags: crate::quorum::test_rig::DATA,
            window: 0,
            payload: bytes,
            wire_len: bytes.len(),
        };
        if fwd {
            c.aseq = c.aseq.wrapping_add(bytes.len() as u32);
        } else {
            c.bseq = c.bseq.wrapping_add(bytes.len() as u32);
        }
        let a = &mut r.a;
        let findings = &mut r.findings;
        r.net
            .t
            .process(Instant::from_micros(r.net.now), &seg, &mut |ev| {
                a.observe(ev, &mut |f| findings.push(describe(&f)));
            });
    }

    fn describe(f: &Finding<'_>) -> String {
        match f {
            Finding::Election(e) => {
                let votes: Vec<String> = e
                    .voters()
                    .iter()
                    .map(|v| format!("{}->{}", v.sid, v.last.leader))
                    .collect();
                format!(
                    "{} {} winner={:?} round={} votes=[{}] took={}ms",
                    e.kind.name(),
                    e.id,
                    e.winner,
                    e.round,
                    votes.join(" "),
                    e.duration().total_millis()
                )
            }
            Finding::Committed {
                zxid,
                latency,
                acks,
                ..
            } => format!("commit {zxid:#x} {}us acks={acks}", latency.total_micros()),
            Finding::Acked { zxid, sid, lag, .. } => {
                format!("ack {zxid:#x} sid={sid:?} {}us", lag.total_micros())
            }
            Finding::Synced(s) => format!(
                "sync {:?} {:?} proposals={} leader={:?}",
                s.learner_sid,
                s.kind.map(|k| k.name()),
                s.proposals,
                s.leader_sid
            ),
        }
    }

    fn tick(r: &mut Rig, ms: i64) {
        r.net.now += ms * 1000;
        let findings = &mut r.findings;
        r.a.tick(Instant::from_micros(r.net.now), &mut |f| {
            findings.push(describe(&f))
        });
    }

    /// Election connections between 3 servers on 127.0.0.1-3 (3->1, 3->2, 2->1).
    fn fle_mesh(r: &mut Rig) -> [Conn; 3] {
        let mut c31 = r.net.open("127.0.0.3:40001", "127.0.0.1:3888", true);
        let mut c32 = r.net.open("127.0.0.3:40002", "127.0.0.2:3888", true);
        let mut c21 = r.net.open("127.0.0.2:40003", "127.0.0.1:3888", true);
        say(r, &mut c31, true, &initial(3, "127.0.0.3:3888"));
        say(r, &mut c32, true, &initial(3, "127.0.0.3:3888"));
        say(r, &mut c21, true, &initial(2, "127.0.0.2:3888"));
        [c31, c32, c21]
    }

    fn looking(leader: i64, zxid: i64, round: i64) -> Vec<u8> {
        notification(0, leader, zxid, round, CFG)
    }

    #[test]
    fn election_of_three_with_one_vote_change_then_a_join() {
        let mut r = Rig::new();
        let [mut c31, mut c32, mut c21] = fle_mesh(&mut r);
        // Round 1: everyone votes for itself, then 1 and 2 adopt 3.
        say(&mut r, &mut c31, true, &looking(3, 0, 1));
        say(&mut r, &mut c31, false, &looking(1, 0, 1));
        say(&mut r, &mut c21, true, &looking(2, 0, 1));
        say(&mut r, &mut c21, false, &looking(2, 0, 1)); // 1 adopts 2 first
        say(&mut r, &mut c32, false, &looking(2, 0, 1));
        say(&mut r, &mut c32, false, &looking(3, 0, 1)); // 2 adopts 3
        say(&mut r, &mut c21, false, &looking(3, 0, 1)); // 1 adopts 3
        assert!(r.findings.is_empty());
        tick(&mut r, 500);
        assert!(r.findings.is_empty(), "settling");
        tick(&mut r, 1000);
        assert_eq!(r.findings.len(), 1);
        assert!(
            r.findings[0].starts_with("election 1 winner=Some(3) round=1 votes=[3->3 1->3 2->3]"),
            "{}",
            r.findings[0]
        );
        let e = r.a.elections().next().unwrap();
        assert_eq!(e.votes().len(), 6, "{:?}", e.votes());
        assert_eq!(e.voters()[1].changes, 2);
        // Decided when the second voter (2, a quorum with 3) voted for 3.
        assert_eq!(e.decided, Some(e.voters()[2].last.ts));
        // Server 1 restarts: looking alone, answered by a follower and the leader.
        tick(&mut r, 5000);
        say(&mut r, &mut c31, false, &looking(1, 0x1_0000_0004, 1));
        say(
            &mut r,
            &mut c31,
            true,
            &notification(2, 3, 0x1_0000_0004, 1, CFG),
        );
        say(&mut r, &mut c21, false, &looking(1, 0x1_0000_0004, 1));
        say(
            &mut r,
            &mut c21,
            true,
            &notification(1, 3, 0x1_0000_0004, 1, CFG),
        );
        tick(&mut r, 2000);
        assert_eq!(r.findings.len(), 2);
        assert!(
            r.findings[1].starts_with("join 2 winner=Some(3) round=1 votes=[1->1]"),
            "{}",
            r.findings[1]
        );
        assert_eq!((r.a.counters.elections, r.a.counters.joins), (1, 1));
    }

    #[test]
    fn new_round_after_a_decided_election_opens_a_new_one() {
        let mut r = Rig::new();
        let [_, mut c32, _] = fle_mesh(&mut r);
        say(&mut r, &mut c32, true, &looking(3, 0, 1));
        say(&mut r, &mut c32, false, &looking(3, 0, 1));
        // No quiet time: the next round starts right away (the leader died).
        say(&mut r, &mut c32, false, &looking(2, 0x1_0000_0009, 2));
        say(&mut r, &mut c32, true, &looking(3, 0x1_0000_0009, 2));
        say(&mut r, &mut c32, false, &looking(3, 0x1_0000_0009, 2));
        r.a.finish(&mut |_| {});
        let e: Vec<(Option<i64>, i64)> = r.a.elections().map(|e| (e.winner, e.round)).collect();
        assert_eq!(e, [(Some(3), 1), (Some(3), 2)]);
    }

    /// Election in round 1, won by 3; 3 dies, 1 and 2 elect 2 in round 2.
    fn failover(r: &mut Rig) -> [Conn; 3] {
        let [mut c31, mut c32, mut c21] = fle_mesh(r);
        say(r, &mut c31, true, &looking(3, 0, 1));
        say(r, &mut c32, false, &looking(3, 0, 1));
        say(r, &mut c31, false, &looking(3, 0, 1));
        tick(r, 2000);
        say(r, &mut c21, true, &looking(2, 5, 2));
        say(r, &mut c21, false, &looking(1, 5, 2));
        say(r, &mut c21, false, &looking(2, 5, 2));
        [c31, c32, c21]
    }

    #[test]
    fn restarted_server_right_after_an_election_is_one_join() {
        let mut r = Rig::new();
        let [mut c31, mut c32, _] = failover(&mut r);
        // 3 is back at once (new connections): round 1, the survivors
        // re-send their last votes, answer, and 3 adopts round 2.
        say(&mut r, &mut c31, true, &looking(3, 5, 1));
        say(&mut r, &mut c32, false, &looking(2, 5, 2));
        say(&mut r, &mut c32, false, &notification(2, 2, 5, 2, CFG));
        say(&mut r, &mut c31, true, &looking(3, 5, 2));
        say(&mut r, &mut c31, false, &looking(2, 5, 2));
        say(&mut r, &mut c31, false, &notification(1, 2, 5, 2, CFG));
        r.a.finish(&mut |_| {});
        let eps: Vec<String> =
            r.a.elections()
                .map(|e| format!("{} {:?} {}", e.kind.name(), e.winner, e.stale))
                .collect();
        assert_eq!(
            eps,
            ["election Some(3) 0", "election Some(2) 0", "join Some(2) 2"]
        );
    }

    #[test]
    fn restarted_server_voting_in_the_current_round_is_a_join() {
        let mut r = Rig::new();
        failover(&mut r);
        // 3 is back 700 ms later. 2's re-sent last vote reached it first: it
        // adopted round 2 before its round-1 votes left (the send queue
        // keeps the newest message), so round 2 is all it sends.
        tick(&mut r, 700);
        let [mut c31, mut c32, _] = fle_mesh(&mut r);
        say(&mut r, &mut c32, false, &looking(2, 5, 2));
        say(&mut r, &mut c31, true, &looking(3, 5, 2));
        say(&mut r, &mut c32, true, &looking(3, 5, 2));
        say(&mut r, &mut c32, false, &notification(2, 2, 5, 2, CFG));
        say(&mut r, &mut c31, false, &looking(2, 5, 2));
        say(&mut r, &mut c31, false, &notification(1, 2, 5, 2, CFG));
        r.a.finish(&mut |_| {});
        let eps: Vec<String> =
            r.a.elections()
                .map(|e| {
                    let voters: Vec<i64> = e.voters().iter().map(|v| v.sid).collect();
                    format!("{} {:?} {voters:?}", e.kind.name(), e.winner)
                })
                .collect();
        assert_eq!(
            eps,
            [
                "election Some(3) [3, 2, 1]",
                "election Some(2) [2, 1]",
                "join Some(2) [3]"
            ]
        );
        // Within the finalize wait, a late voter of the same round is a voter.
        let mut r = Rig::new();
        let [mut c31, mut c32, _] = fle_mesh(&mut r);
        say(&mut r, &mut c31, true, &looking(3, 0, 1));
        say(&mut r, &mut c31, false, &looking(3, 0, 1));
        tick(&mut r, 150);
        say(&mut r, &mut c32, false, &looking(3, 0, 1));
        r.a.finish(&mut |_| {});
        let e = r.a.elections().next().unwrap();
        assert_eq!((e.kind, e.voters().len()), (EpisodeKind::Election, 3));
    }

    #[test]
    fn undecided_episode_waits_for_the_stall_time() {
        let mut r = Rig::new();
        let [_, mut c32, _] = fle_mesh(&mut r);
        say(&mut r, &mut c32, true, &looking(3, 0, 1));
        say(&mut r, &mut c32, false, &looking(2, 0, 1));
        tick(&mut r, 5000);
        assert!(r.a.current_election().is_some());
        tick(&mut r, 60_000);
        assert_eq!(r.findings.len(), 1);
        assert!(
            r.findings[0].starts_with("election 1 winner=None"),
            "{}",
            r.findings[0]
        );
    }

    #[test]
    fn learner_sync_then_proposals_acks_and_commits_are_timed() {
        let mut r = Rig::new();
        // Learner 1 joins leader 3.
        let mut c = r.net.open("127.0.0.1:50000", "127.0.0.3:2888", true);
        say(&mut r, &mut c, true, &follower_info(1, 1));
        say(
            &mut r,
            &mut c,
            false,
            &packet(17, 0x2_0000_0000, Some(&0x10000i32.to_be_bytes())),
        );
        say(
            &mut r,
            &mut c,
            true,
            &packet(18, 0x1_0000_0004, Some(&1i32.to_be_bytes())),
        );
        say(&mut r, &mut c, false, &packet(13, 0x1_0000_0006, None));
        say(&mut r, &mut c, false, &proposal(0x1_0000_0005, "/s1"));
        say(&mut r, &mut c, false, &packet(4, 0x1_0000_0005, None));
        say(&mut r, &mut c, false, &proposal(0x1_0000_0006, "/s2"));
        say(&mut r, &mut c, false, &packet(4, 0x1_0000_0006, None));
        say(
            &mut r,
            &mut c,
            false,
            &packet(10, 0x2_0000_0000, Some(CFG.as_bytes())),
        );
        say(&mut r, &mut c, true, &packet(3, 0x2_0000_0000, None));
        say(&mut r, &mut c, false, &packet(12, -1, None));
        say(&mut r, &mut c, true, &packet(3, 0x2_0000_0000, None));
        // Learner 2 was already following.
        let mut d = r.net.open("127.0.0.2:50001", "127.0.0.3:2888", false);
        // Broadcast: two proposals, acks, commits.
        for z in [0x2_0000_0001i64, 0x2_0000_0002] {
            say(&mut r, &mut c, false, &proposal(z, "/b"));
            say(&mut r, &mut d, false, &proposal(z, "/b"));
            r.net.now += 900;
            say(&mut r, &mut d, true, &packet(3, z, None));
            r.net.now += 1900;
            say(&mut r, &mut c, true, &packet(3, z, None));
            say(&mut r, &mut c, false, &packet(4, z, None));
            say(&mut r, &mut d, false, &packet(4, z, None));
        }
        let expect = [
            "sync Some(1) Some(\"DIFF\") proposals=2 leader=Some(3)",
            "ack 0x200000001 sid=Some(2) 1000us",
            "ack 0x200000001 sid=Some(1) 3100us",
            "commit 0x200000001 3200us acks=2",
            "ack 0x200000002 sid=Some(2) 1000us",
            "ack 0x200000002 sid=Some(1) 3100us",
            "commit 0x200000002 3200us acks=2",
        ];
        assert_eq!(r.findings, expect);
        let c = &r.a.counters;
        assert_eq!(
            (
                c.proposals,
                c.commits,
                c.acks,
                c.sync_proposals,
                c.epoch_acks,
                c.syncs
            ),
            (2, 2, 4, 2, 2, 1)
        );
        assert_eq!(r.a.commit_latency.count(), 2);
        let f1 = r.a.followers().find(|f| f.sid == Some(1)).unwrap();
        assert_eq!(f1.lag.max(), 3100);
        let leaders: Vec<(Option<i64>, i64, u64, u64)> =
            r.a.leaders()
                .map(|l| (l.sid, l.epoch, l.proposals, l.commits))
                .collect();
        assert_eq!(leaders, [(Some(3), 2, 2, 2)]);
        let s = &r.a.syncs()[0];
        assert_eq!(
            (s.epoch, s.learner_zxid, s.sync_zxid),
            (Some(2), Some(0x1_0000_0004), Some(0x1_0000_0006))
        );
        assert!(s.duration().is_some());
    }

    #[test]
    fn commits_without_their_proposal_and_stray_acks_are_counted() {
        let mut r = Rig::new();
        let mut d = r.net.open("127.0.0.2:50001", "127.0.0.3:2888", false);
        say(&mut r, &mut d, false, &packet(4, 0x2_0000_0007, None));
        say(&mut r, &mut d, true, &packet(3, 0x2_0000_0007, None));
        let c = &r.a.counters;
        assert_eq!(
            (c.commits_unmatched, c.acks_unmatched, c.commits),
            (1, 1, 0)
        );
    }
}
