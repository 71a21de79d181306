//! Who gets which notification from a listening connection: each subscribed client's
//! channels, whether it is delivering (or suspended while its own server delivers, between
//! an "in" and an "out" marker), the channel index a notification is fanned out by, and the
//! bounded queue each client reads from. Pure bookkeeping: the hub task feeds it what
//! Postgres sent and does what it answers.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc::{self, error::TrySendError};

use super::marker::{Direction, Marker};
use super::Link;

struct Subscriber {
    queue: mpsc::Sender<Bytes>,
    link: Arc<Link>,
    /// The channels it listens on, as the server running its last transaction reported.
    channels: BTreeSet<String>,
    /// The latest hand-over to its transaction's server ("in" marker, or one announced while
    /// there was no connection to see its marker on) and the latest hand-back applied ("out"
    /// marker). Sequence numbers grow with each hand-over, so this connection delivers to the
    /// client only while the last hand-back is newer than the last hand-over, whatever
    /// order late markers come in.
    last_in: u64,
    last_out: u64,
    /// The latest hand-over the client announced, marker seen or not: after a reconnect its
    /// marker may never come, and the client's server is delivering.
    announced_in: u64,
    /// Channels it will listen on from its "out" marker with this sequence number on.
    pending: Option<(u64, BTreeSet<String>)>,
    /// "in" markers up to this sequence number belong to hand-overs that failed.
    stale_up_to: u64,
}

impl Subscriber {
    fn delivering(&self) -> bool {
        self.last_out > 0 && self.last_out >= self.last_in
    }
}

/// A client the fan-out disconnected because its queue was full: its id and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cut {
    pub(super) client: u64,
    pub(super) reason: String,
    /// Notifications it will never get: those waiting in its queue, and the one that did
    /// not fit.
    pub(super) dropped: u64,
}

/// What one notification became.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Fanned {
    pub(super) delivered: u64,
    pub(super) cut: Vec<Cut>,
}

pub(super) struct Fanout {
    subs: HashMap<u64, Subscriber>,
    /// Channel → clients listening on it (delivering or suspended).
    by_channel: HashMap<String, HashSet<u64>>,
}

impl Fanout {
    pub(super) fn new() -> Fanout {
        Fanout {
            subs: HashMap::new(),
            by_channel: HashMap::new(),
        }
    }

    /// A new subscriber: it listens on nothing until its first "out" marker.
    pub(super) fn join(&mut self, client: u64, queue: mpsc::Sender<Bytes>, link: Arc<Link>) {
        self.leave(client);
        self.subs.insert(
            client,
            Subscriber {
                queue,
                link,
                channels: BTreeSet::new(),
                last_in: 0,
                last_out: 0,
                announced_in: 0,
                pending: None,
                stale_up_to: 0,
            },
        );
    }

    pub(super) fn leave(&mut self, client: u64) {
        if let Some(sub) = self.subs.remove(&client) {
            self.unindex(client, &sub.channels);
        }
    }

    /// The client will listen on `channels` from its "out" marker `seq` on.
    pub(super) fn update(&mut self, client: u64, seq: u64, channels: BTreeSet<String>) {
        if let Some(sub) = self.subs.get_mut(&client) {
            sub.pending = Some((seq, channels));
        }
    }

    /// A hand-over to the client's server failed: "in" markers up to `seq` mean nothing, and
    /// this connection delivers to it again (unless a later hand-over is under way).
    pub(super) fn resume(&mut self, client: u64, seq: u64) {
        if let Some(sub) = self.subs.get_mut(&client) {
            sub.stale_up_to = sub.stale_up_to.max(seq);
            if sub.last_in <= seq {
                sub.last_in = sub.last_out.min(sub.last_in);
            }
        }
    }

    /// A hand-over `seq` is starting. Its "in" marker says exactly when; without a
    /// connection (`connected` false) no marker can be seen, and the client's server delivers
    /// from now on.
    pub(super) fn handed_in(&mut self, client: u64, seq: u64, connected: bool) {
        if let Some(sub) = self.subs.get_mut(&client) {
            sub.announced_in = sub.announced_in.max(seq);
            if !connected && seq > sub.stale_up_to {
                sub.last_in = sub.last_in.max(seq);
            }
        }
    }

    /// Every channel some subscriber listens on or is about to.
    pub(super) fn wanted(&self) -> BTreeSet<String> {
        let mut wanted: BTreeSet<String> = self.by_channel.keys().cloned().collect();
        for sub in self.subs.values() {
            if let Some((_, channels)) = &sub.pending {
                wanted.extend(channels.iter().cloned());
            }
        }
        wanted
    }

    /// The "out" markers of hand-overs waiting for a connection to send them on.
    pub(super) fn pending_markers(&self) -> Vec<Marker> {
        self.subs
            .iter()
            .filter_map(|(client, sub)| {
                sub.pending.as_ref().map(|(seq, _)| Marker {
                    direction: Direction::Out,
                    client: *client,
                    seq: *seq,
                })
            })
            .collect()
    }

    pub(super) fn has_subscribers(&self) -> bool {
        !self.subs.is_empty()
    }

    /// Acts on a marker of this connection's sync channel, in the order Postgres sent it.
    pub(super) fn marker(&mut self, m: Marker) {
        let Some(sub) = self.subs.get_mut(&m.client) else {
            return;
        };
        match m.direction {
            Direction::In => {
                if m.seq > sub.stale_up_to {
                    sub.last_in = sub.last_in.max(m.seq);
                }
                sub.link.seen_in.send_replace(m.seq);
            }
            Direction::Out => {
                if sub.pending.as_ref().is_some_and(|(seq, _)| *seq == m.seq) {
                    let (_, channels) = sub.pending.take().expect("checked");
                    self.switch(m.client, m.seq, channels);
                }
            }
            Direction::Back => {
                // A hand-back whose "out" never came settled on these channels.
                let channels = match sub.pending.take() {
                    Some((seq, channels)) if seq < m.seq => channels,
                    Some(newer) => {
                        sub.pending = Some(newer);
                        return;
                    }
                    None => sub.channels.clone(),
                };
                self.switch(m.client, m.seq, channels);
            }
        }
    }

    /// After the connection was lost and opened again: every subscriber hears that
    /// notifications may have been lost (`notice`), and those whose "out" marker never came
    /// take their new channels now.
    pub(super) fn reconnected(&mut self, notice: &Bytes) -> Vec<Cut> {
        let ready: Vec<(u64, u64, BTreeSet<String>)> = self
            .subs
            .iter_mut()
            .filter_map(|(id, sub)| sub.pending.take().map(|(seq, ch)| (*id, seq, ch)))
            .collect();
        for sub in self.subs.values_mut() {
            if sub.announced_in > sub.stale_up_to {
                sub.last_in = sub.last_in.max(sub.announced_in);
            }
        }
        for (client, seq, channels) in ready {
            self.switch(client, seq, channels);
        }
        let clients: Vec<u64> = self.subs.keys().copied().collect();
        clients
            .into_iter()
            .filter_map(|client| self.push(client, notice, "a lost-notifications notice"))
            .collect()
    }

    /// Tells one client that notifications may have been lost.
    pub(super) fn lost(&mut self, client: u64, notice: &Bytes) -> Option<Cut> {
        self.push(client, notice, "a lost-notifications notice")
    }

    /// Fans one notification on `channel` out to its delivering subscribers.
    pub(super) fn notification(&mut self, channel: &str, frame: &Bytes) -> Fanned {
        let mut fanned = Fanned::default();
        let Some(clients) = self.by_channel.get(channel) else {
            return fanned;
        };
        let delivering: Vec<u64> = clients
            .iter()
            .copied()
            .filter(|c| self.subs.get(c).is_some_and(Subscriber::delivering))
            .collect();
        let what = format!("channel \"{channel}\"");
        for client in delivering {
            match self.push(client, frame, &what) {
                None => fanned.delivered += 1,
                Some(cut) => fanned.cut.push(cut),
            }
        }
        fanned
    }

    /// Subscribers per channel (SHOW CHANNELS).
    pub(super) fn channel_counts(&self) -> BTreeMap<String, usize> {
        self.by_channel
            .iter()
            .map(|(ch, clients)| (ch.clone(), clients.len()))
            .collect()
    }

    pub(super) fn subscriber_count(&self) -> usize {
        self.subs.len()
    }

    /// Queues `frame` for `client`; a full queue disconnects it (returned), a gone client
    /// is forgotten.
    fn push(&mut self, client: u64, frame: &Bytes, what: &str) -> Option<Cut> {
        let sub = self.subs.get(&client)?;
        match sub.queue.try_send(frame.clone()) {
            Ok(()) => None,
            Err(TrySendError::Closed(_)) => {
                self.leave(client);
                None
            }
            Err(TrySendError::Full(_)) => {
                let size = sub.queue.max_capacity();
                let reason = format!(
                    "{size} notifications were waiting for this client when {what} had another \
                     (notify_queue_size = {size}); it does not read them"
                );
                sub.link.cut.send_replace(Some(reason.clone()));
                let waiting = size - sub.queue.capacity();
                self.leave(client);
                Some(Cut {
                    client,
                    reason,
                    dropped: waiting as u64 + 1,
                })
            }
        }
    }

    fn switch(&mut self, client: u64, seq: u64, channels: BTreeSet<String>) {
        let Some(sub) = self.subs.get_mut(&client) else {
            return;
        };
        let old = std::mem::replace(&mut sub.channels, channels.clone());
        sub.last_out = sub.last_out.max(seq);
        self.unindex(client, &old);
        for channel in channels {
            self.by_channel.entry(channel).or_default().insert(client);
        }
    }

    fn unindex(&mut self, client: u64, channels: &BTreeSet<String>) {
        for channel in channels {
            if let Some(clients) = self.by_channel.get_mut(channel) {
                clients.remove(&client);
                if clients.is_empty() {
                    self.by_channel.remove(channel);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
