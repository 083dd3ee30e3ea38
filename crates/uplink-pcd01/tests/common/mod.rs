//! Scenarios shared by the golden, encoding and validator tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use hearth_model::{
    AbsentReason, Component, Device, DeviceId, Enumerated, Mdc, PersonRef, Reading, ReadingFlags,
    Record, Timestamp, Ucum, Value,
};
use hearth_uplink_pcd01::{AssigningAuthority, Context, Patient};

/// 2025-03-14 07:05:09 UTC.
pub const T0: i64 = 1_741_935_909_000;

pub fn ble(eui: &str) -> DeviceId {
    DeviceId::new("ble", eui).unwrap()
}

pub fn device(eui: &str, manufacturer: &str, model: &str) -> Device {
    Device {
        id: Some(ble(eui)),
        manufacturer: Some(manufacturer.into()),
        model: Some(model.into()),
        serial: Some("SN-0001".into()),
        firmware: Some("1.2.3".into()),
        eui64: Some(eui.into()),
        battery_percent: Some(80),
    }
}

pub fn person() -> PersonRef {
    PersonRef::new("person-1")
}

pub fn context() -> Context {
    let mut ctx = Context::new("HEARTH", Timestamp::from_unix_millis(T0 + 21_000));
    ctx.gateway_eui64 = Some("0a1b2c0001d4e5f0".into());
    ctx.sending_facility = Some("Kommune 0301".into());
    ctx.receiving_application = Some("DOC".into());
    ctx.receiving_facility = Some("HUB".into());
    ctx.utc_offset_minutes = 60;
    ctx.patients.push((
        person(),
        Patient {
            id: "01010112345".into(),
            authority: Some(AssigningAuthority {
                namespace: Some("FNR".into()),
                oid: Some("2.16.578.1.12.4.1.4.1".into()),
                universal_id_type: None,
            }),
            id_type: "NNNOR".into(),
            family: Some("Nordmann".into()),
            given: Some("Kari".into()),
        },
    ));
    ctx
}

pub fn reading(
    dev: &DeviceId,
    mdc: u32,
    value: Value,
    unit: Option<&str>,
    at_ms: i64,
    seq: u64,
) -> Reading {
    let mut b = Reading::builder(dev.clone(), Mdc(mdc), value)
        .device_time(Timestamp::from_unix_millis(at_ms))
        .sequence(seq)
        .person(person());
    if let Some(u) = unit {
        b = b.unit(Ucum::new(u));
    }
    b.build(Timestamp::from_unix_millis(at_ms + 2_000))
}

pub fn num(v: f64, decimals: u8) -> Value {
    Value::numeric_with_decimals(v, decimals)
}

/// (golden file stem, records, context)
pub fn scenarios() -> Vec<(&'static str, Vec<Record>, Context)> {
    let mut out = Vec::new();

    // Blood pressure with the MAP absent (SFLOAT NaN) and the pulse rate.
    let bp = ble("0a1b2c0001d4e5f6");
    let mut ctx = context();
    ctx.devices
        .push(device("0a1b2c0001d4e5f6", "Acme Medical", "BP-800"));
    let compound = Value::Compound(vec![
        Component {
            mdc: Mdc(150021),
            value: num(128.0, 0),
        },
        Component {
            mdc: Mdc(150022),
            value: num(84.0, 0),
        },
        Component {
            mdc: Mdc(150023),
            value: Value::Absent(AbsentReason::NotANumber),
        },
    ]);
    out.push((
        "blood_pressure_absent_map",
        vec![
            Record::Reading(reading(&bp, 150020, compound, Some("mm[Hg]"), T0, 17)),
            Record::Reading(reading(&bp, 149546, num(66.0, 0), Some("/min"), T0, 17)),
        ],
        ctx,
    ));

    // Body temperature, patient not configured for the device: no PID.
    let th = ble("00a0c91400000001");
    let mut ctx = context();
    ctx.devices
        .push(device("00a0c91400000001", "ThermoCo", "T-1"));
    let mut r = reading(&th, 150364, num(36.5, 1), Some("Cel"), T0 + 60_000, 3);
    r.person = None;
    let r = Reading {
        id: Reading::derive_id(&r.device, r.mdc, r.device_time, r.sequence, r.received_at),
        ..r
    };
    out.push((
        "body_temperature_unknown_patient",
        vec![Record::Reading(r)],
        ctx,
    ));

    // Body temperature of a device with no person, on a route whose patient is a national
    // identity number (`[route.pcd01] patient`): PID-3 is a CX with its assigning authority.
    let mut ctx = context();
    ctx.patients.clear();
    ctx.patient = Some(PersonRef::new("urn:oid:2.16.578.1.12.4.1.4.1|13116900216"));
    ctx.devices
        .push(device("00a0c91400000001", "ThermoCo", "T-1"));
    let mut r = reading(&th, 150364, num(37.1, 1), Some("Cel"), T0 + 90_000, 4);
    r.person = None;
    let r = Reading {
        id: Reading::derive_id(&r.device, r.mdc, r.device_time, r.sequence, r.received_at),
        ..r
    };
    out.push((
        "body_temperature_route_patient",
        vec![Record::Reading(r)],
        ctx,
    ));

    // Weight: trailing zero kept.
    let sc = ble("00a0c91400000002");
    let mut ctx = context();
    ctx.devices
        .push(device("00a0c91400000002", "ScaleWorks", "W-200"));
    out.push((
        "weight",
        vec![Record::Reading(reading(
            &sc,
            188736,
            num(72.40, 2),
            Some("kg"),
            T0 + 120_000,
            9,
        ))],
        ctx,
    ));

    // Glucose from the meter's memory, with the meal context (a coded value).
    let gl = ble("00a0c91400000003");
    let mut ctx = context();
    ctx.devices
        .push(device("00a0c91400000003", "GlucoMeter AS", "G-5"));
    let mut glu = reading(&gl, 160184, num(5.6, 1), Some("mmol/L"), T0 - 3_600_000, 41);
    glu.flags = ReadingFlags {
        device_clock_unset: false,
        stored_record: true,
    };
    out.push((
        "glucose",
        vec![
            Record::Reading(glu),
            Record::Reading(reading(
                &gl,
                8417864,
                Value::Enumerated(Enumerated::Code(Mdc(8417872))),
                None,
                T0 - 3_600_000,
                41,
            )),
        ],
        ctx,
    ));

    // SpO2 and pulse rate from a pulse oximeter, no device facts known but the id.
    let ox = ble("00a0c91400000004");
    let ctx = context();
    out.push((
        "spo2_pulse",
        vec![
            Record::Reading(reading(
                &ox,
                150456,
                num(97.0, 0),
                Some("%"),
                T0 + 180_000,
                1,
            )),
            Record::Reading(reading(
                &ox,
                149530,
                num(72.0, 0),
                Some("/min"),
                T0 + 180_000,
                1,
            )),
        ],
        ctx,
    ));

    // Text that needs escaping everywhere.
    let ex = ble("00a0c91400000005");
    let mut ctx = context();
    ctx.sending_facility = Some("Bydel A|B".into());
    let mut d = device("00a0c91400000005", "Ünïcode & Co\r\nLtd", "A|B^C&D~E\\F");
    d.serial = Some("S\\N^1".into());
    ctx.devices.push(d);
    if let Some((_, p)) = ctx.patients.first_mut() {
        p.family = Some("O'Brien~Smith".into());
        p.given = Some("Ann^Marie & Jo".into());
    }
    out.push((
        "escaping",
        vec![
            Record::Reading(reading(
                &ex,
                188736,
                num(80.1, 1),
                Some("kg"),
                T0 + 240_000,
                2,
            )),
            Record::Reading(reading(
                &ex,
                188740,
                Value::Enumerated(Enumerated::Text("tall|short^&~\\".into())),
                None,
                T0 + 240_000,
                2,
            )),
        ],
        ctx,
    ));
    out
}

pub fn alarm(dev: &DeviceId) -> hearth_model::Alarm {
    hearth_model::Alarm::new(
        dev.clone(),
        hearth_model::AlarmKind::Fall,
        hearth_model::AlarmState::Raised,
        Timestamp::from_unix_millis(T0),
        Timestamp::from_unix_millis(T0 + 1),
        hearth_model::Category::Health,
        Some(person()),
        None,
    )
}
