//! The pieces every SHOW result set is made of: typed columns (RowDescription) and rows of
//! values in text format (DataRow), with the int4/int8/numeric formatting PgBouncer's
//! console declares. Used by `render` and its parts.

use bytes::BytesMut;

use crate::protocol::backend::{data_row, row_description_typed, ColumnType};

/// A result set's columns: name and declared type.
pub(super) type Columns = [(&'static str, ColumnType)];

pub(super) fn header(out: &mut BytesMut, columns: &Columns) {
    row_description_typed(out, columns);
}

/// A DataRow of already formatted values; `None` is SQL NULL.
pub(super) fn row(out: &mut BytesMut, values: &[Option<String>]) {
    let refs: Vec<Option<&str>> = values.iter().map(Option::as_deref).collect();
    data_row(out, &refs);
}

pub(super) fn text(value: &str) -> Option<String> {
    Some(value.to_string())
}

/// An int4 column's value. Saturates at i32::MAX: a typed client (psycopg, pgx) would fail
/// to decode a larger number in a column declared int4.
pub(super) fn int4(value: u64) -> Option<String> {
    Some(i32::try_from(value).unwrap_or(i32::MAX).to_string())
}

/// An int8 column's value, saturating at i64::MAX for the same reason as [`int4`].
pub(super) fn int8(value: u64) -> Option<String> {
    Some(i64::try_from(value).unwrap_or(i64::MAX).to_string())
}

/// A numeric column's value: PgBouncer's type for 64-bit counters, which holds any u64.
pub(super) fn numeric(value: u64) -> Option<String> {
    Some(value.to_string())
}
