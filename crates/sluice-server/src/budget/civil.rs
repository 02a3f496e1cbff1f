//! Unix time to UTC civil dates, without a date library.
//!
//! The day arithmetic is Howard Hinnant's `civil_from_days` / `days_from_civil`
//! (<https://howardhinnant.github.io/date_algorithms.html>): proleptic Gregorian calendar,
//! exact for every `i64` day count this gateway can meet.

use std::time::{SystemTime, UNIX_EPOCH};

const SECS_PER_DAY: i64 = 86_400;

/// A UTC calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Civil {
    pub year: i64,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
}

impl Civil {
    /// `YYYY-MM-DD`.
    pub fn day_string(self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `YYYY-MM`.
    pub fn month_string(self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }

    /// Months since year 0, a key that changes exactly when the calendar month does.
    pub fn month_index(self) -> i64 {
        self.year * 12 + i64::from(self.month) - 1
    }
}

/// Whole days since 1970-01-01 UTC, rounding down (times before the epoch give negative days).
pub(crate) fn unix_day(t: SystemTime) -> i64 {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let whole = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            // -1.5 s is in the second that starts at -2 s.
            -whole - i64::from(d.subsec_nanos() > 0)
        }
    };
    secs.div_euclid(SECS_PER_DAY)
}

/// The civil date of a day count since 1970-01-01 (Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> Civil {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based month
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        // Both are in small ranges (see above), so the conversions cannot fail.
        month: u32::try_from(month).unwrap_or(1),
        day: u32::try_from(day).unwrap_or(1),
    }
}

/// The day count since 1970-01-01 of a civil date (Hinnant's `days_from_civil`); the inverse
/// of [`civil_from_days`]. Only tests need it, to build instants from dates.
#[cfg(test)]
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (m, d) = (i64::from(month), i64::from(day));
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = if m > 2 { m - 3 } else { m + 9 }; // [0, 11]
    let doy = (153 * mp + 2) / 5 + d - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}
