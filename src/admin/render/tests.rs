//! Unit tests of `render::show`: every SHOW command's columns, in PgBouncer's order, with a
//! row's values read back through postgres-protocol's parser.

use super::super::command::{parse, Command};
use super::super::snapshot::{
    pause_state, ChannelRow, ConnRow, HostRow, ListenerRow, StatsRow, LIST_NAMES,
};
use super::super::test_support::{read, ResultSet};
use super::*;

fn render(what: ShowWhat, snap: &Snapshot) -> ResultSet {
    let mut out = BytesMut::new();
    show(&mut out, what, snap);
    let set = read(&out);
    assert_eq!(set.tag.as_deref(), Some("SHOW"), "{what:?}");
    set
}

fn sample() -> Snapshot {
    Snapshot {
        pools: vec![PoolRow {
            database: "shop".into(),
            user: "app".into(),
            cl_active: 1,
            cl_waiting: 2,
            cl_active_cancel_req: 3,
            cl_waiting_cancel_req: 4,
            sv_active: 5,
            sv_active_cancel: 6,
            sv_being_canceled: 7,
            sv_idle: 8,
            sv_used: 9,
            sv_tested: 10,
            sv_login: 11,
            maxwait_us: 3_000_042,
            pool_mode: "transaction".into(),
        }],
        clients: vec![ConnRow {
            id: 1,
            ..ConnRow::default()
        }],
        servers: vec![
            ConnRow {
                kind: "S",
                id: 2,
                ..ConnRow::default()
            },
            ConnRow {
                kind: "S",
                id: 3,
                ..ConnRow::default()
            },
        ],
        stats: vec![StatsRow {
            database: "shop".into(),
            xact_count: 7,
            ..StatsRow::default()
        }],
        totals: None,
        databases: vec![DatabaseRow {
            name: "shop".into(),
            host: "db.internal".into(),
            port: 5432,
            database: "shop_prod".into(),
            force_user: None,
            pool_size: 20,
            min_pool_size: 2,
            reserve_pool: 5,
            pool_mode: Some("session".into()),
            max_connections: 0,
            current_connections: 12,
            max_client_connections: 500,
            current_client_connections: 40,
            paused: true,
            disabled: false,
        }],
        users: vec![
            UserRow {
                name: "app".into(),
                pool_mode: None,
            },
            UserRow {
                name: "batch".into(),
                pool_mode: Some("session".into()),
            },
        ],
        config: vec![ConfigRow {
            key: "default_pool_size".into(),
            value: "20".into(),
            default: "20".into(),
            changeable: true,
        }],
        lists: LIST_NAMES.iter().map(|n| (n.to_string(), 1)).collect(),
        state: pause_state(false),
        version: "pgsluice 0.1.0".into(),
        hosts: vec![
            HostRow {
                host: "10.0.0.1:5432".into(),
                role: "primary".into(),
                healthy: true,
                lag_ms: None,
                sv_active: 1,
                sv_idle: 2,
                checked_ms_ago: Some(250),
                last_error: None,
            },
            HostRow {
                host: "10.0.0.2:5432".into(),
                role: "unknown".into(),
                healthy: false,
                lag_ms: None,
                sv_active: 0,
                sv_idle: 0,
                checked_ms_ago: Some(10),
                last_error: Some("connection refused".into()),
            },
        ],
        listeners: vec![ListenerRow {
            database: "shop".into(),
            user: "app".into(),
            state: "reconnecting".into(),
            subscribers: 3,
            delivered: 12,
            reconnects: 1,
            ..ListenerRow::default()
        }],
        channels: vec![ChannelRow {
            database: "shop".into(),
            user: "app".into(),
            channel: "Orders".into(),
            subscribers: 3,
            delivered: 12,
        }],
    }
}

#[test]
fn listeners_and_channels_show_each_pools_listen_connection() {
    let set = render(ShowWhat::Listeners, &sample());
    assert_eq!(set.names()[..4], ["database", "user", "state", "host"]);
    assert_eq!(set.rows.len(), 1);
    assert_eq!(set.rows[0][2].as_deref(), Some("reconnecting"));
    assert_eq!(set.rows[0][4], None, "no server pid without a connection");
    assert_eq!(set.rows[0][7].as_deref(), Some("3"));
    let set = render(ShowWhat::Channels, &sample());
    assert_eq!(
        set.names(),
        ["database", "user", "channel", "subscribers", "delivered"]
    );
    assert_eq!(set.rows[0][2].as_deref(), Some("Orders"));
    assert_eq!(set.rows[0][4].as_deref(), Some("12"));
}

#[test]
fn hosts_show_roles_lag_and_errors() {
    let set = render(ShowWhat::Hosts, &sample());
    assert_eq!(
        set.names(),
        [
            "host",
            "role",
            "healthy",
            "replica_lag_ms",
            "sv_active",
            "sv_idle",
            "checked_ms_ago",
            "last_error"
        ]
    );
    assert_eq!(set.rows.len(), 2);
    assert_eq!(set.rows[0][1].as_deref(), Some("primary"));
    assert_eq!(set.rows[0][3], None, "a primary has no lag");
    assert_eq!(set.rows[1][2].as_deref(), Some("no"));
    assert_eq!(set.rows[0][5].as_deref(), Some("2"));
    assert_eq!(set.rows[1][7].as_deref(), Some("connection refused"));
}

#[test]
fn pools_columns_and_maxwait_split() {
    let set = render(ShowWhat::Pools, &sample());
    assert_eq!(
        set.names(),
        [
            "database",
            "user",
            "cl_active",
            "cl_waiting",
            "cl_active_cancel_req",
            "cl_waiting_cancel_req",
            "sv_active",
            "sv_active_cancel",
            "sv_being_canceled",
            "sv_idle",
            "sv_used",
            "sv_tested",
            "sv_login",
            "maxwait",
            "maxwait_us",
            "pool_mode",
        ]
    );
    // Counts 1..=11 in column order: each field lands in its own column.
    for (i, name) in set.names()[2..13].iter().enumerate() {
        assert_eq!(
            set.get(0, name),
            Some((i + 1).to_string().as_str()),
            "{name}"
        );
    }
    assert_eq!(set.get(0, "maxwait"), Some("3"));
    assert_eq!(set.get(0, "maxwait_us"), Some("42"));
    assert_eq!(set.get(0, "pool_mode"), Some("transaction"));
    assert_eq!(set.oid("cl_active"), 23);
    assert_eq!(set.oid("database"), 25);
}

#[test]
fn maxwait_below_one_second_and_zero() {
    let mut snap = sample();
    snap.pools[0].maxwait_us = 999_999;
    let set = render(ShowWhat::Pools, &snap);
    assert_eq!(
        (set.get(0, "maxwait"), set.get(0, "maxwait_us")),
        (Some("0"), Some("999999"))
    );
    snap.pools[0].maxwait_us = 0;
    let set = render(ShowWhat::Pools, &snap);
    assert_eq!(
        (set.get(0, "maxwait"), set.get(0, "maxwait_us")),
        (Some("0"), Some("0"))
    );
}

#[test]
fn clients_and_servers_list_their_own_rows() {
    let snap = sample();
    let clients = render(ShowWhat::Clients, &snap);
    assert_eq!(clients.rows.len(), 1);
    assert_eq!(clients.get(0, "type"), Some("C"));
    assert_eq!(clients.names().last(), Some(&"pinned"));
    let servers = render(ShowWhat::Servers, &snap);
    assert_eq!(servers.rows.len(), 2);
    assert_eq!(servers.get(1, "type"), Some("S"));
    assert_eq!(servers.get(1, "id"), Some("3"));
    assert_eq!(clients.names(), servers.names());
}

#[test]
fn databases_columns_nulls_and_flags() {
    let set = render(ShowWhat::Databases, &sample());
    assert_eq!(
        set.names(),
        [
            "name",
            "host",
            "port",
            "database",
            "force_user",
            "pool_size",
            "min_pool_size",
            "reserve_pool",
            "pool_mode",
            "max_connections",
            "current_connections",
            "max_client_connections",
            "current_client_connections",
            "paused",
            "disabled",
        ]
    );
    let expected = [
        Some("shop"),
        Some("db.internal"),
        Some("5432"),
        Some("shop_prod"),
        None,
        Some("20"),
        Some("2"),
        Some("5"),
        Some("session"),
        Some("0"),
        Some("12"),
        Some("500"),
        Some("40"),
        Some("1"),
        Some("0"),
    ];
    let row: Vec<Option<&str>> = set.rows[0].iter().map(Option::as_deref).collect();
    assert_eq!(row, expected);
    assert_eq!(set.oid("port"), 23);
    assert_eq!(set.oid("force_user"), 25);
}

#[test]
fn users_config_lists_state_version() {
    let snap = sample();
    let users = render(ShowWhat::Users, &snap);
    assert_eq!(users.names(), ["name", "pool_mode"]);
    assert_eq!(users.get(0, "pool_mode"), None, "inherited mode is NULL");
    assert_eq!(users.get(1, "pool_mode"), Some("session"));

    let config = render(ShowWhat::Config, &snap);
    assert_eq!(config.names(), ["key", "value", "default", "changeable"]);
    assert_eq!(config.get(0, "key"), Some("default_pool_size"));
    assert_eq!(config.get(0, "changeable"), Some("yes"));

    let lists = render(ShowWhat::Lists, &snap);
    assert_eq!(lists.names(), ["list", "items"]);
    assert_eq!(lists.rows.len(), 12);
    assert_eq!(lists.get(0, "list"), Some("databases"));
    assert_eq!(lists.get(11, "list"), Some("dns_pending"));
    assert_eq!(lists.get(0, "items"), Some("1"));
    assert_eq!(lists.oid("items"), 23);

    let state = render(ShowWhat::State, &snap);
    assert_eq!(state.names(), ["key", "value"]);
    assert_eq!(state.get(0, "key"), Some("active"));
    assert_eq!(state.get(0, "value"), Some("yes"));

    let version = render(ShowWhat::Version, &snap);
    assert_eq!(version.names(), ["version"]);
    assert_eq!(version.get(0, "version"), Some("pgsluice 0.1.0"));
}

#[test]
fn every_stats_command_renders() {
    let snap = sample();
    let stats = render(ShowWhat::Stats, &snap);
    assert_eq!(stats.get(0, "total_xact_count"), Some("7"));
    let totals = render(ShowWhat::StatsTotals, &snap);
    assert_eq!(totals.get(0, "xact_count"), Some("7"));
    let averages = render(ShowWhat::StatsAverages, &snap);
    assert_eq!(averages.get(0, "xact_count"), Some("0"));
    let all = render(ShowWhat::Totals, &snap);
    assert_eq!(all.get(0, "name"), Some("total_xact_count"));
    assert_eq!(all.get(0, "value"), Some("7"));
}

#[test]
fn help_is_one_notice_then_show() {
    let set = render(ShowWhat::Help, &Snapshot::default());
    assert!(set.columns.is_empty() && set.rows.is_empty());
    assert_eq!(set.notices.len(), 1);
    let (message, detail) = &set.notices[0];
    assert_eq!(message, "Console usage");
    let detail = detail.as_deref().unwrap();
    assert!(detail.starts_with("\n\tSHOW HELP|"));
    assert!(detail.contains("\n\tKILL_CLIENT <client_id>"));
    assert_eq!(detail.matches("\n\t").count(), help_text().len());
}

#[test]
fn help_lists_only_commands_that_parse() {
    for line in help_text() {
        let first = line.split(['|', ' ']).take(2).collect::<Vec<_>>().join(" ");
        let query = first.replace("<db>", "x").replace(['[', ']'], "");
        let query = if query.starts_with("SET") {
            "SET key = arg".to_string()
        } else if query == "KILL_CLIENT <client_id>" {
            "KILL_CLIENT 1".to_string()
        } else {
            query
        };
        assert!(parse(&query).is_ok(), "{line}: {query}");
    }
    for subject in help_text()[..3].iter().flat_map(|l| l[5..].split('|')) {
        assert!(
            matches!(parse(&format!("SHOW {subject}")), Ok(Command::Show(_))),
            "{subject}"
        );
    }
}

#[test]
fn faked_parameters_and_ignored_set() {
    let set = render(
        ShowWhat::Parameter {
            name: "client_encoding",
            value: "UTF-8",
        },
        &Snapshot::default(),
    );
    assert_eq!(set.names(), ["client_encoding"]);
    assert_eq!(set.get(0, "client_encoding"), Some("UTF-8"));

    let mut out = BytesMut::new();
    set_ignored(&mut out);
    let set = read(&out);
    assert_eq!(set.notices[0].0, "SET ignored");
    assert_eq!(set.tag.as_deref(), Some("SET"));
}

#[test]
fn empty_snapshot_renders_headers_only() {
    for what in [
        ShowWhat::Pools,
        ShowWhat::Clients,
        ShowWhat::Servers,
        ShowWhat::Stats,
        ShowWhat::StatsTotals,
        ShowWhat::StatsAverages,
        ShowWhat::Databases,
        ShowWhat::Users,
        ShowWhat::Config,
        ShowWhat::Lists,
        ShowWhat::State,
        ShowWhat::Hosts,
    ] {
        let set = render(what, &Snapshot::default());
        assert!(!set.columns.is_empty(), "{what:?}");
        assert!(set.rows.is_empty(), "{what:?}");
    }
    // TOTALS always has its 14 rows, zero when nothing ran.
    let set = render(ShowWhat::Totals, &Snapshot::default());
    assert_eq!(set.rows.len(), 14);
    assert!(set.rows.iter().all(|r| r[1].as_deref() == Some("0")));
}

#[test]
fn appends_after_existing_bytes() {
    let mut out = BytesMut::from(&b"xyz"[..]);
    show(&mut out, ShowWhat::Version, &sample());
    assert_eq!(&out[..3], b"xyz");
    assert_eq!(out[3], b'T');
}
