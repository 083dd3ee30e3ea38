#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The JSON Schema (`docs/drivers/external.schema.json`) and `parse` agree: on every corpus file
//! (`tests/corpus/valid/*.json` must pass both, `tests/corpus/invalid/*.json` must fail both),
//! checked with Python's `jsonschema` (Debian: python3 and python3-jsonschema), and on the lists
//! of names and limits, checked here without Python.
//!
//! Without python3 or its jsonschema module the corpus test is skipped with a message, unless
//! `HEARTH_REQUIRE_JSONSCHEMA` is set (CI sets it). `HEARTH_PYTHON` names another interpreter.

use std::path::{Path, PathBuf};
use std::process::Command;

use hearth_driver_external::{
    ALARM_TYPES, MAX_COMPONENTS, MAX_MESSAGE_ID_LEN, RESERVED_TECHNICAL_TYPES, TECHNICAL_TYPES,
    parse,
};
use hearth_model::{AbsentReason, Category, Timestamp};
use serde_json::Value as Json;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn schema_path() -> PathBuf {
    crate_dir().join("../../docs/drivers/external.schema.json")
}

fn schema() -> Json {
    serde_json::from_slice(&std::fs::read(schema_path()).unwrap()).unwrap()
}

fn corpus(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(crate_dir().join("tests/corpus").join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// Prints `<valid|invalid>\t<path>\t<first schema error>` per file. Also applies the rules the
/// schema's `$comment` lists as not expressible (bytes, strict JSON, total entries), as hearth
/// does.
const CHECKER: &str = r#"
import json, sys
try:
    import jsonschema
except ImportError:
    sys.exit(3)
schema = json.load(open(sys.argv[1], encoding="utf-8"))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
def no_constants(name):
    raise ValueError(name + " is not JSON")
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    verdict, why = "valid", ""
    if len(data) > 65536:
        verdict, why = "invalid", "more than 65536 bytes"
    else:
        try:
            doc = json.loads(data.decode("utf-8"), parse_constant=no_constants)
        except Exception as e:
            verdict, why = "invalid", "not JSON: %s" % e
        else:
            error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
            if error is not None:
                verdict, why = "invalid", "%s: %s" % (error.json_path, error.message[:200])
            elif sum(len(doc.get(k, [])) for k in ("readings", "alarms", "technical")) > 1000:
                verdict, why = "invalid", "more than 1000 entries"
    print("%s\t%s\t%s" % (verdict, path, why.replace("\n", " ").replace("\t", " ")))
"#;

fn skip_or_fail(why: &str) {
    if std::env::var_os("HEARTH_REQUIRE_JSONSCHEMA").is_some() {
        panic!("{why}, and HEARTH_REQUIRE_JSONSCHEMA is set");
    }
    eprintln!(
        "SKIPPED schema_and_parser_agree_on_the_corpus: {why}; install python3 and \
         python3-jsonschema (Debian) to run it"
    );
}

fn parse_file(path: &Path) -> Result<usize, String> {
    let bytes = std::fs::read(path).unwrap();
    parse(
        "corpus",
        &bytes,
        Timestamp::from_unix_millis(0),
        Category::Health,
    )
    .map(|a| a.records.len())
    .map_err(|e| e.to_string())
}

#[test]
fn schema_and_parser_agree_on_the_corpus() {
    let valid = corpus("valid");
    let invalid = corpus("invalid");
    assert!(valid.len() >= 12, "at least 12 valid corpus files");
    assert!(invalid.len() >= 25, "at least 25 invalid corpus files");

    // The parser, on its own (runs without Python).
    let mut mismatches = Vec::new();
    for f in &valid {
        if let Err(e) = parse_file(f) {
            mismatches.push(format!("{}: parse refused it: {e}", f.display()));
        }
    }
    for f in &invalid {
        if let Ok(n) = parse_file(f) {
            mismatches.push(format!("{}: parse accepted {n} records", f.display()));
        }
    }

    let python = std::env::var("HEARTH_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = Command::new(&python)
        .arg("-c")
        .arg(CHECKER)
        .arg(schema_path())
        .args(valid.iter().chain(&invalid))
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
            return skip_or_fail(&format!("{python} cannot be started ({e})"));
        }
    };
    if output.status.code() == Some(3) {
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
        return skip_or_fail(&format!("{python} has no jsonschema module"));
    }
    assert!(
        output.status.success(),
        "the schema checker failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let verdicts: Vec<(&str, &str, &str)> = stdout
        .lines()
        .map(|l| {
            let mut p = l.splitn(3, '\t');
            (p.next().unwrap(), p.next().unwrap(), p.next().unwrap_or(""))
        })
        .collect();
    assert_eq!(verdicts.len(), valid.len() + invalid.len(), "{stdout}");
    for (verdict, path, why) in verdicts {
        let expected = if valid.iter().any(|v| v.as_os_str() == path) {
            "valid"
        } else {
            "invalid"
        };
        if verdict != expected {
            mismatches.push(format!(
                "{path}: the schema says {verdict} ({why}), the corpus says {expected}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}

fn strings(v: &Json) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn owned(v: &[&str]) -> Vec<String> {
    sorted(v.iter().map(|s| (*s).to_owned()).collect())
}

#[test]
fn schema_names_and_limits_match_the_crate() {
    let s = schema();
    let defs = &s["$defs"];
    assert_eq!(s["properties"]["v"]["const"], 1);
    assert_eq!(
        s["properties"]["id"]["maxLength"],
        Json::from(MAX_MESSAGE_ID_LEN)
    );
    let not_alarm = sorted(strings(
        &defs["alarm"]["properties"]["type"]["allOf"][1]["not"]["enum"],
    ));
    let mut want = TECHNICAL_TYPES.to_vec();
    want.extend(RESERVED_TECHNICAL_TYPES);
    assert_eq!(not_alarm, owned(&want));
    let not_technical = sorted(strings(
        &defs["technical"]["properties"]["type"]["allOf"][1]["not"]["enum"],
    ));
    let mut want = ALARM_TYPES.to_vec();
    want.extend(RESERVED_TECHNICAL_TYPES);
    assert_eq!(not_technical, owned(&want));
    let absent = sorted(strings(&defs["absent"]["properties"]["absent"]["enum"]));
    assert_eq!(absent, owned(&AbsentReason::ALL.map(AbsentReason::as_str)));
    assert_eq!(
        defs["value"]["oneOf"][1]["properties"]["components"]["maxItems"],
        Json::from(MAX_COMPONENTS)
    );
    for section in ["readings", "alarms", "technical"] {
        assert_eq!(s["properties"][section]["maxItems"], 1000, "{section}");
    }
}
