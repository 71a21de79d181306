//! SHOW STATS, STATS_TOTALS, STATS_AVERAGES and TOTALS, with PgBouncer 1.18's columns and
//! its `numeric` type for counters (usage.md, "SHOW STATS"). Called by `render::show`.
//! TOTALS is PgBouncer's name/value list over all databases, not a wide row; its names use
//! PgBouncer's internal spelling (`total_client_bytes` = bytes received from clients).

use bytes::BytesMut;

use crate::admin::result_set::{header, numeric, row, text, Columns};
use crate::admin::snapshot::StatsRow;
use crate::protocol::backend::ColumnType::{Numeric, Text};

pub(super) const STATS_COLUMNS: &Columns = &[
    ("database", Text),
    ("total_xact_count", Numeric),
    ("total_query_count", Numeric),
    ("total_received", Numeric),
    ("total_sent", Numeric),
    ("total_xact_time", Numeric),
    ("total_query_time", Numeric),
    ("total_wait_time", Numeric),
    ("avg_xact_count", Numeric),
    ("avg_query_count", Numeric),
    ("avg_recv", Numeric),
    ("avg_sent", Numeric),
    ("avg_xact_time", Numeric),
    ("avg_query_time", Numeric),
    ("avg_wait_time", Numeric),
];

/// STATS_TOTALS and STATS_AVERAGES share these names; which numbers fill them differs.
pub(super) const STATS_SUBSET_COLUMNS: &Columns = &[
    ("database", Text),
    ("xact_count", Numeric),
    ("query_count", Numeric),
    ("bytes_received", Numeric),
    ("bytes_sent", Numeric),
    ("xact_time", Numeric),
    ("query_time", Numeric),
    ("wait_time", Numeric),
];

pub(super) const TOTALS_COLUMNS: &Columns = &[("name", Text), ("value", Numeric)];

/// TOTALS row names, in PgBouncer's order: the seven totals, then the seven averages.
pub(super) const TOTALS_NAMES: [&str; 14] = [
    "total_xact_count",
    "total_query_count",
    "total_client_bytes",
    "total_server_bytes",
    "total_xact_time",
    "total_query_time",
    "total_wait_time",
    "avg_xact_count",
    "avg_query_count",
    "avg_client_bytes",
    "avg_server_bytes",
    "avg_xact_time",
    "avg_query_time",
    "avg_wait_time",
];

pub(super) fn stats(out: &mut BytesMut, rows: &[StatsRow]) {
    header(out, STATS_COLUMNS);
    for s in rows {
        let mut values = vec![text(&s.database)];
        values.extend(totals_of(s).into_iter().map(numeric));
        values.extend(averages_of(s).into_iter().map(numeric));
        row(out, &values);
    }
}

pub(super) fn stats_totals(out: &mut BytesMut, rows: &[StatsRow]) {
    subset(out, rows, totals_of);
}

pub(super) fn stats_averages(out: &mut BytesMut, rows: &[StatsRow]) {
    subset(out, rows, averages_of);
}

/// SHOW TOTALS: `exact` when the caller has pooler-wide numbers, else `rows` added up.
pub(super) fn totals(out: &mut BytesMut, exact: Option<&StatsRow>, rows: &[StatsRow]) {
    let all = exact.cloned().unwrap_or_else(|| aggregate(rows));
    header(out, TOTALS_COLUMNS);
    let values = totals_of(&all).into_iter().chain(averages_of(&all));
    for (name, value) in TOTALS_NAMES.iter().zip(values) {
        row(out, &[text(name), numeric(value)]);
    }
}

fn subset(out: &mut BytesMut, rows: &[StatsRow], pick: fn(&StatsRow) -> [u64; 7]) {
    header(out, STATS_SUBSET_COLUMNS);
    for s in rows {
        let mut values = vec![text(&s.database)];
        values.extend(pick(s).into_iter().map(numeric));
        row(out, &values);
    }
}

/// The seven totals, in column order.
fn totals_of(s: &StatsRow) -> [u64; 7] {
    [
        s.xact_count,
        s.query_count,
        s.bytes_received,
        s.bytes_sent,
        s.xact_time_us,
        s.query_time_us,
        s.wait_time_us,
    ]
}

/// The seven averages, in column order.
fn averages_of(s: &StatsRow) -> [u64; 7] {
    [
        s.avg_xact_count,
        s.avg_query_count,
        s.avg_recv,
        s.avg_sent,
        s.avg_xact_time_us,
        s.avg_query_time_us,
        s.avg_wait_time_us,
    ]
}

/// All databases as one: totals and rates add up; mean durations are weighted by each
/// database's rate of what they average over (transactions for xact and wait time, queries
/// for query time), which equals the pooler-wide mean over the same stats_period.
pub(super) fn aggregate(rows: &[StatsRow]) -> StatsRow {
    let sum = |f: fn(&StatsRow) -> u64| rows.iter().fold(0u64, |acc, r| acc.saturating_add(f(r)));
    let weighted = |mean: fn(&StatsRow) -> u64, weight: fn(&StatsRow) -> u64| {
        let (num, den) = rows.iter().fold((0u128, 0u128), |(n, d), r| {
            (
                n + u128::from(mean(r)) * u128::from(weight(r)),
                d + u128::from(weight(r)),
            )
        });
        num.checked_div(den)
            .map_or(0, |mean| u64::try_from(mean).unwrap_or(u64::MAX))
    };
    StatsRow {
        database: String::new(),
        xact_count: sum(|r| r.xact_count),
        query_count: sum(|r| r.query_count),
        bytes_received: sum(|r| r.bytes_received),
        bytes_sent: sum(|r| r.bytes_sent),
        xact_time_us: sum(|r| r.xact_time_us),
        query_time_us: sum(|r| r.query_time_us),
        wait_time_us: sum(|r| r.wait_time_us),
        avg_xact_count: sum(|r| r.avg_xact_count),
        avg_query_count: sum(|r| r.avg_query_count),
        avg_recv: sum(|r| r.avg_recv),
        avg_sent: sum(|r| r.avg_sent),
        avg_xact_time_us: weighted(|r| r.avg_xact_time_us, |r| r.avg_xact_count),
        avg_query_time_us: weighted(|r| r.avg_query_time_us, |r| r.avg_query_count),
        avg_wait_time_us: weighted(|r| r.avg_wait_time_us, |r| r.avg_xact_count),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::test_support::read;

    fn row_for(db: &str, base: u64) -> StatsRow {
        StatsRow {
            database: db.into(),
            xact_count: base + 1,
            query_count: base + 2,
            bytes_received: base + 3,
            bytes_sent: base + 4,
            xact_time_us: base + 5,
            query_time_us: base + 6,
            wait_time_us: base + 7,
            avg_xact_count: base + 8,
            avg_query_count: base + 9,
            avg_recv: base + 10,
            avg_sent: base + 11,
            avg_xact_time_us: base + 12,
            avg_query_time_us: base + 13,
            avg_wait_time_us: base + 14,
        }
    }

    #[test]
    fn stats_columns_in_pgbouncer_order_with_every_value_in_place() {
        let mut out = BytesMut::new();
        stats(&mut out, &[row_for("shop", 100), row_for("roster", 200)]);
        let set = read(&out);
        let expected: Vec<&str> = STATS_COLUMNS.iter().map(|(n, _)| *n).collect();
        assert_eq!(set.names(), expected);
        assert_eq!(set.names()[1], "total_xact_count");
        assert_eq!(set.names()[14], "avg_wait_time");
        assert_eq!(set.rows.len(), 2);
        assert_eq!(set.get(0, "database"), Some("shop"));
        // Column i (after database) holds base + i: no field lands in the wrong column.
        for (i, (name, _)) in STATS_COLUMNS.iter().enumerate().skip(1) {
            assert_eq!(
                set.get(1, name),
                Some((200 + i).to_string().as_str()),
                "{name}"
            );
        }
        assert_eq!(set.oid("total_sent"), 1700);
        assert_eq!(set.oid("database"), 25);
    }

    #[test]
    fn totals_and_averages_subsets() {
        let mut out = BytesMut::new();
        stats_totals(&mut out, &[row_for("shop", 0)]);
        let set = read(&out);
        let names = [
            "database",
            "xact_count",
            "query_count",
            "bytes_received",
            "bytes_sent",
            "xact_time",
            "query_time",
            "wait_time",
        ];
        assert_eq!(set.names(), names);
        assert_eq!(set.get(0, "xact_count"), Some("1"));
        assert_eq!(set.get(0, "wait_time"), Some("7"));

        let mut out = BytesMut::new();
        stats_averages(&mut out, &[row_for("shop", 0)]);
        let set = read(&out);
        assert_eq!(set.names(), names);
        assert_eq!(set.get(0, "xact_count"), Some("8"));
        assert_eq!(set.get(0, "bytes_sent"), Some("11"));
        assert_eq!(set.get(0, "wait_time"), Some("14"));
    }

    #[test]
    fn totals_is_a_name_value_list_over_all_databases() {
        let mut a = row_for("a", 0);
        let mut b = row_for("b", 0);
        (a.avg_xact_count, a.avg_xact_time_us) = (10, 100);
        (b.avg_xact_count, b.avg_xact_time_us) = (30, 500);
        (a.avg_query_count, b.avg_query_count) = (0, 0);
        let mut out = BytesMut::new();
        totals(&mut out, None, &[a, b]);
        let set = read(&out);
        assert_eq!(set.names(), ["name", "value"]);
        let names: Vec<&str> = set.rows.iter().map(|r| r[0].as_deref().unwrap()).collect();
        assert_eq!(names, TOTALS_NAMES);
        let value = |name: &str| {
            let at = TOTALS_NAMES.iter().position(|n| *n == name).unwrap();
            set.get(at, "value").unwrap().to_string()
        };
        assert_eq!(value("total_xact_count"), "2");
        assert_eq!(value("total_client_bytes"), "6");
        assert_eq!(value("total_server_bytes"), "8");
        assert_eq!(value("avg_xact_count"), "40");
        // (10 * 100 + 30 * 500) / 40 transactions per second.
        assert_eq!(value("avg_xact_time"), "400");
        // No queries in the period: no mean to report.
        assert_eq!(value("avg_query_time"), "0");
        assert_eq!(set.oid("value"), 1700);

        let exact = row_for("", 1000);
        let mut out = BytesMut::new();
        totals(&mut out, Some(&exact), &[row_for("ignored", 0)]);
        let set = read(&out);
        assert_eq!(set.get(0, "value"), Some("1001"));
        assert_eq!(set.get(13, "value"), Some("1014"));
    }

    #[test]
    fn aggregate_saturates_instead_of_overflowing() {
        let mut a = row_for("a", 0);
        a.xact_count = u64::MAX;
        let all = aggregate(&[a, row_for("b", 0)]);
        assert_eq!(all.xact_count, u64::MAX);
        assert_eq!(aggregate(&[]), StatsRow::default());
    }
}
