//! Timestamps on the command line: RFC 3339 (`2026-11-28T10:00:00Z`,
//! `2026-11-28T11:00:00.250+01:00`) or `@<epoch_ms>`. Hand-written because this is all the
//! date handling the CLI needs, and a calendar crate would be a large dependency for it.

/// Milliseconds since the Unix epoch for `@<ms>` or an RFC 3339 date-time.
pub fn parse_timestamp_ms(text: &str) -> Result<i64, String> {
    if let Some(ms) = text.strip_prefix('@') {
        return ms
            .parse::<i64>()
            .map_err(|_| format!("{text:?}: expected @ followed by milliseconds since the epoch"));
    }
    parse_rfc3339_ms(text).ok_or_else(|| {
        format!("{text:?} is not an RFC 3339 time like 2026-11-28T10:00:00Z, nor @<epoch_ms>")
    })
}

fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    // YYYY-MM-DDTHH:MM:SS is 19 bytes; then optional .fraction, then Z or ±HH:MM.
    if bytes.len() < 20 || !text.is_ascii() {
        return None;
    }
    let fixed = |at: usize, byte: u8| bytes[at] == byte;
    if !(fixed(4, b'-') && fixed(7, b'-') && fixed(13, b':') && fixed(16, b':')) {
        return None;
    }
    if !matches!(bytes[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = digits(&text[0..4])?;
    let month = digits(&text[5..7])?;
    let day = digits(&text[8..10])?;
    let hour = digits(&text[11..13])?;
    let minute = digits(&text[14..16])?;
    // 60 is a leap second; we fold it into the next second rather than reject it.
    let second = digits(&text[17..19])?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }

    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let length = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if length == 0 {
            return None;
        }
        // Keep milliseconds; finer digits are truncated.
        let kept = &fraction[..length.min(3)];
        millis = digits(kept)? * 10_i64.pow(3 - kept.len() as u32);
        rest = &fraction[length..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let hours = digits(&rest[1..3])?;
            let minutes = digits(&rest[4..6])?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 60 + minutes)
        }
    };

    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

fn digits(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12; // March = 0, so the leap day ends the year.
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_milliseconds_with_at_sign() {
        assert_eq!(parse_timestamp_ms("@0"), Ok(0));
        assert_eq!(parse_timestamp_ms("@1764324000000"), Ok(1_764_324_000_000));
        assert!(parse_timestamp_ms("@soon").is_err());
    }

    #[test]
    fn rfc3339_in_utc_and_with_offsets() {
        assert_eq!(parse_timestamp_ms("1970-01-01T00:00:00Z"), Ok(0));
        // date -u -d 2026-11-28T10:00:00Z +%s → 1795860000
        assert_eq!(
            parse_timestamp_ms("2026-11-28T10:00:00Z"),
            Ok(1_795_860_000_000)
        );
        assert_eq!(
            parse_timestamp_ms("2026-11-28T11:00:00.250+01:00"),
            Ok(1_795_860_000_250)
        );
        assert_eq!(
            parse_timestamp_ms("2026-11-28T09:30:00.1234-00:30"),
            Ok(1_795_860_000_123)
        );
        assert_eq!(
            parse_timestamp_ms("2000-02-29T00:00:00Z"),
            Ok(951_782_400_000)
        );
        assert_eq!(parse_timestamp_ms("1969-12-31T23:59:59Z"), Ok(-1000));
    }

    #[test]
    fn malformed_times_are_rejected() {
        for text in [
            "2026-11-28",
            "2026-11-28T10:00:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-28T24:00:00Z",
            "2026-11-28T10:00:00.Z",
            "2026-11-28T10:00:00+0100",
            "2026-11-28T10:00:00Zjunk",
            "２０２６-11-28T10:00:00Z",
        ] {
            assert!(parse_timestamp_ms(text).is_err(), "{text} was accepted");
        }
    }
}
