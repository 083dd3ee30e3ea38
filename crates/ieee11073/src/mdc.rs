//! IEEE 11073-10101 nomenclature ("MDC") codes for what hearth collects from personal health
//! devices, with their reference ids.
//!
//! A 32-bit MDC code is `partition × 65536 + term code` ([`code`], [`partition`], [`term_code`]).
//! FHIR writes it as a decimal `code` in the system `urn:iso:std:iso:11073:10101` with the
//! reference id as `display`; HL7 v2 (IHE PCD-01) writes `<code>^<reference id>^MDC`.
//!
//! The list is the one in the project's research notes (shared reference `mdc-codes.md`, which
//! names the sources of each code), cross-checked term by term against an independent
//! nomenclature header (`tests/mdc.rs`). A term is [`Term::verified`] when the PHD IG, IHE PCD-01
//! messages, the DK Core value set, two independent nomenclature headers, or the Philips GHS code
//! list confirm it; codes seen in one header only, or with a conflict between sources, have
//! `verified: false` and their doc says why. Unit codes (partition 4, DIM) are in
//! [`crate::units`].
//!
//! ```
//! use hearth_ieee11073::mdc;
//! let sys = mdc::lookup(150021).unwrap();
//! assert_eq!(sys, &mdc::PRESS_BLD_NONINV_SYS);
//! assert_eq!(sys.reference_id, "MDC_PRESS_BLD_NONINV_SYS");
//! assert_eq!((sys.partition(), sys.term_code()), (mdc::PART_SCADA, 18949));
//! assert!(mdc::lookup(150024).is_none());
//! ```

use hearth_model::Mdc;

/// One nomenclature term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Term {
    /// The 32-bit code (partition × 65536 + term code).
    pub code: u32,
    /// The reference id, e.g. `"MDC_PRESS_BLD_NONINV_SYS"` (FHIR `display`, PCD-01 OBX-3.2).
    pub reference_id: &'static str,
    /// Whether the code was confirmed by an authoritative or a second independent source; `false`
    /// marks a code from one source only or with conflicting sources: do not emit it without
    /// checking.
    pub verified: bool,
}

impl Term {
    /// The partition (upper 16 bits).
    pub const fn partition(&self) -> u16 {
        partition(self.code)
    }

    /// The term code within the partition (lower 16 bits).
    pub const fn term_code(&self) -> u16 {
        term_code(self.code)
    }

    /// The code as the model's type.
    pub const fn mdc(&self) -> Mdc {
        Mdc(self.code)
    }
}

/// Partition 1: object-oriented (device types, attributes, clocks).
pub const PART_OBJ: u16 = 1;
/// Partition 2: supervisory control and data acquisition (measurements).
pub const PART_SCADA: u16 = 2;
/// Partition 3: events.
pub const PART_EVT: u16 = 3;
/// Partition 4: dimensions (units of measure, see [`crate::units`]).
pub const PART_DIM: u16 = 4;
/// Partition 7: body sites.
pub const PART_SITES: u16 = 7;
/// Partition 8: infrastructure (specializations, identification, time synchronisation).
pub const PART_INFRA: u16 = 8;
/// Partition 128: personal health devices, disease management.
pub const PART_PHD_DM: u16 = 128;
/// Partition 129: personal health devices, health and fitness.
pub const PART_PHD_HF: u16 = 129;
/// Partition 130: personal health devices, aging independently.
pub const PART_PHD_AI: u16 = 130;

/// The 32-bit code of `term` in `partition`.
pub const fn code(partition: u16, term: u16) -> u32 {
    ((partition as u32) << 16) | term as u32
}

/// The partition of a 32-bit code (upper 16 bits).
pub const fn partition(code: u32) -> u16 {
    (code >> 16) as u16
}

/// The term code of a 32-bit code within its partition (lower 16 bits).
pub const fn term_code(code: u32) -> u16 {
    (code & 0xFFFF) as u16
}

/// The short name of a partition ("OBJ", "SCADA", "DIM", …), if it is one of the known ones.
pub fn partition_name(partition: u16) -> Option<&'static str> {
    match partition {
        PART_OBJ => Some("OBJ"),
        PART_SCADA => Some("SCADA"),
        PART_EVT => Some("EVT"),
        PART_DIM => Some("DIM"),
        PART_SITES => Some("SITES"),
        PART_INFRA => Some("INFRA"),
        PART_PHD_DM => Some("PHD_DM"),
        PART_PHD_HF => Some("PHD_HF"),
        PART_PHD_AI => Some("PHD_AI"),
        _ => None,
    }
}

/// The term with this 32-bit code, if hearth knows it (binary search in [`TERMS`]).
pub fn lookup(code: u32) -> Option<&'static Term> {
    TERMS
        .binary_search_by_key(&code, |t| t.code)
        .ok()
        .and_then(|i| TERMS.get(i))
}

/// The term with this reference id (exact, case-sensitive match), if hearth knows it.
pub fn by_reference_id(reference_id: &str) -> Option<&'static Term> {
    TERMS.iter().find(|t| t.reference_id == reference_id)
}

const fn verified(code: u32, reference_id: &'static str) -> Term {
    Term {
        code,
        reference_id,
        verified: true,
    }
}

const fn unverified(code: u32, reference_id: &'static str) -> Term {
    Term {
        code,
        reference_id,
        verified: false,
    }
}

// Object-oriented partition (OBJ, 1): device types, attributes and clocks.

/// Device type of a personal health device (PHD), `Device.type` of PhdDevice.
pub const MOC_VMS_MDS_SIMP: Term = verified(65573, "MDC_MOC_VMS_MDS_SIMP");
/// Power status (BITs: on mains, on battery, charging).
pub const ATTR_POWER_STAT: Term = verified(67925, "MDC_ATTR_POWER_STAT");
/// System id attribute (EUI-64) of IEEE 11073-20601.
pub const ATTR_SYS_ID: Term = verified(67972, "MDC_ATTR_SYS_ID");
/// Absolute (wall-clock, no offset) clock: Coincident Timestamp code for BLE Date Time / CTS
/// devices.
pub const ATTR_TIME_ABS: Term = verified(67975, "MDC_ATTR_TIME_ABS");
/// Relative clock: Coincident Timestamp code.
pub const ATTR_TIME_REL: Term = verified(67983, "MDC_ATTR_TIME_REL");
/// Battery level in percent (Battery Level 0x2A19).
pub const ATTR_VAL_BATT_CHARGE: Term = verified(67996, "MDC_ATTR_VAL_BATT_CHARGE");
/// High-resolution relative clock: Coincident Timestamp code.
pub const ATTR_TIME_REL_HI_RES: Term = verified(68072, "MDC_ATTR_TIME_REL_HI_RES");
/// Measurement duration (PCD-01 OBX-3).
pub const ATTR_TIME_PD_MSMT_ACTIVE: Term = verified(68185, "MDC_ATTR_TIME_PD_MSMT_ACTIVE");
/// Supplemental-Types component code.
pub const ATTR_SUPPLEMENTAL_TYPES: Term = verified(68193, "MDC_ATTR_SUPPLEMENTAL_TYPES");
/// Clock capabilities (BITs, ASN1ToHL7 `68219.n`); reference id from the LNI header.
pub const TIME_CAP_STATE: Term = verified(68219, "MDC_TIME_CAP_STATE");
/// Time synchronisation method of a device (`property` / Coincident Timestamp `component`).
pub const TIME_SYNC_PROTOCOL: Term = verified(68220, "MDC_TIME_SYNC_PROTOCOL");
/// Time synchronisation accuracy (`property`, in `us`).
pub const TIME_SYNC_ACCURACY: Term = verified(68221, "MDC_TIME_SYNC_ACCURACY");
/// Resolution of the absolute clock (`property`, in `us`); reference id from the LNI header.
pub const TIME_RES_ABS: Term = verified(68222, "MDC_TIME_RES_ABS");
/// Resolution of the relative clock (`property`, in `us`); reference id from the LNI header.
pub const TIME_RES_REL: Term = verified(68223, "MDC_TIME_RES_REL");
/// Resolution of the high-resolution relative clock (`property`, in `us`); reference id from the
/// LNI header.
pub const TIME_RES_REL_HI_RES: Term = verified(68224, "MDC_TIME_RES_REL_HI_RES");
/// Base-offset time. **Conflict**: the PHD IG notes map "wall clock with offset" to 68225 while its
/// required value set MDCClockTypes holds 68226.
pub const ATTR_TIME_BO: Term = unverified(68225, "MDC_ATTR_TIME_BO");
/// Base-offset time stamp. **Conflict**: in the PHD IG value set MDCClockTypes as "wall clock with
/// offset" (emit this one so resources validate), but the IG notes say 68225.
pub const ATTR_TIME_STAMP_BO: Term = unverified(68226, "MDC_ATTR_TIME_STAMP_BO");
/// Tick counter resolution (`property`, in `us`).
pub const ATTR_TICK_RES: Term = verified(68229, "MDC_ATTR_TICK_RES");
/// Resolution of the base-offset clock (`property`, in `us`); reference id from the LNI header.
pub const TIME_RES_BO: Term = verified(68239, "MDC_TIME_RES_BO");

// Supervisory control and data acquisition partition (SCADA, 2): measurements.

/// RR interval (Heart Rate RR, 1/1024 s on the wire, reported in ms; the BLE mapping is derived).
pub const ECG_TIME_PD_RR_GL: Term = verified(147240, "MDC_ECG_TIME_PD_RR_GL");
/// Heart rate (Heart Rate Measurement 0x2A37).
pub const ECG_HEART_RATE: Term = verified(147842, "MDC_ECG_HEART_RATE");
/// Pulse rate from a pulse oximeter (PLX).
pub const PULS_OXIM_PULS_RATE: Term = verified(149530, "MDC_PULS_OXIM_PULS_RATE");
/// Pulse rate from a blood pressure monitor.
pub const PULS_RATE_NON_INV: Term = verified(149546, "MDC_PULS_RATE_NON_INV");
/// Non-invasive blood pressure, the compound of systolic, diastolic and mean.
pub const PRESS_BLD_NONINV: Term = verified(150020, "MDC_PRESS_BLD_NONINV");
/// Systolic blood pressure.
pub const PRESS_BLD_NONINV_SYS: Term = verified(150021, "MDC_PRESS_BLD_NONINV_SYS");
/// Diastolic blood pressure.
pub const PRESS_BLD_NONINV_DIA: Term = verified(150022, "MDC_PRESS_BLD_NONINV_DIA");
/// Mean arterial pressure.
pub const PRESS_BLD_NONINV_MEAN: Term = verified(150023, "MDC_PRESS_BLD_NONINV_MEAN");
/// Body temperature (thermometer type 2 "body" or no type).
pub const TEMP_BODY: Term = verified(150364, "MDC_TEMP_BODY");
/// Tympanic temperature (thermometer type 9).
pub const TEMP_TYMP: Term = verified(150392, "MDC_TEMP_TYMP");
/// Relative perfusion; the mapping from the BLE Pulse Amplitude Index is unverified.
pub const PULS_OXIM_PERF_REL: Term = verified(150448, "MDC_PULS_OXIM_PERF_REL");
/// SpO2.
pub const PULS_OXIM_SAT_O2: Term = verified(150456, "MDC_PULS_OXIM_SAT_O2");
/// Supplemental type: fast response (PLX continuous fast values).
pub const MODALITY_FAST: Term = verified(150580, "MDC_MODALITY_FAST");
/// Supplemental type: slow response (PLX continuous slow values).
pub const MODALITY_SLOW: Term = verified(150584, "MDC_MODALITY_SLOW");
/// Supplemental type: spot check (PLX spot-check measurement).
pub const MODALITY_SPOT: Term = verified(150588, "MDC_MODALITY_SPOT");
/// Pulse oximeter device and sensor status (BITs; BLE bit n = MDER bit 15 − n).
pub const PULS_OXIM_DEV_STATUS: Term = verified(150604, "MDC_PULS_OXIM_DEV_STATUS");
/// Glucose, capillary whole blood (GLS type 1).
pub const CONC_GLU_CAPILLARY_WHOLEBLOOD: Term =
    verified(160184, "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD");
/// Glucose, capillary plasma (GLS type 2).
pub const CONC_GLU_CAPILLARY_PLASMA: Term = verified(160188, "MDC_CONC_GLU_CAPILLARY_PLASMA");
/// Glucose, venous whole blood (GLS type 3).
pub const CONC_GLU_VENOUS_WHOLEBLOOD: Term = verified(160192, "MDC_CONC_GLU_VENOUS_WHOLEBLOOD");
/// Glucose, venous plasma (GLS type 4).
pub const CONC_GLU_VENOUS_PLASMA: Term = verified(160196, "MDC_CONC_GLU_VENOUS_PLASMA");
/// Glucose, arterial whole blood (GLS type 5).
pub const CONC_GLU_ARTERIAL_WHOLEBLOOD: Term = verified(160200, "MDC_CONC_GLU_ARTERIAL_WHOLEBLOOD");
/// Glucose, arterial plasma (GLS type 6).
pub const CONC_GLU_ARTERIAL_PLASMA: Term = verified(160204, "MDC_CONC_GLU_ARTERIAL_PLASMA");
/// Glucose, control solution (GLS type 10).
pub const CONC_GLU_CONTROL: Term = verified(160208, "MDC_CONC_GLU_CONTROL");
/// Glucose, interstitial fluid (GLS type 9; CGM glucose).
pub const CONC_GLU_ISF: Term = verified(160212, "MDC_CONC_GLU_ISF");
/// HbA1c (Glucose Measurement Context).
pub const CONC_HBA1C: Term = verified(160220, "MDC_CONC_HBA1C");
/// Glucose, undetermined whole blood (GLS type 7).
pub const CONC_GLU_UNDETERMINED_WHOLEBLOOD: Term =
    verified(160364, "MDC_CONC_GLU_UNDETERMINED_WHOLEBLOOD");
/// Glucose, undetermined plasma (GLS type 8).
pub const CONC_GLU_UNDETERMINED_PLASMA: Term = verified(160368, "MDC_CONC_GLU_UNDETERMINED_PLASMA");
/// Rectal temperature (thermometer type 7).
pub const TEMP_RECT: Term = verified(188420, "MDC_TEMP_RECT");
/// Oral temperature (thermometer type 6, mouth).
pub const TEMP_ORAL: Term = verified(188424, "MDC_TEMP_ORAL");
/// Ear temperature (thermometer type 3).
pub const TEMP_EAR: Term = verified(188428, "MDC_TEMP_EAR");
/// Finger temperature (thermometer type 4).
pub const TEMP_FINGER: Term = verified(188432, "MDC_TEMP_FINGER");
/// Toe temperature (thermometer type 8).
pub const TEMP_TOE: Term = verified(188448, "MDC_TEMP_TOE");
/// Armpit temperature (thermometer type 1); the 11073-10408 term used for BLE thermometers.
pub const TEMP_AXILLA: Term = verified(188452, "MDC_TEMP_AXILLA");
/// Gastro-intestinal tract temperature (thermometer type 5).
pub const TEMP_GIT: Term = verified(188456, "MDC_TEMP_GIT");
/// Axillary temperature as hospital monitors send it; not for BLE thermometers (use
/// [`TEMP_AXILLA`]).
pub const TEMP_AXIL: Term = verified(188496, "MDC_TEMP_AXIL");
/// Body weight.
pub const MASS_BODY_ACTUAL: Term = verified(188736, "MDC_MASS_BODY_ACTUAL");
/// Body height.
pub const LEN_BODY_ACTUAL: Term = verified(188740, "MDC_LEN_BODY_ACTUAL");
/// Body fat in percent.
pub const BODY_FAT: Term = verified(188748, "MDC_BODY_FAT");
/// Body mass index.
pub const RATIO_MASS_BODY_LEN_SQ: Term = verified(188752, "MDC_RATIO_MASS_BODY_LEN_SQ");
/// Fat-free mass.
pub const MASS_BODY_FAT_FREE: Term = verified(188756, "MDC_MASS_BODY_FAT_FREE");
/// Soft lean mass.
pub const MASS_BODY_SOFT_LEAN: Term = verified(188760, "MDC_MASS_BODY_SOFT_LEAN");
/// Body water mass.
pub const BODY_WATER: Term = verified(188764, "MDC_BODY_WATER");
/// Basal metabolism; one header only ("not in 20601"), unverified.
pub const BASAL_METABOLISM: Term = unverified(188768, "MDC_BASAL_METABOLISM");
/// Muscle percentage; one header only. **Conflict**: the Philips GHS list has 188772 as
/// MDC_COMM_STATUS. Do not emit without confirmation.
pub const BODY_MUSCLE: Term = unverified(188772, "MDC_BODY_MUSCLE");
/// Muscle mass; one header only, unverified. Do not emit without confirmation.
pub const MASS_BODY_MUSCLE: Term = unverified(188776, "MDC_MASS_BODY_MUSCLE");
/// Body electrical impedance; one header only, unverified.
pub const BODY_ELECTRICAL_IMPEDANCE: Term = unverified(188780, "MDC_BODY_ELECTRICAL_IMPEDANCE");

// Infrastructure partition (INFRA, 8): specializations, device identification, time synchronisation
// and certification.

/// Specialization: legacy multi-function (hydra) device.
pub const DEV_SPEC_PROFILE_HYDRA: Term = verified(528384, "MDC_DEV_SPEC_PROFILE_HYDRA");
/// Specialization: pulse oximeter.
pub const DEV_SPEC_PROFILE_PULS_OXIM: Term = verified(528388, "MDC_DEV_SPEC_PROFILE_PULS_OXIM");
/// Specialization: basic ECG (BLE Heart Rate maps here, a derivation).
pub const DEV_SPEC_PROFILE_MIN_ECG: Term = verified(528390, "MDC_DEV_SPEC_PROFILE_MIN_ECG");
/// Specialization: blood pressure monitor.
pub const DEV_SPEC_PROFILE_BP: Term = verified(528391, "MDC_DEV_SPEC_PROFILE_BP");
/// Specialization: thermometer.
pub const DEV_SPEC_PROFILE_TEMP: Term = verified(528392, "MDC_DEV_SPEC_PROFILE_TEMP");
/// Specialization: respiration rate monitor.
pub const DEV_SPEC_PROFILE_RESP_RATE: Term = verified(528397, "MDC_DEV_SPEC_PROFILE_RESP_RATE");
/// Specialization: weight scale.
pub const DEV_SPEC_PROFILE_SCALE: Term = verified(528399, "MDC_DEV_SPEC_PROFILE_SCALE");
/// Specialization: glucose meter.
pub const DEV_SPEC_PROFILE_GLUCOSE: Term = verified(528401, "MDC_DEV_SPEC_PROFILE_GLUCOSE");
/// Specialization: INR (coagulation) meter.
pub const DEV_SPEC_PROFILE_COAG: Term = verified(528402, "MDC_DEV_SPEC_PROFILE_COAG");
/// Specialization: insulin pump.
pub const DEV_SPEC_PROFILE_INSULIN_PUMP: Term =
    verified(528403, "MDC_DEV_SPEC_PROFILE_INSULIN_PUMP");
/// Specialization: body composition analyser.
pub const DEV_SPEC_PROFILE_BCA: Term = verified(528404, "MDC_DEV_SPEC_PROFILE_BCA");
/// Specialization: peak flow monitor.
pub const DEV_SPEC_PROFILE_PEAK_FLOW: Term = verified(528405, "MDC_DEV_SPEC_PROFILE_PEAK_FLOW");
/// Specialization: urine analyser.
pub const DEV_SPEC_PROFILE_URINE: Term = verified(528406, "MDC_DEV_SPEC_PROFILE_URINE");
/// Specialization: sleep apnoea breathing therapy equipment.
pub const DEV_SPEC_PROFILE_SABTE: Term = verified(528408, "MDC_DEV_SPEC_PROFILE_SABTE");
/// Specialization: continuous glucose monitor.
pub const DEV_SPEC_PROFILE_CGM: Term = verified(528409, "MDC_DEV_SPEC_PROFILE_CGM");
/// Specialization: power status monitor.
pub const DEV_SPEC_PROFILE_PSM: Term = verified(528412, "MDC_DEV_SPEC_PROFILE_PSM");
/// Specialization: cardiovascular fitness and activity monitor.
pub const DEV_SPEC_PROFILE_HF_CARDIO: Term = verified(528425, "MDC_DEV_SPEC_PROFILE_HF_CARDIO");
/// Specialization: strength fitness equipment.
pub const DEV_SPEC_PROFILE_HF_STRENGTH: Term = verified(528426, "MDC_DEV_SPEC_PROFILE_HF_STRENGTH");
/// Specialization: independent living activity hub.
pub const DEV_SPEC_PROFILE_AI_ACTIVITY_HUB: Term =
    verified(528455, "MDC_DEV_SPEC_PROFILE_AI_ACTIVITY_HUB");
/// Specialization: medication monitor.
pub const DEV_SPEC_PROFILE_AI_MED_MINDER: Term =
    verified(528456, "MDC_DEV_SPEC_PROFILE_AI_MED_MINDER");
/// Specialization: generic ("any 10206", GHS); the current code (528385 is withdrawn).
pub const DEV_SPEC_PROFILE_GENERIC: Term = verified(528457, "MDC_DEV_SPEC_PROFILE_GENERIC");
/// Sub-specialization: heart rate (of basic ECG).
pub const DEV_SUB_SPEC_PROFILE_HR: Term = verified(528525, "MDC_DEV_SUB_SPEC_PROFILE_HR");
/// Model number (Model Number String 0x2A24).
pub const ID_MODEL_NUMBER: Term = verified(531969, "MDC_ID_MODEL_NUMBER");
/// Manufacturer (Manufacturer Name String 0x2A29).
pub const ID_MODEL_MANUFACTURER: Term = verified(531970, "MDC_ID_MODEL_MANUFACTURER");
/// Serial number (Serial Number String 0x2A25).
pub const ID_PROD_SPEC_SERIAL: Term = verified(531972, "MDC_ID_PROD_SPEC_SERIAL");
/// Hardware revision (`Device.version.type`).
pub const ID_PROD_SPEC_HW: Term = verified(531974, "MDC_ID_PROD_SPEC_HW");
/// Software revision (`Device.version.type`).
pub const ID_PROD_SPEC_SW: Term = verified(531975, "MDC_ID_PROD_SPEC_SW");
/// Firmware revision (`Device.version.type`).
pub const ID_PROD_SPEC_FW: Term = verified(531976, "MDC_ID_PROD_SPEC_FW");
/// Protocol revision (`Device.version.type`).
pub const ID_PROD_SPEC_PROTOCOL_REV: Term = verified(531977, "MDC_ID_PROD_SPEC_PROTOCOL_REV");
/// Device type of a personal health gateway (PHG), fixed `Device.type` of PhgDevice.
pub const MOC_VMS_MDS_AHD: Term = verified(531981, "MDC_MOC_VMS_MDS_AHD");
/// Time sync method: none (a BLE device synchronised only by hearth's Current Time writes).
pub const TIME_SYNC_NONE: Term = verified(532224, "MDC_TIME_SYNC_NONE");
/// Time sync method: NTP v3.
pub const TIME_SYNC_NTPV3: Term = verified(532225, "MDC_TIME_SYNC_NTPV3");
/// Time sync method: NTP v4.
pub const TIME_SYNC_NTPV4: Term = verified(532226, "MDC_TIME_SYNC_NTPV4");
/// Time sync method: SNTP v4.
pub const TIME_SYNC_SNTPV4: Term = verified(532227, "MDC_TIME_SYNC_SNTPV4");
/// Time sync method: SNTP v4 (RFC 4330).
pub const TIME_SYNC_SNTPV4330: Term = verified(532228, "MDC_TIME_SYNC_SNTPV4330");
/// Time sync method: Bluetooth v1.
pub const TIME_SYNC_BTV1: Term = verified(532229, "MDC_TIME_SYNC_BTV1");
/// Time sync method: radio clock.
pub const TIME_SYNC_RADIO: Term = verified(532230, "MDC_TIME_SYNC_RADIO");
/// Time sync method: HL7 NCK.
pub const TIME_SYNC_HL7_NCK: Term = verified(532231, "MDC_TIME_SYNC_HL7_NCK");
/// Time sync method: CDMA.
pub const TIME_SYNC_CDMA: Term = verified(532232, "MDC_TIME_SYNC_CDMA");
/// Time sync method: GSM.
pub const TIME_SYNC_GSM: Term = verified(532233, "MDC_TIME_SYNC_GSM");
/// Time sync method: EBWW.
pub const TIME_SYNC_EBWW: Term = verified(532234, "MDC_TIME_SYNC_EBWW");
/// Time sync method: USB start of frame.
pub const TIME_SYNC_USB_SOF: Term = verified(532235, "MDC_TIME_SYNC_USB_SOF");
/// Time sync method: other.
pub const TIME_SYNC_OTHER: Term = verified(532236, "MDC_TIME_SYNC_OTHER");
/// Time sync method: other mobile network.
pub const TIME_SYNC_OTHER_MOBILE: Term = verified(532237, "MDC_TIME_SYNC_OTHER_MOBILE");
/// Time sync method: GPS.
pub const TIME_SYNC_GPS: Term = verified(532238, "MDC_TIME_SYNC_GPS");
/// Continua version.
pub const REG_CERT_DATA_CONTINUA_VERSION: Term =
    verified(532352, "MDC_REG_CERT_DATA_CONTINUA_VERSION");
/// Continua certified device list (PHD).
pub const REG_CERT_DATA_CONTINUA_CERT_DEV_LIST: Term =
    verified(532353, "MDC_REG_CERT_DATA_CONTINUA_CERT_DEV_LIST");
/// Regulation status (BITs, ASN1ToHL7 `532354.0`).
pub const REG_CERT_DATA_CONTINUA_REG_STATUS: Term =
    verified(532354, "MDC_REG_CERT_DATA_CONTINUA_REG_STATUS");
/// Continua certified gateway (AHD) interface list (PHG).
pub const REG_CERT_DATA_CONTINUA_AHD_CERT_LIST: Term =
    verified(532355, "MDC_REG_CERT_DATA_CONTINUA_AHD_CERT_LIST");

// Personal health device disease-management partition (PHD_DM, 128): status bits and glucose
// context.

/// Blood pressure measurement status (BITs; BLE bits 0…5 = MDER bits 0…5).
pub const BLOOD_PRESSURE_MEASUREMENT_STATUS: Term =
    verified(8410608, "MDC_BLOOD_PRESSURE_MEASUREMENT_STATUS");
/// Glucose meter device status (BITs; BLE bit n = MDER bit n for n = 0…10).
pub const GLU_METER_DEV_STATUS: Term = verified(8417752, "MDC_GLU_METER_DEV_STATUS");
/// Glucose context: exercise.
pub const CTXT_GLU_EXERCISE: Term = verified(8417760, "MDC_CTXT_GLU_EXERCISE");
/// Glucose context: carbohydrate intake (BLE amount in kg).
pub const CTXT_GLU_CARB: Term = verified(8417764, "MDC_CTXT_GLU_CARB");
/// Carbohydrate id 1: breakfast.
pub const CTXT_GLU_CARB_BREAKFAST: Term = verified(8417768, "MDC_CTXT_GLU_CARB_BREAKFAST");
/// Carbohydrate id 2: lunch.
pub const CTXT_GLU_CARB_LUNCH: Term = verified(8417772, "MDC_CTXT_GLU_CARB_LUNCH");
/// Carbohydrate id 3: dinner.
pub const CTXT_GLU_CARB_DINNER: Term = verified(8417776, "MDC_CTXT_GLU_CARB_DINNER");
/// Carbohydrate id 4: snack.
pub const CTXT_GLU_CARB_SNACK: Term = verified(8417780, "MDC_CTXT_GLU_CARB_SNACK");
/// Carbohydrate id 5: drink.
pub const CTXT_GLU_CARB_DRINK: Term = verified(8417784, "MDC_CTXT_GLU_CARB_DRINK");
/// Carbohydrate id 6: supper.
pub const CTXT_GLU_CARB_SUPPER: Term = verified(8417788, "MDC_CTXT_GLU_CARB_SUPPER");
/// Carbohydrate id 7: brunch.
pub const CTXT_GLU_CARB_BRUNCH: Term = verified(8417792, "MDC_CTXT_GLU_CARB_BRUNCH");
/// Glucose context: medication (BLE amount in kg or L).
pub const CTXT_MEDICATION: Term = verified(8417796, "MDC_CTXT_MEDICATION");
/// Medication id 1: rapid-acting insulin.
pub const CTXT_MEDICATION_RAPIDACTING: Term = verified(8417800, "MDC_CTXT_MEDICATION_RAPIDACTING");
/// Medication id 2: short-acting insulin.
pub const CTXT_MEDICATION_SHORTACTING: Term = verified(8417804, "MDC_CTXT_MEDICATION_SHORTACTING");
/// Medication id 3: intermediate-acting insulin.
pub const CTXT_MEDICATION_INTERMEDIATEACTING: Term =
    verified(8417808, "MDC_CTXT_MEDICATION_INTERMEDIATEACTING");
/// Medication id 4: long-acting insulin.
pub const CTXT_MEDICATION_LONGACTING: Term = verified(8417812, "MDC_CTXT_MEDICATION_LONGACTING");
/// Medication id 5: pre-mixed insulin.
pub const CTXT_MEDICATION_PREMIX: Term = verified(8417816, "MDC_CTXT_MEDICATION_PREMIX");
/// Glucose context: health.
pub const CTXT_GLU_HEALTH: Term = verified(8417820, "MDC_CTXT_GLU_HEALTH");
/// Health 1: minor health issues (one header only).
pub const CTXT_GLU_HEALTH_MINOR: Term = unverified(8417824, "MDC_CTXT_GLU_HEALTH_MINOR");
/// Health 2: major health issues (one header only).
pub const CTXT_GLU_HEALTH_MAJOR: Term = unverified(8417828, "MDC_CTXT_GLU_HEALTH_MAJOR");
/// Health 3: during menses (one header only).
pub const CTXT_GLU_HEALTH_MENSES: Term = unverified(8417832, "MDC_CTXT_GLU_HEALTH_MENSES");
/// Health 4: under stress (one header only).
pub const CTXT_GLU_HEALTH_STRESS: Term = unverified(8417836, "MDC_CTXT_GLU_HEALTH_STRESS");
/// Health 5: no health issues (one header only).
pub const CTXT_GLU_HEALTH_NONE: Term = unverified(8417840, "MDC_CTXT_GLU_HEALTH_NONE");
/// Glucose context: sample location.
pub const CTXT_GLU_SAMPLELOCATION: Term = verified(8417844, "MDC_CTXT_GLU_SAMPLELOCATION");
/// Sample location 15 (not available): undetermined (one header only).
pub const CTXT_GLU_SAMPLELOCATION_UNDETERMINED: Term =
    unverified(8417845, "MDC_CTXT_GLU_SAMPLELOCATION_UNDETERMINED");
/// Sample location: other.
pub const CTXT_GLU_SAMPLELOCATION_OTHER: Term =
    verified(8417846, "MDC_CTXT_GLU_SAMPLELOCATION_OTHER");
/// Sample location 1: finger (one header only).
pub const CTXT_GLU_SAMPLELOCATION_FINGER: Term =
    unverified(8417848, "MDC_CTXT_GLU_SAMPLELOCATION_FINGER");
/// Sample location 2: alternate site test (one header only).
pub const CTXT_GLU_SAMPLELOCATION_AST: Term =
    unverified(8417852, "MDC_CTXT_GLU_SAMPLELOCATION_AST");
/// Sample location 3: earlobe (one header only).
pub const CTXT_GLU_SAMPLELOCATION_EARLOBE: Term =
    unverified(8417856, "MDC_CTXT_GLU_SAMPLELOCATION_EARLOBE");
/// Sample location 4: control solution (one header only).
pub const CTXT_GLU_SAMPLELOCATION_CTRLSOLUTION: Term =
    unverified(8417860, "MDC_CTXT_GLU_SAMPLELOCATION_CTRLSOLUTION");
/// Glucose context: meal.
pub const CTXT_GLU_MEAL: Term = verified(8417864, "MDC_CTXT_GLU_MEAL");
/// Meal 1: preprandial (one header only).
pub const CTXT_GLU_MEAL_PREPRANDIAL: Term = unverified(8417868, "MDC_CTXT_GLU_MEAL_PREPRANDIAL");
/// Meal 5: bedtime (one header only).
pub const CTXT_GLU_MEAL_BEDTIME: Term = unverified(8417869, "MDC_CTXT_GLU_MEAL_BEDTIME");
/// Meal 2: postprandial.
pub const CTXT_GLU_MEAL_POSTPRANDIAL: Term = verified(8417872, "MDC_CTXT_GLU_MEAL_POSTPRANDIAL");
/// Meal 3: fasting (one header only).
pub const CTXT_GLU_MEAL_FASTING: Term = unverified(8417876, "MDC_CTXT_GLU_MEAL_FASTING");
/// Meal 4: casual (one header only).
pub const CTXT_GLU_MEAL_CASUAL: Term = unverified(8417880, "MDC_CTXT_GLU_MEAL_CASUAL");
/// Glucose context: tester.
pub const CTXT_GLU_TESTER: Term = verified(8417884, "MDC_CTXT_GLU_TESTER");
/// Tester 1: self (one header only).
pub const CTXT_GLU_TESTER_SELF: Term = unverified(8417888, "MDC_CTXT_GLU_TESTER_SELF");
/// Tester 2: health care professional (one header only).
pub const CTXT_GLU_TESTER_HCP: Term = unverified(8417892, "MDC_CTXT_GLU_TESTER_HCP");
/// Tester 3: lab test (one header only).
pub const CTXT_GLU_TESTER_LAB: Term = unverified(8417896, "MDC_CTXT_GLU_TESTER_LAB");
/// CGM glucose trend (one header only, unverified).
pub const CONC_GLU_TREND: Term = unverified(8418008, "MDC_CONC_GLU_TREND");
/// CGM device status (one header only, unverified).
pub const CGM_DEV_STAT: Term = unverified(8418060, "MDC_CGM_DEV_STAT");

// Personal health device health-and-fitness partition (PHD_HF, 129).

/// Energy expended (Heart Rate Measurement; one header only, unverified).
pub const HF_ENERGY: Term = unverified(8454263, "MDC_HF_ENERGY");

/// Every term of this module, sorted by code (for [`lookup`]).
pub static TERMS: &[Term] = &[
    MOC_VMS_MDS_SIMP,
    ATTR_POWER_STAT,
    ATTR_SYS_ID,
    ATTR_TIME_ABS,
    ATTR_TIME_REL,
    ATTR_VAL_BATT_CHARGE,
    ATTR_TIME_REL_HI_RES,
    ATTR_TIME_PD_MSMT_ACTIVE,
    ATTR_SUPPLEMENTAL_TYPES,
    TIME_CAP_STATE,
    TIME_SYNC_PROTOCOL,
    TIME_SYNC_ACCURACY,
    TIME_RES_ABS,
    TIME_RES_REL,
    TIME_RES_REL_HI_RES,
    ATTR_TIME_BO,
    ATTR_TIME_STAMP_BO,
    ATTR_TICK_RES,
    TIME_RES_BO,
    ECG_TIME_PD_RR_GL,
    ECG_HEART_RATE,
    PULS_OXIM_PULS_RATE,
    PULS_RATE_NON_INV,
    PRESS_BLD_NONINV,
    PRESS_BLD_NONINV_SYS,
    PRESS_BLD_NONINV_DIA,
    PRESS_BLD_NONINV_MEAN,
    TEMP_BODY,
    TEMP_TYMP,
    PULS_OXIM_PERF_REL,
    PULS_OXIM_SAT_O2,
    MODALITY_FAST,
    MODALITY_SLOW,
    MODALITY_SPOT,
    PULS_OXIM_DEV_STATUS,
    CONC_GLU_CAPILLARY_WHOLEBLOOD,
    CONC_GLU_CAPILLARY_PLASMA,
    CONC_GLU_VENOUS_WHOLEBLOOD,
    CONC_GLU_VENOUS_PLASMA,
    CONC_GLU_ARTERIAL_WHOLEBLOOD,
    CONC_GLU_ARTERIAL_PLASMA,
    CONC_GLU_CONTROL,
    CONC_GLU_ISF,
    CONC_HBA1C,
    CONC_GLU_UNDETERMINED_WHOLEBLOOD,
    CONC_GLU_UNDETERMINED_PLASMA,
    TEMP_RECT,
    TEMP_ORAL,
    TEMP_EAR,
    TEMP_FINGER,
    TEMP_TOE,
    TEMP_AXILLA,
    TEMP_GIT,
    TEMP_AXIL,
    MASS_BODY_ACTUAL,
    LEN_BODY_ACTUAL,
    BODY_FAT,
    RATIO_MASS_BODY_LEN_SQ,
    MASS_BODY_FAT_FREE,
    MASS_BODY_SOFT_LEAN,
    BODY_WATER,
    BASAL_METABOLISM,
    BODY_MUSCLE,
    MASS_BODY_MUSCLE,
    BODY_ELECTRICAL_IMPEDANCE,
    DEV_SPEC_PROFILE_HYDRA,
    DEV_SPEC_PROFILE_PULS_OXIM,
    DEV_SPEC_PROFILE_MIN_ECG,
    DEV_SPEC_PROFILE_BP,
    DEV_SPEC_PROFILE_TEMP,
    DEV_SPEC_PROFILE_RESP_RATE,
    DEV_SPEC_PROFILE_SCALE,
    DEV_SPEC_PROFILE_GLUCOSE,
    DEV_SPEC_PROFILE_COAG,
    DEV_SPEC_PROFILE_INSULIN_PUMP,
    DEV_SPEC_PROFILE_BCA,
    DEV_SPEC_PROFILE_PEAK_FLOW,
    DEV_SPEC_PROFILE_URINE,
    DEV_SPEC_PROFILE_SABTE,
    DEV_SPEC_PROFILE_CGM,
    DEV_SPEC_PROFILE_PSM,
    DEV_SPEC_PROFILE_HF_CARDIO,
    DEV_SPEC_PROFILE_HF_STRENGTH,
    DEV_SPEC_PROFILE_AI_ACTIVITY_HUB,
    DEV_SPEC_PROFILE_AI_MED_MINDER,
    DEV_SPEC_PROFILE_GENERIC,
    DEV_SUB_SPEC_PROFILE_HR,
    ID_MODEL_NUMBER,
    ID_MODEL_MANUFACTURER,
    ID_PROD_SPEC_SERIAL,
    ID_PROD_SPEC_HW,
    ID_PROD_SPEC_SW,
    ID_PROD_SPEC_FW,
    ID_PROD_SPEC_PROTOCOL_REV,
    MOC_VMS_MDS_AHD,
    TIME_SYNC_NONE,
    TIME_SYNC_NTPV3,
    TIME_SYNC_NTPV4,
    TIME_SYNC_SNTPV4,
    TIME_SYNC_SNTPV4330,
    TIME_SYNC_BTV1,
    TIME_SYNC_RADIO,
    TIME_SYNC_HL7_NCK,
    TIME_SYNC_CDMA,
    TIME_SYNC_GSM,
    TIME_SYNC_EBWW,
    TIME_SYNC_USB_SOF,
    TIME_SYNC_OTHER,
    TIME_SYNC_OTHER_MOBILE,
    TIME_SYNC_GPS,
    REG_CERT_DATA_CONTINUA_VERSION,
    REG_CERT_DATA_CONTINUA_CERT_DEV_LIST,
    REG_CERT_DATA_CONTINUA_REG_STATUS,
    REG_CERT_DATA_CONTINUA_AHD_CERT_LIST,
    BLOOD_PRESSURE_MEASUREMENT_STATUS,
    GLU_METER_DEV_STATUS,
    CTXT_GLU_EXERCISE,
    CTXT_GLU_CARB,
    CTXT_GLU_CARB_BREAKFAST,
    CTXT_GLU_CARB_LUNCH,
    CTXT_GLU_CARB_DINNER,
    CTXT_GLU_CARB_SNACK,
    CTXT_GLU_CARB_DRINK,
    CTXT_GLU_CARB_SUPPER,
    CTXT_GLU_CARB_BRUNCH,
    CTXT_MEDICATION,
    CTXT_MEDICATION_RAPIDACTING,
    CTXT_MEDICATION_SHORTACTING,
    CTXT_MEDICATION_INTERMEDIATEACTING,
    CTXT_MEDICATION_LONGACTING,
    CTXT_MEDICATION_PREMIX,
    CTXT_GLU_HEALTH,
    CTXT_GLU_HEALTH_MINOR,
    CTXT_GLU_HEALTH_MAJOR,
    CTXT_GLU_HEALTH_MENSES,
    CTXT_GLU_HEALTH_STRESS,
    CTXT_GLU_HEALTH_NONE,
    CTXT_GLU_SAMPLELOCATION,
    CTXT_GLU_SAMPLELOCATION_UNDETERMINED,
    CTXT_GLU_SAMPLELOCATION_OTHER,
    CTXT_GLU_SAMPLELOCATION_FINGER,
    CTXT_GLU_SAMPLELOCATION_AST,
    CTXT_GLU_SAMPLELOCATION_EARLOBE,
    CTXT_GLU_SAMPLELOCATION_CTRLSOLUTION,
    CTXT_GLU_MEAL,
    CTXT_GLU_MEAL_PREPRANDIAL,
    CTXT_GLU_MEAL_BEDTIME,
    CTXT_GLU_MEAL_POSTPRANDIAL,
    CTXT_GLU_MEAL_FASTING,
    CTXT_GLU_MEAL_CASUAL,
    CTXT_GLU_TESTER,
    CTXT_GLU_TESTER_SELF,
    CTXT_GLU_TESTER_HCP,
    CTXT_GLU_TESTER_LAB,
    CONC_GLU_TREND,
    CGM_DEV_STAT,
    HF_ENERGY,
];
