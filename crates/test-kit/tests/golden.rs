//! Golden files: compare, report a readable diff, bless only when asked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hearth_model::{DeviceId, Mdc, Reading, Record, Timestamp, Ucum, Value};
use hearth_test_kit::assert_golden;
use hearth_test_kit::conformance::check_readings_valid;
use hearth_test_kit::golden::{GoldenError, GoldenMode, check_golden_with};

#[test]
fn missing_file_says_how_to_create_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    let err = check_golden_with(&path, "x\n", GoldenMode::Compare).unwrap_err();
    assert!(matches!(err, GoldenError::Missing { .. }));
    assert!(err.to_string().contains("HEARTH_BLESS=1"), "{err}");
    assert!(!path.exists(), "comparing never writes");
}

#[test]
fn bless_writes_and_compare_then_passes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/out.txt");
    check_golden_with(&path, "a\nb\n", GoldenMode::Bless).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\nb\n");
    check_golden_with(&path, "a\nb\n", GoldenMode::Compare).unwrap();
    // A CRLF checkout compares equal.
    std::fs::write(&path, "a\r\nb\r\n").unwrap();
    check_golden_with(&path, "a\nb\n", GoldenMode::Compare).unwrap();
}

#[test]
fn mismatch_shows_the_first_differing_line_and_leaves_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
    let err = check_golden_with(&path, "one\n2\nthree\n", GoldenMode::Compare).unwrap_err();
    let GoldenError::Mismatch { line, diff, .. } = &err else {
        panic!("expected a mismatch, got {err}");
    };
    assert_eq!(*line, 2);
    assert_eq!(diff, "@@ line 2 @@\n  one\n- two\n+ 2\n  three\n  ");
    assert!(err.to_string().contains("HEARTH_BLESS=1"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\nthree\n");
}

/// The readings check's report, as a vendor reads it (re-bless with HEARTH_BLESS=1).
#[test]
fn readings_report_matches_its_golden_file() {
    let now = Timestamp::from_unix_millis(1_767_225_600_000);
    let device = DeviceId::new("vendor", "0011223344556677").unwrap();
    let records = [
        Reading::builder(device.clone(), Mdc(150_364), Value::numeric(f64::NAN))
            .unit(Ucum::new("Cel"))
            .device_time(now)
            .sequence(1)
            .build(now),
        Reading::builder(device, Mdc(0), Value::numeric(70.5))
            .device_time(Timestamp::from_unix_millis(0))
            .sequence(2)
            .build(now),
    ]
    .map(Record::Reading);
    let report = check_readings_valid(&records).unwrap_err().to_string();
    assert_golden("tests/data/readings_report.txt", &format!("{report}\n"));
}
