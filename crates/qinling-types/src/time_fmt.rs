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

#[cfg(test)]
mod tests {
    #[test]
    fn wire_format_drops_fraction() {
        let ts = time::macros::datetime!(2026-11-28 06:45:29.572982 UTC);
        assert_eq!(super::format_ts(ts), "2026-11-28T06:45:29Z");
    }
}
