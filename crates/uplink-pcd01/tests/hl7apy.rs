//! Independent validation: every golden message (and a few generated extras) must parse with
//! Python `hl7apy` in strict validation mode for HL7 v2.6 as an `ORU_R01` with its groups.
//!
//! The interpreter comes from `HEARTH_HL7_PYTHON`, else `.venv/bin/python` at the workspace root.
//! Without it the test prints SKIPPED, unless `HEARTH_REQUIRE_VALIDATORS=1` (CI), then it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use hearth_model::Record;
use hearth_uplink_pcd01::{NonReadings, encode_oru};

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The interpreter, or `None` (after printing why) when validators are optional.
fn python() -> Option<PathBuf> {
    let required = std::env::var("HEARTH_REQUIRE_VALIDATORS").is_ok_and(|v| v == "1");
    let path = std::env::var_os("HEARTH_HL7_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest().join("../../.venv/bin/python"));
    let usable = path.exists()
        && Command::new(&path)
            .args(["-c", "import hl7apy"])
            .status()
            .is_ok_and(|s| s.success());
    if usable {
        return Some(path);
    }
    let why = format!(
        "no Python with hl7apy at {} (set HEARTH_HL7_PYTHON or create the workspace .venv)",
        path.display()
    );
    assert!(!required, "HEARTH_REQUIRE_VALIDATORS=1 but {why}");
    println!("SKIPPED hl7apy validation: {why}");
    None
}

fn validate(python: &Path, files: &[PathBuf]) {
    let out = Command::new(python)
        .arg(manifest().join("tests/hl7apy_validate.py"))
        .args(files)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "hl7apy rejected a message:\n{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("OK ")).count(),
        files.len()
    );
}

#[test]
fn golden_messages_validate_in_hl7apy_strict_mode() {
    let Some(py) = python() else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(manifest().join("tests/golden"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "hl7"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "expected the six golden scenarios");
    validate(&py, &files);
}

#[test]
fn generated_batches_validate_in_hl7apy_strict_mode() {
    let Some(py) = python() else { return };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pcd01-hl7apy");
    std::fs::create_dir_all(&dir).unwrap();
    let scenarios = common::scenarios();
    // Every scenario's readings in one batch: several devices (MDS 1…n) in one message; the
    // readings without a person (unknown patient, route patient) are left out, since one
    // message carries one patient.
    let mut all: Vec<Record> = Vec::new();
    let mut ctx = common::context();
    for (name, records, c) in &scenarios {
        if !name.contains("unknown_patient") && !name.contains("route_patient") {
            all.extend(records.iter().cloned());
            ctx.devices.extend(c.devices.iter().cloned());
        }
    }
    // And an alarm that is skipped.
    let dev = common::ble("0a1b2c0001d4e5f6");
    all.push(Record::Alarm(common::alarm(&dev)));
    ctx.non_readings = NonReadings::Skip;
    let mut files = Vec::new();
    let msg = encode_oru(&all, &ctx).unwrap();
    assert_eq!(msg.skipped().len(), 1);
    let path = dir.join("all_devices.hl7");
    std::fs::write(&path, msg.as_bytes()).unwrap();
    files.push(path);
    // Each reading alone, with the Continua-style acknowledgement request and processing id T.
    for (i, r) in all
        .iter()
        .filter(|r| matches!(r, Record::Reading(_)))
        .enumerate()
    {
        let mut c = ctx.clone();
        c.ack_request = hearth_uplink_pcd01::AckRequest::ApplicationAlways;
        c.processing_id = hearth_uplink_pcd01::ProcessingId::Training;
        let msg = encode_oru(std::slice::from_ref(r), &c).unwrap();
        let path = dir.join(format!("single_{i}.hl7"));
        std::fs::write(&path, msg.as_bytes()).unwrap();
        files.push(path);
    }
    validate(&py, &files);
}
