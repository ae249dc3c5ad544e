//! Dates for people and for Flutterwave's query strings, from the one time
//! format stored (milliseconds since the Unix epoch, UTC).

/// (year, month, day, seconds into the day) for a millisecond timestamp.
fn civil(ms: i64) -> (i64, i64, i64, i64) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem)
}

/// `2026-11-29 10:00:00` (UTC).
pub fn datetime(ms: i64) -> String {
    let (y, m, d, rem) = civil(ms);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `2026-11-29` (UTC).
pub fn date(ms: i64) -> String {
    let (y, m, d, _) = civil(ms);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::datetime(0), "1970-01-01 00:00:00");
        assert_eq!(super::datetime(1_795_000_000_000), "2026-11-18 11:06:40");
        assert_eq!(super::date(951_782_400_000), "2000-02-29");
    }
}
