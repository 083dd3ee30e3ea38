//! HL7 v2 escaping of text in fields, components and sub-components (HL7 v2.6 ch. 2.7).
//!
//! hearth always sends the standard encoding characters `^~\&` with field separator `|`, so the
//! escape sequences are fixed:
//!
//! | character | sequence |
//! |---|---|
//! | `\|` field separator | `\F\` |
//! | `^` component separator | `\S\` |
//! | `&` sub-component separator | `\T\` |
//! | `~` repetition separator | `\R\` |
//! | `\` escape character | `\E\` |
//! | any other C0 control or DEL (CR, LF, the MLLP bytes 0x0B and 0x1C …) | `\Xhh\` |
//!
//! Control characters are hex-escaped because a raw CR would end the segment and a raw 0x1C
//! would end the MLLP frame.
//!
//! Invariants (tests `escape::tests::unescape_inverts_escape`, `no_raw_delimiter_survives`):
//! `unescape(&escape(s)) == s` for every string, and `escape(s)` contains no delimiter, no control
//! character, and no `\` that does not start a complete escape sequence.

use std::fmt::Write as _;

/// Escape `text` for use inside one HL7 v2 field, component or sub-component.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// [`escape`], appending to `out`.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\F\\"),
            '^' => out.push_str("\\S\\"),
            '&' => out.push_str("\\T\\"),
            '~' => out.push_str("\\R\\"),
            '\\' => out.push_str("\\E\\"),
            c if c.is_ascii_control() => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\X{:02X}\\", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// Why a text could not be unescaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnescapeError {
    /// A `\` without the closing `\` of its escape sequence.
    #[error("unterminated escape sequence starting at byte {at}")]
    Unterminated {
        /// Byte offset of the opening `\`.
        at: usize,
    },
    /// A `\Xhh…\` sequence with an odd number of digits or a non-hex digit, or bytes that are not
    /// UTF-8.
    #[error("bad hexadecimal escape sequence at byte {at}")]
    BadHex {
        /// Byte offset of the opening `\`.
        at: usize,
    },
}

/// Undo [`escape`]. Besides the sequences `escape` writes, `\Xhh…\` with several bytes (UTF-8 is
/// reassembled) is accepted; formatting sequences (`\H\`, `\N\`, `\.br\`, `\Cxxyy\`, …) are kept
/// verbatim, since they carry no character.
pub fn unescape(text: &str) -> Result<String, UnescapeError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut offset = 0;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let at = offset + i;
        let after = &rest[i + 1..];
        let Some(end) = after.find('\\') else {
            return Err(UnescapeError::Unterminated { at });
        };
        let seq = &after[..end];
        match seq {
            "F" => out.push('|'),
            "S" => out.push('^'),
            "T" => out.push('&'),
            "R" => out.push('~'),
            "E" => out.push('\\'),
            s if s.starts_with('X') => {
                let hex = &s[1..];
                if hex.is_empty() || hex.len() % 2 != 0 {
                    return Err(UnescapeError::BadHex { at });
                }
                let mut bytes = Vec::with_capacity(hex.len() / 2);
                for pair in hex.as_bytes().chunks(2) {
                    let digits =
                        std::str::from_utf8(pair).map_err(|_| UnescapeError::BadHex { at })?;
                    let b =
                        u8::from_str_radix(digits, 16).map_err(|_| UnescapeError::BadHex { at })?;
                    bytes.push(b);
                }
                let decoded = String::from_utf8(bytes).map_err(|_| UnescapeError::BadHex { at })?;
                out.push_str(&decoded);
            }
            other => {
                out.push('\\');
                out.push_str(other);
                out.push('\\');
            }
        }
        let consumed = i + 1 + end + 1;
        rest = &rest[consumed..];
        offset += consumed;
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_every_delimiter() {
        assert_eq!(escape("A|B^C&D~E\\F"), "A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\F");
        assert_eq!(
            escape("a\rb\nc\u{0b}\u{1c}"),
            "a\\X0D\\b\\X0A\\c\\X0B\\\\X1C\\"
        );
        assert_eq!(escape("Blodtrykk æøå 36,5 °C"), "Blodtrykk æøå 36,5 °C");
    }

    #[test]
    fn unescapes_multi_byte_hex_and_keeps_formatting() {
        assert_eq!(unescape("\\XC3A6\\").as_deref(), Ok("æ"));
        assert_eq!(unescape("a\\.br\\b").as_deref(), Ok("a\\.br\\b"));
        assert_eq!(unescape("x\\F"), Err(UnescapeError::Unterminated { at: 1 }));
        assert_eq!(unescape("\\X0\\"), Err(UnescapeError::BadHex { at: 0 }));
        assert_eq!(unescape("\\XZZ\\"), Err(UnescapeError::BadHex { at: 0 }));
        assert_eq!(unescape("\\XFF\\"), Err(UnescapeError::BadHex { at: 0 }));
    }

    fn delimiter_heavy() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just('|'),
                Just('^'),
                Just('&'),
                Just('~'),
                Just('\\'),
                Just('\r'),
                Just('\n'),
                Just('\u{0b}'),
                Just('\u{1c}'),
                Just('X'),
                any::<char>(),
            ],
            0..64,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn unescape_inverts_escape(s in delimiter_heavy()) {
            prop_assert_eq!(unescape(&escape(&s)), Ok(s));
        }

        #[test]
        fn no_raw_delimiter_survives(s in delimiter_heavy()) {
            let e = escape(&s);
            prop_assert!(!e.contains(['|', '^', '&', '~']));
            prop_assert!(!e.chars().any(|c| c.is_ascii_control()));
            // Every backslash opens or closes a complete, known sequence.
            let parts: Vec<&str> = e.split('\\').collect();
            prop_assert!(parts.len() % 2 == 1, "unbalanced backslashes in {e:?}");
            for seq in parts.iter().skip(1).step_by(2) {
                let known = matches!(*seq, "F" | "S" | "T" | "R" | "E")
                    || (seq.len() == 3 && seq.starts_with('X'));
                prop_assert!(known, "unexpected sequence {seq:?} in {e:?}");
            }
        }

        #[test]
        fn unescape_never_panics(s in any::<String>()) {
            let _ = unescape(&s);
        }
    }
}
