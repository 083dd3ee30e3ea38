//! How the supervisor's shutdown went, task by task: what `Supervisor::run` returns and what a
//! failed shutdown carries in its error. Its own module, so that `error` and `supervisor` do
//! not import each other (issue 14).

/// How one task ended when the supervisor stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitOutcome {
    /// It returned `Ok(())` within the grace period.
    Finished,
    /// It returned an error or panicked after shutdown began (or it was the
    /// task whose fatal error stopped the supervisor).
    Failed(String),
    /// It was still running when the grace period ended and was aborted.
    Aborted,
    /// It was waiting for a restart (or never started), so there was nothing
    /// to stop.
    NotRunning,
}

/// One task's line in an [`ExitSummary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskExit {
    /// The task's name.
    pub name: String,
    /// How it ended.
    pub outcome: ExitOutcome,
}

/// How the supervisor's shutdown went, task by task.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExitSummary {
    /// One entry per task, in the order they were added.
    pub tasks: Vec<TaskExit>,
    /// Events dropped over the supervisor's lifetime because the channel was
    /// full or closed.
    pub dropped_events: u64,
}

impl ExitSummary {
    /// Names of the tasks that ignored shutdown and were aborted.
    pub fn aborted(&self) -> Vec<&str> {
        self.tasks
            .iter()
            .filter(|task| task.outcome == ExitOutcome::Aborted)
            .map(|task| task.name.as_str())
            .collect()
    }

    /// Whether every running task finished on its own.
    pub fn is_clean(&self) -> bool {
        self.tasks.iter().all(|task| {
            matches!(
                task.outcome,
                ExitOutcome::Finished | ExitOutcome::NotRunning
            )
        })
    }

    /// The outcome of the task named `name`.
    pub fn outcome(&self, name: &str) -> Option<&ExitOutcome> {
        self.tasks
            .iter()
            .find(|task| task.name == name)
            .map(|task| &task.outcome)
    }
}
