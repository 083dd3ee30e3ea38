//! Errors of the runtime crate: what a task reports to the supervisor, and
//! what the supervisor reports to the binary.

use std::fmt;

use crate::exit::ExitSummary;

/// How a supervised task ended with an error.
///
/// The message is the task's own error, already formatted by the task (the
/// binary formats its `anyhow` chain into it), because the supervisor only
/// logs, reports and stores it; it never inspects it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// The task failed and may succeed if started again (a dropped link, a
    /// full disk that may drain, a device that went away).
    /// The supervisor restarts it with backoff.
    #[error("{0}")]
    Failed(String),
    /// The task cannot succeed by being restarted (invalid configuration, a
    /// schema the binary does not understand).
    /// The supervisor stops every task and [`Supervisor::run`] returns
    /// [`SupervisorError::Fatal`].
    ///
    /// [`Supervisor::run`]: crate::Supervisor::run
    #[error("fatal: {0}")]
    Fatal(String),
}

impl TaskError {
    /// A restartable failure carrying `message`.
    ///
    /// The message is formatted with the alternate flag (`{:#}`), so an
    /// `anyhow::Error` passed here keeps its whole context chain
    /// (`"sending bundle: connection refused"`), while other types print as
    /// with `{}`.
    pub fn new(message: impl fmt::Display) -> Self {
        Self::Failed(format!("{message:#}"))
    }

    /// A failure that must not be retried; see [`TaskError::Fatal`].
    ///
    /// Formats `message` like [`TaskError::new`].
    pub fn fatal(message: impl fmt::Display) -> Self {
        Self::Fatal(format!("{message:#}"))
    }

    /// Whether this error stops the whole supervisor instead of restarting
    /// the task.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Fatal(_))
    }

    /// The task's message, without the `fatal: ` prefix.
    pub fn message(&self) -> &str {
        match self {
            Self::Failed(message) | Self::Fatal(message) => message,
        }
    }
}

/// Why the supervisor stopped with an error, or refused a task.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// A task returned [`TaskError::Fatal`]; every other task was asked to
    /// shut down (and aborted after the grace period).
    #[error(
        "task `{task}` failed fatally: {message}; all tasks were stopped. \
         Restarting will not help until the cause is fixed (check the configuration with `hearth config check`)"
    )]
    Fatal {
        /// The task that reported the fatal error.
        task: String,
        /// The task's message.
        message: String,
        /// How every task ended during the shutdown that followed.
        summary: ExitSummary,
    },
    /// [`Supervisor::add`](crate::Supervisor::add) was given a name that is
    /// already registered.
    #[error(
        "a task named `{name}` is already registered; give each task a unique name, \
         because health, STATUS and alarms refer to tasks by name"
    )]
    DuplicateTask {
        /// The name used twice.
        name: String,
    },
}
