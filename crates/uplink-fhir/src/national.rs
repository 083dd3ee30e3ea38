//! Records → Bundles for the Norwegian receivers: VKP (HL7 Norway VkpObservation profiles, a
//! `transaction` of conditional creates) and PMD (Norsk helsenett "Pasientens måledata", a
//! `batch` of `PUT Observation/<record id>` per the IG's `pmd-Bundle-Observation`).
//!
//! Both carry Observations only: no Device or Patient resources (VKP and PMD reference the
//! patient and the device by identifier). Decisions and sources: `PROFILES.md`.

use std::borrow::Borrow;
use std::collections::BTreeSet;

use hearth_model::{Component, Mdc, Reading, Record, RecordId, Value};

use crate::EncodeError;
use crate::codes::{self, NationalRow};
use crate::context::{Context, Municipality, PatientRef, PmdBundleType, Profile, Unsupported};
use crate::encode::{
    Bundle, CLOCK_NOTE, EntryRole, Skipped, coding, concept, data_absent, date_time,
    effective_time, if_none_exist, patient_of, primary_key, quantity, urn,
};
use crate::json::{Json, obj};

/// Encode for [`Profile::Vkp`] or [`Profile::Pmd`].
pub(crate) fn encode<R: Borrow<Record>>(
    records: &[R],
    ctx: &Context,
    profile: Profile,
) -> Result<Bundle, EncodeError> {
    let pname = profile.as_str();
    let municipality = match profile {
        Profile::Pmd => Some(municipality(ctx, pname)?),
        _ => None,
    };
    if let Some(org) = &ctx.national.organization {
        if !is_digits(&org.orgnr, 9) {
            return Err(EncodeError::BadSetting {
                profile: pname,
                what: "the organisation number (orgnr) must be 9 digits",
            });
        }
    }

    let mut seen = BTreeSet::new();
    let mut skipped = Vec::new();
    let mut observations: Vec<(RecordId, &Reading, Json)> = Vec::new();
    for (index, record) in records.iter().map(Borrow::borrow).enumerate() {
        let id = record.id();
        if !seen.insert(id) {
            return Err(EncodeError::DuplicateRecord { index, record: id });
        }
        let result = match record {
            Record::Reading(r) => observation(index, r, ctx, profile).map(|o| (r, o)),
            Record::Alarm(_) => Err(EncodeError::NotAnObservation {
                index,
                record: id,
                kind: "safety alarm",
            }),
            Record::Technical(_) => Err(EncodeError::NotAnObservation {
                index,
                record: id,
                kind: "technical alarm",
            }),
        };
        match result {
            Ok((r, obs)) => observations.push((id, r, obs)),
            Err(
                err @ (EncodeError::NotInProfile { .. } | EncodeError::NotAnObservation { .. }),
            ) if ctx.options.unsupported == Unsupported::Skip => skipped.push(Skipped {
                index,
                record: id,
                reason: err.to_string(),
            }),
            Err(err) => return Err(err),
        }
    }

    let roles: Vec<EntryRole> = observations
        .iter()
        .map(|(id, _, _)| EntryRole::Observation(*id))
        .collect();
    let json = match (profile, municipality) {
        (Profile::Pmd, Some(m)) => pmd_bundle(observations, ctx, m),
        _ => vkp_bundle(observations),
    };
    Ok(Bundle::new(json, roles, skipped))
}

fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn municipality<'a>(
    ctx: &'a Context,
    pname: &'static str,
) -> Result<&'a Municipality, EncodeError> {
    match &ctx.national.municipality {
        Some(m) if is_digits(&m.number, 4) => Ok(m),
        _ => Err(EncodeError::BadSetting {
            profile: pname,
            what: "PMD needs the municipality number (kommunenummer, 4 digits) for the Bundle tag",
        }),
    }
}

/// VKP: `transaction`, every entry a conditional create on hearth's record id.
fn vkp_bundle(observations: Vec<(RecordId, &Reading, Json)>) -> Json {
    let entries = observations
        .into_iter()
        .map(|(id, _, resource)| {
            let record_urn = id.urn();
            Json::Obj(vec![
                ("fullUrl", Json::Str(record_urn.clone())),
                ("resource", resource),
                (
                    "request",
                    Json::Obj(vec![
                        ("method", Json::str("POST")),
                        ("url", Json::str("Observation")),
                        (
                            "ifNoneExist",
                            Json::Str(if_none_exist(codes::URI_SYSTEM, &record_urn)),
                        ),
                    ]),
                ),
            ])
        })
        .collect();
    Json::Obj(vec![
        ("resourceType", Json::str("Bundle")),
        ("type", Json::str("transaction")),
        ("entry", Json::Arr(entries)),
    ])
}

/// PMD: `batch` (IG `pmd-Bundle-Observation`) or `collection` (NHN examples), with the
/// municipality tag, a Bundle identifier derived from the record ids and a timestamp.
fn pmd_bundle(
    observations: Vec<(RecordId, &Reading, Json)>,
    ctx: &Context,
    m: &Municipality,
) -> Json {
    let batch = ctx.national.pmd_bundle_type == PmdBundleType::Batch;
    let ids: Vec<String> = observations
        .iter()
        .map(|(id, _, _)| id.to_string())
        .collect();
    let mut parts = vec!["pmd-bundle"];
    parts.extend(ids.iter().map(String::as_str));
    let bundle_urn = urn(&parts);
    let bundle_uuid = bundle_urn.trim_start_matches("urn:uuid:").to_owned();
    let timestamp = observations
        .iter()
        .map(|(_, r, _)| r.received_at)
        .max()
        .and_then(date_time);

    let entries = observations
        .into_iter()
        .map(|(id, _, resource)| {
            let mut e = vec![("fullUrl", Json::Str(id.urn())), ("resource", resource)];
            if batch {
                e.push((
                    "request",
                    Json::Obj(vec![
                        ("method", Json::str("PUT")),
                        ("url", Json::Str(format!("Observation/{id}"))),
                    ]),
                ));
            }
            Json::Obj(e)
        })
        .collect();

    let profile = ctx
        .national
        .profile_base
        .as_deref()
        .filter(|_| batch)
        .map(|b| Json::Arr(vec![Json::Str(format!("{b}{}", codes::PMD_BUNDLE_PROFILE))]));
    let tag = obj([
        ("system", Some(Json::str(codes::KOMMUNENUMMER_SYSTEM))),
        ("code", Some(Json::str(m.number.as_str()))),
        ("display", m.name.as_deref().map(Json::str)),
    ]);
    obj([
        ("resourceType", Some(Json::str("Bundle"))),
        (
            "meta",
            Some(obj([
                ("profile", profile),
                ("tag", Some(Json::Arr(vec![tag]))),
            ])),
        ),
        (
            "identifier",
            Some(Json::Obj(vec![
                ("system", Json::str(codes::PMD_BUNDLE_IDENTIFIER_SYSTEM)),
                ("value", Json::Str(bundle_uuid)),
            ])),
        ),
        (
            "type",
            Some(Json::str(if batch { "batch" } else { "collection" })),
        ),
        ("timestamp", timestamp.map(Json::Str)),
        ("entry", Some(Json::Arr(entries))),
    ])
}

fn not_in_profile(index: usize, r: &Reading, profile: Profile, why: String) -> EncodeError {
    EncodeError::NotInProfile {
        index,
        record: r.id,
        profile: profile.as_str(),
        why,
    }
}

/// `code` of an Observation or component: LOINC, SNOMED CT, NLK where given, then MDC.
fn national_code(
    loinc: codes::Coded,
    snomed: Option<codes::Coded>,
    nlk: Option<codes::Coded>,
    mdc: Mdc,
) -> Json {
    let mut c = vec![coding(
        codes::LOINC_SYSTEM,
        loinc.0.to_owned(),
        Some(loinc.1),
    )];
    if let Some((code, display)) = snomed {
        c.push(coding(codes::SNOMED_SYSTEM, code.to_owned(), Some(display)));
    }
    if let Some((code, display)) = nlk {
        c.push(coding(codes::NLK_SYSTEM, code.to_owned(), Some(display)));
    }
    c.push(coding(
        codes::MDC_SYSTEM,
        mdc.0.to_string(),
        codes::mdc_display(mdc),
    ));
    concept(c)
}

/// The value of a scalar reading or component: a UCUM quantity, or the absent reason.
fn scalar(
    index: usize,
    r: &Reading,
    profile: Profile,
    row: &NationalRow,
    value: &Value,
    what: &str,
) -> Result<(&'static str, Json), EncodeError> {
    match value {
        Value::Absent(reason) => Ok(("dataAbsentReason", data_absent(*reason))),
        Value::Numeric { value, decimals } => {
            let unit = r
                .unit
                .as_ref()
                .map(|u| u.as_str())
                .ok_or(EncodeError::MissingUnit {
                    index,
                    record: r.id,
                })?;
            let non_finite = || EncodeError::NonFinite {
                index,
                record: r.id,
                what: what.to_owned(),
            };
            // BLE glucose meters reporting kg/L arrive as mg/dL; VKP's 15074-8 is mmol/L.
            let (n, unit) = if row.units == ["mmol/L"] && unit == "mg/dL" {
                let mmol = value / codes::GLUCOSE_MG_DL_PER_MMOL_L;
                (
                    Json::decimal(mmol, Some(1)).ok_or_else(non_finite)?,
                    "mmol/L",
                )
            } else if row.units.contains(&unit) {
                (
                    Json::decimal(*value, *decimals).ok_or_else(non_finite)?,
                    unit,
                )
            } else {
                return Err(not_in_profile(
                    index,
                    r,
                    profile,
                    format!(
                        "{} in unit {unit:?}, but the profile allows only {}",
                        row.name,
                        row.units.join(", ")
                    ),
                ));
            };
            Ok(("valueQuantity", quantity(n, unit)))
        }
        _ => Err(not_in_profile(
            index,
            r,
            profile,
            format!("{} {what} must be numeric or absent", row.name),
        )),
    }
}

fn observation(
    index: usize,
    r: &Reading,
    ctx: &Context,
    profile: Profile,
) -> Result<Json, EncodeError> {
    let row = codes::national_for(r.mdc).ok_or_else(|| {
        not_in_profile(
            index,
            r,
            profile,
            format!(
                "MDC {} has no VkpObservation mapping (supported: blood pressure, heart rate, \
                 oxygen saturation, body temperature at any site, body weight, blood glucose; \
                 docs/fhir.md lists what cannot be mapped and why)",
                r.mdc.0
            ),
        )
    })?;

    let value_fields: Vec<(&'static str, Json)> = match (&r.value, row.mdc == [150020]) {
        (Value::Compound(components), true) => {
            vec![(
                "component",
                bp_components(index, r, profile, row, components)?,
            )]
        }
        (Value::Compound(_), false) => {
            return Err(not_in_profile(
                index,
                r,
                profile,
                format!("{} must be a single value, not components", row.name),
            ));
        }
        (_, true) => {
            return Err(not_in_profile(
                index,
                r,
                profile,
                "blood pressure must have systolic and diastolic components".to_owned(),
            ));
        }
        (v, false) => vec![scalar(index, r, profile, row, v, "value")?],
    };

    let subject = match patient_of(index, r, ctx)? {
        PatientRef::Identifier { system, value }
            if codes::NATIONAL_ID_SYSTEMS.contains(&system.as_str()) && is_digits(&value, 11) =>
        {
            Json::Obj(vec![(
                "identifier",
                Json::Obj(vec![
                    ("system", Json::Str(system)),
                    ("value", Json::Str(value)),
                ]),
            )])
        }
        _ => {
            return Err(EncodeError::NotNationalId {
                index,
                record: r.id,
                profile: profile.as_str(),
            });
        }
    };
    let (effective, clock_note) = effective_time(index, r)?;

    // The vital-sign profiles allow only a practitioner (by FNR) as performer; the general
    // vkp-Observation has an `organization` slice (orgnr).
    let performer = ctx
        .national
        .organization
        .as_ref()
        .filter(|_| row.profile == "vkp-Observation")
        .map(|org| {
            Json::Arr(vec![obj([
                ("type", Some(Json::str("Organization"))),
                (
                    "identifier",
                    Some(Json::Obj(vec![
                        ("system", Json::str(codes::ORGNR_SYSTEM)),
                        ("value", Json::str(org.orgnr.as_str())),
                    ])),
                ),
                ("display", org.name.as_deref().map(Json::str)),
            ])])
        });

    let (dev_system, dev_value) = primary_key(&r.device, ctx);
    let facts = ctx.devices.get(&r.device);
    let dev_display = facts.and_then(|d| {
        let parts: Vec<&str> = [d.manufacturer.as_deref(), d.model.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    let device = obj([
        ("type", Some(Json::str("Device"))),
        (
            "identifier",
            Some(Json::Obj(vec![
                ("system", Json::Str(dev_system)),
                ("value", Json::Str(dev_value)),
            ])),
        ),
        ("display", dev_display.map(Json::Str)),
    ]);

    let record_urn = r.id.urn();
    let mut fields = vec![("resourceType", Json::str("Observation"))];
    if profile == Profile::Pmd {
        fields.push(("id", Json::Str(r.id.to_string())));
    }
    if let Some(base) = &ctx.national.profile_base {
        fields.push((
            "meta",
            Json::Obj(vec![(
                "profile",
                Json::Arr(vec![Json::Str(format!("{base}{}", row.profile))]),
            )]),
        ));
    }
    fields.extend([
        (
            "identifier",
            Json::Arr(vec![Json::Obj(vec![
                ("system", Json::str(codes::URI_SYSTEM)),
                ("value", Json::Str(record_urn)),
            ])]),
        ),
        ("status", Json::str("final")),
        (
            "category",
            Json::Arr(vec![concept(vec![coding(
                codes::OBSERVATION_CATEGORY_SYSTEM,
                "vital-signs".to_owned(),
                Some("Vital Signs"),
            )])]),
        ),
        (
            "code",
            national_code(row.loinc, Some(row.snomed), row.nlk, r.mdc),
        ),
        ("subject", subject),
        ("effectiveDateTime", Json::Str(effective)),
    ]);
    if let Some(p) = performer {
        fields.push(("performer", p));
    }
    fields.extend(value_fields);
    if clock_note {
        fields.push((
            "note",
            Json::Arr(vec![Json::Obj(vec![("text", Json::str(CLOCK_NOTE))])]),
        ));
    }
    // Site-specific thermometers (oral, ear, axilla, …) keep the one body-temperature code and
    // say where in `bodySite`, as the R4 bodytemp parent of VKP Bodytemp allows.
    if let Some((code, display)) = codes::temperature_site(r.mdc) {
        fields.push((
            "bodySite",
            concept(vec![coding(
                codes::SNOMED_SYSTEM,
                code.to_owned(),
                Some(display),
            )]),
        ));
    }
    fields.push(("device", device));
    Ok(Json::Obj(fields))
}

/// Systolic, diastolic (both required by the R4 `bp` parent) and mean, in that order.
fn bp_components(
    index: usize,
    r: &Reading,
    profile: Profile,
    row: &NationalRow,
    components: &[Component],
) -> Result<Json, EncodeError> {
    let mut out = Vec::new();
    for &(mdc, loinc, snomed) in codes::BP_COMPONENTS {
        let mut found = components.iter().filter(|c| c.mdc.0 == mdc);
        let c = found.next();
        if found.next().is_some() {
            return Err(not_in_profile(
                index,
                r,
                profile,
                format!("blood pressure component MDC {mdc} appears twice"),
            ));
        }
        match c {
            Some(c) => {
                let field = scalar(index, r, profile, row, &c.value, &mdc.to_string())?;
                out.push(Json::Obj(vec![
                    ("code", national_code(loinc, snomed, None, Mdc(mdc))),
                    field,
                ]));
            }
            None if mdc == 150023 => {}
            None => {
                return Err(not_in_profile(
                    index,
                    r,
                    profile,
                    format!("blood pressure without component MDC {mdc} ({})", loinc.1),
                ));
            }
        }
    }
    if let Some(other) = components
        .iter()
        .find(|c| !codes::BP_COMPONENTS.iter().any(|(m, _, _)| *m == c.mdc.0))
    {
        return Err(not_in_profile(
            index,
            r,
            profile,
            format!(
                "blood pressure component MDC {} has no VKP code",
                other.mdc.0
            ),
        ));
    }
    Ok(Json::Arr(out))
}
