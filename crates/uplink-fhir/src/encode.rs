//! Records → a FHIR R4 transaction Bundle per the PHD IG.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

use hearth_model::{
    AbsentReason, Component, Device, DeviceId, Enumerated, Mdc, Reading, Record, RecordId,
    Timestamp, Value,
};

use crate::EncodeError;
use crate::codes::{self, BitMapping};
use crate::context::{Context, PatientRef, Unsupported};
use crate::json::{Json, obj};

/// What one entry of an encoded Bundle stands for, in entry order (the transaction response
/// answers entry by entry in the same order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryRole {
    /// The PhgDevice of the gateway.
    Gateway,
    /// The PhdDevice of a sensor.
    Device(DeviceId),
    /// The Observation of a record.
    Observation(RecordId),
}

/// A record left out of the Bundle under [`Unsupported::Skip`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Position in the input slice.
    pub index: usize,
    /// The record.
    pub record: RecordId,
    /// Why, for the dead-letter table.
    pub reason: String,
}

/// An encoded transaction Bundle and the map from its entries back to records.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    json: Json,
    entries: Vec<EntryRole>,
    skipped: Vec<Skipped>,
}

impl Bundle {
    pub(crate) fn new(json: Json, entries: Vec<EntryRole>, skipped: Vec<Skipped>) -> Self {
        Self {
            json,
            entries,
            skipped,
        }
    }

    /// The request body (compact JSON, UTF-8).
    pub fn to_json_bytes(&self) -> Vec<u8> {
        self.json.to_compact().into_bytes()
    }

    /// Pretty JSON (two-space indent, trailing newline), as in the golden files.
    pub fn to_pretty_json(&self) -> String {
        self.json.to_pretty()
    }

    /// The JSON tree (numbers kept as the decimal text that is sent).
    pub fn json(&self) -> &Json {
        &self.json
    }

    /// What each entry is, in order.
    pub fn entries(&self) -> &[EntryRole] {
        &self.entries
    }

    /// Number of entries (what [`crate::parse_transaction_response`] wants as `sent`).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is nothing to send (every record skipped, or no records).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records left out under [`Unsupported::Skip`].
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// Pair each Observation entry's outcome with its record id (device entries' outcomes are
    /// dropped: an Observation that the server accepted is delivered whatever became of its
    /// Device entry). `outcomes` must come from [`crate::parse_transaction_response`] with
    /// `sent = self.len()`.
    pub fn record_outcomes<T: Clone>(&self, outcomes: &[T]) -> Option<Vec<(RecordId, T)>> {
        if outcomes.len() != self.entries.len() {
            return None;
        }
        Some(
            self.entries
                .iter()
                .zip(outcomes)
                .filter_map(|(role, o)| match role {
                    EntryRole::Observation(id) => Some((*id, o.clone())),
                    _ => None,
                })
                .collect(),
        )
    }
}

/// The PHD IG Bundle of `records` (see [`crate::encode_bundle`], which dispatches here for
/// [`Profile::Phd`]).
pub(crate) fn encode_phd<R: Borrow<Record>>(
    records: &[R],
    ctx: &Context,
) -> Result<Bundle, EncodeError> {
    let gateway_url = urn(&["fhir-phg", ctx.gateway.id.as_str()]);

    let mut seen = BTreeSet::new();
    let mut skipped = Vec::new();
    let mut readings: Vec<(usize, &Reading)> = Vec::new();
    for (index, record) in records.iter().map(Borrow::borrow).enumerate() {
        let id = record.id();
        if !seen.insert(id) {
            return Err(EncodeError::DuplicateRecord { index, record: id });
        }
        let kind = match record {
            Record::Reading(r) => {
                if let Value::Enumerated(Enumerated::Bits { width, .. }) = r.value {
                    if !bits_mappable(r.mdc, width) {
                        let err = EncodeError::UnmappedBits {
                            index,
                            record: id,
                            mdc: r.mdc.0,
                        };
                        match ctx.options.unsupported {
                            Unsupported::Refuse => return Err(err),
                            Unsupported::Skip => {
                                skipped.push(Skipped {
                                    index,
                                    record: id,
                                    reason: err.to_string(),
                                });
                                continue;
                            }
                        }
                    }
                }
                readings.push((index, r));
                continue;
            }
            Record::Alarm(_) => "safety alarm",
            Record::Technical(_) => "technical alarm",
        };
        let err = EncodeError::NotAnObservation {
            index,
            record: id,
            kind,
        };
        match ctx.options.unsupported {
            Unsupported::Refuse => return Err(err),
            Unsupported::Skip => skipped.push(Skipped {
                index,
                record: id,
                reason: err.to_string(),
            }),
        }
    }

    // Observations first (they carry the errors worth finding early), entries assembled after.
    let mut devices: BTreeMap<&DeviceId, Vec<Mdc>> = BTreeMap::new();
    let mut observations = Vec::with_capacity(readings.len());
    for &(index, r) in &readings {
        let obs = observation(index, r, ctx, &gateway_url)?;
        devices.entry(&r.device).or_default().push(r.mdc);
        observations.push((r.id, obs));
    }

    let mut entries = Vec::new();
    let mut roles = Vec::new();
    if !observations.is_empty() {
        entries.push(phg_device(ctx, &gateway_url)?);
        roles.push(EntryRole::Gateway);
        for (id, mdcs) in &devices {
            entries.push(phd_device(id, ctx.devices.get(*id), mdcs, ctx));
            roles.push(EntryRole::Device((*id).clone()));
        }
    }
    for (id, obs) in observations {
        entries.push(obs);
        roles.push(EntryRole::Observation(id));
    }
    let json = Json::Obj(vec![
        ("resourceType", Json::str("Bundle")),
        ("type", Json::str("transaction")),
        ("entry", Json::Arr(entries)),
    ]);
    Ok(Bundle {
        json,
        entries: roles,
        skipped,
    })
}

fn bits_mappable(mdc: Mdc, width: u8) -> bool {
    match codes::bit_mapping(mdc) {
        Some(BitMapping::Same { .. }) => true,
        Some(BitMapping::Reversed { width: w }) => w == width,
        None => false,
    }
}

/// `urn:uuid:` of a UUID v5 (hearth's namespace) of the parts.
pub(crate) fn urn(parts: &[&str]) -> String {
    RecordId::derive(parts).urn()
}

fn entry(full_url: String, resource: Json, resource_type: &str, if_none_exist: String) -> Json {
    Json::Obj(vec![
        ("fullUrl", Json::Str(full_url)),
        ("resource", resource),
        (
            "request",
            Json::Obj(vec![
                ("method", Json::str("POST")),
                ("url", Json::str(resource_type)),
                ("ifNoneExist", Json::Str(if_none_exist)),
            ]),
        ),
    ])
}

/// `identifier=<system>|<value>` with FHIR search escaping (`\`, `|`, `,`, `$` get a backslash)
/// and then percent-encoding of everything but RFC 3986 unreserved characters, `:`, `/` and `@`
/// (a `+` would otherwise read as a space and the conditional create would never match).
pub fn if_none_exist(system: &str, value: &str) -> String {
    format!(
        "identifier={}|{}",
        query_escape(system),
        query_escape(value)
    )
}

fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '|' | ',' | '$') {
            out.push_str("%5C");
        }
        let mut buf = [0u8; 4];
        for &b in c.encode_utf8(&mut buf).as_bytes() {
            if b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'/' | b'@')
            {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// 16 hex digits (any case; `-`, `:` separators and a `0x` prefix allowed) as the IG writes an
/// EUI-64: upper case, dash-separated bytes.
pub fn eui64_text(raw: &str) -> Option<String> {
    let raw = raw.strip_prefix("0x").unwrap_or(raw);
    let hex: Vec<char> = raw.chars().filter(|c| !matches!(c, '-' | ':')).collect();
    if hex.len() != 16 || !hex.iter().all(char::is_ascii_hexdigit) {
        return None;
    }
    let pairs: Vec<String> = hex
        .chunks(2)
        .map(|p| p.iter().collect::<String>().to_ascii_uppercase())
        .collect();
    Some(pairs.join("-"))
}

pub(crate) fn coding(system: &str, code: String, display: Option<&str>) -> Json {
    obj([
        ("system", Some(Json::str(system))),
        ("code", Some(Json::Str(code))),
        ("display", display.map(Json::str)),
    ])
}

fn mdc_coding(mdc: Mdc) -> Json {
    coding(
        codes::MDC_SYSTEM,
        mdc.0.to_string(),
        codes::mdc_display(mdc),
    )
}

pub(crate) fn concept(codings: Vec<Json>) -> Json {
    Json::Obj(vec![("coding", Json::Arr(codings))])
}

/// `code` of an Observation or component: MDC first, then LOINC where the table has it.
fn code_concept(mdc: Mdc, unit: Option<&str>) -> Json {
    let mut codings = vec![mdc_coding(mdc)];
    if let Some(row) = codes::loinc_for(mdc, unit) {
        codings.extend(
            row.loinc
                .iter()
                .map(|l| coding(codes::LOINC_SYSTEM, (*l).to_owned(), None)),
        );
    }
    concept(codings)
}

fn reference(url: &str) -> Json {
    Json::Obj(vec![("reference", Json::str(url))])
}

fn identifier(system: &str, value: &str, type_code: Option<&str>) -> Json {
    obj([
        (
            "type",
            type_code.map(|c| {
                concept(vec![coding(
                    codes::CONTINUA_DEVICE_IDENTIFIERS,
                    c.to_owned(),
                    None,
                )])
            }),
        ),
        ("system", Some(Json::str(system))),
        ("value", Some(Json::str(value))),
    ])
}

fn profile_meta(profiles: &[&str]) -> Json {
    Json::Obj(vec![(
        "profile",
        Json::Arr(
            profiles
                .iter()
                .map(|p| Json::Str(format!("{}{p}", codes::PHD_PROFILE_BASE)))
                .collect(),
        ),
    )])
}

pub(crate) fn data_absent(reason: AbsentReason) -> Json {
    let (code, display) = codes::data_absent_reason(reason);
    concept(vec![coding(
        codes::DAR_SYSTEM,
        code.to_owned(),
        Some(display),
    )])
}

pub(crate) fn quantity(value: Json, unit: &str) -> Json {
    Json::Obj(vec![
        ("value", value),
        ("unit", Json::str(unit)),
        ("system", Json::str(codes::UCUM_SYSTEM)),
        ("code", Json::str(unit)),
    ])
}

/// FHIR `dateTime` (UTC, milliseconds) for a timestamp, if its year is within 1…9999.
pub(crate) fn date_time(t: Timestamp) -> Option<String> {
    const MIN_MS: i64 = -62_135_596_800_000; // 0001-01-01T00:00:00Z
    const MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
    (MIN_MS..=MAX_MS)
        .contains(&t.unix_millis())
        .then(|| t.to_rfc3339())
}

/// The reading's own person, else the route's patient.
pub(crate) fn patient_of(
    index: usize,
    r: &Reading,
    ctx: &Context,
) -> Result<PatientRef, EncodeError> {
    Ok(match &r.person {
        Some(p) => PatientRef::from_person(p).map_err(|_| EncodeError::BadPersonRefAt {
            index,
            record: r.id,
        })?,
        None => ctx.patient.clone().ok_or(EncodeError::NoPatient {
            index,
            record: r.id,
        })?,
    })
}

fn subject(index: usize, r: &Reading, ctx: &Context) -> Result<Json, EncodeError> {
    Ok(match patient_of(index, r, ctx)? {
        PatientRef::Reference(s) => reference(&s),
        PatientRef::Identifier { system, value } => Json::Obj(vec![(
            "identifier",
            Json::Obj(vec![
                ("system", Json::Str(system)),
                ("value", Json::Str(value)),
            ]),
        )]),
    })
}

fn observation(
    index: usize,
    r: &Reading,
    ctx: &Context,
    gateway_url: &str,
) -> Result<Json, EncodeError> {
    let at = |e: fn(usize, RecordId) -> EncodeError| e(index, r.id);
    let unit = r.unit.as_ref().map(|u| u.as_str());
    let numeric = |v: &Value, what: &str| -> Result<Result<Json, AbsentReason>, EncodeError> {
        match v {
            Value::Numeric { value, decimals } => {
                let unit = unit.ok_or(EncodeError::MissingUnit {
                    index,
                    record: r.id,
                })?;
                let n = Json::decimal(*value, *decimals).ok_or_else(|| EncodeError::NonFinite {
                    index,
                    record: r.id,
                    what: what.to_owned(),
                })?;
                Ok(Ok(quantity(n, unit)))
            }
            Value::Absent(reason) => Ok(Err(*reason)),
            _ => Err(EncodeError::BadComponent {
                index,
                record: r.id,
                component: what.to_owned(),
            }),
        }
    };

    // The value part decides the profile.
    let (profiles, value_fields): (&[&str], Vec<(&'static str, Json)>) = match &r.value {
        Value::Numeric { .. } | Value::Absent(_) => {
            let field = match numeric(&r.value, "value")? {
                Ok(q) => ("valueQuantity", q),
                Err(reason) => ("dataAbsentReason", data_absent(reason)),
            };
            (&["PhdNumericObservation"], vec![field])
        }
        Value::Compound(components) => {
            if components.is_empty() {
                return Err(at(|index, record| EncodeError::EmptyCompound {
                    index,
                    record,
                }));
            }
            let mut out = Vec::with_capacity(components.len());
            for Component { mdc, value } in components {
                let field = match numeric(value, &mdc.0.to_string())? {
                    Ok(q) => ("valueQuantity", q),
                    Err(reason) => ("dataAbsentReason", data_absent(reason)),
                };
                out.push(Json::Obj(vec![("code", code_concept(*mdc, unit)), field]));
            }
            (
                &["PhdCompoundNumericObservation", "PhdCompoundObservation"],
                vec![("component", Json::Arr(out))],
            )
        }
        Value::Enumerated(Enumerated::Code(code)) => (
            &["PhdCodedEnumerationObservation"],
            vec![("valueCodeableConcept", concept(vec![mdc_coding(*code)]))],
        ),
        Value::Enumerated(Enumerated::Text(text)) => (
            &["PhdStringObservation"],
            vec![("valueString", Json::str(text.as_str()))],
        ),
        Value::Enumerated(Enumerated::Bits { bits, .. }) => {
            let mapping = codes::bit_mapping(r.mdc).ok_or(EncodeError::UnmappedBits {
                index,
                record: r.id,
                mdc: r.mdc.0,
            })?;
            let pairs: Vec<(u8, u8)> = match mapping {
                BitMapping::Same { count } => (0..count).map(|n| (n, n)).collect(),
                BitMapping::Reversed { width } => (0..width).map(|n| (n, width - 1 - n)).collect(),
            };
            let mut comps: Vec<(u8, Json)> = pairs
                .into_iter()
                .map(|(model_bit, code_bit)| {
                    let set = bits.checked_shr(u32::from(model_bit)).unwrap_or(0) & 1 == 1;
                    let code = format!("{}.{code_bit}", r.mdc.0);
                    let comp = Json::Obj(vec![
                        (
                            "code",
                            concept(vec![coding(codes::ASN1_TO_HL7_SYSTEM, code, None)]),
                        ),
                        ("valueBoolean", Json::Bool(set)),
                    ]);
                    (code_bit, comp)
                })
                .collect();
            comps.sort_by_key(|(b, _)| *b);
            (
                &["PhdBitsEnumerationObservation"],
                vec![(
                    "component",
                    Json::Arr(comps.into_iter().map(|(_, c)| c).collect()),
                )],
            )
        }
    };

    let (effective, clock_note) = effective_time(index, r)?;

    let mut category = vec![concept(vec![coding(
        codes::PHD_CATEGORY_SYSTEM,
        "phd".to_owned(),
        None,
    )])];
    if codes::loinc_for(r.mdc, unit).is_some_and(|row| row.vital_sign) {
        category.push(concept(vec![coding(
            codes::OBSERVATION_CATEGORY_SYSTEM,
            "vital-signs".to_owned(),
            Some("Vital Signs"),
        )]));
    }

    let record_urn = r.id.urn();
    let mut identifiers = vec![identifier(codes::URI_SYSTEM, &record_urn, None)];
    if let Some(value) = phd_conditional_create_value(index, r, ctx)? {
        identifiers.push(identifier(
            codes::PHD_OBSERVATION_IDENTIFIER_SYSTEM,
            &value,
            None,
        ));
    }
    let mut fields = vec![
        ("resourceType", Json::str("Observation")),
        ("meta", profile_meta(profiles)),
        (
            "extension",
            Json::Arr(vec![Json::Obj(vec![
                ("url", Json::str(codes::GATEWAY_DEVICE_EXTENSION)),
                ("valueReference", reference(gateway_url)),
            ])]),
        ),
        ("identifier", Json::Arr(identifiers)),
        ("status", Json::str("final")),
        ("category", Json::Arr(category)),
        ("code", code_concept(r.mdc, unit)),
        ("subject", subject(index, r, ctx)?),
        ("effectiveDateTime", Json::Str(effective)),
    ];
    fields.extend(value_fields);
    fields.push(("device", reference(&urn(&["fhir-phd", r.device.as_str()]))));
    if clock_note {
        fields.push((
            "note",
            Json::Arr(vec![Json::Obj(vec![("text", Json::str(CLOCK_NOTE))])]),
        ));
    }
    let ifne = if_none_exist(codes::URI_SYSTEM, &record_urn);
    Ok(entry(record_urn, Json::Obj(fields), "Observation", ifne))
}

/// 2000-01-01T00:00:00Z in Unix milliseconds: the epoch of the GHS timestamp rule.
const EPOCH_2000_MS: i64 = 946_684_800_000;

/// The value of the PHD IG's `conditionalCreate` identifier slice (PhdBaseObservation notes):
/// `<device>-<patient>-<type>-<timestamp>`. Device: the sensor's EUI-64 as 16 upper-case hex
/// digits (BLE System ID, Zigbee IEEE address, or the EUI-64 the device told). Patient: the
/// logical id, or `<identifier value>-<identifier system>`. Type: the decimal MDC code.
/// Timestamp: the device's time as seconds since 2000-01-01 (GHS rule), with `.mmm` when it
/// has milliseconds; hearth keeps device times in UTC, so no offset suffix.
///
/// `None` (slice left out, as the IG allows) when the reading has no device time or the device
/// said its clock was not set, or the sensor has no EUI-64 (the IG's value starts with it).
/// hearth's record id stays the `ifNoneExist` key (`docs/fhir.md`, "Identifiers").
fn phd_conditional_create_value(
    index: usize,
    r: &Reading,
    ctx: &Context,
) -> Result<Option<String>, EncodeError> {
    let Some(time) = r.device_time.filter(|_| !r.flags.device_clock_unset) else {
        return Ok(None);
    };
    let Some(device) = device_eui64(&r.device, ctx.devices.get(&r.device)) else {
        return Ok(None);
    };
    let patient = match patient_of(index, r, ctx)? {
        PatientRef::Reference(s) => s.strip_prefix("Patient/").unwrap_or(&s).to_owned(),
        PatientRef::Identifier { system, value } => format!("{value}-{system}"),
    };
    let ms = time.unix_millis().saturating_sub(EPOCH_2000_MS);
    let (secs, frac) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let stamp = if frac == 0 {
        secs.to_string()
    } else {
        format!("{secs}.{frac:03}")
    };
    Ok(Some(format!("{device}-{patient}-{}-{stamp}", r.mdc.0)))
}

/// A sensor's EUI-64 as 16 upper-case hex digits, from its id (BLE, Zigbee) or its facts.
fn device_eui64(id: &DeviceId, facts: Option<&Device>) -> Option<String> {
    let value = id.as_str().split_once(':').map_or("", |(_, v)| v);
    let from_id = match id.scheme() {
        "ble" | ZIGBEE_SCHEME | "z2m" => eui64_text(value),
        _ => None,
    };
    from_id
        .or_else(|| facts.and_then(|d| d.eui64.as_deref()).and_then(eui64_text))
        .map(|e| e.replace('-', ""))
}

/// `effectiveDateTime` of a reading and whether it needs the clock note: the device's time,
/// unless it says its clock was not set (then hearth's receipt time).
pub(crate) fn effective_time(index: usize, r: &Reading) -> Result<(String, bool), EncodeError> {
    let (time, clock_note) = match r.device_time {
        Some(t) if !r.flags.device_clock_unset => (t, false),
        Some(_) => (r.received_at, true),
        None => (r.received_at, false),
    };
    let effective = date_time(time).ok_or(EncodeError::TimeOutOfRange {
        index,
        record: r.id,
    })?;
    Ok((effective, clock_note))
}

/// The note on an Observation whose device said its clock was not set.
pub(crate) const CLOCK_NOTE: &str = "The device reported that its clock was not set; \
     effectiveDateTime is the gateway's time of receipt.";

/// The identifiers of a sensor, primary (the `ifNoneExist` key) first. The key is derived from
/// the device id alone, never from facts that may arrive later, so it is stable for a device.
fn device_identifiers(id: &DeviceId, facts: Option<&Device>, ctx: &Context) -> Vec<Json> {
    let value = id.as_str().split_once(':').map_or("", |(_, v)| v);
    let mut out = Vec::new();
    let mut have_sysid = false;
    match id.scheme() {
        "ble" => {
            if let Some(eui) = eui64_text(value) {
                out.push(identifier(codes::SYSID_SYSTEM, &eui, Some("SYSID")));
                have_sysid = true;
            }
        }
        ZIGBEE_SCHEME | "z2m" => {
            if let Some(eui) = eui64_text(value) {
                out.push(identifier(codes::ZIGBEE_SYSTEM, &eui, Some("ZIGBEE")));
                // The Zigbee IEEE address is a transport address, not an 11073 system id.
                have_sysid = true;
            }
        }
        _ => {}
    }
    out.push(identifier(
        &ctx.device_id_system,
        &gateway_scoped(id, ctx),
        None,
    ));
    if !have_sysid {
        if let Some(eui) = facts.and_then(|d| d.eui64.as_deref()).and_then(eui64_text) {
            out.push(identifier(codes::SYSID_SYSTEM, &eui, Some("SYSID")));
        }
    }
    out
}

/// The scheme of zigbee2mqtt device ids (`zigbee:<IEEE address>`, drivers/zigbee2mqtt).
const ZIGBEE_SCHEME: &str = "zigbee";

/// The identifier a Device is found by (its conditional-create key): the EUI-64 when the
/// device has one (globally unique), else hearth's device id scoped to this gateway.
pub(crate) fn primary_key(id: &DeviceId, ctx: &Context) -> (String, String) {
    let value = id.as_str().split_once(':').map_or("", |(_, v)| v);
    let eui = eui64_text(value);
    match (id.scheme(), eui) {
        ("ble", Some(e)) => (codes::SYSID_SYSTEM.to_owned(), e),
        (ZIGBEE_SCHEME | "z2m", Some(e)) => (codes::ZIGBEE_SYSTEM.to_owned(), e),
        _ => (ctx.device_id_system.clone(), gateway_scoped(id, ctx)),
    }
}

/// hearth's device id as a receiver sees it: `<gateway>/<device id>`, where the gateway is its
/// EUI-64 (or its id when it has none). Device ids are unique only within one box (`ext:`
/// vendor ids, `sim:` devices, friendly-name fallbacks), so without the prefix two boxes'
/// devices would be one Device at a shared hub (issue 13).
pub(crate) fn gateway_scoped(id: &DeviceId, ctx: &Context) -> String {
    let gateway = ctx
        .gateway
        .eui64
        .as_deref()
        .and_then(eui64_text)
        .unwrap_or_else(|| ctx.gateway.id.as_str().to_owned());
    format!("{gateway}/{id}")
}

fn version(type_mdc: u32, value: &str) -> Json {
    Json::Obj(vec![
        ("type", concept(vec![mdc_coding(Mdc(type_mdc))])),
        ("value", Json::str(value)),
    ])
}

/// PhdDevice `manufacturer` and `modelNumber` are 1..1 but BLE DIS strings are optional and the
/// IG gives no fallback: a device that never told one gets the element without a value and with
/// the core `data-absent-reason` extension `unknown` (FHIR's way to fill a required element whose
/// value is not known), never an invented name (`docs/fhir.md`, "Device facts").
fn unknown_if_absent(told: Option<&String>) -> Option<Json> {
    told.is_none().then(|| {
        Json::Obj(vec![(
            "extension",
            Json::Arr(vec![Json::Obj(vec![
                ("url", Json::str(codes::DAR_EXTENSION)),
                ("valueCode", Json::str("unknown")),
            ])]),
        )])
    })
}

fn phd_device(id: &DeviceId, facts: Option<&Device>, mdcs: &[Mdc], ctx: &Context) -> Json {
    let full_url = urn(&["fhir-phd", id.as_str()]);
    let spec = mdcs.iter().find_map(|m| codes::specialization_for(*m));
    let text = |f: fn(&Device) -> Option<&String>| facts.and_then(f).map(|s| Json::str(s.as_str()));
    let resource = obj([
        ("resourceType", Some(Json::str("Device"))),
        ("meta", Some(profile_meta(&["PhdDevice"]))),
        (
            "identifier",
            Some(Json::Arr(device_identifiers(id, facts, ctx))),
        ),
        ("manufacturer", text(|d| d.manufacturer.as_ref())),
        (
            "_manufacturer",
            unknown_if_absent(facts.and_then(|d| d.manufacturer.as_ref())),
        ),
        ("serialNumber", text(|d| d.serial.as_ref())),
        ("modelNumber", text(|d| d.model.as_ref())),
        (
            "_modelNumber",
            unknown_if_absent(facts.and_then(|d| d.model.as_ref())),
        ),
        (
            "type",
            Some(concept(vec![mdc_coding(Mdc(codes::MDC_PHD_TYPE))])),
        ),
        (
            "specialization",
            spec.map(|s| {
                Json::Arr(vec![Json::Obj(vec![(
                    "systemType",
                    concept(vec![mdc_coding(Mdc(s))]),
                )])])
            }),
        ),
        (
            "version",
            facts
                .and_then(|d| d.firmware.as_deref())
                .map(|fw| Json::Arr(vec![version(codes::MDC_VERSION_FW, fw)])),
        ),
    ]);
    let (system, value) = primary_key(id, ctx);
    entry(full_url, resource, "Device", if_none_exist(&system, &value))
}

fn phg_device(ctx: &Context, full_url: &str) -> Result<Json, EncodeError> {
    let g = &ctx.gateway;
    let mut identifiers = Vec::new();
    let key = match &g.eui64 {
        Some(raw) => {
            let eui = eui64_text(raw).ok_or_else(|| EncodeError::BadGatewayEui64(raw.clone()))?;
            identifiers.push(identifier(codes::SYSID_SYSTEM, &eui, Some("SYSID")));
            (codes::SYSID_SYSTEM.to_owned(), eui)
        }
        None => (ctx.device_id_system.clone(), g.id.as_str().to_owned()),
    };
    identifiers.push(identifier(&ctx.device_id_system, g.id.as_str(), None));
    let resource = obj([
        ("resourceType", Some(Json::str("Device"))),
        ("meta", Some(profile_meta(&["PhgDevice"]))),
        ("identifier", Some(Json::Arr(identifiers))),
        ("manufacturer", g.manufacturer.as_deref().map(Json::str)),
        ("modelNumber", g.model.as_deref().map(Json::str)),
        (
            "type",
            Some(concept(vec![mdc_coding(Mdc(codes::MDC_PHG_TYPE))])),
        ),
        (
            "version",
            g.software_version
                .as_deref()
                .map(|v| Json::Arr(vec![version(codes::MDC_VERSION_SW, v)])),
        ),
    ]);
    Ok(entry(
        full_url.to_owned(),
        resource,
        "Device",
        if_none_exist(&key.0, &key.1),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_exist_escapes_search_specials_and_plus() {
        assert_eq!(
            if_none_exist("urn:ietf:rfc:3986", "urn:uuid:0f0e-aa"),
            "identifier=urn:ietf:rfc:3986|urn:uuid:0f0e-aa"
        );
        assert_eq!(
            if_none_exist("urn:x", "a|b,c$d\\e+f g&h=é"),
            "identifier=urn:x|a%5C%7Cb%5C%2Cc%5C%24d%5C%5Ce%2Bf%20g%26h%3D%C3%A9"
        );
    }

    #[test]
    fn eui64_is_upper_case_with_dashes() {
        assert_eq!(
            eui64_text("0a1b2c0001d4e5f6").as_deref(),
            Some("0A-1B-2C-00-01-D4-E5-F6")
        );
        assert_eq!(
            eui64_text("0x00158d0001a2b3c4").as_deref(),
            Some("00-15-8D-00-01-A2-B3-C4")
        );
        assert_eq!(
            eui64_text("0A-1B-2C-00-01-D4-E5-F6").as_deref(),
            Some("0A-1B-2C-00-01-D4-E5-F6")
        );
        assert_eq!(eui64_text("0a1b"), None);
        assert_eq!(eui64_text("zz1b2c0001d4e5f6"), None);
    }

    #[test]
    fn date_time_refuses_years_fhir_cannot_write() {
        assert_eq!(
            date_time(Timestamp::from_unix_millis(0)).as_deref(),
            Some("1970-01-01T00:00:00.000Z")
        );
        assert!(date_time(Timestamp::from_unix_millis(i64::MAX)).is_none());
        assert!(date_time(Timestamp::from_unix_millis(i64::MIN)).is_none());
        assert!(date_time(Timestamp::from_unix_millis(253_402_300_800_000)).is_none());
    }
}
