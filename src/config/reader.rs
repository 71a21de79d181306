//! Reads one TOML section key by key, recording every problem instead of stopping at the
//! first: unknown keys (with a suggestion), wrong types and out-of-range values. The settings
//! modules (pooler, database) drive it; a bad key leaves its field at the default so that the
//! remaining keys are still checked.

use std::str::FromStr;

use toml::{Table, Value};

use super::duration::{self, describe};
use super::error::ConfigProblem;
use super::suggest;

/// A section being read, with the sink for the problems found in it.
pub struct Section<'a> {
    path: String,
    table: &'a Table,
    problems: &'a mut Vec<ConfigProblem>,
}

impl<'a> Section<'a> {
    /// Starts reading `table` found at dotted `path`; reports its keys not in `known` at once.
    pub fn new(
        path: String,
        table: &'a Table,
        known: &[&str],
        problems: &'a mut Vec<ConfigProblem>,
    ) -> Self {
        for key in table.keys().filter(|k| !known.contains(&k.as_str())) {
            problems.push(ConfigProblem::new(
                format!("{path}.{}", toml_key(key)),
                format!(
                    "unknown key in [{path}]{}",
                    suggest::did_you_mean(key, known)
                ),
            ));
        }
        Section {
            path,
            table,
            problems,
        }
    }

    /// The dotted path of `key` in this section, as problems name it.
    pub fn key_path(&self, key: &str) -> String {
        format!("{}.{}", self.path, toml_key(key))
    }

    /// Whether the section sets `key` at all.
    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// Records a problem with `key` found by a check beyond its own type and range.
    pub fn problem(&mut self, key: &str, message: impl Into<String>) {
        let key = self.key_path(key);
        self.problems.push(ConfigProblem::new(key, message));
    }

    /// The converted value of `key`; None when absent, or when invalid (then recorded).
    pub fn read<T>(
        &mut self,
        key: &str,
        convert: impl Fn(&Value) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.table.get(key)?;
        match convert(value) {
            Ok(v) => Some(v),
            Err(message) => {
                self.problem(key, message);
                None
            }
        }
    }

    /// Overwrites `target` (holding the default) with the value of `key` when present and valid.
    pub fn set<T>(
        &mut self,
        key: &str,
        target: &mut T,
        convert: impl Fn(&Value) -> Result<T, String>,
    ) {
        if let Some(v) = self.read(key, convert) {
            *target = v;
        }
    }
}

/// `name` as a TOML key: bare when it can be, quoted otherwise (`"*"`).
pub fn toml_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_string()
    } else {
        format!("{name:?}")
    }
}

fn wrong_type(expected: &str, found: &Value) -> String {
    format!("expected {expected}, found {}", describe(found))
}

/// true/false; also 0/1, which PgBouncer's ini files use.
pub fn boolean(v: &Value) -> Result<bool, String> {
    match v {
        Value::Boolean(b) => Ok(*b),
        Value::Integer(0) => Ok(false),
        Value::Integer(1) => Ok(true),
        other => Err(wrong_type("true or false", other)),
    }
}

/// Any string. Never echoes the value: this reads passwords too.
pub fn string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(wrong_type("a string", other)),
    }
}

/// A non-empty string.
pub fn non_empty_string(v: &Value) -> Result<String, String> {
    let s = string(v)?;
    if s.trim().is_empty() {
        return Err("must not be empty".to_string());
    }
    Ok(s)
}

/// An array of strings, or one string holding a comma-separated list (PgBouncer's form).
pub fn string_list(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                Value::String(_) => Err("list entries must not be empty".to_string()),
                other => Err(wrong_type("a list of strings", other)),
            })
            .collect(),
        other => Err(wrong_type("a string or an array of strings", other)),
    }
}

/// An integer in `min..=max`.
pub fn int_in(min: i64, max: i64) -> impl Fn(&Value) -> Result<i64, String> {
    move |v| match v {
        Value::Integer(n) if (min..=max).contains(n) => Ok(*n),
        Value::Integer(n) => Err(if max == i64::MAX {
            format!("must be at least {min} (found {n})")
        } else {
            format!("must be between {min} and {max} (found {n})")
        }),
        other => Err(wrong_type("an integer", other)),
    }
}

/// A count: 0 or more.
pub fn count(v: &Value) -> Result<usize, String> {
    int_in(0, i64::MAX)(v).map(to_usize)
}

/// A count that must be at least one (pool sizes, client limits).
pub fn positive(v: &Value) -> Result<usize, String> {
    int_in(1, i64::MAX)(v).map(to_usize)
}

fn to_usize(n: i64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// A TCP port.
pub fn port(v: &Value) -> Result<u16, String> {
    int_in(1, 65535)(v).map(|n| n as u16)
}

/// A duration (see the duration module).
pub fn duration(v: &Value) -> Result<std::time::Duration, String> {
    duration::from_value(v)
}

/// A keyword of one of the config enums (pool_mode, auth_type, log_format).
pub fn keyword<T: FromStr<Err = String>>(v: &Value) -> Result<T, String> {
    match v {
        Value::String(s) => s.parse(),
        other => Err(wrong_type("a string", other)),
    }
}

/// A Unix file mode: an integer (write 0o777 in TOML) or an octal string ("0777").
pub fn file_mode(v: &Value) -> Result<u32, String> {
    let mode = match v {
        Value::Integer(n) => u32::try_from(*n).ok(),
        Value::String(s) => {
            let digits = s.trim().trim_start_matches("0o");
            u32::from_str_radix(digits, 8).ok()
        }
        other => return Err(wrong_type("a mode like 0o777 or \"0777\"", other)),
    };
    match mode {
        Some(m) if m <= 0o777 => Ok(m),
        _ => Err("expected a permission mode between 0o000 and 0o777 \
                  (TOML integers are decimal: write 0o777 or \"0777\")"
            .to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn unknown_keys_are_reported_with_a_suggestion() {
        let t = table("listen_prot = 1\nlogfile = 'x'\nlisten_port = 2");
        let mut problems = Vec::new();
        let mut s = Section::new("pooler".into(), &t, &["listen_port"], &mut problems);
        assert_eq!(s.read("listen_port", port), Some(2));
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "pooler.listen_prot: unknown key in [pooler]; did you mean \"listen_port\"?",
                "pooler.logfile: unknown key in [pooler]",
            ]
        );
    }

    #[test]
    fn bad_values_are_recorded_and_leave_the_default() {
        let t = table("a = 'ten'\nb = 0\nc = 70000\nd = 3");
        let mut problems = Vec::new();
        let mut s = Section::new(
            "databases.\"*\"".into(),
            &t,
            &["a", "b", "c", "d"],
            &mut problems,
        );
        let mut a = 5usize;
        s.set("a", &mut a, count);
        assert_eq!(a, 5);
        assert_eq!(s.read("b", positive), None);
        assert_eq!(s.read("c", port), None);
        assert_eq!(s.read("d", positive), Some(3));
        assert_eq!(s.read("missing", positive), None);
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "databases.\"*\".a: expected an integer, found a string",
                "databases.\"*\".b: must be at least 1 (found 0)",
                "databases.\"*\".c: must be between 1 and 65535 (found 70000)",
            ]
        );
    }

    #[test]
    fn converters() {
        let t = table(
            "b1 = true\nb2 = 0\nb3 = 'yes'\nl1 = 'a, b,,c'\nl2 = ['x', 'y']\nl3 = [1]\n\
             l4 = ['']\nm1 = 0o750\nm2 = '0777'\nm3 = 777\ns = 5\nk = 'json'",
        );
        assert_eq!(boolean(&t["b1"]), Ok(true));
        assert_eq!(boolean(&t["b2"]), Ok(false));
        assert!(boolean(&t["b3"]).is_err());
        assert_eq!(string_list(&t["l1"]).unwrap(), ["a", "b", "c"]);
        assert_eq!(string_list(&t["l2"]).unwrap(), ["x", "y"]);
        assert_eq!(
            string_list(&t["l3"]).unwrap_err(),
            "expected a list of strings, found an integer"
        );
        assert!(string_list(&t["l4"]).is_err());
        assert_eq!(file_mode(&t["m1"]), Ok(0o750));
        assert_eq!(file_mode(&t["m2"]), Ok(0o777));
        assert!(file_mode(&t["m3"]).unwrap_err().contains("write 0o777"));
        assert_eq!(
            string(&t["s"]).unwrap_err(),
            "expected a string, found an integer"
        );
        assert_eq!(
            keyword::<super::super::LogFormat>(&t["k"]),
            Ok(super::super::LogFormat::Json)
        );
    }

    #[test]
    fn keys_are_quoted_only_when_needed() {
        assert_eq!(toml_key("roster"), "roster");
        assert_eq!(toml_key("pos-1"), "pos-1");
        assert_eq!(toml_key("*"), "\"*\"");
        assert_eq!(toml_key("a.b"), "\"a.b\"");
    }
}
