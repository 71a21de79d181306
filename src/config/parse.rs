//! Turns the text of pooler.toml into a `Config`: TOML syntax first, then each top-level
//! section by its reader, then the cross-key checks. Called by `Config::parse`/`Config::load`.
//! Collects every problem of the file before failing; a syntax error is the one exception
//! (nothing can be read past it) and is reported with its line and column only, because the
//! offending source line might hold a password.

use std::collections::BTreeMap;
use std::path::Path;

use toml::{Table, Value};

use super::database::{DatabaseSettings, UserSettings};
use super::error::{ConfigErrors, ConfigProblem};
use super::fleet::read_peers;
use super::pooler::{PoolerSettings, POOLER_KEYS};
use super::reader::toml_key;
use super::suggest;
use super::validate::validate;
use super::Config;

/// The top-level tables pooler.toml may contain.
pub const SECTIONS: &[&str] = &["pooler", "databases", "users", "peers"];

/// Parses and validates a whole configuration; see `Config::parse`.
pub fn parse_config(text: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
    let root: Table =
        toml::from_str(text).map_err(|e| ConfigErrors::single(syntax_problem(text, &e)))?;
    let mut problems = Vec::new();
    let mut config = Config::default();
    for (key, value) in &root {
        match (key.as_str(), value) {
            ("pooler", Value::Table(t)) => {
                config.pooler = PoolerSettings::read(t, base_dir, &mut problems);
            }
            ("databases", Value::Table(t)) => {
                config.databases =
                    read_named(t, "databases", &mut problems, DatabaseSettings::read);
            }
            ("users", Value::Table(t)) => {
                config.users = read_named(t, "users", &mut problems, UserSettings::read);
            }
            ("peers", Value::Table(t)) => config.peers = read_peers(t, &mut problems),
            (section, _) if SECTIONS.contains(&section) => problems.push(ConfigProblem::new(
                section,
                format!("must be a table: write a [{section}] header and put its keys below it"),
            )),
            (other, _) => problems.push(unknown_top_level(other, value)),
        }
    }
    validate(&config, &mut problems);
    // Sorted by key (stable, so one key's problems keep their order): the report reads like
    // the file, section by section, whatever order the checks ran in.
    problems.sort_by(|a, b| a.key.cmp(&b.key));
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(problems))
    }
}

/// Reads every `[<section>.<name>]` sub-table with `read`, keyed by name.
fn read_named<T>(
    table: &Table,
    section: &str,
    problems: &mut Vec<ConfigProblem>,
    read: fn(String, &Table, &mut Vec<ConfigProblem>) -> T,
) -> BTreeMap<String, T> {
    let mut named = BTreeMap::new();
    for (name, value) in table {
        let path = format!("{section}.{}", toml_key(name));
        match value {
            Value::Table(t) => {
                named.insert(name.clone(), read(path, t, problems));
            }
            // Most likely a PgBouncer line such as `roster = "host=... port=..."`.
            _ => problems.push(ConfigProblem::new(
                path.clone(),
                format!(
                    "must be a table: write a [{path}] header with one key per line \
                     (PgBouncer's \"host=... port=...\" strings are not supported)"
                ),
            )),
        }
    }
    named
}

fn unknown_top_level(key: &str, value: &Value) -> ConfigProblem {
    let message = if key == "pgbouncer" {
        "unknown section; PgBouncer's [pgbouncer] section is called [pooler] here".to_string()
    } else if !value.is_table() && POOLER_KEYS.contains(&key) {
        "key outside any section; move it below the [pooler] header".to_string()
    } else if value.is_table() {
        format!(
            "unknown section; expected [pooler], [databases.<name>], [users.<name>] or \
             [peers.<peer_id>]{}",
            suggest::did_you_mean(key, SECTIONS)
        )
    } else {
        format!(
            "unknown key outside any section{}",
            suggest::did_you_mean(key, POOLER_KEYS)
        )
    };
    ConfigProblem::new(toml_key(key), message)
}

/// A TOML syntax error as one problem with line and column, without the source snippet.
fn syntax_problem(text: &str, error: &toml::de::Error) -> ConfigProblem {
    let location = match error.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let before = &text[..start];
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = before[line_start..].chars().count() + 1;
            format!(" at line {line}, column {column}")
        }
        None => String::new(),
    };
    // toml's message can span lines; keep one problem per line.
    let message: Vec<&str> = error
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    ConfigProblem::new(
        "",
        format!("TOML syntax error{location}: {}", message.join("; ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match parse_config(text, Path::new("/etc/pgsluice")) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn empty_file_is_the_default_config() {
        let config = parse_config("", Path::new("")).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn syntax_errors_give_line_and_column_but_not_the_line() {
        let text = "[pooler]\nlisten_port = 6432\n[databases.x]\npassword = \"hunter2\nport = 1\n";
        let shown = problems(text);
        assert_eq!(shown.len(), 1);
        assert!(
            shown[0].starts_with("TOML syntax error at line 4, column "),
            "{}",
            shown[0]
        );
        assert!(!shown[0].contains("hunter2"), "{}", shown[0]);
        assert!(!shown[0].contains('\n'), "{}", shown[0]);
        let duplicate = problems("[pooler]\nlisten_port = 1\nlisten_port = 2\n");
        assert_eq!(
            duplicate,
            ["TOML syntax error at line 3, column 1: duplicate key `listen_port` in table `pooler`"]
        );
    }

    #[test]
    fn unknown_sections_and_stray_keys() {
        let shown = problems("listen_port = 1\nsyslog = 'x'\n[pgbouncer]\n[databse]\n[metrics]\n");
        assert_eq!(
            shown,
            vec![
                "databse: unknown section; expected [pooler], [databases.<name>], \
                 [users.<name>] or [peers.<peer_id>]; did you mean \"databases\"?",
                "listen_port: key outside any section; move it below the [pooler] header",
                "metrics: unknown section; expected [pooler], [databases.<name>], \
                 [users.<name>] or [peers.<peer_id>]",
                "pgbouncer: unknown section; PgBouncer's [pgbouncer] section is called [pooler] here",
                "syslog: key outside any section; move it below the [pooler] header",
            ]
        );
    }

    #[test]
    fn sections_of_the_wrong_shape() {
        let shown =
            problems("pooler = 1\n[databases]\nroster = 'host=db port=5432'\n[users]\nbob = 2\n");
        assert_eq!(shown.len(), 3, "{shown:#?}");
        assert!(
            shown[0].starts_with("databases.roster: must be a table: write a [databases.roster]")
        );
        assert!(shown[1].starts_with("pooler: must be a table"));
        assert!(shown[2].starts_with("users.bob: must be a table"));
    }

    #[test]
    fn empty_names_are_refused() {
        let shown = problems("[databases.\"\"]\n[users.\"\"]\n");
        assert_eq!(
            shown,
            vec![
                "databases.\"\": database name must not be empty",
                "users.\"\": user name must not be empty",
            ]
        );
    }
}
