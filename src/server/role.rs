//! What a server is: a primary or a standby, whether it accepts writes by default, and how far
//! a standby's replay is behind. Asked once a server has logged in (and by the host checks).
//! PostgreSQL 14 and later report `in_hot_standby` and `default_transaction_read_only` at login
//! (docs, "ParameterStatus"), so the role usually costs nothing; the replay lag, and the role
//! on older servers, take one query.

use std::time::Duration;

use super::exchange::query_rows;
use super::{ServerConn, ServerError};

/// A server's role as pgsluice last saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ServerRole {
    /// In recovery: a hot standby.
    pub(crate) standby: bool,
    /// default_transaction_read_only is on: read-only even on a primary.
    pub(crate) read_only_default: bool,
    /// How far replay is behind what the standby received; None on a primary or when not
    /// asked for.
    pub(crate) lag: Option<Duration>,
}

impl ServerRole {
    pub(crate) fn name(&self) -> &'static str {
        if self.standby {
            "standby"
        } else {
            "primary"
        }
    }
}

/// Replay lag as seconds: zero when everything received is replayed (an idle primary writes
/// nothing, and the age of the last replayed transaction would grow without any lag), else
/// the age of the last transaction replayed — or, when none was replayed since the standby
/// started, the time since then, an upper bound rather than no answer.
const ROLE_QUERY: &str = "select pg_is_in_recovery(), \
     current_setting('default_transaction_read_only'), \
     case when not pg_is_in_recovery() then null \
          when pg_last_wal_receive_lsn() is not distinct from pg_last_wal_replay_lsn() then 0 \
          else extract(epoch from now() - coalesce(pg_last_xact_replay_timestamp(), \
                                                   pg_postmaster_start_time())) end";

/// The server's role; with `with_lag`, a standby's replay lag too (one query).
pub(crate) async fn server_role(
    conn: &mut ServerConn,
    with_lag: bool,
) -> Result<ServerRole, ServerError> {
    let reported = (
        conn.params().get("in_hot_standby"),
        conn.params().get("default_transaction_read_only"),
    );
    if let (Some(standby), Some(read_only), false) = (reported.0, reported.1, with_lag) {
        return Ok(ServerRole {
            standby: standby == "on",
            read_only_default: read_only == "on",
            lag: None,
        });
    }
    let (rows, outcome) = query_rows(conn, ROLE_QUERY).await?;
    if let Some((code, message)) = outcome.error {
        return Err(ServerError::Rejected { code, message });
    }
    let row = rows
        .first()
        .ok_or_else(|| ServerError::Unexpected("no row for the role query".into()))?;
    let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    Ok(ServerRole {
        standby: text(0) == "t",
        read_only_default: text(1) == "on",
        lag: text(2)
            .parse::<f64>()
            .ok()
            .map(|s| Duration::from_secs_f64(s.max(0.0))),
    })
}
