//! PgBouncer's configuration format, read as PgBouncer reads it (docs, "pgbouncer.ini"):
//! `[section]` headers, `key = value` lines, comment lines starting with `;` or `#` (only at
//! the start of a line), `%include file` (relative to the working directory, as PgBouncer),
//! and in [databases], [users] and [peers] libpq-style connection strings (`key=value`, values
//! optionally in single quotes with `\'` and `\\`). Sans-io apart from `%include`; every entry
//! keeps the file and line it came from, so problems can name them.

use std::path::{Path, PathBuf};

/// One `key = value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniEntry {
    /// The section it is in, lower-cased (`pgbouncer`, `databases`, ...).
    pub section: String,
    /// The key as written; a database name may have been in double quotes.
    pub key: String,
    pub value: String,
    /// `file:line`, for problems.
    pub origin: String,
}

/// Reads `path` and the files it includes, in order.
pub fn read_file(path: &Path) -> Result<Vec<IniEntry>, String> {
    let mut entries = Vec::new();
    let mut section = String::new();
    read_into(path, &mut section, &mut entries, 0)?;
    Ok(entries)
}

fn read_into(
    path: &Path,
    section: &mut String,
    out: &mut Vec<IniEntry>,
    depth: usize,
) -> Result<(), String> {
    // PgBouncer stops at a nesting depth of 10 too, so an include loop is an error, not a hang.
    if depth > 10 {
        return Err(format!("{}: %include nested too deeply", path.display()));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    for (n, raw) in text.lines().enumerate() {
        let origin = format!("{}:{}", path.display(), n + 1);
        let line = raw.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(file) = line.strip_prefix("%include") {
            let file = PathBuf::from(file.trim());
            read_into(&file, section, out, depth + 1)
                .map_err(|e| format!("{origin}: in %include: {e}"))?;
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            let name = name
                .strip_suffix(']')
                .ok_or_else(|| format!("{origin}: a section header must end with ']'"))?;
            *section = name.trim().to_ascii_lowercase();
            continue;
        }
        let (key, value) = split_key(line)
            .ok_or_else(|| format!("{origin}: expected `key = value`, a [section] or a comment"))?;
        if section.is_empty() {
            return Err(format!("{origin}: `{key}` before any [section]"));
        }
        out.push(IniEntry {
            section: section.clone(),
            key,
            value: value.trim().to_string(),
            origin,
        });
    }
    Ok(())
}

/// `key = value`, where the key may be a "quoted" database name containing `=`.
fn split_key(line: &str) -> Option<(String, &str)> {
    if let Some(rest) = line.strip_prefix('"') {
        let end = rest.find('"')?;
        let value = rest[end + 1..].trim_start().strip_prefix('=')?;
        return Some((rest[..end].to_string(), value));
    }
    let (key, value) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty()).then(|| (key.to_string(), value))
}

/// A libpq-style connection string: `key=value` pairs separated by blanks; a value in single
/// quotes may hold blanks, `\'` and `\\` (PostgreSQL docs, "Keyword/Value Connection
/// Strings").
pub fn connection_string(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("missing '=' after {key:?}"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => value.push(chars.next().ok_or("a quoted value ends in '\\'")?),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(format!("unterminated quoted value for {key:?}")),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        pairs.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_comments_quotes_and_includes() {
        let dir = tempfile::tempdir().unwrap();
        let extra = dir.path().join("extra.ini");
        std::fs::write(&extra, "[users]\nalice = pool_mode=session\n").unwrap();
        let main = dir.path().join("pgbouncer.ini");
        std::fs::write(
            &main,
            format!(
                "; a comment\n[databases]\n\"odd=name\" = host=db1 port=5433\n# another\n\
                 * = host=fallback\n[pgbouncer]\nlisten_port = 6432 ; not a comment\n\
                 %include {}\n",
                extra.display()
            ),
        )
        .unwrap();
        let entries = read_file(&main).unwrap();
        let keys: Vec<(&str, &str, &str)> = entries
            .iter()
            .map(|e| (e.section.as_str(), e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("databases", "odd=name", "host=db1 port=5433"),
                ("databases", "*", "host=fallback"),
                ("pgbouncer", "listen_port", "6432 ; not a comment"),
                ("users", "alice", "pool_mode=session"),
            ]
        );
        assert!(entries[0].origin.ends_with("pgbouncer.ini:3"));
        assert!(entries[3].origin.ends_with("extra.ini:2"));
        std::fs::write(&main, "listen_port = 1\n").unwrap();
        assert!(read_file(&main)
            .unwrap_err()
            .contains("before any [section]"));
    }

    #[test]
    fn libpq_connection_strings() {
        let pairs = connection_string(
            "host=db1,db2 port = 5432 connect_query='SELECT \\'x\\', 1' password=''",
        )
        .unwrap();
        assert_eq!(
            pairs,
            [
                ("host".to_string(), "db1,db2".to_string()),
                ("port".to_string(), "5432".to_string()),
                ("connect_query".to_string(), "SELECT 'x', 1".to_string()),
                ("password".to_string(), String::new()),
            ]
        );
        assert!(connection_string("host").is_err());
        assert!(connection_string("q='open").is_err());
    }
}
