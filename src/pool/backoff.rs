//! Telling a server that is down for a moment from one that refuses us, and pacing the retries.
//! Called by the pool when opening a server fails. Transient failures (nothing listening, a
//! reset, a timeout, Postgres starting up or shutting down, too many connections) are retried
//! with capped exponential backoff until query_wait_timeout, so queued clients never notice a
//! restart; anything else is a refusal, remembered for server_login_retry.

use std::time::Duration;

use crate::protocol::sqlstate;
use crate::server::ServerError;

/// First pause after a failed attempt.
const FIRST: Duration = Duration::from_millis(50);
/// Longest pause: a restarted Postgres is noticed within about a second.
const CAP: Duration = Duration::from_secs(1);

/// Pauses of 50 ms doubling up to 1 s, each shortened by up to a quarter at random so that
/// many clients retrying at once do not knock in lockstep.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST }
    }
}

impl Backoff {
    pub(crate) fn pause(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(CAP);
        let jitter = rand::random::<f64>() * 0.25;
        base.mul_f64(1.0 - jitter)
    }
}

/// Whether a failed connect/login is worth retrying soon.
pub(crate) fn is_transient(e: &ServerError) -> bool {
    match e {
        ServerError::Connect { .. }
        | ServerError::Timeout(_)
        | ServerError::Io(_)
        | ServerError::Closed
        // A failover: the primary is gone or not promoted yet, a standby lags.
        | ServerError::NoHostFits(_) => true,
        // PostgreSQL docs, Appendix A: class 08 connection exception, class 53 insufficient
        // resources (53300 too_many_connections), 57P01 admin_shutdown, 57P02 crash_shutdown,
        // 57P03 cannot_connect_now (starting up, shutting down, in recovery).
        ServerError::Rejected { code, .. } => {
            code.starts_with("08")
                || code.starts_with("53")
                || matches!(
                    code.as_str(),
                    sqlstate::ADMIN_SHUTDOWN
                        | sqlstate::CRASH_SHUTDOWN
                        | sqlstate::CANNOT_CONNECT_NOW
                )
        }
        // A refused or failed TLS negotiation is a configuration matter, not a blip.
        ServerError::Protocol(_)
        | ServerError::Unexpected(_)
        | ServerError::Auth(_)
        | ServerError::Scram(_)
        | ServerError::Tls(_)
        | ServerError::TlsRefused(_) => false,
    }
}

/// Whether a failed connect says the primary is not there — nothing answers, the connection
/// broke, Postgres is shutting down, starting up or in recovery, or only standbys answered —
/// so a read-write pool holds its new transactions for failover_hold_timeout. A primary that
/// is merely full (53300) is no failover.
pub(crate) fn primary_missing(e: &ServerError) -> bool {
    match e {
        ServerError::Rejected { code, .. } => is_transient(e) && !code.starts_with("53"),
        other => is_transient(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(code: &str) -> ServerError {
        ServerError::Rejected {
            code: code.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn pauses_double_up_to_the_cap() {
        let mut b = Backoff::default();
        let pauses: Vec<Duration> = (0..8).map(|_| b.pause()).collect();
        let bases = [50, 100, 200, 400, 800, 1000, 1000, 1000];
        for (p, base) in pauses.iter().zip(bases) {
            let base = Duration::from_millis(base);
            assert!(*p <= base && *p >= base.mul_f64(0.75), "{p:?} vs {base:?}");
        }
    }

    #[test]
    fn restarts_and_overload_are_transient_refusals_are_not() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(is_transient(&ServerError::Connect {
            address: "127.0.0.1:5432".into(),
            source: refused,
        }));
        assert!(is_transient(&ServerError::Closed));
        assert!(is_transient(&ServerError::Timeout(Duration::from_secs(1))));
        for code in ["57P03", "57P01", "57P02", "53300", "08006"] {
            assert!(is_transient(&rejected(code)), "{code}");
        }
        for code in ["28P01", "28000", "3D000", "42501"] {
            assert!(!is_transient(&rejected(code)), "{code}");
        }
        assert!(!is_transient(&ServerError::Auth("no password".into())));
    }

    #[test]
    fn a_full_primary_is_no_failover() {
        assert!(primary_missing(&ServerError::Closed));
        assert!(primary_missing(&ServerError::NoHostFits(
            "read-write".into()
        )));
        assert!(primary_missing(&rejected("57P01")));
        assert!(!primary_missing(&rejected("53300")));
        assert!(!primary_missing(&rejected("28P01")));
    }
}
