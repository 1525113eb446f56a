//! The legacy dataset, generated deterministically: source collections in the old layout (old
//! metadata key names, routing keywords in collection names) with 145 realistic defects.
//!
//! Every defect survives a round trip through a chroma 0.4.24 server (measured): NaN/Inf
//! embeddings do not (0.4.24 stores them, then every `get` of the page answers 500), nor do null
//! or array metadata values (the whole map comes back null) or `chroma:document` keys (dropped).

use serde_json::{Value, json};

use chroma_snap::record::{Metadata, RecordPage, RecordRef, canonical_metadata};

/// The record count of the shipped example.
pub const BASE_RECORDS: usize = 9_832;

/// splitmix64: tiny, fixed forever, so the data never changes with a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Personality,
    Rhetorical,
    Humor,
    Corpus,
}

/// (name, base count, kind, id prefix, dimension override)
const SOURCES: &[(&str, usize, Kind, &str, Option<usize>)] = &[
    ("sergio_v1_articles", 1642, Kind::Corpus, "art", None),
    ("sergio_v1_humor_jokes", 1500, Kind::Humor, "joke", None),
    ("sergio_v1_humor_minilm384", 15, Kind::Humor, "mini", Some(384)),
    ("sergio_v1_humor_standup", 635, Kind::Humor, "stand", None),
    ("sergio_v1_interviews", 1800, Kind::Corpus, "intv", None),
    ("sergio_v1_personality_bigfive", 2350, Kind::Personality, "b5", None),
    ("sergio_v1_rhetoric_debates", 690, Kind::Rhetorical, "deb", None),
    ("sergio_v1_rhetoric_speeches", 1200, Kind::Rhetorical, "spch", None),
];

/// Defects among ordinary records, in the order they are assigned (base counts; 145 in all with
/// the 15 wrong-dimension records and the 8 duplicate ids).
#[derive(Clone, Copy, Debug)]
enum Defect {
    TraitNotNumber,
    ScoreOutOfRange,
    BadLanguage,
    EmptyDocument,
    MissingAuthor,
    ReservedKey,
    EmptyKey,
}
const DEFECTS: &[(Defect, usize)] = &[
    (Defect::TraitNotNumber, 10),
    (Defect::ScoreOutOfRange, 28),
    (Defect::BadLanguage, 22),
    (Defect::EmptyDocument, 22),
    (Defect::MissingAuthor, 18),
    (Defect::ReservedKey, 12),
    (Defect::EmptyKey, 6),
];
const DUPLICATES: usize = 8;
const EMPTY_IDS: usize = 4;

/// One generated source collection.
pub struct SourceCollection {
    pub name: String,
    pub page: RecordPage,
}

fn scaled(n: usize, records: usize) -> usize {
    ((n as f64) * records as f64 / BASE_RECORDS as f64).round() as usize
}

/// Generates the whole dataset for `records` records (9,832 is the shipped example).
pub fn generate(records: usize, dim: usize) -> Vec<SourceCollection> {
    let mut rng = Rng::new(0x5E_4610_2024);
    // Metadata and documents first; defects then edit them in place.
    let mut colls: Vec<(usize, Vec<Rec>)> = Vec::new();
    for (ci, (_, base, kind, prefix, _)) in SOURCES.iter().enumerate() {
        let n = scaled(*base, records);
        let recs = (0..n).map(|row| Rec::ordinary(&mut rng, *kind, prefix, row)).collect();
        colls.push((ci, recs));
    }
    // Duplicates: the first rows of the stand-up collection repeat jokes, ids included.
    let (jokes, standup) = (1, 3);
    let dups = scaled(DUPLICATES, records).min(colls[standup].1.len()).min(colls[jokes].1.len());
    for k in 0..dups {
        let src = colls[jokes].1[k * 7 % colls[jokes].1.len()].clone();
        colls[standup].1[k] = src;
    }
    // Ordinary slots that may take a defect: not the wrong-dimension collection, not duplicates
    // or the jokes they copy.
    let mut slots: Vec<(usize, usize)> = Vec::new();
    for (ci, recs) in &colls {
        for row in 0..recs.len() {
            let dup_src = *ci == jokes && (0..dups).any(|k| k * 7 % recs.len() == row);
            let dup = *ci == standup && row < dups;
            if SOURCES[*ci].4.is_none() && !dup_src && !dup {
                slots.push((*ci, row));
            }
        }
    }
    for i in (1..slots.len()).rev() {
        let j = rng.below(i + 1);
        slots.swap(i, j);
    }
    let mut used = vec![false; slots.len()];
    for (d, base) in DEFECTS {
        let want = scaled(*base, records);
        let mut got = 0;
        for (k, (ci, row)) in slots.iter().enumerate() {
            if got == want {
                break;
            }
            let fits = !matches!(d, Defect::TraitNotNumber) || SOURCES[*ci].2 == Kind::Personality;
            if used[k] || !fits {
                continue;
            }
            used[k] = true;
            got += 1;
            let second = got % 5 == 0; // every fifth defective record has a second problem
            colls[*ci].1[*row].apply(*d, &mut rng, second);
        }
    }
    // Empty ids: one per collection, in distinct collections (a server keeps one record per id).
    let mut placed = 0;
    for (k, (ci, row)) in slots.iter().enumerate() {
        if placed == scaled(EMPTY_IDS, records) {
            break;
        }
        if used[k] || colls[*ci].1.iter().any(|r| r.id.is_empty()) {
            continue;
        }
        used[k] = true;
        colls[*ci].1[*row].id.clear();
        placed += 1;
    }
    colls
        .into_iter()
        .map(|(ci, mut recs)| {
            let (name, _, _, _, dim_override) = SOURCES[ci];
            let d = dim_override.unwrap_or(dim);
            recs.sort_by(|a, b| a.id.cmp(&b.id));
            let mut page = RecordPage::with_capacity(d, recs.len());
            for r in &recs {
                let emb = embedding(r.seed, d);
                let meta = canonical_metadata(&r.meta);
                page.push(RecordRef {
                    id: &r.id,
                    embedding: &emb,
                    document: Some(&r.doc),
                    uri: None,
                    metadata: Some(&meta),
                });
            }
            SourceCollection { name: name.to_owned(), page }
        })
        .collect()
}

/// A unit vector from its own seed (so duplicates share it).
fn embedding(seed: u64, dim: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let v: Vec<f64> = (0..dim).map(|_| rng.unit() * 2.0 - 1.0).collect();
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    v.iter().map(|x| (x / norm) as f32).collect()
}

#[derive(Clone)]
struct Rec {
    id: String,
    seed: u64,
    doc: String,
    meta: Metadata,
}

const ES: &[&str] = &[
    "la",
    "verdad",
    "es",
    "que",
    "nunca",
    "pensé",
    "hablar",
    "del",
    "miedo",
    "como",
    "una",
    "forma",
    "de",
    "humor",
    "cuando",
    "llegamos",
    "al",
    "escenario",
    "todo",
    "cambia",
    "porque",
    "el",
    "público",
    "decide",
    "y",
    "yo",
    "solo",
    "escucho",
    "sin",
    "embargo",
    "cada",
    "palabra",
    "pesa",
];
const EN: &[&str] = &[
    "the",
    "truth",
    "is",
    "that",
    "i",
    "never",
    "planned",
    "to",
    "talk",
    "about",
    "fear",
    "as",
    "a",
    "joke",
    "when",
    "we",
    "reach",
    "stage",
    "everything",
    "changes",
    "because",
    "audience",
    "decides",
    "and",
    "only",
    "listen",
    "yet",
    "every",
    "word",
    "weighs",
];

impl Rec {
    fn ordinary(rng: &mut Rng, kind: Kind, prefix: &str, row: usize) -> Self {
        let lang = match rng.below(10) {
            0..=5 => "es",
            6..=8 => "en",
            _ => "es_en",
        };
        let words = 25 + rng.below(40);
        let mut doc = String::new();
        for w in 0..words {
            let list = if lang == "en" || (lang == "es_en" && w % 2 == 1) { EN } else { ES };
            if w > 0 {
                doc.push(' ');
            }
            doc.push_str(rng.pick(list));
        }
        doc.push('.');
        let src = rng.pick(&["book", "podcast", "interview", "essay", "twitter", "conference"]);
        let mut m = Metadata::new();
        m.insert("src".into(), json!(src));
        let file = format!("{src}/{prefix}_{:03}.txt", row / 40);
        m.insert(if rng.below(10) < 3 { "filename" } else { "file" }.into(), json!(file));
        let line = 1 + rng.below(900) as i64;
        m.insert("line".into(), if rng.below(10) == 0 { json!(line.to_string()) } else { json!(line) });
        let author = rng.pick(&["Sergio Fernández", "S. Fernández", "Sergio F."]);
        m.insert(if rng.below(100) < 15 { "autor" } else { "speaker" }.into(), json!(author));
        let cats: &[&str] = match kind {
            Kind::Personality => &["self_description", "values", "habits"],
            Kind::Rhetorical => &["argument", "persuasion", "rebuttal"],
            Kind::Humor => &["stage", "anecdote", "one_liner"],
            Kind::Corpus => &["biography", "opinion", "technical"],
        };
        m.insert("cat".into(), json!(rng.pick(cats)));
        m.insert("lang".into(), json!(lang));
        m.insert("auth_score".into(), json!((50 + rng.below(950)) as f64 / 1000.0));
        m.insert("confidence".into(), json!(rng.pick(&["high", "medium", "low"])));
        let disputed = rng.below(10) == 0;
        m.insert(
            "disputed".into(),
            if rng.below(5) == 0 { json!(disputed) } else { json!(if disputed { "yes" } else { "no" }) },
        );
        match kind {
            Kind::Personality => {
                let t = rng.pick(&["openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"]);
                m.insert("trait".into(), json!(t));
                m.insert("trait_val".into(), json!((rng.below(1000) as f64 + 0.5) / 1000.0));
            }
            Kind::Rhetorical => {
                let d = ["anaphora", "irony", "metaphor", "rhetorical_question", "hyperbole", "antithesis"];
                m.insert("device".into(), json!(rng.pick(&d)));
            }
            Kind::Humor => {
                m.insert(
                    "humor_kind".into(),
                    json!(rng.pick(&["pun", "irony", "absurd", "self_deprecating", "satire"])),
                );
            }
            Kind::Corpus => {
                m.insert("chunk_idx".into(), json!(row as i64 % 60));
            }
        }
        Self { id: format!("{prefix}-{row:05}"), seed: rng.next_u64(), doc, meta: m }
    }

    fn apply(&mut self, d: Defect, rng: &mut Rng, second: bool) {
        let m = &mut self.meta;
        match d {
            Defect::TraitNotNumber => {
                m.insert("trait_val".into(), json!(rng.pick(&["high", "n/a", "medio"])));
            }
            Defect::ScoreOutOfRange => {
                let v = [1.35, -0.2, 87.0, 100.0][rng.below(4)];
                m.insert("auth_score".into(), json!(v));
            }
            Defect::BadLanguage => {
                m.insert("lang".into(), json!(rng.pick(&["fr", "ES", "spanish", "pt-BR", "ca"])));
            }
            Defect::EmptyDocument => self.doc = if rng.below(2) == 0 { String::new() } else { "  \n\t ".into() },
            Defect::MissingAuthor => {
                m.remove("speaker");
                m.remove("autor");
            }
            Defect::ReservedKey => {
                let (k, v): (&str, Value) = if rng.below(2) == 0 {
                    ("$oid", json!(format!("5f1d{:08x}", rng.next_u64() as u32)))
                } else {
                    ("#tags", json!("legacy,import"))
                };
                m.insert(k.into(), v);
            }
            Defect::EmptyKey => {
                m.insert(String::new(), json!("stray column"));
            }
        }
        if second && !matches!(d, Defect::BadLanguage) {
            m.insert("lang".into(), json!("fr"));
        }
    }
}
