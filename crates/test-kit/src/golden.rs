//! Golden files: compare an encoder's output with a reviewed file under `tests/data/`, and
//! re-bless the file when the change is intended.
//!
//! Paths are taken as given; `cargo test` runs tests in the package's directory, so
//! `tests/data/fhir/observation.json` names the file of the crate under test. Run the tests
//! with `HEARTH_BLESS=1` to write the actual output into the files instead of comparing, then
//! review the change with `git diff` and commit it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The environment variable that re-blesses golden files when set to `1`.
pub const BLESS_ENV: &str = "HEARTH_BLESS";

/// Lines of unchanged context shown around a difference.
const CONTEXT: usize = 2;
/// Changed lines shown per side before the rest is counted.
const SHOWN: usize = 30;

/// Whether to compare with the golden file or overwrite it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoldenMode {
    /// Fail when the file differs or is missing.
    Compare,
    /// Write the actual output into the file.
    Bless,
}

impl GoldenMode {
    /// [`GoldenMode::Bless`] when `HEARTH_BLESS=1`, else [`GoldenMode::Compare`].
    pub fn from_env() -> Self {
        match std::env::var(BLESS_ENV) {
            Ok(v) if v.trim() == "1" => GoldenMode::Bless,
            _ => GoldenMode::Compare,
        }
    }
}

/// Why a golden comparison failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GoldenError {
    /// There is no golden file yet.
    #[error(
        "golden file {} does not exist; run the test with {BLESS_ENV}=1 to create it, then \
         review it and commit it",
        path.display()
    )]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The output differs from the golden file.
    #[error(
        "output differs from golden file {} (first difference at line {line}); if the change \
         is intended, run the test with {BLESS_ENV}=1 and review the file with git diff\n{diff}",
        path.display()
    )]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// First differing line, 1-based.
        line: usize,
        /// The differing lines, `-` expected (file) and `+` actual.
        diff: String,
    },
    /// The file could not be read or written.
    #[error("cannot {what} golden file {}: {source}", path.display())]
    Io {
        /// `read` or `write`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Compare `actual` with the golden file at `path` (or bless it when `HEARTH_BLESS=1`). Line
/// endings are normalised, so a checkout with CRLF still compares equal.
pub fn check_golden(path: impl AsRef<Path>, actual: &str) -> Result<(), GoldenError> {
    check_golden_with(path, actual, GoldenMode::from_env())
}

/// [`check_golden`], panicking with the diff (for tests).
#[track_caller]
pub fn assert_golden(path: impl AsRef<Path>, actual: &str) {
    if let Err(e) = check_golden(path, actual) {
        panic!("{e}");
    }
}

/// [`check_golden`] with an explicit mode (the kit's own tests, or a tool that blesses).
pub fn check_golden_with(
    path: impl AsRef<Path>,
    actual: &str,
    mode: GoldenMode,
) -> Result<(), GoldenError> {
    let path = path.as_ref();
    let io = |what| {
        move |source| GoldenError::Io {
            what,
            path: path.to_owned(),
            source,
        }
    };
    let existing = match std::fs::read_to_string(path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io("read")(e)),
    };
    let same = existing
        .as_deref()
        .is_some_and(|e| normalise(e) == normalise(actual));
    match mode {
        GoldenMode::Bless => {
            if !same {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io("write"))?;
                }
                std::fs::write(path, actual).map_err(io("write"))?;
                eprintln!("blessed golden file {}", path.display());
            }
            Ok(())
        }
        GoldenMode::Compare => match existing {
            None => Err(GoldenError::Missing {
                path: path.to_owned(),
            }),
            Some(_) if same => Ok(()),
            Some(expected) => {
                let (line, diff) = diff(&normalise(&expected), &normalise(actual));
                Err(GoldenError::Mismatch {
                    path: path.to_owned(),
                    line,
                    diff,
                })
            }
        },
    }
}

fn normalise(s: &str) -> String {
    s.replace("\r\n", "\n")
}

/// The first differing line (1-based) and the differing block between the common prefix and
/// suffix, with a little context.
fn diff(expected: &str, actual: &str) -> (usize, String) {
    let e: Vec<&str> = expected.split('\n').collect();
    let a: Vec<&str> = actual.split('\n').collect();
    let prefix = e.iter().zip(&a).take_while(|(x, y)| x == y).count();
    let max_suffix = e.len().min(a.len()) - prefix;
    let suffix = e
        .iter()
        .rev()
        .zip(a.iter().rev())
        .take(max_suffix)
        .take_while(|(x, y)| x == y)
        .count();
    let mut out = format!("@@ line {} @@", prefix + 1);
    for line in &e[prefix.saturating_sub(CONTEXT)..prefix] {
        let _ = write!(out, "\n  {line}");
    }
    for (sign, side) in [
        ('-', &e[prefix..e.len() - suffix]),
        ('+', &a[prefix..a.len() - suffix]),
    ] {
        for line in side.iter().take(SHOWN) {
            let _ = write!(out, "\n{sign} {line}");
        }
        if side.len() > SHOWN {
            let _ = write!(out, "\n{sign} … {} more line(s)", side.len() - SHOWN);
        }
    }
    let after = &e[e.len() - suffix..];
    for line in after.iter().take(CONTEXT) {
        let _ = write!(out, "\n  {line}");
    }
    (prefix + 1, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_shows_the_changed_block_with_context() {
        let (line, d) = diff("a\nb\nc\nd\ne", "a\nb\nX\nd\ne");
        assert_eq!(line, 3);
        assert_eq!(d, "@@ line 3 @@\n  a\n  b\n- c\n+ X\n  d\n  e");
    }

    #[test]
    fn diff_handles_appended_lines() {
        let (line, d) = diff("a\n", "a\nb\n");
        assert_eq!(line, 2);
        assert!(d.contains("+ b"), "{d}");
        assert!(!d.contains("- "), "{d}");
    }
}
