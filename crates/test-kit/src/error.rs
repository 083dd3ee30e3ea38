//! The kit's errors: a [`HarnessError`] when the kit itself cannot work, and a
//! [`ConformanceError`] when the driver under test breaks a rule of the driver contract.

use std::fmt;

use hearth_outbox::{OutboxError, WriterError};

/// The kit could not set up or read its temporary outbox. This is a problem of the test
/// environment, not of the driver under test.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// No temporary directory could be created.
    #[error(
        "cannot create a temporary directory for the test outbox: {0}; check that TMPDIR points \
         to a writable directory"
    )]
    TempDir(#[source] std::io::Error),
    /// The outbox could not be opened or its writer thread not started.
    #[error("cannot open the test outbox: {0}")]
    Outbox(#[from] OutboxError),
    /// A request to the outbox writer failed.
    #[error("the test outbox refused a request: {0}")]
    Writer(#[from] WriterError),
    /// The storage fault injector (used by the ack-after-commit check) could not be installed
    /// or switched.
    #[error(
        "cannot set up the simulated storage failure: {0}; this is a bug in hearth-test-kit, \
         please report it"
    )]
    FaultInjection(String),
    /// The outbox writer thread did not end when the harness was closed.
    #[error(
        "the test outbox writer did not stop within {0:?}: a driver started on this harness still \
         holds its ingest handle; stop every driver before closing the harness"
    )]
    WriterStuck(std::time::Duration),
}

/// One check of the driver conformance kit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Check {
    /// Readings and alarms follow the model rules (finite numbers, units, MDC codes, plausible
    /// device times).
    ReadingsValid,
    /// Two runs of the same driver on the same simulated input produce the same record ids.
    IdsDeterministic,
    /// A decoder returns an error, and never panics, on any input.
    NoPanicOnInput,
    /// The driver acknowledges (moves its cursor) only after the commit: a storage failure
    /// loses nothing and duplicates nothing.
    AckAfterCommit,
}

impl Check {
    /// Every check, in the order `run_all` runs them.
    pub const ALL: [Check; 4] = [
        Check::ReadingsValid,
        Check::IdsDeterministic,
        Check::NoPanicOnInput,
        Check::AckAfterCommit,
    ];

    /// A short title, as the summary prints it.
    pub const fn title(self) -> &'static str {
        match self {
            Check::ReadingsValid => "readings are valid",
            Check::IdsDeterministic => "record ids are deterministic",
            Check::NoPanicOnInput => "no panic on input",
            Check::AckAfterCommit => "acknowledge only after commit",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title())
    }
}

/// The driver under test broke the driver contract. `problems` says what, where, and how to fix
/// it, one sentence each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConformanceError {
    /// Which check failed.
    pub check: Check,
    /// What the check found; each item names the record or input and what to fix.
    pub problems: Vec<String>,
}

/// Problems printed in full before the rest is summarised as a count.
const SHOWN: usize = 20;

impl ConformanceError {
    pub(crate) fn new(check: Check, problems: Vec<String>) -> Self {
        Self { check, problems }
    }

    /// `Ok` when nothing was found, else the error.
    pub(crate) fn from_problems(check: Check, problems: Vec<String>) -> Result<(), Self> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Self::new(check, problems))
        }
    }

    /// Whether any problem mentions `needle` (for tests of the kit and of drivers).
    pub fn mentions(&self, needle: &str) -> bool {
        self.problems.iter().any(|p| p.contains(needle))
    }
}

impl fmt::Display for ConformanceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "driver conformance check \"{}\" failed ({n} problem{}):",
            self.check,
            if n == 1 { "" } else { "s" }
        )?;
        for p in self.problems.iter().take(SHOWN) {
            write!(f, "\n  - {p}")?;
        }
        if n > SHOWN {
            write!(f, "\n  … and {} more", n - SHOWN)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConformanceError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_lists_problems_and_summarises_the_rest() {
        let e = ConformanceError::new(
            Check::ReadingsValid,
            (0..25).map(|i| format!("problem {i}")).collect(),
        );
        let s = e.to_string();
        assert!(
            s.contains("\"readings are valid\" failed (25 problems)"),
            "{s}"
        );
        assert!(s.contains("problem 19"), "{s}");
        assert!(!s.contains("problem 20"), "{s}");
        assert!(s.contains("… and 5 more"), "{s}");
        assert!(e.mentions("problem 24"));
    }
}
