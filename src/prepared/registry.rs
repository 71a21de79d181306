//! Pooler-wide interning of prepared statements: every distinct (query text, parameter type
//! OIDs) gets one id and one server-side name `pgsluice_<id>`, shared by all clients that
//! prepare it. Called by the relay when a client sends a named Parse.
//! Invariants: identity is the exact text and types (the hash only picks a bucket); ids are
//! never reused; the map holds weak references, so memory follows the live statements.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use bytes::{Bytes, BytesMut};

use crate::protocol::extended::write_parse;

/// Fewest interns between two sweeps of dead entries. After a sweep leaving `n` entries, the
/// next one comes after max(n, this) interns: the cost per intern stays constant and the map
/// holds at most about twice the live statements, plus this.
const SWEEP_AT_LEAST_EVERY: usize = 256;

/// One interned statement. Immutable; shared by the registry (weakly), the clients that
/// prepared it and nobody else: servers remember only its id and name.
#[derive(Debug)]
pub(crate) struct Statement {
    pub(crate) id: u64,
    /// `pgsluice_<id>`: the name it is prepared under on servers.
    pub(crate) server_name: String,
    /// The session context names in `query` resolve in (the client's search_path): the
    /// same text under another search_path may mean other tables, so another statement.
    pub(crate) context: String,
    pub(crate) query: String,
    pub(crate) param_types: Vec<u32>,
    /// The whole Parse message under `server_name`, ready to send to a server lacking it.
    pub(crate) parse_message: Bytes,
    /// Running it may change the session (`protocol::session_effects`).
    pub(crate) changes_session: bool,
}

#[derive(Debug)]
struct Entries {
    /// Hash of (query, types) → statements with that hash; collisions share a bucket.
    buckets: HashMap<u64, Vec<Weak<Statement>>>,
    /// Weak references held across all buckets, live or dead.
    slots: usize,
    interns_since_sweep: usize,
    sweep_after: usize,
}

/// The statements of the whole pooler.
#[derive(Debug)]
pub(crate) struct Registry {
    entries: Mutex<Entries>,
    next_id: AtomicU64,
    /// Keyed per process, so clients cannot choose texts that collide into one bucket.
    hasher: RandomState,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Registry {
            entries: Mutex::new(Entries {
                buckets: HashMap::new(),
                slots: 0,
                interns_since_sweep: 0,
                sweep_after: SWEEP_AT_LEAST_EVERY,
            }),
            next_id: AtomicU64::new(1),
            hasher: RandomState::new(),
        }
    }

    /// The statement for this text and these types parsed in `context`: the same `Arc` as
    /// long as anyone holds it, else a new statement with a fresh id.
    pub(crate) fn intern(&self, context: &str, query: &str, param_types: &[u32]) -> Arc<Statement> {
        let hash = self.hasher.hash_one((context, query, param_types));
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.interns_since_sweep += 1;
        if entries.interns_since_sweep >= entries.sweep_after {
            entries.sweep();
        }
        let bucket = entries.buckets.entry(hash).or_default();
        let before = bucket.len();
        let mut found = None;
        bucket.retain(|weak| match weak.upgrade() {
            Some(st) => {
                if found.is_none()
                    && st.query == query
                    && st.param_types == param_types
                    && st.context == context
                {
                    found = Some(st);
                }
                true
            }
            None => false,
        });
        let found = found.unwrap_or_else(|| {
            let st = Arc::new(self.new_statement(context, query, param_types));
            bucket.push(Arc::downgrade(&st));
            st
        });
        let after = bucket.len();
        entries.slots = entries.slots + after - before;
        found
    }

    /// Stops handing out statement `id` to new Parses (its plan may be stale after DDL):
    /// the next Parse of the same text gets a fresh statement. Holders keep theirs.
    pub(crate) fn retire(&self, id: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        for bucket in entries.buckets.values_mut() {
            bucket.retain(|weak| weak.upgrade().is_some_and(|st| st.id != id));
        }
    }

    /// Live statements (held by at least one client).
    #[allow(dead_code, reason = "read by the admin console and metrics")]
    pub(crate) fn len(&self) -> usize {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .buckets
            .values()
            .flatten()
            .filter(|weak| weak.strong_count() > 0)
            .count()
    }

    fn new_statement(&self, context: &str, query: &str, param_types: &[u32]) -> Statement {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let server_name = format!("pgsluice_{id}");
        let mut parse = BytesMut::new();
        write_parse(&mut parse, &server_name, query, param_types);
        Statement {
            id,
            server_name,
            context: context.to_owned(),
            query: query.to_owned(),
            param_types: param_types.to_vec(),
            parse_message: parse.freeze(),
            changes_session: crate::protocol::session_effects::may_change_session(query.as_bytes()),
        }
    }

    #[cfg(test)]
    fn slots(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .slots
    }
}

impl Entries {
    /// Drops the entries of statements nobody holds any more.
    fn sweep(&mut self) {
        self.buckets.retain(|_, bucket| {
            bucket.retain(|weak| weak.strong_count() > 0);
            !bucket.is_empty()
        });
        self.slots = self.buckets.values().map(Vec::len).sum();
        self.interns_since_sweep = 0;
        self.sweep_after = SWEEP_AT_LEAST_EVERY.max(self.slots);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::extended::parse_body;

    #[test]
    fn same_text_and_types_share_one_statement() {
        let registry = Registry::new();
        let a = registry.intern("", "select $1", &[23]);
        let b = registry.intern("", "select $1", &[23]);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.server_name, format!("pgsluice_{}", a.id));
        assert_eq!(registry.len(), 1);

        let other_types = registry.intern("", "select $1", &[25]);
        let no_types = registry.intern("", "select $1", &[]);
        let other_text = registry.intern("", "select $1 ", &[23]);
        let ids = [a.id, other_types.id, no_types.id, other_text.id];
        for (i, x) in ids.iter().enumerate() {
            assert!(!ids[i + 1..].contains(x), "id {x} shared: {ids:?}");
        }
        assert_eq!(registry.len(), 4);
    }

    #[test]
    fn parse_message_is_ready_to_send() {
        let registry = Registry::new();
        let st = registry.intern("", "select $1, $2", &[23, 0]);
        let msg = &st.parse_message;
        assert_eq!(msg[0], b'P');
        let len = u32::from_be_bytes([msg[1], msg[2], msg[3], msg[4]]) as usize;
        assert_eq!(len + 1, msg.len());
        let body = parse_body(&msg[5..]).unwrap();
        assert_eq!(body.name, st.server_name);
        assert_eq!(body.query, "select $1, $2");
        assert_eq!(body.param_types, vec![23, 0]);
    }

    #[test]
    fn dropped_statements_get_fresh_ids_and_leave_the_map() {
        let registry = Registry::new();
        let first = registry.intern("", "select 1", &[]);
        let old_id = first.id;
        drop(first);
        assert_eq!(registry.len(), 0);
        let again = registry.intern("", "select 1", &[]);
        assert_ne!(again.id, old_id);
        assert_eq!(
            registry.slots(),
            1,
            "the dead entry was pruned from its bucket"
        );

        // Many short-lived distinct statements: the map stays bounded by the live ones.
        let keep: Vec<_> = (0..10)
            .map(|i| registry.intern("", &format!("select {i} -- kept"), &[]))
            .collect();
        for i in 0..20_000 {
            drop(registry.intern("", &format!("select {i}"), &[]));
            assert!(registry.slots() <= 2 * (keep.len() + 1) + SWEEP_AT_LEAST_EVERY);
        }
        assert_eq!(registry.len(), keep.len() + 1);
        for st in &keep {
            assert!(Arc::ptr_eq(st, &registry.intern("", &st.query, &[])));
        }
    }

    #[test]
    fn concurrent_interns_agree() {
        let registry = Arc::new(Registry::new());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let registry = Arc::clone(&registry);
                std::thread::spawn(move || {
                    (0..100)
                        .map(|i| registry.intern("", &format!("select {i}"), &[]))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let results: Vec<Vec<Arc<Statement>>> =
            handles.into_iter().map(|h| h.join().unwrap()).collect();
        for other in &results[1..] {
            for (a, b) in results[0].iter().zip(other) {
                assert!(Arc::ptr_eq(a, b));
            }
        }
        assert_eq!(registry.len(), 100);
    }
}
