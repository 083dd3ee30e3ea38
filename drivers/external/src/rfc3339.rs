//! A strict RFC 3339 date-time parser (section 5.6, `date-time`): exactly the strings the
//! schema's `$defs/time` pattern matches, converted to UTC milliseconds.
//!
//! `YYYY-MM-DD`, `T` (or `t`), `hh:mm:ss`, an optional fraction of 1 to 9 digits (truncated to
//! milliseconds), and an offset `Z` (or `z`) or `±hh:mm`. No leap second (`:60`: hearth's
//! timestamps cannot hold one), no space instead of `T`, no missing offset (a local time without
//! an offset is ambiguous; the driver knows the zone, hearth does not).

use hearth_model::Timestamp;

/// Parses `s`; `None` when it is not an RFC 3339 date-time with an offset.
pub(crate) fn parse(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    // YYYY-MM-DDThh:mm:ss = 19 bytes, then fraction, then offset.
    if b.len() < 20 {
        return None;
    }
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let at = |i: usize, want: &[u8]| b.get(i).is_some_and(|c| want.contains(c));
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt") && at(13, b":") && at(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if at(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = i - start;
        if !(1..=9).contains(&digits) {
            return None;
        }
        // The first three digits are the milliseconds; the rest are truncated.
        for k in 0..3 {
            let d = if k < digits { num(start + k, 1)? } else { 0 };
            millis = millis * 10 + d;
        }
    }
    let offset_minutes = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let m = oh * 60 + om;
            if *sign == b'-' { -m } else { m }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(Timestamp::from_unix_millis(seconds * 1_000 + millis))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> Option<i64> {
        parse(s).map(Timestamp::unix_millis)
    }

    #[test]
    fn accepts_rfc3339_with_offsets_and_fractions() {
        assert_eq!(ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(ms("2023-11-14T22:13:20.123Z"), Some(1_700_000_000_123));
        assert_eq!(ms("2023-11-14t22:13:20.1239z"), Some(1_700_000_000_123));
        assert_eq!(ms("2023-11-14T23:13:20.5+01:00"), Some(1_700_000_000_500));
        assert_eq!(ms("2023-11-14T20:13:20-02:00"), Some(1_700_000_000_000));
        assert_eq!(ms("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        assert_eq!(ms("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(ms("1969-12-31T23:59:59.999Z"), Some(-1));
        assert!(ms("0000-01-01T00:00:00Z").is_some());
        assert!(ms("9999-12-31T23:59:59.999999999-23:59").is_some());
    }

    #[test]
    fn refuses_what_rfc3339_or_hearth_does_not_allow() {
        for s in [
            "",
            "2024-05-01",
            "2024-05-01T10:00:00",
            "2024-05-01 10:00:00Z",
            "2024-05-01T10:00Z",
            "2024-05-01T10:00:60Z",
            "2024-05-01T24:00:00Z",
            "2024-13-01T10:00:00Z",
            "2024-00-01T10:00:00Z",
            "2024-04-31T10:00:00Z",
            "2023-02-29T10:00:00Z",
            "1900-02-29T10:00:00Z",
            "2024-05-01T10:00:00.Z",
            "2024-05-01T10:00:00.1234567890Z",
            "2024-05-01T10:00:00+0200",
            "2024-05-01T10:00:00+24:00",
            "2024-05-01T10:00:00+02:60",
            "2024-05-01T10:00:00Z ",
            "2024-05-01T10:00:00Z\n",
            "+2024-05-01T10:00:00Z",
            "2024-5-01T10:00:00Z",
            "２０２４-05-01T10:00:00Z",
        ] {
            assert_eq!(ms(s), None, "{s:?}");
        }
    }
}
