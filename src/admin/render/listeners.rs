//! SHOW LISTENERS and SHOW CHANNELS: the LISTEN connection each pool keeps for its clients
//! in transaction and statement pooling (its state, server, traffic, slow clients cut off,
//! reconnects), and the channels its clients listen on. pgsluice's own commands (PgBouncer
//! does not carry LISTEN across transactions).

use bytes::BytesMut;

use crate::admin::result_set::{header, int4, int8, row, text, Columns};
use crate::admin::snapshot::{ChannelRow, ListenerRow};
use crate::protocol::backend::ColumnType::{Int4, Int8, Text};

pub(crate) const LISTENERS_COLUMNS: &Columns = &[
    ("database", Text),
    ("user", Text),
    ("state", Text),
    ("host", Text),
    ("pid", Int4),
    ("connect_time_s", Int8),
    ("channels", Int4),
    ("subscribers", Int4),
    ("received", Int8),
    ("delivered", Int8),
    ("dropped", Int8),
    ("slow_clients_cut", Int8),
    ("reconnects", Int8),
    ("loss_notices", Int8),
];

pub(crate) const CHANNELS_COLUMNS: &Columns = &[
    ("database", Text),
    ("user", Text),
    ("channel", Text),
    ("subscribers", Int4),
    ("delivered", Int8),
];

pub(crate) fn listeners(out: &mut BytesMut, rows: &[ListenerRow]) {
    header(out, LISTENERS_COLUMNS);
    for l in rows {
        row(
            out,
            &[
                text(&l.database),
                text(&l.user),
                text(&l.state),
                text(&l.host),
                l.pid.and_then(int4),
                l.connected_s.and_then(int8),
                int4(l.channels),
                int4(l.subscribers),
                int8(l.received),
                int8(l.delivered),
                int8(l.dropped),
                int8(l.slow_clients_cut),
                int8(l.reconnects),
                int8(l.loss_notices),
            ],
        );
    }
}

pub(crate) fn channels(out: &mut BytesMut, rows: &[ChannelRow]) {
    header(out, CHANNELS_COLUMNS);
    for c in rows {
        row(
            out,
            &[
                text(&c.database),
                text(&c.user),
                text(&c.channel),
                int4(c.subscribers),
                int8(c.delivered),
            ],
        );
    }
}
