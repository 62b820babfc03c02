//! RFC 3339 TIMESTAMP ↔ UTC unix microseconds, without a clock or a calendar library.

use std::fmt::Write as _;

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// Days from 1970-01-01 to the proleptic Gregorian date `y-m-d` (m 1–12, d 1–31).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Reads `n` ASCII digits at `*i` and advances past them.
fn digits(b: &[u8], i: &mut usize, n: usize) -> Option<i64> {
    let s = b.get(*i..*i + n)?;
    let mut v = 0i64;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    *i += n;
    Some(v)
}

fn expect(b: &[u8], i: &mut usize, c: u8) -> Option<()> {
    (b.get(*i) == Some(&c)).then(|| *i += 1)
}

/// Parses an RFC 5424 TIMESTAMP (RFC 3339 `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, upper
/// case `T` and `Z`) into UTC unix microseconds. The fraction keeps full precision up to
/// microseconds: 1–6 digits as RFC 5424 allows, 7–9 digits (nanosecond emitters) are
/// truncated toward the earlier microsecond. Leap seconds (`:60`), out-of-range fields and
/// impossible dates are refused. `-` (the NILVALUE) and anything else give `None`.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let mut i = 0;
    let year = digits(b, &mut i, 4)?;
    expect(b, &mut i, b'-')?;
    let month = digits(b, &mut i, 2)?;
    expect(b, &mut i, b'-')?;
    let day = digits(b, &mut i, 2)?;
    expect(b, &mut i, b'T')?;
    let hour = digits(b, &mut i, 2)?;
    expect(b, &mut i, b':')?;
    let minute = digits(b, &mut i, 2)?;
    expect(b, &mut i, b':')?;
    let second = digits(b, &mut i, 2)?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if !(1..=9).contains(&n) {
            return None;
        }
        for _ in n..6 {
            micros *= 10;
        }
    }
    let offset = match b.get(i)? {
        b'Z' => {
            i += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            i += 1;
            let oh = digits(b, &mut i, 2)?;
            expect(b, &mut i, b':')?;
            let om = digits(b, &mut i, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = oh * 3600 + om * 60;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    if i != b.len() {
        return None;
    }
    let secs =
        days_from_civil(year, month, day) * SECS_PER_DAY + hour * 3600 + minute * 60 + second
            - offset;
    Some(secs * MICROS_PER_SEC + micros)
}

/// Renders UTC unix microseconds as the reference's TIMESTAMP
/// (`YYYY-MM-DDTHH:MM:SS.ffffff+00:00`); `None` outside years 0000–9999.
pub fn format_timestamp(micros: i64) -> Option<String> {
    let secs = micros.div_euclid(MICROS_PER_SEC);
    let frac = micros.rem_euclid(MICROS_PER_SEC);
    let days = secs.div_euclid(SECS_PER_DAY);
    let sod = secs.rem_euclid(SECS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return None;
    }
    let mut out = String::with_capacity(32);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}+00:00",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_timestamp("2024-04-24T23:06:40.123456+00:00"),
            Some(1_714_000_000_123_456)
        );
        // Same instant, other offsets and precisions.
        assert_eq!(
            parse_timestamp("2024-04-25T01:36:40.123456+02:30"),
            Some(1_714_000_000_123_456)
        );
        assert_eq!(
            parse_timestamp("2024-04-24T20:06:40.1-03:00"),
            Some(1_714_000_000_100_000)
        );
        assert_eq!(
            parse_timestamp("2024-04-24T23:06:40.123456789Z"),
            Some(1_714_000_000_123_456)
        );
        assert_eq!(parse_timestamp("1969-12-31T23:59:59.999999Z"), Some(-1));
        assert_eq!(
            parse_timestamp("2000-02-29T00:00:00Z"),
            Some(951_782_400_000_000)
        );
    }

    #[test]
    fn refused() {
        for bad in [
            "-",
            "",
            "2024-04-24",
            "2024-04-24T23:06:40",
            "2024-04-24 23:06:40Z",
            "2024-04-24t23:06:40Z",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-04-24T24:00:00Z",
            "2024-04-24T23:60:00Z",
            "2016-12-31T23:59:60Z",
            "2024-04-24T23:06:40.Z",
            "2024-04-24T23:06:40.1234567890Z",
            "2024-04-24T23:06:40+0200",
            "2024-04-24T23:06:40+24:00",
            "2024-04-24T23:06:40Zjunk",
            "+024-04-24T23:06:40Z",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn format_known() {
        assert_eq!(
            format_timestamp(1_714_000_000_123_456).as_deref(),
            Some("2024-04-24T23:06:40.123456+00:00")
        );
        assert_eq!(
            format_timestamp(-1).as_deref(),
            Some("1969-12-31T23:59:59.999999+00:00")
        );
        assert_eq!(format_timestamp(i64::MAX), None);
        assert_eq!(format_timestamp(i64::MIN), None);
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse(micros in -62_167_219_200_000_000i64..253_402_300_800_000_000) {
            let text = format_timestamp(micros).unwrap();
            proptest::prop_assert_eq!(parse_timestamp(&text), Some(micros));
        }

        #[test]
        fn agrees_with_time(micros in -62_167_219_200_000_000i64..253_402_300_800_000_000) {
            let dt = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).unwrap();
            let text = dt.format(&time::format_description::well_known::Rfc3339).unwrap();
            proptest::prop_assert_eq!(parse_timestamp(&text), Some(micros), "{}", text);
        }

        #[test]
        fn accepted_text_is_an_instant(s in "[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\\.[0-9]{0,10})?(Z|[+-][0-2][0-9]:[0-6][0-9])") {
            // Whatever is accepted names one instant, which renders and parses back.
            if let Some(micros) = parse_timestamp(&s) {
                if let Some(text) = format_timestamp(micros) {
                    proptest::prop_assert_eq!(parse_timestamp(&text), Some(micros));
                }
                proptest::prop_assert!(s.len() >= 20);
            }
        }
    }
}
