//! Black-box checks of the MDC nomenclature table: sorted, unique, and every 32-bit code equal to
//! partition × 65536 + term code as an independent nomenclature header gives them.

use hearth_ieee11073::mdc::{
    self, PART_INFRA, PART_OBJ, PART_PHD_DM, PART_PHD_HF, PART_SCADA, TERMS, Term,
};
use proptest::prelude::*;

/// `(reference id, partition, term code)` transcribed from a nomenclature header that lists term
/// codes per partition (LNI `Mdc.java`), not from the decimal codes in `mdc.rs`. The one
/// exception is marked.
const HEADER: &[(&str, u16, u16)] = &[
    // OBJ
    ("MDC_MOC_VMS_MDS_SIMP", PART_OBJ, 37),
    ("MDC_ATTR_POWER_STAT", PART_OBJ, 2389),
    ("MDC_ATTR_SYS_ID", PART_OBJ, 2436),
    ("MDC_ATTR_TIME_ABS", PART_OBJ, 2439),
    ("MDC_ATTR_TIME_REL", PART_OBJ, 2447),
    ("MDC_ATTR_VAL_BATT_CHARGE", PART_OBJ, 2460),
    ("MDC_ATTR_TIME_REL_HI_RES", PART_OBJ, 2536),
    ("MDC_ATTR_TIME_PD_MSMT_ACTIVE", PART_OBJ, 2649),
    ("MDC_ATTR_SUPPLEMENTAL_TYPES", PART_OBJ, 2657),
    ("MDC_TIME_CAP_STATE", PART_OBJ, 2683),
    ("MDC_TIME_SYNC_PROTOCOL", PART_OBJ, 2684),
    ("MDC_TIME_SYNC_ACCURACY", PART_OBJ, 2685),
    ("MDC_TIME_RES_ABS", PART_OBJ, 2686),
    ("MDC_TIME_RES_REL", PART_OBJ, 2687),
    ("MDC_TIME_RES_REL_HI_RES", PART_OBJ, 2688),
    ("MDC_ATTR_TIME_BO", PART_OBJ, 2689),
    ("MDC_ATTR_TIME_STAMP_BO", PART_OBJ, 2690),
    ("MDC_ATTR_TICK_RES", PART_OBJ, 2693),
    ("MDC_TIME_RES_BO", PART_OBJ, 2703),
    // SCADA
    ("MDC_ECG_TIME_PD_RR_GL", PART_SCADA, 16168),
    ("MDC_ECG_HEART_RATE", PART_SCADA, 16770),
    ("MDC_PULS_OXIM_PULS_RATE", PART_SCADA, 18458),
    ("MDC_PULS_RATE_NON_INV", PART_SCADA, 18474),
    ("MDC_PRESS_BLD_NONINV", PART_SCADA, 18948),
    ("MDC_PRESS_BLD_NONINV_SYS", PART_SCADA, 18949),
    ("MDC_PRESS_BLD_NONINV_DIA", PART_SCADA, 18950),
    ("MDC_PRESS_BLD_NONINV_MEAN", PART_SCADA, 18951),
    ("MDC_TEMP_BODY", PART_SCADA, 19292),
    ("MDC_TEMP_TYMP", PART_SCADA, 19320),
    ("MDC_PULS_OXIM_PERF_REL", PART_SCADA, 19376),
    ("MDC_PULS_OXIM_SAT_O2", PART_SCADA, 19384),
    ("MDC_MODALITY_FAST", PART_SCADA, 19508),
    ("MDC_MODALITY_SLOW", PART_SCADA, 19512),
    ("MDC_MODALITY_SPOT", PART_SCADA, 19516),
    ("MDC_PULS_OXIM_DEV_STATUS", PART_SCADA, 19532),
    ("MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD", PART_SCADA, 29112),
    ("MDC_CONC_GLU_CAPILLARY_PLASMA", PART_SCADA, 29116),
    ("MDC_CONC_GLU_VENOUS_WHOLEBLOOD", PART_SCADA, 29120),
    ("MDC_CONC_GLU_VENOUS_PLASMA", PART_SCADA, 29124),
    ("MDC_CONC_GLU_ARTERIAL_WHOLEBLOOD", PART_SCADA, 29128),
    ("MDC_CONC_GLU_ARTERIAL_PLASMA", PART_SCADA, 29132),
    ("MDC_CONC_GLU_CONTROL", PART_SCADA, 29136),
    ("MDC_CONC_GLU_ISF", PART_SCADA, 29140),
    ("MDC_CONC_HBA1C", PART_SCADA, 29148),
    ("MDC_CONC_GLU_UNDETERMINED_WHOLEBLOOD", PART_SCADA, 29292),
    ("MDC_CONC_GLU_UNDETERMINED_PLASMA", PART_SCADA, 29296),
    ("MDC_TEMP_RECT", PART_SCADA, 57348),
    ("MDC_TEMP_ORAL", PART_SCADA, 57352),
    ("MDC_TEMP_EAR", PART_SCADA, 57356),
    ("MDC_TEMP_FINGER", PART_SCADA, 57360),
    ("MDC_TEMP_TOE", PART_SCADA, 57376),
    ("MDC_TEMP_AXILLA", PART_SCADA, 57380),
    ("MDC_TEMP_GIT", PART_SCADA, 57384),
    // Not in that header: the hospital axillary term, from PCD-01 messages and the Philips list.
    ("MDC_TEMP_AXIL", PART_SCADA, 57424),
    ("MDC_MASS_BODY_ACTUAL", PART_SCADA, 57664),
    ("MDC_LEN_BODY_ACTUAL", PART_SCADA, 57668),
    ("MDC_BODY_FAT", PART_SCADA, 57676),
    ("MDC_RATIO_MASS_BODY_LEN_SQ", PART_SCADA, 57680),
    ("MDC_MASS_BODY_FAT_FREE", PART_SCADA, 57684),
    ("MDC_MASS_BODY_SOFT_LEAN", PART_SCADA, 57688),
    ("MDC_BODY_WATER", PART_SCADA, 57692),
    ("MDC_BASAL_METABOLISM", PART_SCADA, 57696),
    ("MDC_BODY_MUSCLE", PART_SCADA, 57700),
    ("MDC_MASS_BODY_MUSCLE", PART_SCADA, 57704),
    ("MDC_BODY_ELECTRICAL_IMPEDANCE", PART_SCADA, 57708),
    // INFRA
    ("MDC_DEV_SPEC_PROFILE_HYDRA", PART_INFRA, 4096),
    ("MDC_DEV_SPEC_PROFILE_PULS_OXIM", PART_INFRA, 4100),
    ("MDC_DEV_SPEC_PROFILE_MIN_ECG", PART_INFRA, 4102),
    ("MDC_DEV_SPEC_PROFILE_BP", PART_INFRA, 4103),
    ("MDC_DEV_SPEC_PROFILE_TEMP", PART_INFRA, 4104),
    ("MDC_DEV_SPEC_PROFILE_RESP_RATE", PART_INFRA, 4109),
    ("MDC_DEV_SPEC_PROFILE_SCALE", PART_INFRA, 4111),
    ("MDC_DEV_SPEC_PROFILE_GLUCOSE", PART_INFRA, 4113),
    ("MDC_DEV_SPEC_PROFILE_COAG", PART_INFRA, 4114),
    ("MDC_DEV_SPEC_PROFILE_INSULIN_PUMP", PART_INFRA, 4115),
    ("MDC_DEV_SPEC_PROFILE_BCA", PART_INFRA, 4116),
    ("MDC_DEV_SPEC_PROFILE_PEAK_FLOW", PART_INFRA, 4117),
    ("MDC_DEV_SPEC_PROFILE_URINE", PART_INFRA, 4118),
    ("MDC_DEV_SPEC_PROFILE_SABTE", PART_INFRA, 4120),
    ("MDC_DEV_SPEC_PROFILE_CGM", PART_INFRA, 4121),
    ("MDC_DEV_SPEC_PROFILE_PSM", PART_INFRA, 4124),
    ("MDC_DEV_SPEC_PROFILE_HF_CARDIO", PART_INFRA, 4137),
    ("MDC_DEV_SPEC_PROFILE_HF_STRENGTH", PART_INFRA, 4138),
    ("MDC_DEV_SPEC_PROFILE_AI_ACTIVITY_HUB", PART_INFRA, 4167),
    ("MDC_DEV_SPEC_PROFILE_AI_MED_MINDER", PART_INFRA, 4168),
    ("MDC_DEV_SPEC_PROFILE_GENERIC", PART_INFRA, 4169),
    ("MDC_DEV_SUB_SPEC_PROFILE_HR", PART_INFRA, 4237),
    ("MDC_ID_MODEL_NUMBER", PART_INFRA, 7681),
    ("MDC_ID_MODEL_MANUFACTURER", PART_INFRA, 7682),
    ("MDC_ID_PROD_SPEC_SERIAL", PART_INFRA, 7684),
    ("MDC_ID_PROD_SPEC_HW", PART_INFRA, 7686),
    ("MDC_ID_PROD_SPEC_SW", PART_INFRA, 7687),
    ("MDC_ID_PROD_SPEC_FW", PART_INFRA, 7688),
    ("MDC_ID_PROD_SPEC_PROTOCOL_REV", PART_INFRA, 7689),
    ("MDC_MOC_VMS_MDS_AHD", PART_INFRA, 7693),
    ("MDC_TIME_SYNC_NONE", PART_INFRA, 7936),
    ("MDC_TIME_SYNC_NTPV3", PART_INFRA, 7937),
    ("MDC_TIME_SYNC_NTPV4", PART_INFRA, 7938),
    ("MDC_TIME_SYNC_SNTPV4", PART_INFRA, 7939),
    ("MDC_TIME_SYNC_SNTPV4330", PART_INFRA, 7940),
    ("MDC_TIME_SYNC_BTV1", PART_INFRA, 7941),
    ("MDC_TIME_SYNC_RADIO", PART_INFRA, 7942),
    ("MDC_TIME_SYNC_HL7_NCK", PART_INFRA, 7943),
    ("MDC_TIME_SYNC_CDMA", PART_INFRA, 7944),
    ("MDC_TIME_SYNC_GSM", PART_INFRA, 7945),
    ("MDC_TIME_SYNC_EBWW", PART_INFRA, 7946),
    ("MDC_TIME_SYNC_USB_SOF", PART_INFRA, 7947),
    ("MDC_TIME_SYNC_OTHER", PART_INFRA, 7948),
    ("MDC_TIME_SYNC_OTHER_MOBILE", PART_INFRA, 7949),
    ("MDC_TIME_SYNC_GPS", PART_INFRA, 7950),
    ("MDC_REG_CERT_DATA_CONTINUA_VERSION", PART_INFRA, 8064),
    ("MDC_REG_CERT_DATA_CONTINUA_CERT_DEV_LIST", PART_INFRA, 8065),
    ("MDC_REG_CERT_DATA_CONTINUA_REG_STATUS", PART_INFRA, 8066),
    ("MDC_REG_CERT_DATA_CONTINUA_AHD_CERT_LIST", PART_INFRA, 8067),
    // PHD_DM
    ("MDC_BLOOD_PRESSURE_MEASUREMENT_STATUS", PART_PHD_DM, 22000),
    ("MDC_GLU_METER_DEV_STATUS", PART_PHD_DM, 29144),
    ("MDC_CTXT_GLU_EXERCISE", PART_PHD_DM, 29152),
    ("MDC_CTXT_GLU_CARB", PART_PHD_DM, 29156),
    ("MDC_CTXT_GLU_CARB_BREAKFAST", PART_PHD_DM, 29160),
    ("MDC_CTXT_GLU_CARB_LUNCH", PART_PHD_DM, 29164),
    ("MDC_CTXT_GLU_CARB_DINNER", PART_PHD_DM, 29168),
    ("MDC_CTXT_GLU_CARB_SNACK", PART_PHD_DM, 29172),
    ("MDC_CTXT_GLU_CARB_DRINK", PART_PHD_DM, 29176),
    ("MDC_CTXT_GLU_CARB_SUPPER", PART_PHD_DM, 29180),
    ("MDC_CTXT_GLU_CARB_BRUNCH", PART_PHD_DM, 29184),
    ("MDC_CTXT_MEDICATION", PART_PHD_DM, 29188),
    ("MDC_CTXT_MEDICATION_RAPIDACTING", PART_PHD_DM, 29192),
    ("MDC_CTXT_MEDICATION_SHORTACTING", PART_PHD_DM, 29196),
    ("MDC_CTXT_MEDICATION_INTERMEDIATEACTING", PART_PHD_DM, 29200),
    ("MDC_CTXT_MEDICATION_LONGACTING", PART_PHD_DM, 29204),
    ("MDC_CTXT_MEDICATION_PREMIX", PART_PHD_DM, 29208),
    ("MDC_CTXT_GLU_HEALTH", PART_PHD_DM, 29212),
    ("MDC_CTXT_GLU_HEALTH_MINOR", PART_PHD_DM, 29216),
    ("MDC_CTXT_GLU_HEALTH_MAJOR", PART_PHD_DM, 29220),
    ("MDC_CTXT_GLU_HEALTH_MENSES", PART_PHD_DM, 29224),
    ("MDC_CTXT_GLU_HEALTH_STRESS", PART_PHD_DM, 29228),
    ("MDC_CTXT_GLU_HEALTH_NONE", PART_PHD_DM, 29232),
    ("MDC_CTXT_GLU_SAMPLELOCATION", PART_PHD_DM, 29236),
    (
        "MDC_CTXT_GLU_SAMPLELOCATION_UNDETERMINED",
        PART_PHD_DM,
        29237,
    ),
    ("MDC_CTXT_GLU_SAMPLELOCATION_OTHER", PART_PHD_DM, 29238),
    ("MDC_CTXT_GLU_SAMPLELOCATION_FINGER", PART_PHD_DM, 29240),
    ("MDC_CTXT_GLU_SAMPLELOCATION_AST", PART_PHD_DM, 29244),
    ("MDC_CTXT_GLU_SAMPLELOCATION_EARLOBE", PART_PHD_DM, 29248),
    (
        "MDC_CTXT_GLU_SAMPLELOCATION_CTRLSOLUTION",
        PART_PHD_DM,
        29252,
    ),
    ("MDC_CTXT_GLU_MEAL", PART_PHD_DM, 29256),
    ("MDC_CTXT_GLU_MEAL_PREPRANDIAL", PART_PHD_DM, 29260),
    ("MDC_CTXT_GLU_MEAL_BEDTIME", PART_PHD_DM, 29261),
    ("MDC_CTXT_GLU_MEAL_POSTPRANDIAL", PART_PHD_DM, 29264),
    ("MDC_CTXT_GLU_MEAL_FASTING", PART_PHD_DM, 29268),
    ("MDC_CTXT_GLU_MEAL_CASUAL", PART_PHD_DM, 29272),
    ("MDC_CTXT_GLU_TESTER", PART_PHD_DM, 29276),
    ("MDC_CTXT_GLU_TESTER_SELF", PART_PHD_DM, 29280),
    ("MDC_CTXT_GLU_TESTER_HCP", PART_PHD_DM, 29284),
    ("MDC_CTXT_GLU_TESTER_LAB", PART_PHD_DM, 29288),
    ("MDC_CONC_GLU_TREND", PART_PHD_DM, 29400),
    ("MDC_CGM_DEV_STAT", PART_PHD_DM, 29452),
    // PHD_HF
    ("MDC_HF_ENERGY", PART_PHD_HF, 119),
];

#[test]
fn terms_are_sorted_by_code_without_duplicates() {
    for pair in TERMS.windows(2) {
        assert!(
            pair[0].code < pair[1].code,
            "{:?} must come before {:?}",
            pair[0],
            pair[1]
        );
    }
    for t in TERMS {
        assert_eq!(mdc::lookup(t.code), Some(t));
        assert_eq!(mdc::by_reference_id(t.reference_id), Some(t));
    }
}

#[test]
fn reference_ids_are_unique_and_well_formed() {
    let mut ids: Vec<&str> = TERMS.iter().map(|t| t.reference_id).collect();
    ids.sort_unstable();
    for pair in ids.windows(2) {
        assert_ne!(pair[0], pair[1], "reference id listed twice");
    }
    for t in TERMS {
        assert!(t.reference_id.starts_with("MDC_"), "{t:?}");
        assert!(
            t.reference_id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
            "{t:?}"
        );
    }
}

#[test]
fn every_code_is_partition_times_65536_plus_the_headers_term_code() {
    for t in TERMS {
        let Some(&(_, part, term)) = HEADER.iter().find(|(id, _, _)| *id == t.reference_id) else {
            panic!("{} is not in the cross-check table", t.reference_id);
        };
        assert_eq!(
            t.code,
            u32::from(part) * 65536 + u32::from(term),
            "{}",
            t.reference_id
        );
        assert_eq!(
            (t.partition(), t.term_code()),
            (part, term),
            "{}",
            t.reference_id
        );
        assert!(mdc::partition_name(part).is_some());
    }
    assert_eq!(
        HEADER.len(),
        TERMS.len(),
        "the cross-check table lists a term that TERMS lacks"
    );
}

#[test]
fn spot_checks_from_the_research_notes() {
    // (code, reference id, partition, term code)
    let spots: [(u32, &str, u16, u16); 9] = [
        (150020, "MDC_PRESS_BLD_NONINV", PART_SCADA, 18948),
        (150021, "MDC_PRESS_BLD_NONINV_SYS", PART_SCADA, 18949),
        (150022, "MDC_PRESS_BLD_NONINV_DIA", PART_SCADA, 18950),
        (150023, "MDC_PRESS_BLD_NONINV_MEAN", PART_SCADA, 18951),
        (149546, "MDC_PULS_RATE_NON_INV", PART_SCADA, 18474),
        (150364, "MDC_TEMP_BODY", PART_SCADA, 19292),
        (188736, "MDC_MASS_BODY_ACTUAL", PART_SCADA, 57664),
        (188752, "MDC_RATIO_MASS_BODY_LEN_SQ", PART_SCADA, 57680),
        (
            160184,
            "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD",
            PART_SCADA,
            29112,
        ),
    ];
    for (code, id, part, term) in spots {
        let t = mdc::lookup(code).unwrap();
        assert_eq!(t.reference_id, id);
        assert!(t.verified, "{id}");
        assert_eq!(mdc::code(part, term), code);
        assert_eq!((mdc::partition(code), mdc::term_code(code)), (part, term));
        assert_eq!(mdc::by_reference_id(id), Some(t));
    }
}

#[test]
fn codes_with_a_conflict_or_a_single_source_are_not_verified() {
    let unverified: Vec<&str> = TERMS
        .iter()
        .filter(|t| !t.verified)
        .map(|t| t.reference_id)
        .collect();
    for id in [
        "MDC_ATTR_TIME_BO",
        "MDC_ATTR_TIME_STAMP_BO",
        "MDC_BASAL_METABOLISM",
        "MDC_BODY_MUSCLE",
        "MDC_MASS_BODY_MUSCLE",
        "MDC_BODY_ELECTRICAL_IMPEDANCE",
        "MDC_CONC_GLU_TREND",
        "MDC_CGM_DEV_STAT",
        "MDC_HF_ENERGY",
    ] {
        assert!(unverified.contains(&id), "{id} should be marked unverified");
    }
}

#[test]
fn constants_name_their_reference_ids() {
    let named: [(Term, &str); 6] = [
        (mdc::PRESS_BLD_NONINV_SYS, "MDC_PRESS_BLD_NONINV_SYS"),
        (mdc::MOC_VMS_MDS_SIMP, "MDC_MOC_VMS_MDS_SIMP"),
        (mdc::MOC_VMS_MDS_AHD, "MDC_MOC_VMS_MDS_AHD"),
        (mdc::ATTR_VAL_BATT_CHARGE, "MDC_ATTR_VAL_BATT_CHARGE"),
        (
            mdc::DEV_SPEC_PROFILE_GENERIC,
            "MDC_DEV_SPEC_PROFILE_GENERIC",
        ),
        (mdc::HF_ENERGY, "MDC_HF_ENERGY"),
    ];
    for (t, id) in named {
        assert_eq!(t.reference_id, id);
        assert_eq!(mdc::lookup(t.code), Some(&t));
        assert_eq!(t.mdc().0, t.code);
    }
}

proptest! {
    #[test]
    fn lookup_finds_exactly_the_listed_codes(code in any::<u32>()) {
        let listed = TERMS.iter().find(|t| t.code == code);
        prop_assert_eq!(mdc::lookup(code), listed);
        prop_assert_eq!(mdc::code(mdc::partition(code), mdc::term_code(code)), code);
    }
}
