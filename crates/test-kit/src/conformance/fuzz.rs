//! Check: a decoder never panics on input (DESIGN invariant 6).

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRng, TestRunner};

use crate::harness::panic_message;
use crate::{Check, ConformanceError};

/// How hard [`check_no_panic_on_input_with`] tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuzzOptions {
    /// Random inputs tried: arbitrary bytes, and random multi-byte edits of the samples.
    pub cases: u32,
    /// Longest arbitrary input, in bytes.
    pub max_len: usize,
    /// Use a fixed seed, so that a failure shows again on every run and in CI.
    pub deterministic: bool,
}

impl Default for FuzzOptions {
    /// 2048 cases of up to 256 bytes, fixed seed.
    fn default() -> Self {
        Self {
            cases: 2048,
            max_len: 256,
            deterministic: true,
        }
    }
}

/// Single-byte mutations are tried exhaustively (every position × every byte value) up to this
/// many per sample; longer samples get a set of interesting byte values per position instead.
const EXHAUSTIVE_MUTATIONS: usize = 1 << 16;

/// Feed `decode` the samples, every truncation of each, every single-byte mutation of each,
/// and [`FuzzOptions::default`] random inputs (arbitrary byte vectors of 0..256 bytes and random
/// edits of the samples). Any panic fails the check, with the (shrunk) input in hex and the
/// panic message; returning an error is fine, that is what a decoder should do.
pub fn check_no_panic_on_input<T, E>(
    decode: impl Fn(&[u8]) -> Result<T, E>,
    samples: &[&[u8]],
) -> Result<(), ConformanceError> {
    check_no_panic_on_input_with(decode, samples, FuzzOptions::default())
}

/// [`check_no_panic_on_input`], panicking with the input in hex (for tests).
#[track_caller]
pub fn assert_no_panic_on_input<T, E>(decode: impl Fn(&[u8]) -> Result<T, E>, samples: &[&[u8]]) {
    if let Err(e) = check_no_panic_on_input(decode, samples) {
        panic!("{e}");
    }
}

/// [`check_no_panic_on_input`] with explicit options.
pub fn check_no_panic_on_input_with<T, E>(
    decode: impl Fn(&[u8]) -> Result<T, E>,
    samples: &[&[u8]],
    options: FuzzOptions,
) -> Result<(), ConformanceError> {
    let _quiet = QuietPanics::new();
    let attempt = |bytes: &[u8]| -> Result<(), String> {
        LAST_LOCATION.with(|l| l.borrow_mut().take());
        catch_unwind(AssertUnwindSafe(|| {
            let _ = decode(bytes);
        }))
        .map_err(|payload| {
            let message = panic_message(payload.as_ref());
            match LAST_LOCATION.with(|l| l.borrow_mut().take()) {
                Some(at) => format!("{message} (at {at})"),
                None => message,
            }
        })
    };
    let fail = |bytes: &[u8], origin: &str, message: &str| {
        Err(ConformanceError::new(
            Check::NoPanicOnInput,
            vec![format!(
                "the decoder panicked on input {} ({} bytes, hex; {origin}): {message}; a decoder \
                 must return an error for truncated or malformed input: check lengths before \
                 indexing and use checked arithmetic",
                hex(bytes),
                bytes.len()
            )],
        ))
    };

    for (n, sample) in samples.iter().enumerate() {
        // Shortest first, so that the first failure is the shortest truncation.
        for len in 0..=sample.len() {
            if let Err(m) = attempt(&sample[..len]) {
                let origin = if len == sample.len() {
                    format!("sample #{n} itself")
                } else {
                    format!("sample #{n} truncated to {len} bytes")
                };
                return fail(&sample[..len], &origin, &m);
            }
        }
        let values: Vec<u8> = if sample.len().saturating_mul(255) <= EXHAUSTIVE_MUTATIONS {
            (0..=255).collect()
        } else {
            vec![0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff]
        };
        let mut mutated = sample.to_vec();
        for pos in 0..sample.len() {
            let original = sample[pos];
            let flips = (0..8).map(|bit| original ^ (1 << bit));
            for value in values.iter().copied().chain(flips) {
                if value == original {
                    continue;
                }
                mutated[pos] = value;
                if let Err(m) = attempt(&mutated) {
                    let origin = format!(
                        "sample #{n} with byte {pos} changed from {original:#04x} to {value:#04x}"
                    );
                    return fail(&mutated, &origin, &m);
                }
            }
            mutated[pos] = original;
        }
    }

    let config = Config {
        cases: options.cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = if options.deterministic {
        let rng = TestRng::deterministic_rng(config.rng_algorithm);
        TestRunner::new_with_rng(config, rng)
    } else {
        TestRunner::new(config)
    };
    let arbitrary = prop::collection::vec(any::<u8>(), 0..=options.max_len).boxed();
    let strategy = if samples.is_empty() {
        arbitrary
    } else {
        let owned: Vec<Vec<u8>> = samples.iter().map(|s| s.to_vec()).collect();
        let edited = (
            prop::sample::select(owned),
            prop::collection::vec((any::<Index>(), any::<u8>()), 1..8),
            prop::option::of(any::<Index>()),
            prop::collection::vec(any::<u8>(), 0..8),
        )
            .prop_map(|(mut bytes, edits, cut, tail)| {
                for (at, value) in edits {
                    if !bytes.is_empty() {
                        let i = at.index(bytes.len());
                        bytes[i] = value;
                    }
                }
                if let Some(cut) = cut {
                    let len = cut.index(bytes.len() + 1);
                    bytes.truncate(len);
                }
                bytes.extend(tail);
                bytes
            })
            .boxed();
        prop_oneof![arbitrary, edited].boxed()
    };
    match runner.run(&strategy, |bytes| {
        attempt(&bytes).map_err(TestCaseError::fail)
    }) {
        Ok(()) => Ok(()),
        Err(TestError::Fail(reason, bytes)) => {
            fail(&bytes, "random input, shrunk", &reason.to_string())
        }
        Err(TestError::Abort(reason)) => Err(ConformanceError::new(
            Check::NoPanicOnInput,
            vec![format!(
                "the conformance kit could not run the fuzz cases: {reason}"
            )],
        )),
    }
}

/// Lowercase hex without separators (what `hearth ble decode --hex` takes).
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

thread_local! {
    /// Whether panics on this thread are expected (the check catches them and reports them).
    static QUIET: Cell<bool> = const { Cell::new(false) };
    /// Where the last expected panic happened, recorded by the hook.
    static LAST_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// While alive, panics on this thread are not printed (a failing decoder panics once per
/// shrinking step); the hook only records where they happened. Panics on other threads, and
/// on this one afterwards, go to the previous hook as before.
struct QuietPanics {
    was: bool,
}

impl QuietPanics {
    fn new() -> Self {
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if QUIET.with(Cell::get) {
                    let at = info.location().map(|l| l.to_string());
                    LAST_LOCATION.with(|l| *l.borrow_mut() = at);
                } else {
                    previous(info);
                }
            }));
        });
        Self {
            was: QUIET.with(|q| q.replace(true)),
        }
    }
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        QUIET.with(|q| q.set(self.was));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_without_separators() {
        assert_eq!(hex(&[0x00, 0xab, 0x1f]), "00ab1f");
        assert_eq!(hex(&[]), "");
    }
}
