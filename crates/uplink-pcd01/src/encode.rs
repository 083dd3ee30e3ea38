//! ORU^R01 (IHE PCD-01, HL7 v2.6) encoding of a batch of readings. Layout: `PCD01.md`.

use std::borrow::Borrow;

use hearth_ieee11073::{mdc, units};
use hearth_model::{
    AbsentReason, Component, Device, Enumerated, Mdc, PersonRef, Reading, Record, RecordId,
    Timestamp, Value,
};

use crate::escape::escape;

/// HL7 version sent in MSH-12.
pub const HL7_VERSION: &str = "2.6";
/// Message type sent in MSH-9.
pub const MESSAGE_TYPE: &str = "ORU^R01^ORU_R01";
/// Longest message control id (MSH-10 is ST, 20 characters in HL7 v2.6).
pub const CONTROL_ID_LEN: usize = 20;
/// Tag mixed into the control-id derivation; bump it only together with a documented change of
/// the derivation (a new tag makes every control id new).
const CONTROL_ID_TAG: &str = "hearth-pcd01-msh10-v1";

/// Why a batch could not be encoded. Every variant names the record when one is to blame, so the
/// sender can dead-letter exactly that record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeError {
    /// Nothing to send: the batch was empty, or held only skipped alarms.
    #[error("no readings to encode (empty batch, or only skipped alarms)")]
    Empty,
    /// Alarms and technical alarms are not PCD-01 (DEC) content; route them to an alarm protocol
    /// or set [`Context::non_readings`] to [`NonReadings::Skip`].
    #[error(
        "record {id} is a {kind}, which PCD-01 (DEC) does not carry; route it to an alarm uplink or skip it"
    )]
    NotAReading {
        /// The record.
        id: RecordId,
        /// `alarm` or `technical alarm`.
        kind: &'static str,
    },
    /// One ORU^R01 carries one patient (one PID); split the batch per person.
    #[error(
        "record {id} is about a different person than the first reading of the batch; one message carries one patient"
    )]
    MixedPatients {
        /// The first record with a different person.
        id: RecordId,
    },
    /// A number that is not finite (the model turns device specials into absent values, so this
    /// is a bug upstream).
    #[error("record {id} holds a non-finite number; it should have been an absent value")]
    NonFinite {
        /// The record.
        id: RecordId,
    },
    /// A compound component that is itself compound.
    #[error("record {id} has a compound value nested in a compound value")]
    NestedCompound {
        /// The record.
        id: RecordId,
    },
    /// A time that HL7 DTM cannot express (before year 0 or after 9999).
    #[error("time {millis} ms since 1970 cannot be written as an HL7 DTM")]
    TimeOutOfRange {
        /// Milliseconds since the Unix epoch.
        millis: i64,
    },
    /// The configured UTC offset is outside ±23:59.
    #[error(
        "UTC offset of {minutes} minutes is outside ±23:59; fix the PCD-01 route configuration"
    )]
    InvalidOffset {
        /// The configured offset.
        minutes: i16,
    },
    /// An EUI-64 that is not 16 hexadecimal digits.
    #[error("{whose} EUI-64 {value:?} is not 16 hexadecimal digits")]
    InvalidEui64 {
        /// `gateway` or the device id.
        whose: String,
        /// The configured value.
        value: String,
    },
}

/// What [`encode_oru`] does with alarms and technical alarms in the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NonReadings {
    /// Refuse the batch with [`EncodeError::NotAReading`] (default: a route sending alarms to a
    /// PCD-01 receiver is misconfigured).
    #[default]
    Error,
    /// Leave them out; [`Message::skipped`] lists them so the sender can settle them.
    Skip,
}

/// MSH-15 / MSH-16: which acknowledgements the receiver is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckRequest {
    /// `AL` / `NE`: accept (commit) acknowledgement always, application acknowledgement never.
    /// IHE PCD TF-2 style (hospital DEC); replies carry `CA`/`CE`/`CR` (some DOCs answer `AA`).
    #[default]
    AcceptAlways,
    /// `NE` / `AL`: application acknowledgement always (Continua/PCHA WAN); replies carry
    /// `AA`/`AE`/`AR`.
    ApplicationAlways,
}

impl AckRequest {
    fn fields(self) -> (&'static str, &'static str) {
        match self {
            AckRequest::AcceptAlways => ("AL", "NE"),
            AckRequest::ApplicationAlways => ("NE", "AL"),
        }
    }
}

/// MSH-11 processing id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessingId {
    /// `P`.
    #[default]
    Production,
    /// `T`.
    Training,
    /// `D`.
    Debugging,
}

impl ProcessingId {
    fn code(self) -> &'static str {
        match self {
            ProcessingId::Production => "P",
            ProcessingId::Training => "T",
            ProcessingId::Debugging => "D",
        }
    }
}

/// A coded element (CWE / EI parts) given as plain text; escaped when written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coded {
    /// Identifier (CWE-1 / EI-1).
    pub code: String,
    /// Text (CWE-2) or namespace (EI-2).
    pub text: String,
    /// Coding system (CWE-3) or universal id (EI-3).
    pub system: String,
    /// Universal id type (EI-4); empty for CWE.
    pub system_type: String,
}

impl Coded {
    fn render(&self) -> String {
        comps(&[
            &escape(&self.code),
            &escape(&self.text),
            &escape(&self.system),
            &escape(&self.system_type),
        ])
    }
}

/// The assigning authority of a patient identifier (CX-4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssigningAuthority {
    /// HD-1 namespace id, e.g. `FNR`.
    pub namespace: Option<String>,
    /// HD-2 universal id: an ISO OID, e.g. `2.16.578.1.12.4.1.4.1` (Norwegian national identity
    /// number), or a URI when [`AssigningAuthority::universal_id_type`] says so.
    pub oid: Option<String>,
    /// HD-3 universal id type; `None` = `ISO` (written only with a universal id).
    pub universal_id_type: Option<String>,
}

/// OID of the Norwegian national identity number (fødselsnummer).
pub const FNR_OID: &str = "2.16.578.1.12.4.1.4.1";
/// OID of the Norwegian D-number.
pub const DNR_OID: &str = "2.16.578.1.12.4.1.4.2";
/// OID of the Norwegian common help number (felles hjelpenummer).
pub const FHN_OID: &str = "2.16.578.1.12.4.1.4.3";

/// The patient a [`PersonRef`] stands for, as PID shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Patient {
    /// PID-3 CX-1.
    pub id: String,
    /// PID-3 CX-4.
    pub authority: Option<AssigningAuthority>,
    /// PID-3 CX-5 identifier type (HL7 table 0203), e.g. `PI`, `MR`, `NNNOR`.
    pub id_type: String,
    /// PID-5 XPN-1 family name.
    pub family: Option<String>,
    /// PID-5 XPN-2 given name.
    pub given: Option<String>,
}

impl Patient {
    /// PID-3 for a configured person reference, as hearth writes it when
    /// [`Context::patients`] has no entry for it (PID-5 then says "name unspecified"):
    /// - `<system>|<value>`: CX `value^^^<namespace>&<OID>&ISO^<type>`; the system is
    ///   `urn:oid:<OID>` or a bare OID (Norwegian FNR and D-number: namespace `FNR`/`DNR`, type
    ///   `NNNOR`; FHN: `FHN`, `PI`; another OID: no namespace, `PI`) or a URI
    ///   (`value^^^&<URI>&URI^PI`);
    /// - `Patient/<id>`: the local id `<id>`, type `PI`, assigning authority `local`;
    /// - anything else: the text as a local id, type `PI`, assigning authority `local`.
    pub fn from_person(person: &PersonRef, local: Option<&AssigningAuthority>) -> Self {
        let text = person.as_str();
        let local_id = |id: &str| Patient {
            id: id.to_owned(),
            authority: local.cloned(),
            id_type: "PI".into(),
            family: None,
            given: None,
        };
        let Some((system, value)) = text
            .split_once('|')
            .filter(|(s, v)| !s.trim().is_empty() && !v.trim().is_empty())
        else {
            return match text.strip_prefix("Patient/").filter(|id| !id.is_empty()) {
                Some(id) => local_id(id),
                None => local_id(text),
            };
        };
        let (system, value) = (system.trim(), value.trim());
        let oid = system.strip_prefix("urn:oid:").unwrap_or(system);
        let is_oid = !oid.is_empty()
            && oid
                .split('.')
                .all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()));
        let (authority, id_type) = if is_oid {
            let (namespace, id_type) = match oid {
                FNR_OID => (Some("FNR"), "NNNOR"),
                DNR_OID => (Some("DNR"), "NNNOR"),
                FHN_OID => (Some("FHN"), "PI"),
                _ => (None, "PI"),
            };
            let authority = AssigningAuthority {
                namespace: namespace.map(str::to_owned),
                oid: Some(oid.to_owned()),
                universal_id_type: None,
            };
            (authority, id_type)
        } else {
            let authority = AssigningAuthority {
                namespace: None,
                oid: Some(system.to_owned()),
                universal_id_type: Some("URI".into()),
            };
            (authority, "PI")
        };
        Patient {
            id: value.to_owned(),
            authority: Some(authority),
            id_type: id_type.into(),
            family: None,
            given: None,
        }
    }
}

impl std::fmt::Debug for Patient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Patient(<redacted>)")
    }
}

/// Everything the encoder needs besides the records. Sans-I/O: the caller supplies the clock.
#[derive(Debug, Clone)]
pub struct Context {
    /// MSH-3 HD-1 (and OBR-2/3, OBX-21 EI-2 namespace), e.g. `HEARTH`.
    pub sending_application: String,
    /// The gateway's EUI-64 (16 hex digits): MSH-3 HD-2 with HD-3 `EUI-64`, OBR-2/3 EI-3.
    pub gateway_eui64: Option<String>,
    /// MSH-4 HD-1.
    pub sending_facility: Option<String>,
    /// MSH-5 HD-1.
    pub receiving_application: Option<String>,
    /// MSH-6 HD-1.
    pub receiving_facility: Option<String>,
    /// MSH-7: when the message is built (the caller's clock).
    pub message_time: Timestamp,
    /// Offset written in every DTM (MSH-7, OBR-7/8, OBX-14), in minutes east of UTC.
    pub utc_offset_minutes: i16,
    /// MSH-11.
    pub processing_id: ProcessingId,
    /// MSH-15 / MSH-16.
    pub ack_request: AckRequest,
    /// MSH-21 message profile identifier (EI).
    pub profile: Coded,
    /// OBR-4 universal service identifier (CWE).
    pub universal_service: Coded,
    /// What hearth knows about the devices (EUI-64 for OBX-18, model etc.); matched by id.
    pub devices: Vec<Device>,
    /// Who each configured person is; a person without an entry is sent as
    /// [`Patient::from_person`] reads its reference (`system|value` → CX with the assigning
    /// authority, a local id with [`Context::default_authority`]).
    pub patients: Vec<(PersonRef, Patient)>,
    /// Assigning authority of local ids (persons without an entry in [`Context::patients`]
    /// whose reference is not `system|value`).
    pub default_authority: Option<AssigningAuthority>,
    /// The route's patient: readings that carry no person are about this one (`[route.pcd01]
    /// patient`). `None`: such readings are sent without PID.
    pub patient: Option<PersonRef>,
    /// Alarms and technical alarms in the batch: error (default) or skip.
    pub non_readings: NonReadings,
}

impl Context {
    /// Defaults: processing id `P`, `AL`/`NE`, profile `IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO`,
    /// OBR-4 `182777000^monitoring of patient^SNOMED-CT`, UTC.
    pub fn new(sending_application: impl Into<String>, message_time: Timestamp) -> Self {
        Self {
            sending_application: sending_application.into(),
            gateway_eui64: None,
            sending_facility: None,
            receiving_application: None,
            receiving_facility: None,
            message_time,
            utc_offset_minutes: 0,
            processing_id: ProcessingId::default(),
            ack_request: AckRequest::default(),
            profile: Coded {
                code: "IHE_PCD_001".into(),
                text: "IHE PCD".into(),
                system: "1.3.6.1.4.1.19376.1.6.1.1.1".into(),
                system_type: "ISO".into(),
            },
            universal_service: Coded {
                code: "182777000".into(),
                text: "monitoring of patient".into(),
                system: "SNOMED-CT".into(),
                system_type: String::new(),
            },
            devices: Vec::new(),
            patients: Vec::new(),
            default_authority: None,
            patient: None,
            non_readings: NonReadings::default(),
        }
    }
}

/// One encoded ORU^R01: ER7 text, every segment terminated by `\r`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    control_id: String,
    text: String,
    records: Vec<RecordId>,
    skipped: Vec<RecordId>,
}

impl Message {
    /// MSH-10, echoed by the receiver in MSA-2.
    pub fn control_id(&self) -> &str {
        &self.control_id
    }
    /// The ER7 text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
    /// The ER7 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }
    /// The readings this message carries, in batch order.
    pub fn records(&self) -> &[RecordId] {
        &self.records
    }
    /// Alarms left out under [`NonReadings::Skip`].
    pub fn skipped(&self) -> &[RecordId] {
        &self.skipped
    }
    /// The segments, without their terminators.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.text.split('\r').filter(|s| !s.is_empty())
    }
}

/// The message control id (MSH-10) for a set of records: the first 10 bytes, as 20 upper-case
/// hex digits, of the UUID v5 ([`RecordId::derive`]) of a version tag followed by the records'
/// ids sorted and deduplicated. The same set of records always gives the same id, whatever the
/// order or the time of sending, so a resend is recognisable; a different set gives a different
/// id (74 random bits after the UUID version and variant bits).
pub fn control_id_for(records: impl IntoIterator<Item = RecordId>) -> String {
    let mut ids: Vec<RecordId> = records.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    let texts: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let mut parts: Vec<&str> = Vec::with_capacity(texts.len() + 1);
    parts.push(CONTROL_ID_TAG);
    parts.extend(texts.iter().map(String::as_str));
    let uuid = RecordId::derive(&parts);
    uuid.as_bytes()
        .iter()
        .take(CONTROL_ID_LEN / 2)
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// Encode a batch as one ORU^R01 (PCD-01). Readings of several devices share one OBR; each device
/// is one MDS (OBX-4 first number 1, 2, … in order of first appearance). All readings must be
/// about the same person (or none: then no PID is sent).
/// Takes records or references to them, so a sender need not copy its batch.
pub fn encode_oru<R: Borrow<Record>>(records: &[R], ctx: &Context) -> Result<Message, EncodeError> {
    let offset = offset_of(ctx.utc_offset_minutes)?;
    let mut readings: Vec<&Reading> = Vec::new();
    let mut skipped = Vec::new();
    for r in records.iter().map(Borrow::borrow) {
        match r {
            Record::Reading(reading) => readings.push(reading),
            Record::Alarm(a) if ctx.non_readings == NonReadings::Skip => skipped.push(a.id),
            Record::Technical(t) if ctx.non_readings == NonReadings::Skip => skipped.push(t.id),
            Record::Alarm(a) => {
                return Err(EncodeError::NotAReading {
                    id: a.id,
                    kind: "alarm",
                });
            }
            Record::Technical(t) => {
                return Err(EncodeError::NotAReading {
                    id: t.id,
                    kind: "technical alarm",
                });
            }
        }
    }
    let Some(first) = readings.first() else {
        return Err(EncodeError::Empty);
    };
    let person = person_of(first, ctx);
    if let Some(other) = readings.iter().find(|r| person_of(r, ctx) != person) {
        return Err(EncodeError::MixedPatients { id: other.id });
    }
    let ids: Vec<RecordId> = readings.iter().map(|r| r.id).collect();
    let control_id = control_id_for(ids.iter().copied());
    let gateway_eui = ctx
        .gateway_eui64
        .as_deref()
        .map(|e| eui64("gateway", e))
        .transpose()?;
    let app = escape(&ctx.sending_application);

    let mut out = String::with_capacity(256 + 160 * readings.len());

    // MSH
    let (msh15, msh16) = ctx.ack_request.fields();
    let mut msh = Seg::new("MSH");
    msh.set(3, comps(&[&app, opt(&gateway_eui), eui_type(&gateway_eui)]));
    msh.set(
        4,
        ctx.sending_facility
            .as_deref()
            .map(escape)
            .unwrap_or_default(),
    );
    msh.set(
        5,
        ctx.receiving_application
            .as_deref()
            .map(escape)
            .unwrap_or_default(),
    );
    msh.set(
        6,
        ctx.receiving_facility
            .as_deref()
            .map(escape)
            .unwrap_or_default(),
    );
    msh.set(7, dtm(ctx.message_time, offset)?);
    msh.set(9, MESSAGE_TYPE.to_owned());
    msh.set(10, control_id.clone());
    msh.set(11, ctx.processing_id.code().to_owned());
    msh.set(12, HL7_VERSION.to_owned());
    msh.set(15, msh15.to_owned());
    msh.set(16, msh16.to_owned());
    msh.set(18, "UNICODE UTF-8".to_owned());
    msh.set(21, ctx.profile.render());
    msh.render_msh(&mut out);

    // PID (only when the readings are about a known person)
    if let Some(person) = person {
        pid(ctx, person).render(&mut out);
    }

    // OBR
    let order = comps(&[&control_id, &app, opt(&gateway_eui), eui_type(&gateway_eui)]);
    let times: Vec<Timestamp> = readings.iter().map(|r| observed_at(r)).collect();
    let start = times.iter().min().copied().unwrap_or(ctx.message_time);
    let end = times.iter().max().copied().unwrap_or(ctx.message_time);
    let mut obr = Seg::new("OBR");
    obr.set(1, "1".to_owned());
    obr.set(2, order.clone());
    obr.set(3, order);
    obr.set(4, ctx.universal_service.render());
    obr.set(7, dtm(start, offset)?);
    if end != start {
        obr.set(8, dtm(end, offset)?);
    }
    obr.render(&mut out);

    // OBX, one MDS per device in order of first appearance.
    let mut devices: Vec<&hearth_model::DeviceId> = Vec::new();
    for r in &readings {
        if !devices.contains(&&r.device) {
            devices.push(&r.device);
        }
    }
    let mut obx = ObxWriter {
        out: &mut out,
        set_id: 0,
        offset,
        app: &app,
        gateway: gateway_eui.as_deref(),
    };
    for (m, device_id) in devices.iter().enumerate() {
        let mds = m + 1;
        let own: Vec<&Reading> = readings
            .iter()
            .copied()
            .filter(|r| &r.device == *device_id)
            .collect();
        let info = ctx
            .devices
            .iter()
            .find(|d| d.id.as_ref() == Some(*device_id));
        obx.mds(mds, device_id, info, &own)?;
        for (c, r) in own.iter().enumerate() {
            obx.reading(mds, c + 1, r)?;
        }
    }

    Ok(Message {
        control_id,
        text: out,
        records: ids,
        skipped,
    })
}

/// Who a reading is about: its own person, else the route's patient.
fn person_of<'a>(r: &'a Reading, ctx: &'a Context) -> Option<&'a PersonRef> {
    r.person.as_ref().or(ctx.patient.as_ref())
}

fn pid(ctx: &Context, person: &PersonRef) -> Seg {
    let derived;
    let p = match ctx.patients.iter().find(|(p, _)| p == person) {
        Some((_, pat)) => pat,
        None => {
            derived = Patient::from_person(person, ctx.default_authority.as_ref());
            &derived
        }
    };
    let (id, authority, id_type, family, given) = (
        p.id.as_str(),
        p.authority.as_ref(),
        p.id_type.as_str(),
        p.family.as_deref(),
        p.given.as_deref(),
    );
    let cx4 = authority.map_or_else(String::new, |a| {
        let ns = a.namespace.as_deref().map(escape_sub).unwrap_or_default();
        let oid = a.oid.as_deref().map(escape_sub).unwrap_or_default();
        let ty = match (&a.oid, &a.universal_id_type) {
            (None, _) => String::new(),
            (Some(_), None) => "ISO".to_owned(),
            (Some(_), Some(t)) => escape_sub(t),
        };
        subs(&[&ns, &oid, &ty])
    });
    let mut seg = Seg::new("PID");
    seg.set(3, comps(&[&escape(id), "", "", &cx4, &escape(id_type)]));
    seg.set(
        5,
        match (family, given) {
            (None, None) => "^^^^^^U".to_owned(),
            (f, g) => comps(&[
                &f.map(escape).unwrap_or_default(),
                &g.map(escape).unwrap_or_default(),
            ]),
        },
    );
    seg
}

struct ObxWriter<'a> {
    out: &'a mut String,
    set_id: usize,
    offset: time::UtcOffset,
    app: &'a str,
    /// The gateway's EUI-64: the assigning authority (EI-3/EI-4) of device ids that are unique
    /// only on this box, so two boxes' devices never share an equipment id (issue 13).
    gateway: Option<&'a str>,
}

/// One OBX under construction, with the fields every row has.
struct Row {
    value_type: &'static str,
    code: String,
    sub_id: String,
    value: String,
    units: String,
    flags: Vec<&'static str>,
    status: &'static str,
    time: String,
    equipment: String,
    instance: String,
}

impl Row {
    fn new(code: String, sub_id: String) -> Self {
        Self {
            value_type: "",
            code,
            sub_id,
            value: String::new(),
            units: String::new(),
            flags: Vec::new(),
            status: "X",
            time: String::new(),
            equipment: String::new(),
            instance: String::new(),
        }
    }
}

impl ObxWriter<'_> {
    fn write(&mut self, row: Row) {
        self.set_id += 1;
        let mut seg = Seg::new("OBX");
        seg.set(1, self.set_id.to_string());
        seg.set(2, row.value_type.to_owned());
        seg.set(3, row.code);
        seg.set(4, row.sub_id);
        seg.set(5, row.value);
        seg.set(6, row.units);
        seg.set(8, row.flags.join("~"));
        seg.set(11, row.status.to_owned());
        seg.set(14, row.time);
        seg.set(18, row.equipment);
        seg.set(21, row.instance);
        seg.render(self.out);
    }

    /// The MDS row `m.0.0.0` (device type, EUI-64) and its attribute rows `m.0.0.k`.
    fn mds(
        &mut self,
        m: usize,
        id: &hearth_model::DeviceId,
        info: Option<&Device>,
        readings: &[&Reading],
    ) -> Result<(), EncodeError> {
        let profile = readings
            .iter()
            .find_map(|r| profile_for(r.mdc))
            .unwrap_or(mdc::DEV_SPEC_PROFILE_GENERIC);
        let mut row = Row::new(term(profile.mdc()), format!("{m}.0.0.0"));
        let eui = info
            .and_then(|d| d.eui64.as_deref())
            .map(|e| eui64(id.as_str(), e))
            .transpose()?;
        row.equipment = match &eui {
            Some(e) => comps(&[e, "", e, "EUI-64"]),
            None => {
                let gateway = self.gateway.map(str::to_owned);
                comps(&[
                    &escape(id.as_str()),
                    self.app,
                    opt(&gateway),
                    eui_type(&gateway),
                ])
            }
        };
        self.write(row);
        let attrs = info.map_or_else(Vec::new, |d| {
            [
                (mdc::ID_MODEL_MANUFACTURER, d.manufacturer.as_deref()),
                (mdc::ID_MODEL_NUMBER, d.model.as_deref()),
                (mdc::ID_PROD_SPEC_SERIAL, d.serial.as_deref()),
                (mdc::ID_PROD_SPEC_FW, d.firmware.as_deref()),
            ]
            .into_iter()
            .filter_map(|(t, v)| v.map(|v| (t, v)))
            .collect()
        });
        for (k, (t, v)) in attrs.into_iter().enumerate() {
            let mut row = Row::new(term(t.mdc()), format!("{m}.0.0.{}", k + 1));
            row.value_type = "ST";
            row.value = escape(v);
            row.status = "R";
            self.write(row);
        }
        Ok(())
    }

    /// A reading as channel `m.1.c`: a simple metric at `m.1.c.1`; a compound one as the channel
    /// row `m.1.c.0` (the compound code) with its components at `m.1.c.k`.
    fn reading(&mut self, m: usize, c: usize, r: &Reading) -> Result<(), EncodeError> {
        let time = dtm(observed_at(r), self.offset)?;
        let instance = comps(&[&r.id.to_string(), self.app]);
        match &r.value {
            Value::Compound(parts) => {
                let mut head = Row::new(term(r.mdc), format!("{m}.1.{c}.0"));
                head.time = time.clone();
                head.instance = instance;
                self.write(head);
                for (k, Component { mdc: code, value }) in parts.iter().enumerate() {
                    if matches!(value, Value::Compound(_)) {
                        return Err(EncodeError::NestedCompound { id: r.id });
                    }
                    let mut row = Row::new(term(*code), format!("{m}.1.{c}.{}", k + 1));
                    row.time = time.clone();
                    fill_value(&mut row, value, r)?;
                    self.write(row);
                }
            }
            value => {
                let mut row = Row::new(term(r.mdc), format!("{m}.1.{c}.1"));
                row.time = time;
                row.instance = instance;
                fill_value(&mut row, value, r)?;
                self.write(row);
            }
        }
        Ok(())
    }
}

/// OBX-2, -5, -6, -8, -11 for one value.
fn fill_value(row: &mut Row, value: &Value, r: &Reading) -> Result<(), EncodeError> {
    match value {
        Value::Numeric { value, decimals } => {
            if !value.is_finite() {
                return Err(EncodeError::NonFinite { id: r.id });
            }
            row.value_type = "NM";
            row.value = match decimals {
                Some(d) => format!("{value:.*}", usize::from(*d)),
                None => format!("{value}"),
            };
            row.units = r.unit.as_ref().map_or_else(String::new, |u| {
                let ucum = escape(u.as_str());
                match units::unit_for_ucum(u.as_str()) {
                    Some(unit) => comps(&[
                        &unit.mdc.to_string(),
                        unit.reference_id,
                        "MDC",
                        &ucum,
                        &ucum,
                        "UCUM",
                    ]),
                    None => comps(&[&ucum, &ucum, "UCUM"]),
                }
            });
            row.status = "R";
        }
        Value::Enumerated(Enumerated::Code(code)) => {
            row.value_type = "CWE";
            row.value = term(*code);
            row.status = "R";
        }
        Value::Enumerated(Enumerated::Text(text)) => {
            row.value_type = "ST";
            row.value = escape(text);
            row.status = "R";
        }
        Value::Enumerated(Enumerated::Bits { bits, width }) => {
            // Most significant of the `width` bits first (BLE numbers bits from the LSB, so bit 0
            // is the last character). Unverified against the TF: no PCD-01 rule for BITs found.
            row.value_type = "ST";
            let w = u32::from((*width).min(32));
            row.value = (0..w)
                .rev()
                .map(|i| if bits >> i & 1 == 1 { '1' } else { '0' })
                .collect();
            row.status = "R";
        }
        Value::Absent(reason) => {
            row.flags.push(absent_flag(*reason));
            row.status = "X";
        }
        Value::Compound(_) => return Err(EncodeError::NestedCompound { id: r.id }),
    }
    Ok(())
}

/// OBX-8 flag for an absent value (uv-pocd `mappingv2.md`, "missing or invalid data flags" and
/// the measurement-status table); OBX-5 stays empty and OBX-11 is `X`.
pub fn absent_flag(reason: AbsentReason) -> &'static str {
    match reason {
        AbsentReason::PositiveInfinity => ">",
        AbsentReason::NegativeInfinity => "<",
        AbsentReason::NotAtThisResolution => "NAV",
        AbsentReason::Error => "INV",
        AbsentReason::NotANumber | AbsentReason::Reserved | AbsentReason::Unknown => "NI",
    }
}

/// The device specialization (MDS OBX-3) a measurement code implies, if any.
pub fn profile_for(code: Mdc) -> Option<mdc::Term> {
    let c = code.0;
    Some(match c {
        150020..=150023 | 149546 | 8410608 => mdc::DEV_SPEC_PROFILE_BP,
        150364 | 150392 | 188416..=188500 => mdc::DEV_SPEC_PROFILE_TEMP,
        188736 | 188740 | 188752 => mdc::DEV_SPEC_PROFILE_SCALE,
        188748 | 188756..=188780 => mdc::DEV_SPEC_PROFILE_BCA,
        160184..=160220 | 160364 | 160368 | 8417752..=8417896 => mdc::DEV_SPEC_PROFILE_GLUCOSE,
        150456 | 149530 | 150448 | 150604 => mdc::DEV_SPEC_PROFILE_PULS_OXIM,
        147842 | 147240 => mdc::DEV_SPEC_PROFILE_MIN_ECG,
        8418008 | 8418060 => mdc::DEV_SPEC_PROFILE_CGM,
        _ => return None,
    })
}

/// `<code>^<reference id>^MDC`; an unknown code keeps an empty text.
fn term(code: Mdc) -> String {
    let refid = mdc::lookup(code.0).map_or("", |t| t.reference_id);
    comps(&[&code.0.to_string(), refid, "MDC"])
}

/// The time a reading was observed: the device's time, else the receipt time (PHD IG rule).
fn observed_at(r: &Reading) -> Timestamp {
    r.device_time.unwrap_or(r.received_at)
}

fn offset_of(minutes: i16) -> Result<time::UtcOffset, EncodeError> {
    time::UtcOffset::from_whole_seconds(i32::from(minutes) * 60)
        .ok()
        .filter(|_| minutes.unsigned_abs() < 24 * 60)
        .ok_or(EncodeError::InvalidOffset { minutes })
}

/// HL7 DTM `YYYYMMDDHHMMSS[.SSS]±HHMM` (fraction only when the milliseconds are not zero).
pub(crate) fn dtm(ts: Timestamp, offset: time::UtcOffset) -> Result<String, EncodeError> {
    let millis = ts.unix_millis();
    let err = EncodeError::TimeOutOfRange { millis };
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .map_err(|_| err.clone())?
        .checked_to_offset(offset)
        .ok_or_else(|| err.clone())?;
    if !(0..=9999).contains(&t.year()) {
        return Err(err);
    }
    let mut s = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if t.millisecond() != 0 {
        s.push_str(&format!(".{:03}", t.millisecond()));
    }
    let (h, m, _) = offset.as_hms();
    let sign = if offset.is_negative() { '-' } else { '+' };
    s.push_str(&format!(
        "{sign}{:02}{:02}",
        h.unsigned_abs(),
        m.unsigned_abs()
    ));
    Ok(s)
}

/// Upper-case EUI-64 after checking it is 16 hex digits (dashes and colons are ignored).
fn eui64(whose: &str, value: &str) -> Result<String, EncodeError> {
    let hex: String = value.chars().filter(|c| !matches!(c, '-' | ':')).collect();
    if hex.len() == 16 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(hex.to_ascii_uppercase())
    } else {
        Err(EncodeError::InvalidEui64 {
            whose: whose.to_owned(),
            value: value.to_owned(),
        })
    }
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

fn eui_type(s: &Option<String>) -> &'static str {
    if s.is_some() { "EUI-64" } else { "" }
}

/// Escape text that goes into a sub-component (same rules; named for the reader).
fn escape_sub(s: &str) -> String {
    escape(s)
}

/// Join already-escaped components with `^`, dropping trailing empty ones.
fn comps(parts: &[&str]) -> String {
    join_trimmed(parts, '^')
}

/// Join already-escaped sub-components with `&`, dropping trailing empty ones.
fn subs(parts: &[&str]) -> String {
    join_trimmed(parts, '&')
}

fn join_trimmed(parts: &[&str], sep: char) -> String {
    let used = parts
        .iter()
        .rposition(|p| !p.is_empty())
        .map_or(0, |i| i + 1);
    let mut s = String::new();
    for (i, p) in parts.iter().take(used).enumerate() {
        if i > 0 {
            s.push(sep);
        }
        s.push_str(p);
    }
    s
}

/// A segment: field `n` (1-based) holds already-encoded text.
struct Seg {
    name: &'static str,
    fields: Vec<String>,
}

impl Seg {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            fields: Vec::new(),
        }
    }

    fn set(&mut self, n: usize, value: String) {
        if self.fields.len() < n {
            self.fields.resize(n, String::new());
        }
        if let Some(f) = n.checked_sub(1).and_then(|i| self.fields.get_mut(i)) {
            *f = value;
        }
    }

    fn used(&self) -> &[String] {
        let used = self
            .fields
            .iter()
            .rposition(|f| !f.is_empty())
            .map_or(0, |i| i + 1);
        self.fields.get(..used).unwrap_or(&[])
    }

    fn render(&self, out: &mut String) {
        out.push_str(self.name);
        for f in self.used() {
            out.push('|');
            out.push_str(f);
        }
        out.push('\r');
    }

    /// MSH-1 is the field separator itself and MSH-2 the encoding characters.
    fn render_msh(&self, out: &mut String) {
        out.push_str("MSH|^~\\&");
        for f in self.used().iter().skip(2) {
            out.push('|');
            out.push_str(f);
        }
        out.push('\r');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtm_has_offset_and_optional_millis() {
        let utc = time::UtcOffset::UTC;
        assert_eq!(
            dtm(Timestamp::from_unix_millis(1_700_000_000_000), utc).unwrap(),
            "20231114221320+0000"
        );
        let cet = offset_of(60).unwrap();
        assert_eq!(
            dtm(Timestamp::from_unix_millis(1_700_000_000_123), cet).unwrap(),
            "20231114231320.123+0100"
        );
        let minus = offset_of(-210).unwrap();
        assert!(
            dtm(Timestamp::from_unix_millis(0), minus)
                .unwrap()
                .ends_with("-0330")
        );
        assert!(offset_of(24 * 60).is_err());
        assert!(dtm(Timestamp::from_unix_millis(i64::MAX), utc).is_err());
    }

    #[test]
    fn control_id_is_order_independent_and_20_chars() {
        let a = RecordId::derive(&["a"]);
        let b = RecordId::derive(&["b"]);
        let x = control_id_for([a, b]);
        assert_eq!(x, control_id_for([b, a, b]));
        assert_ne!(x, control_id_for([a]));
        assert_eq!(x.len(), CONTROL_ID_LEN);
        assert!(
            x.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
    }

    #[test]
    fn empty_components_are_trimmed() {
        assert_eq!(comps(&["a", "", "c", "", ""]), "a^^c");
        assert_eq!(comps(&["", ""]), "");
        assert_eq!(subs(&["", "1.2", "ISO"]), "&1.2&ISO");
    }

    #[test]
    fn eui64_is_checked_and_upper_cased() {
        assert_eq!(
            eui64("x", "00-1b-c5-0c-00-00-00-01").unwrap(),
            "001BC50C00000001"
        );
        assert!(eui64("x", "001bc50c0000000").is_err());
        assert!(eui64("x", "001bc50c0000000g").is_err());
    }
}
