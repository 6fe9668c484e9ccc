//! Retention periods as written in configuration: `90d`, `7y`, `12h`, `2w`, `10m`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Duration, Month, OffsetDateTime, PrimitiveDateTime};

/// The longest period accepted: a hundred years.
const MAX_YEARS: u32 = 100;

/// A retention period: a count and a unit. Years are calendar years (an object
/// written on 2025-03-01 with `7y` expires on 2032-03-01; one written on a 29 February
/// expires on 1 March of a year without one — never earlier than the calendar says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ttl {
    count: u32,
    unit: Unit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Unit {
    Minutes,
    Hours,
    Days,
    Weeks,
    Years,
}

impl Unit {
    fn suffix(self) -> char {
        match self {
            Unit::Minutes => 'm',
            Unit::Hours => 'h',
            Unit::Days => 'd',
            Unit::Weeks => 'w',
            Unit::Years => 'y',
        }
    }
    /// Units per hundred years, rounded up: the bound on a count.
    fn max_count(self) -> u32 {
        match self {
            Unit::Minutes => MAX_YEARS * 366 * 24 * 60,
            Unit::Hours => MAX_YEARS * 366 * 24,
            Unit::Days => MAX_YEARS * 366,
            Unit::Weeks => MAX_YEARS * 53,
            Unit::Years => MAX_YEARS,
        }
    }
}

/// A malformed retention period.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a retention period: {reason} (write e.g. 90d, 7y, 12h, 2w, 10m)")]
pub struct TtlError {
    /// The value as given.
    pub value: String,
    /// Why.
    pub reason: &'static str,
}

impl Ttl {
    /// `n` days.
    pub const fn days(n: u32) -> Self {
        Ttl {
            count: n,
            unit: Unit::Days,
        }
    }

    /// `n` calendar years.
    pub const fn years(n: u32) -> Self {
        Ttl {
            count: n,
            unit: Unit::Years,
        }
    }

    /// When an object last modified at `t` expires. Saturates at the latest time the
    /// `time` crate represents (a bogus far-future last-modified time never expires,
    /// the safe side for retention) instead of overflowing.
    pub fn expiry(&self, t: OffsetDateTime) -> OffsetDateTime {
        let far_future = || PrimitiveDateTime::MAX.assume_utc();
        let n = i64::from(self.count);
        let add = |d: Duration| t.checked_add(d).unwrap_or_else(far_future);
        match self.unit {
            Unit::Minutes => add(Duration::minutes(n)),
            Unit::Hours => add(Duration::hours(n)),
            Unit::Days => add(Duration::days(n)),
            Unit::Weeks => add(Duration::weeks(n)),
            Unit::Years => {
                let year = t.year().saturating_add(self.count as i32);
                match t.replace_year(year) {
                    Ok(x) => x,
                    // 29 February in a year without one: the day after 28 February.
                    Err(_) if t.month() == Month::February && t.day() == 29 => t
                        .replace_day(28)
                        .and_then(|x| x.replace_year(year))
                        .ok()
                        .and_then(|x| x.checked_add(Duration::days(1)))
                        .unwrap_or_else(far_future),
                    Err(_) => far_future(),
                }
            }
        }
    }

    /// Whether this period is at least as long as `other`, for an object written at
    /// `at` (periods in different units compare by the expiry they give).
    pub fn at_least(&self, other: &Ttl, at: OffsetDateTime) -> bool {
        self.expiry(at) >= other.expiry(at)
    }
}

impl FromStr for Ttl {
    type Err = TtlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| TtlError {
            value: s.chars().take(64).collect(),
            reason,
        };
        let Some(last) = s.chars().last() else {
            return Err(err("it is empty"));
        };
        let unit = match last {
            'm' => Unit::Minutes,
            'h' => Unit::Hours,
            'd' => Unit::Days,
            'w' => Unit::Weeks,
            'y' => Unit::Years,
            _ => return Err(err("the unit must be one of m, h, d, w, y")),
        };
        let digits = &s[..s.len() - 1];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("the count must be digits"));
        }
        let count: u32 = digits.parse().map_err(|_| err("the count is too large"))?;
        if count == 0 {
            return Err(err("the period must be longer than zero"));
        }
        if count > unit.max_count() {
            return Err(err("the period is longer than 100 years"));
        }
        Ok(Ttl { count, unit })
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.count, self.unit.suffix())
    }
}

impl Serialize for Ttl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ttl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    #[test]
    fn parses_the_spec_periods() {
        assert_eq!("90d".parse::<Ttl>().unwrap(), Ttl::days(90));
        assert_eq!("7y".parse::<Ttl>().unwrap(), Ttl::years(7));
        assert_eq!("10m".parse::<Ttl>().unwrap().to_string(), "10m");
        for bad in [
            "",
            "d",
            "90",
            "90x",
            "-1d",
            "0d",
            "1.5d",
            "101y",
            "9999999999d",
            "90 d",
            "٣d",
        ] {
            assert!(bad.parse::<Ttl>().is_err(), "{bad}");
        }
        let e = "90x".parse::<Ttl>().unwrap_err();
        assert!(e.to_string().contains("m, h, d, w, y"), "{e}");
    }

    #[test]
    fn years_are_calendar_years() {
        let t = datetime!(2025-03-01 03:00 UTC);
        assert_eq!(Ttl::years(7).expiry(t), datetime!(2032-03-01 03:00 UTC));
        let leap = datetime!(2024-02-29 12:00 UTC);
        assert_eq!(Ttl::years(1).expiry(leap), datetime!(2025-03-01 12:00 UTC));
        assert_eq!(Ttl::years(4).expiry(leap), datetime!(2028-02-29 12:00 UTC));
        assert_eq!(Ttl::days(90).expiry(t), datetime!(2025-05-30 03:00 UTC));
        assert!(Ttl::years(7).at_least(&Ttl::days(2555), t));
        assert!(!Ttl::days(2550).at_least(&Ttl::years(7), t));
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(s in "\\PC{0,12}") {
            if let Ok(t) = s.parse::<Ttl>() {
                prop_assert_eq!(t.to_string().parse::<Ttl>().unwrap(), t);
            }
        }

        #[test]
        fn expiry_never_panics_and_never_comes_before(
            secs in -377_705_116_800i64..=253_402_300_799i64,
            s in "[1-9][0-9]{0,5}[mhdwy]",
        ) {
            if let (Ok(t), Ok(ttl)) = (OffsetDateTime::from_unix_timestamp(secs), s.parse::<Ttl>()) {
                prop_assert!(ttl.expiry(t) >= t);
            }
        }

        #[test]
        fn expiry_is_later_and_monotone(n in 1u32..=36_500, secs in 0i64..4_000_000_000) {
            let t = OffsetDateTime::from_unix_timestamp(secs).unwrap();
            let d = Ttl::days(n);
            prop_assert!(d.expiry(t) > t);
            let y = Ttl::years(n.min(100));
            prop_assert!(y.expiry(t) > t);
            prop_assert!(Ttl::years(n.min(100)).expiry(t) >= Ttl::days(365 * n.min(100)).expiry(t));
        }
    }
}
