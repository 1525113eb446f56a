//! Hashing while streaming, as a wrapper: a writer that blake3-hashes and counts what passes
//! through it, and the hash of a whole stored object.

use std::io::{self, Write};

use super::Blob;
use crate::snapshot::digest::FileHash;

/// Passes writes to `inner`, hashing and counting every byte written.
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self { inner, hasher: blake3::Hasher::new(), bytes: 0 }
    }

    /// The inner writer, the hash and the byte count of everything written.
    pub fn into_parts(self) -> (W, FileHash, u64) {
        (self.inner, FileHash(*self.hasher.finalize().as_bytes()), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The blake3 hash and size of a whole object, read sequentially.
pub fn hash_blob(blob: &Blob) -> io::Result<(FileHash, u64)> {
    FileHash::of_reader(blob.reader_at(0))
}

/// Reads a whole object once into an unnamed temporary file (in `TMPDIR`, gone with the
/// process), hashing it on the way: its blake3, its size, and a [`Blob`] over the local copy for
/// the reads that follow (a remote part is then downloaded once, not once per pass).
pub fn spool_blob(blob: &Blob) -> io::Result<(FileHash, u64, Blob)> {
    let file = tempfile::tempfile()?;
    let mut out = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, file.try_clone()?));
    let mut from = blob.reader_at(0);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = io::Read::read(&mut from, &mut buf)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
    }
    let (mut inner, hash, bytes) = out.into_parts();
    inner.flush()?;
    Ok((hash, bytes, super::local::file_blob(file, bytes, blob.path().to_path_buf())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_hash_is_the_one_shot_hash() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = HashingWriter::new(Vec::new());
        for chunk in data.chunks(777) {
            w.write_all(chunk).unwrap();
        }
        let (inner, hash, bytes) = w.into_parts();
        assert_eq!((inner, bytes), (data.clone(), data.len() as u64));
        assert_eq!(hash, FileHash(*blake3::hash(&data).as_bytes()));
    }
}
