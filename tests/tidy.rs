//! Tidy: the architecture's rules, checked from the files (after rust-analyzer's `tidy.rs`).
//!
//! - The dependency rules of ARCHITECTURE.md, read from every crate's `Cargo.toml`: drivers and
//!   uplinks are peers over the core and never depend on each other; the model and the leaf
//!   crates depend on nothing of ours; no driver depends on the outbox (drivers reach storage
//!   through drivers/api's `RecordSink`); the outbox reaches only the model and the driver
//!   contract (hearth-driver-api, whose `RecordSink` it implements), never a driver or an uplink;
//!   the receiver and the test kit are never a dependency of production code (the binary's
//!   `receiver`/`demo` verbs excepted).
//! - Every test that ARCHITECTURE.md names exists.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may fail loudly

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A workspace crate: its folder and its hearth dependencies, normal and dev.
#[derive(Debug)]
struct Crate {
    dir: String,
    normal: BTreeSet<String>,
    dev: BTreeSet<String>,
}

fn hearth_deps(table: Option<&toml::Value>) -> BTreeSet<String> {
    table
        .and_then(toml::Value::as_table)
        .map(|t| {
            t.keys()
                .filter(|k| k.starts_with("hearth"))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn workspace() -> BTreeMap<String, Crate> {
    let mut manifests = vec![PathBuf::from("Cargo.toml")];
    for group in ["crates", "drivers"] {
        for e in std::fs::read_dir(group).unwrap().flatten() {
            let m = e.path().join("Cargo.toml");
            if m.exists() {
                manifests.push(m);
            }
        }
    }
    manifests
        .into_iter()
        .map(|m| {
            let doc: toml::Value = toml::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
            let name = doc["package"]["name"].as_str().unwrap().to_owned();
            let dir = m.parent().unwrap().to_string_lossy().into_owned();
            let krate = Crate {
                dir: if dir.is_empty() { ".".into() } else { dir },
                normal: hearth_deps(doc.get("dependencies")),
                dev: hearth_deps(doc.get("dev-dependencies")),
            };
            (name, krate)
        })
        .collect()
}

fn is_driver(c: &Crate) -> bool {
    c.dir.starts_with("drivers/")
}

fn is_uplink(name: &str) -> bool {
    name == "hearth-uplink" || name.starts_with("hearth-uplink-")
}

#[test]
fn the_dependency_rules_of_the_architecture_hold() {
    let ws = workspace();
    assert!(ws.len() >= 18, "found only {} crates", ws.len());
    let mut broken = Vec::new();
    let mut rule = |ok: bool, what: String| {
        if !ok {
            broken.push(what);
        }
    };
    for (name, c) in &ws {
        let all: BTreeSet<_> = c.normal.union(&c.dev).cloned().collect();
        if ["hearth-model", "hearth-tls", "hearth-runtime"].contains(&name.as_str()) {
            rule(
                all.is_empty(),
                format!("{name} is a leaf and depends on {all:?}"),
            );
        }
        if name == "hearth-outbox" {
            // The outbox implements the drivers' contract (`RecordSink`, ADR 0009), so it may
            // name hearth-driver-api; never a real driver or an uplink.
            rule(
                c.normal
                    .iter()
                    .all(|d| d == "hearth-model" || d == "hearth-driver-api"),
                format!(
                    "the outbox reaches beyond the model and the driver contract: {:?}",
                    c.normal
                ),
            );
            // Not even its tests: a driver implemented over the outbox would make the
            // dependency circular again through the back door.
            let beyond: Vec<_> = all
                .iter()
                .filter(|d| {
                    *d != "hearth-driver-api" && (is_uplink(d) || ws.get(*d).is_some_and(is_driver))
                })
                .collect();
            rule(
                beyond.is_empty(),
                format!("the outbox depends on drivers or uplinks {beyond:?}"),
            );
        }
        if is_driver(c) {
            let uplinks: Vec<_> = all
                .iter()
                .filter(|d| is_uplink(d) || *d == "hearth-receiver")
                .collect();
            rule(
                uplinks.is_empty(),
                format!("driver {name} depends on uplinks {uplinks:?}"),
            );
            rule(
                !c.normal.contains("hearth-outbox"),
                format!(
                    "driver {name} depends on the outbox; drivers reach storage only through \
                     drivers/api's RecordSink (ADR 0009)"
                ),
            );
        }
        if is_uplink(name) {
            let drivers: Vec<_> = all
                .iter()
                .filter(|d| ws.get(*d).is_some_and(is_driver))
                .collect();
            rule(
                drivers.is_empty(),
                format!("uplink {name} depends on drivers {drivers:?}"),
            );
        }
        if name != "hearth" {
            for tool in ["hearth-receiver", "hearth-test-kit"] {
                rule(
                    !c.normal.contains(tool),
                    format!("{name} depends on {tool} outside its tests"),
                );
            }
        }
    }
    rule(
        !ws["hearth"].normal.contains("hearth-test-kit"),
        "the binary depends on the test kit".into(),
    );
    assert!(
        broken.is_empty(),
        "ARCHITECTURE.md's dependency rules are broken:\n{}",
        broken.join("\n")
    );
}

/// Every `.rs` file of the repository (not target/).
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name();
        if p.is_dir() && name != "target" && !name.to_string_lossy().starts_with('.') {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_test_named_in_architecture_md_exists() {
    let doc = std::fs::read_to_string("ARCHITECTURE.md").unwrap();
    let mut files = Vec::new();
    sources(Path::new("."), &mut files);
    let code: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let mut named = 0;
    let mut missing = Vec::new();
    for word in doc.split('`').skip(1).step_by(2) {
        // A path to a test file or folder, e.g. `tests/crash.rs`, `drivers/zigbee2mqtt/tests/fuzz.rs`.
        if (word.ends_with(".rs") || word.contains("/tests/")) && !word.contains(' ') {
            let path = word.split("::").next().unwrap_or(word);
            if path.contains('/') && !Path::new(path).exists() {
                missing.push(format!("file {path}"));
            }
            continue;
        }
        // A test name: a snake_case sentence of at least four words, e.g.
        // `committed_records_survive_reopen`; a `module::tests::name` path counts by its name.
        let name = word.rsplit("::").next().unwrap_or(word);
        let sentence = name.split('_').count() >= 4
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if sentence {
            named += 1;
            let defined = ["(", "<"]
                .iter()
                .any(|open| code.contains(&format!("fn {name}{open}")));
            if !defined {
                missing.push(format!("test {name}"));
            }
        }
    }
    assert!(
        named >= 30,
        "found only {named} test names in ARCHITECTURE.md"
    );
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names what does not exist:\n{}",
        missing.join("\n")
    );
}

/// The top-level modules of a crate's `src/` and, for each, the other top-level modules its
/// non-test code names through `crate::<module>`.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            let mut inner = Vec::new();
            sources(&p, &mut inner);
            files.extend(inner.into_iter().map(|f| (name.clone(), f)));
        } else if let Some(stem) = name.strip_suffix(".rs") {
            if stem != "lib" && stem != "main" {
                files.push((stem.to_owned(), p));
            }
        }
    }
    let modules: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests may reach anywhere; only what ships counts.
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or("")
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let edges = graph.entry(module.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name != module && modules.contains(&name) {
                edges.insert(name);
            }
        }
    }
    graph
}

/// Issue 14: modules inside a crate must not import each other in a circle (each circle was a
/// concern split in the wrong place; the shared part gets a module of its own).
#[test]
fn no_crate_has_modules_that_import_each_other_in_a_circle() {
    let mut circles = Vec::new();
    for c in workspace().values() {
        let src = Path::new(&c.dir).join("src");
        let graph = module_graph(&src);
        for (a, edges) in &graph {
            for b in edges {
                // a → b and b reaches a again: a circle through a and b.
                let mut seen = BTreeSet::new();
                let mut todo = vec![b.clone()];
                while let Some(m) = todo.pop() {
                    if !seen.insert(m.clone()) {
                        continue;
                    }
                    todo.extend(graph.get(&m).into_iter().flatten().cloned());
                }
                if seen.contains(a) && a < b {
                    circles.push(format!("{}: {a} <-> {b}", c.dir));
                }
            }
        }
    }
    assert!(
        circles.is_empty(),
        "modules that import each other in a circle:\n{}",
        circles.join("\n")
    );
}
