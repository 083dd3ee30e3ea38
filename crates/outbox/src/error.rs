use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong in the outbox. Each message says what to do next.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// The disk holding the database is full (SQLITE_FULL). Nothing was committed.
    #[error(
        "disk full: cannot write the outbox {path}; nothing of this batch was stored, and its sources \
         were not acknowledged. Free space on the data partition or lower outbox.max_bytes"
    )]
    DiskFull {
        /// The database file.
        path: PathBuf,
    },
    /// The database was written by a newer hearth.
    #[error(
        "the outbox {path} has schema version {found}, but this hearth knows only up to {known}; \
         it was written by a newer hearth. Install that version again, or move the file aside"
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// `user_version` found in the file.
        found: i64,
        /// The newest schema this build knows.
        known: i64,
    },
    /// The database was written by an older hearth and has not been migrated yet.
    #[error(
        "the outbox {path} has schema version {found}, older than this hearth's {known}; start \
         hearth (or run `hearth outbox requeue`) once to migrate it, then try again"
    )]
    OldSchema {
        /// The database file.
        path: PathBuf,
        /// `user_version` found in the file.
        found: i64,
        /// The schema this build writes.
        known: i64,
    },
    /// A file-system operation on the data directory failed.
    #[error(
        "{what} {path}: {source}; check that the data directory exists and is writable by hearth"
    )]
    Io {
        /// What hearth tried to do.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A route name that the outbox was not opened with.
    #[error("unknown route {0:?}; routes come from the [[route]] tables of the configuration")]
    UnknownRoute(String),
    /// An SQLite error other than a full disk.
    #[error("outbox {op} failed on {path}: {source}")]
    Sqlite {
        /// The operation (open, append, claim, settle, commit, …).
        op: &'static str,
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
}

impl OutboxError {
    /// Whether retrying the same operation later may succeed (disk full, busy database).
    pub fn is_transient(&self) -> bool {
        match self {
            OutboxError::DiskFull { .. } => true,
            OutboxError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }
}

/// Classify an SQLite error of operation `op` on `path`.
pub(crate) fn sql(op: &'static str, path: &std::path::Path, e: rusqlite::Error) -> OutboxError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => OutboxError::DiskFull {
            path: path.to_owned(),
        },
        _ => OutboxError::Sqlite {
            op,
            path: path.to_owned(),
            source: e,
        },
    }
}
