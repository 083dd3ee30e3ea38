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
                if ty == Some(phd.as_str()) {
                    // PhdDevice: manufacturer 1..1, modelNumber 1..1 (a value, or the
                    // data-absent-reason extension when the device never told it).
                    for field in ["manufacturer", "modelNumber"] {
                        let value = r
                            .get(field)
                            .and_then(Value::as_str)
                            .is_some_and(|v| !v.trim().is_empty());
                        let absent = r
                            .pointer(&format!("/_{field}/extension"))
                            .and_then(Value::as_array)
                            .is_some_and(|x| {
                                x.iter().any(|e| {
                                    e.get("url").and_then(Value::as_str)
                                        == Some(codes::DAR_EXTENSION)
                                        && e.get("valueCode").and_then(Value::as_str).is_some()
                                })
                            });
                        if !value && !absent {
                            bad(&format!(
                                "PhdDevice without {field} (1..1: a value or a data-absent-reason)"
                            ));
                        }
                    }
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
    // The IG's conditionalCreate slice (0..1): `<16 hex>-<patient>-<MDC code>-<time>`.
    let slices: Vec<&str> = r
        .get("identifier")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .filter(|i| {
            i.get("system").and_then(Value::as_str)
                == Some(codes::PHD_OBSERVATION_IDENTIFIER_SYSTEM)
        })
        .filter_map(|i| i.get("value").and_then(Value::as_str))
        .collect();
    match slices.as_slice() {
        [] => {}
        [v] => {
            let device_ok = v.split('-').next().is_some_and(|d| {
                matches!(d.len(), 12 | 16)
                    && d.bytes()
                        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
                    && d.bytes().all(|b| b.is_ascii_hexdigit())
            });
            let mdc = r
                .pointer("/code/coding")
                .and_then(Value::as_array)
                .and_then(|c| {
                    c.iter()
                        .find(|c| {
                            c.get("system").and_then(Value::as_str) == Some(codes::MDC_SYSTEM)
                        })
                        .and_then(|c| c.get("code").and_then(Value::as_str))
                });
            let type_ok = mdc.is_some_and(|m| v.contains(&format!("-{m}-")));
            if !device_ok || !type_ok {
                bad("PhdBaseObservation identifier is not <device>-<patient>-<MDC code>-<time>");
            }
        }
        _ => bad("more than one PhdBaseObservation conditionalCreate identifier"),
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

/// Problems of an encoded VKP Bundle, empty when it has what hearth's `vkp` profile promises
/// (`PROFILES.md`): a `transaction` of Observations only, each a conditional create on its
/// `urn:uuid:` identifier, each passing [`national_observation_problems`].
pub fn vkp_problems(bundle: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return vec!["not a Bundle".to_owned()];
    }
    if bundle.get("type").and_then(Value::as_str) != Some("transaction") {
        out.push("Bundle.type is not transaction".to_owned());
    }
    let mut urls = BTreeSet::new();
    for (i, e) in entries(bundle).iter().enumerate() {
        let mut bad = |what: &str| out.push(format!("entry {i}: {what}"));
        let s = |p: &str| e.pointer(p).and_then(Value::as_str);
        let id_value = s("/resource/identifier/0/value");
        match s("/fullUrl") {
            Some(u) if u.starts_with("urn:uuid:") && Some(u) == id_value => {
                if !urls.insert(u.to_owned()) {
                    bad("fullUrl repeated");
                }
            }
            _ => bad("fullUrl is not the urn:uuid of the Observation's identifier"),
        }
        if s("/request/method") != Some("POST") || s("/request/url") != Some("Observation") {
            bad("request is not POST Observation");
        }
        let want = id_value.map(|v| crate::if_none_exist(codes::URI_SYSTEM, v));
        if want.is_none() || s("/request/ifNoneExist").map(str::to_owned) != want {
            bad("ifNoneExist is not identifier=urn:ietf:rfc:3986|<the identifier>");
        }
        national_observation_problems(e.get("resource").unwrap_or(&Value::Null), &mut bad);
    }
    out
}

/// Problems of an encoded PMD Bundle, empty when it follows the IG's `pmd-Bundle-Observation`
/// (`batch`: unique `fullUrl` per entry, `request` PUT `Observation/<id>` or POST; Observations
/// only) or is a `collection` without requests, carries the municipality tag (kommunenummer, 4
/// digits) and a Bundle identifier as NHN's examples do, and each Observation passes
/// [`national_observation_problems`] and has an `id`.
pub fn pmd_problems(bundle: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return vec!["not a Bundle".to_owned()];
    }
    let ty = bundle.get("type").and_then(Value::as_str);
    let batch = ty == Some("batch");
    if !batch && ty != Some("collection") {
        out.push("Bundle.type is neither batch nor collection".to_owned());
    }
    let tag_ok = bundle
        .pointer("/meta/tag")
        .and_then(Value::as_array)
        .is_some_and(|tags| {
            tags.iter().any(|t| {
                t.get("system").and_then(Value::as_str) == Some(codes::KOMMUNENUMMER_SYSTEM)
                    && t.get("code")
                        .and_then(Value::as_str)
                        .is_some_and(|c| c.len() == 4 && c.bytes().all(|b| b.is_ascii_digit()))
            })
        });
    if !tag_ok {
        out.push("no municipality tag (kommunenummer, 4 digits) in Bundle.meta.tag".to_owned());
    }
    if bundle.pointer("/identifier/system").and_then(Value::as_str)
        != Some(codes::PMD_BUNDLE_IDENTIFIER_SYSTEM)
        || bundle
            .pointer("/identifier/value")
            .and_then(Value::as_str)
            .is_none()
    {
        out.push("no Bundle.identifier in the komlink bundle-identifier system".to_owned());
    }
    let mut urls = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for (i, e) in entries(bundle).iter().enumerate() {
        let mut bad = |what: &str| out.push(format!("entry {i}: {what}"));
        let s = |p: &str| e.pointer(p).and_then(Value::as_str);
        match s("/fullUrl") {
            Some(u) if !u.is_empty() => {
                if !urls.insert(u.to_owned()) {
                    bad("fullUrl repeated");
                }
            }
            _ => bad("no fullUrl (pmd-Bundle-Observation: 1..1, echoed in the response)"),
        }
        let id = s("/resource/id");
        match id {
            Some(id) if !id.is_empty() => {
                if !ids.insert(id.to_owned()) {
                    bad("Observation.id repeated");
                }
            }
            _ => bad("Observation without id"),
        }
        if batch {
            let put_ok = s("/request/method") == Some("PUT")
                && id.is_some_and(|id| s("/request/url") == Some(&format!("Observation/{id}")));
            let post_ok =
                s("/request/method") == Some("POST") && s("/request/url") == Some("Observation");
            if !put_ok && !post_ok {
                bad("request is neither PUT Observation/<id> nor POST Observation");
            }
        } else if e.get("request").is_some() {
            bad("request in a collection Bundle (bdl-3)");
        }
        national_observation_problems(e.get("resource").unwrap_or(&Value::Null), &mut bad);
    }
    out
}

fn entries(bundle: &Value) -> &[Value] {
    bundle
        .get("entry")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

fn coding_code<'a>(concept: &'a Value, system: &str) -> Vec<&'a str> {
    concept
        .get("coding")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .filter(|c| c.get("system").and_then(Value::as_str) == Some(system))
                .filter_map(|c| c.get("code").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

fn national_value_ok(holder: &Value, units: &[&str], bad: &mut impl FnMut(&str), what: &str) {
    match (holder.get("valueQuantity"), holder.get("dataAbsentReason")) {
        (Some(q), None) => {
            let unit_ok = q
                .get("code")
                .and_then(Value::as_str)
                .is_some_and(|u| units.contains(&u));
            if !quantity_ok(q) || !unit_ok {
                bad(&format!(
                    "{what}: valueQuantity needs a value and a UCUM code from {units:?}"
                ));
            }
        }
        (None, Some(d)) => {
            if !has_coding(d, codes::DAR_SYSTEM) {
                bad(&format!(
                    "{what}: dataAbsentReason not from data-absent-reason"
                ));
            }
        }
        _ => bad(&format!(
            "{what}: needs exactly one of valueQuantity, dataAbsentReason"
        )),
    }
}

/// The VkpObservation rules hearth relies on, for one Observation: the `urn:uuid:` identifier
/// (deduplication), status `final`, category `vital-signs`, LOINC + the profile's SNOMED CT code
/// (+ NLK NPU02187 for glucose), `meta.profile` (when present) naming the matching VKP profile,
/// `subject.identifier` with an FNR/DNR/FHN system and 11 digits (no literal reference), a full
/// `effectiveDateTime` with time zone, a UCUM value in the profile's units or a
/// dataAbsentReason (blood pressure: systolic 8480-6/271649006 and diastolic 8462-4/271650006
/// components in `mm[Hg]`, no value), no performer in the vital-sign profiles and only an
/// organisation number in the general one, and the device as a logical reference.
pub fn national_observation_problems(r: &Value, bad: &mut impl FnMut(&str)) {
    if r.get("resourceType").and_then(Value::as_str) != Some("Observation") {
        bad("not an Observation");
        return;
    }
    let ident_ok = r.pointer("/identifier/0/system").and_then(Value::as_str)
        == Some(codes::URI_SYSTEM)
        && r.pointer("/identifier/0/value")
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with("urn:uuid:"));
    if !ident_ok {
        bad("identifier is not hearth's urn:uuid record id");
    }
    if r.get("status").and_then(Value::as_str) != Some("final") {
        bad("status is not final");
    }
    let vital = r
        .get("category")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| coding_code(c, codes::OBSERVATION_CATEGORY_SYSTEM) == ["vital-signs"])
        });
    if !vital {
        bad("no vital-signs category");
    }
    let code = r.get("code").unwrap_or(&Value::Null);
    let row = coding_code(code, codes::LOINC_SYSTEM)
        .into_iter()
        .find_map(codes::national_for_loinc);
    let Some(row) = row else {
        bad("code has no LOINC code of a VKP profile");
        return;
    };
    if !coding_code(code, codes::SNOMED_SYSTEM).contains(&row.snomed.0) {
        bad(&format!("code lacks SNOMED CT {}", row.snomed.0));
    }
    if let Some((nlk, _)) = row.nlk {
        if !coding_code(code, codes::NLK_SYSTEM).contains(&nlk) {
            bad(&format!("code lacks NLK {nlk}"));
        }
    }
    if let Some(profiles) = r.pointer("/meta/profile").and_then(Value::as_array) {
        let want = format!("/{}", row.profile);
        if !profiles
            .iter()
            .filter_map(Value::as_str)
            .any(|p| p.ends_with(&want))
        {
            bad(&format!("meta.profile does not name {}", row.profile));
        }
    }
    let subject_ok = r.pointer("/subject/reference").is_none()
        && r.pointer("/subject/identifier/system")
            .and_then(Value::as_str)
            .is_some_and(|s| codes::NATIONAL_ID_SYSTEMS.contains(&s))
        && r.pointer("/subject/identifier/value")
            .and_then(Value::as_str)
            .is_some_and(|v| v.len() == 11 && v.bytes().all(|b| b.is_ascii_digit()));
    if !subject_ok {
        bad("subject is not a logical reference by FNR/DNR/FHN (11 digits)");
    }
    let eff_ok = r
        .get("effectiveDateTime")
        .and_then(Value::as_str)
        .is_some_and(|t| t.len() > 10 && t.contains('T') && (t.ends_with('Z') || t.contains('+')));
    if !eff_ok {
        bad("effectiveDateTime is not a full time with zone");
    }
    if row.mdc == [150020] {
        if r.get("valueQuantity").is_some() || r.get("dataAbsentReason").is_some() {
            bad("blood pressure with a value of its own");
        }
        let comps = r
            .get("component")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for (loinc, sct) in [("8480-6", "271649006"), ("8462-4", "271650006")] {
            let found: Vec<&Value> = comps
                .iter()
                .filter(|c| {
                    coding_code(c.get("code").unwrap_or(&Value::Null), codes::LOINC_SYSTEM)
                        .contains(&loinc)
                })
                .collect();
            match found.as_slice() {
                [c] => {
                    let cc = c.get("code").unwrap_or(&Value::Null);
                    if !coding_code(cc, codes::SNOMED_SYSTEM).contains(&sct) {
                        bad(&format!("component {loinc} lacks SNOMED CT {sct}"));
                    }
                }
                _ => bad(&format!("needs exactly one component {loinc}")),
            }
        }
        for (i, c) in comps.iter().enumerate() {
            national_value_ok(c, &["mm[Hg]"], bad, &format!("component {i}"));
        }
    } else {
        if r.get("component").is_some() {
            bad("components outside blood pressure");
        }
        national_value_ok(r, row.units, bad, "value");
    }
    if let Some(performers) = r.get("performer").and_then(Value::as_array) {
        for p in performers {
            let sys = p.pointer("/identifier/system").and_then(Value::as_str);
            let ok = if row.profile == "vkp-Observation" {
                sys == Some(codes::ORGNR_SYSTEM)
            } else {
                sys == Some(codes::FNR_SYSTEM)
            };
            if !ok {
                bad("performer not allowed by the profile");
            }
        }
    }
    if let Some(d) = r.get("device") {
        if d.get("reference").is_some()
            || d.pointer("/identifier/system").is_none()
            || d.pointer("/identifier/value").is_none()
        {
            bad("device is not a logical reference by identifier");
        }
    }
    if r.get("extension").is_some() {
        bad("extension present (VkpObservation defines none)");
    }
}
