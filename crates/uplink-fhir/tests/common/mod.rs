//! Fixtures shared by the integration tests: the golden cases and a context.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use hearth_model::*;
use hearth_uplink_fhir::*;

/// 2025-03-14T06:05:09Z.
pub const T0: i64 = 1_741_932_309_000;

pub fn gateway() -> Gateway {
    Gateway {
        id: DeviceId::new("hearth", "gw-0001").unwrap(),
        eui64: Some("00-1A-2B-FF-FE-3C-4D-5E".into()),
        manufacturer: Some("hearth project".into()),
        model: Some("hearth".into()),
        software_version: Some("0.1.0".into()),
    }
}

pub fn ble(eui: &str) -> DeviceId {
    DeviceId::new("ble", eui).unwrap()
}

pub fn context() -> Context {
    let mut ctx = Context::new(gateway(), Some(PatientRef::Reference("Patient/123".into())));
    let thermo = ble("0a1b2c0001d4e5f7");
    ctx.devices.insert(
        thermo.clone(),
        Device {
            id: Some(thermo),
            manufacturer: Some("Acme Medical".into()),
            model: Some("TH-200".into()),
            serial: Some("SN 0042".into()),
            firmware: Some("1.4.2".into()),
            eui64: Some("0a1b2c0001d4e5f7".into()),
            battery_percent: Some(80),
        },
    );
    ctx
}

pub fn reading(device: DeviceId, mdc: u32, value: Value, unit: Option<&str>) -> ReadingBuilder {
    let mut b =
        Reading::builder(device, Mdc(mdc), value).device_time(Timestamp::from_unix_millis(T0));
    if let Some(u) = unit {
        b = b.unit(Ucum::new(u));
    }
    b
}

pub fn build(b: ReadingBuilder) -> Record {
    Record::Reading(b.build(Timestamp::from_unix_millis(T0 + 2_000)))
}

fn num(v: f64, d: u8) -> Value {
    Value::numeric_with_decimals(v, d)
}

/// The golden cases: name → records.
pub fn cases() -> Vec<(&'static str, Vec<Record>)> {
    let bp = ble("0a1b2c0001d4e5f6");
    let thermo = ble("0a1b2c0001d4e5f7");
    let pox = ble("0a1b2c0001d4e5f8");
    let glu = ble("0a1b2c0001d4e5f9");
    let scale = DeviceId::new("ext", "acme-scale|17").unwrap();
    vec![
        (
            "blood_pressure",
            vec![
                build(reading(
                    bp.clone(),
                    150020,
                    Value::Compound(vec![
                        Component {
                            mdc: Mdc(150021),
                            value: num(128.0, 0),
                        },
                        Component {
                            mdc: Mdc(150022),
                            value: Value::Absent(AbsentReason::NotANumber),
                        },
                        Component {
                            mdc: Mdc(150023),
                            value: num(99.0, 0),
                        },
                    ]),
                    Some("mm[Hg]"),
                )),
                build(reading(
                    bp,
                    8410608,
                    Value::Enumerated(Enumerated::Bits {
                        bits: 0b0000_0101,
                        width: 16,
                    }),
                    None,
                )),
            ],
        ),
        (
            "body_temperature",
            vec![build(reading(thermo, 150364, num(36.5, 1), Some("Cel")))],
        ),
        (
            "weight",
            vec![build(
                reading(scale, 188736, num(72.4, 2), Some("kg"))
                    .person(PersonRef::new("urn:oid:2.16.578.1.12.4.1.4.1|13116900216")),
            )],
        ),
        (
            "glucose",
            vec![build(
                reading(glu.clone(), 160184, num(5.6, 1), Some("mmol/L"))
                    .sequence(17)
                    .flags(ReadingFlags {
                        device_clock_unset: false,
                        stored_record: true,
                    }),
            )],
        ),
        (
            "spo2_pulse",
            vec![
                build(reading(pox.clone(), 150456, num(97.0, 0), Some("%"))),
                build(reading(pox, 149530, num(72.0, 0), Some("/min"))),
            ],
        ),
        (
            "coded",
            vec![
                build(
                    reading(
                        glu.clone(),
                        8417864,
                        Value::Enumerated(Enumerated::Code(Mdc(8417872))),
                        None,
                    )
                    .sequence(17),
                ),
                build(
                    reading(
                        glu,
                        8417844,
                        Value::Enumerated(Enumerated::Code(Mdc(8417848))),
                        None,
                    )
                    .sequence(17),
                ),
            ],
        ),
    ]
}

/// A synthetic national identity number (as used elsewhere in these tests).
pub const FNR: &str = "13116900216";

/// The context of the Norwegian profiles: patient by FNR, an organisation, Oslo.
pub fn national_context() -> Context {
    let mut ctx = context();
    ctx.patient = Some(PatientRef::Identifier {
        system: "urn:oid:2.16.578.1.12.4.1.4.1".into(),
        value: FNR.into(),
    });
    ctx.national.organization = Some(Organization {
        orgnr: "312229544".into(),
        name: Some("Test kommune".into()),
    });
    ctx.national.municipality = Some(Municipality {
        number: "0301".into(),
        name: Some("Oslo".into()),
    });
    ctx
}

/// The golden cases of the Norwegian profiles (what VKP/PMD carry): name → records.
pub fn national_cases() -> Vec<(&'static str, Vec<Record>)> {
    let bp = ble("0a1b2c0001d4e5f6");
    let thermo = ble("0a1b2c0001d4e5f7");
    let pox = ble("0a1b2c0001d4e5f8");
    let glu = ble("0a1b2c0001d4e5f9");
    let scale = DeviceId::new("ext", "acme-scale|17").unwrap();
    vec![
        (
            "blood_pressure",
            vec![
                build(reading(
                    bp.clone(),
                    150020,
                    Value::Compound(vec![
                        Component {
                            mdc: Mdc(150021),
                            value: num(128.0, 0),
                        },
                        Component {
                            mdc: Mdc(150022),
                            value: num(82.0, 0),
                        },
                        Component {
                            mdc: Mdc(150023),
                            value: num(97.0, 0),
                        },
                    ]),
                    Some("mm[Hg]"),
                )),
                build(reading(bp, 149546, num(64.0, 0), Some("/min"))),
            ],
        ),
        (
            "body_temperature",
            vec![build(reading(thermo, 150364, num(36.5, 1), Some("Cel")))],
        ),
        (
            "weight",
            vec![build(reading(scale, 188736, num(72.4, 2), Some("kg")))],
        ),
        (
            "glucose",
            vec![
                build(
                    reading(glu.clone(), 160184, num(5.6, 1), Some("mmol/L"))
                        .sequence(17)
                        .flags(ReadingFlags {
                            device_clock_unset: false,
                            stored_record: true,
                        }),
                ),
                // A kg/L meter (reported in mg/dL by the BLE driver): converted to mmol/L.
                build(reading(glu, 160188, num(101.0, 0), Some("mg/dL")).sequence(18)),
            ],
        ),
        (
            "spo2_pulse",
            vec![
                build(reading(pox.clone(), 150456, num(97.0, 0), Some("%"))),
                build(reading(pox, 149530, num(72.0, 0), Some("/min"))),
            ],
        ),
    ]
}
