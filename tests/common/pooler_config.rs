//! Builder for the `pooler.toml` and `userlist.txt` a test's pgsluice starts with.
//! Called by tests (`PoolerConfig::new(cluster).pooler("pool_mode = \"transaction\"")`) and by
//! `pooler.rs`, which renders it into the pooler's temp dir. Invariant: a key appears at most
//! once per section — a later line with the same key replaces the earlier one in place.

use std::path::Path;

use super::pg::PgCluster;
use super::pgsetup::{
    ADMIN_PASS, ADMIN_USER, MD5_PASS, MD5_USER, PLAIN_PASS, PLAIN_USER, SCRAM_PASS, SCRAM_USER,
    TEST_DB, TRUST_PASS, TRUST_USER,
};

#[derive(Clone, Debug)]
pub struct PoolerConfig {
    pg_host: String,
    pg_port: u16,
    /// Raw `key = value` lines for `[pooler]`, applied over the defaults at render time.
    pooler_lines: Vec<String>,
    /// `[databases.<name>]` sections: name and raw lines (host/port defaults merged in).
    databases: Vec<(String, Vec<String>)>,
    /// `[users.<name>]` sections: name and raw lines.
    users: Vec<(String, Vec<String>)>,
    userlist: Vec<(String, String)>,
    env: Vec<(String, String)>,
    /// Extra files written next to pooler.toml (mode 0600): certificates and keys.
    files: Vec<(String, String)>,
    /// The open-files limit (soft, hard) pgsluice starts with, set with util-linux prlimit.
    open_files: Option<(u64, u64)>,
    /// Other sections (`[peers.1]`): dotted name and raw lines, rendered last.
    sections: Vec<(String, Vec<String>)>,
    /// The file pgsluice is started with, when not the rendered pooler.toml (a pgbouncer.ini
    /// given with `file`).
    config_name: Option<String>,
}

impl PoolerConfig {
    /// One database `testdb` on `cluster`, the default userlist, md5 client auth.
    pub fn new(cluster: &PgCluster) -> Self {
        Self::for_server(cluster.host(), cluster.port())
    }

    /// Same as `new`, for a server address that is not a harness cluster (e.g. a dead port).
    pub fn for_server(host: &str, port: u16) -> Self {
        let userlist = [
            (TRUST_USER, TRUST_PASS),
            (MD5_USER, MD5_PASS),
            (SCRAM_USER, SCRAM_PASS),
            (PLAIN_USER, PLAIN_PASS),
            (ADMIN_USER, ADMIN_PASS),
        ];
        Self {
            pg_host: host.to_owned(),
            pg_port: port,
            pooler_lines: Vec::new(),
            databases: vec![(TEST_DB.to_owned(), Vec::new())],
            users: Vec::new(),
            userlist: userlist
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            env: Vec::new(),
            files: Vec::new(),
            open_files: None,
            sections: Vec::new(),
            config_name: None,
        }
    }

    /// Start pgsluice with `-c <name>`, a file given with `file`, instead of pooler.toml.
    pub fn config_file(mut self, name: &str) -> Self {
        self.config_name = Some(name.to_owned());
        self
    }

    pub fn config_name(&self) -> Option<&str> {
        self.config_name.as_deref()
    }

    /// Any other section, such as `section("peers.2", "host = \"127.0.0.1\"\nport = 6433")`.
    pub fn section(mut self, name: &str, lines: &str) -> Self {
        self.sections.push((name.to_owned(), split_lines(lines)));
        self
    }

    /// A file next to pooler.toml (name relative to it), written before pgsluice starts and
    /// again by `rewrite_config`; TLS settings name such files relatively.
    pub fn file(mut self, name: &str, contents: &str) -> Self {
        match self.files.iter_mut().find(|(n, _)| n == name) {
            Some((_, c)) => *c = contents.to_owned(),
            None => self.files.push((name.to_owned(), contents.to_owned())),
        }
        self
    }

    pub fn files(&self) -> &[(String, String)] {
        &self.files
    }

    /// Adds (or replaces, by key) lines in `[pooler]`; `lines` may hold several, one per line.
    pub fn pooler(mut self, lines: &str) -> Self {
        self.pooler_lines.extend(split_lines(lines));
        self
    }

    /// Adds a `[databases.<name>]` section (host/port of the cluster unless `lines` set them),
    /// or replaces the lines of an existing one (`testdb` included).
    pub fn database(mut self, name: &str, lines: &str) -> Self {
        let lines = split_lines(lines);
        match self.databases.iter_mut().find(|(n, _)| n == name) {
            Some((_, existing)) => *existing = lines,
            None => self.databases.push((name.to_owned(), lines)),
        }
        self
    }

    /// Adds a `[users.<name>]` section of per-user overrides.
    pub fn user(mut self, name: &str, lines: &str) -> Self {
        self.users.push((name.to_owned(), split_lines(lines)));
        self
    }

    /// Drops a database section, e.g. the default `testdb`.
    pub fn without_database(mut self, name: &str) -> Self {
        self.databases.retain(|(n, _)| n != name);
        self
    }

    /// Sets (or replaces) the userlist secret of `user`: a plain password, an `md5...` hash or a
    /// `SCRAM-SHA-256$...` verifier, as the pooler's auth_file accepts them.
    pub fn userlist_entry(mut self, user: &str, secret: &str) -> Self {
        match self.userlist.iter_mut().find(|(u, _)| u == user) {
            Some((_, s)) => *s = secret.to_owned(),
            None => self.userlist.push((user.to_owned(), secret.to_owned())),
        }
        self
    }

    /// Leaves `user` out of userlist.txt.
    pub fn userlist_without(mut self, user: &str) -> Self {
        self.userlist.retain(|(u, _)| u != user);
        self
    }

    /// An environment variable for the pgsluice process (e.g. `RUST_LOG`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn env_vars(&self) -> &[(String, String)] {
        &self.env
    }

    /// Starts pgsluice with this open-files limit, as a login shell's `ulimit -n` would.
    pub fn open_files(mut self, soft: u64, hard: u64) -> Self {
        self.open_files = Some((soft, hard));
        self
    }

    pub fn open_files_limit(&self) -> Option<(u64, u64)> {
        self.open_files
    }

    /// The raw value of a `[pooler]` key a test set explicitly (e.g. `listen_port`).
    pub fn pooler_value(&self, key: &str) -> Option<&str> {
        self.pooler_lines
            .iter()
            .rev()
            .find(|line| line_key(line) == Some(key))
            .and_then(|line| line.split_once('='))
            .map(|(_, value)| value.trim())
    }

    /// The whole `pooler.toml`; `dir` is the pooler's own directory (its Unix socket lives there).
    pub fn render_toml(&self, listen_port: u16, dir: &Path) -> String {
        let defaults = vec![
            // Loopback only: tests never expose the pooler further.
            "listen_addr = \"127.0.0.1\"".to_owned(),
            format!("listen_port = {listen_port}"),
            format!("unix_socket_dir = {}", toml_str(&dir.to_string_lossy())),
            "auth_type = \"md5\"".to_owned(),
            "auth_file = \"userlist.txt\"".to_owned(),
            "admin_users = [\"admin\"]".to_owned(),
        ];
        let mut out = String::from("# written by the pgsluice test harness\n[pooler]\n");
        push_lines(&mut out, &merge(defaults, &self.pooler_lines));
        for (name, lines) in &self.databases {
            let defaults = vec![
                format!("host = {}", toml_str(&self.pg_host)),
                format!("port = {}", self.pg_port),
            ];
            out.push_str(&format!("\n[databases.{}]\n", toml_key(name)));
            push_lines(&mut out, &merge(defaults, lines));
        }
        for (name, lines) in &self.users {
            out.push_str(&format!("\n[users.{}]\n", toml_key(name)));
            push_lines(&mut out, lines);
        }
        for (name, lines) in &self.sections {
            out.push_str(&format!("\n[{name}]\n"));
            push_lines(&mut out, lines);
        }
        out
    }

    /// `userlist.txt`: one `"user" "secret"` per line, a `"` inside doubled.
    pub fn render_userlist(&self) -> String {
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        self.userlist
            .iter()
            .map(|(u, s)| format!("{} {}\n", quote(u), quote(s)))
            .collect()
    }
}

fn split_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The bare key of a `key = value` line; comments and odd lines have none.
fn line_key(line: &str) -> Option<&str> {
    if line.starts_with('#') {
        return None;
    }
    line.split_once('=').map(|(k, _)| k.trim())
}

/// Applies `overrides` over `base`: same key replaces in place, new keys are appended.
fn merge(base: Vec<String>, overrides: &[String]) -> Vec<String> {
    let mut out = base;
    for line in overrides {
        let slot = line_key(line).and_then(|k| out.iter().position(|l| line_key(l) == Some(k)));
        match slot {
            Some(i) => out[i] = line.clone(),
            None => out.push(line.clone()),
        }
    }
    out
}

fn push_lines(out: &mut String, lines: &[String]) {
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Bare TOML keys allow only `A-Za-z0-9_-`; anything else must be quoted.
fn toml_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_owned()
    } else {
        toml_str(name)
    }
}
