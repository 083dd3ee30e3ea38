//! Between byte offsets and dotted key paths, using the spans of a second, span-preserving parse
//! of the same text (`toml::de::DeTable`).
//!
//! serde errors carry a byte span but no key; validation errors carry a key but no span. This map
//! answers both questions: "which key is at this offset?" and "where is this key?".
//!
//! Note on TOML spans: a `[table]` or `[[array]]` value's span is its header only, not its body,
//! so lookups scan every node instead of descending through containing spans.

use std::fmt;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// 1-based line and column (in characters, not bytes) of byte `offset` in `text`.
pub(crate) fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A dotted key path such as `route[1].categories`; array indexes are 0-based.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct KeyPath(Vec<Seg>);

impl KeyPath {
    pub(crate) fn root() -> Self {
        KeyPath(Vec::new())
    }

    pub(crate) fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_owned()));
        p
    }

    pub(crate) fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    fn parent(&self) -> Option<Self> {
        let mut p = self.clone();
        p.0.pop().map(|_| p)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{}", quote_key(k))?,
                Seg::Key(k) => write!(f, ".{}", quote_key(k))?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Bare keys as they are; anything else quoted, as TOML would need it.
fn quote_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_owned()
    } else {
        format!("{k:?}")
    }
}

#[derive(Debug)]
struct Node {
    path: KeyPath,
    /// The key's span; `None` for array elements and the root.
    key: Option<Range<usize>>,
    /// The value's span (for tables: the header, or the key of an implicit/dotted table).
    value: Range<usize>,
    /// The value when it is a string (used to find a bad element of an array).
    string: Option<String>,
    is_array: bool,
}

/// Every key and value of a document with its span.
#[derive(Debug)]
pub(crate) struct SourceMap<'a> {
    text: &'a str,
    nodes: Vec<Node>,
}

impl<'a> SourceMap<'a> {
    /// Indexes `text`, or returns its TOML syntax error.
    pub(crate) fn parse(text: &'a str) -> Result<Self, toml::de::Error> {
        let root = DeTable::parse(text)?;
        let mut map = SourceMap {
            text,
            nodes: Vec::new(),
        };
        map.walk_table(&KeyPath::root(), root.get_ref());
        Ok(map)
    }

    fn walk_table(&mut self, path: &KeyPath, table: &DeTable<'_>) {
        for (k, v) in table.iter() {
            let p = path.key(k.get_ref());
            self.push(p.clone(), Some(k.span()), v);
            self.walk_value(&p, v);
        }
    }

    fn walk_value(&mut self, path: &KeyPath, v: &Spanned<DeValue<'_>>) {
        match v.get_ref() {
            DeValue::Table(t) => self.walk_table(path, t),
            DeValue::Array(a) => {
                for (i, e) in a.iter().enumerate() {
                    let p = path.index(i);
                    self.push(p.clone(), None, e);
                    self.walk_value(&p, e);
                }
            }
            _ => {}
        }
    }

    fn push(&mut self, path: KeyPath, key: Option<Range<usize>>, v: &Spanned<DeValue<'_>>) {
        self.nodes.push(Node {
            path,
            key,
            value: v.span(),
            string: v.get_ref().as_str().map(str::to_owned),
            is_array: matches!(v.get_ref(), DeValue::Array(_)),
        });
    }

    /// 1-based line and column of byte `offset`; see [`position`].
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        position(self.text, offset)
    }

    /// The innermost key or value at `span` (the smallest node containing its start), refined to
    /// an array element when the node is an array and `message` quotes one of its string
    /// elements. Returns the path and the offset to report.
    pub(crate) fn path_at(&self, span: &Range<usize>, message: &str) -> Option<(KeyPath, usize)> {
        let at = span.start;
        let contains = |r: &Range<usize>| r.start <= at && (at < r.end || r.start == r.end);
        let best = self
            .nodes
            .iter()
            .filter_map(|n| {
                let hit = [n.key.as_ref(), Some(&n.value)]
                    .into_iter()
                    .flatten()
                    .filter(|r| contains(r))
                    .map(|r| r.end - r.start)
                    .min()?;
                Some((hit, std::cmp::Reverse(n.path.0.len()), n))
            })
            .min_by_key(|(len, depth, _)| (*len, *depth))
            .map(|(_, _, n)| n)?;
        if best.is_array {
            let element = self.nodes.iter().find(|e| {
                e.path.parent().as_ref() == Some(&best.path)
                    && e.string
                        .as_ref()
                        .is_some_and(|s| message.contains(&format!("\"{s}\"")))
            });
            if let Some(e) = element {
                return Some((e.path.clone(), e.value.start));
            }
        }
        Some((best.path.clone(), at))
    }

    /// Whether the document spells out `path`.
    pub(crate) fn contains(&self, path: &KeyPath) -> bool {
        self.nodes.iter().any(|n| &n.path == path)
    }

    /// Where `path`'s value starts; for a path the document does not contain, its nearest
    /// ancestor that it does. `None` when not even the first segment is in the document.
    pub(crate) fn locate(&self, path: &KeyPath) -> Option<(usize, usize)> {
        let mut p = Some(path.clone());
        while let Some(q) = p {
            if let Some(n) = self.nodes.iter().find(|n| n.path == q) {
                return Some(self.position(n.value.start));
            }
            p = q.parent().filter(|p| !p.0.is_empty());
        }
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DOC: &str = "[outbox]\nmax_rows = 5\n\n[outbox.retention]\nhealth = \"1d\"\n\n\
        [[route]]\nname = \"a\"\ncategories = [\"health\", \"bogus\"]\n\n[[route]]\n# c\n\
        name = \"b\"\n[route.retry]\ninitial = \"1s\"\n";

    fn path(s: &[&str]) -> KeyPath {
        let mut p = KeyPath::root();
        for seg in s {
            p = match seg.parse::<usize>() {
                Ok(i) => p.index(i),
                Err(_) => p.key(seg),
            };
        }
        p
    }

    #[test]
    fn key_paths_display_dotted_with_indexes() {
        assert_eq!(
            path(&["route", "1", "categories", "0"]).to_string(),
            "route[1].categories[0]"
        );
        assert_eq!(
            path(&["outbox", "max_bytes"]).to_string(),
            "outbox.max_bytes"
        );
        assert_eq!(path(&["a b"]).to_string(), "\"a b\"");
    }

    #[test]
    fn keys_resolve_to_the_line_of_their_value() {
        let m = SourceMap::parse(DOC).unwrap();
        assert_eq!(m.locate(&path(&["outbox", "max_rows"])), Some((2, 12)));
        assert_eq!(
            m.locate(&path(&["outbox", "retention", "health"])),
            Some((5, 10))
        );
        assert_eq!(m.locate(&path(&["route", "1", "name"])), Some((13, 8)));
        assert_eq!(
            m.locate(&path(&["route", "1", "retry", "initial"])),
            Some((15, 11))
        );
        assert_eq!(m.locate(&path(&["route", "1"])), Some((11, 1)));
        // A key the document leaves out resolves to its nearest ancestor.
        assert_eq!(m.locate(&path(&["route", "1", "uplink"])), Some((11, 1)));
        assert_eq!(m.locate(&path(&["supervisor", "restart_max"])), None);
        assert!(m.contains(&path(&["route", "0", "categories"])));
        assert!(!m.contains(&path(&["route", "2"])));
    }

    #[test]
    fn offsets_resolve_to_the_innermost_key() {
        let m = SourceMap::parse(DOC).unwrap();
        let at = |needle: &str| {
            let i = DOC.find(needle).unwrap_or(usize::MAX);
            m.path_at(&(i..i + needle.len()), "")
                .map(|(p, _)| p.to_string())
        };
        assert_eq!(at("max_rows").as_deref(), Some("outbox.max_rows"));
        assert_eq!(at("\"1d\"").as_deref(), Some("outbox.retention.health"));
        assert_eq!(at("retry").as_deref(), Some("route[1].retry"));
        assert_eq!(at("[[route]]\n#").as_deref(), Some("route[1]"));
    }

    #[test]
    fn a_bad_array_element_named_in_the_message_is_pinpointed() {
        let m = SourceMap::parse(DOC).unwrap();
        let i = DOC.find("[\"health\"").unwrap_or(0);
        let (p, off) = m
            .path_at(&(i..i + 5), "unknown category \"bogus\"")
            .unwrap();
        assert_eq!(p.to_string(), "route[0].categories[1]");
        assert_eq!(m.position(off), (9, 25));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let text = "# æøå\nkey = \"å\"\n";
        assert_eq!(position(text, 0), (1, 1));
        assert_eq!(position(text, "# æøå".len()), (1, 6));
        assert_eq!(position(text, "# æ".len() - 1), (1, 3));
        assert_eq!(position(text, 100), (3, 1));
    }
}
