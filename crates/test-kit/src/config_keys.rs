//! The keys an annotated config example documents, read the way an operator reads it: shared by
//! the test that ties `docs/hearth.example.toml` to the schema (`crates/config/tests/example.rs`)
//! and the test that every key the guides name exists (`tests/docs_examples.rs`).

use std::collections::BTreeSet;

/// Every (section, key) that `text` spells as `key = …`, commented out or not. Headers count
/// commented out too (`# [route.retry]`); `[[route]]` and `[route]` give section `route`.
pub fn documented_keys(text: &str) -> BTreeSet<(String, String)> {
    let mut section = String::new();
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim_start_matches('#').trim();
        if let Some(header) = line.strip_prefix('[') {
            if let Some(end) = header.find(']') {
                section = header[..end].trim_start_matches('[').to_owned();
            }
        } else if let Some((key, _)) = line.split_once(" = ") {
            // Keys may hold digits (`eui64`); a key never starts with one.
            let key_like = key.starts_with(|c: char| c.is_ascii_lowercase())
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if key_like {
                keys.insert((section.clone(), key.to_owned()));
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commented_keys_and_array_tables_count_and_prose_does_not() {
        let text = "[gateway]\nid = \"x\"\n# eui64 = \"02\"\n# [[route]]\n# name = \"hub\"\n\
                    # A sentence = not a key\n# 3d = \"no\"\n";
        let keys: Vec<_> = documented_keys(text).into_iter().collect();
        assert_eq!(
            keys,
            [
                ("gateway".to_owned(), "eui64".to_owned()),
                ("gateway".to_owned(), "id".to_owned()),
                ("route".to_owned(), "name".to_owned()),
            ]
        );
    }
}
