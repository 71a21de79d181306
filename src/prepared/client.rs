//! One client's named prepared statements: its own names mapped to interned statements, so
//! they survive moving from server to server in transaction mode. Owned by the client's relay.
//! Invariant: the count and the bytes held (names plus query text) never exceed the limits
//! given at creation; an insert past them is refused and changes nothing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;

use super::{LimitError, Statement};

#[derive(Debug)]
pub(crate) struct ClientStatements {
    by_name: HashMap<String, Arc<Statement>>,
    /// The result each statement had when the client parsed it (RowDescription body, empty
    /// for NoData): Postgres fixes it at Parse, and refuses to run the statement once DDL has
    /// changed it ("cached plan must not change result type") until it is parsed again.
    shapes: HashMap<String, Bytes>,
    /// Statements in that refused state.
    stale: HashSet<String>,
    /// Sum of `cost` over the map.
    bytes: usize,
    max_count: usize,
    max_bytes: usize,
}

/// What one entry counts against the byte limit: the client's name and the query text. The
/// text is shared with other clients, but counting it here keeps each client's share bounded.
fn cost(name: &str, st: &Statement) -> usize {
    name.len() + st.query.len()
}

impl ClientStatements {
    /// Limits are taken literally: `max_count` 0 refuses every statement.
    pub(crate) fn new(max_count: usize, max_bytes: usize) -> Self {
        ClientStatements {
            by_name: HashMap::new(),
            shapes: HashMap::new(),
            stale: HashSet::new(),
            bytes: 0,
            max_count,
            max_bytes,
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<Statement>> {
        self.by_name.get(name)
    }

    /// Records `name` → `st`. PostgreSQL refuses a Parse under a name already in use, so the
    /// caller checks with `get` first; if it does not, the old entry is replaced.
    pub(crate) fn insert(&mut self, name: &str, st: Arc<Statement>) -> Result<(), LimitError> {
        let replaced = self.by_name.get(name).map(|old| cost(name, old));
        let count = self.by_name.len();
        if replaced.is_none() && count >= self.max_count {
            return Err(LimitError::Count {
                count,
                max: self.max_count,
            });
        }
        let needed = self.bytes - replaced.unwrap_or(0) + cost(name, &st);
        if needed > self.max_bytes {
            return Err(LimitError::Bytes {
                needed,
                max: self.max_bytes,
            });
        }
        self.bytes = needed;
        self.by_name.insert(name.to_owned(), st);
        self.forget_shape(name);
        Ok(())
    }

    /// The result shape `name` had when it was parsed, once known.
    pub(crate) fn shape(&self, name: &str) -> Option<&Bytes> {
        self.shapes.get(name)
    }

    /// Records the shape `name` was parsed with.
    pub(crate) fn set_shape(&mut self, name: &str, shape: Bytes) {
        if self.by_name.contains_key(name) {
            self.shapes.insert(name.to_owned(), shape);
        }
    }

    /// `name` now has another shape than it was parsed with: Postgres refuses it until the
    /// client parses it again.
    pub(crate) fn mark_stale(&mut self, name: &str) {
        if self.by_name.contains_key(name) {
            self.stale.insert(name.to_owned());
        }
    }

    pub(crate) fn is_stale(&self, name: &str) -> bool {
        self.stale.contains(name)
    }

    fn forget_shape(&mut self, name: &str) {
        self.shapes.remove(name);
        self.stale.remove(name);
    }

    pub(crate) fn remove(&mut self, name: &str) -> Option<Arc<Statement>> {
        self.forget_shape(name);
        let st = self.by_name.remove(name)?;
        self.bytes -= cost(name, &st);
        Some(st)
    }

    pub(crate) fn clear(&mut self) {
        self.by_name.clear();
        self.shapes.clear();
        self.stale.clear();
        self.bytes = 0;
    }

    /// Removes every name, handing the entries back (to restore them if the command that
    /// dropped them fails).
    pub(crate) fn take_all(&mut self) -> Vec<(String, Arc<Statement>)> {
        self.bytes = 0;
        self.shapes.clear();
        self.stale.clear();
        self.by_name.drain().collect()
    }

    #[allow(dead_code, reason = "read by the admin console and metrics")]
    pub(crate) fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Bytes counted against the limit (names plus query text).
    #[allow(dead_code, reason = "read by the admin console and metrics")]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepared::Registry;

    #[test]
    fn names_map_to_statements() {
        let registry = Registry::new();
        let mut client = ClientStatements::new(10, 1000);
        let st = registry.intern("", "select 1", &[]);
        client.insert("s1", Arc::clone(&st)).unwrap();
        client.insert("S1", Arc::clone(&st)).unwrap();
        assert_eq!(client.len(), 2);
        assert!(Arc::ptr_eq(client.get("s1").unwrap(), &st));
        assert!(client.get("s2").is_none());
        assert_eq!(client.bytes(), 2 * (2 + "select 1".len()));

        assert!(Arc::ptr_eq(&client.remove("s1").unwrap(), &st));
        assert!(client.remove("s1").is_none());
        assert_eq!(client.len(), 1);
        assert_eq!(client.bytes(), 2 + "select 1".len());
        client.clear();
        assert_eq!((client.len(), client.bytes()), (0, 0));
        drop(client);
        drop(st);
        assert_eq!(registry.len(), 0, "clients hold the only strong references");
    }

    #[test]
    fn count_limit() {
        let registry = Registry::new();
        let mut client = ClientStatements::new(2, 1000);
        client
            .insert("a", registry.intern("", "select 1", &[]))
            .unwrap();
        client
            .insert("b", registry.intern("", "select 2", &[]))
            .unwrap();
        let err = client
            .insert("c", registry.intern("", "select 3", &[]))
            .unwrap_err();
        assert_eq!(err, LimitError::Count { count: 2, max: 2 });
        assert!(client.get("c").is_none());
        // Replacing an existing name does not add to the count.
        client
            .insert("a", registry.intern("", "select 4", &[]))
            .unwrap();
        assert_eq!(client.get("a").unwrap().query, "select 4");
        client.remove("b");
        client
            .insert("c", registry.intern("", "select 3", &[]))
            .unwrap();
        assert_eq!(client.len(), 2);
        assert!(ClientStatements::new(0, 1000)
            .insert("a", registry.intern("", "x", &[]))
            .is_err());
    }

    #[test]
    fn byte_limit() {
        let registry = Registry::new();
        let mut client = ClientStatements::new(100, 20);
        client
            .insert("a", registry.intern("", "123456789", &[]))
            .unwrap(); // 10 bytes
        let err = client
            .insert("b", registry.intern("", "1234567890", &[])) // 11 bytes
            .unwrap_err();
        assert_eq!(
            err,
            LimitError::Bytes {
                needed: 21,
                max: 20
            }
        );
        assert_eq!((client.len(), client.bytes()), (1, 10));
        // Replacing counts the new text instead of the old one.
        client.insert("a", registry.intern("", "x", &[])).unwrap();
        assert_eq!(client.bytes(), 2);
        client
            .insert("b", registry.intern("", "1234567890", &[]))
            .unwrap();
        assert_eq!(client.bytes(), 13);
        let huge = registry.intern("", &"x".repeat(100), &[]);
        assert!(ClientStatements::new(100, 20).insert("h", huge).is_err());
    }
}
