//! A tiny JSON tree with its own writer.
//!
//! Why not `serde_json::Value`: FHIR decimals keep their precision (`2.00` ≠ `2`, PHD IG
//! PhdNumericObservation), and `serde_json::Value` stores numbers as `f64` unless the
//! `arbitrary_precision` feature is on — a feature that would change `serde_json` for the whole
//! workspace. Here a number is kept as the decimal text we printed, and the writer emits it
//! verbatim. Keys keep their insertion order (FHIR JSON readers do not care, humans and golden
//! files do).

use std::fmt::Write as _;

/// One JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// A string.
    Str(String),
    /// A number, as JSON number text (always produced by [`Json::decimal`] or [`Json::int`]).
    Num(String),
    /// A boolean.
    Bool(bool),
    /// An array.
    Arr(Vec<Json>),
    /// An object; keys in insertion order.
    Obj(Vec<(&'static str, Json)>),
}

impl Json {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Self {
        Json::Str(s.into())
    }

    /// An integer.
    pub fn int(i: i64) -> Self {
        Json::Num(i.to_string())
    }

    /// A finite number printed with `decimals` places, or in Rust's shortest round-trip form
    /// (never with an exponent) when `decimals` is `None`. `None` for NaN and infinities, which
    /// JSON cannot carry.
    pub fn decimal(value: f64, decimals: Option<u8>) -> Option<Self> {
        if !value.is_finite() {
            return None;
        }
        let text = match decimals {
            Some(d) => format!("{value:.prec$}", prec = usize::from(d)),
            None => format!("{value}"),
        };
        Some(Json::Num(text))
    }

    /// Compact text (the HTTP body).
    pub fn to_compact(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.write(&mut out, None, 0);
        out
    }

    /// Pretty text with two-space indentation, `"key": value`, a newline at the end (golden
    /// files).
    pub fn to_pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, Some(2), 0);
        out.push('\n');
        out
    }

    fn write(&self, out: &mut String, indent: Option<usize>, level: usize) {
        match self {
            Json::Str(s) => write_str(out, s),
            Json::Num(n) => out.push_str(n),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Arr(items) => {
                if items.is_empty() {
                    out.push_str("[]");
                    return;
                }
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, indent, level + 1);
                    item.write(out, indent, level + 1);
                }
                newline(out, indent, level);
                out.push(']');
            }
            Json::Obj(fields) => {
                if fields.is_empty() {
                    out.push_str("{}");
                    return;
                }
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, indent, level + 1);
                    write_str(out, key);
                    out.push(':');
                    if indent.is_some() {
                        out.push(' ');
                    }
                    value.write(out, indent, level + 1);
                }
                newline(out, indent, level);
                out.push('}');
            }
        }
    }
}

fn newline(out: &mut String, indent: Option<usize>, level: usize) {
    if let Some(width) = indent {
        out.push('\n');
        for _ in 0..width * level {
            out.push(' ');
        }
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    // Copy the runs that need no escaping in one go: the body of a 500-reading Bundle is
    // mostly such runs, and pushing it char by char was the largest cost of encoding.
    let mut run_start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..0x20 => "",
            _ => continue,
        };
        out.push_str(&s[run_start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escape);
        }
        run_start = i + 1;
    }
    out.push_str(&s[run_start..]);
    out.push('"');
}

/// Build an object from `(key, value)` pairs, dropping `None` values.
pub(crate) fn obj<const N: usize>(fields: [(&'static str, Option<Json>); N]) -> Json {
    Json::Obj(
        fields
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_their_precision() {
        assert_eq!(Json::decimal(2.0, Some(2)), Some(Json::Num("2.00".into())));
        assert_eq!(Json::decimal(36.5, Some(1)), Some(Json::Num("36.5".into())));
        assert_eq!(Json::decimal(138.0, None), Some(Json::Num("138".into())));
        assert_eq!(
            Json::decimal(1e21, None),
            Some(Json::Num("1000000000000000000000".into()))
        );
        assert_eq!(Json::decimal(f64::NAN, None), None);
        assert_eq!(Json::decimal(f64::INFINITY, Some(1)), None);
    }

    proptest::proptest! {
        #[test]
        fn any_string_parses_back_unchanged(s in ".*", ctl in proptest::collection::vec(0u8..0x20, 0..4)) {
            let mut s = s;
            s.extend(ctl.into_iter().map(char::from));
            let text = Json::Arr(vec![Json::str(s.clone())]).to_compact();
            let parsed: Vec<String> = serde_json::from_str(&text).unwrap();
            proptest::prop_assert_eq!(&parsed[0], &s);
        }
    }

    #[test]
    fn strings_are_escaped_and_parse_back() {
        let v = Json::Obj(vec![
            ("a", Json::str("q\"b\\n\n\u{1}é")),
            ("b", Json::Arr(vec![Json::int(-3), Json::Bool(true)])),
            ("c", Json::Obj(vec![])),
            ("d", Json::Arr(vec![])),
        ]);
        for text in [v.to_compact(), v.to_pretty()] {
            let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(parsed["a"], "q\"b\\n\n\u{1}é");
            assert_eq!(parsed["b"][0], -3);
        }
    }
}
