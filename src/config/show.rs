//! Rows for the admin console's SHOW CONFIG: every [pooler] key with its current and default
//! value, printed in the syntax pooler.toml accepts back. Called by the admin module; holds no
//! secrets because [pooler] has none (database passwords are never listed).

use super::duration::format as dur;
use super::pooler::PoolerSettings;

/// One SHOW CONFIG row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingRow {
    pub key: &'static str,
    pub value: String,
    pub default: String,
}

impl PoolerSettings {
    /// Every key with its value and default, in pooler.toml.example order.
    pub fn show_rows(&self) -> Vec<SettingRow> {
        let defaults = values(&PoolerSettings::default());
        values(self)
            .into_iter()
            .zip(defaults)
            .map(|((key, value), (_, default))| SettingRow {
                key,
                value,
                default,
            })
            .collect()
    }
}

fn values(p: &PoolerSettings) -> Vec<(&'static str, String)> {
    let list = |items: &[String]| items.join(", ");
    let auth_file = p
        .auth_file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_default();
    vec![
        ("listen_addr", list(&p.listen_addr)),
        ("listen_port", p.listen_port.to_string()),
        ("unix_socket_dir", p.unix_socket_dir.clone()),
        ("unix_socket_mode", format!("0{:o}", p.unix_socket_mode)),
        ("pool_mode", p.pool_mode.to_string()),
        ("max_client_conn", p.max_client_conn.to_string()),
        ("default_pool_size", p.default_pool_size.to_string()),
        ("min_pool_size", p.min_pool_size.to_string()),
        ("reserve_pool_size", p.reserve_pool_size.to_string()),
        ("reserve_pool_timeout", dur(p.reserve_pool_timeout)),
        ("max_db_connections", p.max_db_connections.to_string()),
        ("max_user_connections", p.max_user_connections.to_string()),
        (
            "max_db_client_connections",
            p.max_db_client_connections.to_string(),
        ),
        (
            "max_user_client_connections",
            p.max_user_client_connections.to_string(),
        ),
        ("auth_type", p.auth_type.to_string()),
        ("auth_file", auth_file),
        ("auth_user", p.auth_query.auth_user.clone()),
        ("auth_query", p.auth_query.auth_query.clone()),
        ("auth_dbname", p.auth_query.auth_dbname.clone()),
        (
            "auth_hba_file",
            p.auth_query
                .auth_hba_file
                .as_ref()
                .map(|f| f.display().to_string())
                .unwrap_or_default(),
        ),
        ("admin_users", list(&p.admin_users)),
        ("stats_users", list(&p.stats_users)),
        ("server_reset_query", p.server_reset_query.clone()),
        (
            "server_reset_query_always",
            p.server_reset_query_always.to_string(),
        ),
        ("pin_session_state", p.pin_session_state.to_string()),
        (
            "session_read_back_always",
            p.session_read_back_always.to_string(),
        ),
        ("custom_settings", list(&p.custom_settings)),
        ("server_check_query", p.server_check_query.clone()),
        ("server_check_delay", dur(p.server_check_delay)),
        ("server_connect_timeout", dur(p.server_connect_timeout)),
        ("server_login_retry", dur(p.server_login_retry)),
        ("server_lifetime", dur(p.server_lifetime)),
        ("server_idle_timeout", dur(p.server_idle_timeout)),
        ("server_reset_timeout", dur(p.server_reset_timeout)),
        ("client_login_timeout", dur(p.client_login_timeout)),
        ("query_wait_timeout", dur(p.query_wait_timeout)),
        ("query_timeout", dur(p.query_timeout)),
        ("client_idle_timeout", dur(p.client_idle_timeout)),
        ("idle_transaction_timeout", dur(p.idle_transaction_timeout)),
        ("transaction_timeout", dur(p.transaction_timeout)),
        ("cancel_wait_timeout", dur(p.cancel_wait_timeout)),
        ("shutdown_timeout", dur(p.shutdown_timeout)),
        (
            "ignore_startup_parameters",
            list(&p.ignore_startup_parameters),
        ),
        ("max_packet_size", p.max_packet_size.to_string()),
        ("pkt_buf", p.pkt_buf.to_string()),
        ("tcp_keepalive", p.tcp_keepalive.to_string()),
        ("tcp_user_timeout", dur(p.tcp_user_timeout)),
        (
            "max_prepared_statements",
            p.max_prepared_statements.to_string(),
        ),
        (
            "max_client_prepared_statements",
            p.max_client_prepared_statements.to_string(),
        ),
        (
            "max_client_prepared_bytes",
            p.max_client_prepared_bytes.to_string(),
        ),
        ("notify_queue_size", p.notify_queue_size.to_string()),
        ("peer_id", p.peer_id.to_string()),
        (
            "application_name_add_host",
            p.application_name_add_host.to_string(),
        ),
        ("log_format", p.log_format.to_string()),
        ("verbose", p.verbose.to_string()),
        ("log_connections", p.log_connections.to_string()),
        ("log_disconnections", p.log_disconnections.to_string()),
        ("log_pooler_errors", p.log_pooler_errors.to_string()),
        ("stats_period", dur(p.stats_period)),
        ("metrics_addr", p.metrics_addr.clone()),
    ]
    .into_iter()
    .chain(p.process.show_values())
    .chain(p.failover.show_values())
    .chain(p.fleet.show_values())
    .chain(p.tls.show_values())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pooler::POOLER_KEYS;
    use crate::config::PoolMode;
    use std::time::Duration;

    #[test]
    fn one_row_per_key_in_documented_order() {
        let rows = PoolerSettings::default().show_rows();
        let keys: Vec<&str> = rows.iter().map(|r| r.key).collect();
        assert_eq!(keys, POOLER_KEYS);
        assert!(rows.iter().all(|r| r.value == r.default));
    }

    #[test]
    fn changed_values_show_against_their_defaults() {
        let settings = PoolerSettings {
            pool_mode: PoolMode::Transaction,
            query_wait_timeout: Duration::from_millis(250),
            ..PoolerSettings::default()
        };
        let rows = settings.show_rows();
        let row = |key: &str| rows.iter().find(|r| r.key == key).unwrap().clone();
        assert_eq!(row("pool_mode").value, "transaction");
        assert_eq!(row("pool_mode").default, "session");
        assert_eq!(row("query_wait_timeout").value, "250ms");
        assert_eq!(row("query_wait_timeout").default, "2m");
        assert_eq!(row("unix_socket_mode").value, "0777");
        assert_eq!(row("server_lifetime").value, "1h");
    }
}
