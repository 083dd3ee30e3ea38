//! Black-box tests of the command line: the seams checked from outside (DESIGN "The command
//! line"). Each runs the built binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

use std::process::{Command, Output};

fn hearth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

#[test]
fn every_verb_has_help() {
    for verb in [
        vec![],
        vec!["run"],
        vec!["demo"],
        vec!["config"],
        vec!["config", "check"],
        vec!["config", "example"],
        vec!["outbox"],
        vec!["outbox", "stats"],
    ] {
        let mut args = verb.clone();
        args.push("--help");
        let o = hearth(&args);
        assert!(o.status.success(), "{args:?}");
        assert!(text(&o.stdout).contains("Usage"), "{args:?}");
    }
}

#[test]
fn version_is_printed() {
    let o = hearth(&["--version"]);
    assert!(o.status.success());
    assert_eq!(
        text(&o.stdout).trim(),
        format!("hearth {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_annotated_example_passes_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hearth.toml");
    let example = hearth(&["config", "example"]);
    assert!(example.status.success());
    std::fs::write(&file, &example.stdout).unwrap();
    let o = hearth(&["config", "check", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("OK"));
    assert!(docs_example_is_shipped());
}

fn docs_example_is_shipped() -> bool {
    let o = hearth(&[
        "config",
        "check",
        concat!(env!("CARGO_MANIFEST_DIR"), "/docs/hearth.example.toml"),
    ]);
    o.status.success()
}

#[test]
fn a_broken_config_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(
        &file,
        "[gateway]\nid = \"box-1\"\n\n[outbox]\nmax_rows = 5000\nmax_bytse = \"1 GiB\"\n",
    )
    .unwrap();
    let o = hearth(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    let want = format!("{}:6:", file.display());
    assert!(err.contains(&want), "names file and line 6: {err}");
    assert!(err.contains("max_bytse"), "names the key: {err}");
}

#[test]
fn a_missing_config_file_says_what_to_do() {
    let o = hearth(&["config", "check", "/nonexistent/hearth.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("/nonexistent/hearth.toml"));
}

#[test]
fn run_refuses_an_invalid_config_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[[route]]\nname = \"hub\"\ncategories = [\"journal\"]\nuplink = \"loopback\"\n",
    )
    .unwrap();
    let o = hearth(&["run", "--config", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains(":3:"), "{err}");
    assert!(err.contains("health"), "lists the valid categories: {err}");
}

#[test]
fn demo_runs_the_whole_path_and_exits_zero() {
    let o = hearth(&["demo", "--for", "3s"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("→ hub"), "{out}");
    assert!(out.contains("nothing lost"), "{out}");
}

#[test]
fn demo_keep_leaves_an_outbox_that_stats_can_read() {
    let o = hearth(&["demo", "--for", "2s", "--keep"]);
    assert!(o.status.success());
    let out = text(&o.stdout);
    let dir = out
        .lines()
        .find_map(|l| l.strip_prefix("data directory: "))
        .and_then(|l| l.split(" (").next())
        .unwrap()
        .to_owned();
    let s = hearth(&["outbox", "stats", "--data-dir", &dir, "--json"]);
    assert!(s.status.success(), "{}", text(&s.stderr));
    let json: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["routes"][0]["name"], "hub");
    assert!(json["counters"]["ingested"].as_i64().unwrap() > 0);
    let human = hearth(&["outbox", "stats", "--data-dir", &dir]);
    assert!(text(&human.stdout).contains("route hub"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn outbox_stats_on_a_wrong_directory_explains() {
    let o = hearth(&["outbox", "stats", "--data-dir", "/nonexistent"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("--data-dir"));
}
