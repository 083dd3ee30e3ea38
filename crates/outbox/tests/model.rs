//! Model-based property test: random sequences of appends, claims, settlements, clock steps and
//! restarts (including restarts in the middle of a batch) run against the real SQLite outbox
//! and against a small in-memory model; after every step both must agree.
//!
//! Checks DESIGN invariants 2 (a record leaves a route only on that route's answer), 3 (claims
//! drain the highest lane first), 5 (a route never sees a category it does not carry) and 7
//! (restarts lose nothing and deliver nothing twice).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};

use common::*;
use hearth_model::*;
use hearth_outbox::*;
use proptest::prelude::*;

const ROUTES: [(&str, &[Category]); 3] = [
    ("a", &[Category::Health]),
    ("b", &[Category::Health, Category::Welfare]),
    ("c", &[Category::Administrative, Category::Welfare]),
];

#[derive(Debug, Clone)]
enum Op {
    /// Append records (kind, seq) in one batch; commit unless `crash`.
    Append(Vec<(u8, u8)>, bool),
    /// Claim up to n records on a route.
    Claim(usize, usize),
    /// Settle up to n in-flight records of a route with outcomes (0 delivered, 1 retry,
    /// 2 rejected); commit unless `crash`.
    Settle(usize, Vec<u8>, bool),
    /// Advance the clock.
    Tick(u32),
    /// Stop and reopen the outbox.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (proptest::collection::vec((0u8..4, 0u8..24), 1..12), proptest::bool::weighted(0.15))
            .prop_map(|(v, c)| Op::Append(v, c)),
        3 => (0usize..3, 1usize..8).prop_map(|(r, n)| Op::Claim(r, n)),
        3 => (0usize..3, proptest::collection::vec(0u8..3, 1..8), proptest::bool::weighted(0.15))
            .prop_map(|(r, o, c)| Op::Settle(r, o, c)),
        1 => (0u32..5000).prop_map(Op::Tick),
        1 => Just(Op::Restart),
    ]
}

fn make(kind: u8, seq: u8, now: i64) -> Record {
    match kind {
        0 => reading(u64::from(seq), Category::Health, now),
        1 => reading(1000 + u64::from(seq), Category::Welfare, now),
        2 => alarm(u64::from(seq), now),
        _ => Record::Technical(TechnicalAlarm::new(
            "model",
            TechnicalKind::LowBattery,
            Severity::Minor,
            AlarmState::Raised,
            "battery low",
            at(i64::from(seq)),
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum St {
    Pending { attempts: u32, next: i64 },
    InFlight { attempts: u32 },
}

#[derive(Debug, Clone)]
struct Item {
    order: u64,
    lane: Lane,
    category: Category,
    open: BTreeMap<usize, St>,
}

#[derive(Debug, Default, Clone)]
struct Model {
    items: HashMap<RecordId, Item>,
    next_order: u64,
    delivered: HashSet<(usize, RecordId)>,
}

fn routes() -> Vec<RouteSpec> {
    ROUTES.iter().map(|(n, c)| route(n, c)).collect()
}

fn policy() -> RetryPolicy {
    route("x", &[]).retry
}

fn check_agree(ob: &Outbox, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(ob.len(), model.items.len() as u64);
    for (r, (name, cats)) in ROUTES.iter().enumerate() {
        let id = ob
            .route(name)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let _ = id;
        let expected = model
            .items
            .values()
            .filter(|i| i.open.contains_key(&r))
            .count() as u64;
        let s = ob
            .stats(at(0))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got: u64 = s.routes.iter().find(|x| x.name == *name).map_or(0, |x| {
            x.lanes.iter().map(|(_, l)| l.pending + l.in_flight).sum()
        });
        prop_assert_eq!(got, expected, "open deliveries of route {}", name);
        for i in model.items.values() {
            if i.open.contains_key(&r) {
                prop_assert!(cats.contains(&i.category), "invariant 5");
            }
        }
    }
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let path = dir.path().join("outbox.db");
    let mut ob = open(&path, routes());
    let mut model = Model::default();
    let mut now: i64 = 1_000_000;
    let mut in_flight: Vec<Vec<(Ticket, RecordId)>> = vec![Vec::new(); 3];
    let pol = policy();

    for op in ops {
        match op {
            Op::Append(recs, crash) => {
                let mut staged = model.clone();
                let mut b = ob.batch().map_err(|e| TestCaseError::fail(e.to_string()))?;
                for (k, s) in recs {
                    let rec = make(k, s, now);
                    let out = b
                        .append(&rec, at(now))
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    let exists = staged.items.contains_key(&rec.id());
                    prop_assert_eq!(out == AppendOutcome::Duplicate, exists);
                    if !exists {
                        // Once a record has left the outbox, the same id may be stored again
                        // (a device re-sent it later): deduplication spans the stored records;
                        // beyond that the receivers' conditional create takes over.
                        staged.delivered.retain(|(_, id)| *id != rec.id());
                        let open: BTreeMap<usize, St> = ROUTES
                            .iter()
                            .enumerate()
                            .filter(|(_, (_, c))| c.contains(&rec.category()))
                            .map(|(i, _)| {
                                (
                                    i,
                                    St::Pending {
                                        attempts: 0,
                                        next: now,
                                    },
                                )
                            })
                            .collect();
                        staged.items.insert(
                            rec.id(),
                            Item {
                                order: staged.next_order,
                                lane: rec.lane(),
                                category: rec.category(),
                                open,
                            },
                        );
                        staged.next_order += 1;
                    }
                }
                if crash {
                    drop(b);
                    drop(ob);
                    ob = open(&path, routes());
                    in_flight.iter_mut().for_each(Vec::clear);
                    release_all(&mut model);
                } else {
                    b.commit().map_err(|e| TestCaseError::fail(e.to_string()))?;
                    model = staged;
                }
            }
            Op::Claim(r, n) => {
                let id = ob
                    .route(ROUTES[r].0)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let mut expected: Vec<(Lane, u64, RecordId)> = model
                    .items
                    .iter()
                    .filter_map(|(rid, i)| match i.open.get(&r) {
                        Some(St::Pending { next, .. }) if *next <= now => {
                            Some((i.lane, i.order, *rid))
                        }
                        _ => None,
                    })
                    .collect();
                expected.sort();
                expected.truncate(n);
                let mut b = ob.batch().map_err(|e| TestCaseError::fail(e.to_string()))?;
                let got = b
                    .claim(id, n, at(now))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                b.commit().map_err(|e| TestCaseError::fail(e.to_string()))?;
                let got_ids: Vec<RecordId> = got.iter().map(|c| c.record.id()).collect();
                let exp_ids: Vec<RecordId> = expected.iter().map(|e| e.2).collect();
                prop_assert_eq!(&got_ids, &exp_ids, "claim order (invariant 3)");
                for c in got {
                    let rid = c.record.id();
                    prop_assert!(ROUTES[r].1.contains(&c.record.category()), "invariant 5");
                    prop_assert!(
                        !model.delivered.contains(&(r, rid)),
                        "claimed after delivery"
                    );
                    let item = model
                        .items
                        .get_mut(&rid)
                        .ok_or_else(|| TestCaseError::fail("unknown record"))?;
                    let attempts = match item.open.get(&r) {
                        Some(St::Pending { attempts, .. }) => *attempts,
                        other => {
                            return Err(TestCaseError::fail(format!(
                                "claimed non-pending {other:?}"
                            )));
                        }
                    };
                    prop_assert_eq!(c.attempts, attempts);
                    item.open.insert(r, St::InFlight { attempts });
                    in_flight[r].push((c.ticket, rid));
                }
            }
            Op::Settle(r, outcomes, crash) => {
                let id = ob
                    .route(ROUTES[r].0)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let k = outcomes.len().min(in_flight[r].len());
                let taken: Vec<(Ticket, RecordId)> = in_flight[r].drain(..k).collect();
                let answers: Vec<(Ticket, Outcome)> = taken
                    .iter()
                    .zip(&outcomes)
                    .map(|((t, _), o)| {
                        (
                            *t,
                            match o {
                                0 => Outcome::Delivered,
                                1 => Outcome::Retry { not_before: None },
                                _ => Outcome::Rejected {
                                    reason: "no".into(),
                                },
                            },
                        )
                    })
                    .collect();
                let mut b = ob.batch().map_err(|e| TestCaseError::fail(e.to_string()))?;
                b.settle(id, &answers, at(now))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                if crash {
                    drop(b);
                    drop(ob);
                    ob = open(&path, routes());
                    in_flight.iter_mut().for_each(Vec::clear);
                    release_all(&mut model);
                    continue;
                }
                b.commit().map_err(|e| TestCaseError::fail(e.to_string()))?;
                for ((_, rid), o) in taken.iter().zip(&outcomes) {
                    let item = model
                        .items
                        .get_mut(rid)
                        .ok_or_else(|| TestCaseError::fail("unknown"))?;
                    let attempts = match item.open.get(&r) {
                        Some(St::InFlight { attempts }) => *attempts,
                        other => {
                            return Err(TestCaseError::fail(format!(
                                "settled non-in-flight {other:?}"
                            )));
                        }
                    };
                    match o {
                        0 | 2 => {
                            item.open.remove(&r);
                            if *o == 0 {
                                prop_assert!(model.delivered.insert((r, *rid)), "delivered twice");
                            }
                        }
                        _ => {
                            let a = attempts + 1;
                            let next = now + pol.base_delay(a).as_millis() as i64;
                            item.open.insert(r, St::Pending { attempts: a, next });
                        }
                    }
                    if item.open.is_empty() {
                        model.items.remove(rid);
                    }
                }
            }
            Op::Tick(ms) => now += i64::from(ms),
            Op::Restart => {
                drop(ob);
                ob = open(&path, routes());
                in_flight.iter_mut().for_each(Vec::clear);
                release_all(&mut model);
            }
        }
        check_agree(&ob, &model)?;
    }
    Ok(())
}

fn release_all(model: &mut Model) {
    for item in model.items.values_mut() {
        for st in item.open.values_mut() {
            if let St::InFlight { attempts } = *st {
                // A restart makes in-flight deliveries due again at once; attempts are kept.
                *st = St::Pending {
                    attempts,
                    next: i64::MIN,
                };
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn outbox_agrees_with_the_model_through_crashes_and_restarts(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
