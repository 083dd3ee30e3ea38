//! All four checks in one call, with a summary.

use std::fmt;

use super::DriverFactory;

use super::ack::ack_against;
use super::fuzz::{FuzzOptions, check_no_panic_on_input_with};
use super::ids::compare_runs;
use super::live::LiveData;
use super::observe;
use super::readings::readings_of_run;
use crate::{Check, ConformanceError, RunLimit};

/// A decoder with its result erased (the no-panic check only cares whether it returns).
type ErasedDecoder = Box<dyn Fn(&[u8]) -> Result<(), ()> + Send + Sync>;

/// A decoder to fuzz, with valid samples to truncate and mutate.
struct DecoderUnderTest {
    name: String,
    decode: ErasedDecoder,
    samples: Vec<Vec<u8>>,
}

impl fmt::Debug for DecoderUnderTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecoderUnderTest")
            .field("name", &self.name)
            .field("samples", &self.samples.len())
            .finish_non_exhaustive()
    }
}

/// Every conformance check for one driver (and its decoders), run with [`Conformance::run`].
///
/// ```no_run
/// use std::time::Duration;
/// use hearth_driver_simulated::{Simulated, SimulatedSettings};
/// use hearth_test_kit::RunLimit;
/// use hearth_test_kit::conformance::Conformance;
///
/// fn decode(bytes: &[u8]) -> Result<u8, String> {
///     bytes.first().copied().ok_or_else(|| "empty value".to_owned())
/// }
///
/// # async fn example(settings: SimulatedSettings) {
/// let summary = Conformance::new(move || Simulated::new(settings.clone()).unwrap())
///     .limit(RunLimit::until_quiet(Duration::from_millis(300), Duration::from_secs(20)))
///     .decoder("first byte", decode, &[&[0x2a]])
///     .run()
///     .await;
/// summary.assert_passed();
/// # }
/// ```
pub struct Conformance<F> {
    make: F,
    limit: RunLimit,
    decoders: Vec<DecoderUnderTest>,
    fuzz: FuzzOptions,
    live: LiveData,
}

impl<F> fmt::Debug for Conformance<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conformance")
            .field("limit", &self.limit)
            .field("decoders", &self.decoders)
            .field("fuzz", &self.fuzz)
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

impl<F> Conformance<F> {
    /// Check the drivers `make` builds, with the default [`RunLimit`] and no decoder.
    pub fn new(make: F) -> Self {
        Self {
            make,
            limit: RunLimit::default(),
            decoders: Vec::new(),
            fuzz: FuzzOptions::default(),
            live: LiveData::none(),
        }
    }

    /// Declare the records `matches` selects as live data, with `why` they carry neither a
    /// device time nor a sequence number (see [`LiveData`]): the ids and ack checks then match
    /// them by content instead of by id, and fail if one of them is not live after all.
    pub fn live(
        mut self,
        why: impl Into<String>,
        matches: impl Fn(&hearth_model::Record) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.live = self.live.declare(why, matches);
        self
    }

    /// How long each driver run may last.
    pub fn limit(mut self, limit: impl Into<RunLimit>) -> Self {
        self.limit = limit.into();
        self
    }

    /// How hard the no-panic check tries.
    pub fn fuzz_options(mut self, options: FuzzOptions) -> Self {
        self.fuzz = options;
        self
    }

    /// Add a decoder for the no-panic check, with valid samples of its input.
    pub fn decoder<T, E>(
        mut self,
        name: impl Into<String>,
        decode: impl Fn(&[u8]) -> Result<T, E> + Send + Sync + 'static,
        samples: &[&[u8]],
    ) -> Self {
        self.decoders.push(DecoderUnderTest {
            name: name.into(),
            decode: Box::new(move |b| decode(b).map(|_| ()).map_err(|_| ())),
            samples: samples.iter().map(|s| s.to_vec()).collect(),
        });
        self
    }
}

impl<F> Conformance<F>
where
    F: DriverFactory,
{
    /// Run every check. Two driver runs are shared by the readings, ids and ack checks; the
    /// ack check adds three phases of its own.
    pub async fn run(mut self) -> Summary {
        let mut summary = Summary::default();
        let first = observe(&mut self.make, self.limit).await;
        let second = observe(&mut self.make, self.limit).await;
        let kit = |check, p: &String| Err(ConformanceError::new(check, vec![p.clone()]));
        let (readings, ids, ack) = match (&first, &second) {
            (Ok(a), Ok(b)) => (
                readings_of_run(a, self.limit),
                compare_runs(a, b, self.limit, &self.live),
                ack_against(&mut self.make, a, self.limit, &self.live).await,
            ),
            (Err(p), _) | (_, Err(p)) => (
                kit(Check::ReadingsValid, p),
                kit(Check::IdsDeterministic, p),
                kit(Check::AckAfterCommit, p),
            ),
        };
        summary.push(Check::ReadingsValid, None, readings);
        summary.push(Check::IdsDeterministic, None, ids);
        if self.decoders.is_empty() {
            summary.skipped.push((
                Check::NoPanicOnInput,
                "no decoder given; add each of the driver's decoders with .decoder(name, fn, \
                 samples)"
                    .to_owned(),
            ));
        }
        for d in &self.decoders {
            let samples: Vec<&[u8]> = d.samples.iter().map(Vec::as_slice).collect();
            let result =
                check_no_panic_on_input_with(&d.decode, &samples, self.fuzz).map_err(|mut e| {
                    for p in &mut e.problems {
                        *p = format!("decoder {:?}: {p}", d.name);
                    }
                    e
                });
            summary.push(Check::NoPanicOnInput, Some(d.name.clone()), result);
        }
        summary.push(Check::AckAfterCommit, None, ack);
        summary
    }
}

/// Run all four checks on the drivers `make` builds and on one decoder with its valid samples.
/// For several decoders, or none, use [`Conformance`].
pub async fn run_all<F, T, E>(
    make: F,
    limit: impl Into<RunLimit>,
    decode: impl Fn(&[u8]) -> Result<T, E> + Send + Sync + 'static,
    samples: &[&[u8]],
) -> Summary
where
    F: DriverFactory,
{
    Conformance::new(make)
        .limit(limit)
        .decoder("decoder", decode, samples)
        .run()
        .await
}

/// The result of one check in a [`Summary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Which check.
    pub check: Check,
    /// What it ran on, when a check runs more than once (the decoder's name).
    pub subject: Option<String>,
    /// Passed, or what it found.
    pub result: Result<(), ConformanceError>,
}

/// What [`Conformance::run`] and [`run_all`] found. Its `Display` is the report to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// One outcome per check run, in the order of [`Check::ALL`].
    pub outcomes: Vec<CheckOutcome>,
    /// Checks not run, with why.
    pub skipped: Vec<(Check, String)>,
}

impl Summary {
    fn push(
        &mut self,
        check: Check,
        subject: Option<String>,
        result: Result<(), ConformanceError>,
    ) {
        self.outcomes.push(CheckOutcome {
            check,
            subject,
            result,
        });
    }

    /// Whether every check that ran passed.
    pub fn passed(&self) -> bool {
        self.outcomes.iter().all(|o| o.result.is_ok())
    }

    /// The failures.
    pub fn failures(&self) -> impl Iterator<Item = &ConformanceError> {
        self.outcomes.iter().filter_map(|o| o.result.as_ref().err())
    }

    /// The first outcome of a check, if it ran.
    pub fn outcome(&self, check: Check) -> Option<&Result<(), ConformanceError>> {
        self.outcomes
            .iter()
            .find(|o| o.check == check)
            .map(|o| &o.result)
    }

    /// `Ok` if every check passed, else every failure.
    pub fn into_result(self) -> Result<(), Vec<ConformanceError>> {
        let failures: Vec<_> = self
            .outcomes
            .into_iter()
            .filter_map(|o| o.result.err())
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures)
        }
    }

    /// Panic with the report unless every check passed (for tests).
    #[track_caller]
    pub fn assert_passed(&self) {
        assert!(self.passed(), "{self}");
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let passed = self.outcomes.iter().filter(|o| o.result.is_ok()).count();
        write!(
            f,
            "hearth driver conformance: {passed} of {} checks passed",
            self.outcomes.len()
        )?;
        for o in &self.outcomes {
            let mark = if o.result.is_ok() { "pass" } else { "FAIL" };
            write!(f, "\n  {mark}  {}", o.check)?;
            if let Some(s) = &o.subject {
                write!(f, " ({s})")?;
            }
        }
        for (check, why) in &self.skipped {
            write!(f, "\n  skip  {check}: {why}")?;
        }
        for e in self.failures() {
            write!(f, "\n\n{e}")?;
        }
        Ok(())
    }
}
