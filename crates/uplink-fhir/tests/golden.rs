//! Golden files: `tests/golden/<case>.json` is the pretty-printed Bundle of each case in
//! `common::cases`. `HEARTH_BLESS=1 cargo test --test golden` rewrites them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use hearth_uplink_fhir::*;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn golden_bundles_match() {
    let bless = std::env::var_os("HEARTH_BLESS").is_some_and(|v| v == "1");
    let ctx = common::context();
    let mut failures = Vec::new();
    for (name, records) in common::cases() {
        let got = encode_bundle(&records, &ctx, Profile::Phd)
            .unwrap()
            .to_pretty_json();
        let path = golden_dir().join(format!("{name}.json"));
        if bless {
            std::fs::create_dir_all(golden_dir()).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(want) if want == got => {}
            Ok(_) => failures.push(format!("{name}: differs from {}", path.display())),
            Err(e) => failures.push(format!("{name}: {} ({e})", path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "golden files differ (HEARTH_BLESS=1 rewrites them after review):\n{}",
        failures.join("\n")
    );
}

#[test]
fn golden_bundles_have_the_phd_elements() {
    let ctx = common::context();
    for (name, records) in common::cases() {
        let bundle = encode_bundle(&records, &ctx, Profile::Phd).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bundle.to_json_bytes()).unwrap();
        let problems = check::phd_problems(&v);
        assert!(problems.is_empty(), "{name}: {problems:#?}");
        // The pretty and compact forms are the same JSON.
        let pretty: serde_json::Value = serde_json::from_str(&bundle.to_pretty_json()).unwrap();
        assert_eq!(pretty, v, "{name}");
    }
}

#[test]
fn encoding_is_deterministic() {
    let ctx = common::context();
    for (name, records) in common::cases() {
        let a = encode_bundle(&records, &ctx, Profile::Phd)
            .unwrap()
            .to_json_bytes();
        let b = encode_bundle(&records, &ctx.clone(), Profile::Phd)
            .unwrap()
            .to_json_bytes();
        assert_eq!(a, b, "{name}");
    }
}
