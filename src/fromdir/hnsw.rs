//! A vector segment's hnswlib files, read in place: `header.bin` (sizes and offsets),
//! `data_level0.bin` (per element: link count with the deleted mark, links, float32 vector,
//! u64 label) and `length.bin` (per element: the float32 length a cosine vector was divided by).
//!
//! Chroma's hnswlib stores cosine vectors normalised and its `get` multiplies them back by the
//! stored length ([`restore`]); vectors written after the last save went through the same two
//! steps in the server's memory ([`round_trip`]).

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Why a segment's files cannot be read: the file and what is wrong with it.
#[derive(Debug)]
pub struct Damage {
    pub file: PathBuf,
    pub why: String,
}

/// An opened persistent hnswlib index.
pub struct Index {
    data: File,
    data_path: PathBuf,
    lengths: Option<Vec<f32>>,
    pub dim: usize,
    count: usize,
    size_per_element: usize,
    offset_data: usize,
    /// label → internal id of every element not marked deleted.
    labels: HashMap<u64, usize>,
}

const HEADER_LEN: usize = 100;

impl Index {
    /// Opens the index of `dir`; `cosine` also reads `length.bin`.
    pub fn open(dir: &Path, cosine: bool) -> Result<Self, Damage> {
        let header_path = dir.join("header.bin");
        let damage = |file: &Path, why: String| Damage { file: file.to_owned(), why };
        let h = std::fs::read(&header_path).map_err(|e| damage(&header_path, e.to_string()))?;
        if h.len() != HEADER_LEN {
            return Err(damage(&header_path, format!("{} bytes, expected {HEADER_LEN}", h.len())));
        }
        let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().expect("8 bytes")) as usize;
        let version = i32::from_le_bytes(h[0..4].try_into().expect("4 bytes"));
        if version != 1 {
            return Err(damage(&header_path, format!("persistence version {version}, only 1 is known")));
        }
        let (offset_level0, count, size, label_offset, offset_data) =
            (u64_at(4), u64_at(20), u64_at(28), u64_at(36), u64_at(44));
        let max_m0 = u64_at(68);
        let dim = label_offset.checked_sub(offset_data).map(|b| b / 4).unwrap_or(0);
        let consistent = offset_level0 == 0
            && offset_data == max_m0 * 4 + 4
            && label_offset == offset_data + dim * 4
            && size == label_offset + 8
            && dim > 0;
        if !consistent {
            return Err(damage(&header_path, "sizes and offsets do not describe an hnswlib level 0".into()));
        }
        let data_path = dir.join("data_level0.bin");
        let data = File::open(&data_path).map_err(|e| damage(&data_path, e.to_string()))?;
        let len = data.metadata().map_err(|e| damage(&data_path, e.to_string()))?.len() as usize;
        if len < count * size {
            return Err(damage(
                &data_path,
                format!("{len} bytes, the header promises {count} elements of {size} bytes ({})", count * size),
            ));
        }
        let lengths = if cosine {
            let p = dir.join("length.bin");
            let raw = std::fs::read(&p).map_err(|e| damage(&p, e.to_string()))?;
            if raw.len() < count * 4 {
                return Err(damage(&p, format!("{} bytes, expected {} for {count} elements", raw.len(), count * 4)));
            }
            Some(raw.chunks_exact(4).take(count).map(|c| f32::from_le_bytes(c.try_into().expect("4"))).collect())
        } else {
            None
        };
        let mut idx =
            Self { data, data_path, lengths, dim, count, size_per_element: size, offset_data, labels: HashMap::new() };
        idx.labels = idx.scan_labels(label_offset)?;
        Ok(idx)
    }

    fn scan_labels(&self, label_offset: usize) -> Result<HashMap<u64, usize>, Damage> {
        let mut labels = HashMap::with_capacity(self.count);
        let mut head = [0u8; 4];
        let mut label = [0u8; 8];
        for i in 0..self.count {
            let base = (i * self.size_per_element) as u64;
            self.read_at(&mut head, base)?;
            if head[2] & 0x01 != 0 {
                continue; // marked deleted
            }
            self.read_at(&mut label, base + label_offset as u64)?;
            labels.insert(u64::from_le_bytes(label), i);
        }
        Ok(labels)
    }

    fn read_at(&self, buf: &mut [u8], at: u64) -> Result<(), Damage> {
        self.data.read_exact_at(buf, at).map_err(|e| Damage { file: self.data_path.clone(), why: e.to_string() })
    }

    /// The vector of `label` as the server's `get` returns it, appended to `out`.
    pub fn vector(&self, label: u64, out: &mut Vec<f32>) -> Result<bool, Damage> {
        let Some(&i) = self.labels.get(&label) else { return Ok(false) };
        let mut raw = vec![0u8; self.dim * 4];
        self.read_at(&mut raw, (i * self.size_per_element + self.offset_data) as u64)?;
        let values = raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4")));
        match &self.lengths {
            Some(l) => out.extend(values.map(|v| v * l[i])),
            None => out.extend(values),
        }
        Ok(true)
    }
}

/// What a cosine vector becomes once the server's hnswlib stored it and `get` read it back:
/// divided by its float32 length (summed in order, `sqrtf`, `+ 1e-30`), then multiplied by it.
pub fn round_trip(v: &mut [f32]) {
    let mut sum = 0.0f32;
    for x in v.iter() {
        sum += x * x;
    }
    let length = sum.sqrt();
    let inv = 1.0f32 / (length + 1e-30f32);
    for x in v.iter_mut() {
        *x = (*x * inv) * length;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_moves_values_by_at_most_an_ulp_or_two() {
        let mut v = vec![0.1f32, -0.7, 0.3333, 12.5];
        let before = v.clone();
        super::round_trip(&mut v);
        for (a, b) in before.iter().zip(&v) {
            assert!((a.to_bits() as i64 - b.to_bits() as i64).abs() <= 2, "{a} -> {b}");
        }
    }
}
