//! Durations as written in the config: an integer number of seconds, or a string with a unit
//! suffix (`250ms`, `30s`, `2m`, `1h`, `5d`).
//!
//! The fast path keeps time as wrapping 32-bit milliseconds and compares deadlines by the
//! sign of their difference, which is only sound for spans below 2^31 ms (about 24.8 days):
//! hence the limit of 24 days.

use std::time::Duration;

use super::values::ParseError;

/// The longest duration accepted (exclusive).
pub const MAX: Duration = Duration::from_secs(24 * 24 * 3600);

/// Parses a duration as written (see the module docs) and checks `0 < d < 24 days`.
pub fn parse(s: &str) -> Result<Duration, ParseError> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = s.split_at(digits);
    if num.is_empty() {
        return Err(ParseError(format!(
            "`{s}` is not a duration (write seconds as an integer, or a number with a unit: ms, s, m, h, d)"
        )));
    }
    let ms_per_unit: u64 = match unit {
        "" | "s" => 1000,
        "ms" => 1,
        "m" => 60 * 1000,
        "h" => 3600 * 1000,
        "d" => 24 * 3600 * 1000,
        _ => {
            return Err(ParseError(format!(
                "`{s}` is not a duration: unknown unit `{unit}` (use ms, s, m, h or d)"
            )))
        }
    };
    let too_long = || {
        ParseError(format!(
            "`{s}` is too long: durations must be below 24 days (the fast path keeps time in wrapping 32-bit milliseconds)"
        ))
    };
    let ms = num
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(ms_per_unit))
        .ok_or_else(too_long)?;
    let d = Duration::from_millis(ms);
    if d.is_zero() {
        return Err(ParseError(format!(
            "`{s}` is zero: durations must be greater than zero"
        )));
    }
    if d >= MAX {
        return Err(too_long());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("5d"), Ok(Duration::from_secs(5 * 86400)));
        assert_eq!(parse("23d"), Ok(Duration::from_secs(23 * 86400)));
    }

    #[test]
    fn limits() {
        assert!(parse("0").unwrap_err().0.contains("greater than zero"));
        assert!(parse("0ms").unwrap_err().0.contains("greater than zero"));
        assert!(parse("24d").unwrap_err().0.contains("below 24 days"));
        assert!(parse("2073600").unwrap_err().0.contains("below 24 days"));
        assert_eq!(parse("2073599"), Ok(Duration::from_secs(24 * 86400 - 1)));
        assert!(parse("99999999999999999999d")
            .unwrap_err()
            .0
            .contains("below 24 days"));
    }

    #[test]
    fn malformed() {
        assert_eq!(
            parse("30x").unwrap_err().0,
            "`30x` is not a duration: unknown unit `x` (use ms, s, m, h or d)"
        );
        for bad in ["", "s", "-5", "1.5h", " 30s", "30 s", "30S", "1h30m"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
