//! A pgbouncer.ini turned into the pooler.toml it means: [pgbouncer] becomes [pooler] (the
//! same key names), each [databases], [users] and [peers] connection string becomes its own
//! table, and values get the types pooler.toml has. PgBouncer keys pgsluice does not implement
//! are named in warnings, or refused where ignoring them would change who may log in (an
//! ident map). Every key remembers its `file:line`, so problems found later by the TOML
//! reader name where to look.

use std::collections::BTreeMap;

use toml::{Table, Value};

use super::error::{ConfigErrors, ConfigProblem};
use super::ini::{connection_string, IniEntry};

/// pooler.toml's tables, where each key came from, and what was left out.
#[derive(Debug, Default)]
pub struct Converted {
    pub table: Table,
    /// Dotted TOML key (`pooler.listen_port`, `databases.app`) → `file:line`.
    pub origins: BTreeMap<String, String>,
    pub warnings: Vec<String>,
    /// Lines that cannot be taken over (refused keys, unknown sections, broken connection
    /// strings), reported with the TOML reader's problems so that all come at once.
    pub refused: Vec<ConfigProblem>,
}

impl Converted {
    /// pooler.toml text, with a header saying where it came from.
    pub fn to_toml(&self, source: &str) -> String {
        let body = toml::to_string_pretty(&self.table).unwrap_or_default();
        format!("# pooler.toml converted from {source} by `pgsluice convert`\n\n{body}")
    }

    /// The TOML reader's problems named by the ini file and line they come from, after the
    /// lines the conversion refused.
    pub fn locate(&self, errors: ConfigErrors) -> ConfigErrors {
        ConfigErrors(
            self.refused
                .iter()
                .cloned()
                .chain(errors.0.into_iter().map(|p| match self.origin_of(&p.key) {
                    Some((origin, shown)) => ConfigProblem::new(
                        format!("{origin}: {shown}"),
                        p.message.replace("[pooler]", "[pgbouncer]"),
                    ),
                    None => p,
                }))
                .collect(),
        )
    }

    /// The origin of the longest recorded prefix of `key`, and the key as the ini names it.
    fn origin_of(&self, key: &str) -> Option<(String, String)> {
        let mut path = key.to_string();
        loop {
            if let Some(origin) = self.origins.get(&path) {
                let shown = match key.split_once('.') {
                    Some(("pooler", k)) => format!("[pgbouncer] {k}"),
                    Some((section, rest)) => format!("[{section}] {rest}"),
                    None => key.to_string(),
                };
                return Some((origin.clone(), shown));
            }
            path = path.rsplit_once('.')?.0.to_string();
        }
    }
}

/// [pgbouncer] keys whose value is text even when it looks like a number or a boolean.
const TEXT_KEYS: &[&str] = &[
    "unix_socket_mode",
    "unix_socket_dir",
    "listen_addr",
    "admin_users",
    "stats_users",
    "auth_file",
    "server_reset_query",
    "server_check_query",
    "metrics_addr",
    "peers_dns",
    "ignore_startup_parameters",
    "host",
    "dbname",
    "user",
    "password",
    "connect_query",
    "application_name",
    "auth_user",
    "auth_query",
    "auth_dbname",
    "auth_hba_file",
    "logfile",
    "pidfile",
    "client_encoding",
    "datestyle",
    "timezone",
];

/// PgBouncer keys pgsluice does not implement but can run without: warned about, then left out.
const IGNORED: &[(&str, &str)] = &[
    (
        "user",
        "start pgsluice with -u <user>, as PgBouncer's command line allows",
    ),
    (
        "unix_socket_group",
        "set the group of unix_socket_dir instead",
    ),
    ("listen_backlog", "pgsluice's backlog is 1024"),
    (
        "server_round_robin",
        "pgsluice reuses the most recently released server",
    ),
    ("disable_pqexec", "pgsluice answers every simple query"),
    ("sbuf_loopcnt", "pgsluice needs no such tuning"),
    (
        "server_fast_close",
        "pgsluice closes servers at their transaction's end when draining",
    ),
    ("log_stats", "the stats line follows stats_period"),
    (
        "autodb_idle_timeout",
        "pools of the \"*\" fallback stay until their clients leave",
    ),
    ("suspend_timeout", "pgsluice has no SUSPEND"),
    ("tcp_defer_accept", "no TCP tuning keys"),
    ("tcp_socket_buffer", "no TCP tuning keys"),
    (
        "tcp_keepcnt",
        "no TCP tuning keys beyond tcp_keepalive and tcp_user_timeout",
    ),
    (
        "tcp_keepidle",
        "no TCP tuning keys beyond tcp_keepalive and tcp_user_timeout",
    ),
    (
        "tcp_keepintvl",
        "no TCP tuning keys beyond tcp_keepalive and tcp_user_timeout",
    ),
    ("dns_max_ttl", "names are resolved when a server connects"),
    (
        "dns_nxdomain_ttl",
        "names are resolved when a server connects",
    ),
    (
        "dns_zone_check_period",
        "names are resolved when a server connects",
    ),
    ("resolv_conf", "names are resolved by the system resolver"),
    (
        "client_tls_ciphers",
        "rustls offers its own safe cipher suites",
    ),
    ("client_tls_ecdhcurve", "rustls chooses the key exchange"),
    ("client_tls_dheparams", "rustls does not use DHE"),
    (
        "server_tls_ciphers",
        "rustls offers its own safe cipher suites",
    ),
    (
        "conffile",
        "the configuration file is the one pgsluice was started with",
    ),
    ("service_name", "a Windows service name"),
    ("job_name", "a Windows service name"),
    (
        "track_extra_parameters",
        "pgsluice follows every session setting a client makes",
    ),
];

/// Connection-string keys of [databases], [users] and [peers] pgsluice does without.
const ENTRY_IGNORED: &[(&str, &str)] = &[
    (
        "load_balance_hosts",
        "pgsluice tries the hosts in order, or by role with target_session_attrs",
    ),
    (
        "server_lifetime",
        "set server_lifetime in [pgbouncer]; it applies to every pool",
    ),
    (
        "reserve_pool_size",
        "set reserve_pool per database, or reserve_pool_size in [pgbouncer]",
    ),
    ("pool_size", "a peer is only ever sent cancel requests"),
];

/// PgBouncer keys whose absence would change who may log in: refused, not ignored.
const REFUSED: &[&str] = &["auth_ident_file"];

/// Turns the entries of a pgbouncer.ini into pooler.toml's tables; what cannot be taken over
/// is in `refused`.
pub fn convert(entries: &[IniEntry]) -> Converted {
    let mut out = Converted::default();
    let mut problems = Vec::new();
    for e in entries {
        let section = match e.section.as_str() {
            "pgbouncer" => "pooler",
            "databases" | "users" | "peers" => e.section.as_str(),
            other => {
                problems.push(ConfigProblem::new(
                    format!("{}: [{other}]", e.origin),
                    "unknown section; expected [pgbouncer], [databases], [users] or [peers]",
                ));
                continue;
            }
        };
        if section == "pooler" {
            pooler_key(&mut out, &mut problems, e);
        } else {
            named_entry(&mut out, &mut problems, section, e);
        }
    }
    // PgBouncer listens on no TCP address unless told to (pooler.toml's default is loopback).
    if let Some(Value::Table(pooler)) = out.table.get_mut("pooler") {
        pooler
            .entry("listen_addr")
            .or_insert_with(|| Value::String(String::new()));
    } else {
        let mut pooler = Table::new();
        pooler.insert("listen_addr".into(), Value::String(String::new()));
        out.table.insert("pooler".into(), Value::Table(pooler));
    }
    out.refused = problems;
    out
}

fn pooler_key(out: &mut Converted, problems: &mut Vec<ConfigProblem>, e: &IniEntry) {
    let key = e.key.to_ascii_lowercase();
    match left_out(&key, &e.origin, "[pgbouncer]", out) {
        Fate::Keep => {}
        Fate::Ignore => return,
        Fate::Refuse(problem) => return problems.push(problem),
    }
    let pooler = out
        .table
        .entry("pooler")
        .or_insert_with(|| Value::Table(Table::new()));
    if let Value::Table(t) = pooler {
        t.insert(key.clone(), typed(&key, &e.value));
    }
    out.origins
        .insert(format!("pooler.{key}"), e.origin.clone());
}

/// A [databases], [users] or [peers] line: its connection string becomes a table.
fn named_entry(
    out: &mut Converted,
    problems: &mut Vec<ConfigProblem>,
    section: &str,
    e: &IniEntry,
) {
    let pairs = match connection_string(&e.value) {
        Ok(pairs) => pairs,
        Err(why) => {
            problems.push(ConfigProblem::new(
                format!("{}: [{section}] {}", e.origin, e.key),
                format!("not a connection string: {why}"),
            ));
            return;
        }
    };
    let mut entry = Table::new();
    for (key, value) in pairs {
        let key = key.to_ascii_lowercase();
        let place = format!("[{section}] {}", e.key);
        match left_out(&key, &e.origin, &place, out) {
            Fate::Keep => {}
            Fate::Ignore => continue,
            Fate::Refuse(problem) => {
                problems.push(problem);
                continue;
            }
        }
        // PgBouncer spells the database's reserve both ways.
        let key = if key == "reserve_pool_size" && section == "databases" {
            "reserve_pool".to_string()
        } else {
            key
        };
        entry.insert(key.clone(), typed(&key, &value));
    }
    let all = out
        .table
        .entry(section)
        .or_insert_with(|| Value::Table(Table::new()));
    if let Value::Table(t) = all {
        t.insert(e.key.clone(), Value::Table(entry));
    }
    out.origins
        .insert(format!("{section}.{}", e.key), e.origin.clone());
}

/// What becomes of one PgBouncer key.
enum Fate {
    Keep,
    /// Not implemented and safe to run without: warned about, left out.
    Ignore,
    Refuse(ConfigProblem),
}

/// Refuses keys pgsluice must not ignore, warns about (and leaves out) those it may.
fn left_out(key: &str, origin: &str, place: &str, out: &mut Converted) -> Fate {
    if place != "[pgbouncer]" && matches!(key, "auth_query" | "auth_dbname") {
        return Fate::Refuse(ConfigProblem::new(
            format!("{origin}: {place} {key}"),
            "auth_query and auth_dbname are set in [pgbouncer] only here (a database's own \
             would change how its users are looked up)",
        ));
    }
    if REFUSED.contains(&key) {
        return Fate::Refuse(ConfigProblem::new(
            format!("{origin}: {place} {key}"),
            "pgsluice does not implement ident maps; map users in the auth_hba_file instead \
             (ignoring the key would change who may log in)",
        ));
    }
    // In a connection string `user` is the forced user, not [pgbouncer]'s run-as user; the
    // entry keys pgsluice does without depend on the section (pool_size only in [peers]).
    let ignored = if place == "[pgbouncer]" {
        IGNORED.iter().find(|(k, _)| *k == key)
    } else {
        ENTRY_IGNORED.iter().find(|(k, _)| {
            *k == key
                && (key != "pool_size" || place.starts_with("[peers]"))
                && (key != "reserve_pool_size" || place.starts_with("[users]"))
        })
    };
    match ignored {
        Some((_, why)) => {
            out.warnings.push(format!(
                "{origin}: {place} {key} is not implemented by pgsluice and is ignored: {why}"
            ));
            Fate::Ignore
        }
        None => Fate::Keep,
    }
}

/// The TOML value for an ini value: numbers and booleans as such (PgBouncer writes 0/1 for
/// booleans and seconds for durations, both of which pooler.toml accepts), text otherwise.
fn typed(key: &str, value: &str) -> Value {
    if !TEXT_KEYS.contains(&key) {
        if let Ok(n) = value.parse::<i64>() {
            return Value::Integer(n);
        }
        if let Ok(f) = value.parse::<f64>() {
            if value.contains('.') {
                return Value::Float(f);
            }
        }
        match value.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" => return Value::Boolean(true),
            "off" | "false" | "no" => return Value::Boolean(false),
            _ => {}
        }
    }
    Value::String(value.to_string())
}

#[cfg(test)]
mod tests;
