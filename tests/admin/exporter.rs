//! pgbouncer_exporter against pgsluice: the exporter's own queries, read the way it reads them
//! (column names looked up by name, numbers parsed as floats, NULL allowed), must all succeed,
//! so a Prometheus setup built on the exporter keeps working when PgBouncer is swapped out.

use crate::common::console::*;
use crate::common::*;

/// The numeric columns the exporter turns into metrics, per `SHOW <namespace>`, and the
/// columns it uses as labels.
const NAMESPACES: &[(&str, &[&str], &[&str])] = &[
    (
        "DATABASES",
        &[
            "name",
            "host",
            "port",
            "database",
            "force_user",
            "pool_mode",
        ],
        &[
            "pool_size",
            "reserve_pool",
            "max_connections",
            "current_connections",
            "paused",
            "disabled",
        ],
    ),
    (
        "STATS_TOTALS",
        &["database"],
        &[
            "query_count",
            "query_time",
            "bytes_received",
            "bytes_sent",
            "wait_time",
            "xact_count",
            "xact_time",
        ],
    ),
    (
        "POOLS",
        &["database", "user"],
        &[
            "cl_active",
            "cl_waiting",
            "sv_active",
            "sv_idle",
            "sv_used",
            "sv_tested",
            "sv_login",
            "maxwait",
        ],
    ),
];

fn number(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(|v| v.parse::<f64>().is_ok())
}

#[tokio::test]
async fn pgbouncer_exporter_queries_all_succeed() {
    let p =
        Pooler::start(PoolerConfig::new(shared_cluster()).pooler("pool_mode = \"transaction\""));
    let (client, _t) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await.unwrap();
    client.simple_query("select 1").await.unwrap();
    let admin = console(&p).await;

    // Its connection check, then SHOW VERSION: one column named "version".
    show(&admin, "SHOW STATS").await;
    let version = show(&admin, "SHOW VERSION;").await;
    assert_eq!(version.columns, ["version"]);
    assert_eq!(version.rows.len(), 1);

    // SHOW LISTS: exactly two columns, every item a number.
    let lists = show(&admin, "SHOW LISTS;").await;
    assert_eq!(lists.columns.len(), 2);
    assert!(lists.rows.iter().all(|r| number(&r[1])), "{lists:?}");

    // SHOW CONFIG: three or four columns; the two settings it exports are numbers.
    let config = show(&admin, "SHOW CONFIG;").await;
    assert!(
        matches!(config.columns.len(), 3 | 4),
        "{:?}",
        config.columns
    );
    for key in ["max_client_conn", "max_user_connections"] {
        let value = config.lookup("key", key, "value");
        assert!(value.parse::<f64>().is_ok(), "{key} = {value:?}");
    }

    for (namespace, labels, metrics) in NAMESPACES {
        let set = show(&admin, &format!("SHOW {namespace};")).await;
        assert!(!set.rows.is_empty(), "SHOW {namespace} has no rows");
        for column in labels.iter().chain(metrics.iter()) {
            assert!(
                set.columns.iter().any(|c| c == column),
                "SHOW {namespace} lacks {column}"
            );
        }
        for row in &set.rows {
            for (i, column) in set.columns.iter().enumerate() {
                if metrics.contains(&column.as_str()) {
                    assert!(number(&row[i]), "SHOW {namespace}: {column} = {:?}", row[i]);
                }
            }
        }
    }
}
