//! What the encoder needs besides the records: the gateway, the patient, device facts, options.

use std::collections::BTreeMap;

use hearth_model::{Device, DeviceId, PersonRef};

use crate::EncodeError;

/// Identifier system for hearth device ids (`ble:…`, `z2m:…`, `ext:…`) when a device carries no
/// EUI-64. Deployments should set [`Context::device_id_system`] to a URI (e.g. an OID) of their
/// own organisation; this default only keeps the value unambiguous.
pub const DEFAULT_DEVICE_ID_SYSTEM: &str = "urn:hearth:device-id";

/// Which receiver profile to encode for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// HL7 Personal Health Device IG 2.0.0 (FHIR R4): transaction Bundle, conditional create,
    /// PhdDevice + PhgDevice. Implemented.
    #[default]
    Phd,
    /// HL7 Norway VkpObservation profiles (national welfare-technology hub, VKP): a
    /// `transaction` Bundle of VkpObservation-profiled Observations only (LOINC + SNOMED CT,
    /// subject by national identity number, device by identifier), each a conditional create on
    /// hearth's record id. See `PROFILES.md`.
    Vkp,
    /// Norsk helsenett "Pasientens måledata" (PMD 2.0): a `batch` Bundle per the IG profile
    /// `pmd-Bundle-Observation` (municipality tag, bundle identifier), Observations as for
    /// [`Profile::Vkp`], each `PUT Observation/<record id>` so a resend overwrites instead of
    /// duplicating. See `PROFILES.md`.
    Pmd,
}

impl Profile {
    /// `phd`, `vkp`, `pmd` (the route's `profile` setting).
    pub const fn as_str(self) -> &'static str {
        match self {
            Profile::Phd => "phd",
            Profile::Vkp => "vkp",
            Profile::Pmd => "pmd",
        }
    }
}

/// Who the readings are about.
#[derive(Clone, PartialEq, Eq)]
pub enum PatientRef {
    /// A literal reference, e.g. `Patient/123` (the receiver's logical id).
    Reference(String),
    /// A logical reference by business identifier (e.g. national identity number).
    Identifier {
        /// The identifier system URI.
        system: String,
        /// The identifier value.
        value: String,
    },
}

impl std::fmt::Debug for PatientRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Personal identifiers never reach logs.
        match self {
            PatientRef::Reference(_) => f.write_str("PatientRef::Reference(<redacted>)"),
            PatientRef::Identifier { system, .. } => {
                write!(
                    f,
                    "PatientRef::Identifier {{ system: {system:?}, value: <redacted> }}"
                )
            }
        }
    }
}

impl PatientRef {
    /// Read a reading's [`PersonRef`] text: `Patient/<id>` is a reference, `<system>|<value>` an
    /// identifier. Anything else is [`EncodeError::BadPersonRef`] (whose message never contains
    /// the text).
    pub fn from_person(person: &PersonRef) -> Result<Self, EncodeError> {
        Self::parse(person.as_str()).ok_or(EncodeError::BadPersonRef)
    }

    fn parse(s: &str) -> Option<Self> {
        if let Some((system, value)) = s.split_once('|') {
            let ok = |x: &str| !x.is_empty() && !x.chars().any(char::is_whitespace);
            return (ok(system) && ok(value) && system.contains(':')).then(|| {
                PatientRef::Identifier {
                    system: system.to_owned(),
                    value: value.to_owned(),
                }
            });
        }
        let id = s.strip_prefix("Patient/")?;
        // FHIR id: [A-Za-z0-9\-\.]{1,64}
        let valid = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        valid.then(|| PatientRef::Reference(s.to_owned()))
    }
}

/// The gateway itself (PhgDevice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// hearth's id of this gateway, e.g. `hearth:<machine-id>`.
    pub id: DeviceId,
    /// The gateway's EUI-64 (16 hex digits, any case, dashes allowed), when it has one.
    pub eui64: Option<String>,
    /// Manufacturer of the gateway software (`manufacturer`, PhgDevice 1..1 per the IG).
    pub manufacturer: Option<String>,
    /// Model of the gateway (software), `modelNumber`.
    pub model: Option<String>,
    /// Software version (`version` of type MDC_ID_PROD_SPEC_SW).
    pub software_version: Option<String>,
}

impl Gateway {
    /// A gateway known only by its id.
    pub fn new(id: DeviceId) -> Self {
        Self {
            id,
            eui64: None,
            manufacturer: None,
            model: None,
            software_version: None,
        }
    }
}

/// What to do with records that are not FHIR Observations in hearth's design (safety alarms and
/// technical alarms go to SCAIP / management) or that this encoder cannot map yet (BITs fields
/// without a checked bit table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unsupported {
    /// Fail the whole encode with a typed error naming the record (default: a route that sends
    /// alarms to FHIR is a configuration mistake that should be seen).
    #[default]
    Refuse,
    /// Leave them out and list them in [`crate::Bundle::skipped`], so the sender can settle
    /// them (e.g. as rejected with the reason).
    Skip,
}

/// Encoder options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Options {
    /// Alarms, technical alarms, unmapped BITs: refuse (default) or skip.
    pub unsupported: Unsupported,
}

/// An organisation by Norwegian organisation number (Enhetsregisteret, 9 digits), the
/// `performer` of VKP/PMD Observations where the profile allows one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// Organisation number (`urn:oid:2.16.578.1.12.4.1.4.101`).
    pub orgnr: String,
    /// Name (`performer.display`).
    pub name: Option<String>,
}

/// A Norwegian municipality (kommunenummer, 4 digits): PMD's Bundle `meta.tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Municipality {
    /// Municipality number, e.g. `0301`.
    pub number: String,
    /// Name, e.g. `Oslo` (`tag.display`).
    pub name: Option<String>,
}

/// PMD Bundle type: the IG's `pmd-Bundle-Observation` (`batch`, default) or the `collection`
/// of NHN's 2026 API examples (no `request`; the server then cannot tell PUT from POST).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PmdBundleType {
    /// `batch`, each entry `PUT Observation/<record id>` (IG profile, default).
    #[default]
    Batch,
    /// `collection`, entries without `request` (NHN API examples).
    Collection,
}

/// Canonical base of the HL7 Norway VkpObservation IG (0.5.x).
pub const VKP_PROFILE_BASE: &str = "http://hl7.no/fhir/vkpobservation/StructureDefinition/";

/// Settings of the Norwegian profiles ([`Profile::Vkp`], [`Profile::Pmd`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct National {
    /// Base for `meta.profile` URLs (`<base>vkp-Observation-Bodyweight`, …); `None` leaves
    /// `meta.profile` out (which canonical VKP's and PMD's validators expect is unverified).
    /// Default [`VKP_PROFILE_BASE`].
    pub profile_base: Option<String>,
    /// The responsible organisation (`performer`, where the profile allows it).
    pub organization: Option<Organization>,
    /// The municipality (required by [`Profile::Pmd`]).
    pub municipality: Option<Municipality>,
    /// PMD Bundle type.
    pub pmd_bundle_type: PmdBundleType,
}

impl Default for National {
    fn default() -> Self {
        Self {
            profile_base: Some(VKP_PROFILE_BASE.to_owned()),
            organization: None,
            municipality: None,
            pmd_bundle_type: PmdBundleType::Batch,
        }
    }
}

/// Everything [`crate::encode_bundle`] needs besides the records.
#[derive(Debug, Clone)]
pub struct Context {
    /// The gateway (PhgDevice).
    pub gateway: Gateway,
    /// The route's configured patient; a reading's own [`PersonRef`] overrides it.
    pub patient: Option<PatientRef>,
    /// Facts about sensors (manufacturer, model, serial, firmware, EUI-64), by id. A device not
    /// listed still gets a PhdDevice with its identifier.
    pub devices: BTreeMap<DeviceId, Device>,
    /// Identifier system for device ids without an EUI-64 ([`DEFAULT_DEVICE_ID_SYSTEM`]).
    pub device_id_system: String,
    /// Options.
    pub options: Options,
    /// Settings of the Norwegian profiles (VKP, PMD).
    pub national: National,
}

impl Context {
    /// A context with a gateway and a patient, no device facts, default options.
    pub fn new(gateway: Gateway, patient: Option<PatientRef>) -> Self {
        Self {
            gateway,
            patient,
            devices: BTreeMap::new(),
            device_id_system: DEFAULT_DEVICE_ID_SYSTEM.to_owned(),
            options: Options::default(),
            national: National::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_refs_are_references_or_identifiers() {
        let p = |s: &str| PatientRef::from_person(&PersonRef::new(s));
        assert_eq!(
            p("Patient/123").unwrap(),
            PatientRef::Reference("Patient/123".into())
        );
        assert_eq!(
            p("urn:oid:2.16.578.1.12.4.1.4.1|13116900216").unwrap(),
            PatientRef::Identifier {
                system: "urn:oid:2.16.578.1.12.4.1.4.1".into(),
                value: "13116900216".into()
            }
        );
        for bad in [
            "",
            "123",
            "Patient/",
            "Patient/a b",
            "Observation/1",
            "|x",
            "sys|",
            "nocolon|1",
        ] {
            assert!(matches!(p(bad), Err(EncodeError::BadPersonRef)), "{bad}");
        }
    }

    #[test]
    fn patient_debug_output_is_redacted() {
        let p = PatientRef::Identifier {
            system: "urn:oid:2.16.578.1.12.4.1.4.1".into(),
            value: "13116900216".into(),
        };
        assert!(!format!("{p:?}").contains("1311"));
        assert!(!format!("{:?}", PatientRef::Reference("Patient/99".into())).contains("99"));
    }
}
