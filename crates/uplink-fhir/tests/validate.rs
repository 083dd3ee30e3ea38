//! Independent validation: every golden Bundle, and a set of generated ones, parsed by Python
//! `fhir.resources` (R4B models, see `validate_fhir.py`).
//!
//! The interpreter comes from `HEARTH_FHIR_PYTHON`, else `.venv/bin/python` at the workspace
//! root (`../../.venv/bin/python` from this crate). Missing → the test prints SKIPPED, unless
//! `HEARTH_REQUIRE_VALIDATORS=1`, then it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use hearth_model::*;
use hearth_uplink_fhir::*;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> Option<PathBuf> {
    let p = std::env::var_os("HEARTH_FHIR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir().join("../../.venv/bin/python"));
    if p.exists() {
        return Some(p);
    }
    let required = std::env::var_os("HEARTH_REQUIRE_VALIDATORS").is_some_and(|v| v == "1");
    assert!(
        !required,
        "HEARTH_REQUIRE_VALIDATORS=1 but no Python at {} (set HEARTH_FHIR_PYTHON or create the venv \
         with fhir.resources)",
        p.display()
    );
    eprintln!(
        "SKIPPED: no Python with fhir.resources at {} (set HEARTH_FHIR_PYTHON)",
        p.display()
    );
    None
}

fn run(python: &Path, target: &Path) {
    let out = Command::new(python)
        .arg(crate_dir().join("tests/validate_fhir.py"))
        .arg(target)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "fhir.resources rejected:\n{text}");
}

#[test]
fn golden_files_pass_fhir_resources() {
    let Some(py) = python() else { return };
    run(&py, &crate_dir().join("tests/golden"));
}

/// Bundles beyond the golden cases: every absent reason, a negative and a many-decimals number,
/// a Zigbee device, a device without facts, a clock-unset note, unknown MDC codes, text values.
fn generated() -> Vec<(String, Vec<Record>)> {
    let dev = common::ble("0011223344556677");
    let z2m = DeviceId::new("z2m", "0x00158d0001a2b3c4").unwrap();
    let mut out = Vec::new();
    let mut rs = Vec::new();
    for (i, reason) in AbsentReason::ALL.into_iter().enumerate() {
        rs.push(common::build(
            common::reading(dev.clone(), 150364, Value::Absent(reason), Some("Cel"))
                .sequence(i as u64),
        ));
    }
    out.push(("absent_reasons".to_owned(), rs));
    out.push((
        "numbers".to_owned(),
        vec![
            common::build(
                common::reading(
                    dev.clone(),
                    188736,
                    Value::numeric_with_decimals(-0.125, 6),
                    Some("kg"),
                )
                .sequence(1),
            ),
            common::build(
                common::reading(dev.clone(), 188736, Value::numeric(1e21), Some("kg")).sequence(2),
            ),
            common::build(
                common::reading(dev.clone(), 4_000_000, Value::numeric(3.25), Some("1"))
                    .sequence(3),
            ),
        ],
    ));
    out.push((
        "zigbee_and_text".to_owned(),
        vec![
            common::build(common::reading(
                z2m.clone(),
                4_000_001,
                Value::Enumerated(Enumerated::Text("open \"door\"\n".into())),
                None,
            )),
            common::build(
                common::reading(
                    z2m,
                    188736,
                    Value::numeric_with_decimals(80.0, 1),
                    Some("kg"),
                )
                .flags(ReadingFlags {
                    device_clock_unset: true,
                    stored_record: false,
                }),
            ),
            common::build(common::reading(
                common::ble("0a1b2c0001d4e5f8"),
                150604,
                Value::Enumerated(Enumerated::Bits {
                    bits: 0x8001,
                    width: 16,
                }),
                None,
            )),
        ],
    ));
    out
}

#[test]
fn generated_bundles_pass_fhir_resources_and_the_phd_check() {
    let ctx = common::context();
    let dir = std::env::temp_dir().join(format!("hearth-fhir-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, records) in generated() {
        let bundle = encode_bundle(&records, &ctx, Profile::Phd).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bundle.to_json_bytes()).unwrap();
        let problems = check::phd_problems(&v);
        assert!(problems.is_empty(), "{name}: {problems:#?}");
        std::fs::write(dir.join(format!("{name}.json")), bundle.to_pretty_json()).unwrap();
    }
    if let Some(py) = python() {
        run(&py, &dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The validator is not a no-op: a Bundle with a broken dateTime and a string as a number fails.
#[test]
fn fhir_resources_rejects_a_broken_bundle() {
    let Some(py) = python() else { return };
    let ctx = common::context();
    let (_, records) = common::cases().remove(1);
    let text = encode_bundle(&records, &ctx, Profile::Phd)
        .unwrap()
        .to_pretty_json();
    let dir = std::env::temp_dir().join(format!("hearth-fhir-broken-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, broken) in [
        (
            "date",
            text.replace("2025-03-14T06:05:09.000Z", "14.03.2025 06:05"),
        ),
        (
            "number",
            text.replace("\"value\": 36.5", "\"value\": \"36,5\""),
        ),
    ] {
        assert_ne!(broken, text, "{name}: fixture did not change");
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, broken).unwrap();
        let out = Command::new(&py)
            .arg(crate_dir().join("tests/validate_fhir.py"))
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{name}: fhir.resources accepted a broken Bundle"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
