//! The server's collection description, read liberally from v1 and v2 answers.

use serde_json::Value;

use crate::record::Metadata;

/// Which HTTP API a server is spoken to with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    V1,
    V2,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::V1 => "v1",
            Api::V2 => "v2",
        }
    }
}

impl std::str::FromStr for Api {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "v1" => Ok(Api::V1),
            "v2" => Ok(Api::V2),
            _ => Err(format!("unknown API {s:?} (expected v1 or v2)")),
        }
    }
}

/// A collection as the server describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionInfo {
    pub id: String,
    pub name: String,
    pub metadata: Option<Metadata>,
    /// `configuration_json` as reported (absent on 0.4).
    pub configuration: Option<Value>,
    /// Reported by 1.x; unknown on 0.x.
    pub dimension: Option<usize>,
    /// Which of its records are read through this handle: all (`None`, as the server describes
    /// it), or those a filter selects (`export --where`, or the comparison of a partial snapshot):
    /// listing, fetching and counting then see only those.
    pub filter: Option<crate::record::RecordFilter>,
}

impl CollectionInfo {
    /// This collection, seen through `filter` (all of it when `None`).
    pub fn filtered(&self, filter: Option<&crate::record::RecordFilter>) -> Self {
        Self { filter: filter.cloned(), ..self.clone() }
    }

    pub fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            id: v.get("id")?.as_str()?.to_owned(),
            name: v.get("name")?.as_str()?.to_owned(),
            metadata: v.get("metadata").and_then(Value::as_object).cloned(),
            configuration: v.get("configuration_json").filter(|c| !c.is_null()).cloned(),
            dimension: v.get("dimension").and_then(Value::as_u64).map(|d| d as usize),
            filter: None,
        })
    }

    /// The distance space: `hnsw:space` in metadata (0.x, and honoured by 1.x) wins over the
    /// configuration, because 0.5 reports l2 in its configuration whatever the space is.
    pub fn space(&self) -> String {
        let from_meta = self.metadata.as_ref().and_then(|m| m.get("hnsw:space")).and_then(Value::as_str);
        let from_conf = self
            .configuration
            .as_ref()
            .and_then(|c| c.pointer("/hnsw/space").or_else(|| c.pointer("/spann/space")))
            .and_then(Value::as_str);
        from_meta.or(from_conf).unwrap_or("l2").to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_prefers_legacy_metadata() {
        let v: Value = serde_json::json!({"id":"x","name":"n","metadata":{"hnsw:space":"ip"},
            "configuration_json":{"hnsw":{"space":"l2"}}});
        assert_eq!(CollectionInfo::from_json(&v).unwrap().space(), "ip");
        let v: Value = serde_json::json!({"id":"x","name":"n","metadata":null,
            "configuration_json":{"hnsw":{"space":"cosine"}},"dimension":3});
        let c = CollectionInfo::from_json(&v).unwrap();
        assert_eq!((c.space().as_str(), c.dimension), ("cosine", Some(3)));
    }
}
