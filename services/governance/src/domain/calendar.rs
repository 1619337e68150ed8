//! When a window is active: once, monthly (financial close, audit cycles) or weekly (peak
//! trading hours). Calendar arithmetic in UTC, no clock: the time is always given.

use time::{Date, Month, OffsetDateTime, Time};

use super::{Result, Timestamp, invalid};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MonthlySchedule {
    /// 1..=12; empty = every month.
    pub months: Vec<u8>,
    /// 1..=28, or -1..=-28 counted from the month's end (-1 = last day).
    pub day: i8,
    pub start_minute: u32,
    pub duration_minutes: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WeeklySchedule {
    /// 1 = Monday .. 7 = Sunday.
    pub weekdays: Vec<u8>,
    pub start_minute: u32,
    pub duration_minutes: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Schedule {
    Once { start: Timestamp, end: Timestamp },
    Monthly(MonthlySchedule),
    Weekly(WeeklySchedule),
}

const MINUTE: i64 = 60_000_000;
const DAY_MINUTES: u32 = 24 * 60;

fn to_datetime(t: Timestamp) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.0) * 1000).ok()
}

fn micros(d: OffsetDateTime) -> Timestamp {
    Timestamp((d.unix_timestamp_nanos() / 1000) as i64)
}

/// The start of a monthly occurrence in `year`/`month`.
fn monthly_start(s: &MonthlySchedule, year: i32, month: Month) -> Option<Timestamp> {
    let days = month.length(year);
    let day = if s.day > 0 {
        u8::try_from(s.day).ok()?
    } else {
        let back = u8::try_from(-i16::from(s.day)).ok()?;
        days.checked_sub(back - 1)?
    };
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let start = date.with_time(Time::MIDNIGHT).assume_utc();
    Some(Timestamp(
        micros(start).0 + i64::from(s.start_minute) * MINUTE,
    ))
}

impl Schedule {
    pub fn validate(&self) -> Result<()> {
        match self {
            Schedule::Once { start, end } => {
                if end <= start {
                    return Err(invalid("schedule.once", "end must be after start"));
                }
            }
            Schedule::Monthly(m) => {
                if m.day == 0 || !(-28..=28).contains(&m.day) {
                    return Err(invalid(
                        "schedule.monthly.day",
                        format!("{} is not 1..28 or -1..-28", m.day),
                    ));
                }
                if let Some(bad) = m.months.iter().find(|n| !(1..=12).contains(*n)) {
                    return Err(invalid(
                        "schedule.monthly.months",
                        format!("{bad} is not 1..12"),
                    ));
                }
                if m.start_minute >= DAY_MINUTES
                    || m.duration_minutes == 0
                    || m.duration_minutes > 28 * DAY_MINUTES
                {
                    return Err(invalid(
                        "schedule.monthly",
                        "start_minute must be below 1440 and duration 1 minute to 28 days",
                    ));
                }
            }
            Schedule::Weekly(w) => {
                if w.weekdays.is_empty() || w.weekdays.iter().any(|d| !(1..=7).contains(d)) {
                    return Err(invalid(
                        "schedule.weekly.weekdays",
                        "weekdays must be 1 (Monday) .. 7 (Sunday), at least one",
                    ));
                }
                if w.start_minute >= DAY_MINUTES
                    || w.duration_minutes == 0
                    || w.duration_minutes > 7 * DAY_MINUTES
                {
                    return Err(invalid(
                        "schedule.weekly",
                        "start_minute must be below 1440 and duration 1 minute to 7 days",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The occurrence containing `at`, as (start, end), if the window is active then.
    pub fn active_at(&self, at: Timestamp) -> Option<(Timestamp, Timestamp)> {
        match self {
            Schedule::Once { start, end } => (*start <= at && at < *end).then_some((*start, *end)),
            Schedule::Monthly(m) => {
                let now = to_datetime(at)?;
                let dur = i64::from(m.duration_minutes) * MINUTE;
                // An occurrence lasts at most 28 days: it began this month or the one before.
                let (mut year, mut month) = (now.year(), now.month());
                for _ in 0..2 {
                    if (m.months.is_empty() || m.months.contains(&u8::from(month)))
                        && let Some(start) = monthly_start(m, year, month)
                        && start <= at
                        && at.0 < start.0 + dur
                    {
                        return Some((start, Timestamp(start.0 + dur)));
                    }
                    month = month.previous();
                    if month == Month::December {
                        year -= 1;
                    }
                }
                None
            }
            Schedule::Weekly(w) => {
                let now = to_datetime(at)?;
                let dur = i64::from(w.duration_minutes) * MINUTE;
                let midnight = micros(now.date().with_time(Time::MIDNIGHT).assume_utc());
                // Occurrences last at most 7 days: look at starts on the last 8 days.
                for back in 0..8i64 {
                    let day_start = Timestamp(midnight.0 - back * DAY_MINUTES as i64 * MINUTE);
                    let weekday = to_datetime(day_start)?.weekday().number_from_monday();
                    if !w.weekdays.contains(&weekday) {
                        continue;
                    }
                    let start = Timestamp(day_start.0 + i64::from(w.start_minute) * MINUTE);
                    if start <= at && at.0 < start.0 + dur {
                        return Some((start, Timestamp(start.0 + dur)));
                    }
                }
                None
            }
        }
    }
}
