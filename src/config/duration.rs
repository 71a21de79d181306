//! Duration settings: a number of seconds (integer or float, as in PgBouncer's ini file) or a
//! string with a unit ("500us", "250ms", "15s", "2m", "1h"). Called by the section reader for
//! every timeout/interval key and by SHOW CONFIG to print them back. Negative, NaN or infinite
//! values are refused; `0` keeps PgBouncer's meaning ("disabled") where the key documents it.

use std::time::Duration;

use toml::Value;

/// Units accepted after a number, longest first so "ms" is not read as "m" + "s".
const UNITS: &[(&str, f64)] = &[
    ("min", 60.0),
    ("us", 1e-6),
    ("ms", 1e-3),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3600.0),
];

const HINT: &str = "expected seconds (e.g. 15 or 1.5) or a string with a unit: \
                    \"500us\", \"250ms\", \"15s\", \"2m\", \"1h\"";

/// Reads a TOML value as a duration.
pub fn from_value(value: &Value) -> Result<Duration, String> {
    match value {
        Value::Integer(n) => from_seconds(*n as f64),
        Value::Float(f) => from_seconds(*f),
        Value::String(s) => parse(s),
        other => Err(format!("{HINT}; found {}", describe(other))),
    }
}

/// Parses a duration string: a non-negative number, optionally followed by a unit.
/// A bare number means seconds, as it does in PgBouncer's ini file.
pub fn parse(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let (number, scale) = UNITS
        .iter()
        .find_map(|(unit, scale)| trimmed.strip_suffix(unit).map(|n| (n, *scale)))
        .unwrap_or((trimmed, 1.0));
    let number = number.trim_end();
    // Only plain decimals: f64's parser would also take "inf", "nan" and "1e3".
    let plain = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.chars().filter(|&c| c == '.').count() <= 1
        && number != ".";
    let parsed = if plain {
        number.parse::<f64>().ok()
    } else {
        None
    };
    match parsed {
        Some(n) => from_seconds(n * scale).map_err(|_| format!("{text:?} is out of range")),
        None => Err(format!("{text:?} is not a duration; {HINT}")),
    }
}

fn from_seconds(seconds: f64) -> Result<Duration, String> {
    if !seconds.is_finite() {
        return Err(format!("{seconds} is not a number of seconds"));
    }
    if seconds < 0.0 {
        return Err(format!("must not be negative (found {seconds})"));
    }
    Duration::try_from_secs_f64(seconds.max(0.0))
        .map_err(|_| format!("{seconds} seconds is out of range"))
}

/// Prints a duration in the shortest exact form the parser reads back ("0", "250ms", "15s").
pub fn format(duration: Duration) -> String {
    let micros = duration.as_micros();
    if micros == 0 {
        "0".to_string()
    } else if micros % 3_600_000_000 == 0 {
        format!("{}h", micros / 3_600_000_000)
    } else if micros % 60_000_000 == 0 {
        format!("{}m", micros / 60_000_000)
    } else if micros % 1_000_000 == 0 {
        format!("{}s", micros / 1_000_000)
    } else if micros % 1_000 == 0 {
        format!("{}ms", micros / 1_000)
    } else {
        format!("{micros}us")
    }
}

/// "a string", "an integer", ... for messages about wrong types.
pub fn describe(value: &Value) -> String {
    let kind = value.type_str();
    let article = if kind.starts_with(['a', 'i']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(toml_text: &str) -> Value {
        let table: toml::Table = toml::from_str(&format!("v = {toml_text}")).unwrap();
        table["v"].clone()
    }

    #[test]
    fn numbers_are_seconds() {
        assert_eq!(from_value(&value("15")), Ok(Duration::from_secs(15)));
        assert_eq!(from_value(&value("1.5")), Ok(Duration::from_millis(1500)));
        assert_eq!(from_value(&value("0")), Ok(Duration::ZERO));
        assert_eq!(from_value(&value("0.0")), Ok(Duration::ZERO));
    }

    #[test]
    fn strings_with_units() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("2min"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse(" 30 s "), Ok(Duration::from_secs(30)));
        assert_eq!(parse("60"), Ok(Duration::from_secs(60)));
    }

    #[test]
    fn bad_durations_are_refused_with_a_hint() {
        for bad in [
            "", "s", "fast", "5x", "-1s", "1.2.3s", "inf", "nan", "1e3", "ms5", ".s",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
        assert!(from_value(&value("-3")).unwrap_err().contains("negative"));
        assert!(from_value(&value("-0.5")).unwrap_err().contains("negative"));
        assert!(from_value(&value("nan")).is_err());
        assert!(from_value(&value("inf")).is_err());
        let err = from_value(&value("true")).unwrap_err();
        assert!(err.ends_with("found a boolean"), "{err}");
        let err = from_value(&value("[1]")).unwrap_err();
        assert!(err.ends_with("found an array"), "{err}");
    }

    #[test]
    fn format_reads_back() {
        for d in [
            Duration::ZERO,
            Duration::from_micros(7),
            Duration::from_millis(250),
            Duration::from_millis(1500),
            Duration::from_secs(15),
            Duration::from_secs(90),
            Duration::from_secs(120),
            Duration::from_secs(3600),
        ] {
            assert_eq!(parse(&format(d)), Ok(d), "{}", format(d));
        }
        assert_eq!(format(Duration::from_secs(3600)), "1h");
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
    }
}
