//! Jute binary primitives: the bounds-checked cursor every client-protocol
//! record is read with, and the lazily iterated `vector<ustring>`.
//!
//! Wire format: Apache Jute's binary archive (`org.apache.jute.BinaryInputArchive`
//! in `zookeeper-jute`), the encoding of every record in
//! `zookeeper-jute/src/main/resources/zookeeper.jute`:
//!
//! | jute type   | bytes                                                        |
//! |-------------|--------------------------------------------------------------|
//! | `int`       | 4, big-endian, two's complement                              |
//! | `long`      | 8, big-endian, two's complement                              |
//! | `boolean`   | 1 (0 = false, anything else = true)                          |
//! | `buffer`    | `int` length (-1 = null), then that many bytes               |
//! | `ustring`   | `int` length (-1 = null), then that many UTF-8 bytes         |
//! | `vector<T>` | `int` count (-1 = null), then `count` elements back to back  |
//!
//! Every read checks the remaining length first and answers
//! [`Error::Truncated`] when the record runs past the input,
//! [`Error::BadLength`] for a length or count below -1 and
//! [`Error::BadUtf8`] for a `ustring` that is not UTF-8. Vector counts are
//! checked against the bytes left (a count can never exceed
//! `remaining / smallest element`), so no loop over a count is unbounded.

use crate::{Error, Result};
use core::iter::FusedIterator;

/// A bounds-checked cursor over jute-encoded bytes; every read either
/// consumes exactly its field or fails without panicking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A cursor at the start of `buf`.
    #[inline]
    pub const fn new(buf: &'a [u8]) -> Self {
        Reader { rest: buf }
    }

    /// Bytes not yet read.
    #[inline]
    pub const fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// True when every byte has been read.
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The bytes not yet read, borrowed from the input.
    #[inline]
    pub const fn rest(&self) -> &'a [u8] {
        self.rest
    }

    #[inline(always)]
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        match self.rest.split_first_chunk::<N>() {
            Some((head, tail)) => {
                self.rest = tail;
                Ok(*head)
            }
            None => Err(Error::Truncated),
        }
    }

    /// A jute `int` (4 bytes, big-endian).
    #[inline(always)]
    pub fn i32(&mut self) -> Result<i32> {
        self.array::<4>().map(i32::from_be_bytes)
    }

    /// A jute `long` (8 bytes, big-endian).
    #[inline(always)]
    pub fn i64(&mut self) -> Result<i64> {
        self.array::<8>().map(i64::from_be_bytes)
    }

    /// A jute `boolean` (1 byte; any non-zero value is true, as in Java's
    /// `DataInput.readBoolean`).
    #[inline(always)]
    pub fn bool(&mut self) -> Result<bool> {
        self.array::<1>().map(|[b]| b != 0)
    }

    /// The next `n` bytes, borrowed.
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        match self.rest.split_at_checked(n) {
            Some((head, tail)) => {
                self.rest = tail;
                Ok(head)
            }
            None => Err(Error::Truncated),
        }
    }

    /// Skips `n` bytes.
    #[inline]
    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.take(n).map(|_| ())
    }

    /// A length prefix: `None` for jute's null (-1), the length otherwise.
    #[inline(always)]
    fn len_prefix(&mut self) -> Result<Option<usize>> {
        let n = self.i32()?;
        if n == -1 {
            return Ok(None);
        }
        usize::try_from(n).map(Some).map_err(|_| Error::BadLength)
    }

    /// A jute `buffer`, borrowed; a null buffer (length -1) reads as empty.
    #[inline]
    pub fn buffer(&mut self) -> Result<&'a [u8]> {
        match self.len_prefix()? {
            None => Ok(&[]),
            Some(n) => self.take(n),
        }
    }

    /// Skips a jute `buffer` and answers its declared length (-1 for null).
    #[inline]
    pub fn buffer_len(&mut self) -> Result<i32> {
        let n = self.i32()?;
        if n == -1 {
            return Ok(-1);
        }
        let len = usize::try_from(n).map_err(|_| Error::BadLength)?;
        self.skip(len)?;
        Ok(n)
    }

    /// A jute `ustring`, borrowed; a null string (length -1) reads as `""`.
    #[inline]
    pub fn ustring(&mut self) -> Result<&'a str> {
        let bytes = self.buffer()?;
        core::str::from_utf8(bytes).map_err(|_| Error::BadUtf8)
    }

    /// Skips a jute `ustring` without checking its UTF-8 (for fields that are
    /// only counted, such as ACL ids).
    #[inline]
    pub fn skip_ustring(&mut self) -> Result<()> {
        self.buffer().map(|_| ())
    }

    /// A jute `vector` count: a null vector (-1) reads as 0. `min_elem` is
    /// the smallest encoded size of one element; a count whose elements
    /// cannot fit in the bytes left is [`Error::Truncated`].
    #[inline]
    pub fn vector_len(&mut self, min_elem: usize) -> Result<usize> {
        let n = match self.len_prefix()? {
            None => return Ok(0),
            Some(n) => n,
        };
        if n > self.rest.len().checked_div(min_elem.max(1)).unwrap_or(0) {
            return Err(Error::Truncated);
        }
        Ok(n)
    }

    /// A jute `vector<ustring>`, validated (lengths and UTF-8) and borrowed.
    #[inline]
    pub fn path_list(&mut self) -> Result<PathList<'a>> {
        PathList::read(self)
    }

    /// The bytes read since `start` (a copy of this cursor taken earlier).
    #[inline]
    pub(crate) fn consumed_since(&self, start: Reader<'a>) -> &'a [u8] {
        let used = start.rest.len().saturating_sub(self.rest.len());
        start.rest.get(..used).unwrap_or(start.rest)
    }
}

/// A jute `vector<ustring>` (children, ephemerals, watch paths): the count
/// and the encoded entries, checked once when read and iterated lazily as
/// `&'a str` without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PathList<'a> {
    raw: &'a [u8],
    len: usize,
}

impl<'a> PathList<'a> {
    /// An empty list.
    pub const EMPTY: PathList<'static> = PathList { raw: &[], len: 0 };

    /// Reads and validates a `vector<ustring>` (count, every length, every
    /// entry's UTF-8).
    pub fn read(r: &mut Reader<'a>) -> Result<Self> {
        let len = r.vector_len(4)?;
        let start = *r;
        for _ in 0..len {
            r.ustring()?;
        }
        Ok(PathList {
            raw: r.consumed_since(start),
            len,
        })
    }

    /// Number of entries.
    #[inline]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// True when the list has no entries.
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The encoded entries (without the count), as on the wire.
    #[inline]
    pub const fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Iterates the entries in wire order; null entries read as `""`.
    #[inline]
    pub fn iter(&self) -> PathIter<'a> {
        PathIter {
            r: Reader::new(self.raw),
            left: self.len,
        }
    }
}

impl<'a> IntoIterator for PathList<'a> {
    type Item = &'a str;
    type IntoIter = PathIter<'a>;
    fn into_iter(self) -> PathIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &PathList<'a> {
    type Item = &'a str;
    type IntoIter = PathIter<'a>;
    fn into_iter(self) -> PathIter<'a> {
        self.iter()
    }
}

/// Iterator over a [`PathList`].
#[derive(Debug, Clone)]
pub struct PathIter<'a> {
    r: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for PathIter<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        if self.left == 0 {
            return None;
        }
        self.left = self.left.saturating_sub(1);
        match self.r.ustring() {
            Ok(s) => Some(s),
            Err(_) => {
                // Unreachable for a list built by `PathList::read`; stop cleanly.
                self.left = 0;
                None
            }
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for PathIter<'_> {}
impl FusedIterator for PathIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::test_enc::Enc;

    #[test]
    fn reads_fixed_width_big_endian() {
        let b = Enc::new()
            .i32(-2)
            .i64(0x0102_0304_0506_0708)
            .bool(true)
            .u8(7)
            .done();
        let mut r = Reader::new(&b);
        assert_eq!(r.i32(), Ok(-2));
        assert_eq!(r.i64(), Ok(0x0102_0304_0506_0708));
        assert_eq!(r.bool(), Ok(true));
        assert_eq!(r.bool(), Ok(true), "any non-zero byte is true");
        assert_eq!(r.bool(), Err(Error::Truncated));
        assert!(r.is_empty());
    }

    #[test]
    fn short_input_is_truncated_and_consumes_nothing() {
        let mut r = Reader::new(&[0, 0, 0]);
        assert_eq!(r.i32(), Err(Error::Truncated));
        assert_eq!(r.remaining(), 3);
        assert_eq!(r.i64(), Err(Error::Truncated));
    }

    #[test]
    fn null_buffer_and_string_read_as_empty() {
        let b = Enc::new().i32(-1).i32(-1).done();
        let mut r = Reader::new(&b);
        assert_eq!(r.buffer(), Ok(&[][..]));
        assert_eq!(r.ustring(), Ok(""));
    }

    #[test]
    fn buffer_len_reports_declared_length() {
        let b = Enc::new().buf(b"abc").null().done();
        let mut r = Reader::new(&b);
        assert_eq!(r.buffer_len(), Ok(3));
        assert_eq!(r.buffer_len(), Ok(-1));
        assert!(r.is_empty());
    }

    #[test]
    fn negative_length_is_bad_length() {
        for n in [-2, -100, i32::MIN] {
            let b = Enc::new().i32(n).raw(b"xxxx").done();
            assert_eq!(Reader::new(&b).buffer(), Err(Error::BadLength));
            assert_eq!(Reader::new(&b).ustring(), Err(Error::BadLength));
            assert_eq!(Reader::new(&b).buffer_len(), Err(Error::BadLength));
            assert_eq!(Reader::new(&b).vector_len(4), Err(Error::BadLength));
        }
    }

    #[test]
    fn length_past_the_end_is_truncated() {
        let b = Enc::new().i32(5).raw(b"abcd").done();
        assert_eq!(Reader::new(&b).buffer(), Err(Error::Truncated));
        let b = Enc::new().i32(i32::MAX).raw(b"abcd").done();
        assert_eq!(Reader::new(&b).buffer(), Err(Error::Truncated));
        assert_eq!(Reader::new(&b).buffer_len(), Err(Error::Truncated));
    }

    #[test]
    fn bad_utf8_is_reported() {
        let b = Enc::new().buf(&[0x2f, 0xff, 0xfe]).done();
        assert_eq!(Reader::new(&b).ustring(), Err(Error::BadUtf8));
        // Skipping does not look at the bytes.
        let mut r = Reader::new(&b);
        assert_eq!(r.skip_ustring(), Ok(()));
        assert!(r.is_empty());
    }

    #[test]
    fn vector_count_is_bounded_by_remaining_bytes() {
        let b = Enc::new().i32(i32::MAX).raw(&[0; 64]).done();
        assert_eq!(Reader::new(&b).vector_len(4), Err(Error::Truncated));
        let b = Enc::new().i32(17).raw(&[0; 64]).done();
        assert_eq!(Reader::new(&b).vector_len(4), Err(Error::Truncated));
        let b = Enc::new().i32(16).raw(&[0; 64]).done();
        assert_eq!(Reader::new(&b).vector_len(4), Ok(16));
        let b = Enc::new().i32(-1).done();
        assert_eq!(Reader::new(&b).vector_len(4), Ok(0));
    }

    #[test]
    fn path_list_round_trips() {
        let b = Enc::new().strs(&["/a", "", "/b/c"]).i32(99).done();
        let mut r = Reader::new(&b);
        let l = r.path_list().unwrap();
        assert_eq!(l.len(), 3);
        assert!(!l.is_empty());
        let mut it = l.iter();
        assert_eq!(it.len(), 3);
        assert_eq!(it.next(), Some("/a"));
        assert_eq!(it.next(), Some(""));
        assert_eq!(it.next(), Some("/b/c"));
        assert_eq!(it.next(), None);
        assert_eq!(it.next(), None);
        assert_eq!(r.i32(), Ok(99), "the list consumed exactly its bytes");
        assert_eq!(l.raw().len(), 4 + 2 + 4 + 4 + 4);
        assert_eq!((&l).into_iter().count(), 3);
    }

    #[test]
    fn path_list_null_and_empty() {
        let b = Enc::new().i32(-1).done();
        let l = Reader::new(&b).path_list().unwrap();
        assert!(l.is_empty());
        assert_eq!(l.iter().next(), None);
        assert_eq!(PathList::EMPTY.len(), 0);
    }

    #[test]
    fn path_list_rejects_bad_entries() {
        let b = Enc::new().i32(2).s("/a").buf(&[0xc3]).done();
        assert_eq!(Reader::new(&b).path_list(), Err(Error::BadUtf8));
        let b = Enc::new().i32(2).s("/a").i32(-7).done();
        assert_eq!(Reader::new(&b).path_list(), Err(Error::BadLength));
        let b = Enc::new().i32(3).s("/a").s("/b").done();
        assert_eq!(Reader::new(&b).path_list(), Err(Error::Truncated));
        let full = Enc::new().strs(&["/x", "/yy"]).done();
        for n in 0..full.len() {
            assert!(Reader::new(&full[..n]).path_list().is_err(), "cut at {n}");
        }
    }
}
