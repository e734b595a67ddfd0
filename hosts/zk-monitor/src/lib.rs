//! zk-monitor: a znode compliance monitor with alerting, clustered with
//! exactly one alerting leader.
//!
//! Operators list znodes with a spec ("/services/api must have at least 3
//! children"); when a path goes out of spec an alert goes out (email,
//! Alertmanager-compatible webhook, Slack), and when it comes back a
//! resolved notice does. Several agents run for redundancy and elect one
//! leader through ZooKeeper; only the leader sends.
//!
//! Module map, in data-flow order: [`config`] (the YAML file) ->
//! [`monitor`] (watches and reads) -> [`eval`] (compliance) -> [`alert`]
//! (when to notify) -> [`notify`] (delivery); [`agent`] wires them to one
//! ZooKeeper session at a time; [`status`] and [`http`] expose the state;
//! [`cli`] and [`logging`] serve the binary.

#![warn(missing_docs)]

pub mod agent;
pub mod alert;
pub mod cli;
pub mod config;
pub mod eval;
pub mod http;
pub mod logging;
pub mod monitor;
pub mod notify;
pub mod status;
