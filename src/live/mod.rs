//! What is connected right now and what passed through, for the admin console and the
//! metrics: one record per client and per server connection (`conn_info`) kept in tables
//! (`conn_table`), each pool's traffic counters (`traffic`), and the process-wide counters
//! (`process_counters`).

mod conn_info;
mod conn_table;
mod process_counters;
mod traffic;

pub(crate) use conn_info::{ConnInfo, ConnState, Endpoints};
pub(crate) use conn_table::{ConnTable, Registration};
pub(crate) use process_counters::ProcessCounters;
pub(crate) use traffic::{PeriodAverages, PoolHistograms, TrafficStats, TrafficTotals};
