//! Heavy hitters in fixed memory: the Space-Saving algorithm.
//!
//! Metwally, Agrawal and El Abbadi, "Efficient Computation of Frequent and
//! Top-k Elements in Data Streams" (ICDT 2005). A table of `m` counters
//! follows a stream of keys; a new key takes over the smallest counter and
//! inherits its count as its error bound. Guarantees, for a stream of total
//! weight `N`:
//! - every key whose true count exceeds `N / m` is in the table;
//! - a key's reported count overestimates its true count by at most its
//!   `error` (itself at most `N / m`);
//! - while the number of distinct keys is at most `m`, every count is exact.
//!
//! Keys are byte strings of up to [`KEY_MAX`] bytes (longer ones are cut
//! there). Storage is a caller-provided slice of [`Slot`]s: each slot holds
//! one counter, one cell of the min-heap over counts, and two cells of the
//! open-addressing index from key to counter. Updates are O(log m).

/// Longest key kept; longer keys are cut to this length.
pub const KEY_MAX: usize = 120;

const EMPTY: u32 = u32::MAX;

/// One counter of a [`TopK`] table (with its share of the index and heap).
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    key: [u8; KEY_MAX],
    key_len: u8,
    hash: u64,
    count: u64,
    error: u64,
    bytes: u64,
    heap_pos: u32,
    heap: u32,
    index: [u32; 2],
}

impl Slot {
    /// An unused slot: fill storage with it.
    pub const EMPTY: Slot = Slot {
        key: [0; KEY_MAX],
        key_len: 0,
        hash: 0,
        count: 0,
        error: 0,
        bytes: 0,
        heap_pos: EMPTY,
        heap: EMPTY,
        index: [EMPTY; 2],
    };
}

/// One row read out of a [`TopK`] table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted<'a> {
    /// The key (cut at [`KEY_MAX`] bytes).
    pub key: &'a [u8],
    /// Count (an overestimate by at most `error`).
    pub count: u64,
    /// Upper bound of the overestimate of `count`.
    pub error: u64,
    /// Bytes attributed to the key (overestimated like `count`).
    pub bytes: u64,
}

/// A Space-Saving heavy-hitter table over caller-provided storage.
#[derive(Debug)]
pub struct TopK<S: AsMut<[Slot]> + AsRef<[Slot]>> {
    slots: S,
    len: usize,
    total: u64,
    evictions: u64,
}

fn hash_key(key: &[u8]) -> u64 {
    // FNV-1a over 8-byte words, then a final mix: fast and stable.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

impl<S: AsMut<[Slot]> + AsRef<[Slot]>> TopK<S> {
    /// A table with one counter per slot of `slots` (which should be filled
    /// with [`Slot::EMPTY`]).
    pub fn new(mut slots: S) -> Self {
        for s in slots.as_mut().iter_mut() {
            *s = Slot::EMPTY;
        }
        TopK {
            slots,
            len: 0,
            total: 0,
            evictions: 0,
        }
    }

    /// Counters in the table.
    pub fn capacity(&self) -> usize {
        self.slots.as_ref().len()
    }

    /// Distinct keys held now.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no key was counted.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Total weight counted (the `N` of the error bound).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Keys that displaced another (0 means every count is exact).
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Forgets every key.
    pub fn clear(&mut self) {
        let n = self.len;
        for s in self.slots.as_mut()[..n].iter_mut() {
            s.heap_pos = EMPTY;
            s.heap = EMPTY;
        }
        for s in self.slots.as_mut().iter_mut() {
            s.index = [EMPTY; 2];
        }
        self.len = 0;
        self.total = 0;
        self.evictions = 0;
    }

    fn index_cells(&self) -> usize {
        self.slots.as_ref().len() * 2
    }

    fn cell(&self, c: usize) -> u32 {
        self.slots.as_ref()[c / 2].index[c % 2]
    }

    fn set_cell(&mut self, c: usize, v: u32) {
        self.slots.as_mut()[c / 2].index[c % 2] = v;
    }

    fn home(&self, hash: u64) -> usize {
        ((u128::from(hash) * self.index_cells() as u128) >> 64) as usize
    }

    /// Index cell holding `key`, or the empty cell where it would go.
    fn find(&self, key: &[u8], hash: u64) -> (usize, bool) {
        let n = self.index_cells();
        let mut c = self.home(hash);
        loop {
            let v = self.cell(c);
            if v == EMPTY {
                return (c, false);
            }
            let s = &self.slots.as_ref()[v as usize];
            if s.hash == hash && &s.key[..s.key_len as usize] == key {
                return (c, true);
            }
            c += 1;
            if c == n {
                c = 0;
            }
        }
    }

    /// Removes index cell `c`, shifting later entries of its run back.
    fn remove_cell(&mut self, mut c: usize) {
        let n = self.index_cells();
        let mut next = (c + 1) % n;
        loop {
            let v = self.cell(next);
            if v == EMPTY {
                break;
            }
            let home = self.home(self.slots.as_ref()[v as usize].hash);
            // Can the entry at `next` move back to `c`? Only if its home is
            // not in the cyclic range (c, next].
            let between = if c <= next {
                home > c && home <= next
            } else {
                home > c || home <= next
            };
            if !between {
                self.set_cell(c, v);
                c = next;
            }
            next = (next + 1) % n;
        }
        self.set_cell(c, EMPTY);
    }

    fn heap_count(&self, pos: usize) -> u64 {
        let s = self.slots.as_ref();
        s[s[pos].heap as usize].count
    }

    fn heap_swap(&mut self, a: usize, b: usize) {
        let s = self.slots.as_mut();
        let (ea, eb) = (s[a].heap, s[b].heap);
        s[a].heap = eb;
        s[b].heap = ea;
        s[eb as usize].heap_pos = a as u32;
        s[ea as usize].heap_pos = b as u32;
    }

    fn sift_up(&mut self, mut pos: usize) {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if self.heap_count(parent) <= self.heap_count(pos) {
                break;
            }
            self.heap_swap(parent, pos);
            pos = parent;
        }
    }

    fn sift_down(&mut self, mut pos: usize) {
        let n = self.len;
        loop {
            let (l, r) = (2 * pos + 1, 2 * pos + 2);
            let mut min = pos;
            if l < n && self.heap_count(l) < self.heap_count(min) {
                min = l;
            }
            if r < n && self.heap_count(r) < self.heap_count(min) {
                min = r;
            }
            if min == pos {
                break;
            }
            self.heap_swap(pos, min);
            pos = min;
        }
    }

    /// Counts `weight` occurrences of `key` carrying `bytes` bytes.
    pub fn add(&mut self, key: &[u8], weight: u64, bytes: u64) {
        if self.capacity() == 0 {
            return;
        }
        let key = &key[..key.len().min(KEY_MAX)];
        let hash = hash_key(key);
        self.total += weight;
        let (cell, found) = self.find(key, hash);
        if found {
            let e = self.cell(cell) as usize;
            let s = &mut self.slots.as_mut()[e];
            s.count += weight;
            s.bytes += bytes;
            let pos = s.heap_pos as usize;
            self.sift_down(pos);
            return;
        }
        let fresh = self.len < self.capacity();
        let (e, count, error, bytes) = if fresh {
            let e = self.len;
            self.len += 1;
            let s = &mut self.slots.as_mut()[e];
            s.heap_pos = e as u32;
            s.heap = e as u32;
            (e, weight, 0, bytes)
        } else {
            // Take over the smallest counter.
            self.evictions += 1;
            let e = self.slots.as_ref()[0].heap as usize;
            let old = self.slots.as_ref()[e];
            let (old_cell, _) = self.find(&old.key[..old.key_len as usize], old.hash);
            self.remove_cell(old_cell);
            (e, old.count + weight, old.count, old.bytes + bytes)
        };
        let s = &mut self.slots.as_mut()[e];
        s.key[..key.len()].copy_from_slice(key);
        s.key_len = key.len() as u8;
        s.hash = hash;
        s.count = count;
        s.error = error;
        s.bytes = bytes;
        let pos = s.heap_pos as usize;
        // The cell found above may have moved if an eviction shifted cells.
        let (cell, _) = self.find(key, hash);
        self.set_cell(cell, e as u32);
        if fresh {
            self.sift_up(pos);
        } else {
            self.sift_down(pos);
        }
    }

    /// The count of `key`, if it is in the table.
    pub fn get(&self, key: &[u8]) -> Option<Counted<'_>> {
        let key = &key[..key.len().min(KEY_MAX)];
        let (cell, found) = self.find(key, hash_key(key));
        found.then(|| self.row(self.cell(cell) as usize))
    }

    fn row(&self, e: usize) -> Counted<'_> {
        let s = &self.slots.as_ref()[e];
        Counted {
            key: &s.key[..s.key_len as usize],
            count: s.count,
            error: s.error,
            bytes: s.bytes,
        }
    }

    /// The `i`-th key held (`0..len()`, in [`TopK::iter`]'s order).
    pub fn row_at(&self, i: usize) -> Option<Counted<'_>> {
        (i < self.len).then(|| self.row(i))
    }

    /// Every key held, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = Counted<'_>> + '_ {
        (0..self.len).map(|e| self.row(e))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::collections::HashMap;
    use std::format;
    use std::vec;
    use std::vec::Vec;

    fn table(m: usize) -> TopK<Vec<Slot>> {
        TopK::new(vec![Slot::EMPTY; m])
    }

    #[test]
    fn exact_while_distinct_keys_fit() {
        let mut t = table(64);
        let mut truth = HashMap::new();
        for i in 0..5000u64 {
            let k = format!("/k/{}", (i * 7919) % 50);
            t.add(k.as_bytes(), 1, 10);
            *truth.entry(k).or_insert(0u64) += 1;
        }
        assert_eq!(t.len(), 50);
        assert_eq!(t.evictions(), 0);
        for (k, n) in &truth {
            let c = t.get(k.as_bytes()).unwrap();
            assert_eq!((c.count, c.error, c.bytes), (*n, 0, n * 10));
        }
    }

    #[test]
    fn heavy_hitters_survive_a_flood_of_distinct_keys() {
        let mut t = table(256);
        let mut n = 0u64;
        for i in 0..200_000u64 {
            // every 10th key is one of 5 heavy keys, the rest are unique
            if i % 10 == 0 {
                t.add(format!("/heavy/{}", (i / 10) % 5).as_bytes(), 1, 0);
            } else {
                t.add(format!("/noise/{i}").as_bytes(), 1, 0);
            }
            n += 1;
        }
        assert_eq!(t.total(), n);
        let bound = n / 256;
        for h in 0..5 {
            let c = t
                .get(format!("/heavy/{h}").as_bytes())
                .expect("heavy key kept");
            let truth = 4000;
            assert!(c.count >= truth && c.count - c.error <= truth, "{c:?}");
            assert!(c.error <= bound);
        }
        let mut rows: Vec<_> = t.iter().collect();
        rows.sort_by_key(|r| core::cmp::Reverse(r.count));
        for r in &rows[..5] {
            assert!(r.key.starts_with(b"/heavy/"));
        }
    }

    #[test]
    fn index_stays_consistent_under_churn() {
        let mut t = table(17);
        for i in 0..20_000u64 {
            let k = format!("{}", (i * 2654435761) % 97);
            t.add(k.as_bytes(), 1 + i % 3, 1);
            if i % 1000 == 0 {
                for row in t.iter() {
                    assert_eq!(t.get(row.key).unwrap().count, row.count);
                }
            }
        }
        assert_eq!(t.len(), 17);
        t.clear();
        assert!(t.is_empty());
        t.add(b"/again", 1, 1);
        assert_eq!(t.get(b"/again").unwrap().count, 1);
    }

    #[test]
    fn long_keys_are_cut() {
        let mut t = table(4);
        let long = [b'a'; 300];
        t.add(&long, 1, 0);
        t.add(&long[..KEY_MAX], 1, 0);
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(&long).unwrap().count, 2);
    }
}
