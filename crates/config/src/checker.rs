//! The collector every validation rule reports to: each problem with its key path, turned into
//! one error in document order (file:line:column: key: message). Shared by the checks of the
//! main schema (`validate.rs`) and of MQTT, sources and routes (`validate_mqtt.rs`), so that
//! the two depend on it and not on each other in a circle (issue 14).

use std::path::Path;
use std::time::Duration;

use crate::error::{ConfigError, ErrorKind};
use crate::locate::{KeyPath, SourceMap};

/// Problems found so far, and the document they are located in.
pub(crate) struct Checker<'m, 'a> {
    pub(crate) map: Option<&'m SourceMap<'a>>,
    issues: Vec<(KeyPath, String)>,
}

impl<'m, 'a> Checker<'m, 'a> {
    pub(crate) fn new(map: Option<&'m SourceMap<'a>>) -> Self {
        Self {
            map,
            issues: Vec::new(),
        }
    }

    pub(crate) fn fail(&mut self, path: KeyPath, message: String) {
        self.issues.push((path, message));
    }

    /// The first of `paths` that the document spells out (else the first): where a rule between
    /// two keys should point, so the message lands on the key the operator actually wrote.
    pub(crate) fn pick(&self, paths: &[KeyPath]) -> KeyPath {
        paths
            .iter()
            .find(|p| self.map.is_some_and(|m| m.contains(p)))
            .or(paths.first())
            .cloned()
            .unwrap_or_default()
    }

    fn position(&self, path: &KeyPath) -> (usize, usize) {
        self.map.and_then(|m| m.locate(path)).unwrap_or((0, 0))
    }

    pub(crate) fn into_error(self, file: &Path) -> Option<ConfigError> {
        let mut errors: Vec<ConfigError> = self
            .issues
            .iter()
            .map(|(path, message)| {
                ConfigError::single(
                    ErrorKind::Invalid,
                    file.to_path_buf(),
                    self.position(path),
                    path.to_string(),
                    message.clone(),
                )
            })
            .collect();
        // Document order; problems without a position last; ties keep the order of the checks.
        errors.sort_by_key(|e| (e.line == 0, e.line, e.column));
        let mut errors = errors.into_iter();
        let mut first = errors.next()?;
        first.more = errors.collect();
        Some(first)
    }

    /// `[<parent>.<table>]` is set, but it only applies when the parent's `key` is `wanted`,
    /// and this parent's `key` is `actual` (e.g. `[source.ble]` on a simulated source).
    pub(crate) fn misplaced(
        &mut self,
        path: &KeyPath,
        (parent, table): (&str, &str),
        (key, wanted): (&str, &str),
        actual: &dyn std::fmt::Display,
    ) {
        self.fail(
            path.key(table),
            format!(
                "[{parent}.{table}] only applies to {key} = \"{wanted}\", but this {parent}'s \
                 {key} is \"{actual}\"; remove the table"
            ),
        );
    }

    pub(crate) fn positive(&mut self, d: Duration, path: KeyPath, name: &str) {
        if d.is_zero() {
            self.fail(path, format!("{name} must be longer than 0s"));
        }
    }

    /// " on line N" when the document has `path`.
    pub(crate) fn on_line(&self, path: &KeyPath) -> String {
        match self.map.and_then(|m| m.locate(path)) {
            Some((line, _)) => format!(" on line {line}"),
            None => String::new(),
        }
    }
}
