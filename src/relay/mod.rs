//! Forwarding between a client and its attached server: the session loop that drives both
//! directions (each a `net::pump::Pump`) until the client leaves, a side fails, or a stop at
//! the next idle point is asked for, keeping `protocol::tracker::Tracker` up to date.

mod directions;
mod end;
mod replies;
mod session;
mod sql_commands;
mod statements;

pub(crate) use end::{RelayEnd, ServerLost};
pub(crate) use replies::ReplyPlan;
pub(crate) use session::{relay, Activity, ClientSide, RelayStops, SessionEffects};
pub(crate) use statements::Prepared;
