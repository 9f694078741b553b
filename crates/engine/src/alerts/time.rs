//! RFC 3339 timestamps in UTC with milliseconds (`2026-12-03T21:50:00.000Z`), without a date
//! library: the engine needs only this one format.

use omnibus_types::calendar::civil_from_days;

/// Formats milliseconds since the Unix epoch. Times before 1970 are shown as the epoch.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let ms = ms.max(0);
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute) = (in_day / 3_600_000, in_day / 60_000 % 60);
    let (second, milli) = (in_day / 1000 % 60, in_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_format_as_rfc3339() {
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day in a century leap year) 12:34:56.789.
        assert_eq!(
            format_rfc3339_ms(951_827_696_789),
            "2000-02-29T12:34:56.789Z"
        );
        assert_eq!(
            format_rfc3339_ms(1_796_256_000_000),
            "2026-12-03T00:00:00.000Z"
        );
    }
}
