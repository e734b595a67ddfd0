//! zk-traffic's Linux host: libpcap capture wired to zk-wire, and the
//! command-line tools built on it (`zk-dump`, ...).
//!
//! Hosts hold no protocol logic: frames go in, zk-wire events come out, and
//! this crate prints, counts and serves them.

pub mod capture;
pub mod dump;
pub mod fle_dump;
pub mod quorum_dump;
pub mod quorum_metrics;
pub mod quorum_omni;
pub mod quorum_record;
pub mod quorum_summary;
pub mod record;
pub mod stats;
pub mod summary;
pub mod tui;
pub mod zab_dump;
