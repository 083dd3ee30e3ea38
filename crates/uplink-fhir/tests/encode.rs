//! Behaviour of `encode_bundle` beyond the golden files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use hearth_model::*;
use hearth_uplink_fhir::*;
use serde_json::Value as J;

fn encode(records: &[Record], ctx: &Context) -> J {
    let b = encode_bundle(records, ctx, Profile::Phd).unwrap();
    serde_json::from_slice(&b.to_json_bytes()).unwrap()
}

fn temp(v: hearth_model::Value) -> Record {
    common::build(common::reading(
        common::ble("0011223344556677"),
        150364,
        v,
        Some("Cel"),
    ))
}

fn alarm() -> Record {
    let t = Timestamp::from_unix_millis(common::T0);
    Record::Alarm(Alarm::new(
        DeviceId::new("z2m", "0x00158d0001a2b3c4").unwrap(),
        AlarmKind::Fall,
        AlarmState::Raised,
        t,
        t,
        Category::Health,
        None,
        None,
    ))
}

fn technical() -> Record {
    let t = Timestamp::from_unix_millis(common::T0);
    Record::Technical(TechnicalAlarm::new(
        "ble",
        TechnicalKind::LowBattery,
        Severity::Warning,
        AlarmState::Raised,
        "battery low",
        t,
    ))
}

#[test]
fn every_entry_is_a_conditional_create_on_its_identifier() {
    let ctx = common::context();
    for (name, records) in common::cases() {
        let v = encode(&records, &ctx);
        for e in v["entry"].as_array().unwrap() {
            let r = &e["resource"];
            let id = &r["identifier"][0];
            let (system, value) = (
                id["system"].as_str().unwrap(),
                id["value"].as_str().unwrap(),
            );
            assert_eq!(e["request"]["method"], "POST", "{name}");
            assert_eq!(e["request"]["url"], r["resourceType"], "{name}");
            assert_eq!(
                e["request"]["ifNoneExist"].as_str().unwrap(),
                if_none_exist(system, value),
                "{name}: ifNoneExist must search the first identifier"
            );
        }
        // Observation identifier and fullUrl are the record id.
        for (rec, e) in records.iter().zip(
            v["entry"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["resource"]["resourceType"] == "Observation"),
        ) {
            assert_eq!(e["fullUrl"], rec.id().urn());
            assert_eq!(
                e["resource"]["identifier"][0]["system"],
                "urn:ietf:rfc:3986"
            );
            assert_eq!(e["resource"]["identifier"][0]["value"], rec.id().urn());
        }
    }
}

#[test]
fn a_resend_is_byte_identical_even_when_received_later() {
    let ctx = common::context();
    let b = common::reading(
        common::ble("0011223344556677"),
        150364,
        hearth_model::Value::numeric(36.6),
        Some("Cel"),
    );
    let first = Record::Reading(b.clone().build(Timestamp::from_unix_millis(common::T0 + 1)));
    let again = Record::Reading(b.build(Timestamp::from_unix_millis(common::T0 + 86_400_000)));
    assert_eq!(
        encode_bundle(&[first], &ctx, Profile::Phd)
            .unwrap()
            .to_json_bytes(),
        encode_bundle(&[again], &ctx, Profile::Phd)
            .unwrap()
            .to_json_bytes()
    );
}

#[test]
fn absent_values_become_data_absent_reasons() {
    let ctx = common::context();
    for (reason, code) in [
        (AbsentReason::NotANumber, "not-a-number"),
        (AbsentReason::NotAtThisResolution, "error"),
        (AbsentReason::PositiveInfinity, "positive-infinity"),
        (AbsentReason::NegativeInfinity, "negative-infinity"),
        (AbsentReason::Reserved, "error"),
        (AbsentReason::Error, "error"),
        (AbsentReason::Unknown, "unknown"),
    ] {
        let v = encode(&[temp(hearth_model::Value::Absent(reason))], &ctx);
        let obs = &v["entry"][2]["resource"];
        assert!(obs.get("valueQuantity").is_none());
        assert_eq!(obs["dataAbsentReason"]["coding"][0]["code"], code);
        assert_eq!(
            obs["dataAbsentReason"]["coding"][0]["system"],
            "http://terminology.hl7.org/CodeSystem/data-absent-reason"
        );
    }
}

#[test]
fn decimals_are_printed_as_the_device_resolved_them() {
    let ctx = common::context();
    let b = encode_bundle(
        &[temp(hearth_model::Value::numeric_with_decimals(37.0, 2))],
        &ctx,
        Profile::Phd,
    )
    .unwrap();
    let body = String::from_utf8(b.to_json_bytes()).unwrap();
    assert!(
        body.contains(r#""valueQuantity":{"value":37.00,"unit":"Cel""#),
        "{body}"
    );
}

#[test]
fn non_finite_numbers_are_refused() {
    let ctx = common::context();
    for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let r = common::build(
            common::reading(
                common::ble("0011223344556677"),
                150364,
                hearth_model::Value::numeric(x),
                Some("Cel"),
            )
            .sequence(9),
        );
        let err = encode_bundle(
            &[temp(hearth_model::Value::numeric(1.0)), r.clone()],
            &ctx,
            Profile::Phd,
        )
        .unwrap_err();
        assert!(
            matches!(err, EncodeError::NonFinite { index: 1, .. }),
            "{err:?}"
        );
        assert_eq!(err.record(), Some((1, r.id())));
    }
}

#[test]
fn alarms_are_refused_or_skipped() {
    let mut ctx = common::context();
    let reading = temp(hearth_model::Value::numeric(36.6));
    let records = [reading.clone(), alarm(), technical()];
    let err = encode_bundle(&records, &ctx, Profile::Phd).unwrap_err();
    assert!(
        matches!(
            err,
            EncodeError::NotAnObservation {
                index: 1,
                kind: "safety alarm",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("SCAIP"));

    ctx.options.unsupported = Unsupported::Skip;
    let b = encode_bundle(&records, &ctx, Profile::Phd).unwrap();
    assert_eq!(
        b.entries().last(),
        Some(&EntryRole::Observation(reading.id()))
    );
    let skipped: Vec<_> = b.skipped().iter().map(|s| (s.index, s.record)).collect();
    assert_eq!(skipped, vec![(1, records[1].id()), (2, records[2].id())]);
    assert!(b.skipped()[1].reason.contains("technical alarm"));

    // Only alarms: nothing to send, not even devices.
    let b = encode_bundle(&records[1..], &ctx, Profile::Phd).unwrap();
    assert!(b.is_empty());
}

#[test]
fn unmapped_bits_are_refused_or_skipped() {
    let mut ctx = common::context();
    let cgm = common::build(common::reading(
        common::ble("0011223344556677"),
        8_418_060,
        hearth_model::Value::Enumerated(Enumerated::Bits { bits: 1, width: 24 }),
        None,
    ));
    assert!(matches!(
        encode_bundle(std::slice::from_ref(&cgm), &ctx, Profile::Phd),
        Err(EncodeError::UnmappedBits { mdc: 8_418_060, .. })
    ));
    ctx.options.unsupported = Unsupported::Skip;
    assert_eq!(
        encode_bundle(&[cgm], &ctx, Profile::Phd)
            .unwrap()
            .skipped()
            .len(),
        1
    );
}

#[test]
fn plx_status_bits_use_11073_numbering() {
    let ctx = common::context();
    let r = common::build(common::reading(
        common::ble("0011223344556677"),
        150_604,
        hearth_model::Value::Enumerated(Enumerated::Bits {
            bits: 1 << 11,
            width: 16,
        }),
        None,
    ));
    let v = encode(&[r], &ctx);
    let comps = v["entry"][2]["resource"]["component"].as_array().unwrap();
    let set: Vec<&str> = comps
        .iter()
        .filter(|c| c["valueBoolean"] == true)
        .map(|c| c["code"]["coding"][0]["code"].as_str().unwrap())
        .collect();
    // BLE b11 "unconnected to user" = 150604.4 sensor-off (mdc-codes notes).
    assert_eq!(set, ["150604.4"]);
}

#[test]
fn national_profiles_refuse_what_they_cannot_carry() {
    let ctx = common::national_context();
    for p in [Profile::Vkp, Profile::Pmd] {
        // PHD-only cases: BP status bits, coded context values.
        for (name, records) in common::cases() {
            match encode_bundle(&records, &ctx, p) {
                Ok(b) => {
                    let v: J = serde_json::from_slice(&b.to_json_bytes()).unwrap();
                    let problems = match p {
                        Profile::Vkp => check::vkp_problems(&v),
                        _ => check::pmd_problems(&v),
                    };
                    assert!(problems.is_empty(), "{name}: {problems:?}");
                }
                Err(EncodeError::NotInProfile { profile, why, .. }) => {
                    assert_eq!(profile, p.as_str());
                    assert!(!why.contains("1311"), "{why}");
                }
                Err(e) => panic!("{name}: {e}"),
            }
        }
        let (_, bp) = common::cases().remove(0); // BP (absent diastolic) + status bits
        let err = encode_bundle(&bp, &ctx, p).unwrap_err();
        assert!(
            matches!(&err, EncodeError::NotInProfile { index: 1, .. }),
            "{err}"
        );
        assert_eq!(err.record(), Some((1, bp[1].id())));
        // Skip: listed, not dropped silently.
        let mut skip = ctx.clone();
        skip.options.unsupported = Unsupported::Skip;
        let b = encode_bundle(&bp, &skip, p).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b.skipped().len(), 1);
        assert_eq!(b.skipped()[0].record, bp[1].id());
        // Units outside the profile; BP without diastolic.
        let kpa = common::build(common::reading(
            common::ble("0011223344556677"),
            150020,
            hearth_model::Value::Compound(vec![Component {
                mdc: Mdc(150021),
                value: hearth_model::Value::numeric(17.0),
            }]),
            Some("kPa"),
        ));
        assert!(matches!(
            encode_bundle(&[kpa], &ctx, p),
            Err(EncodeError::NotInProfile { .. })
        ));
        let kelvin = common::build(common::reading(
            common::ble("0011223344556677"),
            150364,
            hearth_model::Value::numeric(310.0),
            Some("K"),
        ));
        assert!(matches!(
            encode_bundle(&[kelvin], &ctx, p),
            Err(EncodeError::NotInProfile { .. })
        ));
        // Alarms as in PHD.
        assert!(matches!(
            encode_bundle(&[alarm()], &ctx, p),
            Err(EncodeError::NotAnObservation { .. })
        ));
    }
}

#[test]
fn national_profiles_need_a_national_id() {
    let mut ctx = common::national_context();
    ctx.patient = Some(PatientRef::Reference("Patient/123".into()));
    let r = temp(hearth_model::Value::numeric(36.6));
    for p in [Profile::Vkp, Profile::Pmd] {
        let err = encode_bundle(std::slice::from_ref(&r), &ctx, p).unwrap_err();
        assert!(
            matches!(err, EncodeError::NotNationalId { index: 0, .. }),
            "{err}"
        );
    }
    ctx.patient = Some(PatientRef::Identifier {
        system: "urn:oid:2.16.578.1.12.4.1.4.1".into(),
        value: "1311690021".into(),
    });
    let err = encode_bundle(&[r], &ctx, Profile::Vkp).unwrap_err();
    assert!(
        !err.to_string().contains("1311"),
        "personal id in an error message"
    );
}

#[test]
fn pmd_needs_a_municipality_and_resends_are_identical() {
    let mut ctx = common::national_context();
    let (_, records) = common::national_cases().remove(4);
    let a = encode_bundle(&records, &ctx, Profile::Pmd).unwrap();
    let b = encode_bundle(&records, &ctx, Profile::Pmd).unwrap();
    assert_eq!(a.to_json_bytes(), b.to_json_bytes());
    let v: J = serde_json::from_slice(&a.to_json_bytes()).unwrap();
    for (rec, e) in records.iter().zip(v["entry"].as_array().unwrap()) {
        assert_eq!(e["request"]["method"], "PUT");
        assert_eq!(e["request"]["url"], format!("Observation/{}", rec.id()));
        assert_eq!(e["resource"]["identifier"][0]["value"], rec.id().urn());
    }
    ctx.national.pmd_bundle_type = PmdBundleType::Collection;
    let c = encode_bundle(&records, &ctx, Profile::Pmd).unwrap();
    let v: J = serde_json::from_slice(&c.to_json_bytes()).unwrap();
    assert_eq!(v["type"], "collection");
    assert!(v["entry"][0].get("request").is_none());
    assert!(
        check::pmd_problems(&v).is_empty(),
        "{:?}",
        check::pmd_problems(&v)
    );
    ctx.national.municipality = None;
    assert!(matches!(
        encode_bundle(&records, &ctx, Profile::Pmd),
        Err(EncodeError::BadSetting { profile: "pmd", .. })
    ));
    assert!(
        encode_bundle(&records, &ctx, Profile::Vkp).is_ok(),
        "VKP needs no municipality"
    );
}

#[test]
fn vkp_entries_are_conditional_creates_and_outcomes_map_back() {
    let ctx = common::national_context();
    let (_, records) = common::national_cases().remove(4);
    let b = encode_bundle(&records, &ctx, Profile::Vkp).unwrap();
    assert_eq!(b.len(), 2, "Observations only");
    let v: J = serde_json::from_slice(&b.to_json_bytes()).unwrap();
    for (rec, e) in records.iter().zip(v["entry"].as_array().unwrap()) {
        assert_eq!(
            e["request"]["ifNoneExist"],
            if_none_exist("urn:ietf:rfc:3986", &rec.id().urn())
        );
    }
    let reply = serde_json::json!({"resourceType": "Bundle", "type": "batch-response", "entry": [
        {"response": {"status": "200"}}, {"response": {"status": "400"}}]});
    let outcomes = parse_transaction_response(reply.to_string().as_bytes(), b.len()).unwrap();
    let per = b.record_outcomes(&outcomes).unwrap();
    assert_eq!(
        per[0],
        (records[0].id(), EntryOutcome::Delivered { created: false })
    );
    assert!(matches!(
        per[1].1,
        EntryOutcome::Rejected { status: 400, .. }
    ));
}

#[test]
fn patient_comes_from_the_reading_else_the_route() {
    let mut ctx = common::context();
    let own = common::build(
        common::reading(
            common::ble("0011223344556677"),
            150364,
            hearth_model::Value::numeric(36.6),
            Some("Cel"),
        )
        .person(PersonRef::new("Patient/abc")),
    );
    let v = encode(std::slice::from_ref(&own), &ctx);
    assert_eq!(
        v["entry"][2]["resource"]["subject"]["reference"],
        "Patient/abc"
    );

    let route = temp(hearth_model::Value::numeric(36.6));
    ctx.patient = None;
    let err = encode_bundle(&[route], &ctx, Profile::Phd).unwrap_err();
    assert!(matches!(err, EncodeError::NoPatient { index: 0, .. }));

    let bad = common::build(
        common::reading(
            common::ble("0011223344556677"),
            150364,
            hearth_model::Value::numeric(36.6),
            Some("Cel"),
        )
        .person(PersonRef::new("13116900216")),
    );
    let err = encode_bundle(&[bad], &ctx, Profile::Phd).unwrap_err();
    assert!(matches!(err, EncodeError::BadPersonRefAt { .. }));
    assert!(
        !err.to_string().contains("1311"),
        "personal id in an error message"
    );
}

#[test]
fn duplicates_missing_units_and_bad_components_are_typed_errors() {
    let ctx = common::context();
    let r = temp(hearth_model::Value::numeric(1.0));
    assert!(matches!(
        encode_bundle(&[r.clone(), r], &ctx, Profile::Phd),
        Err(EncodeError::DuplicateRecord { index: 1, .. })
    ));
    let no_unit = common::build(common::reading(
        common::ble("0011223344556677"),
        150364,
        hearth_model::Value::numeric(1.0),
        None,
    ));
    assert!(matches!(
        encode_bundle(&[no_unit], &ctx, Profile::Phd),
        Err(EncodeError::MissingUnit { .. })
    ));
    let nested = temp(hearth_model::Value::Compound(vec![Component {
        mdc: Mdc(150021),
        value: hearth_model::Value::Compound(vec![]),
    }]));
    assert!(matches!(
        encode_bundle(&[nested], &ctx, Profile::Phd),
        Err(EncodeError::BadComponent { .. })
    ));
    assert!(matches!(
        encode_bundle(
            &[temp(hearth_model::Value::Compound(vec![]))],
            &ctx,
            Profile::Phd
        ),
        Err(EncodeError::EmptyCompound { .. })
    ));
}

#[test]
fn outcomes_map_back_to_records() {
    let ctx = common::context();
    let (_, records) = common::cases().remove(4); // SpO2 + pulse: gateway, device, 2 observations
    let b = encode_bundle(&records, &ctx, Profile::Phd).unwrap();
    assert_eq!(b.len(), 4);
    let reply = serde_json::json!({"resourceType": "Bundle", "type": "transaction-response", "entry": [
        {"response": {"status": "200 OK"}}, {"response": {"status": "201 Created"}},
        {"response": {"status": "201 Created"}}, {"response": {"status": "200 OK"}}]});
    let outcomes = parse_transaction_response(reply.to_string().as_bytes(), b.len()).unwrap();
    let per_record = b.record_outcomes(&outcomes).unwrap();
    assert_eq!(
        per_record,
        vec![
            (records[0].id(), EntryOutcome::Delivered { created: true }),
            (records[1].id(), EntryOutcome::Delivered { created: false }),
        ]
    );
    assert!(b.record_outcomes(&outcomes[1..]).is_none());
}

/// Issue 6: oral (and every other site's) temperature was refused as "no VkpObservation
/// mapping". It is VKP Bodytemp (8310-5 / 276885007) with the site in `bodySite`; body fat and
/// CGM (interstitial glucose) have no VKP code and stay refused, by name.
#[test]
fn issue_6_site_temperatures_are_bodytemp_with_a_body_site() {
    let ctx = common::national_context();
    let thermo = common::ble("0a1b2c0001d4e5f7");
    let at = |mdc: u32, value: f64, unit: &str| {
        common::build(common::reading(
            thermo.clone(),
            mdc,
            hearth_model::Value::numeric_with_decimals(value, 1),
            Some(unit),
        ))
    };
    for p in [Profile::Vkp, Profile::Pmd] {
        for (mdc, site) in [
            (188424, Some("74262004")),
            (188452, Some("422543003")),
            (150392, Some("42859004")),
            (188420, Some("34402009")),
            (188456, None),
            (150364, None),
        ] {
            let b = encode_bundle(&[at(mdc, 37.1, "Cel")], &ctx, p).unwrap();
            let v: J = serde_json::from_slice(&b.to_json_bytes()).unwrap();
            let problems = match p {
                Profile::Vkp => check::vkp_problems(&v),
                _ => check::pmd_problems(&v),
            };
            assert!(problems.is_empty(), "{mdc}: {problems:?}");
            let obs = &v["entry"][0]["resource"];
            assert_eq!(obs["code"]["coding"][0]["code"], "8310-5", "{mdc}");
            assert_eq!(obs["code"]["coding"][1]["code"], "276885007", "{mdc}");
            assert_eq!(
                obs["code"]["coding"][2]["code"],
                mdc.to_string(),
                "the MDC site code stays"
            );
            match site {
                Some(code) => {
                    assert_eq!(obs["bodySite"]["coding"][0]["code"], code, "{mdc}");
                    assert_eq!(
                        obs["bodySite"]["coding"][0]["system"],
                        "http://snomed.info/sct"
                    );
                }
                None => assert!(obs.get("bodySite").is_none(), "{mdc}"),
            }
        }
        for (mdc, unit) in [(188748, "%"), (160212, "mg/dL")] {
            match encode_bundle(&[at(mdc, 21.5, unit)], &ctx, p) {
                Err(EncodeError::NotInProfile { why, .. }) => {
                    assert!(why.contains(&mdc.to_string()), "{why}")
                }
                other => panic!("{mdc}: {other:?}"),
            }
        }
    }
}

fn observations(v: &J) -> Vec<&J> {
    v["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "Observation")
        .collect()
}

/// Issue 6 (a): a strict PHD IG server wants the IG's `conditionalCreate` identifier slice
/// (PhdBaseObservation notes, `device-patient-type-timestamp`); hearth's record id stays the
/// first identifier and the `ifNoneExist` key.
#[test]
fn issue_6_observations_carry_the_phd_conditional_create_identifier() {
    let ctx = common::context();
    let v = encode(&[temp(Value::numeric_with_decimals(36.5, 1))], &ctx);
    let obs = observations(&v);
    let ids = obs[0]["identifier"].as_array().unwrap();
    assert_eq!(ids[0]["system"], "urn:ietf:rfc:3986");
    let phd: Vec<&J> = ids
        .iter()
        .filter(|i| {
            i["system"] == "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdBaseObservation"
        })
        .collect();
    assert_eq!(phd.len(), 1, "{ids:#?}");
    // 2025-03-14T06:05:09Z is 795247509 s after 2000-01-01T00:00:00Z; patient by logical id.
    assert_eq!(phd[0]["value"], "0011223344556677-123-150364-795247509");
    let e = &v["entry"].as_array().unwrap()[2];
    assert_eq!(
        e["request"]["ifNoneExist"].as_str().unwrap(),
        format!(
            "identifier=urn:ietf:rfc:3986|{}",
            ids[0]["value"].as_str().unwrap()
        )
    );

    // Patient by identifier: `value-system`; milliseconds kept; no device time → no slice.
    let mut ctx = common::context();
    ctx.patient = Some(PatientRef::Identifier {
        system: "urn:oid:2.16.578.1.12.4.1.4.1".into(),
        value: "13116900216".into(),
    });
    let r = common::build(
        Reading::builder(
            common::ble("0011223344556677"),
            Mdc(150364),
            Value::numeric_with_decimals(36.5, 1),
        )
        .unit(Ucum::new("Cel"))
        .device_time(Timestamp::from_unix_millis(common::T0 + 250)),
    );
    let no_time = common::build(
        Reading::builder(
            common::ble("0011223344556677"),
            Mdc(188736),
            Value::numeric_with_decimals(70.0, 1),
        )
        .unit(Ucum::new("kg")),
    );
    let v = encode(&[r, no_time], &ctx);
    let obs = observations(&v);
    assert_eq!(
        obs[0]["identifier"][1]["value"],
        "0011223344556677-13116900216-urn:oid:2.16.578.1.12.4.1.4.1-150364-795247509.250"
    );
    assert_eq!(obs[1]["identifier"].as_array().unwrap().len(), 1);
    assert!(
        check::phd_problems(&v).is_empty(),
        "{:#?}",
        check::phd_problems(&v)
    );
}

/// Issue 6 (b): PhdDevice `manufacturer` and `modelNumber` are 1..1. Told facts are sent; a
/// device that never told them gets the element with a data-absent-reason extension `unknown`
/// instead of a value (never a made-up name), and `check` requires one or the other.
#[test]
fn issue_6_phd_devices_have_manufacturer_and_model_told_or_marked_unknown() {
    let ctx = common::context();
    let v = encode(&[temp(Value::numeric_with_decimals(36.5, 1))], &ctx);
    let dev = &v["entry"][1]["resource"];
    assert_eq!(
        dev["meta"]["profile"][0],
        "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice"
    );
    for field in ["manufacturer", "modelNumber"] {
        assert!(dev.get(field).is_none(), "{field}: no value was told");
        assert_eq!(
            dev[format!("_{field}")]["extension"][0],
            serde_json::json!({
                "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                "valueCode": "unknown"
            })
        );
    }
    assert!(
        check::phd_problems(&v).is_empty(),
        "{:#?}",
        check::phd_problems(&v)
    );

    // Without either, the check names the missing elements.
    let mut bare = v.clone();
    let d = bare["entry"][1]["resource"].as_object_mut().unwrap();
    d.remove("_manufacturer");
    d.remove("_modelNumber");
    let problems = check::phd_problems(&bare);
    assert!(
        problems.iter().any(|p| p.contains("manufacturer")),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("modelNumber")),
        "{problems:#?}"
    );

    // Told facts are sent as values.
    let mut ctx = common::context();
    ctx.devices.insert(
        common::ble("0011223344556677"),
        Device {
            manufacturer: Some("Acme".into()),
            model: Some("T-1".into()),
            ..Device::default()
        },
    );
    let v = encode(&[temp(Value::numeric_with_decimals(36.5, 1))], &ctx);
    let dev = &v["entry"][1]["resource"];
    assert_eq!(dev["manufacturer"], "Acme");
    assert_eq!(dev["modelNumber"], "T-1");
    assert!(dev.get("_manufacturer").is_none());
}
