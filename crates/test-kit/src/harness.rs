//! A throw-away outbox with everything a driver needs around it.
//!
//! [`Harness`] opens a real outbox (SQLite, WAL, the real single writer thread) in a temporary
//! directory with one route that carries every category, so a driver under test goes through
//! exactly the code it meets in production: `Ingest::submit` returns after a real commit.
//!
//! It can also make storage fail on demand ([`Harness::set_storage_full`]): while switched on,
//! every transaction that would store a record or a dead letter fails with SQLITE_FULL, as on a
//! full data partition, while small writes (a cursor on its own) still fit. The switch is a
//! temporary trigger on the writer's own connection (never written to the file) that consults a
//! cursor row the harness owns; that row is hidden from [`Harness::stats`].

use std::any::Any;
use std::future::pending;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hearth_driver_api::{Driver, DriverContext, DriverError, Ingest, TechnicalAlarms};
use hearth_model::{Category, Record};
use hearth_outbox::{Outbox, OutboxOptions, OutboxWriter, RetryPolicy, RouteId, RouteSpec, Stats};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::HarnessError;

/// The name of the harness's one route (it carries every category).
pub const ROUTE: &str = "test-kit";

/// The cursor row that switches the simulated storage failure (1 = full, 0 = healthy).
pub(crate) const FAULT_KEY: &str = "hearth-test-kit/storage-full";

/// How long a driver may take to return after it was asked to stop.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// How long closing the harness waits for the writer thread.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Installed on the writer's connection before the writer thread starts. A BEFORE INSERT
/// trigger cannot fail with SQLITE_FULL by itself, so it inserts a blob far larger than the
/// temporary schema may grow (`max_page_count` is clamped to its current size): SQLite then
/// reports "database or disk is full", which the outbox classifies as the transient DiskFull
/// error a real full partition gives. The failed statement rolls the whole batch back.
const FAULT_SQL: &str = "
CREATE TEMP TABLE hearth_test_kit_ballast (b BLOB);
CREATE TEMP TRIGGER hearth_test_kit_full_item BEFORE INSERT ON main.item
WHEN EXISTS (SELECT 1 FROM main.cursor WHERE source = 'hearth-test-kit/storage-full' AND value = 1)
BEGIN INSERT INTO hearth_test_kit_ballast VALUES (zeroblob(4000000)); END;
CREATE TEMP TRIGGER hearth_test_kit_full_dead_letter BEFORE INSERT ON main.dead_letter
WHEN EXISTS (SELECT 1 FROM main.cursor WHERE source = 'hearth-test-kit/storage-full' AND value = 1)
BEGIN INSERT INTO hearth_test_kit_ballast VALUES (zeroblob(4000000)); END;
PRAGMA temp.max_page_count = 1;
";

/// How long a driver run may last.
///
/// A run ends when the driver returns, when nothing was committed for `quiet` (if set), or
/// after `max`, whichever comes first; then the driver is asked to stop. `quiet` must be longer
/// than the longest pause between two of the driver's submissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimit {
    /// Hard upper bound of one run (and of each phase of the ack-after-commit check).
    pub max: Duration,
    /// End the run once nothing was committed for this long.
    pub quiet: Option<Duration>,
}

impl RunLimit {
    /// Run for `max` (or until the driver returns).
    pub const fn at_most(max: Duration) -> Self {
        Self { max, quiet: None }
    }

    /// Run until nothing was committed for `quiet`, for at most `max`.
    pub const fn until_quiet(quiet: Duration, max: Duration) -> Self {
        Self {
            max,
            quiet: Some(quiet),
        }
    }
}

impl Default for RunLimit {
    /// Until quiet for 500 ms, at most 30 s.
    fn default() -> Self {
        Self::until_quiet(Duration::from_millis(500), Duration::from_secs(30))
    }
}

impl std::fmt::Display for RunLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.quiet {
            Some(q) => write!(f, "{:?} (or {q:?} without a commit)", self.max),
            None => write!(f, "{:?}", self.max),
        }
    }
}

impl From<Duration> for RunLimit {
    fn from(max: Duration) -> Self {
        Self::at_most(max)
    }
}

/// How a driver run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// The driver returned `Ok` before it was asked to stop.
    Returned,
    /// The driver returned an error before it was asked to stop.
    Failed(String),
    /// The driver panicked.
    Panicked(String),
    /// Nothing was committed for the quiet period; the driver was then asked to stop.
    Quiet,
    /// The time limit passed; the driver was then asked to stop.
    TimeLimit,
}

/// What one [`Harness::run`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// The driver's name.
    pub driver: String,
    /// How the run ended.
    pub end: RunEnd,
    /// What went wrong when the driver was asked to stop, if anything.
    pub stop_problem: Option<String>,
}

impl RunReport {
    /// Contract violations the run showed by itself, each with what to fix: a panic, an error on
    /// a healthy outbox, or not stopping when asked.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.end {
            RunEnd::Panicked(msg) => out.push(format!(
                "driver {:?} panicked: {msg}; a driver must never panic: return a DriverError, or \
                 dead-letter input it cannot parse with Ingest::dead_letter",
                self.driver
            )),
            RunEnd::Failed(msg) => out.push(format!(
                "driver {:?} stopped with an error although storage was healthy: {msg}; check \
                 that the factory's simulated device works, or return Ok once its input ends",
                self.driver
            )),
            RunEnd::Returned | RunEnd::Quiet | RunEnd::TimeLimit => {}
        }
        out.extend(self.stop_problem.clone());
        out
    }
}

/// A temporary outbox, an [`Ingest`], [`TechnicalAlarms`] and a shutdown switch: everything a
/// [`Driver`] needs to run in a test.
///
/// Create it inside a Tokio runtime (`#[tokio::test]`); the outbox lives in a temporary
/// directory that is removed when the harness is dropped or closed.
#[derive(Debug)]
pub struct Harness {
    /// Keeps the temporary directory (and so the database) alive as long as the harness.
    dir: tempfile::TempDir,
    /// The database file, for `stats` through an independent connection.
    path: PathBuf,
    /// Claims (for `records`), cursor reads and the commit signal for quiet detection.
    writer: OutboxWriter,
    /// The one route, which carries every category.
    route: RouteId,
    /// What drivers submit through.
    ingest: Ingest,
    /// Shared by every driver run on this harness, as in hearth, so edge triggering holds
    /// across driver restarts.
    technical: TechnicalAlarms,
    /// The switch behind `context()` and `stop()`.
    shutdown: watch::Sender<bool>,
    /// The writer thread, joined by `close`.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Harness {
    /// Open a fresh outbox in a temporary directory and start its writer thread.
    pub fn new() -> Result<Self, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("hearth-test-kit-")
            .tempdir()
            .map_err(HarnessError::TempDir)?;
        let path = dir.path().join("outbox.db");
        let route = RouteSpec {
            name: ROUTE.into(),
            categories: Category::ALL.to_vec(),
            retry: RetryPolicy::default(),
            readings_only: false,
            alarms_only: false,
        };
        let (outbox, _) = Outbox::open(OutboxOptions::new(&path, vec![route]))?;
        outbox
            .connection()
            .execute_batch(FAULT_SQL)
            .map_err(|e| HarnessError::FaultInjection(e.to_string()))?;
        let route = outbox.route(ROUTE)?;
        let (writer, thread) = OutboxWriter::spawn(outbox, 100)?;
        let ingest = Ingest::new(writer.clone());
        let technical = TechnicalAlarms::new(ingest.clone());
        let (shutdown, _) = watch::channel(false);
        Ok(Self {
            dir,
            path,
            writer,
            route,
            ingest,
            technical,
            shutdown,
            thread: Some(thread),
        })
    }

    /// The database file (read it with `sqlite3` when a test fails).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary directory holding the database.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The ingest handle.
    pub fn ingest(&self) -> Ingest {
        self.ingest.clone()
    }

    /// The technical-alarm handle.
    pub fn technical(&self) -> TechnicalAlarms {
        self.technical.clone()
    }

    /// A driver context on the harness's shutdown switch (see [`Harness::stop`]).
    pub fn context(&self) -> DriverContext {
        DriverContext::new(
            self.ingest.clone(),
            self.technical.clone(),
            self.shutdown.subscribe(),
        )
    }

    /// Flip the shutdown switch of every context from [`Harness::context`]: their
    /// `ctx.stopping()` resolves.
    pub fn stop(&self) {
        self.shutdown.send_replace(true);
    }

    /// What is committed, read through an independent read-only connection (so it shows what
    /// is durable, not what is queued). The kit's own fault switch is left out of `cursors`.
    pub fn stats(&self) -> Result<Stats, HarnessError> {
        let mut stats = hearth_outbox::stats(&self.path)?;
        stats.cursors.remove(FAULT_KEY);
        Ok(stats)
    }

    /// A committed cursor of a driver.
    pub async fn cursor(&self, key: &str) -> Result<Option<i64>, HarnessError> {
        Ok(self.writer.cursor(key).await?)
    }

    /// Every record stored, highest lane first: claimed from the route, then released again,
    /// so the outbox is as before. Call it between driver runs, not during one (releasing
    /// counts as activity for quiet detection).
    pub async fn records(&self) -> Result<Vec<Record>, HarnessError> {
        let mut out = Vec::new();
        let claimed = loop {
            match self.writer.claim(self.route, 1000).await {
                Ok(batch) if batch.is_empty() => break Ok(()),
                Ok(batch) => out.extend(batch.into_iter().map(|c| c.record)),
                Err(e) => break Err(e),
            }
        };
        // Release even after a failed claim, so that nothing stays in flight.
        let released = self.writer.release_in_flight(self.route).await;
        claimed?;
        released?;
        Ok(out)
    }

    /// Make storage fail (`true`) or work again (`false`). While failing, every transaction
    /// that stores a record or a dead letter fails with "disk full" and stores nothing; a
    /// submission of a cursor alone still commits, as a tiny write still fits on a nearly full
    /// disk.
    pub async fn set_storage_full(&self, full: bool) -> Result<(), HarnessError> {
        let want = i64::from(full);
        let mut last = String::from("no attempt");
        for _ in 0..200 {
            // The writer groups requests into one transaction, so this submission may share
            // (and fail with) a driver's failing batch: retry until the switch reads back.
            if let Err(e) = self
                .ingest
                .submit(Vec::new(), Some((FAULT_KEY.to_owned(), want)))
                .await
            {
                last = e.to_string();
            }
            if self.writer.cursor(FAULT_KEY).await? == Some(want) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Err(HarnessError::FaultInjection(format!(
            "the storage switch did not commit after 200 attempts; last error: {last}"
        )))
    }

    /// Start a driver on this harness with its own shutdown switch.
    pub fn spawn<D: Driver + 'static>(&self, driver: D) -> RunningDriver {
        let name = driver.name().to_owned();
        let (stop, stop_rx) = watch::channel(false);
        let ctx = DriverContext::new(self.ingest.clone(), self.technical.clone(), stop_rx);
        let task = tokio::spawn(async move {
            let mut driver = driver;
            driver.run(&ctx).await
        });
        RunningDriver {
            name,
            stop,
            task: Some(task),
        }
    }

    /// Run a driver until it returns, goes quiet, or reaches the limit; then ask it to stop
    /// and wait [`STOP_GRACE`] for it.
    pub async fn run<D: Driver + 'static>(
        &self,
        driver: D,
        limit: impl Into<RunLimit>,
    ) -> RunReport {
        let limit = limit.into();
        let mut running = self.spawn(driver);
        let mut progress = self.progress();
        let deadline = Instant::now() + limit.max;
        let end = match running.wait(&mut progress, limit.quiet, deadline).await {
            Wait::Finished(Ok(())) => RunEnd::Returned,
            Wait::Finished(Err(Exit::Error(e))) => RunEnd::Failed(e),
            Wait::Finished(Err(Exit::Panic(p))) => RunEnd::Panicked(p),
            Wait::Quiet => RunEnd::Quiet,
            Wait::Deadline => RunEnd::TimeLimit,
        };
        let driver = running.name.clone();
        let stop_problem = running.stop().await.err();
        RunReport {
            driver,
            end,
            stop_problem,
        }
    }

    /// Follow commits, for quiet detection.
    pub(crate) fn progress(&self) -> Progress {
        let mut commits = self.writer.commits();
        commits.borrow_and_update();
        Progress {
            commits,
            last: Instant::now(),
            writer: self.writer.clone(),
            route: self.route,
        }
    }

    /// Stop the writer thread and remove the temporary directory. Stop every driver first.
    pub async fn close(self) -> Result<(), HarnessError> {
        let Harness {
            dir,
            writer,
            ingest,
            technical,
            shutdown,
            thread,
            ..
        } = self;
        shutdown.send_replace(true);
        // The writer thread ends when its last handle is gone.
        drop((writer, ingest, technical));
        if let Some(thread) = thread {
            let joined = tokio::time::timeout(
                CLOSE_GRACE,
                tokio::task::spawn_blocking(move || thread.join()),
            )
            .await;
            if joined.is_err() {
                return Err(HarnessError::WriterStuck(CLOSE_GRACE));
            }
        }
        drop(dir);
        Ok(())
    }
}

/// Commits seen so far, for quiet detection across driver restarts.
#[derive(Debug)]
pub(crate) struct Progress {
    commits: watch::Receiver<u64>,
    /// When the last commit (or the start) was seen.
    last: Instant,
    /// For the probe that tells a quiet driver from a slow disk.
    writer: OutboxWriter,
    /// The route the probe settles nothing on.
    route: RouteId,
}

impl Progress {
    /// Whether the outbox is really quiet: a submission may be waiting behind a slow fsync
    /// (a loaded CI machine). An empty settlement is a write, so the writer answers it only
    /// after committing everything queued before it; if that committed records, it was not
    /// quiet. (It stores nothing and does not itself count as a commit of records.)
    async fn confirm_quiet(&mut self) -> bool {
        let _ = self.writer.settle(self.route, Vec::new()).await;
        if self.commits.has_changed().unwrap_or(false) {
            self.commits.borrow_and_update();
            self.last = Instant::now();
            false
        } else {
            true
        }
    }
}

/// Why a driver task ended on its own.
#[derive(Debug)]
pub(crate) enum Exit {
    /// It returned this error.
    Error(String),
    /// It panicked with this message.
    Panic(String),
}

/// What [`RunningDriver::wait`] saw first.
#[derive(Debug)]
pub(crate) enum Wait {
    /// The driver task ended.
    Finished(Result<(), Exit>),
    /// Nothing was committed for the quiet period.
    Quiet,
    /// The deadline passed.
    Deadline,
}

/// A driver started with [`Harness::spawn`].
#[derive(Debug)]
pub struct RunningDriver {
    /// For messages.
    name: String,
    /// This run's own shutdown switch.
    stop: watch::Sender<bool>,
    /// `None` once the task's end was observed (a finished handle must not be polled again).
    task: Option<JoinHandle<Result<(), DriverError>>>,
}

impl RunningDriver {
    /// The driver's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the driver task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Wait until the driver ends, nothing is committed for `quiet`, or `deadline`.
    pub(crate) async fn wait(
        &mut self,
        progress: &mut Progress,
        quiet: Option<Duration>,
        deadline: Instant,
    ) -> Wait {
        let Some(task) = self.task.as_mut() else {
            // Already ended: nothing more will happen.
            return Wait::Finished(Ok(()));
        };
        loop {
            let quiet_until = quiet.map(|q| progress.last + q);
            let quiet_timer = async {
                match quiet_until {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => pending::<()>().await,
                }
            };
            tokio::select! {
                joined = &mut *task => {
                    self.task = None;
                    return Wait::Finished(exit_of(joined));
                }
                _ = tokio::time::sleep_until(deadline) => return Wait::Deadline,
                _ = quiet_timer => {
                    if progress.confirm_quiet().await {
                        return Wait::Quiet;
                    }
                }
                changed = progress.commits.changed() => {
                    if changed.is_err() {
                        // The writer is gone: no commit will ever come again.
                        return Wait::Quiet;
                    }
                    progress.last = Instant::now();
                }
            }
        }
    }

    /// Ask the driver to stop and wait [`STOP_GRACE`] for it. `Err` describes a contract
    /// violation: it did not return in time (it is then aborted), returned an error, or
    /// panicked.
    pub async fn stop(mut self) -> Result<(), String> {
        self.stop.send_replace(true);
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        match tokio::time::timeout(STOP_GRACE, &mut task).await {
            Err(_) => {
                task.abort();
                Err(format!(
                    "driver {:?} did not return within {STOP_GRACE:?} after ctx.stopping() \
                     resolved; select on ctx.stopping() wherever the driver waits",
                    self.name
                ))
            }
            Ok(joined) => match exit_of(joined) {
                Ok(()) => Ok(()),
                Err(Exit::Error(e)) => Err(format!(
                    "driver {:?} returned an error when asked to stop: {e}; return Ok once \
                     ctx.stopping() resolves",
                    self.name
                )),
                Err(Exit::Panic(p)) => Err(format!(
                    "driver {:?} panicked when asked to stop: {p}; a driver must never panic",
                    self.name
                )),
            },
        }
    }
}

fn exit_of(joined: Result<Result<(), DriverError>, tokio::task::JoinError>) -> Result<(), Exit> {
    match joined {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Exit::Error(e.to_string())),
        Err(e) if e.is_panic() => Err(Exit::Panic(panic_message(e.into_panic().as_ref()))),
        Err(e) => Err(Exit::Error(format!("the driver task was cancelled: {e}"))),
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic with a non-text payload)".to_owned()
    }
}
