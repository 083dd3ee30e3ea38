//! Black-box checks of the MDC unit ↔ UCUM table: both directions round-trip, nothing is listed
//! twice, and every UCUM code looks like UCUM.

use hearth_ieee11073::mdc::{self, PART_DIM};
use hearth_ieee11073::units::{self, UCUM_ALIASES, UNITS};

/// `(reference id, DIM term code)` transcribed from nomenclature headers (LNI `Mdc.java`, the
/// Philips GHS `UnitCode.kt`), not from the decimal codes in `units.rs`. `None` marks the code
/// that no header lists and that is computed from the decimal-prefix rule.
const HEADER: &[(&str, Option<u16>)] = &[
    ("MDC_DIM_DIMLESS", Some(512)),
    ("MDC_DIM_PERCENT", Some(544)),
    ("MDC_DIM_X_M", Some(1280)),
    ("MDC_DIM_CENTI_M", Some(1297)),
    ("MDC_DIM_INCH", Some(1376)),
    ("MDC_DIM_X_L", Some(1600)),
    ("MDC_DIM_X_G", Some(1728)),
    ("MDC_DIM_KILO_G", Some(1731)),
    ("MDC_DIM_LB", Some(1760)),
    ("MDC_DIM_KG_PER_M_SQ", Some(1952)),
    ("MDC_DIM_MILLI_G_PER_DL", Some(2130)),
    ("MDC_DIM_SEC", Some(2176)),
    ("MDC_DIM_MILLI_SEC", Some(2194)),
    ("MDC_DIM_BEAT_PER_MIN", Some(2720)),
    ("MDC_DIM_KILO_PASCAL", Some(3843)),
    ("MDC_DIM_MMHG", Some(3872)),
    ("MDC_DIM_X_JOULES", Some(3968)),
    ("MDC_DIM_KILO_JOULES", None),
    ("MDC_DIM_X_OHM", Some(4288)),
    ("MDC_DIM_FAHR", Some(4416)),
    ("MDC_DIM_MILLI_MOLE_PER_L", Some(4722)),
    ("MDC_DIM_MILLI_G_PER_DL_PER_MIN", Some(4724)),
    ("MDC_DIM_DEGC", Some(6048)),
];

#[test]
fn units_are_sorted_and_unique_in_both_columns() {
    for pair in UNITS.windows(2) {
        assert!(
            pair[0].mdc < pair[1].mdc,
            "{:?} must come before {:?}",
            pair[0],
            pair[1]
        );
    }
    let mut ucum: Vec<&str> = UNITS.iter().map(|u| u.ucum).collect();
    ucum.sort_unstable();
    for pair in ucum.windows(2) {
        assert_ne!(pair[0], pair[1], "UCUM code listed twice");
    }
    let mut ids: Vec<&str> = UNITS.iter().map(|u| u.reference_id).collect();
    ids.sort_unstable();
    for pair in ids.windows(2) {
        assert_ne!(pair[0], pair[1], "reference id listed twice");
    }
}

#[test]
fn every_unit_round_trips_in_both_directions() {
    for u in UNITS {
        assert_eq!(units::ucum_for_mdc(u.mdc), Some(u.ucum), "{u:?}");
        assert_eq!(units::mdc_for_ucum(u.ucum), Some(u.mdc), "{u:?}");
        assert_eq!(
            units::mdc_for_ucum(u.ucum).and_then(units::ucum_for_mdc),
            Some(u.ucum)
        );
        assert_eq!(
            units::ucum_for_mdc(u.mdc).and_then(units::mdc_for_ucum),
            Some(u.mdc)
        );
        assert_eq!(
            units::ucum_for_dim_term(u.dim_term()),
            Some(u.ucum),
            "{u:?}"
        );
        assert_eq!(units::lookup(u.mdc), Some(u));
        assert_eq!(units::unit_for_ucum(u.ucum), Some(u));
    }
}

#[test]
fn every_unit_is_in_partition_4_with_the_headers_term_code() {
    for u in UNITS {
        assert_eq!(mdc::partition(u.mdc), PART_DIM, "{u:?}");
        assert!(u.reference_id.starts_with("MDC_DIM_"), "{u:?}");
        let Some(&(_, term)) = HEADER.iter().find(|(id, _)| *id == u.reference_id) else {
            panic!("{} is not in the cross-check table", u.reference_id);
        };
        match term {
            Some(term) => assert_eq!(u.mdc, mdc::code(PART_DIM, term), "{u:?}"),
            None => assert!(
                !u.verified,
                "a computed code must be marked unverified: {u:?}"
            ),
        }
    }
    assert_eq!(HEADER.len(), UNITS.len());
}

#[test]
fn decimal_prefixes_follow_the_10101_rule() {
    // The low five bits of a DIM term code are the decimal prefix: 0 none, 3 kilo, 17 centi,
    // 18 milli. The computed kilojoule code relies on this rule.
    assert_eq!(units::KILO_G.mdc - units::X_G.mdc, 3);
    assert_eq!(units::KILO_JOULES.mdc - units::X_JOULES.mdc, 3);
    assert_eq!(units::CENTI_M.mdc - units::X_M.mdc, 17);
    assert_eq!(units::MILLI_SEC.mdc - units::SEC.mdc, 18);
    assert_eq!(units::KILO_JOULES.mdc, 266115);
}

#[test]
fn every_ucum_code_is_plausible() {
    for u in UNITS
        .iter()
        .map(|u| u.ucum)
        .chain(UCUM_ALIASES.iter().map(|(a, _)| *a))
    {
        assert!(!u.is_empty());
        assert!(
            u.bytes().all(|b| b.is_ascii_graphic()),
            "{u:?} has a space or a non-ASCII byte"
        );
        let mut square = 0i32;
        let mut curly = 0i32;
        for c in u.chars() {
            match c {
                '[' => square += 1,
                ']' => square -= 1,
                '{' => curly += 1,
                '}' => curly -= 1,
                _ => {}
            }
            assert!(
                square >= 0 && curly >= 0,
                "{u:?} closes a bracket it did not open"
            );
        }
        assert_eq!((square, curly), (0, 0), "{u:?} leaves a bracket open");
    }
}

#[test]
fn the_units_the_phd_ig_uses_for_vital_signs() {
    for (mdc, ucum) in [
        (266016, "mm[Hg]"),
        (265987, "kPa"),
        (264864, "/min"),
        (268192, "Cel"),
        (266560, "[degF]"),
        (263875, "kg"),
        (263904, "[lb_av]"),
        (263441, "cm"),
        (263424, "m"),
        (263520, "[in_i]"),
        (264096, "kg/m2"),
        (262688, "%"),
        (264274, "mg/dL"),
        (266866, "mmol/L"),
        (266115, "kJ"),
        (266432, "Ohm"),
    ] {
        assert_eq!(units::ucum_for_mdc(mdc), Some(ucum));
        assert_eq!(units::mdc_for_ucum(ucum), Some(mdc));
    }
}

#[test]
fn aliases_are_accepted_but_never_produced() {
    for (alias, unit) in UCUM_ALIASES {
        assert_ne!(*alias, unit.ucum);
        assert_eq!(units::mdc_for_ucum(alias), Some(unit.mdc));
        assert!(UNITS.iter().all(|u| u.ucum != *alias));
    }
}

#[test]
fn unknown_units_are_none() {
    assert_eq!(units::ucum_for_mdc(0), None);
    assert_eq!(units::ucum_for_mdc(150021), None);
    assert_eq!(units::ucum_for_dim_term(0xFFFF), None);
    assert_eq!(units::mdc_for_ucum(""), None);
    assert_eq!(units::mdc_for_ucum("mmHg"), None);
    assert_eq!(units::mdc_for_ucum("KG"), None, "UCUM is case-sensitive");
}
