//! A budget of server connections that several pools share: max_db_connections per
//! database and max_user_connections per user (PgBouncer: zero = unlimited).

/// Servers open (or opening) against one limit.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    pub(crate) open: usize,
    pub(crate) limit: usize,
}

impl Budget {
    pub(crate) fn has_room(&self) -> bool {
        self.limit == 0 || self.open < self.limit
    }
}
