//! Test helper: reads rendered console output back with postgres-protocol's parser (what a
//! real client runs), so tests check column names, types and values as a client sees them.

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::Message;

/// One result set as a client decodes it.
#[derive(Debug, Default)]
pub(super) struct ResultSet {
    /// (name, type OID, type size) per column.
    pub(super) columns: Vec<(String, u32, i16)>,
    pub(super) rows: Vec<Vec<Option<String>>>,
    /// (message, detail) of each NoticeResponse.
    pub(super) notices: Vec<(String, Option<String>)>,
    pub(super) tag: Option<String>,
}

impl ResultSet {
    pub(super) fn names(&self) -> Vec<&str> {
        self.columns.iter().map(|(n, _, _)| n.as_str()).collect()
    }

    /// The value of `column` in row `row`; panics when the column does not exist.
    pub(super) fn get(&self, row: usize, column: &str) -> Option<&str> {
        let at = self
            .columns
            .iter()
            .position(|(n, _, _)| n == column)
            .unwrap_or_else(|| panic!("no column {column} in {:?}", self.names()));
        self.rows[row][at].as_deref()
    }

    /// The type OID of `column`.
    pub(super) fn oid(&self, column: &str) -> u32 {
        self.columns
            .iter()
            .find(|(n, _, _)| n == column)
            .map(|(_, oid, _)| *oid)
            .unwrap_or_else(|| panic!("no column {column}"))
    }
}

/// Parses every message in `out`; panics on anything malformed or unexpected, or on a
/// DataRow whose width differs from the RowDescription.
pub(super) fn read(out: &BytesMut) -> ResultSet {
    let mut buf = out.clone();
    let mut set = ResultSet::default();
    while let Some(message) = Message::parse(&mut buf).expect("well-formed message") {
        match message {
            Message::RowDescription(body) => {
                let fields: Vec<_> = body.fields().collect().unwrap();
                for f in fields {
                    assert_eq!(f.format(), 0, "text format");
                    set.columns
                        .push((f.name().to_string(), f.type_oid(), f.type_size()));
                }
            }
            Message::DataRow(body) => {
                let ranges: Vec<_> = body.ranges().collect().unwrap();
                assert_eq!(ranges.len(), set.columns.len(), "row width");
                let row = ranges
                    .into_iter()
                    .map(|r| r.map(|r| String::from_utf8(body.buffer()[r].to_vec()).unwrap()))
                    .collect();
                set.rows.push(row);
            }
            Message::NoticeResponse(body) => {
                let fields: Vec<(u8, String)> = body
                    .fields()
                    .map(|f| {
                        Ok((
                            f.type_(),
                            String::from_utf8(f.value_bytes().to_vec()).unwrap(),
                        ))
                    })
                    .collect()
                    .unwrap();
                let find = |t: u8| fields.iter().find(|(k, _)| *k == t).map(|(_, v)| v.clone());
                set.notices.push((find(b'M').unwrap(), find(b'D')));
            }
            Message::CommandComplete(body) => {
                assert!(set.tag.is_none(), "one CommandComplete");
                set.tag = Some(body.tag().unwrap().to_string());
            }
            _ => panic!("unexpected message"),
        }
    }
    assert!(buf.is_empty(), "trailing partial message");
    set
}
