//! Which collections a command works on: `--collection` names, `SRC=DST` renames and globs, and
//! `--exclude` patterns, resolved against the names available, one rule for export, load, verify
//! and diff. A pattern that matches nothing is an error, never an empty run.

use globset::{Glob, GlobMatcher};

/// What the user asked for, before it meets the names available.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// `--collection` values: (source name or pattern, target name); a pattern keeps its names.
    pub include: Vec<(String, String)>,
    /// `--exclude` patterns (a plain name is a pattern matching itself).
    pub exclude: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("{flag} {pattern:?}: not a valid pattern: {why}")]
    BadPattern { flag: &'static str, pattern: String, why: String },
    #[error("--collection {pattern:?}: a pattern cannot be renamed (SRC=DST names one collection)")]
    RenamedPattern { pattern: String },
    #[error("{flag} {pattern:?} matches no collection of {among} (it has: {})", known.join(", "))]
    NoMatch { flag: &'static str, pattern: String, among: String, known: Vec<String> },
    #[error("--exclude leaves no collection of {among} to work on")]
    NothingLeft { among: String },
}

/// Whether a `--collection` value is a glob (`*`, `?`, `[`) rather than a name.
pub fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn matcher(flag: &'static str, pattern: &str) -> Result<GlobMatcher, SelectError> {
    Glob::new(pattern).map(|g| g.compile_matcher()).map_err(|e| SelectError::BadPattern {
        flag,
        pattern: pattern.to_owned(),
        why: e.kind().to_string(),
    })
}

impl Selection {
    /// Names only, no renames: `--collection` values as given.
    pub fn of_names(include: &[String], exclude: &[String]) -> Self {
        Self { include: include.iter().map(|n| (n.clone(), n.clone())).collect(), exclude: exclude.to_vec() }
    }

    /// Whether the names available must be listed to resolve this selection.
    pub fn needs_listing(&self) -> bool {
        self.include.is_empty() || !self.exclude.is_empty() || self.include.iter().any(|(s, _)| is_pattern(s))
    }

    /// The (source, target) pairs this selection picks among `available` (names in the order they
    /// should be worked on; `among` says whose, for messages). Plain names are passed through as
    /// given (the caller says by name when one does not exist); each pattern, included or
    /// excluded, must match at least one name; what an exclude matches is dropped.
    pub fn resolve(&self, available: &[String], among: &str) -> Result<Vec<(String, String)>, SelectError> {
        let no_match = |flag, pattern: &str| SelectError::NoMatch {
            flag,
            pattern: pattern.to_owned(),
            among: among.to_owned(),
            known: available.to_vec(),
        };
        let mut out: Vec<(String, String)> = Vec::new();
        let push = |out: &mut Vec<(String, String)>, pair: (String, String)| {
            if !out.iter().any(|(s, _)| *s == pair.0) {
                out.push(pair);
            }
        };
        if self.include.is_empty() {
            available.iter().for_each(|n| push(&mut out, (n.clone(), n.clone())));
        }
        for (src, dst) in &self.include {
            if !is_pattern(src) {
                push(&mut out, (src.clone(), dst.clone()));
                continue;
            }
            if src != dst {
                return Err(SelectError::RenamedPattern { pattern: src.clone() });
            }
            let m = matcher("--collection", src)?;
            let hits: Vec<&String> = available.iter().filter(|n| m.is_match(n.as_str())).collect();
            if hits.is_empty() {
                return Err(no_match("--collection", src));
            }
            hits.into_iter().for_each(|n| push(&mut out, (n.clone(), n.clone())));
        }
        for pattern in &self.exclude {
            let m = matcher("--exclude", pattern)?;
            if !available.iter().chain(out.iter().map(|(s, _)| s)).any(|n| m.is_match(n.as_str())) {
                return Err(no_match("--exclude", pattern));
            }
            out.retain(|(s, _)| !m.is_match(s.as_str()));
        }
        if out.is_empty() && !self.exclude.is_empty() {
            return Err(SelectError::NothingLeft { among: among.to_owned() });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn picked(sel: &Selection) -> Vec<String> {
        let all = names(&["sergio_docs", "sergio_faq", "other", "sergio_tmp"]);
        sel.resolve(&all, "the server").unwrap().into_iter().map(|(s, _)| s).collect()
    }

    #[test]
    fn globs_excludes_and_names() {
        assert_eq!(picked(&Selection::default()).len(), 4);
        let s = Selection::of_names(&names(&["sergio_*"]), &[]);
        assert_eq!(picked(&s), ["sergio_docs", "sergio_faq", "sergio_tmp"]);
        let s = Selection::of_names(&names(&["sergio_*"]), &names(&["*_tmp"]));
        assert_eq!(picked(&s), ["sergio_docs", "sergio_faq"]);
        let s = Selection::of_names(&[], &names(&["sergio_*"]));
        assert_eq!(picked(&s), ["other"]);
        // Plain names pass through in the order given, once; an exclude drops them too.
        let s = Selection::of_names(&names(&["other", "sergio_f?q", "other"]), &names(&["sergio_faq"]));
        assert_eq!(picked(&s), ["other"]);
        let s = Selection::of_names(&names(&["missing"]), &[]);
        assert_eq!(picked(&s), ["missing"], "the caller names an unknown collection");
    }

    #[test]
    fn a_pattern_that_matches_nothing_is_an_error() {
        let all = names(&["a", "b"]);
        let e = Selection::of_names(&names(&["z*"]), &[]).resolve(&all, "snapshot s/").unwrap_err();
        assert_eq!(e.to_string(), r#"--collection "z*" matches no collection of snapshot s/ (it has: a, b)"#);
        let e = Selection::of_names(&[], &names(&["c"])).resolve(&all, "snapshot s/").unwrap_err();
        assert!(e.to_string().starts_with(r#"--exclude "c" matches no collection"#), "{e}");
        let e = Selection::of_names(&[], &names(&["*"])).resolve(&all, "snapshot s/").unwrap_err();
        assert_eq!(e.to_string(), "--exclude leaves no collection of snapshot s/ to work on");
        let e = Selection::of_names(&names(&["[a"]), &[]).resolve(&all, "x").unwrap_err();
        assert!(matches!(e, SelectError::BadPattern { .. }), "{e}");
        let s = Selection { include: vec![("a*".into(), "b".into())], exclude: vec![] };
        assert!(matches!(s.resolve(&all, "x").unwrap_err(), SelectError::RenamedPattern { .. }));
    }
}
