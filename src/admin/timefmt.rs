//! Timestamps for SHOW CLIENTS / SHOW SERVERS, in PgBouncer's text form
//! `YYYY-MM-DD HH:MM:SS TZ`, always in UTC so output does not depend on the host's zone.
//! Called by the connection renderer; no date crate needed for a proleptic Gregorian
//! calendar date from days since 1970 (the era arithmetic below).

use std::time::{SystemTime, UNIX_EPOCH};

/// `2024-01-02 03:04:05 UTC`. Times before 1970 (never produced by a clock that works)
/// show as the epoch.
pub(super) fn format_utc(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Year, month (1-12) and day (1-31) of the day `days` after 1970-01-01.
///
/// Counts in 400-year eras starting on March 1st, so the leap day falls at the end of a
/// counting year and each era has exactly 146097 days.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // 1970-01-01 is day 719468 after 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    // Years of 365 days, corrected for the leap days of every 4th, 100th and 400th year.
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months from March: 153 days per 5 months.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> String {
        format_utc(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn known_instants() {
        assert_eq!(at(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(at(1_704_164_645), "2024-01-02 03:04:05 UTC");
        // Leap day, end of a century leap year, and the day after.
        assert_eq!(at(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(at(978_307_199), "2000-12-31 23:59:59 UTC");
        assert_eq!(at(978_307_200), "2001-01-01 00:00:00 UTC");
        // 2100 is not a leap year.
        assert_eq!(at(4_107_542_400), "2100-03-01 00:00:00 UTC");
        assert_eq!(at(4_107_542_399), "2100-02-28 23:59:59 UTC");
        // Sub-second parts are dropped, as in PgBouncer's output.
        assert_eq!(
            format_utc(UNIX_EPOCH + Duration::from_millis(1_500)),
            "1970-01-01 00:00:01 UTC"
        );
        assert_eq!(
            format_utc(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01 00:00:00 UTC"
        );
    }

    #[test]
    fn every_day_for_four_centuries_advances_by_one() {
        let mut previous = civil_from_days(0);
        for days in 1..146_097 {
            let (y, m, d) = civil_from_days(days);
            let (py, pm, pd) = previous;
            let next_day = (y, m, d) == (py, pm, pd + 1);
            let next_month = (y, m, d) == (py, pm + 1, 1);
            let next_year = (y, m, d) == (py + 1, 1, 1) && (pm, pd) == (12, 31);
            assert!(
                next_day || next_month || next_year,
                "{previous:?} -> {y}-{m}-{d}"
            );
            assert!(d <= 31 && (1..=12).contains(&m));
            previous = (y, m, d);
        }
        assert_eq!(previous, (2369, 12, 31));
    }
}
