//! Located errors and warnings: every problem names the file, the line and column, and the dotted
//! key it is about, so an operator can jump straight to it.

use std::fmt;
use std::path::PathBuf;

/// Which stage of loading found the problem.
///
/// The binary may map these to exit codes; all of them mean "fix the file and try again".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read (missing, unreadable). `line` is 0.
    Io,
    /// The text is not valid TOML (or not UTF-8).
    Syntax,
    /// Valid TOML that does not fit the schema: an unknown key, a wrong type, a bad enum value, a
    /// missing required key, or a value that does not parse (a duration, a size, a category).
    Schema,
    /// The values fit the schema but break a rule: a range, a uniqueness or a cross-key rule, or a
    /// feature that is not in this build.
    Invalid,
}

/// A config file that hearth refuses to run with.
///
/// Displayed as `{file}:{line}:{column}: {key}: {message}`, one problem per line.
/// Parts that are unknown are left out together with their separator: an empty `file` (a config
/// built in code), `line == 0` (no position, e.g. an I/O error or a rule about the whole file) and
/// an empty `key` (a TOML syntax error outside any key).
///
/// Syntax and schema errors stop at the first problem (the TOML parser cannot continue past it).
/// Validation ([`ErrorKind::Invalid`]) collects *every* rule violation: the first, in document
/// order, is in the fields of this struct, and the rest follow in [`ConfigError::more`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The stage that found the problem.
    pub kind: ErrorKind,
    /// The config file, as given to [`crate::load`] or [`crate::parse`].
    pub file: PathBuf,
    /// 1-based line; 0 when there is no position.
    pub line: usize,
    /// 1-based column in characters; 0 when there is no position.
    pub column: usize,
    /// The dotted key path, e.g. `outbox.max_bytes` or `route[1].categories` (array indexes are
    /// 0-based, in file order).
    pub key: String,
    /// What is wrong and what to do about it.
    pub message: String,
    /// Further problems found in the same pass, in document order (each with an empty `more`).
    pub more: Vec<ConfigError>,
}

impl ConfigError {
    /// This problem followed by every entry of [`ConfigError::more`].
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        std::iter::once(self).chain(self.more.iter())
    }

    /// How many problems this error reports (at least 1).
    pub fn len(&self) -> usize {
        1 + self.more.len()
    }

    /// Always false: an error reports at least one problem. Exists for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub(crate) fn single(
        kind: ErrorKind,
        file: PathBuf,
        (line, column): (usize, usize),
        key: String,
        message: String,
    ) -> Self {
        ConfigError {
            kind,
            file,
            line,
            column,
            key,
            message,
            more: Vec::new(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_located(
            f,
            &self.file,
            self.line,
            self.column,
            &self.key,
            &self.message,
        )?;
        for more in &self.more {
            f.write_str("\n")?;
            write_located(
                f,
                &more.file,
                more.line,
                more.column,
                &more.key,
                &more.message,
            )?;
        }
        Ok(())
    }
}

/// Something hearth will run with, but that is probably not what the operator wants (e.g. a
/// category that no route carries). Displayed like [`ConfigError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The config file.
    pub file: PathBuf,
    /// 1-based line; 0 when the warning is about the file as a whole.
    pub line: usize,
    /// 1-based column; 0 when there is no position.
    pub column: usize,
    /// The dotted key path the warning is about (may be a table such as `route`).
    pub key: String,
    /// What will happen and how to change it.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_located(
            f,
            &self.file,
            self.line,
            self.column,
            &self.key,
            &self.message,
        )
    }
}

fn write_located(
    f: &mut fmt::Formatter<'_>,
    file: &std::path::Path,
    line: usize,
    column: usize,
    key: &str,
    message: &str,
) -> fmt::Result {
    let file = file.display().to_string();
    let mut prefixed = false;
    if !file.is_empty() {
        write!(f, "{file}:")?;
        prefixed = true;
    }
    if line > 0 {
        write!(f, "{line}:{column}:")?;
        prefixed = true;
    }
    if prefixed {
        f.write_str(" ")?;
    }
    if !key.is_empty() {
        write!(f, "{key}: ")?;
    }
    f.write_str(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(file: &str, line: usize, key: &str) -> ConfigError {
        ConfigError::single(
            ErrorKind::Invalid,
            PathBuf::from(file),
            (line, if line > 0 { 3 } else { 0 }),
            key.into(),
            "bad".into(),
        )
    }

    #[test]
    fn display_leaves_out_unknown_parts() {
        assert_eq!(err("a.toml", 2, "k").to_string(), "a.toml:2:3: k: bad");
        assert_eq!(err("a.toml", 0, "k").to_string(), "a.toml: k: bad");
        assert_eq!(err("a.toml", 2, "").to_string(), "a.toml:2:3: bad");
        assert_eq!(err("", 0, "k").to_string(), "k: bad");
        assert_eq!(err("", 0, "").to_string(), "bad");
    }

    #[test]
    fn display_puts_each_further_problem_on_its_own_line() {
        let mut e = err("a.toml", 2, "k");
        e.more.push(err("a.toml", 5, "j"));
        assert_eq!(e.to_string(), "a.toml:2:3: k: bad\na.toml:5:3: j: bad");
        assert_eq!(e.len(), 2);
        assert_eq!(e.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 5]);
    }
}
