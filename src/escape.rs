//! Untrusted text (collection names, ids, documents, paths) shown to a person: control
//! characters and bidirectional overrides become visible escapes, so a name cannot clear the
//! screen, move the cursor or reorder a line. JSON output stays exact and never passes here.

use std::borrow::Cow;

/// `s` with every control character escaped (`\n` → `\u{a}`, ESC → `\u{1b}`), for one value
/// shown inside a line: a name, an id, a document.
pub fn text(s: &str) -> Cow<'_, str> {
    escape(s, |_| false)
}

/// `s` with control characters escaped except line breaks and tabs, for text made of lines
/// (a rendered table, an error message that names several things).
pub fn lines(s: &str) -> Cow<'_, str> {
    escape(s, |c| c == '\n' || c == '\t')
}

fn escape(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(|c| needs_escape(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) && !keep(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// C0 and C1 controls, DEL, and the Unicode bidirectional embeddings, overrides and isolates.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_untouched() {
        for s in ["docs", "héllo wörld — “quoted” 🦀", "a\\b", ""] {
            assert!(matches!(text(s), Cow::Borrowed(b) if b == s), "{s:?}");
        }
    }

    #[test]
    fn controls_become_visible() {
        assert_eq!(text("\x1b[2Jgone"), "\\u{1b}[2Jgone");
        assert_eq!(text("a\nb\r\tc\0"), "a\\u{a}b\\u{d}\\u{9}c\\u{0}");
        assert_eq!(text("x\u{7f}\u{9b}y"), "x\\u{7f}\\u{9b}y");
        assert_eq!(text("abc\u{202e}fed"), "abc\\u{202e}fed");
    }

    #[test]
    fn lines_keep_their_breaks_and_tabs() {
        assert_eq!(lines("one\n\ttwo \x1b]0;title\x07\r\n"), "one\n\ttwo \\u{1b}]0;title\\u{7}\\u{d}\n");
    }

    #[test]
    fn no_control_survives_any_input() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        assert!(!text(&all).chars().any(needs_escape));
        assert!(!lines(&all).chars().any(|c| needs_escape(c) && c != '\n' && c != '\t'));
    }
}
