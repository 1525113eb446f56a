//! A read handle on one stored object: ranged reads that Parquet's `ChunkReader` and plain
//! `Read` both sit on, whatever the backend.

use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use parquet::file::reader::{ChunkReader, Length};

/// Positional reads of one object (a local file: `pread`; an object store: a ranged GET).
#[expect(clippy::len_without_is_empty, reason = "an object's size, not a collection")]
pub trait RangeRead: Send + Sync {
    fn len(&self) -> u64;
    /// Reads into `buf` from `offset`; 0 at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

/// An open object; cheap to clone (clones share the handle).
#[derive(Clone)]
pub struct Blob {
    src: Arc<dyn RangeRead>,
    path: PathBuf,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob").field("path", &self.path).field("len", &self.src.len()).finish()
    }
}

impl Blob {
    pub fn new(src: Arc<dyn RangeRead>, path: PathBuf) -> Self {
        Self { src, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A sequential reader from `start`.
    pub fn reader_at(&self, start: u64) -> BlobCursor {
        BlobCursor { src: self.src.clone(), pos: start }
    }
}

/// Sequential reads over a [`Blob`] from a position.
pub struct BlobCursor {
    src: Arc<dyn RangeRead>,
    pos: u64,
}

impl Read for BlobCursor {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.src.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Length for Blob {
    fn len(&self) -> u64 {
        self.src.len()
    }
}

impl ChunkReader for Blob {
    type T = BufReader<BlobCursor>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(BufReader::new(self.reader_at(start)))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let mut buf = vec![0u8; length];
        let mut done = 0;
        while done < length {
            let n = self.src.read_at(&mut buf[done..], start + done as u64)?;
            if n == 0 {
                return Err(parquet::errors::ParquetError::EOF(format!(
                    "expected to read {length} bytes at {start}, read only {done}"
                )));
            }
            done += n;
        }
        Ok(buf.into())
    }
}
