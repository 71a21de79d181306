//! `auth_type = hba`: which authentication method a connection gets, from an `auth_hba_file`
//! in pg_hba.conf syntax (PostgreSQL docs, "The pg_hba.conf File"), in the subset PgBouncer
//! supports: `local`, `host`, `hostssl` and `hostnossl` records; database and user lists with
//! `all`, `sameuser` (databases), and `@file` inclusions; addresses as CIDR or as an address
//! and a mask; the methods trust, reject, md5, scram-sha-256, password and cert. The first
//! record that matches decides; none matching refuses the connection, as in PostgreSQL.
//! Sans-io apart from reading the files; parsed at start and on RELOAD.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// What a matching record asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HbaMethod {
    Trust,
    Reject,
    Md5,
    ScramSha256,
    Password,
    Cert,
}

/// How a client reached pgsluice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Over the Unix socket.
    Local,
    /// Over TCP from this address, with or without TLS.
    Host { addr: IpAddr, tls: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Local,
    Host,
    HostSsl,
    HostNoSsl,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    kind: Kind,
    databases: Vec<String>,
    users: Vec<String>,
    /// None for local records and `all`.
    network: Option<(IpAddr, u32)>,
    method: HbaMethod,
}

/// A parsed auth_hba_file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hba {
    records: Vec<Record>,
}

impl Hba {
    /// Reads `path` and the `@files` it names (relative to its directory, as PostgreSQL);
    /// every problem is reported as `file:line: what`.
    pub fn load(path: &Path) -> Result<Hba, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read auth_hba_file {}: {e}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        Hba::parse(&text, &path.display().to_string(), &dir)
    }

    pub fn parse(text: &str, name: &str, dir: &Path) -> Result<Hba, String> {
        let mut records = Vec::new();
        let mut problems = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            match record(line, dir) {
                Ok(r) => records.push(r),
                Err(e) => problems.push(format!("{name}:{}: {e}", n + 1)),
            }
        }
        if problems.is_empty() {
            Ok(Hba { records })
        } else {
            Err(problems.join("\n"))
        }
    }

    /// The method of the first record that matches, or None when none does (refused).
    pub fn method(&self, conn: Connection, database: &str, user: &str) -> Option<HbaMethod> {
        self.records
            .iter()
            .find(|r| r.matches(conn, database, user))
            .map(|r| r.method)
    }
}

impl Record {
    fn matches(&self, conn: Connection, database: &str, user: &str) -> bool {
        let kind_ok = match (&self.kind, conn) {
            (Kind::Local, Connection::Local) => true,
            (Kind::Host, Connection::Host { .. }) => true,
            (Kind::HostSsl, Connection::Host { tls, .. }) => tls,
            (Kind::HostNoSsl, Connection::Host { tls, .. }) => !tls,
            _ => false,
        };
        let address_ok = match (self.network, conn) {
            (None, _) => true,
            (Some((net, bits)), Connection::Host { addr, .. }) => in_network(addr, net, bits),
            (Some(_), Connection::Local) => false,
        };
        let db_ok = self
            .databases
            .iter()
            .any(|d| d == "all" || d == database || (d == "sameuser" && database == user));
        let user_ok = self.users.iter().any(|u| u == "all" || u == user);
        kind_ok && address_ok && db_ok && user_ok
    }
}

fn record(line: &str, dir: &Path) -> Result<Record, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let kind = match fields[0] {
        "local" => Kind::Local,
        "host" => Kind::Host,
        "hostssl" => Kind::HostSsl,
        "hostnossl" => Kind::HostNoSsl,
        other => {
            return Err(format!(
                "{other:?} is not local, host, hostssl or hostnossl"
            ))
        }
    };
    let need = if kind == Kind::Local { 4 } else { 5 };
    if fields.len() < need {
        return Err(format!("a {} record needs {need} fields", fields[0]));
    }
    let databases = names(fields[1], dir)?;
    let users = names(fields[2], dir)?;
    if let Some(group) = users.iter().find(|u| u.starts_with('+')) {
        return Err(format!(
            "group membership ({group}) is not supported; list the users"
        ));
    }
    let (network, method_at) = match kind {
        Kind::Local => (None, 3),
        _ => address(&fields[3..])?,
    };
    let method = match fields.get(method_at).copied().unwrap_or("") {
        "trust" => HbaMethod::Trust,
        "reject" => HbaMethod::Reject,
        "md5" => HbaMethod::Md5,
        "scram-sha-256" => HbaMethod::ScramSha256,
        "password" => HbaMethod::Password,
        "cert" => HbaMethod::Cert,
        other => {
            return Err(format!(
                "method {other:?} is not one of trust, reject, md5, scram-sha-256, password, cert"
            ))
        }
    };
    Ok(Record {
        kind,
        databases,
        users,
        network,
        method,
    })
}

/// `all`, a CIDR, or an address and a mask; returns the network and where the method is.
fn address(fields: &[&str]) -> Result<(Option<(IpAddr, u32)>, usize), String> {
    let first = fields[0];
    if first == "all" {
        return Ok((None, 4));
    }
    if let Some((addr, bits)) = first.split_once('/') {
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{first:?} is not an address"))?;
        let bits: u32 = bits
            .parse()
            .map_err(|_| format!("{first:?}: bad mask length"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if bits > max {
            return Err(format!("{first:?}: mask length above {max}"));
        }
        return Ok((Some((addr, bits)), 4));
    }
    let addr: IpAddr = first
        .parse()
        .map_err(|_| format!("{first:?} is not an address (host names are not supported)"))?;
    let mask: IpAddr = fields
        .get(1)
        .ok_or("an address without /bits needs a mask")?
        .parse()
        .map_err(|_| format!("{:?} is not a mask", fields[1]))?;
    let bits = match mask {
        IpAddr::V4(m) => u32::from(m).leading_ones(),
        IpAddr::V6(m) => u128::from(m).leading_ones(),
    };
    Ok((Some((addr, bits)), 5))
}

/// A comma-separated list; `@file` names a file of names (blank- or comma-separated).
fn names(field: &str, dir: &Path) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for item in field.split(',').filter(|s| !s.is_empty()) {
        match item.strip_prefix('@') {
            Some(file) => {
                let path: PathBuf = dir.join(file);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                out.extend(
                    text.lines()
                        .map(|l| l.split('#').next().unwrap_or(""))
                        .flat_map(|l| l.split([',', ' ', '\t']))
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                );
            }
            None => out.push(item.trim_matches('"').to_string()),
        }
    }
    Ok(out)
}

fn in_network(addr: IpAddr, net: IpAddr, bits: u32) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(ip: &str, tls: bool) -> Connection {
        Connection::Host {
            addr: ip.parse().unwrap(),
            tls,
        }
    }

    #[test]
    fn the_first_matching_record_decides() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("admins"), "alice, bob\n# not carol\n").unwrap();
        let hba = Hba::parse(
            "# comment\nlocal all all trust\n\
             hostssl all @admins 10.0.0.0/8 cert\n\
             host shop,sameuser all 10.1.0.0 255.255.0.0 scram-sha-256\n\
             host all all 10.0.0.0/8 md5   # the rest of the network\n\
             hostnossl billing all 0.0.0.0/0 reject\n\
             host all all ::1/128 password\n",
            "hba.conf",
            dir.path(),
        )
        .unwrap();
        use HbaMethod::*;
        assert_eq!(hba.method(Connection::Local, "x", "y"), Some(Trust));
        assert_eq!(hba.method(host("10.2.3.4", true), "x", "alice"), Some(Cert));
        assert_eq!(hba.method(host("10.2.3.4", false), "x", "alice"), Some(Md5));
        assert_eq!(
            hba.method(host("10.1.9.9", false), "shop", "dave"),
            Some(ScramSha256)
        );
        assert_eq!(
            hba.method(host("10.1.9.9", false), "dave", "dave"),
            Some(ScramSha256)
        );
        assert_eq!(
            hba.method(host("192.168.0.1", false), "billing", "x"),
            Some(Reject)
        );
        assert_eq!(hba.method(host("192.168.0.1", true), "billing", "x"), None);
        assert_eq!(hba.method(host("::1", false), "x", "y"), Some(Password));
    }

    #[test]
    fn problems_name_their_line() {
        let err = Hba::parse(
            "host all all 10.0.0.0/33 md5\nhost all all 10.0.0.0/8 ldap\nlocal all +staff md5\nvia all all trust\n",
            "hba.conf",
            Path::new("."),
        )
        .unwrap_err();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 4, "{err}");
        assert!(lines[0].starts_with("hba.conf:1: "), "{err}");
        assert!(lines[1].contains("\"ldap\""), "{err}");
        assert!(lines[2].contains("+staff"), "{err}");
        assert!(lines[3].starts_with("hba.conf:4: \"via\""), "{err}");
    }
}
