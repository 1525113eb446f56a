//! Measures part size and write/read time for the embedding encodings and zstd levels a snapshot
//! could use, on synthetic records shaped like real ones (unit-norm 768-dim embeddings, ~300-char
//! documents, 8 metadata keys). Run: `cargo run --release --example measure_encodings`.

use std::time::Instant;

use chroma_snap::record::{RecordPage, RecordRef};
use chroma_snap::snapshot::reader::PartReader;
use chroma_snap::snapshot::store::{LocalStore, Store};
use chroma_snap::snapshot::writer::{CollectionWriter, WriterOptions};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn gauss(&mut self) -> f32 {
        // Sum of uniforms: close enough to normal for a size measurement.
        let s: f64 = (0..6).map(|_| (self.next() >> 11) as f64 / (1u64 << 53) as f64).sum();
        (s - 3.0) as f32
    }
}

const WORDS: &[&str] = &[
    "the",
    "collection",
    "vector",
    "migration",
    "chunk",
    "server",
    "record",
    "lorem",
    "ipsum",
    "snapshot",
    "parquet",
    "distance",
    "cosine",
    "humor",
    "rhetoric",
    "corpus",
    "personality",
    "de",
    "la",
    "que",
];

fn main() {
    let (n, dim) = (20_000usize, 768usize);
    let mut rng = Rng(42);
    let mut page = RecordPage::with_capacity(dim, n);
    for i in 0..n {
        let mut e: Vec<f32> = (0..dim).map(|_| rng.gauss()).collect();
        let norm = e.iter().map(|x| x * x).sum::<f32>().sqrt();
        e.iter_mut().for_each(|x| *x /= norm);
        let mut doc = String::new();
        while doc.len() < 300 {
            doc.push_str(WORDS[(rng.next() % WORDS.len() as u64) as usize]);
            doc.push(' ');
        }
        let meta = format!(
            r#"{{"author":"a{}","chunk":{},"lang":"es","page":{},"score":{},"source":"file_{}.txt","tag":"t{}","verified":{}}}"#,
            rng.next() % 50,
            i,
            rng.next() % 400,
            (rng.next() % 1000) as f64 / 1000.0 + 0.0005,
            rng.next() % 300,
            rng.next() % 12,
            rng.next().is_multiple_of(2)
        );
        page.push(RecordRef {
            id: &format!("doc-{i:08}"),
            embedding: &e,
            document: Some(&doc),
            uri: None,
            metadata: Some(&meta),
        });
    }
    let raw_emb = (n * dim * 4) as f64;
    let text: usize = page.ids.iter().map(String::len).sum::<usize>()
        + page.documents.iter().flatten().map(String::len).sum::<usize>()
        + page.metadatas.iter().flatten().map(String::len).sum::<usize>();
    println!(
        "{n} records x {dim} dims: raw float32 embeddings {:.1} MB, raw text {:.1} MB\n",
        raw_emb / 1e6,
        text as f64 / 1e6
    );
    println!("| embedding encoding | zstd level | bytes/record | size / raw embeddings | write MB/s | read MB/s |");
    println!("|---|---|---|---|---|---|");
    let dir = tempfile::tempdir().expect("temp dir");
    for (bss, level) in [(false, 1), (false, 3), (true, 1), (true, 3), (true, 9), (false, 9)] {
        let root = dir.path().join(format!("{bss}-{level}"));
        let opts = WriterOptions { zstd_level: level, byte_stream_split: bss, ..WriterOptions::default() };
        let t = Instant::now();
        let mut w = CollectionWriter::new(&root, "p", dim, opts).expect("writer");
        for chunk in 0..n / 1000 {
            let mut sub = RecordPage::with_capacity(dim, 1000);
            (chunk * 1000..(chunk + 1) * 1000).for_each(|i| sub.push(page.record(i)));
            w.write_page(&sub).expect("write");
        }
        let done = w.finish().expect("finish");
        let wsec = t.elapsed().as_secs_f64();
        let bytes: u64 = done.parts.iter().map(|p| p.bytes).sum();
        let t = Instant::now();
        let mut rows = 0;
        for p in &done.parts {
            let blob = LocalStore::new(&root).open(&p.path).expect("open");
            for b in PartReader::new(blob, Some(dim), 4096).expect("open") {
                rows += b.expect("batch").num_rows();
            }
        }
        assert_eq!(rows, n);
        let rsec = t.elapsed().as_secs_f64();
        let mb = (raw_emb + text as f64) / 1e6;
        println!(
            "| {} | {level} | {:.0} | {:.3} | {:.0} | {:.0} |",
            if bss { "byte_stream_split" } else { "plain" },
            bytes as f64 / n as f64,
            bytes as f64 / raw_emb,
            mb / wsec,
            mb / rsec
        );
    }
}
