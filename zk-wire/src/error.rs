//! The one error type every zk-wire decoder returns.
//!
//! Malformed input is never a panic: each decoder answers with one of these
//! kinds, and hosts count them by [`Error::name`].

use core::fmt;

/// Why a decoder refused its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The input ends before the record does.
    Truncated,
    /// A length field is negative or inconsistent with the enclosing frame.
    BadLength,
    /// An opcode, packet type or message type this decoder does not know.
    UnknownOpcode,
    /// A string field (`ustring` in jute) is not valid UTF-8.
    BadUtf8,
    /// A length or count exceeds the configured limit (e.g. jute.maxbuffer).
    OverLimit,
    /// The bytes are present but cannot be the record they claim to be.
    Malformed,
}

impl Error {
    /// Number of kinds.
    pub const COUNT: usize = 6;

    /// Every kind, in a fixed order (for counter tables indexed by kind).
    pub const ALL: [Error; Error::COUNT] = [
        Error::Truncated,
        Error::BadLength,
        Error::UnknownOpcode,
        Error::BadUtf8,
        Error::OverLimit,
        Error::Malformed,
    ];

    /// A stable snake_case name, used as a counter key and metric label.
    pub const fn name(self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::BadLength => "bad_length",
            Error::UnknownOpcode => "unknown_opcode",
            Error::BadUtf8 => "bad_utf8",
            Error::OverLimit => "over_limit",
            Error::Malformed => "malformed",
        }
    }

    /// Position of this kind in [`Error::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl core::error::Error for Error {}

/// One counter per [`Error`] kind: how many times a decoder refused its
/// input, by why. Adding a kind to [`Error`] changes nothing for users of
/// this type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ErrorCounts([u64; Error::COUNT]);

impl ErrorCounts {
    /// Every counter at zero.
    pub const ZERO: ErrorCounts = ErrorCounts([0; Error::COUNT]);

    /// Counts one error of kind `e`.
    #[inline]
    pub fn add(&mut self, e: Error) {
        self.0[e.index()] += 1;
    }

    /// Errors of kind `e`.
    #[inline]
    pub const fn get(&self, e: Error) -> u64 {
        self.0[e.index()]
    }

    /// Errors of every kind.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// True when no error was counted.
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|&n| n == 0)
    }

    /// Every kind with its count, in [`Error::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Error, u64)> + '_ {
        Error::ALL.into_iter().map(|e| (e, self.get(e)))
    }

    /// The kinds counted at least once, with their counts.
    pub fn nonzero(&self) -> impl Iterator<Item = (Error, u64)> + '_ {
        self.iter().filter(|&(_, n)| n > 0)
    }
}

impl core::ops::Add for ErrorCounts {
    type Output = ErrorCounts;
    fn add(mut self, rhs: ErrorCounts) -> ErrorCounts {
        self += rhs;
        self
    }
}

impl core::ops::AddAssign for ErrorCounts {
    fn add_assign(&mut self, rhs: ErrorCounts) {
        for (a, b) in self.0.iter_mut().zip(rhs.0) {
            *a += b;
        }
    }
}

/// Result alias used across zk-wire.
pub type Result<T> = core::result::Result<T, Error>;
