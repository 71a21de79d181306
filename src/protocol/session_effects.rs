//! Whether a piece of SQL may leave state in the session beyond its transaction: a setting
//! (`SET`, `RESET`, `set_config`), a prepared statement, a cursor, a temporary object, a
//! LISTEN or an advisory lock. The relay asks it of every simple Query and Parse in
//! transaction pooling; a yes makes pgsluice read the session's state back from Postgres once
//! the transaction ends. A false yes costs one round trip, a false no could let state cross
//! clients, so whenever in doubt it says yes. It only reads the first words of each statement
//! and looks for a few function names anywhere: a scanner, not a SQL parser.

/// First words of statements that may change the session (PostgreSQL docs "SQL Commands"),
/// besides `SET` and `CREATE TEMP`. `DO` and `CALL` run code that may do anything; `CLOSE`
/// and `DROP` can end state that pins a client to its server.
const SESSION_COMMANDS: [&[u8]; 12] = [
    b"reset",
    b"discard",
    b"prepare",
    b"deallocate",
    b"declare",
    b"listen",
    b"unlisten",
    b"load",
    b"do",
    b"call",
    b"close",
    b"drop",
];

/// `SET` forms that last only as long as their transaction.
const TRANSACTION_SCOPED_SET: [&[u8]; 3] = [b"local", b"transaction", b"constraints"];

/// Functions that change the session from inside any statement, even from a function body
/// quoted in a string: `set_config(…, false)`, `pg_advisory_lock*` and their unlocks.
const SESSION_FUNCTIONS: [&[u8]; 2] = [b"set_config", b"advisory"];

/// True when `sql` (a query text, with or without the trailing NUL) may leave state in the
/// session once its transaction has ended.
pub fn may_change_session(sql: &[u8]) -> bool {
    if SESSION_FUNCTIONS
        .iter()
        .any(|f| contains_ignore_case(sql, f))
    {
        return true;
    }
    let mut scan = Scan { text: sql, pos: 0 };
    loop {
        let Some(first) = scan.word() else {
            // Not a word (a parenthesis, a value): nothing this scanner recognises.
            if !scan.skip_to_next_statement() {
                return false;
            }
            continue;
        };
        if is_session_command(&mut scan, first) {
            return true;
        }
        if !scan.skip_to_next_statement() {
            return false;
        }
    }
}

fn is_session_command(scan: &mut Scan<'_>, first: &[u8]) -> bool {
    if first.eq_ignore_ascii_case(b"set") {
        return !scan.word().is_some_and(|w| {
            TRANSACTION_SCOPED_SET
                .iter()
                .any(|s| w.eq_ignore_ascii_case(s))
        });
    }
    if first.eq_ignore_ascii_case(b"create") {
        // CREATE [OR REPLACE] { TEMP | TEMPORARY | LOCAL TEMP | GLOBAL TEMP } ...
        let mut next = scan.word();
        if next.is_some_and(|w| w.eq_ignore_ascii_case(b"or")) {
            scan.word();
            next = scan.word();
        }
        return next.is_some_and(|w| {
            [&b"temp"[..], b"temporary", b"local", b"global"]
                .iter()
                .any(|t| w.eq_ignore_ascii_case(t))
        });
    }
    SESSION_COMMANDS
        .iter()
        .any(|c| first.eq_ignore_ascii_case(c))
}

/// Names of custom settings (`app.tenant_id`: a dotted name, PostgreSQL docs "Customized
/// Options") that `sql` may set, reset or read: after `SET [SESSION]` or `RESET`, and as a
/// whole quoted literal anywhere (`set_config('app.tenant_id', …)`). Postgres lists such
/// settings nowhere once they are set, so the pooler must know their names to read them back.
/// Lower case, as Postgres folds them; appended to `out`.
pub fn custom_setting_names(sql: &[u8], out: &mut Vec<String>) {
    for literal in quoted_literals(sql) {
        push_if_custom_name(literal, out);
    }
    let mut scan = Scan { text: sql, pos: 0 };
    loop {
        if let Some(first) = scan.word() {
            if first.eq_ignore_ascii_case(b"set") || first.eq_ignore_ascii_case(b"reset") {
                let mut name = scan.dotted_name();
                if name.is_some_and(|n| n.eq_ignore_ascii_case(b"session")) {
                    name = scan.dotted_name();
                }
                if let Some(name) = name {
                    push_if_custom_name(name, out);
                }
            }
        }
        if !scan.skip_to_next_statement() {
            return;
        }
    }
}

/// Custom setting names among a Bind's text parameter values (`rest`: the Bind body after
/// the portal and statement names). A malformed Bind yields nothing: Postgres refuses it.
pub fn bind_parameter_names(rest: &[u8], names: &mut Vec<String>) {
    fn take<'b>(rest: &mut &'b [u8], n: usize) -> Option<&'b [u8]> {
        let (head, tail) = (rest.get(..n)?, rest.get(n..)?);
        *rest = tail;
        Some(head)
    }
    fn int16(rest: &mut &[u8]) -> Option<usize> {
        take(rest, 2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
    let mut rest = rest;
    let Some(formats) = int16(&mut rest) else {
        return;
    };
    if take(&mut rest, formats * 2).is_none() {
        return;
    }
    let Some(count) = int16(&mut rest) else {
        return;
    };
    for _ in 0..count {
        let Some(len) = take(&mut rest, 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        else {
            return;
        };
        let Ok(len) = usize::try_from(len) else {
            continue; // NULL
        };
        match take(&mut rest, len) {
            Some(value) => push_if_custom_name(value, names),
            None => return,
        }
    }
}

/// Longest name Postgres keeps (NAMEDATALEN - 1 per part; a whole custom name is short).
const MAX_NAME: usize = 127;

fn push_if_custom_name(candidate: &[u8], out: &mut Vec<String>) {
    let is_start = |b: &u8| b.is_ascii_alphabetic() || *b == b'_';
    let is_cont = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'$';
    let parts = || candidate.split(|b| *b == b'.');
    let well_formed = candidate.len() <= MAX_NAME
        && parts().count() >= 2
        && parts().all(|p| p.first().is_some_and(is_start) && p.iter().all(is_cont));
    if well_formed {
        let name = String::from_utf8_lossy(candidate).to_ascii_lowercase();
        if !out.contains(&name) {
            out.push(name);
        }
    }
}

/// The contents of every '…' literal (no escapes inside: a name has none).
fn quoted_literals(sql: &[u8]) -> impl Iterator<Item = &[u8]> {
    sql.split(|b| *b == b'\'').skip(1).step_by(2)
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

struct Scan<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> Scan<'a> {
    /// The next word after blanks and comments, if a word comes next.
    fn word(&mut self) -> Option<&'a [u8]> {
        self.skip_blanks();
        let start = self.pos;
        while self
            .text
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b >= 0x80)
        {
            self.pos += 1;
        }
        (self.pos > start).then(|| &self.text[start..self.pos])
    }

    /// A name such as `app.tenant_id` (unquoted parts joined by dots), if one comes next.
    fn dotted_name(&mut self) -> Option<&'a [u8]> {
        self.skip_blanks();
        let start = self.pos;
        while self
            .text
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'.'))
        {
            self.pos += 1;
        }
        (self.pos > start).then(|| &self.text[start..self.pos])
    }

    fn skip_blanks(&mut self) {
        loop {
            match &self.text[self.pos..] {
                [b, ..] if b.is_ascii_whitespace() || *b == 0 => self.pos += 1,
                [b'-', b'-', ..] => self.skip_line(),
                [b'/', b'*', ..] => self.skip_block_comment(),
                _ => return,
            }
        }
    }

    fn skip_line(&mut self) {
        while self.text.get(self.pos).is_some_and(|b| *b != b'\n') {
            self.pos += 1;
        }
    }

    /// PostgreSQL's block comments nest.
    fn skip_block_comment(&mut self) {
        let mut depth = 0usize;
        while self.pos < self.text.len() {
            match &self.text[self.pos..] {
                [b'/', b'*', ..] => {
                    depth += 1;
                    self.pos += 2;
                }
                [b'*', b'/', ..] => {
                    depth -= 1;
                    self.pos += 2;
                    if depth == 0 {
                        return;
                    }
                }
                _ => self.pos += 1,
            }
        }
    }

    /// Moves past the next `;` outside quotes and comments; false at the end of the text.
    fn skip_to_next_statement(&mut self) -> bool {
        while let Some(&b) = self.text.get(self.pos) {
            match b {
                b';' => {
                    self.pos += 1;
                    return true;
                }
                b'\'' => {
                    let escapes = self.pos > 0 && matches!(self.text[self.pos - 1], b'e' | b'E');
                    self.skip_quoted(b'\'', escapes);
                }
                b'"' => self.skip_quoted(b'"', false),
                b'$' => self.skip_dollar_quoted(),
                b'-' if self.text.get(self.pos + 1) == Some(&b'-') => self.skip_line(),
                b'/' if self.text.get(self.pos + 1) == Some(&b'*') => self.skip_block_comment(),
                _ => self.pos += 1,
            }
        }
        false
    }

    /// A quoted string or identifier; a doubled quote stands for one, and in E'' strings a
    /// backslash escapes the next byte.
    fn skip_quoted(&mut self, quote: u8, backslash_escapes: bool) {
        self.pos += 1;
        while let Some(&b) = self.text.get(self.pos) {
            self.pos += 1;
            if backslash_escapes && b == b'\\' {
                self.pos += 1;
            } else if b == quote {
                if self.text.get(self.pos) == Some(&quote) {
                    self.pos += 1;
                } else {
                    return;
                }
            }
        }
    }

    /// `$tag$ … $tag$` (the tag may be empty); a `$` that opens no such string (a parameter
    /// such as `$1`) is passed over.
    fn skip_dollar_quoted(&mut self) {
        let start = self.pos;
        let rest = &self.text[start + 1..];
        let tag_len = rest
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_' || *b >= 0x80))
            .unwrap_or(rest.len());
        if rest.get(tag_len) != Some(&b'$') || rest.first().is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
            return;
        }
        let delimiter = &self.text[start..start + tag_len + 2];
        let body = start + delimiter.len();
        self.pos = match self.text[body..]
            .windows(delimiter.len())
            .position(|w| w == delimiter)
        {
            Some(at) => body + at + delimiter.len(),
            None => self.text.len(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::may_change_session;

    fn yes(sql: &str) {
        assert!(may_change_session(sql.as_bytes()), "missed: {sql}");
    }
    fn no(sql: &str) {
        assert!(!may_change_session(sql.as_bytes()), "flagged: {sql}");
    }

    #[test]
    fn settings_and_session_objects_are_seen() {
        for sql in [
            "SET statement_timeout = '1ms'",
            "set search_path to app",
            "  /* c */ -- x\n SET SESSION work_mem = '4MB'",
            "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SET ROLE admin",
            "SET SESSION AUTHORIZATION bob",
            "RESET ALL",
            "reset work_mem",
            "DISCARD ALL",
            "SELECT 1; SET x.y = 1",
            "SELECT pg_catalog.set_config('app.tenant', '1', false)",
            "select SET_CONFIG($1, $2, false)",
            "SELECT pg_advisory_lock(1)",
            "SELECT pg_try_advisory_lock_shared(1, 2)",
            "PREPARE p AS SELECT 1",
            "DEALLOCATE p",
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "CLOSE c",
            "LISTEN orders",
            "UNLISTEN *",
            "CREATE TEMP TABLE t (a int)",
            "create temporary table t (a int)",
            "CREATE LOCAL TEMPORARY TABLE t (a int)",
            "CREATE OR REPLACE TEMP VIEW v AS SELECT 1",
            "DROP TABLE t",
            "DO $$ BEGIN PERFORM 1; END $$",
            "CALL my_procedure()",
            "LOAD 'auto_explain'",
            "BEGIN; SET work_mem = '1MB'; COMMIT",
            "SELECT 'it''s'; SET a.b = 1",
            "SELECT $q$ ; $q$; SET a.b = 1",
        ] {
            yes(sql);
        }
    }

    #[test]
    fn ordinary_statements_are_not() {
        for sql in [
            "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
            "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
            "INSERT INTO t VALUES (1); SELECT 2",
            "BEGIN",
            "COMMIT",
            "SET LOCAL statement_timeout = '1s'",
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SET CONSTRAINTS ALL DEFERRED",
            "SELECT 'SET a = 1'",
            "SELECT 1 -- ; SET a = 1",
            "SELECT 1 /* ; SET a = 1 */",
            "SELECT \"x;y\" FROM t; SELECT E'\\'; SET a = 1'",
            "SELECT $tag$; SET a = 1$tag$",
            "CREATE TABLE t (a int)",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = app AS 'SELECT 1'",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "",
            ";;",
        ] {
            no(sql);
        }
    }

    fn names(sql: &str) -> Vec<String> {
        let mut out = Vec::new();
        super::custom_setting_names(sql.as_bytes(), &mut out);
        out
    }

    #[test]
    fn custom_setting_names_are_found_where_they_are_set() {
        assert_eq!(names("SET app.tenant_id = '42'"), ["app.tenant_id"]);
        assert_eq!(names("set session App.Mode to x"), ["app.mode"]);
        assert_eq!(names("RESET app.tenant_id"), ["app.tenant_id"]);
        assert_eq!(
            names("SELECT set_config('app.tenant_id', '1', false), current_setting('my.x')"),
            ["app.tenant_id", "my.x"]
        );
        assert_eq!(names("SELECT 1; SET a.b.c = 1"), ["a.b.c"]);
        for none in [
            "SET work_mem = '1MB'",
            "SELECT t.a FROM t",
            "SELECT 'not a name'",
            "SELECT '1.5'",
            "SET search_path = 'x'",
        ] {
            assert!(names(none).is_empty(), "{none}");
        }
        // A Bind body after its names: no format codes, two text values.
        let mut rest = vec![0, 0, 0, 2];
        for value in [&b"app.user"[..], b"42"] {
            rest.extend_from_slice(&(value.len() as i32).to_be_bytes());
            rest.extend_from_slice(value);
        }
        let mut out = Vec::new();
        super::bind_parameter_names(&rest, &mut out);
        assert_eq!(out, ["app.user"]);
        super::bind_parameter_names(&rest[..7], &mut out);
        assert_eq!(out, ["app.user"], "a cut Bind yields nothing more");
    }

    #[test]
    fn a_query_body_with_its_nul_reads_the_same() {
        assert!(may_change_session(b"SET work_mem = 1\0"));
        assert!(!may_change_session(b"SELECT 1\0"));
    }
}
