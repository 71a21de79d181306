//! Checks that span several keys, run by `Config::parse` after every key was read on its own.
//! Single-key type and range checks live in the reader; here live the combinations that cannot
//! work (nothing to listen on, a minimum pool above its maximum, ...).

use std::net::SocketAddr;
use std::time::Duration;

use super::error::ConfigProblem;
use super::reader::toml_key;
use super::Config;

/// Appends every cross-key problem of `config` to `problems`.
pub fn validate(config: &Config, problems: &mut Vec<ConfigProblem>) {
    check_pooler(config, problems);
    check_databases(config, problems);
    for name in config.users.keys().filter(|n| n.is_empty()) {
        problems.push(ConfigProblem::new(
            format!("users.{}", toml_key(name)),
            "user name must not be empty",
        ));
    }
}

fn check_pooler(config: &Config, problems: &mut Vec<ConfigProblem>) {
    let p = &config.pooler;
    p.tls.check(p.auth_type, problems);
    let mut problem = |key: &str, message: String| {
        problems.push(ConfigProblem::new(format!("pooler.{key}"), message));
    };
    if p.listen_addr.is_empty() && p.unix_socket_dir.is_empty() {
        problem(
            "listen_addr",
            "nothing to listen on: listen_addr is empty and unix_socket_dir = \"\"; \
             set one of them"
                .to_string(),
        );
    }
    if p.notify_queue_size == 0 {
        problem(
            "notify_queue_size",
            "must be at least 1: each LISTEN client needs room for one notification".to_string(),
        );
    }
    if p.min_pool_size > p.default_pool_size {
        problem(
            "min_pool_size",
            format!(
                "{} is larger than default_pool_size ({})",
                p.min_pool_size, p.default_pool_size
            ),
        );
    }
    for name in &p.custom_settings {
        // PostgreSQL docs, "Customized Options": an extension prefix, a dot, a name.
        let qualified =
            name.split('.').count() >= 2 && name.split('.').all(|part| !part.is_empty());
        if !qualified {
            problem(
                "custom_settings",
                format!("{name:?} is not a custom setting name such as \"app.tenant_id\""),
            );
        }
    }
    if p.auth_type == super::AuthType::Hba && p.auth_query.auth_hba_file.is_none() {
        problem(
            "auth_hba_file",
            "must name a pg_hba.conf-style file when auth_type = \"hba\"".to_string(),
        );
    }
    let peering = !config.peers.is_empty() || !p.fleet.peers_dns.is_empty();
    if peering && p.peer_id == 0 {
        problem(
            "peer_id",
            "is 0, which turns peering off, but [peers] or peers_dns is set: give this \
             instance its own peer_id (or set peer_id_from_hostname)"
                .to_string(),
        );
    }
    if p.stats_period == Duration::ZERO {
        problem("stats_period", "must be longer than zero".to_string());
    }
    if !p.metrics_addr.is_empty() && p.metrics_addr.parse::<SocketAddr>().is_err() {
        problem(
            "metrics_addr",
            format!(
                "{:?} is not an ip:port address such as \"127.0.0.1:9127\" (\"\" turns metrics off)",
                p.metrics_addr
            ),
        );
    }
}

fn check_databases(config: &Config, problems: &mut Vec<ConfigProblem>) {
    let p = &config.pooler;
    for (name, db) in &config.databases {
        let path = format!("databases.{}", toml_key(name));
        if name.is_empty() {
            problems.push(ConfigProblem::new(
                path.clone(),
                "database name must not be empty",
            ));
        }
        // Only report here when this section set one side; otherwise [pooler] already did.
        if db.pool_size.is_some() || db.min_pool_size.is_some() {
            let size = db.pool_size.unwrap_or(p.default_pool_size);
            let min = db.min_pool_size.unwrap_or(p.min_pool_size);
            if min > size {
                problems.push(ConfigProblem::new(
                    format!("{path}.min_pool_size"),
                    format!("{min} is larger than this database's pool size ({size})"),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseSettings;

    fn problems_of(config: &Config) -> Vec<String> {
        let mut problems = Vec::new();
        validate(config, &mut problems);
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_are_valid() {
        assert!(problems_of(&Config::default()).is_empty());
    }

    #[test]
    fn cross_key_problems_are_all_reported() {
        let mut config = Config::default();
        config.pooler.listen_addr.clear();
        config.pooler.unix_socket_dir.clear();
        config.pooler.min_pool_size = 30;
        config.pooler.stats_period = Duration::ZERO;
        config.pooler.metrics_addr = "localhost".to_string();
        let db = DatabaseSettings {
            pool_size: Some(2),
            min_pool_size: Some(3),
            ..DatabaseSettings::default()
        };
        config.databases.insert("*".to_string(), db);
        let problems = problems_of(&config);
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(problems[0].starts_with("pooler.listen_addr: nothing to listen on"));
        assert_eq!(
            problems[1],
            "pooler.min_pool_size: 30 is larger than default_pool_size (20)"
        );
        assert_eq!(problems[2], "pooler.stats_period: must be longer than zero");
        assert!(problems[3].starts_with("pooler.metrics_addr: \"localhost\" is not"));
        assert_eq!(
            problems[4],
            "databases.\"*\".min_pool_size: 3 is larger than this database's pool size (2)"
        );
    }

    #[test]
    fn a_valid_metrics_address_passes() {
        let mut config = Config::default();
        config.pooler.metrics_addr = "0.0.0.0:9127".to_string();
        assert!(problems_of(&config).is_empty());
    }
}
