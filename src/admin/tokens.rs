//! Lexer for admin console queries: splits the simple-query text into words, quoted
//! identifiers, string literals, `=` and `;`. Called only by the command parser.
//! Quoting follows SQL (PostgreSQL docs, "Lexical Structure"): `"..."` is an identifier kept
//! byte for byte with `""` for a quote, `'...'` a string with `''` for a quote; bare words keep
//! their case, since PgBouncer matches database names as written.

use super::error::AdminError;

/// One lexical element of a console query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    /// A bare word: letters, digits and `_ . - + : /`, case preserved.
    Word(String),
    /// A `"double quoted"` identifier, unescaped.
    Quoted(String),
    /// A `'single quoted'` string literal, unescaped.
    Literal(String),
    Equals,
    Semicolon,
}

impl Token {
    /// The bare word, for keyword matching; quoted identifiers are never keywords.
    pub(super) fn keyword(&self) -> Option<&str> {
        match self {
            Token::Word(w) => Some(w),
            _ => None,
        }
    }

    /// The name a word or quoted identifier stands for (database names, SET keys).
    pub(super) fn name(&self) -> Option<&str> {
        match self {
            Token::Word(w) | Token::Quoted(w) => Some(w),
            _ => None,
        }
    }

    /// How the token looked, for error messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Token::Word(w) => w.clone(),
            Token::Quoted(w) => format!("\"{w}\""),
            Token::Literal(w) => format!("'{w}'"),
            Token::Equals => "=".into(),
            Token::Semicolon => ";".into(),
        }
    }
}

/// Characters a bare word may contain besides letters and digits. Wider than PgBouncer's
/// `[0-9a-z_]` so that `SET query_wait_timeout = 1.5` or `= 30s` need no quotes.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '+' | ':' | '/')
}

/// Splits `query` into tokens, or says which character or quote is wrong.
pub(super) fn lex(query: &str) -> Result<Vec<Token>, AdminError> {
    let mut tokens = Vec::new();
    let mut chars = query.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '=' => {
                chars.next();
                tokens.push(Token::Equals);
            }
            ';' => {
                chars.next();
                tokens.push(Token::Semicolon);
            }
            '"' | '\'' => {
                chars.next();
                let text = quoted(&mut chars, c)?;
                if c == '"' {
                    if text.is_empty() {
                        return Err(syntax("zero-length quoted identifier \"\""));
                    }
                    tokens.push(Token::Quoted(text));
                } else {
                    tokens.push(Token::Literal(text));
                }
            }
            c if is_word_char(c) => {
                let mut word = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if !is_word_char(c) {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
            other => {
                return Err(syntax(&format!(
                    "unexpected character {other:?} at position {}",
                    at + 1
                )))
            }
        }
    }
    Ok(tokens)
}

/// Reads up to the closing `quote` (after the opening one), turning a doubled quote into one.
fn quoted(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    quote: char,
) -> Result<String, AdminError> {
    let mut text = String::new();
    while let Some((_, c)) = chars.next() {
        if c != quote {
            text.push(c);
        } else if chars.peek().map(|&(_, n)| n) == Some(quote) {
            chars.next();
            text.push(quote);
        } else {
            return Ok(text);
        }
    }
    Err(syntax(if quote == '"' {
        "unterminated quoted identifier"
    } else {
        "unterminated quoted string"
    }))
}

fn syntax(message: &str) -> AdminError {
    AdminError::Syntax(message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(query: &str) -> Vec<Token> {
        lex(query).unwrap()
    }

    #[test]
    fn splits_words_symbols_and_quotes() {
        assert_eq!(
            words("  SET  key='a b' ;"),
            vec![
                Token::Word("SET".into()),
                Token::Word("key".into()),
                Token::Equals,
                Token::Literal("a b".into()),
                Token::Semicolon,
            ]
        );
        assert_eq!(
            words("pause \"My\"\"Db\"\n"),
            vec![Token::Word("pause".into()), Token::Quoted("My\"Db".into())]
        );
        assert_eq!(words("'it''s'"), vec![Token::Literal("it's".into())]);
        assert_eq!(words("''"), vec![Token::Literal(String::new())]);
        assert_eq!(words("x=1.5s"), {
            vec![
                Token::Word("x".into()),
                Token::Equals,
                Token::Word("1.5s".into()),
            ]
        });
        assert_eq!(words("db_ÄÖ"), vec![Token::Word("db_ÄÖ".into())]);
        assert!(words(" \t\r\n").is_empty());
    }

    #[test]
    fn rejects_bad_quotes_and_characters() {
        for (query, needle) in [
            ("pause \"open", "unterminated quoted identifier"),
            ("set a = 'open", "unterminated quoted string"),
            ("pause \"\"", "zero-length"),
            ("show pools, clients", "unexpected character ','"),
            ("select (1)", "position 8"),
        ] {
            let err = lex(query).unwrap_err();
            assert!(matches!(err, AdminError::Syntax(_)), "{query}: {err:?}");
            assert!(err.to_string().contains(needle), "{query}: {err}");
        }
    }

    #[test]
    fn token_accessors() {
        assert_eq!(Token::Word("a".into()).keyword(), Some("a"));
        assert_eq!(Token::Quoted("a".into()).keyword(), None);
        assert_eq!(Token::Quoted("a".into()).name(), Some("a"));
        assert_eq!(Token::Literal("a".into()).name(), None);
        assert_eq!(Token::Literal("a".into()).describe(), "'a'");
        assert_eq!(Token::Quoted("a".into()).describe(), "\"a\"");
    }
}
