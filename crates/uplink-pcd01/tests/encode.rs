//! Encoding properties beyond the golden files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use hearth_model::{Record, Value};
use hearth_uplink_pcd01::{CONTROL_ID_LEN, EncodeError, NonReadings, encode_oru, escape::unescape};
use proptest::prelude::*;

fn fields<'a>(msg: &'a hearth_uplink_pcd01::Message, seg: &str) -> Vec<Vec<&'a str>> {
    msg.segments()
        .filter(|s| s.starts_with(seg))
        .map(|s| s.split('|').collect())
        .collect()
}

#[test]
fn resending_the_same_records_gives_the_same_control_id() {
    let (_, records, mut ctx) = common::scenarios().remove(0);
    let first = encode_oru(&records, &ctx).unwrap();
    ctx.message_time = hearth_model::Timestamp::from_unix_millis(common::T0 + 3_600_000);
    let mut reversed = records.clone();
    reversed.reverse();
    let again = encode_oru(&reversed, &ctx).unwrap();
    assert_eq!(first.control_id(), again.control_id());
    assert_ne!(
        first.as_str(),
        again.as_str(),
        "MSH-7 changed, the control id did not"
    );
    assert_eq!(first.control_id().len(), CONTROL_ID_LEN);
    let one = encode_oru(&records[..1], &ctx).unwrap();
    assert_ne!(one.control_id(), first.control_id());
    // MSH-10 carries it, and OBR-2/3 are derived from it.
    let msh = &fields(&first, "MSH")[0];
    assert_eq!(msh[9], first.control_id());
    assert!(fields(&first, "OBR")[0][3].starts_with(first.control_id()));
}

/// Issue 6: a person referenced as `system|value` is written as a CX with its assigning
/// authority (`value^^^FNR&<oid>&ISO^NNNOR`), not as one escaped string.
#[test]
fn issue_6_pid3_is_a_cx_with_the_assigning_authority_of_the_reference() {
    use hearth_model::PersonRef;
    let dev = common::ble("0a1b2c0001d4e5f6");
    let mut ctx = common::context();
    ctx.patients.clear();
    let pid3_in = |ctx: &hearth_uplink_pcd01::Context, person: &str| {
        let mut r = common::reading(&dev, 150364, common::num(36.5, 1), None, common::T0, 1);
        r.person = Some(PersonRef::new(person));
        let msg = encode_oru(&[Record::Reading(r)], ctx).unwrap();
        let pid = &fields(&msg, "PID")[0];
        (pid[3].to_owned(), pid[5].to_owned())
    };
    let pid3 = |person: &str| pid3_in(&ctx, person);
    assert_eq!(
        pid3("urn:oid:2.16.578.1.12.4.1.4.1|13116900216"),
        (
            "13116900216^^^FNR&2.16.578.1.12.4.1.4.1&ISO^NNNOR".to_owned(),
            "^^^^^^U".to_owned()
        )
    );
    assert_eq!(
        pid3("urn:oid:2.16.578.1.12.4.1.4.2|41116900216").0,
        "41116900216^^^DNR&2.16.578.1.12.4.1.4.2&ISO^NNNOR"
    );
    assert_eq!(pid3("2.999.42|pid-0001").0, "pid-0001^^^&2.999.42&ISO^PI");
    assert_eq!(
        pid3("https://ehr.example/pid|A-1").0,
        "A-1^^^&https://ehr.example/pid&URI^PI"
    );
    // Local ids: `Patient/<id>` and plain text, with the local assigning authority if any.
    assert_eq!(pid3("Patient/123").0, "123^^^^PI");
    let mut ctx = ctx.clone();
    ctx.default_authority = Some(hearth_uplink_pcd01::AssigningAuthority {
        namespace: Some("KOMMUNE".into()),
        oid: None,
        universal_id_type: None,
    });
    assert_eq!(pid3_in(&ctx, "Patient/123").0, "123^^^KOMMUNE^PI");
    assert_eq!(pid3_in(&ctx, "beboer-7").0, "beboer-7^^^KOMMUNE^PI");
}

/// Issue 6: a PCD-01 route can name its patient (`[route.pcd01] patient`), used for readings
/// that carry no person; without one they are sent without PID.
#[test]
fn issue_6_the_route_patient_is_used_for_readings_without_a_person() {
    use hearth_model::PersonRef;
    let dev = common::ble("0a1b2c0001d4e5f6");
    let mut ctx = common::context();
    ctx.patients.clear();
    let mut r = common::reading(&dev, 150364, common::num(36.5, 1), None, common::T0, 1);
    r.person = None;
    let r = Record::Reading(r);
    let msg = encode_oru(std::slice::from_ref(&r), &ctx).unwrap();
    assert!(fields(&msg, "PID").is_empty());
    ctx.patient = Some(PersonRef::new("urn:oid:2.16.578.1.12.4.1.4.1|13116900216"));
    let msg = encode_oru(std::slice::from_ref(&r), &ctx).unwrap();
    assert_eq!(
        fields(&msg, "PID")[0][3],
        "13116900216^^^FNR&2.16.578.1.12.4.1.4.1&ISO^NNNOR"
    );
    // A reading of the same person by reference shares the message.
    let mut same = common::reading(&dev, 150364, common::num(36.6, 1), None, common::T0 + 1, 2);
    same.person = ctx.patient.clone();
    assert!(encode_oru(&[r, Record::Reading(same)], &ctx).is_ok());
}

#[test]
fn decimals_are_preserved() {
    let dev = common::ble("0a1b2c0001d4e5f6");
    for (v, d, text) in [
        (36.5, 2, "36.50"),
        (72.0, 1, "72.0"),
        (5.0, 0, "5"),
        (0.125, 3, "0.125"),
    ] {
        let r = common::reading(&dev, 150364, common::num(v, d), Some("Cel"), common::T0, 1);
        let msg = encode_oru(&[Record::Reading(r)], &common::context()).unwrap();
        let obx = fields(&msg, "OBX");
        assert_eq!(obx.last().unwrap()[5], text);
    }
}

#[test]
fn alarms_are_refused_or_skipped() {
    let dev = common::ble("0a1b2c0001d4e5f6");
    let alarm = Record::Alarm(common::alarm(&dev));
    let reading = Record::Reading(common::reading(
        &dev,
        150364,
        common::num(36.5, 1),
        None,
        common::T0,
        1,
    ));
    let mut ctx = common::context();
    let batch = [reading.clone(), alarm.clone()];
    assert!(matches!(
        encode_oru(&batch, &ctx),
        Err(EncodeError::NotAReading { kind: "alarm", .. })
    ));
    ctx.non_readings = NonReadings::Skip;
    let msg = encode_oru(&batch, &ctx).unwrap();
    assert_eq!(msg.skipped(), &[alarm.id()]);
    assert_eq!(msg.records(), &[reading.id()]);
    assert_eq!(encode_oru(&[alarm], &ctx), Err(EncodeError::Empty));
    assert_eq!(encode_oru::<Record>(&[], &ctx), Err(EncodeError::Empty));
}

#[test]
fn one_message_carries_one_patient() {
    let dev = common::ble("0a1b2c0001d4e5f6");
    let a = common::reading(&dev, 150364, common::num(36.5, 1), None, common::T0, 1);
    let mut b = common::reading(&dev, 150364, common::num(36.6, 1), None, common::T0 + 1, 2);
    b.person = Some(hearth_model::PersonRef::new("someone-else"));
    let id = b.id;
    assert_eq!(
        encode_oru(
            &[Record::Reading(a), Record::Reading(b)],
            &common::context()
        ),
        Err(EncodeError::MixedPatients { id })
    );
}

#[test]
fn several_devices_are_numbered_as_separate_mds() {
    let a = common::ble("0a1b2c0001d4e5f6");
    let b = common::ble("00a0c91400000002");
    let batch = [
        Record::Reading(common::reading(
            &a,
            150364,
            common::num(36.5, 1),
            Some("Cel"),
            common::T0,
            1,
        )),
        Record::Reading(common::reading(
            &b,
            188736,
            common::num(70.0, 1),
            Some("kg"),
            common::T0,
            1,
        )),
        Record::Reading(common::reading(
            &a,
            150364,
            common::num(36.7, 1),
            Some("Cel"),
            common::T0 + 9,
            2,
        )),
    ];
    let msg = encode_oru(&batch, &common::context()).unwrap();
    let subs: Vec<&str> = fields(&msg, "OBX").iter().map(|f| f[4]).collect();
    assert_eq!(
        subs,
        ["1.0.0.0", "1.1.1.1", "1.1.2.1", "2.0.0.0", "2.1.1.1"]
    );
    let set_ids: Vec<&str> = fields(&msg, "OBX").iter().map(|f| f[1]).collect();
    assert_eq!(set_ids, ["1", "2", "3", "4", "5"]);
}

#[test]
fn non_finite_numbers_and_bad_configuration_are_errors() {
    let dev = common::ble("0a1b2c0001d4e5f6");
    let r = common::reading(&dev, 150364, Value::numeric(f64::NAN), None, common::T0, 1);
    let id = r.id;
    assert_eq!(
        encode_oru(&[Record::Reading(r.clone())], &common::context()),
        Err(EncodeError::NonFinite { id })
    );
    let ok = common::reading(&dev, 150364, common::num(1.0, 0), None, common::T0, 1);
    let mut ctx = common::context();
    ctx.gateway_eui64 = Some("not-hex".into());
    assert!(matches!(
        encode_oru(&[Record::Reading(ok.clone())], &ctx),
        Err(EncodeError::InvalidEui64 { .. })
    ));
    let mut ctx = common::context();
    ctx.utc_offset_minutes = 1500;
    assert!(matches!(
        encode_oru(&[Record::Reading(ok)], &ctx),
        Err(EncodeError::InvalidOffset { minutes: 1500 })
    ));
}

proptest! {
    /// Whatever text a device, configuration or patient record holds, the message keeps its
    /// structure: same segments, same field counts, and each text field unescapes back.
    #[test]
    fn hostile_text_never_breaks_the_segment_structure(
        model in any::<String>(),
        facility in any::<String>(),
        family in any::<String>(),
        state in any::<String>(),
    ) {
        let dev = common::ble("0a1b2c0001d4e5f6");
        let mut ctx = common::context();
        let mut d = common::device("0a1b2c0001d4e5f6", "M", &model);
        d.serial = None;
        d.firmware = None;
        d.manufacturer = None;
        ctx.devices.push(d);
        ctx.sending_facility = Some(facility.clone());
        if let Some((_, p)) = ctx.patients.first_mut() {
            p.family = Some(family.clone());
        }
        let r = common::reading(
            &dev,
            188740,
            Value::Enumerated(hearth_model::Enumerated::Text(state.clone())),
            None,
            common::T0,
            1,
        );
        let msg = encode_oru(&[Record::Reading(r)], &ctx).unwrap();
        let names: Vec<&str> = msg.segments().map(|s| &s[..3]).collect();
        prop_assert_eq!(names, ["MSH", "PID", "OBR", "OBX", "OBX", "OBX"]);
        let raw_control = msg.as_str().contains(['\n', '\u{0b}', '\u{1c}']);
        prop_assert!(!raw_control);
        let msh = &fields(&msg, "MSH")[0];
        prop_assert_eq!(unescape(msh[3]).unwrap(), facility);
        let pid = &fields(&msg, "PID")[0];
        let family_field = pid[5].split('^').next().unwrap();
        prop_assert_eq!(unescape(family_field).unwrap(), family);
        let obx = fields(&msg, "OBX");
        prop_assert_eq!(unescape(obx[1][5]).unwrap(), model);
        prop_assert_eq!(obx[1][4], "1.0.0.1");
        prop_assert_eq!(unescape(obx[2][5]).unwrap(), state);
        prop_assert_eq!(obx[2][4], "1.1.1.1");
    }
}
