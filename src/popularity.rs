//! How often each session id was asked for lately, approximately: what the session cache
//! keeps when it must drop some (see `cache::Inner::shrink`).
//!
//! A count-min sketch (TinyLFU's frequency filter): four rows of small counters, each id
//! counted in one counter per row, its estimate the smallest of the four. Below their
//! 255 cap counters only ever overestimate (ids sharing a counter add up), and the
//! minimum keeps that small.
//! Every `window` counts all counters are halved, so popularity fades: a user active an
//! hour ago ranks below one active now. The size is fixed when the cache is made (16-32
//! bytes per session the cache can hold, 256 KiB for the default 8 MiB, at most 16 MiB)
//! and does not grow with the ids asked for, invented ones included.

const ROWS: usize = 4;

/// Counters per session the cache can hold (per row): enough that collisions stay rare.
const COUNTERS_PER_ENTRY: usize = 4;

/// Counts between two halvings, per session the cache can hold: the history the
/// estimates cover (TinyLFU's sample size; 10 in its paper).
const WINDOW_PER_ENTRY: usize = 10;

/// Sessions the sketch is sized for at most (a cache of ~640 MiB): past that its counters
/// (16 MiB) would cost more than a rarer collision is worth, and each halving sweeps
/// them all on the thread that looks up.
const MAX_ENTRIES: usize = 1 << 20;

pub struct Popularity {
    counters: Vec<u8>,
    /// Counters per row - 1 (a power of two).
    mask: usize,
    counted: usize,
    window: usize,
}

/// A 64-bit hash of the id: eight bytes at a time (a lookup pays for it on every read,
/// hits included, so it is kept to a few multiplications for a 32-character id), then
/// a final mix so that both halves are usable. Not for hostile input: a poor spread
/// only makes the cache keep the wrong sessions, never answer wrongly.
pub fn hash(sid: &str) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes = sid.as_bytes();
    let mut h = (bytes.len() as u64).wrapping_mul(K);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(31);
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

impl Popularity {
    /// For a cache that holds about `entries` sessions.
    pub fn new(entries: usize) -> Popularity {
        let entries = entries.clamp(64, MAX_ENTRIES);
        let width = (entries * COUNTERS_PER_ENTRY).next_power_of_two();
        Popularity { counters: vec![0; width * ROWS], mask: width - 1, counted: 0, window: entries * WINDOW_PER_ENTRY }
    }

    /// The counter of `hash` in each row (double hashing: h1 + i * h2).
    fn slots(&self, hash: u64) -> [usize; ROWS] {
        let (h1, h2) = (hash as usize, (hash >> 32) as usize | 1);
        std::array::from_fn(|row| row * (self.mask + 1) + (h1.wrapping_add(row.wrapping_mul(h2)) & self.mask))
    }

    /// Counts one request for the id with this hash.
    pub fn count(&mut self, hash: u64) {
        for slot in self.slots(hash) {
            self.counters[slot] = self.counters[slot].saturating_add(1);
        }
        self.counted += 1;
        if self.counted >= self.window {
            self.counted = 0;
            for counter in &mut self.counters {
                *counter >>= 1;
            }
        }
    }

    /// About how often the id with this hash was asked for within the last window or two.
    pub fn estimate(&self, hash: u64) -> u8 {
        self.slots(hash).iter().map(|&slot| self.counters[slot]).min().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_follow_the_counts_and_fade() {
        let mut p = Popularity::new(1000);
        let (hot, warm, cold) = (hash("hot"), hash("warm"), hash("cold"));
        for _ in 0..50 {
            p.count(hot);
        }
        for _ in 0..5 {
            p.count(warm);
        }
        assert_eq!((p.estimate(hot), p.estimate(warm), p.estimate(cold)), (50, 5, 0));
        // Many other ids: estimates of these three barely move (collisions are rare)...
        for i in 0..5_000 {
            p.count(hash(&format!("other{i}")));
        }
        assert!(p.estimate(cold) <= 2, "cold: {}", p.estimate(cold));
        // ...until a window has passed: everything is halved.
        for i in 0..10_000 {
            p.count(hash(&format!("more{i}")));
        }
        let (hot, warm) = (p.estimate(hot), p.estimate(warm));
        assert!((24..=30).contains(&hot), "hot after a halving: {hot}");
        assert!(warm < 10 && warm < hot, "warm after a halving: {warm}");
    }

    #[test]
    fn the_sketch_is_capped() {
        let p = Popularity::new(usize::MAX / 64);
        assert_eq!(p.counters.len(), MAX_ENTRIES * COUNTERS_PER_ENTRY * ROWS);
    }

    #[test]
    fn counters_saturate_instead_of_wrapping() {
        let mut p = Popularity::new(1_000_000);
        for _ in 0..1000 {
            p.count(hash("s"));
        }
        assert_eq!(p.estimate(hash("s")), 255);
    }
}
