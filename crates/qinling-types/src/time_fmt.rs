//! Timestamps: stored with microseconds (so lists keep creation order), shown on the wire as
//! `YYYY-MM-DDTHH:MM:SSZ` (reference §2.4).

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

pub type Timestamp = OffsetDateTime;

const WIRE: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// The current UTC time.
pub fn now() -> Timestamp {
    OffsetDateTime::now_utc()
}

/// The wire form of a timestamp: UTC, seconds, `Z`.
pub fn format_ts(ts: Timestamp) -> String {
    ts.to_offset(time::UtcOffset::UTC)
        .format(WIRE)
        .expect("a UTC timestamp always formats")
}

/// A timestamp exactly as stored (to the microsecond) in RFC 3339, UTC: `…:29Z`, or
/// `…:29.572982Z` with a fraction; for values a client sends back, such as a range's end.
pub fn format_precise(ts: Timestamp) -> String {
    use time::format_description::well_known::Rfc3339;
    let utc = ts.to_offset(time::UtcOffset::UTC);
    let micros = utc
        .replace_nanosecond(utc.nanosecond() / 1000 * 1000)
        .unwrap_or(utc);
    micros.format(&Rfc3339).unwrap_or_else(|_| format_ts(utc))
}

#[cfg(test)]
mod tests {
    #[test]
    fn wire_format_drops_fraction() {
        let ts = time::macros::datetime!(2026-11-28 06:45:29.572982 UTC);
        assert_eq!(super::format_ts(ts), "2026-11-28T06:45:29Z");
    }

    #[test]
    fn precise_format_keeps_microseconds() {
        let ts = time::macros::datetime!(2026-11-28 08:45:29.5729829 +02:00);
        assert_eq!(super::format_precise(ts), "2026-11-28T06:45:29.572982Z");
        let whole = time::macros::datetime!(2026-11-28 06:45:29 UTC);
        assert_eq!(super::format_precise(whole), "2026-11-28T06:45:29Z");
    }
}
