//! Templates for ids and metadata fields: `{name}` placeholders with an optional width,
//! `{n:06}` (zero-padded) or `{n:6}` (space-padded); `{{` and `}}` are literal braces.

/// A compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segs: Vec<Seg>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    Var { name: String, width: usize, zero: bool },
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut segs = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '}' => return Err(format!("unmatched '}}' in template {text:?} (write '}}}}' for a brace)")),
                '{' => {
                    let mut inner = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') | None => return Err(format!("unclosed '{{' in template {text:?}")),
                            Some(x) => inner.push(x),
                        }
                    }
                    if !lit.is_empty() {
                        segs.push(Seg::Lit(std::mem::take(&mut lit)));
                    }
                    segs.push(parse_var(&inner).map_err(|why| format!("template {text:?}: {why}"))?);
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            segs.push(Seg::Lit(lit));
        }
        Ok(Self { segs })
    }

    /// The placeholder names, in order of appearance.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.segs.iter().filter_map(|s| match s {
            Seg::Var { name, .. } => Some(name.as_str()),
            Seg::Lit(_) => None,
        })
    }

    /// Renders with `lookup`; the error names the first placeholder without a value.
    pub fn render(&self, mut lookup: impl FnMut(&str) -> Option<String>) -> Result<String, String> {
        let mut out = String::new();
        for s in &self.segs {
            match s {
                Seg::Lit(l) => out.push_str(l),
                Seg::Var { name, width, zero } => {
                    let v = lookup(name).ok_or_else(|| name.clone())?;
                    let pad = width.saturating_sub(v.chars().count());
                    if *zero && pad > 0 {
                        let (sign, digits) = v.strip_prefix('-').map_or(("", v.as_str()), |d| ("-", d));
                        out.push_str(sign);
                        out.extend(std::iter::repeat_n('0', pad));
                        out.push_str(digits);
                    } else {
                        out.extend(std::iter::repeat_n(' ', pad));
                        out.push_str(&v);
                    }
                }
            }
        }
        Ok(out)
    }
}

fn parse_var(inner: &str) -> Result<Seg, String> {
    let (name, fmt) = inner.split_once(':').unwrap_or((inner, ""));
    let name = name.trim();
    let ok_name = !name.is_empty()
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        && !name.starts_with('.');
    if !ok_name {
        return Err(format!("bad placeholder {{{inner}}}"));
    }
    let zero = fmt.starts_with('0') && fmt.len() > 1;
    let width = if fmt.is_empty() {
        0
    } else {
        fmt.parse::<usize>().map_err(|_| format!("bad width {fmt:?} in {{{inner}}} (expected e.g. {{n:06}})"))?
    };
    if width > 64 {
        return Err(format!("width {width} in {{{inner}}} is too large"));
    }
    Ok(Seg::Var { name: name.to_owned(), width, zero })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(t: &str, vars: &[(&str, &str)]) -> Result<String, String> {
        Template::parse(t).unwrap().render(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn renders_padding_and_braces() {
        assert_eq!(r("{target}_{n:06}", &[("target", "humor"), ("n", "42")]).unwrap(), "humor_000042");
        assert_eq!(r("[{n:4}]", &[("n", "7")]).unwrap(), "[   7]");
        assert_eq!(r("{{x}} {n:03}", &[("n", "-5")]).unwrap(), "{x} -05");
        assert_eq!(
            r("if://citation/{source}/{id}", &[("source", "book"), ("id", "a1")]).unwrap(),
            "if://citation/book/a1"
        );
        assert_eq!(r("{n:02}", &[("n", "12345")]).unwrap(), "12345");
    }

    #[test]
    fn missing_value_is_named() {
        assert_eq!(r("a{x}b{y}", &[("y", "1")]), Err("x".into()));
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in ["{", "a}", "{}", "{n:x}", "{a{b}}", "{n:999}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
        let t = Template::parse("{meta.old_key}-{id}").unwrap();
        assert_eq!(t.names().collect::<Vec<_>>(), ["meta.old_key", "id"]);
    }
}
