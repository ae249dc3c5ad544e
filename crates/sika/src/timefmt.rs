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

/// A time zone the console can show times in. Only zones without daylight
/// saving are offered, so a fixed offset is exact; the stored times stay UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone {
    /// The setting's value, e.g. `Africa/Lagos`.
    pub id: &'static str,
    /// What people call it, e.g. `WAT`.
    pub abbr: &'static str,
    pub label: &'static str,
    pub offset_minutes: i64,
}

pub const ZONES: &[Zone] = &[
    Zone { id: "UTC", abbr: "UTC", label: "UTC", offset_minutes: 0 },
    Zone { id: "Africa/Accra", abbr: "GMT", label: "Accra, Abidjan, Dakar (GMT, UTC+00:00)", offset_minutes: 0 },
    Zone { id: "Africa/Lagos", abbr: "WAT", label: "Lagos, Douala, Kinshasa (WAT, UTC+01:00)", offset_minutes: 60 },
    Zone { id: "Africa/Johannesburg", abbr: "SAST", label: "Johannesburg (SAST, UTC+02:00)", offset_minutes: 120 },
    Zone { id: "Africa/Lusaka", abbr: "CAT", label: "Lusaka, Kigali, Lilongwe (CAT, UTC+02:00)", offset_minutes: 120 },
    Zone {
        id: "Africa/Nairobi",
        abbr: "EAT",
        label: "Nairobi, Kampala, Dar es Salaam (EAT, UTC+03:00)",
        offset_minutes: 180,
    },
];

impl Zone {
    pub fn parse(id: &str) -> Option<Zone> {
        ZONES.iter().copied().find(|z| z.id == id)
    }
}

static CONSOLE_ZONE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The zone the console shows times in (display only: every record is UTC).
pub fn console_zone() -> Zone {
    ZONES.get(CONSOLE_ZONE.load(std::sync::atomic::Ordering::Relaxed)).copied().unwrap_or(ZONES[0])
}

/// Sets it (from the `console.time_zone` setting, read on each console request).
pub fn set_console_zone(zone: Zone) {
    let i = ZONES.iter().position(|z| *z == zone).unwrap_or(0);
    CONSOLE_ZONE.store(i, std::sync::atomic::Ordering::Relaxed);
}

/// A moment shown to an operator: in the console's zone, with UTC on hover
/// and in the machine-readable attribute. Renders as HTML it builds itself
/// from digits and the zone's fixed names, so templates need not escape it.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    pub ms: i64,
    pub zone: Zone,
}

impl Stamp {
    pub fn new(ms: i64) -> Stamp {
        Stamp { ms, zone: console_zone() }
    }

    /// `2026-11-29 11:00:00 WAT`.
    pub fn local(&self) -> String {
        format!("{} {}", datetime(self.ms + self.zone.offset_minutes * 60_000), self.zone.abbr)
    }
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<time datetime=\"{}\" title=\"{} UTC\">{}</time>", iso(self.ms), datetime(self.ms), self.local())
    }
}

impl askama::filters::HtmlSafe for Stamp {}

/// The time left to `at` from `now`, in words for a deadline: "due in 1 d 3 h",
/// "due in 5 h", "due in 40 min", "overdue by 2 h".
pub fn due_in(now: i64, at: i64) -> String {
    let span = |ms: i64| {
        let minutes = ms / 60_000;
        let (d, h, m) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
        match (d, h) {
            (0, 0) => format!("{} min", m.max(1)),
            (0, h) => format!("{h} h"),
            (d, 0) => format!("{d} d"),
            (d, h) => format!("{d} d {h} h"),
        }
    };
    if at >= now { format!("due in {}", span(at - now)) } else { format!("overdue by {}", span(now - at)) }
}

/// `2026-11-29T10:00:00Z`.
pub fn iso(ms: i64) -> String {
    datetime(ms).replacen(' ', "T", 1) + "Z"
}

/// `2026-11-29 10:00:00` (UTC).
pub fn datetime(ms: i64) -> String {
    let (y, m, d, rem) = civil(ms);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 for a civil date (Howard Hinnant's days-from-civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A date typed into a console filter (`what` names the field): the start
/// of that day in the console's time zone, in UTC milliseconds; empty is
/// no filter.
pub fn console_day(typed: &str, what: &str) -> Result<Option<i64>, String> {
    match typed.trim() {
        "" => Ok(None),
        d => parse_date(d)
            .map(|ms| Some(ms - console_zone().offset_minutes * 60_000))
            .ok_or_else(|| format!("The {what} date must be a date such as 2026-11-29.")),
    }
}

/// `2026-11-29` → the millisecond its day starts, UTC. Only real dates
/// between 2000 and 2100 are accepted.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num =
        |r: std::ops::Range<usize>| s.get(r).filter(|t| t.bytes().all(|c| c.is_ascii_digit()))?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(2000..=2100).contains(&y) || !(1..=12).contains(&m) || d < 1 {
        return None;
    }
    let ms = days_from_civil(y, m, d) * 86_400_000;
    // 2026-02-30 would roll over into March: refuse it.
    (date(ms) == s).then_some(ms)
}

/// A date (`2026-11-29`, its start in UTC) or an instant in UTC
/// (`2026-11-29T10:00:00Z`), as milliseconds.
pub fn parse_instant(s: &str) -> Option<i64> {
    if s.len() == 10 {
        return parse_date(s);
    }
    let b = s.as_bytes();
    if b.len() != 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let day = parse_date(&s[..10])?;
    let num =
        |r: std::ops::Range<usize>| s.get(r).filter(|t| t.bytes().all(|c| c.is_ascii_digit()))?.parse::<i64>().ok();
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    (h < 24 && mi < 60 && se < 60).then_some(day + (h * 3600 + mi * 60 + se) * 1000)
}

/// A length of time in words: `45 s`, `12 min`, `3 h 10 min`, `2 days 4 h`.
pub fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (1, 0, _) => "1 day".into(),
        (1, h, _) => format!("1 day {h} h"),
        (d, 0, _) => format!("{d} days"),
        (d, h, _) => format!("{d} days {h} h"),
    }
}

/// `2026-11-29` (UTC).
pub fn date(ms: i64) -> String {
    let (y, m, d, _) = civil(ms);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn deadlines_read_as_time_left() {
        let h = 3_600_000;
        assert_eq!(super::due_in(0, 5 * h), "due in 5 h");
        assert_eq!(super::due_in(0, 27 * h), "due in 1 d 3 h");
        assert_eq!(super::due_in(0, 48 * h), "due in 2 d");
        assert_eq!(super::due_in(0, 40 * 60_000), "due in 40 min");
        assert_eq!(super::due_in(0, 1), "due in 1 min");
        assert_eq!(super::due_in(2 * h, 0), "overdue by 2 h");
    }

    #[test]
    fn formats() {
        assert_eq!(super::datetime(0), "1970-01-01 00:00:00");
        assert_eq!(super::datetime(1_795_000_000_000), "2026-11-18 11:06:40");
        assert_eq!(super::date(951_782_400_000), "2000-02-29");
        assert_eq!(super::iso(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn spans_read_as_words() {
        let cases =
            [(0, "0 s"), (45_000, "45 s"), (720_000, "12 min"), (3 * 3_600_000, "3 h"), (11_400_000, "3 h 10 min")];
        for (ms, words) in cases {
            assert_eq!(super::span(ms), words);
        }
        assert_eq!(super::span(86_400_000 + 3_600_000), "1 day 1 h");
        assert_eq!(super::span(2 * 86_400_000 + 4 * 3_600_000 + 60_000), "2 days 4 h");
        assert_eq!(super::span(-5), "0 s");
    }

    #[test]
    fn dates_and_instants_parse_strictly() {
        assert_eq!(super::parse_date("2026-11-18"), Some(1_795_000_000_000 - 40_000_000));
        assert_eq!(super::parse_date("2000-02-29").map(super::date), Some("2000-02-29".into()));
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-1-01",
            "26-11-18",
            "2026/11/18",
            "1999-12-31",
            "2026-11-18x",
            "+026-11-18",
        ] {
            assert_eq!(super::parse_date(bad), None, "{bad}");
        }
        assert_eq!(super::parse_instant("2026-11-18T11:06:40Z"), Some(1_795_000_000_000));
        assert_eq!(super::parse_instant("2026-11-18"), super::parse_date("2026-11-18"));
        for bad in ["2026-11-18T24:00:00Z", "2026-11-18T11:06:40+01:00", "2026-11-18 11:06:40Z", "2026-11-18T11:6:40Z"]
        {
            assert_eq!(super::parse_instant(bad), None, "{bad}");
        }
    }

    #[test]
    fn stamps_show_the_zone_and_keep_utc_on_hover() {
        let lagos = super::Zone::parse("Africa/Lagos").unwrap();
        let s = super::Stamp { ms: 1_795_000_000_000, zone: lagos };
        assert_eq!(s.local(), "2026-11-18 12:06:40 WAT");
        assert_eq!(
            s.to_string(),
            r#"<time datetime="2026-11-18T11:06:40Z" title="2026-11-18 11:06:40 UTC">2026-11-18 12:06:40 WAT</time>"#
        );
        // Across midnight and the year's end.
        let nairobi = super::Zone::parse("Africa/Nairobi").unwrap();
        assert_eq!(super::Stamp { ms: 1_798_757_999_000, zone: nairobi }.local(), "2027-01-01 01:59:59 EAT");
        assert_eq!(super::Zone::parse("Europe/London"), None, "zones with daylight saving are not offered");
    }
}
