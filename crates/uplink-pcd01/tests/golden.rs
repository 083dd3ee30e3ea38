//! Golden PCD-01 messages: `tests/golden/<scenario>.hl7`, compared byte for byte (segments end
//! with `\r`). `HEARTH_BLESS=1 cargo test --test golden` rewrites them; review with git diff.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use hearth_uplink_pcd01::encode_oru;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn golden_messages_match_exactly() {
    let bless = std::env::var("HEARTH_BLESS").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for (name, records, ctx) in common::scenarios() {
        let msg = encode_oru(&records, &ctx).unwrap();
        let path = golden_dir().join(format!("{name}.hl7"));
        if bless {
            std::fs::create_dir_all(golden_dir()).unwrap();
            let old = std::fs::read(&path).ok();
            if old.as_deref() != Some(msg.as_bytes()) {
                std::fs::write(&path, msg.as_bytes()).unwrap();
                eprintln!("blessed {}", path.display());
            }
            continue;
        }
        match std::fs::read(&path) {
            Ok(expected) if expected == msg.as_bytes() => {}
            Ok(expected) => failures.push(format!(
                "{}: differs\n--- expected\n{}\n+++ actual\n{}",
                path.display(),
                String::from_utf8_lossy(&expected).replace('\r', "\n"),
                msg.as_str().replace('\r', "\n")
            )),
            Err(e) => failures.push(format!(
                "{}: {e}; run with HEARTH_BLESS=1 to create it",
                path.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nIf the change is intended, run with HEARTH_BLESS=1 and review the diff.",
        failures.join("\n\n")
    );
}

#[test]
fn golden_files_use_carriage_returns_only() {
    for entry in std::fs::read_dir(golden_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "hl7") {
            let bytes = std::fs::read(&path).unwrap();
            assert!(!bytes.contains(&b'\n'), "{} contains LF", path.display());
            assert!(
                bytes.ends_with(b"\r"),
                "{} must end with CR",
                path.display()
            );
        }
    }
}
