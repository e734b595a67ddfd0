//! Fixed-memory statistics: latency histograms and heavy-hitter tables.
//!
//! These are the building blocks of zk-stats' tables: every structure has a
//! capacity fixed at construction, never allocates, and says how exact it is
//! (a histogram's relative error, a top-k table's error bound).

pub mod auths;
pub mod export;
pub mod histogram;
pub mod tables;
pub mod topk;

pub use auths::{AuthLog, AuthRecord};
pub use histogram::Histogram;
pub use tables::{Category, KeyView, Options, Scope, Tables, Totals};
pub use topk::{Counted, Slot, TopK};
