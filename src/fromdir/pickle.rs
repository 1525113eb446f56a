//! The id ↔ label map of a vector segment (`index_metadata.pickle`), read by interpreting only
//! the handful of pickle opcodes Chroma's writers emit: never by running Python, and anything
//! else (another class, an unknown opcode) is refused.
//!
//! 0.4/0.5 write a `PersistentData` object (protocol 5, memoised strings); 1.x (serde-pickle)
//! writes a plain dict (protocol 3). Both carry `id_to_label` and, before 1.x, `max_seq_id`.

use std::collections::HashMap;
use std::rc::Rc;

/// What the segment's id map says.
#[derive(Debug, Default)]
pub struct IdMap {
    pub id_to_label: HashMap<String, u64>,
    /// The last log row applied to the saved index (0.4/0.5; 1.x keeps it in SQLite).
    pub max_seq_id: Option<u64>,
    pub total_elements_added: u64,
    /// A `PersistentData` object: the index was last saved by a 0.4/0.5 server (also in a
    /// directory a 1.x server has migrated since).
    pub legacy_object: bool,
}

#[derive(Debug, Clone)]
enum Val {
    None,
    Bool,
    Int(i64),
    Float,
    Str(Rc<str>),
    Dict(Vec<(Val, Val)>),
    Tuple,
    Global(Rc<str>),
    Object(Box<Val>),
    Mark,
}

const CLASS: &str = "chromadb.segment.impl.vector.local_persistent_hnsw PersistentData";

/// Parses the pickle; `Err` says what was refused, at which byte.
pub fn parse(bytes: &[u8]) -> Result<IdMap, String> {
    let mut p = Parser { b: bytes, pos: 0, stack: Vec::new(), memo: HashMap::new() };
    let top = p.run()?;
    let (fields, legacy_object) = match top {
        Val::Dict(d) => (d, false),
        Val::Object(state) => match *state {
            Val::Dict(d) => (d, true),
            _ => return Err("the PersistentData state is not a dict".into()),
        },
        _ => return Err("the top object is neither a dict nor a PersistentData".into()),
    };
    let mut out = IdMap { legacy_object, ..IdMap::default() };
    let mut seen_map = false;
    for (k, v) in fields {
        let Val::Str(k) = k else { continue };
        match (&*k, v) {
            ("id_to_label", Val::Dict(entries)) => {
                seen_map = true;
                out.id_to_label.reserve(entries.len());
                for (id, label) in entries {
                    match (id, label) {
                        (Val::Str(id), Val::Int(l)) if l >= 0 => {
                            out.id_to_label.insert(id.to_string(), l as u64);
                        }
                        _ => return Err("id_to_label holds an entry that is not str → non-negative int".into()),
                    }
                }
            }
            ("max_seq_id", Val::Int(s)) if s >= 0 => out.max_seq_id = Some(s as u64),
            ("max_seq_id", Val::None) => {}
            ("total_elements_added", Val::Int(n)) if n >= 0 => out.total_elements_added = n as u64,
            _ => {}
        }
    }
    if !seen_map {
        return Err("no id_to_label dict".into());
    }
    Ok(out)
}

struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
    stack: Vec<Val>,
    memo: HashMap<u64, Val>,
}

impl Parser<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len()).ok_or("truncated")?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn le(&mut self, n: usize) -> Result<u64, String> {
        let mut v = 0u64;
        for (i, b) in self.take(n)?.iter().enumerate() {
            v |= u64::from(*b) << (8 * i);
        }
        Ok(v)
    }
    fn string(&mut self, n: usize) -> Result<Val, String> {
        let s = std::str::from_utf8(self.take(n)?).map_err(|_| "a string is not UTF-8")?;
        Ok(Val::Str(Rc::from(s)))
    }
    fn pop(&mut self) -> Result<Val, String> {
        self.stack.pop().ok_or_else(|| "stack underflow".to_owned())
    }
    fn pop_mark(&mut self) -> Result<Vec<Val>, String> {
        let at = self.stack.iter().rposition(|v| matches!(v, Val::Mark)).ok_or("no MARK")?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }
    fn set_items(&mut self, items: Vec<Val>) -> Result<(), String> {
        if !items.len().is_multiple_of(2) {
            return Err("odd number of dict items".into());
        }
        let Some(Val::Dict(d)) = self.stack.last_mut() else { return Err("SETITEMS without a dict".into()) };
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.push((k, v));
        }
        Ok(())
    }

    fn run(&mut self) -> Result<Val, String> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            let err = |e: String| format!("byte {at}: {e}");
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.le(8)?; // FRAME
                }
                b'}' => self.stack.push(Val::Dict(Vec::new())),
                b')' => self.stack.push(Val::Tuple),
                b'(' => self.stack.push(Val::Mark),
                b'N' => self.stack.push(Val::None),
                0x88 => self.stack.push(Val::Bool),
                0x89 => self.stack.push(Val::Bool),
                b'J' => {
                    let v = self.le(4)? as u32 as i32;
                    self.stack.push(Val::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.le(1)?;
                    self.stack.push(Val::Int(v as i64));
                }
                b'M' => {
                    let v = self.le(2)?;
                    self.stack.push(Val::Int(v as i64));
                }
                0x8a => {
                    // LONG1: little-endian two's complement of n bytes
                    let n = self.u8()? as usize;
                    if n > 8 {
                        return Err(err("integer wider than 64 bits".into()));
                    }
                    let raw = self.le(n)?;
                    let v = if n == 0 {
                        0
                    } else if n < 8 && raw & (1 << (8 * n - 1)) != 0 {
                        (raw | (!0u64 << (8 * n))) as i64
                    } else {
                        raw as i64
                    };
                    self.stack.push(Val::Int(v));
                }
                b'G' => {
                    self.take(8)?;
                    self.stack.push(Val::Float);
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.string(n).map_err(err)?;
                    self.stack.push(s);
                }
                b'X' => {
                    let n = self.le(4)? as usize;
                    let s = self.string(n).map_err(err)?;
                    self.stack.push(s);
                }
                0x8d => {
                    let n = usize::try_from(self.le(8)?).map_err(|_| err("string too long".into()))?;
                    let s = self.string(n).map_err(err)?;
                    self.stack.push(s);
                }
                0x94 => {
                    let top = self.stack.last().cloned().ok_or_else(|| err("MEMOIZE on empty stack".into()))?;
                    let k = self.memo.len() as u64;
                    self.memo.insert(k, top);
                }
                b'q' | b'r' => {
                    let k = if op == b'q' { self.le(1)? } else { self.le(4)? };
                    let top = self.stack.last().cloned().ok_or_else(|| err("PUT on empty stack".into()))?;
                    self.memo.insert(k, top);
                }
                b'h' | b'j' => {
                    let k = if op == b'h' { self.le(1)? } else { self.le(4)? };
                    let v = self.memo.get(&k).cloned().ok_or_else(|| err(format!("memo {k} not set")))?;
                    self.stack.push(v);
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v]).map_err(err)?;
                }
                b'u' => {
                    let items = self.pop_mark().map_err(err)?;
                    self.set_items(items).map_err(err)?;
                }
                0x93 => {
                    // STACK_GLOBAL
                    let (Val::Str(name), Val::Str(module)) = (self.pop()?, self.pop()?) else {
                        return Err(err("STACK_GLOBAL without two strings".into()));
                    };
                    self.stack.push(Val::Global(Rc::from(format!("{module} {name}"))));
                }
                b'c' => {
                    let rest = &self.b[self.pos..];
                    let mut lines = rest.splitn(3, |&c| c == b'\n');
                    let (Some(m), Some(n)) = (lines.next(), lines.next()) else {
                        return Err(err("GLOBAL truncated".into()));
                    };
                    let g = format!("{} {}", String::from_utf8_lossy(m), String::from_utf8_lossy(n));
                    self.pos += m.len() + n.len() + 2;
                    self.stack.push(Val::Global(Rc::from(g)));
                }
                0x81 => {
                    // NEWOBJ: cls args -> obj; only the one class Chroma writes
                    let _args = self.pop()?;
                    match self.pop()? {
                        Val::Global(g) if &*g == CLASS => self.stack.push(Val::Object(Box::new(Val::None))),
                        Val::Global(g) => return Err(err(format!("refusing to build an object of class {g}"))),
                        _ => return Err(err("NEWOBJ without a class".into())),
                    }
                }
                b'b' => {
                    let state = self.pop()?;
                    match self.stack.last_mut() {
                        Some(Val::Object(s)) => **s = state,
                        _ => return Err(err("BUILD without an object".into())),
                    }
                }
                b'.' => return self.pop(),
                other => return Err(err(format!("unsupported pickle opcode 0x{other:02x}"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_dict_protocol_3() {
        // pickle.dumps({"id_to_label": {"a": 1, "b": 300}, "max_seq_id": None}, protocol=3)
        let b = b"\x80\x03}q\x00(X\x0b\x00\x00\x00id_to_labelq\x01}q\x02(X\x01\x00\x00\x00aq\x03K\x01X\x01\x00\x00\x00bq\x04M,\x01uX\n\x00\x00\x00max_seq_idq\x05Nu.";
        let m = parse(b).unwrap();
        assert_eq!(m.id_to_label.get("a"), Some(&1));
        assert_eq!(m.id_to_label.get("b"), Some(&300));
        assert_eq!(m.max_seq_id, None);
        assert!(!m.legacy_object);
    }

    #[test]
    fn other_classes_are_refused() {
        let b = b"\x80\x05\x8c\x02os\x94\x8c\x06system\x94\x93\x94)\x81\x94.";
        assert!(parse(b).unwrap_err().contains("refusing to build an object of class os system"));
    }
}
