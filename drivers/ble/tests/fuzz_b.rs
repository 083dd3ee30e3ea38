//! Property tests for the BPS, HTS, WSS, BCS, HRS, PLX, DIS, BAS and CTS decoders:
//! - arbitrary bytes never panic, and every error names an offset inside (or at the end of) the
//!   value; an `Incomplete` error is always at the end and asks for more than there is;
//! - values built from random flags and fields decode to what was encoded.

use hearth_driver_ble::profiles::{bas, bcs, bps, cts, dis, hrs, hts, plx, wss};
use hearth_driver_ble::{DecodeError, DecodeErrorKind, Decoded, DeviceTime, LocalDateTime};
use hearth_ieee11073::{float, sfloat, value_of};
use hearth_model::{AbsentReason, Component, Enumerated, Mdc, Value};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

fn check_error(bytes: &[u8], e: &DecodeError) {
    assert!(
        e.at <= bytes.len(),
        "error offset {} beyond {} bytes: {e:?}",
        e.at,
        bytes.len()
    );
    if let DecodeErrorKind::Incomplete { needed } = e.kind {
        assert_eq!(e.at, bytes.len(), "{e:?}");
        assert!(needed > bytes.len(), "{e:?}");
    }
    // Display never panics either.
    let _ = e.to_string();
}

fn check<T>(bytes: &[u8], r: Result<T, DecodeError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            check_error(bytes, &e);
            None
        }
    }
}

fn date_time() -> impl Strategy<Value = LocalDateTime> {
    (
        prop_oneof![Just(0u16), 1582u16..=9999],
        0u8..=12,
        0u8..=31,
        0u8..24,
        0u8..60,
        0u8..60,
    )
        .prop_map(|(y, mo, d, hour, minute, second)| LocalDateTime {
            year: (y != 0).then_some(y),
            month: (mo != 0).then_some(mo),
            day: (d != 0).then_some(d),
            hour,
            minute,
            second,
        })
}

fn encode_date_time(t: &LocalDateTime) -> [u8; 7] {
    let [a, b] = t.year.unwrap_or(0).to_le_bytes();
    [
        a,
        b,
        t.month.unwrap_or(0),
        t.day.unwrap_or(0),
        t.hour,
        t.minute,
        t.second,
    ]
}

fn sfloat_value(raw: u16) -> Value {
    value_of(sfloat::decode(raw))
}

fn fixed(raw: u16, num: f64, den: f64, decimals: u8) -> Value {
    Value::numeric_with_decimals(f64::from(raw) * num / den, decimals)
}

fn user(u: u8) -> Option<u8> {
    (u != 0xFF).then_some(u)
}

fn all_stamped(d: &Decoded, time: Option<LocalDateTime>, u: Option<u8>) -> bool {
    d.observations
        .iter()
        .all(|o| o.time == time.map(DeviceTime::Local) && o.user == u)
}

proptest! {
    #![proptest_config(config())]

    // ---------- arbitrary bytes never panic ----------

    #[test]
    fn bps_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        check(&bytes, bps::measurement(&bytes));
        check(&bytes, bps::intermediate_cuff_pressure(&bytes));
        check(&bytes, bps::parse_feature(&bytes));
        check(&bytes, bps::feature(&bytes));
    }

    #[test]
    fn hts_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), site in any::<Option<u8>>()) {
        check(&bytes, hts::measurement(&bytes));
        check(&bytes, hts::measurement_with_site(&bytes, site));
        check(&bytes, hts::intermediate_temperature(&bytes));
        check(&bytes, hts::intermediate_temperature_with_site(&bytes, site));
        check(&bytes, hts::temperature_type(&bytes));
    }

    #[test]
    fn wss_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), feature in any::<u32>()) {
        check(&bytes, wss::measurement(&bytes));
        check(&bytes, wss::parse_feature(&bytes));
        check(&bytes, wss::feature(&bytes));
        let f = wss::parse_feature(&feature.to_le_bytes()).unwrap();
        check(&bytes, wss::measurement_with_feature(&bytes, Some(&f)));
    }

    #[test]
    fn bcs_never_panics(packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..5)) {
        let mut assembler = bcs::BcsAssembler::new();
        for bytes in &packets {
            check(bytes, bcs::measurement(bytes));
            check(bytes, bcs::parse_feature(bytes));
            check(bytes, assembler.feed(bytes));
        }
    }

    #[test]
    fn hrs_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        check(&bytes, hrs::measurement(&bytes));
        check(&bytes, hrs::body_sensor_location(&bytes));
    }

    #[test]
    fn plx_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        check(&bytes, plx::spot_check(&bytes));
        check(&bytes, plx::continuous(&bytes));
        check(&bytes, plx::parse_features(&bytes));
        check(&bytes, plx::features(&bytes));
    }

    #[test]
    fn dis_bas_cts_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), uuid in 0x2A20u16..0x2A30) {
        check(&bytes, dis::system_id(&bytes));
        check(&bytes, dis::string(uuid, &bytes));
        check(&bytes, bas::level(&bytes));
        check(&bytes, cts::current_time(&bytes));
    }

    // ---------- flag-driven round trips ----------

    #[test]
    fn bps_round_trip(
        flags in any::<u8>(),
        words in any::<[u16; 4]>(),
        time in date_time(),
        u in any::<u8>(),
        status in any::<u16>(),
    ) {
        let mut bytes = vec![flags];
        for w in &words[..3] {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        if flags & 0x02 != 0 { bytes.extend_from_slice(&encode_date_time(&time)); }
        if flags & 0x04 != 0 { bytes.extend_from_slice(&words[3].to_le_bytes()); }
        if flags & 0x08 != 0 { bytes.push(u); }
        if flags & 0x10 != 0 { bytes.extend_from_slice(&status.to_le_bytes()); }
        let d = bps::measurement(&bytes).unwrap();
        let unit = if flags & 0x01 != 0 { "kPa" } else { "mm[Hg]" };
        let bp = &d.observations[0];
        prop_assert_eq!(bp.mdc, Mdc(150_020));
        prop_assert_eq!(bp.unit.as_ref().unwrap().as_str(), unit);
        prop_assert_eq!(&bp.value, &Value::Compound(vec![
            Component { mdc: Mdc(150_021), value: sfloat_value(words[0]) },
            Component { mdc: Mdc(150_022), value: sfloat_value(words[1]) },
            Component { mdc: Mdc(150_023), value: sfloat_value(words[2]) },
        ]));
        let mut i = 1;
        if flags & 0x04 != 0 {
            prop_assert_eq!(d.observations[i].mdc, Mdc(149_546));
            prop_assert_eq!(&d.observations[i].value, &sfloat_value(words[3]));
            i += 1;
        }
        if flags & 0x10 != 0 {
            prop_assert_eq!(d.observations[i].mdc, Mdc(8_410_608));
            prop_assert_eq!(
                &d.observations[i].value,
                &Value::Enumerated(Enumerated::Bits { bits: u32::from(status & 0x3F), width: 16 })
            );
            i += 1;
        }
        prop_assert_eq!(d.observations.len(), i);
        let t = (flags & 0x02 != 0).then_some(time);
        let u = if flags & 0x08 != 0 { user(u) } else { None };
        prop_assert!(all_stamped(&d, t, u));
        // ICP takes the first value only, with the same layout, and keeps the optional fields
        // (pulse rate, status) exactly as the measurement does (issue 6).
        let icp = bps::intermediate_cuff_pressure(&bytes).unwrap();
        prop_assert_eq!(icp.observations.len(), d.observations.len());
        prop_assert_eq!(&icp.observations[0].value, &sfloat_value(words[0]));
        prop_assert_eq!(&icp.observations[1..], &d.observations[1..]);
    }

    #[test]
    fn hts_round_trip(flags in any::<u8>(), raw in any::<u32>(), time in date_time(), site in any::<u8>()) {
        let mut bytes = vec![flags];
        bytes.extend_from_slice(&raw.to_le_bytes());
        if flags & 0x02 != 0 { bytes.extend_from_slice(&encode_date_time(&time)); }
        if flags & 0x04 != 0 { bytes.push(site); }
        let d = hts::measurement(&bytes).unwrap();
        prop_assert_eq!(d.observations.len(), 1);
        let o = &d.observations[0];
        prop_assert_eq!(&o.value, &value_of(float::decode(raw)));
        prop_assert_eq!(o.unit.as_ref().unwrap().as_str(), if flags & 0x01 != 0 { "[degF]" } else { "Cel" });
        let expected = if flags & 0x04 != 0 { hts::site_mdc(site) } else { 150_364 };
        prop_assert_eq!(o.mdc, Mdc(expected));
        prop_assert_eq!(o.time, (flags & 0x02 != 0).then_some(DeviceTime::Local(time)));
    }

    #[test]
    fn wss_round_trip(
        flags in any::<u8>(),
        weight in any::<u16>(),
        time in date_time(),
        u in any::<u8>(),
        bmi in any::<u16>(),
        height in any::<u16>(),
    ) {
        let mut bytes = vec![flags];
        bytes.extend_from_slice(&weight.to_le_bytes());
        if flags & 0x02 != 0 { bytes.extend_from_slice(&encode_date_time(&time)); }
        if flags & 0x04 != 0 { bytes.push(u); }
        if flags & 0x08 != 0 {
            bytes.extend_from_slice(&bmi.to_le_bytes());
            bytes.extend_from_slice(&height.to_le_bytes());
        }
        let d = wss::measurement(&bytes).unwrap();
        let imperial = flags & 0x01 != 0;
        let w = if weight == 0xFFFF {
            Value::Absent(AbsentReason::Error)
        } else if imperial {
            fixed(weight, 1.0, 100.0, 2)
        } else {
            fixed(weight, 5.0, 1000.0, 3)
        };
        prop_assert_eq!(&d.observations[0].value, &w);
        if flags & 0x08 != 0 {
            prop_assert_eq!(d.observations.len(), 3);
            prop_assert_eq!(&d.observations[1].value, &fixed(bmi, 1.0, 10.0, 1));
            let h = if imperial { fixed(height, 1.0, 10.0, 1) } else { fixed(height, 1.0, 1000.0, 3) };
            prop_assert_eq!(&d.observations[2].value, &h);
        } else {
            prop_assert_eq!(d.observations.len(), 1);
        }
        let t = (flags & 0x02 != 0).then_some(time);
        let u = if flags & 0x04 != 0 { user(u) } else { None };
        prop_assert!(all_stamped(&d, t, u));
    }

    #[test]
    fn wss_feature_only_changes_decimals(weight in 0u16..0xFFFF, code in 0u32..16, hcode in 0u32..8) {
        let raw = (code << 3) | (hcode << 7);
        let f = wss::parse_feature(&raw.to_le_bytes()).unwrap();
        let bytes = [0x08, weight.to_le_bytes()[0], weight.to_le_bytes()[1], 0xF7, 0x00, 0x08, 0x07];
        let plain = wss::measurement(&bytes).unwrap();
        let with = wss::measurement_with_feature(&bytes, Some(&f)).unwrap();
        for (a, b) in plain.observations.iter().zip(&with.observations) {
            prop_assert_eq!(a.value.as_f64(), b.value.as_f64());
            prop_assert_eq!(a.mdc, b.mdc);
        }
    }

    #[test]
    fn bcs_round_trip(flags in 0u16..(1 << 13), fields in any::<[u16; 10]>(), time in date_time(), u in any::<u8>()) {
        let mut bytes = flags.to_le_bytes().to_vec();
        bytes.extend_from_slice(&fields[0].to_le_bytes());
        if flags & 0x02 != 0 { bytes.extend_from_slice(&encode_date_time(&time)); }
        if flags & 0x04 != 0 { bytes.push(u); }
        // b3…b11 each add one u16, in flag order.
        let mut expected_count = 1;
        for bit in 3..12 {
            if flags & (1 << bit) != 0 {
                bytes.extend_from_slice(&fields[bit - 2].to_le_bytes());
                // muscle % (b4) and muscle mass (b5) are not emitted.
                if bit != 4 && bit != 5 {
                    expected_count += 1;
                }
            }
        }
        let d = bcs::measurement(&bytes).unwrap();
        prop_assert_eq!(d.observations.len(), expected_count);
        prop_assert_eq!(d.more_follows, flags & 0x1000 != 0);
        let fat = if fields[0] == 0xFFFF { Value::Absent(AbsentReason::Error) } else { fixed(fields[0], 1.0, 10.0, 1) };
        prop_assert_eq!(&d.observations[0].value, &fat);
        let t = (flags & 0x02 != 0).then_some(time);
        let u = if flags & 0x04 != 0 { user(u) } else { None };
        prop_assert!(all_stamped(&d, t, u));
        if flags & (1 << 10) != 0 {
            let w = d.observations.iter().find(|o| o.mdc == Mdc(188_736)).unwrap();
            let imperial = flags & 1 != 0;
            let expected = if imperial { fixed(fields[8], 1.0, 100.0, 2) } else { fixed(fields[8], 5.0, 1000.0, 3) };
            prop_assert_eq!(&w.value, &expected);
        }
    }

    #[test]
    fn bcs_assembler_split_equals_whole(fields in any::<[u16; 4]>(), split_second_flag in any::<bool>()) {
        // Whole: fat-free, soft lean, water, weight. Split: first two / last two.
        let whole_flags: u16 = (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10);
        let mut whole = whole_flags.to_le_bytes().to_vec();
        whole.extend_from_slice(&[0xE8, 0x00]);
        for f in fields { whole.extend_from_slice(&f.to_le_bytes()); }
        let f1: u16 = (1 << 6) | (1 << 7) | (1 << 12);
        let f2: u16 = (1 << 8) | (1 << 10) | if split_second_flag { 1 << 12 } else { 0 };
        let mut p1 = f1.to_le_bytes().to_vec();
        p1.extend_from_slice(&[0xE8, 0x00]);
        p1.extend_from_slice(&fields[0].to_le_bytes());
        p1.extend_from_slice(&fields[1].to_le_bytes());
        let mut p2 = f2.to_le_bytes().to_vec();
        p2.extend_from_slice(&[0xE8, 0x00]);
        p2.extend_from_slice(&fields[2].to_le_bytes());
        p2.extend_from_slice(&fields[3].to_le_bytes());
        let mut a = bcs::BcsAssembler::new();
        prop_assert_eq!(a.feed(&p1).unwrap(), None);
        let joined = a.feed(&p2).unwrap().unwrap();
        prop_assert_eq!(joined, bcs::measurement(&whole).unwrap());
    }

    #[test]
    fn hrs_round_trip(
        wide in any::<bool>(),
        contact in 0u8..4,
        hr in any::<u16>(),
        energy in any::<Option<u16>>(),
        rr in proptest::collection::vec(any::<u16>(), 0..8),
    ) {
        let mut flags = contact << 1;
        if wide { flags |= 0x01; }
        if energy.is_some() { flags |= 0x08; }
        if !rr.is_empty() { flags |= 0x10; }
        let mut bytes = vec![flags];
        let hr = if wide { hr } else { hr & 0xFF };
        if wide { bytes.extend_from_slice(&hr.to_le_bytes()); } else { bytes.push(hr as u8); }
        if let Some(e) = energy { bytes.extend_from_slice(&e.to_le_bytes()); }
        for r in &rr { bytes.extend_from_slice(&r.to_le_bytes()); }
        let m = hrs::parse_measurement(&bytes).unwrap();
        prop_assert_eq!(m.heart_rate, hr);
        prop_assert_eq!(m.energy_expended_kj, energy);
        prop_assert_eq!(&m.rr_intervals, &rr);
        let expected_contact = match contact {
            2 => hrs::SensorContact::NotDetected,
            3 => hrs::SensorContact::Detected,
            _ => hrs::SensorContact::NotSupported,
        };
        prop_assert_eq!(m.contact, expected_contact);
        let d = hrs::measurement(&bytes).unwrap();
        prop_assert_eq!(d.observations.len(), 1 + usize::from(energy.is_some()) + rr.len());
        prop_assert_eq!(d.observations[0].value.as_f64(), Some(f64::from(hr)));
        for (o, r) in d.observations.iter().rev().zip(rr.iter().rev()) {
            prop_assert_eq!(o.mdc, Mdc(147_240));
            prop_assert_eq!(o.value.as_f64(), Some(f64::from(*r) * 1000.0 / 1024.0));
            prop_assert_eq!(o.unit.as_ref().unwrap().as_str(), "ms");
        }
    }

    #[test]
    fn plx_spot_round_trip(
        flags in any::<u8>(),
        words in any::<[u16; 3]>(),
        time in date_time(),
        meas in any::<u16>(),
        dev in 0u32..(1 << 24),
    ) {
        let mut bytes = vec![flags];
        bytes.extend_from_slice(&words[0].to_le_bytes());
        bytes.extend_from_slice(&words[1].to_le_bytes());
        if flags & 0x01 != 0 { bytes.extend_from_slice(&encode_date_time(&time)); }
        if flags & 0x02 != 0 { bytes.extend_from_slice(&meas.to_le_bytes()); }
        if flags & 0x04 != 0 { bytes.extend_from_slice(&dev.to_le_bytes()[..3]); }
        if flags & 0x08 != 0 { bytes.extend_from_slice(&words[2].to_le_bytes()); }
        let s = plx::parse_spot_check(&bytes).unwrap();
        prop_assert_eq!(&s.reading.spo2, &sfloat_value(words[0]));
        prop_assert_eq!(&s.reading.pulse_rate, &sfloat_value(words[1]));
        prop_assert_eq!(s.measurement_status, (flags & 0x02 != 0).then_some(meas & 0xFFE0));
        prop_assert_eq!(s.device_status, (flags & 0x04 != 0).then_some(dev & 0xFFFF));
        prop_assert_eq!(s.pulse_amplitude_index, (flags & 0x08 != 0).then(|| sfloat_value(words[2])));
        let d = plx::spot_check(&bytes).unwrap();
        prop_assert_eq!(d.facts.clock_unset, flags & 0x10 != 0);
        let n = 2 + usize::from(flags & 0x04 != 0) + usize::from(flags & 0x08 != 0);
        prop_assert_eq!(d.observations.len(), n);
        prop_assert!(all_stamped(&d, (flags & 0x01 != 0).then_some(time), None));
    }

    #[test]
    fn plx_continuous_round_trip(flags in any::<u8>(), words in any::<[u16; 7]>(), meas in any::<u16>(), dev in 0u32..(1 << 24)) {
        let mut bytes = vec![flags];
        for w in &words[..2] { bytes.extend_from_slice(&w.to_le_bytes()); }
        if flags & 0x01 != 0 { for w in &words[2..4] { bytes.extend_from_slice(&w.to_le_bytes()); } }
        if flags & 0x02 != 0 { for w in &words[4..6] { bytes.extend_from_slice(&w.to_le_bytes()); } }
        if flags & 0x04 != 0 { bytes.extend_from_slice(&meas.to_le_bytes()); }
        if flags & 0x08 != 0 { bytes.extend_from_slice(&dev.to_le_bytes()[..3]); }
        if flags & 0x10 != 0 { bytes.extend_from_slice(&words[6].to_le_bytes()); }
        let c = plx::parse_continuous(&bytes).unwrap();
        prop_assert_eq!(&c.normal.spo2, &sfloat_value(words[0]));
        prop_assert_eq!(c.fast.map(|p| p.pulse_rate), (flags & 0x01 != 0).then(|| sfloat_value(words[3])));
        prop_assert_eq!(c.slow.map(|p| p.spo2), (flags & 0x02 != 0).then(|| sfloat_value(words[4])));
        prop_assert_eq!(c.device_status, (flags & 0x08 != 0).then_some(dev & 0xFFFF));
        prop_assert_eq!(c.pulse_amplitude_index, (flags & 0x10 != 0).then(|| sfloat_value(words[6])));
    }

    #[test]
    fn system_id_reverses(raw in any::<u64>()) {
        let d = dis::system_id(&raw.to_le_bytes()).unwrap();
        if raw == 0 || raw == u64::MAX {
            prop_assert_eq!(d.facts.eui64, None);
        } else {
            let hex = d.facts.eui64.unwrap();
            prop_assert_eq!(hex.len(), 16);
            prop_assert_eq!(u64::from_str_radix(&hex, 16).unwrap(), raw);
            prop_assert_eq!(hex.to_lowercase(), hex);
        }
    }

    #[test]
    fn dis_strings_round_trip(text in "[^\\x00]{0,20}", nuls in 0usize..4, pick in 0usize..6) {
        let uuid = dis::STRINGS[pick];
        let mut bytes = text.as_bytes().to_vec();
        bytes.extend(std::iter::repeat_n(0u8, nuls));
        prop_assert_eq!(dis::parse_string(uuid, &bytes).unwrap(), text);
    }

    #[test]
    fn battery_levels(level in any::<u8>()) {
        let r = bas::level(&[level]);
        if level <= 100 {
            prop_assert_eq!(r.unwrap().facts.battery_percent, Some(level));
        } else {
            prop_assert!(r.is_err());
        }
    }

    #[test]
    fn current_time_round_trip(time in date_time(), reason in 0u8..16) {
        let dow = cts::day_of_week(&time);
        prop_assert!(dow <= 7);
        let bytes = cts::encode_current_time(&time, dow, reason);
        let ct = cts::parse_current_time(&bytes).unwrap();
        prop_assert_eq!((ct.time, ct.day_of_week, ct.adjust_reason), (time, dow, reason));
        let d = cts::current_time(&bytes).unwrap();
        prop_assert_eq!(d.facts.clock_unset, !time.is_complete());
    }
}
