//! SHOW CLIENTS and SHOW SERVERS rows, which share PgBouncer's socket columns. Called by
//! `render::show`. `ptr` and `link` are connection ids in PgBouncer's pointer notation
//! (`0x` + hex), so a client's `link` equals its server's `ptr` and scripts that join the
//! two lists keep working; `id` is the decimal that KILL_CLIENT takes.

use bytes::BytesMut;

use crate::admin::result_set::{header, int4, int8, row, text, Columns};
use crate::admin::snapshot::ConnRow;
use crate::admin::timefmt::format_utc;
use crate::protocol::backend::ColumnType::{self, Int4, Int8, Text};

/// PgBouncer 1.18's columns plus prepared_statements (1.21) and id (1.23); its
/// `replication` column (1.23) is left out because pgsluice pools no replication connections.
/// `pinned` is pgsluice's own, last so that scripts reading PgBouncer's columns by position
/// keep working: why a transaction-pooling client keeps its server ("" when it does not).
pub(super) const CONN_COLUMNS: &Columns = &[
    ("type", Text),
    ("user", Text),
    ("database", Text),
    ("state", Text),
    ("addr", Text),
    ("port", Int4),
    ("local_addr", Text),
    ("local_port", Int4),
    ("connect_time", Text),
    ("request_time", Text),
    ("wait", Int4),
    ("wait_us", Int4),
    ("close_needed", Int4),
    ("ptr", Text),
    ("link", Text),
    ("remote_pid", Int4),
    ("tls", Text),
    ("application_name", Text),
    ("prepared_statements", Int4),
    // int8, where PgBouncer declares int4: our ids are 64-bit and must round-trip exactly
    // into KILL_CLIENT.
    ("id", ID_TYPE),
    ("pinned", Text),
];

const ID_TYPE: ColumnType = Int8;

/// Header and one row per connection, in the order given (the caller lists them per pool
/// and state, as PgBouncer does).
pub(super) fn conns(out: &mut BytesMut, rows: &[ConnRow]) {
    header(out, CONN_COLUMNS);
    for c in rows {
        row(out, &values(c));
    }
}

fn values(c: &ConnRow) -> [Option<String>; 21] {
    [
        text(c.kind),
        text(&c.user),
        text(&c.database),
        text(&c.state),
        text(&c.addr),
        int4(c.port.into()),
        text(&c.local_addr),
        int4(c.local_port.into()),
        text(&format_utc(c.connect_time)),
        text(&format_utc(c.request_time)),
        int4(c.wait_us / 1_000_000),
        int4(c.wait_us % 1_000_000),
        int4(c.close_needed.into()),
        text(&pointer(c.id)),
        // No link is an empty string, not NULL, as in PgBouncer.
        text(&c.link.map(pointer).unwrap_or_default()),
        Some(signed_pid(c.remote_pid).to_string()),
        text(&c.tls),
        text(&c.application_name),
        int4(c.prepared_statements),
        int8(c.id),
        text(&c.pinned),
    ]
}

/// A connection id in the notation of PgBouncer's `%p` pointers.
fn pointer(id: u64) -> String {
    format!("{id:#x}")
}

/// PostgreSQL's BackendKeyData process id is an Int32 and PgBouncer prints it signed, so a
/// key from another pooler (random bits) can be negative; keep the same bits.
fn signed_pid(pid: u32) -> i32 {
    i32::from_be_bytes(pid.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::test_support::read;
    use std::time::{Duration, UNIX_EPOCH};

    const EXPECTED: [&str; 21] = [
        "type",
        "user",
        "database",
        "state",
        "addr",
        "port",
        "local_addr",
        "local_port",
        "connect_time",
        "request_time",
        "wait",
        "wait_us",
        "close_needed",
        "ptr",
        "link",
        "remote_pid",
        "tls",
        "application_name",
        "prepared_statements",
        "id",
        "pinned",
    ];

    fn client() -> ConnRow {
        ConnRow {
            kind: "C",
            user: "app".into(),
            database: "shop".into(),
            state: "waiting".into(),
            addr: "10.0.0.7".into(),
            port: 51234,
            local_addr: "10.0.0.1".into(),
            local_port: 6432,
            connect_time: UNIX_EPOCH + Duration::from_secs(1_704_164_645),
            request_time: UNIX_EPOCH + Duration::from_secs(1_704_164_700),
            wait_us: 2_500_000,
            close_needed: false,
            id: 255,
            link: None,
            remote_pid: 0,
            tls: String::new(),
            application_name: "pos-terminal".into(),
            prepared_statements: 3,
            pinned: String::new(),
        }
    }

    #[test]
    fn client_row_as_pgbouncer_shows_it() {
        let mut out = BytesMut::new();
        conns(&mut out, &[client()]);
        let set = read(&out);
        assert_eq!(set.names(), EXPECTED);
        assert_eq!(set.rows.len(), 1);
        assert_eq!(set.get(0, "type"), Some("C"));
        assert_eq!(set.get(0, "user"), Some("app"));
        assert_eq!(set.get(0, "database"), Some("shop"));
        assert_eq!(set.get(0, "state"), Some("waiting"));
        assert_eq!(set.get(0, "addr"), Some("10.0.0.7"));
        assert_eq!(set.get(0, "port"), Some("51234"));
        assert_eq!(set.get(0, "local_port"), Some("6432"));
        assert_eq!(set.get(0, "connect_time"), Some("2024-01-02 03:04:05 UTC"));
        assert_eq!(set.get(0, "request_time"), Some("2024-01-02 03:05:00 UTC"));
        assert_eq!(set.get(0, "wait"), Some("2"));
        assert_eq!(set.get(0, "wait_us"), Some("500000"));
        assert_eq!(set.get(0, "close_needed"), Some("0"));
        assert_eq!(set.get(0, "ptr"), Some("0xff"));
        assert_eq!(set.get(0, "link"), Some(""));
        assert_eq!(set.get(0, "remote_pid"), Some("0"));
        assert_eq!(set.get(0, "tls"), Some(""));
        assert_eq!(set.get(0, "application_name"), Some("pos-terminal"));
        assert_eq!(set.get(0, "prepared_statements"), Some("3"));
        assert_eq!(set.get(0, "id"), Some("255"));
        assert_eq!(set.oid("port"), 23);
        assert_eq!(set.oid("connect_time"), 25);
        assert_eq!(set.oid("ptr"), 25);
        assert_eq!(set.oid("id"), 20);
        assert_eq!(set.tag, None, "conns() leaves CommandComplete to show()");
    }

    #[test]
    fn linked_pair_points_at_each_other() {
        let mut c = client();
        c.state = "active".into();
        c.wait_us = 0;
        c.link = Some(4096);
        let server = ConnRow {
            kind: "S",
            user: "app".into(),
            database: "shop".into(),
            state: "active".into(),
            addr: "unix".into(),
            port: 5432,
            id: 4096,
            link: Some(255),
            remote_pid: 81234,
            tls: "TLSv1.3/TLS_AES_256_GCM_SHA384".into(),
            close_needed: true,
            ..ConnRow::default()
        };
        let mut out = BytesMut::new();
        conns(&mut out, &[c]);
        let clients = read(&out);
        let mut out = BytesMut::new();
        conns(&mut out, &[server]);
        let servers = read(&out);
        assert_eq!(clients.get(0, "link"), servers.get(0, "ptr"));
        assert_eq!(servers.get(0, "link"), clients.get(0, "ptr"));
        assert_eq!(servers.get(0, "ptr"), Some("0x1000"));
        assert_eq!(servers.get(0, "type"), Some("S"));
        assert_eq!(servers.get(0, "remote_pid"), Some("81234"));
        assert_eq!(servers.get(0, "close_needed"), Some("1"));
        assert_eq!(servers.get(0, "wait"), Some("0"));
        assert_eq!(
            servers.get(0, "tls"),
            Some("TLSv1.3/TLS_AES_256_GCM_SHA384")
        );
        assert_eq!(
            servers.get(0, "connect_time"),
            Some("1970-01-01 00:00:00 UTC")
        );
    }

    #[test]
    fn extreme_values_stay_decodable() {
        let mut c = client();
        c.remote_pid = 0xffff_fffe;
        c.id = u64::MAX;
        c.prepared_statements = u64::MAX;
        c.wait_us = u64::MAX;
        let mut out = BytesMut::new();
        conns(&mut out, &[c]);
        let set = read(&out);
        assert_eq!(set.get(0, "remote_pid"), Some("-2"));
        assert_eq!(set.get(0, "id"), Some(i64::MAX.to_string().as_str()));
        assert_eq!(set.get(0, "ptr"), Some("0xffffffffffffffff"));
        assert_eq!(set.get(0, "prepared_statements"), Some("2147483647"));
        assert_eq!(set.get(0, "wait"), Some("2147483647"));
        assert_eq!(set.get(0, "wait_us"), Some("551615"));
    }

    #[test]
    fn empty_list_still_describes_columns() {
        let mut out = BytesMut::new();
        conns(&mut out, &[]);
        let set = read(&out);
        assert_eq!(set.names().len(), 21);
        assert!(set.rows.is_empty());
    }
}
