//! Admin console command parser: one simple-query string in, one [`Command`] out, with
//! PgBouncer's grammar (usage.md, "Admin console"): `WORD [arg] [;]` or
//! `SET key = value` / `SET key TO 'value'`. Called by the console session for every Query.
//! Keywords are case-insensitive; database names keep their case as written (PgBouncer does
//! not fold them) or come `"quoted"`. Exactly one command per query.

use super::error::AdminError;
use super::tokens::{lex, Token};

/// What a SHOW command lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShowWhat {
    Help,
    Pools,
    Clients,
    Servers,
    Stats,
    StatsTotals,
    StatsAverages,
    Totals,
    Databases,
    Users,
    Config,
    Lists,
    State,
    /// pgsluice's own: database hosts, their roles and lag.
    Hosts,
    /// pgsluice's own: each pool's LISTEN connection.
    Listeners,
    /// pgsluice's own: the channels clients listen on, per pool.
    Channels,
    Version,
    /// `SHOW client_encoding` and the like: the fixed answers PgBouncer gives drivers that
    /// probe session parameters on connect; one text column named `name`.
    Parameter {
        name: &'static str,
        value: &'static str,
    },
}

/// How SHUTDOWN waits (usage.md, "SHUTDOWN WAIT_FOR_SERVERS / WAIT_FOR_CLIENTS").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShutdownMode {
    Immediate,
    WaitForServers,
    WaitForClients,
}

/// One parsed console command. Database arguments are `None` for "all databases".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// An empty query (only blanks or `;`): answer EmptyQueryResponse, as PostgreSQL does.
    Empty,
    Show(ShowWhat),
    Pause(Option<String>),
    Resume(Option<String>),
    Disable(String),
    Enable(String),
    Kill(Option<String>),
    KillClient(u64),
    Reconnect(Option<String>),
    WaitClose(Option<String>),
    Reload,
    Shutdown(ShutdownMode),
    /// `key` is lower-cased unless it was quoted; `value` is unquoted and unescaped.
    Set {
        key: String,
        value: String,
    },
    /// SET of a session parameter a driver sends on connect (client_encoding...): PgBouncer
    /// answers a NOTICE "SET ignored" and the tag SET; see `render::set_ignored`.
    IgnoredSet {
        key: String,
    },
}

/// SHOW subjects, matched case-insensitively.
const SHOW_SUBJECTS: &[(&str, ShowWhat)] = &[
    ("HELP", ShowWhat::Help),
    ("POOLS", ShowWhat::Pools),
    ("CLIENTS", ShowWhat::Clients),
    ("SERVERS", ShowWhat::Servers),
    ("STATS", ShowWhat::Stats),
    ("STATS_TOTALS", ShowWhat::StatsTotals),
    ("STATS_AVERAGES", ShowWhat::StatsAverages),
    ("TOTALS", ShowWhat::Totals),
    ("DATABASES", ShowWhat::Databases),
    ("USERS", ShowWhat::Users),
    ("CONFIG", ShowWhat::Config),
    ("LISTS", ShowWhat::Lists),
    ("STATE", ShowWhat::State),
    ("HOSTS", ShowWhat::Hosts),
    ("LISTENERS", ShowWhat::Listeners),
    ("CHANNELS", ShowWhat::Channels),
    ("VERSION", ShowWhat::Version),
];

/// PgBouncer SHOW subjects that expose its C internals (sockets, slabs, its DNS cache, online
/// restart, peering), which pgsluice does not have.
const UNSUPPORTED_SHOW: &[&str] = &[
    "FDS",
    "SOCKETS",
    "ACTIVE_SOCKETS",
    "MEM",
    "DNS_HOSTS",
    "DNS_ZONES",
    "PEERS",
    "PEER_POOLS",
];

/// Session parameters some drivers SHOW or SET right after connecting; the console fakes
/// them, as PgBouncer does, so those drivers can connect at all.
const FAKE_PARAMETERS: &[(&str, &str)] = &[
    ("client_encoding", "UTF-8"),
    ("default_transaction_isolation", "read committed"),
    ("standard_conforming_strings", "on"),
    ("datestyle", "ISO"),
    ("timezone", "GMT"),
    ("extra_float_digits", "2"),
];

impl Command {
    /// True for commands that only read (SHOW, and the SETs PgBouncer ignores): the only
    /// ones a stats_users member may run.
    pub(crate) fn is_show(&self) -> bool {
        matches!(
            self,
            Command::Show(_) | Command::IgnoredSet { .. } | Command::Empty
        )
    }

    /// The CommandComplete tag PgBouncer sends on success: the command word, and
    /// `SET key=value` for SET. Empty for [`Command::Empty`], which has no CommandComplete.
    pub(crate) fn tag(&self) -> String {
        let word = match self {
            Command::Empty => "",
            Command::Show(_) => "SHOW",
            Command::Pause(_) => "PAUSE",
            Command::Resume(_) => "RESUME",
            Command::Disable(_) => "DISABLE",
            Command::Enable(_) => "ENABLE",
            Command::Kill(_) => "KILL",
            Command::KillClient(_) => "KILL_CLIENT",
            Command::Reconnect(_) => "RECONNECT",
            Command::WaitClose(_) => "WAIT_CLOSE",
            Command::Reload => "RELOAD",
            Command::Shutdown(_) => "SHUTDOWN",
            Command::IgnoredSet { .. } => "SET",
            Command::Set { key, value } => return format!("SET {key}={value}"),
        };
        word.to_string()
    }
}

/// Parses one console query. Errors name the command and what is wrong with it.
pub(crate) fn parse(query: &str) -> Result<Command, AdminError> {
    let mut tokens = lex(query)?;
    if tokens.last() == Some(&Token::Semicolon) {
        tokens.pop();
    }
    if tokens.contains(&Token::Semicolon) {
        return Err(AdminError::Syntax(
            "the admin console runs one command per query".into(),
        ));
    }
    let Some((first, args)) = tokens.split_first() else {
        return Ok(Command::Empty);
    };
    let Some(word) = first.keyword() else {
        return Err(AdminError::UnknownCommand(first.describe()));
    };
    let keyword = word.to_ascii_uppercase();
    match keyword.as_str() {
        "SHOW" => parse_show(args),
        "SET" => parse_set(args),
        "PAUSE" => optional_db(&keyword, args).map(Command::Pause),
        "RESUME" => optional_db(&keyword, args).map(Command::Resume),
        "KILL" => optional_db(&keyword, args).map(Command::Kill),
        "RECONNECT" => optional_db(&keyword, args).map(Command::Reconnect),
        "WAIT_CLOSE" => optional_db(&keyword, args).map(Command::WaitClose),
        "DISABLE" => required_db(&keyword, args).map(Command::Disable),
        "ENABLE" => required_db(&keyword, args).map(Command::Enable),
        "KILL_CLIENT" => parse_kill_client(args),
        "RELOAD" => no_args(&keyword, args).map(|()| Command::Reload),
        "SHUTDOWN" => parse_shutdown(args),
        "SUSPEND" => Err(AdminError::NotSupported("SUSPEND".into())),
        _ => Err(AdminError::UnknownCommand(word.to_string())),
    }
}

fn parse_show(args: &[Token]) -> Result<Command, AdminError> {
    let [subject] = args else {
        return Err(match args.first() {
            None => AdminError::Syntax("SHOW needs a subject, e.g. SHOW POOLS".into()),
            Some(first) => extra_arguments(&format!("SHOW {}", first.describe()), &args[1..]),
        });
    };
    let Some(name) = subject.name() else {
        return Err(AdminError::UnknownCommand(format!(
            "SHOW {}",
            subject.describe()
        )));
    };
    if let Some(&(_, what)) = SHOW_SUBJECTS
        .iter()
        .find(|(s, _)| s.eq_ignore_ascii_case(name))
    {
        return Ok(Command::Show(what));
    }
    if let Some(&(name, value)) = fake_parameter(name) {
        return Ok(Command::Show(ShowWhat::Parameter { name, value }));
    }
    let upper = name.to_ascii_uppercase();
    if UNSUPPORTED_SHOW.contains(&upper.as_str()) {
        return Err(AdminError::NotSupported(format!("SHOW {upper}")));
    }
    Err(AdminError::UnknownCommand(format!("SHOW {name}")))
}

/// `SET key = value`, `SET key TO value`; the value a bare word, a 'literal' or a "quoted" one.
fn parse_set(args: &[Token]) -> Result<Command, AdminError> {
    const USAGE: &str = "expected SET key = value, e.g. SET default_pool_size = 20";
    let [key, op, value, rest @ ..] = args else {
        return Err(AdminError::Syntax(USAGE.into()));
    };
    let key = match key {
        Token::Word(w) => w.to_ascii_lowercase(),
        Token::Quoted(q) => q.clone(),
        _ => return Err(AdminError::Syntax(USAGE.into())),
    };
    let is_to = op.keyword().is_some_and(|w| w.eq_ignore_ascii_case("TO"));
    if *op != Token::Equals && !is_to {
        return Err(AdminError::Syntax(USAGE.into()));
    }
    let value = match value {
        Token::Word(v) | Token::Quoted(v) | Token::Literal(v) => v.clone(),
        _ => return Err(AdminError::Syntax(USAGE.into())),
    };
    if !rest.is_empty() {
        return Err(extra_arguments(&format!("SET {key}"), rest));
    }
    if fake_parameter(&key).is_some() {
        return Ok(Command::IgnoredSet { key });
    }
    Ok(Command::Set { key, value })
}

fn parse_kill_client(args: &[Token]) -> Result<Command, AdminError> {
    const USAGE: &str = "KILL_CLIENT needs a client id from the id column of SHOW CLIENTS";
    match args {
        [Token::Word(id)] => id
            .parse::<u64>()
            .map(Command::KillClient)
            .map_err(|_| AdminError::Syntax(format!("{USAGE}; {id:?} is not an id"))),
        [] => Err(AdminError::Syntax(USAGE.into())),
        [_] => Err(AdminError::Syntax(USAGE.into())),
        [_, rest @ ..] => Err(extra_arguments("KILL_CLIENT", rest)),
    }
}

fn parse_shutdown(args: &[Token]) -> Result<Command, AdminError> {
    let mode = match args {
        [] => ShutdownMode::Immediate,
        [Token::Word(w)] if w.eq_ignore_ascii_case("WAIT_FOR_SERVERS") => {
            ShutdownMode::WaitForServers
        }
        [Token::Word(w)] if w.eq_ignore_ascii_case("WAIT_FOR_CLIENTS") => {
            ShutdownMode::WaitForClients
        }
        [_] => {
            return Err(AdminError::Syntax(
                "SHUTDOWN takes no argument, WAIT_FOR_SERVERS or WAIT_FOR_CLIENTS".into(),
            ))
        }
        [_, rest @ ..] => return Err(extra_arguments("SHUTDOWN", rest)),
    };
    Ok(Command::Shutdown(mode))
}

fn optional_db(command: &str, args: &[Token]) -> Result<Option<String>, AdminError> {
    match args {
        [] => Ok(None),
        [_, ..] => required_db(command, args).map(Some),
    }
}

fn required_db(command: &str, args: &[Token]) -> Result<String, AdminError> {
    match args {
        [db] => db.name().map(str::to_string).ok_or_else(|| {
            AdminError::Syntax(format!(
                "{command} expects a database name, not {}; quote names with \"double quotes\"",
                db.describe()
            ))
        }),
        [] => Err(AdminError::Syntax(format!(
            "{command} needs a database name"
        ))),
        [_, rest @ ..] => Err(extra_arguments(command, rest)),
    }
}

fn no_args(command: &str, args: &[Token]) -> Result<(), AdminError> {
    match args {
        [] => Ok(()),
        rest => Err(extra_arguments(command, rest)),
    }
}

fn extra_arguments(command: &str, rest: &[Token]) -> AdminError {
    let rest: Vec<String> = rest.iter().map(Token::describe).collect();
    AdminError::Syntax(format!("unexpected {} after {command}", rest.join(" ")))
}

fn fake_parameter(name: &str) -> Option<&'static (&'static str, &'static str)> {
    FAKE_PARAMETERS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests;
