//! What is prepared on one server connection: an LRU of interned statement ids, bounded by
//! max_prepared_statements (PgBouncer's setting). Owned by the server connection, updated by
//! the relay as it injects Parse and Close messages.
//! Invariant: a statement used during the current client attachment is pinned and never
//! evicted, because closing a statement also drops the portals built from it ("Close").

use std::collections::{BTreeMap, HashMap};

use super::Statement;

#[derive(Debug)]
struct Entry {
    server_name: String,
    /// Position in `by_use`.
    last_use: u64,
    pinned: bool,
}

#[derive(Debug)]
pub(crate) struct ServerStatements {
    entries: HashMap<u64, Entry>,
    /// Use tick → statement id, oldest first.
    by_use: BTreeMap<u64, u64>,
    next_tick: u64,
    capacity: usize,
    evictions: u64,
}

impl ServerStatements {
    pub(crate) fn new(capacity: usize) -> Self {
        ServerStatements {
            entries: HashMap::new(),
            by_use: BTreeMap::new(),
            next_tick: 0,
            capacity,
            evictions: 0,
        }
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.entries.contains_key(&id)
    }

    /// Marks `id` most recently used and pins it for this attachment; unknown ids are ignored.
    pub(crate) fn touch(&mut self, id: u64) {
        let tick = self.next_tick;
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        self.next_tick += 1;
        self.by_use.remove(&entry.last_use);
        self.by_use.insert(tick, id);
        entry.last_use = tick;
        entry.pinned = true;
    }

    /// Records `st` as prepared, most recently used and pinned. Returns the server names to
    /// Close before (or with) its Parse to stay within capacity: least recently used first,
    /// unpinned only. When everything is pinned nothing is returned and the capacity is
    /// exceeded until `unpin_all` lets a later insert catch up. Inserting a statement already
    /// present only touches it.
    pub(crate) fn insert(&mut self, st: &Statement) -> Vec<String> {
        if self.contains(st.id) {
            self.touch(st.id);
            return Vec::new();
        }
        let tick = self.next_tick;
        self.next_tick += 1;
        self.by_use.insert(tick, st.id);
        self.entries.insert(
            st.id,
            Entry {
                server_name: st.server_name.clone(),
                last_use: tick,
                pinned: true,
            },
        );
        let excess = self.entries.len().saturating_sub(self.capacity);
        let victims: Vec<(u64, u64)> = self
            .by_use
            .iter()
            .filter(|(_, id)| !self.entries[id].pinned)
            .take(excess)
            .map(|(&tick, &id)| (tick, id))
            .collect();
        let mut closes = Vec::with_capacity(victims.len());
        for (tick, id) in victims {
            self.by_use.remove(&tick);
            if let Some(entry) = self.entries.remove(&id) {
                closes.push(entry.server_name);
            }
        }
        self.evictions += closes.len() as u64;
        closes
    }

    /// Forgets `id`: Closed by pgsluice, or its Parse failed on this server.
    pub(crate) fn remove(&mut self, id: u64) {
        if let Some(entry) = self.entries.remove(&id) {
            self.by_use.remove(&entry.last_use);
        }
    }

    /// Forgets everything, after DISCARD ALL or DEALLOCATE ALL ran on this server.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.by_use.clear();
    }

    /// The client attachment ended: its statements may be evicted again.
    pub(crate) fn unpin_all(&mut self) {
        for entry in self.entries.values_mut() {
            entry.pinned = false;
        }
    }

    #[allow(dead_code, reason = "read by the admin console and metrics")]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Statements evicted from this server so far.
    #[allow(dead_code, reason = "read by the admin console and metrics")]
    pub(crate) fn evictions(&self) -> u64 {
        self.evictions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepared::Registry;
    use std::sync::Arc;

    fn statements(registry: &Registry, n: usize) -> Vec<Arc<Statement>> {
        (0..n)
            .map(|i| registry.intern("", &format!("select {i}"), &[]))
            .collect()
    }

    #[test]
    fn evicts_least_recently_used_unpinned() {
        let registry = Registry::new();
        let st = statements(&registry, 4);
        let mut server = ServerStatements::new(2);
        assert!(server.insert(&st[0]).is_empty());
        assert!(server.insert(&st[1]).is_empty());
        server.unpin_all();
        server.touch(st[0].id); // st[1] is now the oldest, and st[0] pinned
        server.unpin_all();
        assert_eq!(server.insert(&st[2]), vec![st[1].server_name.clone()]);
        assert!(!server.contains(st[1].id));
        assert!(server.contains(st[0].id) && server.contains(st[2].id));
        server.unpin_all();
        assert_eq!(server.insert(&st[3]), vec![st[0].server_name.clone()]);
        assert_eq!(server.len(), 2);
        assert_eq!(server.evictions(), 2);
    }

    #[test]
    fn pinned_statements_stay_even_over_capacity() {
        let registry = Registry::new();
        let st = statements(&registry, 5);
        let mut server = ServerStatements::new(2);
        for s in &st[..3] {
            assert!(server.insert(s).is_empty(), "all pinned: nothing to close");
        }
        assert_eq!(server.len(), 3);
        assert_eq!(server.evictions(), 0);
        // After the attachment, the next insert catches up: two oldest go, new one stays.
        server.unpin_all();
        let closes = server.insert(&st[3]);
        assert_eq!(
            closes,
            vec![st[0].server_name.clone(), st[1].server_name.clone()]
        );
        assert_eq!(server.len(), 2);
        assert!(server.contains(st[2].id) && server.contains(st[3].id));
        // Touching pins again for the next attachment.
        server.unpin_all();
        server.touch(st[2].id);
        assert_eq!(server.insert(&st[4]), vec![st[3].server_name.clone()]);
        assert_eq!(server.evictions(), 3);
    }

    #[test]
    fn ten_statements_through_two_slots() {
        let registry = Registry::new();
        let st = statements(&registry, 10);
        let mut server = ServerStatements::new(2);
        let mut closed = Vec::new();
        for s in &st {
            closed.extend(server.insert(s));
            server.unpin_all(); // one statement per transaction
        }
        let expected: Vec<String> = st[..8].iter().map(|s| s.server_name.clone()).collect();
        assert_eq!(closed, expected);
        assert_eq!(server.evictions(), 8);
        assert_eq!(server.len(), 2);
    }

    #[test]
    fn reinsert_remove_and_clear() {
        let registry = Registry::new();
        let st = statements(&registry, 3);
        let mut server = ServerStatements::new(2);
        server.insert(&st[0]);
        server.insert(&st[1]);
        server.unpin_all();
        assert!(server.insert(&st[0]).is_empty(), "already there: a touch");
        server.unpin_all();
        assert_eq!(server.insert(&st[2]), vec![st[1].server_name.clone()]);
        server.remove(st[0].id);
        server.remove(st[0].id);
        assert!(!server.contains(st[0].id));
        assert_eq!(server.len(), 1);
        server.clear();
        assert_eq!(server.len(), 0);
        server.touch(st[2].id); // unknown: ignored
        assert!(!server.contains(st[2].id));
        assert_eq!(server.evictions(), 1, "clear and remove are not evictions");
    }

    #[test]
    fn zero_capacity_keeps_only_pinned() {
        let registry = Registry::new();
        let st = statements(&registry, 2);
        let mut server = ServerStatements::new(0);
        assert!(server.insert(&st[0]).is_empty());
        server.unpin_all();
        assert_eq!(server.insert(&st[1]), vec![st[0].server_name.clone()]);
        assert_eq!(server.len(), 1);
    }
}
