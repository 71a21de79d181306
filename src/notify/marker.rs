//! The markers that hand a client's subscriptions between the listening connection and the
//! server running its transaction without losing or repeating a notification. Postgres
//! delivers notifications from one queue, in one order, to every session; a NOTIFY on a
//! channel only pgsluice uses puts a mark in that order that both sessions see. "in" marks
//! where the client's own server starts delivering to it (sent by that server with its
//! LISTENs, in one transaction), "out" where the listening connection takes over again (sent
//! by it with its LISTENs), or "back" for the same when the client's channels did not change
//! (sent by the client's server, which saves the listening connection a round trip). Each
//! session delivers only its side of the mark.

/// Which way a marker hands the client's subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// To the server running the client's transaction.
    In,
    /// Back to the listening connection, with new channels (sent by it, once it LISTENs).
    Out,
    /// Back to the listening connection, the channels as they were (sent by the client's
    /// server, when its transaction left them so).
    Back,
}

/// One marker: the client, and its hand-over's sequence number (each client counts its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Marker {
    pub(crate) direction: Direction,
    pub(crate) client: u64,
    pub(crate) seq: u64,
}

impl Marker {
    /// The payload a NOTIFY on the sync channel carries.
    pub(crate) fn payload(&self) -> String {
        let word = match self.direction {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Back => "back",
        };
        format!("{word} {} {}", self.client, self.seq)
    }

    /// Reads a payload written by `payload`; None for anything else.
    pub(crate) fn parse(payload: &[u8]) -> Option<Marker> {
        let mut words = std::str::from_utf8(payload).ok()?.split(' ');
        let direction = match words.next()? {
            "in" => Direction::In,
            "out" => Direction::Out,
            "back" => Direction::Back,
            _ => return None,
        };
        let client = words.next()?.parse().ok()?;
        let seq = words.next()?.parse().ok()?;
        if words.next().is_some() {
            return None;
        }
        Some(Marker {
            direction,
            client,
            seq,
        })
    }

    /// `NOTIFY` of this marker on `channel`.
    pub(crate) fn notify_sql(&self, channel: &str) -> String {
        format!("NOTIFY {}, '{}'", quote_ident(channel), self.payload())
    }
}

/// The sync channel of one listening connection: unique to this process and pool, so only
/// its own markers reach it. Well under NAMEDATALEN (63 bytes), so Postgres keeps it whole.
pub(crate) fn sync_channel(process_nonce: u64, hub_id: u64) -> String {
    format!("pgsluice_sync_{process_nonce:016x}_{hub_id}")
}

/// A channel name as an SQL identifier: quoted, so its case and characters are kept as the
/// name Postgres reported.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `LISTEN` of each channel, each statement followed by "; ".
pub(crate) fn listen_sql<'a>(channels: impl IntoIterator<Item = &'a str>) -> String {
    let mut sql = String::new();
    for channel in channels {
        sql.push_str("LISTEN ");
        sql.push_str(&quote_ident(channel));
        sql.push_str("; ");
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_read_back() {
        for direction in [Direction::In, Direction::Out, Direction::Back] {
            let m = Marker {
                direction,
                client: 12,
                seq: 7,
            };
            assert_eq!(Marker::parse(m.payload().as_bytes()), Some(m));
        }
        for bad in ["", "in", "in 1", "in 1 x", "up 1 2", "in 1 2 3", "in -1 2"] {
            assert_eq!(Marker::parse(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn names_are_quoted() {
        assert_eq!(quote_ident("Orders \"EU\""), "\"Orders \"\"EU\"\"\"");
        assert_eq!(listen_sql(["a", "B"]), "LISTEN \"a\"; LISTEN \"B\"; ");
        let m = Marker {
            direction: Direction::Out,
            client: 3,
            seq: 1,
        };
        assert_eq!(m.notify_sql("s"), "NOTIFY \"s\", 'out 3 1'");
        assert!(sync_channel(u64::MAX, 99_999).len() < 63);
    }
}
