//! ISBT 128 dates: `cyyjjj` and `cyyjjjhhmm` (DS 004–009: last three digits of the year, day of
//! the year, 24-hour time), Gregorian `yyyymmdd` (DS 024, DS 031) and the Flexible Date and Time
//! of DS 031 with its time-zone flag. Plain Gregorian arithmetic, no time-zone database: the
//! core only reads and writes the fields; the agent turns them into instants.

use super::field::At;

/// A Gregorian calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CalendarDate {
    year: u16,
    month: u8,
    day: u8,
}

/// A date and a 24-hour time of day, without a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    pub date: CalendarDate,
    hour: u8,
    minute: u8,
}

/// Which moment a date structure records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateRole {
    Expiration,
    Collection,
    Production,
}

/// The time-zone flag `Z` of DS 031.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ZoneFlag {
    /// `1`: local time at the facility.
    Local,
    /// `2`: UTC.
    Utc,
}

/// DS 031 `ZUTTYYYYMMDDhhmm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlexibleDateTime {
    pub zone: ZoneFlag,
    /// `U`: a digit ST-001 reserves; `0` when built, kept as read so a round trip is exact.
    pub(crate) reserved: u8,
    /// `TT`: `01` expiration, `02` collection, `03` production; other values are kept as read.
    pub(crate) time_type: u8,
    pub at: DateTime,
}

/// The first year `cyy` can express: ISBT 128 dates are read as 2000–2999.
pub const FIRST_CYY_YEAR: u16 = 2000;

impl CalendarDate {
    /// A valid Gregorian date in years 1–9999 (four digits), or `None`.
    pub fn new(year: u16, month: u8, day: u8) -> Option<CalendarDate> {
        if !(1..=9999).contains(&year)
            || !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
        {
            return None;
        }
        Some(CalendarDate { year, month, day })
    }

    /// The date of day `ordinal` (1-based) of `year`, or `None` past the year's last day.
    pub fn from_ordinal(year: u16, ordinal: u16) -> Option<CalendarDate> {
        if !(1..=9999).contains(&year) || ordinal == 0 || ordinal > days_in_year(year) {
            return None;
        }
        let mut remaining = ordinal;
        for month in 1..=12u8 {
            let days = u16::from(days_in_month(year, month));
            if remaining <= days {
                // `remaining` is at most 31 here, so it fits a u8.
                return Some(CalendarDate {
                    year,
                    month,
                    day: remaining as u8,
                });
            }
            remaining -= days;
        }
        None
    }

    pub fn year(self) -> u16 {
        self.year
    }

    pub fn month(self) -> u8 {
        self.month
    }

    pub fn day(self) -> u8 {
        self.day
    }

    /// Day of the year, 1–366.
    pub fn ordinal(self) -> u16 {
        (1..self.month)
            .map(|m| u16::from(days_in_month(self.year, m)))
            .sum::<u16>()
            + u16::from(self.day)
    }
}

impl std::fmt::Display for CalendarDate {
    /// ISO 8601 `YYYY-MM-DD`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl DateTime {
    /// A date at `hour:minute`, or `None` if the time is not 00:00–23:59.
    pub fn new(date: CalendarDate, hour: u8, minute: u8) -> Option<DateTime> {
        (hour < 24 && minute < 60).then_some(DateTime { date, hour, minute })
    }

    /// The date at 23:59, the time ISBT 128 encodes when no time is given.
    pub fn end_of_day(date: CalendarDate) -> DateTime {
        DateTime {
            date,
            hour: 23,
            minute: 59,
        }
    }

    pub fn hour(self) -> u8 {
        self.hour
    }

    pub fn minute(self) -> u8 {
        self.minute
    }
}

impl std::fmt::Display for DateTime {
    /// ISO 8601 `YYYY-MM-DDTHH:MM`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}T{:02}:{:02}", self.date, self.hour, self.minute)
    }
}

impl DateRole {
    pub fn as_str(self) -> &'static str {
        match self {
            DateRole::Expiration => "expiration",
            DateRole::Collection => "collection",
            DateRole::Production => "production",
        }
    }
}

impl FlexibleDateTime {
    /// A flexible date and time recording `role`.
    pub fn new(zone: ZoneFlag, role: DateRole, at: DateTime) -> FlexibleDateTime {
        let time_type = match role {
            DateRole::Expiration => 1,
            DateRole::Collection => 2,
            DateRole::Production => 3,
        };
        FlexibleDateTime {
            zone,
            reserved: 0,
            time_type,
            at,
        }
    }

    /// `TT` as read (1–99).
    pub fn time_type(&self) -> u8 {
        self.time_type
    }

    /// `U` as read (0–9).
    pub fn reserved(&self) -> u8 {
        self.reserved
    }

    /// The role `TT` names, when it is one ST-001 defines.
    pub fn role(&self) -> Option<DateRole> {
        match self.time_type {
            1 => Some(DateRole::Expiration),
            2 => Some(DateRole::Collection),
            3 => Some(DateRole::Production),
            _ => None,
        }
    }
}

pub fn is_leap_year(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_year(year: u16) -> u16 {
    if is_leap_year(year) { 366 } else { 365 }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Reads `cyyjjj` (6 bytes) starting `start` bytes into the structure content.
pub(crate) fn read_cyyjjj(
    at: At,
    bytes: &[u8],
    start: usize,
) -> Result<CalendarDate, super::error::Isbt128Error> {
    let (cyy, jjj) = bytes.split_at(3.min(bytes.len()));
    let year = FIRST_CYY_YEAR + at.number(cyy, start, "year (cyy)")? as u16;
    let day = at.number(jjj, start + 3, "day of year (jjj)")? as u16;
    CalendarDate::from_ordinal(year, day).ok_or_else(|| {
        at.invalid(if day == 366 {
            format!("day 366 in {year}, which is not a leap year")
        } else {
            format!("day of year {day:03} is not 001-{}", days_in_year(year))
        })
    })
}

/// Reads `hhmm` starting `start` bytes into the structure content.
pub(crate) fn read_hhmm(
    at: At,
    date: CalendarDate,
    bytes: &[u8],
    start: usize,
) -> Result<DateTime, super::error::Isbt128Error> {
    let (hh, mm) = bytes.split_at(2.min(bytes.len()));
    let hour = at.number(hh, start, "hour")?;
    let minute = at.number(mm, start + 2, "minute")?;
    // Both numbers have two digits, so they fit a u8.
    DateTime::new(date, hour as u8, minute as u8)
        .ok_or_else(|| at.invalid(format!("time {hour:02}:{minute:02} is not 00:00-23:59")))
}

/// Reads a Gregorian `yyyymmdd` starting `start` bytes into the structure content.
pub(crate) fn read_yyyymmdd(
    at: At,
    bytes: &[u8],
    start: usize,
) -> Result<CalendarDate, super::error::Isbt128Error> {
    let year = at.number(bytes.get(..4).unwrap_or(&[]), start, "year")?;
    let month = at.number(bytes.get(4..6).unwrap_or(&[]), start + 4, "month")?;
    let day = at.number(bytes.get(6..8).unwrap_or(&[]), start + 6, "day")?;
    // Four and two digits fit u16 and u8.
    CalendarDate::new(year as u16, month as u8, day as u8).ok_or_else(|| {
        // No values in this message: DS 024 is a patient's date of birth.
        at.invalid(if !(1..=12).contains(&month) {
            "the month is not 01-12"
        } else {
            "the day is not a day of that month"
        })
    })
}

/// Writes `cyyjjj`; `None` when the year is outside 2000–2999.
pub(crate) fn write_cyyjjj(out: &mut String, date: CalendarDate) -> Option<()> {
    use std::fmt::Write as _;
    let cyy = date
        .year
        .checked_sub(FIRST_CYY_YEAR)
        .filter(|cyy| *cyy <= 999)?;
    write!(out, "{cyy:03}{:03}", date.ordinal()).ok()
}

pub(crate) fn write_hhmm(out: &mut String, at: DateTime) {
    use std::fmt::Write as _;
    let _ = write!(out, "{:02}{:02}", at.hour, at.minute);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_round_trip_in_leap_and_common_years() {
        for year in [2024u16, 2025, 2000, 2100] {
            for ordinal in 1..=days_in_year(year) {
                let date = CalendarDate::from_ordinal(year, ordinal).unwrap();
                assert_eq!(date.ordinal(), ordinal, "{year} day {ordinal}");
            }
            assert_eq!(
                CalendarDate::from_ordinal(year, days_in_year(year) + 1),
                None
            );
        }
    }

    #[test]
    fn leap_years() {
        assert!(is_leap_year(2024));
        assert!(is_leap_year(2000));
        assert!(!is_leap_year(2100));
        assert!(!is_leap_year(2025));
        assert_eq!(CalendarDate::new(2025, 2, 29), None);
        assert!(CalendarDate::new(2024, 2, 29).is_some());
    }
}
