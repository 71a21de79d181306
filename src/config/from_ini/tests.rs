//! The conversion of pgbouncer.ini entries, key by key, and the README's table of every
//! PgBouncer setting checked against it.

use super::*;

fn entry(section: &str, key: &str, value: &str, line: usize) -> IniEntry {
    IniEntry {
        section: section.into(),
        key: key.into(),
        value: value.into(),
        origin: format!("pgbouncer.ini:{line}"),
    }
}

#[test]
fn sections_become_tables_with_pooler_toml_types() {
    let c = convert(&[
        entry(
            "databases",
            "app",
            "host=db1,db2 port=5432 dbname=app_prod password=1234 reserve_pool_size=2",
            2,
        ),
        entry("pgbouncer", "listen_port", "6433", 5),
        entry("pgbouncer", "unix_socket_mode", "0777", 6),
        entry("pgbouncer", "server_lifetime", "3600.5", 7),
        entry("pgbouncer", "listen_backlog", "128", 8),
        entry("users", "pos", "pool_mode=statement", 9),
        entry("peers", "2", "host=10.0.0.2 port=6432", 10),
    ]);
    assert!(c.refused.is_empty());
    let t = &c.table;
    assert_eq!(t["pooler"]["listen_port"].as_integer(), Some(6433));
    assert_eq!(t["pooler"]["unix_socket_mode"].as_str(), Some("0777"));
    assert_eq!(t["pooler"]["server_lifetime"].as_float(), Some(3600.5));
    assert!(
        t["pooler"].get("listen_backlog").is_none(),
        "left out, with a warning"
    );
    assert_eq!(t["databases"]["app"]["password"].as_str(), Some("1234"));
    assert_eq!(t["databases"]["app"]["reserve_pool"].as_integer(), Some(2));
    assert_eq!(t["peers"]["2"]["port"].as_integer(), Some(6432));
    assert_eq!(c.warnings.len(), 1);
    assert!(
        c.warnings[0].starts_with("pgbouncer.ini:8: [pgbouncer] listen_backlog"),
        "{:?}",
        c.warnings
    );
    assert_eq!(c.origins["databases.app"], "pgbouncer.ini:2");
}

#[test]
fn ident_maps_are_refused_and_lookups_kept() {
    let c = convert(&[
        entry(
            "pgbouncer",
            "auth_ident_file",
            "/etc/pgbouncer/pg_ident.conf",
            3,
        ),
        entry(
            "pgbouncer",
            "auth_query",
            "SELECT usename, passwd FROM pg_shadow WHERE usename=$1",
            4,
        ),
        entry(
            "databases",
            "app",
            "host=db auth_user=lookup timezone=UTC",
            5,
        ),
    ]);
    let shown: Vec<String> = c.refused.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(
        shown[0].starts_with("pgbouncer.ini:3: [pgbouncer] auth_ident_file: "),
        "{shown:?}"
    );
    assert!(c.table["pooler"]["auth_query"].as_str().is_some());
    assert_eq!(
        c.table["databases"]["app"]["auth_user"].as_str(),
        Some("lookup")
    );
    assert_eq!(
        c.table["databases"]["app"]["timezone"].as_str(),
        Some("UTC")
    );
}

/// The README's table of PgBouncer settings, checked: every "same" key is taken by the
/// TOML reader, every "ignored" key warns, and nothing else is said about them.
#[test]
fn every_pgbouncer_setting_is_taken_warned_or_refused_as_documented() {
    let same = [
        ("listen_addr", "127.0.0.1"),
        ("listen_port", "6432"),
        ("unix_socket_dir", "/tmp"),
        ("unix_socket_mode", "0777"),
        ("pool_mode", "session"),
        ("max_client_conn", "100"),
        ("default_pool_size", "20"),
        ("min_pool_size", "0"),
        ("reserve_pool_size", "0"),
        ("reserve_pool_timeout", "5"),
        ("max_db_connections", "0"),
        ("max_db_client_connections", "0"),
        ("max_user_connections", "0"),
        ("max_user_client_connections", "0"),
        ("ignore_startup_parameters", "extra_float_digits"),
        ("peer_id", "2"),
        ("application_name_add_host", "0"),
        ("stats_period", "60"),
        ("max_prepared_statements", "200"),
        ("auth_type", "md5"),
        ("auth_file", "users.txt"),
        ("auth_user", "lookup"),
        (
            "auth_query",
            "SELECT usename, passwd FROM pg_shadow WHERE usename=$1",
        ),
        ("auth_dbname", "postgres"),
        ("admin_users", "admin"),
        ("stats_users", "stats"),
        ("logfile", "pgsluice.log"),
        ("pidfile", "pgsluice.pid"),
        ("verbose", "0"),
        ("log_connections", "1"),
        ("log_disconnections", "1"),
        ("log_pooler_errors", "1"),
        ("server_reset_query", "DISCARD ALL"),
        ("server_reset_query_always", "0"),
        ("server_check_query", "select 1"),
        ("server_check_delay", "30"),
        ("server_lifetime", "3600"),
        ("server_idle_timeout", "600"),
        ("server_connect_timeout", "15"),
        ("server_login_retry", "15"),
        ("client_login_timeout", "60"),
        ("client_tls_sslmode", "disable"),
        ("client_tls_protocols", "secure"),
        ("server_tls_sslmode", "disable"),
        ("server_tls_protocols", "secure"),
        ("query_timeout", "0"),
        ("query_wait_timeout", "120"),
        ("cancel_wait_timeout", "10"),
        ("client_idle_timeout", "0"),
        ("idle_transaction_timeout", "0"),
        ("transaction_timeout", "0"),
        ("pkt_buf", "4096"),
        ("max_packet_size", "2147483647"),
        ("so_reuseport", "0"),
        ("syslog", "0"),
        ("syslog_ident", "pgbouncer"),
        ("syslog_facility", "daemon"),
        ("tcp_keepalive", "1"),
        ("tcp_user_timeout", "0"),
    ];
    let ignored = [
        "log_stats",
        "user",
        "unix_socket_group",
        "conffile",
        "service_name",
        "job_name",
        "server_round_robin",
        "server_fast_close",
        "disable_pqexec",
        "autodb_idle_timeout",
        "suspend_timeout",
        "track_extra_parameters",
        "dns_max_ttl",
        "dns_nxdomain_ttl",
        "dns_zone_check_period",
        "resolv_conf",
        "client_tls_ciphers",
        "client_tls_ecdhcurve",
        "client_tls_dheparams",
        "server_tls_ciphers",
        "listen_backlog",
        "sbuf_loopcnt",
        "tcp_defer_accept",
        "tcp_socket_buffer",
        "tcp_keepcnt",
        "tcp_keepidle",
        "tcp_keepintvl",
    ];
    let mut entries: Vec<IniEntry> = same
        .iter()
        .enumerate()
        .map(|(i, (k, v))| entry("pgbouncer", k, v, i + 1))
        .collect();
    entries.extend(ignored.iter().map(|k| entry("pgbouncer", k, "1", 500)));
    entries.push(entry(
        "databases",
        "app",
        "host=a,b port=5432 dbname=app user=u password=p auth_user=l pool_size=5 \
         min_pool_size=1 reserve_pool=1 pool_mode=transaction max_db_connections=9 \
         max_db_client_connections=9 connect_query='select 1' client_encoding=UTF8 \
         datestyle=ISO timezone=UTC application_name=x load_balance_hosts=disable \
         server_lifetime=60",
        600,
    ));
    entries.push(entry("databases", "*", "host=fallback", 601));
    entries.push(entry(
        "users",
        "u",
        "pool_mode=session pool_size=2 max_user_connections=3 max_user_client_connections=4 \
         query_timeout=5 idle_transaction_timeout=6 transaction_timeout=7 client_idle_timeout=8",
        602,
    ));
    entries.push(entry(
        "peers",
        "1",
        "host=10.0.0.1 port=6432 pool_size=3",
        603,
    ));
    let c = convert(&entries);
    assert!(c.refused.is_empty(), "{:?}", c.refused);
    // Ignored: one warning each, plus the database's two and the peer's pool_size.
    assert_eq!(c.warnings.len(), ignored.len() + 3, "{:#?}", c.warnings);
    let text = c.to_toml("pgbouncer.ini");
    if let Err(e) = crate::config::Config::parse(&text, std::path::Path::new("/etc")) {
        panic!("{}", c.locate(e));
    }
}
