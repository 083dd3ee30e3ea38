//! Our own check of the PHD IG elements that a generic FHIR model validator does not enforce
//! (`fhir.resources` checks R4 structure and types, not profiles).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::codes;

/// Problems of an encoded PHD transaction Bundle, empty when it has what the PHD IG requires of
/// hearth's output: conditional-create requests; per Observation an identifier, status, the
/// `phd` category, an MDC code, subject, effective time, a device reference and a gateway
/// extension that resolve inside the Bundle, and a value, a dataAbsentReason or components
/// (each with an MDC or ASN1ToHL7 code and a value or dataAbsentReason; quantities in UCUM);
/// per Device an identifier and the PHD/PHG type code.
pub fn phd_problems(bundle: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        out.push("not a Bundle".to_owned());
        return out;
    }
    if bundle.get("type").and_then(Value::as_str) != Some("transaction") {
        out.push("Bundle.type is not transaction".to_owned());
    }
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let devices: BTreeSet<&str> = entries
        .iter()
        .filter(|e| e.pointer("/resource/resourceType").and_then(Value::as_str) == Some("Device"))
        .filter_map(|e| e.get("fullUrl").and_then(Value::as_str))
        .collect();
    let mut urls = BTreeSet::new();
    for (i, e) in entries.iter().enumerate() {
        let mut bad = |what: &str| out.push(format!("entry {i}: {what}"));
        let s = |p: &str| e.pointer(p).and_then(Value::as_str);
        match s("/fullUrl") {
            Some(u) if u.starts_with("urn:uuid:") => {
                if !urls.insert(u.to_owned()) {
                    bad("fullUrl repeated");
                }
            }
            _ => bad("fullUrl is not a urn:uuid"),
        }
        let rt = s("/resource/resourceType").unwrap_or("");
        if s("/request/method") != Some("POST") || s("/request/url") != Some(rt) {
            bad("request is not POST to the resource type");
        }
        if !s("/request/ifNoneExist").is_some_and(|x| x.starts_with("identifier=")) {
            bad("no conditional create (ifNoneExist identifier=…)");
        }
        let r = e.get("resource").unwrap_or(&Value::Null);
        match rt {
            "Observation" => observation_problems(r, &devices, &mut bad),
            "Device" => {
                if !has_identifier(r) {
                    bad("Device without identifier");
                }
                let ty = r.pointer("/type/coding/0/code").and_then(Value::as_str);
                let phd = codes::MDC_PHD_TYPE.to_string();
                let phg = codes::MDC_PHG_TYPE.to_string();
                if ty != Some(phd.as_str()) && ty != Some(phg.as_str()) {
                    bad("Device type is neither MDC 65573 (PHD) nor 531981 (PHG)");
                }
            }
            other => bad(&format!("unexpected resource {other:?}")),
        }
    }
    out
}

fn has_identifier(r: &Value) -> bool {
    r.get("identifier")
        .and_then(Value::as_array)
        .is_some_and(|ids| {
            !ids.is_empty()
                && ids
                    .iter()
                    .all(|i| i.get("system").is_some() && i.get("value").is_some())
        })
}

fn has_coding(concept: &Value, system: &str) -> bool {
    concept
        .get("coding")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.get("system").and_then(Value::as_str) == Some(system)
                    && c.get("code")
                        .and_then(Value::as_str)
                        .is_some_and(|x| !x.is_empty())
            })
        })
}

fn quantity_ok(q: &Value) -> bool {
    q.get("value").is_some_and(Value::is_number)
        && q.get("system").and_then(Value::as_str) == Some(codes::UCUM_SYSTEM)
        && q.get("code").and_then(Value::as_str).is_some()
}

fn observation_problems(r: &Value, devices: &BTreeSet<&str>, bad: &mut impl FnMut(&str)) {
    if !has_identifier(r) {
        bad("Observation without identifier");
    }
    if !matches!(
        r.get("status").and_then(Value::as_str),
        Some("final" | "preliminary")
    ) {
        bad("status is not final/preliminary");
    }
    let phd_category = r
        .get("category")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| has_coding(c, codes::PHD_CATEGORY_SYSTEM)));
    if !phd_category {
        bad("no phd category");
    }
    if !r
        .get("code")
        .is_some_and(|c| has_coding(c, codes::MDC_SYSTEM))
    {
        bad("code without MDC coding");
    }
    let subject = r.get("subject");
    if !subject.is_some_and(|s| s.get("reference").is_some() || s.get("identifier").is_some()) {
        bad("no subject");
    }
    if r.get("effectiveDateTime").is_none() && r.get("effectivePeriod").is_none() {
        bad("no effective time");
    }
    let device = r.pointer("/device/reference").and_then(Value::as_str);
    if !device.is_some_and(|d| devices.contains(d)) {
        bad("device reference missing or not a Device of this Bundle");
    }
    let gateway = r
        .get("extension")
        .and_then(Value::as_array)
        .and_then(|x| {
            x.iter().find(|e| {
                e.get("url").and_then(Value::as_str) == Some(codes::GATEWAY_DEVICE_EXTENSION)
            })
        })
        .and_then(|e| e.pointer("/valueReference/reference"))
        .and_then(Value::as_str);
    if !gateway.is_some_and(|g| devices.contains(g)) {
        bad("gatewayDevice extension missing or not a Device of this Bundle");
    }
    let values = ["valueQuantity", "valueCodeableConcept", "valueString"]
        .iter()
        .filter(|k| r.get(**k).is_some())
        .count();
    let dar = r.get("dataAbsentReason").is_some();
    let components = r.get("component").and_then(Value::as_array);
    match (values, dar, components) {
        (1, false, None) => {
            if let Some(q) = r.get("valueQuantity") {
                if !quantity_ok(q) {
                    bad("valueQuantity without value, UCUM system or code");
                }
            }
        }
        (0, true, None) => {
            if !r
                .get("dataAbsentReason")
                .is_some_and(|d| has_coding(d, codes::DAR_SYSTEM))
            {
                bad("dataAbsentReason not from the data-absent-reason code system");
            }
        }
        (0, false, Some(cs)) if !cs.is_empty() => {
            for c in cs {
                let code = c.get("code").unwrap_or(&Value::Null);
                if !has_coding(code, codes::MDC_SYSTEM)
                    && !has_coding(code, codes::ASN1_TO_HL7_SYSTEM)
                {
                    bad("component code without MDC or ASN1ToHL7 coding");
                }
                let ok = match (
                    c.get("valueQuantity"),
                    c.get("valueBoolean"),
                    c.get("dataAbsentReason"),
                ) {
                    (Some(q), None, None) => quantity_ok(q),
                    (None, Some(b), None) => b.is_boolean(),
                    (None, None, Some(d)) => has_coding(d, codes::DAR_SYSTEM),
                    _ => false,
                };
                if !ok {
                    bad(
                        "component needs exactly one of a UCUM valueQuantity, valueBoolean, dataAbsentReason",
                    );
                }
            }
        }
        _ => bad("needs exactly one of value[x], dataAbsentReason, component"),
    }
}
