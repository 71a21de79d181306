//! Several hosts per database and which of them a pool may use: libpq's
//! `target_session_attrs` (PostgreSQL docs, "Parameter Key Words"), `max_replica_lag` above
//! which a standby is skipped, `failover_hold_timeout` for how long new transactions of a
//! read-write pool wait for a primary to appear, and `host_check_period` for how often each
//! host's role and lag are looked at again. Read by `PoolerSettings::read` and the database and
//! user sections; shown by SHOW CONFIG.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use toml::Value;

use super::duration::format as dur;
use super::reader::{self, Section};

/// Which servers a pool may use, with libpq's names and meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetSessionAttrs {
    /// Any server that accepts the connection, in host order.
    #[default]
    Any,
    /// A server that accepts writes: not in recovery, default_transaction_read_only off.
    ReadWrite,
    /// A server that does not accept writes by default: a standby, or read-only by default.
    ReadOnly,
    /// A server not in recovery.
    Primary,
    /// A server in recovery (a hot standby).
    Standby,
    /// A standby if one is usable, else the primary.
    PreferStandby,
}

impl TargetSessionAttrs {
    pub const ALL: [&'static str; 6] = [
        "any",
        "read-write",
        "read-only",
        "primary",
        "standby",
        "prefer-standby",
    ];

    /// Whether the pool needs the primary: while there is none, its new transactions wait
    /// (failover_hold_timeout) instead of failing.
    pub fn wants_primary(self) -> bool {
        matches!(
            self,
            TargetSessionAttrs::ReadWrite | TargetSessionAttrs::Primary
        )
    }

    /// Whether standbys come first (and replica lag matters).
    pub fn prefers_standby(self) -> bool {
        matches!(
            self,
            TargetSessionAttrs::ReadOnly
                | TargetSessionAttrs::Standby
                | TargetSessionAttrs::PreferStandby
        )
    }
}

impl fmt::Display for TargetSessionAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = match self {
            TargetSessionAttrs::Any => 0,
            TargetSessionAttrs::ReadWrite => 1,
            TargetSessionAttrs::ReadOnly => 2,
            TargetSessionAttrs::Primary => 3,
            TargetSessionAttrs::Standby => 4,
            TargetSessionAttrs::PreferStandby => 5,
        };
        f.write_str(Self::ALL[i])
    }
}

impl FromStr for TargetSessionAttrs {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "any" => TargetSessionAttrs::Any,
            "read-write" => TargetSessionAttrs::ReadWrite,
            "read-only" => TargetSessionAttrs::ReadOnly,
            "primary" => TargetSessionAttrs::Primary,
            "standby" => TargetSessionAttrs::Standby,
            "prefer-standby" => TargetSessionAttrs::PreferStandby,
            other => {
                let all: Vec<String> = Self::ALL.iter().map(|a| format!("\"{a}\"")).collect();
                return Err(format!("\"{other}\" is not one of {}", all.join(", ")));
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FailoverSettings {
    /// The default target of every pool; databases and users override it.
    pub target_session_attrs: TargetSessionAttrs,
    /// A standby whose replay is further behind than this is skipped; 0 = no limit.
    pub max_replica_lag: Duration,
    /// How long new transactions of a read-write (or primary) pool wait for a host to report
    /// itself primary once none does; then they fail with the reason.
    pub failover_hold_timeout: Duration,
    /// How often each host of a pool with several hosts, or with a target other than "any",
    /// is asked again for its role and replay lag; 0 = only when a server connects.
    pub host_check_period: Duration,
}

impl Default for FailoverSettings {
    fn default() -> Self {
        FailoverSettings {
            target_session_attrs: TargetSessionAttrs::Any,
            max_replica_lag: Duration::ZERO,
            failover_hold_timeout: Duration::from_secs(30),
            host_check_period: Duration::from_secs(1),
        }
    }
}

impl FailoverSettings {
    pub(super) fn read(&mut self, sec: &mut Section) {
        sec.set(
            "target_session_attrs",
            &mut self.target_session_attrs,
            reader::keyword,
        );
        let durations: [(&str, &mut Duration); 3] = [
            ("max_replica_lag", &mut self.max_replica_lag),
            ("failover_hold_timeout", &mut self.failover_hold_timeout),
            ("host_check_period", &mut self.host_check_period),
        ];
        for (key, target) in durations {
            sec.set(key, target, reader::duration);
        }
    }

    /// SHOW CONFIG values, in POOLER_KEYS order.
    pub(super) fn show_values(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "target_session_attrs",
                self.target_session_attrs.to_string(),
            ),
            ("max_replica_lag", dur(self.max_replica_lag)),
            ("failover_hold_timeout", dur(self.failover_hold_timeout)),
            ("host_check_period", dur(self.host_check_period)),
        ]
    }
}

/// `host`: one host, a TOML array of them, or PgBouncer's comma-separated list.
pub(super) fn host_list(v: &Value) -> Result<Vec<String>, String> {
    let hosts: Vec<String> = match v {
        Value::String(s) => s.split(',').map(|h| h.trim().to_string()).collect(),
        Value::Array(_) => reader::string_list(v)?,
        other => {
            return Err(format!(
                "expected a host, a list of hosts or \"host1,host2\", found {}",
                other.type_str()
            ))
        }
    };
    if hosts.iter().all(String::is_empty) {
        return Err("must not be empty".to_string());
    }
    if hosts.iter().any(String::is_empty) {
        return Err("must not hold an empty host".to_string());
    }
    Ok(hosts)
}

/// `port`: one port for every host, or one per host (as libpq).
pub(super) fn port_list(v: &Value) -> Result<Vec<u16>, String> {
    match v {
        Value::Array(items) if !items.is_empty() => items.iter().map(reader::port).collect(),
        Value::String(s) => s
            .split(',')
            .map(|p| {
                p.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("{p:?} is not a port between 1 and 65535"))
            })
            .collect(),
        other => reader::port(other).map(|p| vec![p]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_names_round_trip() {
        for name in TargetSessionAttrs::ALL {
            let t: TargetSessionAttrs = name.parse().unwrap();
            assert_eq!(t.to_string(), name);
        }
        let err = "readwrite".parse::<TargetSessionAttrs>().unwrap_err();
        assert!(err.contains("\"read-write\""), "{err}");
        assert!(TargetSessionAttrs::ReadWrite.wants_primary());
        assert!(TargetSessionAttrs::PreferStandby.prefers_standby());
        assert!(!TargetSessionAttrs::Any.wants_primary());
    }

    #[test]
    fn hosts_and_ports_come_as_lists_or_pgbouncer_strings() {
        let v = |s: &str| -> Value {
            toml::from_str::<toml::Table>(&format!("x = {s}")).unwrap()["x"].clone()
        };
        assert_eq!(host_list(&v("\"db1, db2\"")).unwrap(), ["db1", "db2"]);
        assert_eq!(host_list(&v("[\"db1\", \"db2\"]")).unwrap(), ["db1", "db2"]);
        assert!(host_list(&v("\"db1,,db2\"")).is_err());
        assert_eq!(port_list(&v("5432")).unwrap(), [5432]);
        assert_eq!(port_list(&v("[5432, 5433]")).unwrap(), [5432, 5433]);
        assert_eq!(port_list(&v("\"5432,5433\"")).unwrap(), [5432, 5433]);
        assert!(port_list(&v("\"5432,x\"")).is_err());
    }
}
