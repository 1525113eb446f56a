//! The ids already written to one target, to reject a duplicate as it arrives: an exact set of
//! 128-bit id hashes in 16 bytes per id (a hash set takes ~35), as sorted runs of bounded size plus
//! a small hash set of the newest, so memory never doubles while runs are merged.

use std::collections::HashSet;

/// Ids kept in the hash set before they become a sorted run.
const BUFFER: usize = 8192;
/// Runs are merged pairwise up to this many ids (4 MiB), never beyond: merging costs at most
/// that much extra memory, and a lookup searches at most `ids / MAX_RUN` runs plus a few.
const MAX_RUN: usize = 1 << 18;

#[derive(Default)]
pub struct SeenIds {
    buffer: HashSet<u128>,
    runs: Vec<Vec<u128>>,
}

impl SeenIds {
    pub fn contains(&self, key: u128) -> bool {
        self.buffer.contains(&key) || self.runs.iter().any(|r| r.binary_search(&key).is_ok())
    }

    /// Adds `key` (the caller checked [`SeenIds::contains`] first).
    pub fn insert(&mut self, key: u128) {
        self.buffer.insert(key);
        if self.buffer.len() < BUFFER {
            return;
        }
        let mut run: Vec<u128> = self.buffer.drain().collect();
        run.sort_unstable();
        self.runs.push(run);
        while let [.., a, b] = self.runs.as_slice() {
            if a.len() != b.len() || a.len() + b.len() > MAX_RUN {
                break;
            }
            let b = self.runs.pop().expect("two runs");
            let a = self.runs.pop().expect("two runs");
            self.runs.push(merge(&a, &b));
        }
    }
}

fn merge(a: &[u128], b: &[u128]) -> Vec<u128> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_is_exact_across_buffer_and_runs() {
        let mut seen = SeenIds::default();
        let key = |i: u64| u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
        let n = 3 * MAX_RUN as u64 + 12_345;
        for i in 0..n {
            assert!(!seen.contains(key(i)), "{i} is new");
            seen.insert(key(i));
        }
        assert!(seen.runs.iter().all(|r| r.len() <= MAX_RUN && r.is_sorted()));
        assert!(seen.runs.len() >= 3, "{} runs", seen.runs.len());
        for i in (0..n).step_by(997) {
            assert!(seen.contains(key(i)), "{i} was inserted");
        }
        assert!(!seen.contains(key(n)));
        assert!(!seen.contains(key(n + 1)));
    }
}
