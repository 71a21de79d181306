//! Renders a [`Snapshot`] as the result set of one SHOW command, byte-compatible with
//! PgBouncer's console: same column names, order and declared types (text, int4, int8,
//! numeric), values in text format, then CommandComplete `SHOW`. Called by the console
//! session, which appends ReadyForQuery. Column lists are PgBouncer 1.18's (usage.md), plus
//! prepared_statements and id on CLIENTS/SERVERS and the client limits on DATABASES.

use bytes::BytesMut;

use super::command::ShowWhat;
use super::result_set::{header, int4, row, text, Columns};
use super::snapshot::{ConfigRow, DatabaseRow, PoolRow, Snapshot, UserRow};
use crate::protocol::backend::{
    command_complete, notice_response, notice_response_with_detail, ColumnType,
};
use conns::conns;
use hosts::hosts;
use listeners::{channels, listeners};
use stats::{stats, stats_averages, stats_totals, totals};

mod conns;
mod hosts;
mod listeners;
mod stats;
use crate::protocol::sqlstate;

use ColumnType::{Int4, Text};

pub(super) const POOLS_COLUMNS: &Columns = &[
    ("database", Text),
    ("user", Text),
    ("cl_active", Int4),
    ("cl_waiting", Int4),
    ("cl_active_cancel_req", Int4),
    ("cl_waiting_cancel_req", Int4),
    ("sv_active", Int4),
    ("sv_active_cancel", Int4),
    ("sv_being_canceled", Int4),
    ("sv_idle", Int4),
    ("sv_used", Int4),
    ("sv_tested", Int4),
    ("sv_login", Int4),
    ("maxwait", Int4),
    ("maxwait_us", Int4),
    ("pool_mode", Text),
];

pub(super) const DATABASES_COLUMNS: &Columns = &[
    ("name", Text),
    ("host", Text),
    ("port", Int4),
    ("database", Text),
    ("force_user", Text),
    ("pool_size", Int4),
    ("min_pool_size", Int4),
    ("reserve_pool", Int4),
    ("pool_mode", Text),
    ("max_connections", Int4),
    ("current_connections", Int4),
    ("max_client_connections", Int4),
    ("current_client_connections", Int4),
    ("paused", Int4),
    ("disabled", Int4),
];

pub(super) const USERS_COLUMNS: &Columns = &[("name", Text), ("pool_mode", Text)];

pub(super) const CONFIG_COLUMNS: &Columns = &[
    ("key", Text),
    ("value", Text),
    ("default", Text),
    ("changeable", Text),
];

pub(super) const LISTS_COLUMNS: &Columns = &[("list", Text), ("items", Int4)];

pub(super) const STATE_COLUMNS: &Columns = &[("key", Text), ("value", Text)];

pub(super) const VERSION_COLUMNS: &Columns = &[("version", Text)];

/// SHOW HELP's lines, one command form each, in PgBouncer's order (minus what pgsluice does
/// not implement: SUSPEND, SHOW FDS/SOCKETS/MEM/DNS_*/PEERS).
pub(crate) fn help_text() -> Vec<&'static str> {
    vec![
        "SHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION",
        "SHOW LISTS|STATE|HOSTS|LISTENERS|CHANNELS",
        "SHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS",
        "SET key = arg",
        "RELOAD",
        "PAUSE [<db>]",
        "RESUME [<db>]",
        "DISABLE <db>",
        "ENABLE <db>",
        "RECONNECT [<db>]",
        "KILL [<db>]",
        "KILL_CLIENT <client_id>",
        "SHUTDOWN",
        "SHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS",
        "WAIT_CLOSE [<db>]",
    ]
}

/// Appends the result of one SHOW command: RowDescription, DataRows and CommandComplete
/// `SHOW` (for HELP, a NoticeResponse instead of rows, as PgBouncer sends). The caller
/// appends ReadyForQuery.
pub(crate) fn show(out: &mut BytesMut, what: ShowWhat, snap: &Snapshot) {
    match what {
        ShowWhat::Help => help(out),
        ShowWhat::Pools => pools(out, &snap.pools),
        ShowWhat::Clients => conns(out, &snap.clients),
        ShowWhat::Servers => conns(out, &snap.servers),
        ShowWhat::Stats => stats(out, &snap.stats),
        ShowWhat::StatsTotals => stats_totals(out, &snap.stats),
        ShowWhat::StatsAverages => stats_averages(out, &snap.stats),
        ShowWhat::Totals => totals(out, snap.totals.as_ref(), &snap.stats),
        ShowWhat::Databases => databases(out, &snap.databases),
        ShowWhat::Users => users(out, &snap.users),
        ShowWhat::Config => config(out, &snap.config),
        ShowWhat::Lists => pairs(
            out,
            LISTS_COLUMNS,
            snap.lists.iter().map(|(k, v)| (k, int4(*v))),
        ),
        ShowWhat::State => pairs(
            out,
            STATE_COLUMNS,
            snap.state.iter().map(|(k, v)| (k, text(v))),
        ),
        ShowWhat::Hosts => hosts(out, &snap.hosts),
        ShowWhat::Listeners => listeners(out, &snap.listeners),
        ShowWhat::Channels => channels(out, &snap.channels),
        ShowWhat::Version => {
            header(out, VERSION_COLUMNS);
            row(out, &[text(&snap.version)]);
        }
        ShowWhat::Parameter { name, value } => {
            header(out, &[(name, Text)]);
            row(out, &[text(value)]);
        }
    }
    command_complete(out, "SHOW");
}

/// The answer to a SET of a driver-probed parameter ([`super::Command::IgnoredSet`]): a
/// NOTICE "SET ignored" and the tag SET, as PgBouncer answers. The caller appends
/// ReadyForQuery.
pub(crate) fn set_ignored(out: &mut BytesMut) {
    notice_response(out, sqlstate::SUCCESSFUL_COMPLETION, "SET ignored");
    command_complete(out, "SET");
}

/// One NoticeResponse "Console usage" whose detail lists the commands, each line led by a
/// newline and a tab so psql's `DETAIL:` shows them indented under the heading.
fn help(out: &mut BytesMut) {
    let detail: String = help_text().iter().map(|l| format!("\n\t{l}")).collect();
    notice_response_with_detail(
        out,
        sqlstate::SUCCESSFUL_COMPLETION,
        "Console usage",
        Some(&detail),
    );
}

fn pools(out: &mut BytesMut, pools: &[PoolRow]) {
    header(out, POOLS_COLUMNS);
    for p in pools {
        row(
            out,
            &[
                text(&p.database),
                text(&p.user),
                int4(p.cl_active),
                int4(p.cl_waiting),
                int4(p.cl_active_cancel_req),
                int4(p.cl_waiting_cancel_req),
                int4(p.sv_active),
                int4(p.sv_active_cancel),
                int4(p.sv_being_canceled),
                int4(p.sv_idle),
                int4(p.sv_used),
                int4(p.sv_tested),
                int4(p.sv_login),
                int4(p.maxwait_us / 1_000_000),
                int4(p.maxwait_us % 1_000_000),
                text(&p.pool_mode),
            ],
        );
    }
}

fn databases(out: &mut BytesMut, databases: &[DatabaseRow]) {
    header(out, DATABASES_COLUMNS);
    for d in databases {
        row(
            out,
            &[
                text(&d.name),
                text(&d.host),
                int4(d.port.into()),
                text(&d.database),
                d.force_user.as_deref().and_then(text),
                int4(d.pool_size),
                int4(d.min_pool_size),
                int4(d.reserve_pool),
                d.pool_mode.as_deref().and_then(text),
                int4(d.max_connections),
                int4(d.current_connections),
                int4(d.max_client_connections),
                int4(d.current_client_connections),
                int4(d.paused.into()),
                int4(d.disabled.into()),
            ],
        );
    }
}

fn users(out: &mut BytesMut, users: &[UserRow]) {
    header(out, USERS_COLUMNS);
    for u in users {
        row(out, &[text(&u.name), u.pool_mode.as_deref().and_then(text)]);
    }
}

fn config(out: &mut BytesMut, config: &[ConfigRow]) {
    header(out, CONFIG_COLUMNS);
    for c in config {
        let changeable = if c.changeable { "yes" } else { "no" };
        row(
            out,
            &[
                text(&c.key),
                text(&c.value),
                text(&c.default),
                text(changeable),
            ],
        );
    }
}

/// Two-column result sets (SHOW LISTS, SHOW STATE): one row per pair.
fn pairs<'a>(
    out: &mut BytesMut,
    columns: &Columns,
    rows: impl Iterator<Item = (&'a String, Option<String>)>,
) {
    header(out, columns);
    for (key, value) in rows {
        row(out, &[text(key), value]);
    }
}

#[cfg(test)]
mod tests;
