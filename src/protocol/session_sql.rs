//! Recognises the SQL commands that change a session's prepared statements — `DEALLOCATE
//! [PREPARE] name`, `DEALLOCATE [PREPARE] ALL`, `DISCARD ALL` (PostgreSQL docs "SQL Commands")
//! — when they are the whole text of a simple Query, so the relay can keep its per-client
//! statement map in step. Re-exported through `protocol::extended`. Only single statements are
//! recognised: a tokenizer, not a SQL parser, and anything unexpected answers `None`.

use std::borrow::Cow;

/// PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes ("Identifiers and Key Words").
const MAX_IDENTIFIER_BYTES: usize = 63;

/// A SQL command that drops prepared statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCommand<'a> {
    /// `DEALLOCATE [PREPARE] ALL`.
    DeallocateAll,
    /// `DEALLOCATE [PREPARE] name`, with the name as PostgreSQL folds it: unquoted names in
    /// ASCII lower case, `"Quoted"` ones as written (`""` read as `"`), both cut to 63 bytes.
    /// Borrowed unless folding or unquoting changed it.
    Deallocate(Cow<'a, str>),
    /// `DISCARD ALL`, which among other things deallocates every prepared statement.
    DiscardAll,
    /// `EXECUTE name [(args)]`: runs a prepared statement, which may be one the client
    /// prepared through the protocol (Postgres shares one name space). `args` is the text
    /// after the name, without a trailing `;`.
    Execute { name: Cow<'a, str>, args: &'a str },
    /// `RESET name`: back to the value the session started with.
    Reset(Cow<'a, str>),
    /// `RESET ALL`.
    ResetAll,
}

/// Reads a simple Query body (text then NUL). Leading whitespace and comments are skipped,
/// keywords are case-insensitive, and one trailing `;` with whitespace or comments after it
/// is allowed; any other text (a second statement included) gives `None`.
pub fn session_command(query_body: &[u8]) -> Option<SessionCommand<'_>> {
    let (&0, text) = query_body.split_last()? else {
        return None;
    };
    if text.contains(&0) {
        return None;
    }
    let mut lexer = Lexer { text, pos: 0 };
    let command = match lexer.next_token() {
        Token::Word(w) if w.eq_ignore_ascii_case(b"deallocate") => deallocate(&mut lexer)?,
        Token::Word(w) if w.eq_ignore_ascii_case(b"execute") => return execute(&mut lexer),
        Token::Word(w) if w.eq_ignore_ascii_case(b"reset") => match lexer.next_token() {
            Token::Word(w) if w.eq_ignore_ascii_case(b"all") => SessionCommand::ResetAll,
            // Two-word forms (RESET SESSION AUTHORIZATION, RESET TIME ZONE) end elsewhere.
            Token::Word(w) => SessionCommand::Reset(fold_unquoted(w)?),
            Token::Quoted(name) => SessionCommand::Reset(truncate(name)),
            _ => return None,
        },
        Token::Word(w) if w.eq_ignore_ascii_case(b"discard") => match lexer.next_token() {
            Token::Word(w) if w.eq_ignore_ascii_case(b"all") => SessionCommand::DiscardAll,
            _ => return None,
        },
        _ => return None,
    };
    match lexer.next_token() {
        Token::End => Some(command),
        Token::Semicolon => matches!(lexer.next_token(), Token::End).then_some(command),
        _ => None,
    }
}

/// After `EXECUTE`: the name, then arguments that hold no `;` but a last one (a `;` inside
/// them could start a second statement, which is not recognised).
fn execute<'a>(lexer: &mut Lexer<'a>) -> Option<SessionCommand<'a>> {
    let name = match lexer.next_token() {
        Token::Word(w) => fold_unquoted(w)?,
        Token::Quoted(name) => truncate(name),
        _ => return None,
    };
    let rest = std::str::from_utf8(&lexer.text[lexer.pos..]).ok()?;
    let args = rest.trim_end().trim_end_matches(';').trim_end();
    if args.contains(';') || args.contains("--") || args.contains("/*") {
        return None;
    }
    Some(SessionCommand::Execute { name, args })
}

/// After `DEALLOCATE`: `[PREPARE] { name | ALL }`. PREPARE is an unreserved keyword, so
/// `DEALLOCATE prepare` names a statement called "prepare"; ALL is reserved, so only the
/// quoted `"all"` can be a name.
fn deallocate<'a>(lexer: &mut Lexer<'a>) -> Option<SessionCommand<'a>> {
    let mut token = lexer.next_token();
    if let Token::Word(w) = token {
        if w.eq_ignore_ascii_case(b"prepare") {
            let before = lexer.pos;
            match lexer.next_token() {
                next @ (Token::Word(_) | Token::Quoted(_)) => token = next,
                _ => lexer.pos = before,
            }
        }
    }
    match token {
        Token::Word(w) if w.eq_ignore_ascii_case(b"all") => Some(SessionCommand::DeallocateAll),
        Token::Word(w) => Some(SessionCommand::Deallocate(fold_unquoted(w)?)),
        Token::Quoted(name) => Some(SessionCommand::Deallocate(truncate(name))),
        _ => None,
    }
}

/// Unquoted identifiers are folded to lower case; like PostgreSQL with a multibyte encoding,
/// only ASCII letters change.
fn fold_unquoted(word: &[u8]) -> Option<Cow<'_, str>> {
    let text = std::str::from_utf8(word).ok()?;
    let folded = if text.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        Cow::Borrowed(text)
    };
    Some(truncate(folded))
}

/// Cuts a name to 63 bytes on a character boundary, as PostgreSQL's truncate_identifier.
fn truncate(name: Cow<'_, str>) -> Cow<'_, str> {
    if name.len() <= MAX_IDENTIFIER_BYTES {
        return name;
    }
    let mut end = MAX_IDENTIFIER_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    match name {
        Cow::Borrowed(s) => Cow::Borrowed(&s[..end]),
        Cow::Owned(mut s) => {
            s.truncate(end);
            Cow::Owned(s)
        }
    }
}

#[derive(Debug)]
enum Token<'a> {
    /// Keyword or unquoted identifier, as written.
    Word(&'a [u8]),
    /// Double-quoted identifier, unescaped.
    Quoted(Cow<'a, str>),
    Semicolon,
    End,
    /// Anything else, including an unterminated comment or quote.
    Other,
}

struct Lexer<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn next_token(&mut self) -> Token<'a> {
        if !self.skip_blanks() {
            return Token::Other;
        }
        let Some(&first) = self.text.get(self.pos) else {
            return Token::End;
        };
        // ident_start / ident_cont of PostgreSQL's scan.l: bytes >= 0x80 are letters.
        let is_start = |b: u8| b.is_ascii_alphabetic() || b == b'_' || b >= 0x80;
        let is_cont = |b: u8| is_start(b) || b.is_ascii_digit() || b == b'$';
        match first {
            b';' => {
                self.pos += 1;
                Token::Semicolon
            }
            b'"' => self.quoted(),
            b if is_start(b) => {
                let start = self.pos;
                while self.text.get(self.pos).is_some_and(|&b| is_cont(b)) {
                    self.pos += 1;
                }
                Token::Word(&self.text[start..self.pos])
            }
            _ => Token::Other,
        }
    }

    /// A `"..."` identifier; `""` inside stands for one quote. Empty or non-UTF-8 is refused.
    fn quoted(&mut self) -> Token<'a> {
        let start = self.pos + 1;
        let mut at = start;
        let mut doubled = false;
        loop {
            match self.text.get(at) {
                None => return Token::Other,
                Some(b'"') if self.text.get(at + 1) == Some(&b'"') => {
                    doubled = true;
                    at += 2;
                }
                Some(b'"') => break,
                Some(_) => at += 1,
            }
        }
        self.pos = at + 1;
        let Ok(raw) = std::str::from_utf8(&self.text[start..at]) else {
            return Token::Other;
        };
        match raw {
            "" => Token::Other, // "zero-length delimited identifier"
            _ if doubled => Token::Quoted(Cow::Owned(raw.replace("\"\"", "\""))),
            _ => Token::Quoted(Cow::Borrowed(raw)),
        }
    }

    /// Skips whitespace, `--` line comments and nested `/* */` block comments; false when a
    /// block comment is not closed.
    fn skip_blanks(&mut self) -> bool {
        loop {
            let rest = &self.text[self.pos..];
            match rest {
                [b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c', ..] => self.pos += 1,
                [b'-', b'-', ..] => {
                    let line = rest.iter().position(|&b| b == b'\n' || b == b'\r');
                    self.pos += line.unwrap_or(rest.len());
                }
                [b'/', b'*', ..] => match block_comment_len(rest) {
                    Some(len) => self.pos += len,
                    None => return false,
                },
                _ => return true,
            }
        }
    }
}

/// Length of the block comment at the front of `text`; PostgreSQL lets them nest.
fn block_comment_len(text: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut at = 0;
    while at + 1 < text.len() {
        match &text[at..at + 2] {
            b"/*" => {
                depth += 1;
                at += 2;
            }
            b"*/" => {
                depth -= 1;
                at += 2;
                if depth == 0 {
                    return Some(at);
                }
            }
            _ => at += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(sql: &str) -> Option<SessionCommand<'static>> {
        let mut body = sql.as_bytes().to_vec();
        body.push(0);
        let body: &'static [u8] = Box::leak(body.into_boxed_slice());
        session_command(body)
    }

    fn dealloc(name: &str) -> Option<SessionCommand<'static>> {
        Some(SessionCommand::Deallocate(Cow::Owned(name.to_string())))
    }

    #[test]
    fn deallocate_names_fold_like_postgres() {
        assert_eq!(cmd("DEALLOCATE s1"), dealloc("s1"));
        assert_eq!(cmd("deallocate MyStmt"), dealloc("mystmt"));
        assert_eq!(cmd("DEALLOCATE \"MyStmt\""), dealloc("MyStmt"));
        assert_eq!(cmd("DEALLOCATE \"a \"\"b\"\"\""), dealloc("a \"b\""));
        assert_eq!(cmd("DEALLOCATE \"all\""), dealloc("all"));
        assert_eq!(cmd("DEALLOCATE _x$1"), dealloc("_x$1"));
        assert_eq!(cmd("DEALLOCATE ÉtÉ"), dealloc("ÉtÉ"));
        let long = "A".repeat(70);
        assert_eq!(cmd(&format!("DEALLOCATE {long}")), dealloc(&"a".repeat(63)));
        let accents = "é".repeat(40); // 80 bytes: cut on a character boundary
        assert_eq!(
            cmd(&format!("DEALLOCATE \"{accents}\"")),
            dealloc(&"é".repeat(31))
        );
        match cmd("deallocate s1") {
            Some(SessionCommand::Deallocate(Cow::Borrowed("s1"))) => {}
            other => panic!("expected a borrowed name, got {other:?}"),
        }
    }

    #[test]
    fn prepare_keyword_and_all() {
        assert_eq!(cmd("DEALLOCATE PREPARE s1"), dealloc("s1"));
        assert_eq!(cmd("DEALLOCATE prepare \"S\""), dealloc("S"));
        assert_eq!(cmd("DEALLOCATE ALL"), Some(SessionCommand::DeallocateAll));
        assert_eq!(
            cmd("Deallocate Prepare All;"),
            Some(SessionCommand::DeallocateAll)
        );
        // PREPARE is unreserved: alone it is the statement's name.
        assert_eq!(cmd("DEALLOCATE PREPARE"), dealloc("prepare"));
        assert_eq!(cmd("DEALLOCATE prepare;"), dealloc("prepare"));
        assert_eq!(cmd("DEALLOCATE PREPARE prepare"), dealloc("prepare"));
        assert_eq!(cmd("discard all"), Some(SessionCommand::DiscardAll));
        assert_eq!(cmd("DISCARD ALL ;"), Some(SessionCommand::DiscardAll));
    }

    #[test]
    fn execute_keeps_its_arguments() {
        let exec = |name: &str, args: &'static str| {
            Some(SessionCommand::Execute {
                name: Cow::Owned(name.to_string()),
                args,
            })
        };
        assert_eq!(cmd("EXECUTE p"), exec("p", ""));
        assert_eq!(cmd("execute P(41, 'x');"), exec("p", "(41, 'x')"));
        assert_eq!(cmd("EXECUTE \"P\" (1)"), exec("P", " (1)"));
        assert_eq!(cmd("EXECUTE p(1); SELECT 2"), None);
        assert_eq!(cmd("EXECUTE p('a;b')"), None);
        assert_eq!(cmd("EXECUTE"), None);
    }

    #[test]
    fn reset_forms() {
        assert_eq!(cmd("RESET ALL"), Some(SessionCommand::ResetAll));
        assert_eq!(
            cmd("reset Application_Name;"),
            Some(SessionCommand::Reset(Cow::Owned("application_name".into())))
        );
        assert_eq!(cmd("RESET SESSION AUTHORIZATION"), None);
        assert_eq!(cmd("RESET a; SELECT 1"), None);
        assert_eq!(cmd("RESET"), None);
    }

    #[test]
    fn comments_and_whitespace() {
        assert_eq!(
            cmd("  \n\t-- cleanup\n/* a /* nested */ one */DEALLOCATE/**/s1 -- bye"),
            dealloc("s1")
        );
        assert_eq!(
            cmd("DISCARD\r\nALL; /* done */ \n"),
            Some(SessionCommand::DiscardAll)
        );
        assert_eq!(cmd("/* unterminated DEALLOCATE s1"), None);
        assert_eq!(cmd("DEALLOCATE s1 /* unterminated"), None);
        assert_eq!(cmd("-- DEALLOCATE s1"), None);
    }

    #[test]
    fn anything_else_is_not_recognised() {
        for sql in [
            "DEALLOCATE ALL; select 1",
            "DEALLOCATE s1; DEALLOCATE s2",
            "DEALLOCATE s1;;",
            "DEALLOCATE",
            "DEALLOCATE;",
            "DEALLOCATE s1 s2",
            "DEALLOCATE \"\"",
            "DEALLOCATE \"open",
            "DEALLOCATE U&\"x\"",
            "DEALLOCATE 1abc",
            "DEALLOCATEs1",
            "DISCARD",
            "DISCARD PLANS",
            "DISCARD \"all\"",
            "DISCARD ALL x",
            "select 1",
            "PREPARE s1 AS select 1",
            "",
        ] {
            assert_eq!(cmd(sql), None, "recognised {sql:?}");
        }
        // Not a Query body: no terminating NUL, or a NUL inside.
        assert_eq!(session_command(b"DISCARD ALL"), None);
        assert_eq!(session_command(b"DISCARD ALL\0x\0"), None);
        assert_eq!(session_command(b""), None);
        assert_eq!(session_command(b"DEALLOCATE \xff\0"), None);
    }
}
