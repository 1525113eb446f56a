//! Spill files: lists that grow with a collection (ids, id hashes) kept in unnamed temporary
//! files instead of memory, so export, verify and read-back stay flat at any collection size.
//!
//! - [`KeySpill`] appends keys and reads them back in the order written (export's id list).
//! - [`SortedKeys`] sorts keys externally: runs of at most [`RUN_BYTES`] are sorted in memory and
//!   spilled, then merged; memory holds one run plus one key per spilled run.
//!
//! Files are unnamed (`O_TMPFILE` or unlinked at once), so a killed process leaves nothing behind.
//! They go in the directory given (export: the output's state directory) or in `TMPDIR`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes of keys sorted in memory before a run is spilled.
pub const RUN_BYTES: usize = 4 << 20;

fn temp_file(dir: Option<&Path>) -> io::Result<File> {
    match dir {
        Some(d) => tempfile::tempfile_in(d),
        None => tempfile::tempfile(),
    }
}

/// An append-only list of keys on disk (each a little-endian `u32` length, then the bytes).
pub struct KeySpill {
    file: BufWriter<File>,
    len: u64,
}

impl KeySpill {
    /// A new spill file in `dir` (or `TMPDIR`).
    pub fn new(dir: Option<&Path>) -> io::Result<Self> {
        Ok(Self { file: BufWriter::with_capacity(1 << 16, temp_file(dir)?), len: 0 })
    }

    pub fn push(&mut self, key: &[u8]) -> io::Result<()> {
        let n = u32::try_from(key.len()).map_err(|_| io::Error::other("a key longer than 4 GiB"))?;
        self.file.write_all(&n.to_le_bytes())?;
        self.file.write_all(key)?;
        self.len += 1;
        Ok(())
    }

    /// Keys written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads the keys back from the first, in the order written.
    pub fn into_reader(self) -> io::Result<KeyReader> {
        let mut file = self.file.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.seek(SeekFrom::Start(0))?;
        Ok(KeyReader { file: BufReader::with_capacity(1 << 16, file), left: self.len })
    }
}

/// The keys of a [`KeySpill`], in order.
pub struct KeyReader {
    file: BufReader<File>,
    left: u64,
}

impl KeyReader {
    /// Keys not read yet.
    pub fn remaining(&self) -> u64 {
        self.left
    }

    fn read_key(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.left == 0 {
            return Ok(None);
        }
        let mut n = [0u8; 4];
        self.file.read_exact(&mut n)?;
        let mut key = vec![0u8; u32::from_le_bytes(n) as usize];
        self.file.read_exact(&mut key)?;
        self.left -= 1;
        Ok(Some(key))
    }

    /// Up to `n` keys as strings (ids are UTF-8; anything else is an I/O error).
    pub fn next_strings(&mut self, n: usize) -> io::Result<Vec<String>> {
        let mut out = Vec::with_capacity(n.min(self.left as usize));
        while out.len() < n {
            match self.read_key()? {
                Some(k) => out.push(String::from_utf8(k).map_err(io::Error::other)?),
                None => break,
            }
        }
        Ok(out)
    }
}

impl Iterator for KeyReader {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.read_key().transpose()
    }
}

/// An external sort of byte keys: push in any order, then [`SortedKeys::finish`] yields them in
/// ascending byte order, duplicates kept. A run is one byte arena plus an `(offset, length)` per
/// key, so a 12-byte key costs 20 bytes of memory, not an allocation.
pub struct SortedKeys {
    dir: Option<PathBuf>,
    run: Run,
    budget: usize,
    runs: Vec<KeySpill>,
}

#[derive(Default)]
struct Run {
    data: Vec<u8>,
    index: Vec<(u32, u32)>,
}

impl Run {
    fn bytes(&self) -> usize {
        self.data.len() + self.index.len() * 8
    }

    fn key(&self, (at, len): (u32, u32)) -> &[u8] {
        &self.data[at as usize..at as usize + len as usize]
    }

    fn sort(&mut self) {
        let data = &self.data;
        let key = |&(at, len): &(u32, u32)| &data[at as usize..at as usize + len as usize];
        self.index.sort_unstable_by(|a, b| key(a).cmp(key(b)));
    }
}

impl SortedKeys {
    /// Runs of about [`RUN_BYTES`], spilled to `dir` (or `TMPDIR`).
    pub fn new(dir: Option<&Path>) -> Self {
        Self::with_budget(dir, RUN_BYTES)
    }

    /// Runs of about `budget` bytes (tests use tiny ones).
    pub fn with_budget(dir: Option<&Path>, budget: usize) -> Self {
        Self {
            dir: dir.map(Path::to_path_buf),
            run: Run::default(),
            budget: budget.clamp(1, u32::MAX as usize / 2),
            runs: Vec::new(),
        }
    }

    pub fn push(&mut self, key: &[u8]) -> io::Result<()> {
        if !self.run.index.is_empty() && self.run.bytes() + key.len() + 8 > self.budget {
            self.spill()?;
        }
        let at = u32::try_from(self.run.data.len()).map_err(|_| io::Error::other("a sort run beyond 4 GiB"))?;
        let len = u32::try_from(key.len()).map_err(|_| io::Error::other("a key longer than 4 GiB"))?;
        self.run.data.extend_from_slice(key);
        self.run.index.push((at, len));
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        self.run.sort();
        let mut s = KeySpill::new(self.dir.as_deref())?;
        for &k in &self.run.index {
            s.push(self.run.key(k))?;
        }
        self.run.data.clear();
        self.run.index.clear();
        self.runs.push(s);
        Ok(())
    }

    /// The keys in ascending order.
    pub fn finish(mut self) -> io::Result<Merged> {
        self.run.sort();
        let mut readers = Vec::with_capacity(self.runs.len());
        for r in self.runs {
            readers.push(r.into_reader()?);
        }
        let mut heap = BinaryHeap::with_capacity(readers.len());
        for (i, r) in readers.iter_mut().enumerate() {
            if let Some(k) = r.read_key()? {
                heap.push(Reverse((k, i)));
            }
        }
        Ok(Merged { memory: self.run, next: 0, heap, readers })
    }
}

/// The merged, ascending keys of a [`SortedKeys`].
pub struct Merged {
    /// The last run, sorted in memory, and the position of its next key.
    memory: Run,
    next: usize,
    heap: BinaryHeap<Reverse<(Vec<u8>, usize)>>,
    readers: Vec<KeyReader>,
}

impl Merged {
    fn next_key(&mut self) -> io::Result<Option<Vec<u8>>> {
        let in_memory = self.memory.index.get(self.next).map(|&k| self.memory.key(k));
        let from_heap = match (in_memory, self.heap.peek()) {
            (None, None) => return Ok(None),
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some(m), Some(Reverse((h, _)))) => h.as_slice() < m,
        };
        if !from_heap {
            let key = in_memory.expect("a key in memory").to_vec();
            self.next += 1;
            return Ok(Some(key));
        }
        let Reverse((key, i)) = self.heap.pop().expect("peeked");
        if let Some(k) = self.readers[i].read_key()? {
            self.heap.push(Reverse((k, i)));
        }
        Ok(Some(key))
    }
}

impl Iterator for Merged {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_key().transpose()
    }
}

/// Keys of sorted `a` that are not in sorted `b` (both ascending, `a` without duplicates), in
/// order: a merge, so memory holds one key of each.
pub fn difference<A, B>(a: A, b: B) -> impl Iterator<Item = io::Result<Vec<u8>>>
where
    A: Iterator<Item = io::Result<Vec<u8>>>,
    B: Iterator<Item = io::Result<Vec<u8>>>,
{
    let mut b = b.peekable();
    a.filter_map(move |k| {
        let k = match k {
            Ok(k) => k,
            Err(e) => return Some(Err(e)),
        };
        loop {
            match b.peek() {
                Some(Ok(x)) if x < &k => {
                    b.next();
                }
                Some(Ok(x)) if x == &k => return None,
                Some(Err(_)) => return Some(Err(b.next().expect("peeked").expect_err("an error"))),
                _ => return Some(Ok(k)),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn a_spill_reads_back_in_order_and_in_chunks() {
        let mut s = KeySpill::new(None).unwrap();
        for i in 0..2500 {
            s.push(format!("id-{i}").as_bytes()).unwrap();
        }
        s.push(b"").unwrap();
        assert_eq!(s.len(), 2501);
        let mut r = s.into_reader().unwrap();
        let first = r.next_strings(1000).unwrap();
        assert_eq!(first.len(), 1000);
        assert_eq!(first[999], "id-999");
        assert_eq!(r.remaining(), 1501);
        let rest = r.next_strings(5000).unwrap();
        assert_eq!(rest.len(), 1501);
        assert_eq!(rest[1499], "id-2499");
        assert_eq!(rest[1500], "");
        assert!(r.next_strings(10).unwrap().is_empty());
    }

    #[test]
    fn the_external_sort_equals_an_in_memory_sort_across_many_runs() {
        // A budget of 200 bytes spills a run every few keys: dozens of runs to merge.
        let mut sorter = SortedKeys::with_budget(None, 200);
        let mut want = Vec::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = format!("{}", x % 1000).into_bytes(); // duplicates on purpose
            sorter.push(&k).unwrap();
            want.push(k);
        }
        assert!(sorter.runs.len() > 20, "{} runs", sorter.runs.len());
        want.sort();
        let got: Vec<Vec<u8>> = sorter.finish().unwrap().collect::<io::Result<_>>().unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn an_empty_sort_yields_nothing() {
        assert_eq!(SortedKeys::new(None).finish().unwrap().count(), 0);
    }

    #[test]
    fn difference_keeps_what_only_the_first_has() {
        let a = keys(&["a", "b", "d", "f", "g"]);
        let b = keys(&["b", "c", "d", "e", "g", "h"]);
        let got: Vec<Vec<u8>> =
            difference(a.into_iter().map(Ok), b.into_iter().map(Ok)).collect::<io::Result<_>>().unwrap();
        assert_eq!(got, keys(&["a", "f"]));
        let none: Vec<Vec<u8>> = Vec::new();
        let got: Vec<Vec<u8>> =
            difference(keys(&["x"]).into_iter().map(Ok), none.into_iter().map(Ok)).collect::<io::Result<_>>().unwrap();
        assert_eq!(got, keys(&["x"]));
    }
}
