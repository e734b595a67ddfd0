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
    /// Every kind, in a fixed order (for counter tables indexed by kind).
    pub const ALL: [Error; 6] = [
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

/// Result alias used across zk-wire.
pub type Result<T> = core::result::Result<T, Error>;
