//! Code systems, the MDC → LOINC table and the other small tables of the encoder.

use hearth_model::{AbsentReason, Mdc};

/// IEEE 11073-10101 (MDC) code system.
pub const MDC_SYSTEM: &str = "urn:iso:std:iso:11073:10101";
/// LOINC.
pub const LOINC_SYSTEM: &str = "http://loinc.org";
/// UCUM (fixed by PhdNumericObservation for `valueQuantity.system`).
pub const UCUM_SYSTEM: &str = "http://unitsofmeasure.org";
/// FHIR data-absent-reason codes.
pub const DAR_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";
/// FHIR observation categories (`vital-signs`).
pub const OBSERVATION_CATEGORY_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/observation-category";
/// The PHD IG's own observation category (`phd`, required by PhdBaseObservation).
pub const PHD_CATEGORY_SYSTEM: &str =
    "http://hl7.org/fhir/uv/phd/CodeSystem/PhdObservationCategories";
/// IEEE 11073 BITs as codes `<MDC>.<bit>` (PhdBitsEnumerationObservation components).
pub const ASN1_TO_HL7_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/ASN1ToHL7";
/// Device identifier types of the PHD IG (SYSID, BTMAC, ZIGBEE …).
pub const CONTINUA_DEVICE_IDENTIFIERS: &str =
    "http://terminology.hl7.org/CodeSystem/ContinuaDeviceIdentifiers";
/// IEEE EUI-64 system id (PhdDevice/PhgDevice `identifier[SYSID]`).
pub const SYSID_SYSTEM: &str = "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680";
/// Zigbee IEEE address (an EUI-64 transport address).
pub const ZIGBEE_SYSTEM: &str = "http://hl7.org/fhir/sid/eui-64/zigbee";
/// RFC 3986 URIs: the identifier system for `urn:uuid:` values, used for hearth's record ids.
pub const URI_SYSTEM: &str = "urn:ietf:rfc:3986";
/// System of the PHD IG's `conditionalCreate` Observation identifier slice.
pub const PHD_OBSERVATION_IDENTIFIER_SYSTEM: &str =
    "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdBaseObservation";
/// The core extension that says why a (required) element has no value.
pub const DAR_EXTENSION: &str = "http://hl7.org/fhir/StructureDefinition/data-absent-reason";
/// FHIR core extension that points an Observation at the gateway (PhgDevice).
pub const GATEWAY_DEVICE_EXTENSION: &str =
    "http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice";
/// Canonical base of the PHD IG's profiles.
pub const PHD_PROFILE_BASE: &str = "http://hl7.org/fhir/uv/phd/StructureDefinition/";

/// PHD device type (MDC_MOC_VMS_MDS_SIMP).
pub const MDC_PHD_TYPE: u32 = 65573;
/// PHG device type (MDC_MOC_VMS_MDS_AHD).
pub const MDC_PHG_TYPE: u32 = 531981;
/// Firmware version type (MDC_ID_PROD_SPEC_FW).
pub const MDC_VERSION_FW: u32 = 531976;
/// Software version type (MDC_ID_PROD_SPEC_SW).
pub const MDC_VERSION_SW: u32 = 531975;

/// One row of the LOINC table: the MDC code, the unit it applies to (`None` = any) and the LOINC
/// codes to add after the MDC coding, and whether the observation is a vital sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoincRow {
    /// MDC code of `Observation.code` (or of a component).
    pub mdc: u32,
    /// UCUM unit the LOINC code requires (glucose differs by mass vs moles); `None` = any unit.
    pub unit: Option<&'static str>,
    /// LOINC codes, in the order they are written.
    pub loinc: &'static [&'static str],
    /// Whether the FHIR `vital-signs` category applies.
    pub vital_sign: bool,
}

const fn row(mdc: u32, loinc: &'static [&'static str], vital_sign: bool) -> LoincRow {
    LoincRow {
        mdc,
        unit: None,
        loinc,
        vital_sign,
    }
}

const fn glucose(mdc: u32, unit: &'static str, loinc: &'static [&'static str]) -> LoincRow {
    LoincRow {
        mdc,
        unit: Some(unit),
        loinc,
        vital_sign: false,
    }
}

/// Glucose in blood: mass concentration (LOINC 2339-0) …
const GLU_MASS: &[&str] = &["2339-0"];
/// … and substance concentration (LOINC 15074-8, the code VKP uses for all sample types).
const GLU_MOLES: &[&str] = &["15074-8"];

/// MDC → LOINC (FHIR vital signs, PHD IG examples, VKP table in the research notes).
/// Keep it small and checked: `tests::loinc_table_is_what_the_notes_say`.
pub static LOINC: &[LoincRow] = &[
    row(147842, &["8867-4"], true),            // MDC_ECG_HEART_RATE
    row(149530, &["8867-4"], true),            // MDC_PULS_OXIM_PULS_RATE
    row(149546, &["8867-4"], true),            // MDC_PULS_RATE_NON_INV
    row(150020, &["85354-9"], true),           // MDC_PRESS_BLD_NONINV (panel)
    row(150021, &["8480-6"], true),            // … _SYS
    row(150022, &["8462-4"], true),            // … _DIA
    row(150023, &["8478-0"], true),            // … _MEAN
    row(150364, &["8310-5"], true),            // MDC_TEMP_BODY
    row(150456, &["59408-5", "2708-6"], true), // MDC_PULS_OXIM_SAT_O2
    glucose(160184, "mg/dL", GLU_MASS),        // capillary whole blood
    glucose(160184, "mmol/L", GLU_MOLES),
    glucose(160188, "mg/dL", GLU_MASS), // capillary plasma
    glucose(160188, "mmol/L", GLU_MOLES),
    glucose(160192, "mg/dL", GLU_MASS), // venous whole blood
    glucose(160192, "mmol/L", GLU_MOLES),
    glucose(160196, "mg/dL", GLU_MASS), // venous plasma
    glucose(160196, "mmol/L", GLU_MOLES),
    glucose(160200, "mg/dL", GLU_MASS), // arterial whole blood
    glucose(160200, "mmol/L", GLU_MOLES),
    glucose(160204, "mg/dL", GLU_MASS), // arterial plasma
    glucose(160204, "mmol/L", GLU_MOLES),
    glucose(160364, "mg/dL", GLU_MASS), // undetermined whole blood
    glucose(160364, "mmol/L", GLU_MOLES),
    glucose(160368, "mg/dL", GLU_MASS), // undetermined plasma
    glucose(160368, "mmol/L", GLU_MOLES),
    row(188736, &["29463-7"], true), // MDC_MASS_BODY_ACTUAL
    row(188740, &["8302-2"], true),  // MDC_LEN_BODY_ACTUAL
    row(188752, &["39156-5"], true), // MDC_RATIO_MASS_BODY_LEN_SQ
];

/// The LOINC row for a code and unit, if any.
pub fn loinc_for(mdc: Mdc, unit: Option<&str>) -> Option<&'static LoincRow> {
    LOINC
        .iter()
        .find(|r| r.mdc == mdc.0 && (r.unit.is_none() || r.unit == unit))
}

/// The FHIR data-absent-reason code and display for a model absent reason (PHD IG FLOATS:
/// NaN → not-a-number, ±INF → ±infinity, NRes and reserved → error).
pub fn data_absent_reason(reason: AbsentReason) -> (&'static str, &'static str) {
    match reason {
        AbsentReason::NotANumber => ("not-a-number", "Not a Number (NaN)"),
        AbsentReason::PositiveInfinity => ("positive-infinity", "Positive Infinity (PINF)"),
        AbsentReason::NegativeInfinity => ("negative-infinity", "Negative Infinity (NINF)"),
        AbsentReason::NotAtThisResolution | AbsentReason::Reserved | AbsentReason::Error => {
            ("error", "Error")
        }
        AbsentReason::Unknown => ("unknown", "Unknown"),
    }
}

/// The device specialization (`Device.specialization.systemType`, DeviceTypes11073MDC) implied
/// by an observation code, when one is obvious.
pub fn specialization_for(mdc: Mdc) -> Option<u32> {
    Some(match mdc.0 {
        150020..=150023 | 149546 | 8410608 => 528391, // BP
        150456 | 149530 | 150448 | 150604 => 528388,  // pulse oximeter
        150364 | 150392 | 188420..=188496 => 528392,  // thermometer
        188736 | 188740 | 188752 => 528399,           // scale
        160184..=160208 | 160364 | 160368 | 8417752 => 528401, // glucose meter
        160212 | 8418008 | 8418060 => 528409,         // CGM
        188748..=188780 => 528404,                    // body composition
        147842 | 147240 => 528390,                    // basic ECG / HR
        _ => return None,
    })
}

/// How a BITs field's bits (least significant first, BLE numbering, as the model keeps them)
/// map to the IEEE 11073 MDER numbering of the ASN1ToHL7 codes `<MDC>.<n>` (bit 0 = most
/// significant). There is no general rule (mdc-codes notes: "map by meaning"), so only checked
/// fields are listed; others are [`crate::EncodeError::UnmappedBits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitMapping {
    /// Model bit n is code bit n, for n in `0..count`.
    Same {
        /// How many bits are defined.
        count: u8,
    },
    /// Model bit n is code bit `width − 1 − n`, for n in `0..width`.
    Reversed {
        /// The field width.
        width: u8,
    },
}

/// The bit mapping of a BITs observation code, if it is known.
pub fn bit_mapping(mdc: Mdc) -> Option<BitMapping> {
    match mdc.0 {
        // MDC_BLOOD_PRESSURE_MEASUREMENT_STATUS: BLE b0…b5 = 8410608.0…5.
        8410608 => Some(BitMapping::Same { count: 6 }),
        // MDC_GLU_METER_DEV_STATUS: BLE b0…b10 = 8417752.0…10 (b11 time fault has no code).
        8417752 => Some(BitMapping::Same { count: 11 }),
        // MDC_PULS_OXIM_DEV_STATUS: BLE bit n = 150604.(15−n).
        150604 => Some(BitMapping::Reversed { width: 16 }),
        _ => None,
    }
}

/// The MDC reference id (FHIR `display`) from hearth-ieee11073's table.
pub fn mdc_display(mdc: Mdc) -> Option<&'static str> {
    hearth_ieee11073::mdc::lookup(mdc.0).map(|t| t.reference_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loinc(mdc: u32, unit: Option<&str>) -> Option<&'static [&'static str]> {
        loinc_for(Mdc(mdc), unit).map(|r| r.loinc)
    }

    #[test]
    fn loinc_table_is_what_the_notes_say() {
        assert_eq!(loinc(150020, Some("mm[Hg]")), Some(&["85354-9"][..]));
        assert_eq!(loinc(150021, Some("mm[Hg]")), Some(&["8480-6"][..]));
        assert_eq!(loinc(150022, None), Some(&["8462-4"][..]));
        assert_eq!(loinc(150023, None), Some(&["8478-0"][..]));
        assert_eq!(loinc(149546, Some("/min")), Some(&["8867-4"][..]));
        assert_eq!(loinc(149530, Some("/min")), Some(&["8867-4"][..]));
        assert_eq!(loinc(147842, Some("/min")), Some(&["8867-4"][..]));
        assert_eq!(loinc(150364, Some("Cel")), Some(&["8310-5"][..]));
        assert_eq!(loinc(150456, Some("%")), Some(&["59408-5", "2708-6"][..]));
        assert_eq!(loinc(188736, Some("kg")), Some(&["29463-7"][..]));
        assert_eq!(loinc(188740, Some("cm")), Some(&["8302-2"][..]));
        assert_eq!(loinc(188752, Some("kg/m2")), Some(&["39156-5"][..]));
        assert_eq!(loinc(160184, Some("mg/dL")), Some(&["2339-0"][..]));
        assert_eq!(loinc(160184, Some("mmol/L")), Some(&["15074-8"][..]));
        assert_eq!(
            loinc(160184, Some("kg/L")),
            None,
            "glucose LOINC depends on the unit"
        );
        assert_eq!(loinc(160212, Some("mg/dL")), None, "ISF is not blood");
        assert_eq!(loinc(67996, Some("%")), None, "battery is no vital sign");
        assert!(!loinc_for(Mdc(160184), Some("mg/dL")).is_some_and(|r| r.vital_sign));
        assert!(loinc_for(Mdc(150456), None).is_some_and(|r| r.vital_sign));
    }

    #[test]
    fn every_loinc_row_names_a_known_mdc_term() {
        for r in LOINC {
            assert!(
                mdc_display(Mdc(r.mdc)).is_some(),
                "{} not in the MDC table",
                r.mdc
            );
        }
    }

    #[test]
    fn absent_reasons_map_to_data_absent_reason_codes() {
        let codes = [
            "unknown",
            "asked-unknown",
            "temp-unknown",
            "not-asked",
            "asked-declined",
            "masked",
            "not-applicable",
            "unsupported",
            "as-text",
            "error",
            "not-a-number",
            "negative-infinity",
            "positive-infinity",
            "not-performed",
            "not-permitted",
        ];
        for r in AbsentReason::ALL {
            assert!(codes.contains(&data_absent_reason(r).0), "{r:?}");
        }
        assert_eq!(
            data_absent_reason(AbsentReason::NotANumber).0,
            "not-a-number"
        );
        assert_eq!(
            data_absent_reason(AbsentReason::NotAtThisResolution).0,
            "error"
        );
    }
}

/// SNOMED CT.
pub const SNOMED_SYSTEM: &str = "http://snomed.info/sct";
/// Norsk laboratoriekodeverk (NLK, NPU codes), as in the VKP glucose example.
pub const NLK_SYSTEM: &str = "urn:oid:2.16.578.1.12.4.1.1.7280";
/// Fødselsnummer (FNR), VkpSubjectIdentifiers.
pub const FNR_SYSTEM: &str = "urn:oid:2.16.578.1.12.4.1.4.1";
/// D-nummer (DNR), VkpSubjectIdentifiers.
pub const DNR_SYSTEM: &str = "urn:oid:2.16.578.1.12.4.1.4.2";
/// Felles hjelpenummer (FHN), VkpSubjectIdentifiers.
pub const FHN_SYSTEM: &str = "urn:oid:2.16.578.1.12.4.1.4.3";
/// The subject identifier systems VKP binds (required) to.
pub const NATIONAL_ID_SYSTEMS: &[&str] = &[FNR_SYSTEM, DNR_SYSTEM, FHN_SYSTEM];
/// Organisasjonsnummer (Enhetsregisteret), VkpPerformerOrganizationIdentifiers.
pub const ORGNR_SYSTEM: &str = "urn:oid:2.16.578.1.12.4.1.4.101";
/// Kommunenummer (PMD Bundle `meta.tag` system in NHN's examples).
pub const KOMMUNENUMMER_SYSTEM: &str =
    "https://register.geonorge.no/sosi-kodelister/inndelinger/inndelingsbase/kommunenummer";
/// PMD Bundle identifier system in NHN's examples.
pub const PMD_BUNDLE_IDENTIFIER_SYSTEM: &str = "https://www.nhn.no/komlink/bundle-identifier";
/// PMD batch Bundle profile id (VkpObservation IG, `pmd-Bundle-Observation`).
pub const PMD_BUNDLE_PROFILE: &str = "pmd-Bundle-Observation";

/// A code with its display.
pub type Coded = (&'static str, &'static str);

/// One measurement VKP/PMD can carry: the VkpObservation profile id, its LOINC and SNOMED CT
/// codes (and NLK for glucose), the UCUM units the profile allows and the MDC codes of hearth
/// readings that map to it. Sources: HL7Norway/VkpObservation `input/fsh/profiles/*.fsh`,
/// `input/fsh/instances/vkp-*.fsh`; R4 vital-signs profiles for the units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NationalRow {
    /// What it is, for error messages (`blood pressure`, …).
    pub name: &'static str,
    /// VkpObservation profile id.
    pub profile: &'static str,
    /// LOINC code (fixed by the R4 vital-signs parent).
    pub loinc: Coded,
    /// SNOMED CT code (the VKP slice).
    pub snomed: Coded,
    /// NLK/NPU code, where VKP gives one.
    pub nlk: Option<Coded>,
    /// UCUM units allowed (BP: those of the components).
    pub units: &'static [&'static str],
    /// MDC codes of readings.
    pub mdc: &'static [u32],
}

/// Blood-pressure component codes: (MDC, LOINC, SNOMED CT). Systolic and diastolic are
/// required by the R4 `bp` profile; mean is an extra (open slicing), as in the VKP example.
pub static BP_COMPONENTS: &[(u32, Coded, Option<Coded>)] = &[
    (
        150021,
        ("8480-6", "Systolic blood pressure"),
        Some(("271649006", "Systolic blood pressure")),
    ),
    (
        150022,
        ("8462-4", "Diastolic blood pressure"),
        Some(("271650006", "Diastolic blood pressure")),
    ),
    (150023, ("8478-0", "Mean blood pressure"), None),
];

/// Glucose in blood, all BLE sample types (mdc-codes notes; VKP has one code for all).
const GLUCOSE_MDC: &[u32] = &[
    160184, 160188, 160192, 160196, 160200, 160204, 160364, 160368,
];

/// Body temperature at any site: the VKP Bodytemp profile (R4 `bodytemp`) has one code,
/// 8310-5 / 276885007, for every site, and names the site in `bodySite` ([`TEMP_SITES`]).
const TEMP_MDC: &[u32] = &[
    150364, 150392, 188420, 188424, 188428, 188432, 188448, 188452, 188456, 188496,
];

/// MDC site-specific temperature → `bodySite` (SNOMED CT), from HL7's Body Temperature
/// Measurement Body Location value set (`bodyTempMeasBodyLocationPrecoordVS`, Vital Signs with
/// Qualifying Elements IG), which the VKP Bodytemp example follows (rectum 34402009). 150364
/// (site not given) and 188456 (gastro-intestinal tract, not in that value set) have none.
pub static TEMP_SITES: &[(u32, Coded)] = &[
    (150392, ("42859004", "Tympanic membrane structure")),
    (188420, ("34402009", "Rectum structure")),
    (188424, ("74262004", "Oral cavity structure")),
    (188428, ("117590005", "Ear structure")),
    (188432, ("7569003", "Finger structure")),
    (188448, ("29707007", "Toe structure")),
    (188452, ("422543003", "Structure of axillary fossa")),
    (188496, ("422543003", "Structure of axillary fossa")),
];

/// The `bodySite` of a temperature reading's MDC code, if it names one.
pub fn temperature_site(mdc: Mdc) -> Option<Coded> {
    TEMP_SITES
        .iter()
        .find(|(m, _)| *m == mdc.0)
        .map(|(_, site)| *site)
}

/// The measurements VKP and PMD carry. Everything else is [`crate::EncodeError::NotInProfile`].
pub static NATIONAL: &[NationalRow] = &[
    NationalRow {
        name: "blood pressure",
        profile: "vkp-Observation-Bloodpressure",
        loinc: ("85354-9", "Blood pressure panel with all children optional"),
        snomed: ("75367002", "Blood pressure"),
        nlk: None,
        units: &["mm[Hg]"],
        mdc: &[150020],
    },
    NationalRow {
        name: "heart rate",
        profile: "vkp-Observation-Heartrate",
        loinc: ("8867-4", "Heart rate"),
        snomed: ("364075005", "Heart rate"),
        nlk: None,
        units: &["/min"],
        mdc: &[147842, 149530, 149546],
    },
    NationalRow {
        name: "oxygen saturation",
        profile: "vkp-Observation-Oxygensat",
        loinc: ("2708-6", "Oxygen saturation in Arterial blood"),
        snomed: ("431314004", "Peripheral oxygen saturation"),
        nlk: None,
        units: &["%"],
        mdc: &[150456],
    },
    NationalRow {
        name: "body temperature",
        profile: "vkp-Observation-Bodytemp",
        loinc: ("8310-5", "Body temperature"),
        snomed: ("276885007", "Core body temperature"),
        nlk: None,
        units: &["Cel", "[degF]"],
        mdc: TEMP_MDC,
    },
    NationalRow {
        name: "body weight",
        profile: "vkp-Observation-Bodyweight",
        loinc: ("29463-7", "Body weight"),
        snomed: ("27113001", "Body weight"),
        nlk: None,
        units: &["kg", "g", "[lb_av]"],
        mdc: &[188736],
    },
    NationalRow {
        name: "blood glucose",
        profile: "vkp-Observation",
        loinc: ("15074-8", "Glucose [Moles/volume] in Blood"),
        snomed: ("434912009", "Blood glucose concentration"),
        nlk: Some(("NPU02187", "B—Glucose")),
        units: &["mmol/L"],
        mdc: GLUCOSE_MDC,
    },
];

/// The VKP/PMD row of a reading's MDC code.
pub fn national_for(mdc: Mdc) -> Option<&'static NationalRow> {
    NATIONAL.iter().find(|r| r.mdc.contains(&mdc.0))
}

/// The VKP/PMD row of a LOINC code (for checks).
pub fn national_for_loinc(loinc: &str) -> Option<&'static NationalRow> {
    NATIONAL.iter().find(|r| r.loinc.0 == loinc)
}

/// mg/dL per mmol/L of glucose (molar mass 180.156 g/mol). hearth's BLE driver reports kg/L
/// meters in mg/dL; VKP's 15074-8 is a substance concentration, so they are converted.
pub const GLUCOSE_MG_DL_PER_MMOL_L: f64 = 18.0156;

#[cfg(test)]
mod national_tests {
    use super::*;

    #[test]
    fn national_table_is_what_the_vkp_profiles_say() {
        let row = |m| national_for(Mdc(m)).map(|r| (r.profile, r.loinc.0, r.snomed.0));
        assert_eq!(
            row(150020),
            Some(("vkp-Observation-Bloodpressure", "85354-9", "75367002"))
        );
        assert_eq!(
            row(149546),
            Some(("vkp-Observation-Heartrate", "8867-4", "364075005"))
        );
        assert_eq!(
            row(150456),
            Some(("vkp-Observation-Oxygensat", "2708-6", "431314004"))
        );
        assert_eq!(
            row(150364),
            Some(("vkp-Observation-Bodytemp", "8310-5", "276885007"))
        );
        assert_eq!(
            row(188736),
            Some(("vkp-Observation-Bodyweight", "29463-7", "27113001"))
        );
        assert_eq!(
            row(160184),
            Some(("vkp-Observation", "15074-8", "434912009"))
        );
        assert_eq!(row(188740), None, "height has no VKP profile");
        assert_eq!(
            row(8410608),
            None,
            "BP status bits are not a VKP measurement"
        );
        for r in NATIONAL {
            for m in r.mdc {
                assert!(mdc_display(Mdc(*m)).is_some(), "{m} not in the MDC table");
            }
        }
    }
}
