//! Property tests for the Glucose, CGM and Generic Health Sensor decoders: arbitrary bytes never
//! panic (every decoder, and the GHS reassembler fed random segment sequences), and values
//! generated from the specification layouts decode back to what was encoded.

use hearth_driver_ble::profiles::{cgm, ghs, gls};
use hearth_driver_ble::{DecodeErrorKind, DeviceTime};
use hearth_ieee11073::{Number, float, sfloat};
use hearth_model::Value;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

/// Every byte-slice decoder of the three modules; the results are ignored, only panics count.
fn run_all(bytes: &[u8]) {
    let _ = gls::measurement(bytes);
    let _ = gls::measurement_full(bytes);
    let _ = gls::context(bytes);
    let _ = gls::context_full(bytes);
    let _ = gls::feature(bytes);
    let _ = gls::feature_decoded(bytes);
    let _ = cgm::measurement(bytes);
    let _ = cgm::measurement_with_crc_required(bytes, true);
    let _ = cgm::records(bytes, false);
    let _ = cgm::feature(bytes);
    let _ = cgm::feature_decoded(bytes);
    let _ = cgm::status(bytes, false);
    let _ = cgm::status(bytes, true);
    let _ = cgm::session_start_time(bytes);
    let _ = cgm::session_start_time_with_crc_required(bytes, true);
    let _ = cgm::crc16_mcrf4xx(bytes);
    let _ = ghs::observation(bytes);
    let _ = ghs::stored_observation(bytes);
    let _ = ghs::live_observation(bytes);
    let _ = ghs::elapsed_time(bytes);
}

fn sfloat_strategy() -> impl Strategy<Value = Number> {
    (-2048i32..=2047, -8i8..=7)
        .prop_filter("specials", |(m, e)| *e != 0 || (-2045..=2045).contains(m))
        .prop_map(|(mantissa, exponent)| Number { mantissa, exponent })
}

fn sf(n: Number) -> [u8; 2] {
    sfloat::encode(n).unwrap_or(sfloat::NAN).to_le_bytes()
}

fn with_crc(mut v: Vec<u8>) -> Vec<u8> {
    let c = cgm::crc16_mcrf4xx(&v);
    v.extend_from_slice(&c.to_le_bytes());
    v
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        run_all(&bytes);
    }

    /// Plausible prefixes (valid flags and headers, random rest) reach deeper code paths.
    #[test]
    fn structured_garbage_never_panics(
        head in prop::sample::select(vec![0x00u8, 0x01, 0x02, 0x07, 0x0B, 0x1F, 0x7F, 0xFF]),
        class in prop::sample::select(vec![1u8, 2, 3, 4, 5, 6, 7, 8, 0xFF, 0]),
        len in any::<u16>(),
        flags in any::<u16>(),
        tail in proptest::collection::vec(any::<u8>(), 0..160),
    ) {
        let mut a = vec![head, 0x01, 0x00, 0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09];
        a.extend_from_slice(&tail);
        run_all(&a);
        let size = (tail.len() as u8).saturating_add(2);
        let mut c = vec![size, head];
        c.extend_from_slice(&tail);
        run_all(&c);
        let mut g = vec![class];
        g.extend_from_slice(&len.to_le_bytes());
        g.extend_from_slice(&flags.to_le_bytes());
        g.extend_from_slice(&tail);
        run_all(&g);
        let mut bounded = g.clone();
        let l = (bounded.len() as u16).to_le_bytes();
        bounded[1] = l[0];
        bounded[2] = l[1];
        run_all(&bounded);
        let mut seg = vec![0x03];
        seg.extend_from_slice(&bounded);
        run_all(&seg);
    }

    #[test]
    fn reassembler_survives_random_segments(
        segments in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..64),
    ) {
        let mut r = ghs::Reassembler::new();
        for s in &segments {
            if let Ok(Some(done)) = r.feed(s) {
                prop_assert!(done.len() <= ghs::MAX_REASSEMBLED);
                let _ = ghs::observation(&done);
                let _ = ghs::stored_observation(&done);
            }
        }
    }

    #[test]
    fn reassembler_joins_what_was_split(
        payload in proptest::collection::vec(any::<u8>(), 0..600),
        chunk in 1usize..64,
        start_counter in 0u8..64,
    ) {
        let mut r = ghs::Reassembler::new();
        let chunks: Vec<&[u8]> = if payload.is_empty() { vec![&[][..]] } else { payload.chunks(chunk).collect() };
        let n = chunks.len();
        let mut out = None;
        for (i, c) in chunks.iter().enumerate() {
            let h = ghs::SegmentHeader { first: i == 0, last: i + 1 == n, counter: ((usize::from(start_counter) + i) % 64) as u8 };
            let mut seg = vec![h.to_octet()];
            seg.extend_from_slice(c);
            let got = r.feed(&seg).unwrap();
            prop_assert_eq!(got.is_some(), i + 1 == n);
            out = got.or(out);
        }
        prop_assert_eq!(out, Some(payload));
        prop_assert_eq!(r.gaps(), 0);
    }

    #[test]
    fn glucose_measurement_round_trips(
        seq in any::<u16>(),
        offset in -32767i16..32767,
        conc in sfloat_strategy(),
        mol in any::<bool>(),
        kind in 1u8..=10,
        location in prop::sample::select(vec![1u8, 2, 3, 4, 15]),
        status in any::<u16>(),
        context_follows in any::<bool>(),
    ) {
        let flags = 0x01 | 0x02 | 0x08 | if mol { 0x04 } else { 0 } | if context_follows { 0x10 } else { 0 };
        let mut b = vec![flags];
        b.extend_from_slice(&seq.to_le_bytes());
        b.extend_from_slice(&[0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09]);
        b.extend_from_slice(&offset.to_le_bytes());
        b.extend_from_slice(&sf(conc));
        b.push((location << 4) | kind);
        b.extend_from_slice(&status.to_le_bytes());
        let m = gls::measurement_full(&b).unwrap();
        prop_assert_eq!(m.sequence, seq);
        prop_assert_eq!(m.context_follows, context_follows);
        prop_assert_eq!(m.status, Some(status));
        let o = &m.decoded.observations[0];
        prop_assert_eq!(o.mdc.0, gls::sample_type_mdc(kind));
        prop_assert_eq!(o.sequence, Some(u64::from(seq)));
        let shift = if mol { 3 } else { 5 };
        let want = Number { mantissa: conc.mantissa, exponent: conc.exponent + shift };
        prop_assert_eq!(&o.value, &want.to_value());
        prop_assert_eq!(o.unit.as_ref().map(|u| u.as_str()), Some(if mol { "mmol/L" } else { "mg/dL" }));
        let base = m.base_time;
        prop_assert_eq!(o.time, base.plus_minutes(i64::from(offset)).map(DeviceTime::Local));
        prop_assert_eq!(m.decoded.observations.len(), 3);
    }

    #[test]
    fn cgm_records_round_trip(
        recs in proptest::collection::vec(
            (sfloat_strategy(), any::<u16>(), any::<u8>(), any::<[u8; 3]>(), sfloat_strategy(), sfloat_strategy(), any::<bool>()),
            1..4,
        ),
    ) {
        let mut bytes = Vec::new();
        for (glucose, offset, flag_bits, annunc, trend, quality, crc) in &recs {
            let flags = flag_bits & 0xE3;
            let mut r = vec![0, flags];
            r.extend_from_slice(&sf(*glucose));
            r.extend_from_slice(&offset.to_le_bytes());
            if flags & 0x20 != 0 { r.push(annunc[0]); }
            if flags & 0x40 != 0 { r.push(annunc[1]); }
            if flags & 0x80 != 0 { r.push(annunc[2]); }
            if flags & 0x01 != 0 { r.extend_from_slice(&sf(*trend)); }
            if flags & 0x02 != 0 { r.extend_from_slice(&sf(*quality)); }
            r[0] = (r.len() + if *crc { 2 } else { 0 }) as u8;
            if *crc { r = with_crc(r); }
            bytes.extend_from_slice(&r);
        }
        let all_crc = recs.iter().all(|r| r.6);
        let decoded = cgm::records(&bytes, all_crc).unwrap();
        prop_assert_eq!(decoded.len(), recs.len());
        for (d, (glucose, offset, flag_bits, annunc, trend, _, crc)) in decoded.iter().zip(&recs) {
            prop_assert_eq!(d.glucose, Ok(*glucose));
            prop_assert_eq!(d.time_offset, *offset);
            prop_assert_eq!(d.crc.is_some(), *crc);
            let flags = flag_bits & 0xE3;
            prop_assert_eq!(d.trend, (flags & 0x01 != 0).then_some(Ok(*trend)));
            prop_assert_eq!(d.warning, (flags & 0x20 != 0).then_some(annunc[0]));
            let obs = d.observations();
            prop_assert_eq!(obs[0].time, Some(DeviceTime::Relative(i64::from(*offset) * 60_000)));
            prop_assert_eq!(&obs[0].value, &glucose.to_value());
        }
        // Flipping any bit of a CRC-protected record's CRC is detected.
        if let Some(first) = decoded.first().filter(|d| d.crc.is_some()) {
            let mut bad = bytes.clone();
            let at = first.offset + usize::from(first.size) - 1;
            bad[at] ^= 0x01;
            let e = cgm::measurement(&bad).unwrap_err();
            prop_assert_eq!(e.at, at - 1);
            let matched = matches!(e.kind, DecodeErrorKind::Malformed { .. });
            prop_assert!(matched);
        }
    }

    #[test]
    fn ghs_numeric_round_trips(
        mdc in any::<u32>(),
        unit in prop::sample::select(vec![544u16, 1731, 2720, 3872, 6048, 2130]),
        mantissa in -8_388_605i32..=8_388_605,
        exponent in -10i8..=10,
        record in any::<u32>(),
        ms in 0u64..(1u64 << 40),
        patient in any::<u8>(),
    ) {
        let mut fields = mdc.to_le_bytes().to_vec();
        fields.push(0x02 | 0x08); // UTC, 1 ms
        fields.extend_from_slice(&ms.to_le_bytes()[..6]);
        fields.extend_from_slice(&[0, 0]);
        fields.push(patient);
        let value = float::encode(Number { mantissa, exponent }).unwrap();
        let length = (5 + fields.len() + 6) as u16;
        let mut body = vec![1];
        body.extend_from_slice(&length.to_le_bytes());
        body.extend_from_slice(&0x0023u16.to_le_bytes());
        body.extend_from_slice(&fields);
        body.extend_from_slice(&unit.to_le_bytes());
        body.extend_from_slice(&value.to_le_bytes());
        let mut stored = record.to_le_bytes().to_vec();
        stored.extend_from_slice(&body);
        let d = ghs::stored_observation(&stored).unwrap();
        prop_assert_eq!(d.observations.len(), 1);
        let o = &d.observations[0];
        prop_assert_eq!(o.mdc.0, mdc);
        prop_assert_eq!(o.sequence, Some(u64::from(record)));
        prop_assert_eq!(o.time, Some(DeviceTime::Utc(946_684_800_000 + ms as i64)));
        prop_assert_eq!(o.user, (patient != 0xFF).then_some(patient));
        prop_assert_eq!(o.unit.as_ref().map(|u| u.as_str()), ghs::ucum_for_dim(unit));
        let n = Number { mantissa, exponent };
        prop_assert_eq!(&o.value, &n.to_value());
        prop_assert!(!matches!(o.value, Value::Absent(_)));
        // the same body through the segmenter: split in two and reassembled
        let mid = body.len() / 2;
        let mut r = ghs::Reassembler::new();
        let mut s1 = vec![ghs::SegmentHeader { first: true, last: false, counter: 7 }.to_octet()];
        s1.extend_from_slice(&body[..mid]);
        let mut s2 = vec![ghs::SegmentHeader { first: false, last: true, counter: 8 }.to_octet()];
        s2.extend_from_slice(&body[mid..]);
        prop_assert_eq!(r.feed(&s1).unwrap(), None);
        let joined = r.feed(&s2).unwrap().unwrap();
        prop_assert_eq!(ghs::observation(&joined).unwrap().observations, ghs::observation(&body).unwrap().observations);
    }

    #[test]
    fn session_start_time_round_trips(
        tz in -48i8..=56,
        dst in prop::sample::select(vec![0u8, 2, 4, 8]),
        minute in 0u8..60,
    ) {
        let mut b = vec![0xE9, 0x07, 0x03, 0x0E, 0x07, minute, 0x09, tz as u8, dst];
        b = with_crc(b);
        let s = cgm::session_start_time_with_crc_required(&b, true).unwrap();
        prop_assert_eq!(s.time_zone, Some(tz));
        prop_assert_eq!(s.dst, Some(dst));
        prop_assert_eq!(s.start.minute, minute);
        prop_assert!(s.start_utc_ms().is_some());
    }
}

#[test]
fn reference_vectors_from_the_brief() {
    assert_eq!(cgm::crc16_mcrf4xx(b"123456789"), 0x6F91);
    let rec = [0x08, 0x00, 0x70, 0x00, 0x4B, 0x00, 0xA3, 0xD1];
    let d = cgm::measurement_with_crc_required(&rec, true).unwrap();
    assert_eq!(
        d.observations[0].value,
        Value::numeric_with_decimals(112.0, 0)
    );
    assert_eq!(d.observations[0].sequence, Some(75));
    let e = cgm::measurement(&[0x08, 0x00, 0x70, 0x00, 0x4B, 0x00, 0xA3, 0xD0]).unwrap_err();
    assert_eq!(e.at, 6);
    assert_eq!(
        sfloat::decode(u16::from_le_bytes([0x38, 0xC0])),
        Ok(Number {
            mantissa: 56,
            exponent: -4
        })
    );
    let mut g = vec![
        0x06u8, 0x01, 0x00, 0xE9, 0x07, 0x03, 0x0E, 0x07, 0x05, 0x09, 0x38, 0xC0, 0x11,
    ];
    let d = gls::measurement(&g).unwrap();
    assert_eq!(
        d.observations[0].value,
        Value::numeric_with_decimals(5.6, 1)
    );
    g[0] = 0x02;
    g[10] = 0x64;
    g[11] = 0xB0;
    let d = gls::measurement(&g).unwrap();
    assert_eq!(
        d.observations[0].value,
        Value::numeric_with_decimals(100.0, 0)
    );
    assert_eq!(d.observations[0].unit.as_ref().unwrap().as_str(), "mg/dL");
}
