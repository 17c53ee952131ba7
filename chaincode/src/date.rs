//! Calendar arithmetic on day numbers (days since 1970-01-01, UTC) and block times, without a
//! clock or floats. Used for due dates, the 20-day objection period and 5-year retention.

/// Milliseconds in a day.
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// The day number of a block time in ms since the epoch.
#[must_use]
pub fn day_of(time_ms: u64) -> u64 {
    time_ms / DAY_MS
}

/// Converts a civil date to its day number (Howard Hinnant's `days_from_civil`).
#[must_use]
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let month_index = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_index + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Converts a day number to its civil date (year, month, day).
#[must_use]
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day number `years` calendar years after `day`; 29 February maps to 1 March.
#[must_use]
pub fn add_years(day: u64, years: i64) -> u64 {
    let (year, month, day_of_month) = civil_from_days(day as i64);
    let target_year = year + years;
    let is_leap = (target_year % 4 == 0 && target_year % 100 != 0) || target_year % 400 == 0;
    let shifted = if month == 2 && day_of_month == 29 && !is_leap {
        days_from_civil(target_year, 3, 1)
    } else {
        days_from_civil(target_year, month, day_of_month)
    };
    shifted.max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        for day in [0, 1, 59, 365, 10_957, 19_782, 20_000, 40_000] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn add_years_handles_leap_day() {
        let leap_day = days_from_civil(2024, 2, 29) as u64;
        assert_eq!(add_years(leap_day, 5), days_from_civil(2029, 3, 1) as u64);
        let ordinary = days_from_civil(2021, 6, 30) as u64;
        assert_eq!(add_years(ordinary, 5), days_from_civil(2026, 6, 30) as u64);
    }
}
