//! Property tests: arbitrary readings encode (or fail with a typed error) to valid JSON with the
//! PHD elements; arbitrary replies never panic the response parser.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use hearth_model::*;
use hearth_uplink_fhir::*;
use proptest::prelude::*;

fn absent() -> impl Strategy<Value = AbsentReason> {
    proptest::sample::select(AbsentReason::ALL.to_vec())
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-100_000i64..100_000, 0u8..4).prop_map(|(m, d)| m as f64 / 10f64.powi(i32::from(d))),
        proptest::num::f64::NORMAL | proptest::num::f64::ZERO | proptest::num::f64::SUBNORMAL,
    ]
}

fn scalar() -> impl Strategy<Value = hearth_model::Value> {
    prop_oneof![
        (finite(), proptest::option::of(0u8..8))
            .prop_map(|(value, decimals)| hearth_model::Value::Numeric { value, decimals }),
        absent().prop_map(hearth_model::Value::Absent),
    ]
}

fn value() -> impl Strategy<Value = hearth_model::Value> {
    prop_oneof![
        4 => scalar(),
        2 => proptest::collection::vec(
            (prop_oneof![Just(150021u32), Just(150022), Just(150023), 1u32..10_000_000], scalar()),
            1..4
        )
        .prop_map(|cs| hearth_model::Value::Compound(
            cs.into_iter().map(|(m, value)| Component { mdc: Mdc(m), value }).collect()
        )),
        1 => any::<u32>().prop_map(|c| hearth_model::Value::Enumerated(Enumerated::Code(Mdc(c)))),
        1 => "\\PC{0,20}".prop_map(|s| hearth_model::Value::Enumerated(Enumerated::Text(s))),
        1 => any::<u16>().prop_map(|b| hearth_model::Value::Enumerated(Enumerated::Bits {
            bits: u32::from(b),
            width: 16
        })),
    ]
}

fn device() -> impl Strategy<Value = DeviceId> {
    prop_oneof![
        "[0-9a-f]{16}".prop_map(|v| DeviceId::new("ble", &v).unwrap()),
        "[0-9a-f]{16}".prop_map(|v| DeviceId::new("z2m", &format!("0x{v}")).unwrap()),
        "[!-~]{1,20}".prop_map(|v| DeviceId::new("ext", &v).unwrap()),
    ]
}

prop_compose! {
    fn reading()(
        dev in device(),
        mdc in prop_oneof![Just(150020u32), Just(150364), Just(150456), Just(160184), Just(150604), Just(8410608), 1u32..10_000_000],
        value in value(),
        unit in prop_oneof![Just("mm[Hg]"), Just("Cel"), Just("%"), Just("mg/dL"), Just("/min")],
        time in proptest::option::of(-62_135_596_800_000i64..253_402_300_799_999),
        seq in proptest::option::of(any::<u64>()),
        clock_unset in any::<bool>(),
        person in proptest::option::of(prop_oneof![
            "[A-Za-z0-9.-]{1,64}".prop_map(|id| format!("Patient/{id}")),
            "[0-9]{11}".prop_map(|v| format!("urn:oid:2.16.578.1.12.4.1.4.1|{v}")),
        ]),
    ) -> Record {
        let mut b = Reading::builder(dev, Mdc(mdc), value)
            .unit(Ucum::new(unit))
            .flags(ReadingFlags { device_clock_unset: clock_unset, stored_record: false });
        if let Some(t) = time { b = b.device_time(Timestamp::from_unix_millis(t)); }
        if let Some(s) = seq { b = b.sequence(s); }
        if let Some(p) = person { b = b.person(PersonRef::new(p)); }
        Record::Reading(b.build(Timestamp::from_unix_millis(common::T0)))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_readings_encode_to_valid_phd_json(mut records in proptest::collection::vec(reading(), 1..8)) {
        let mut seen = std::collections::BTreeSet::new();
        records.retain(|r| seen.insert(r.id()));
        let mut ctx = common::context();
        ctx.options.unsupported = Unsupported::Skip;
        let bundle = encode_bundle(&records, &ctx, Profile::Phd).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bundle.to_json_bytes()).unwrap();
        let problems = check::phd_problems(&v);
        prop_assert!(problems.is_empty(), "{:#?}", problems);
        let observations = bundle.entries().iter().filter(|e| matches!(e, EntryRole::Observation(_))).count();
        prop_assert_eq!(observations + bundle.skipped().len(), records.len());
        prop_assert_eq!(v["entry"].as_array().map_or(0, Vec::len), bundle.len());
    }

    #[test]
    fn arbitrary_readings_encode_to_valid_national_json(mut records in proptest::collection::vec(reading(), 1..8), pmd in any::<bool>()) {
        let mut seen = std::collections::BTreeSet::new();
        records.retain(|r| seen.insert(r.id()));
        let mut ctx = common::national_context();
        ctx.options.unsupported = Unsupported::Skip;
        let profile = if pmd { Profile::Pmd } else { Profile::Vkp };
        match encode_bundle(&records, &ctx, profile) {
            Ok(bundle) => {
                let v: serde_json::Value = serde_json::from_slice(&bundle.to_json_bytes()).unwrap();
                let problems = if pmd { check::pmd_problems(&v) } else { check::vkp_problems(&v) };
                prop_assert!(problems.is_empty(), "{:#?}", problems);
                prop_assert_eq!(bundle.len() + bundle.skipped().len(), records.len());
            }
            // A reading's own person that is not a national id, or a time FHIR cannot write.
            Err(e) => prop_assert!(
                matches!(e, EncodeError::NotNationalId { .. } | EncodeError::TimeOutOfRange { .. }
                    | EncodeError::NonFinite { .. }),
                "{}", e
            ),
        }
    }

    #[test]
    fn response_parser_never_panics_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..256), sent in 0usize..5) {
        let _ = parse_transaction_response(&body, sent);
    }

    #[test]
    fn response_parser_never_panics_on_json(
        status in prop_oneof![Just("201 Created".to_owned()), "[0-9]{0,4}[ A-Za-z]{0,8}", "\\PC{0,8}"],
        rt in prop_oneof![Just("Bundle"), Just("OperationOutcome"), Just("Patient"), Just("")],
        ty in prop_oneof![Just("transaction-response"), Just("batch-response"), Just("x")],
        n in 0usize..4,
        expr in "\\PC{0,30}",
        sent in 0usize..4,
    ) {
        let entries: Vec<_> = (0..n).map(|i| if i % 2 == 0 {
            serde_json::json!({"response": {"status": status, "outcome": {"issue": [{"diagnostics": expr}]}}})
        } else {
            serde_json::json!({"response": {"status": 5}})
        }).collect();
        let body = serde_json::json!({"resourceType": rt, "type": ty, "entry": entries,
            "issue": [{"code": "processing", "expression": [expr.clone(), format!("Bundle.entry[{expr}]")]}]});
        let _ = parse_transaction_response(body.to_string().as_bytes(), sent);
    }
}
