//! SHOW HOSTS: every database host pgsluice knows, with its role and replay lag as last seen,
//! whether it answered, the servers pgsluice holds on it, and the switchovers seen per
//! database. pgsluice's own command (PgBouncer has no multi-host roles to show).

use bytes::BytesMut;

use crate::admin::result_set::{header, int4, row, text, Columns};
use crate::admin::snapshot::HostRow;
use crate::protocol::backend::ColumnType::{Int4, Text};

pub(crate) const HOSTS_COLUMNS: &Columns = &[
    ("host", Text),
    ("role", Text),
    ("healthy", Text),
    ("replica_lag_ms", Int4),
    ("sv_active", Int4),
    ("sv_idle", Int4),
    ("checked_ms_ago", Int4),
    ("last_error", Text),
];

pub(crate) fn hosts(out: &mut BytesMut, hosts: &[HostRow]) {
    header(out, HOSTS_COLUMNS);
    for h in hosts {
        row(
            out,
            &[
                text(&h.host),
                text(&h.role),
                text(if h.healthy { "yes" } else { "no" }),
                h.lag_ms.and_then(int4),
                int4(h.sv_active),
                int4(h.sv_idle),
                h.checked_ms_ago.and_then(int4),
                h.last_error.as_deref().and_then(text),
            ],
        );
    }
}
