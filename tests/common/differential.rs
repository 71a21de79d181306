//! The differential oracle for the relay and for session state in transaction pooling: a
//! `Scenario` is a script of frontend messages, played once straight to PostgreSQL and once
//! through pgsluice, where every `Move` forces the client onto another server before its next
//! transaction. The decoded replies must match after normalizing only what legitimately differs
//! (BackendKeyData, the order of the login's ParameterStatus messages, process ids, names
//! pgsluice gives statements); a scenario may end by checking from a direct connection what was
//! committed and which locks are held. On the first difference it panics, printing both sides.

use std::time::Duration;

use pgsluice::protocol::tags::{backend_tag, error_field, tx_status};

use super::console::{console, show};
use super::log_tail;
use super::pg::{shared_cluster, PgCluster};
use super::pgsetup::{MD5_PASS, MD5_USER, TEST_DB};
use super::pooler::Pooler;
use super::pooler_config::PoolerConfig;
use super::raw::{Backend, Frontend, RawClient};

/// One step of a scenario.
#[derive(Clone)]
pub enum Act {
    Send(Frontend),
    /// Read through this many ReadyForQuery messages.
    Ready(usize),
    /// Read exactly this many messages: they come without anything more being sent.
    Expect(usize),
    /// Between transactions: through pgsluice, the next request lands on another server.
    Move,
    /// Read every message until the peer closes the connection.
    UntilClosed,
    /// Close the socket without a Terminate.
    Vanish,
    /// After a moment (the last request is running by then), a CancelRequest with the key
    /// the client was given, on a connection of its own.
    Cancel,
}

/// A script, the startup parameters it logs in with, SQL run directly before each play (as
/// the superuser) and SQL whose rows are compared once the client is gone.
#[derive(Clone)]
pub struct Scenario {
    pub name: String,
    startup: Vec<(String, String)>,
    setup: Vec<String>,
    acts: Vec<Act>,
    checks: Vec<String>,
}

impl Scenario {
    /// `name` must be unique in the test binary: it also names the scenario's table (`t()`).
    pub fn new(name: &str) -> Self {
        Scenario {
            name: name.to_string(),
            startup: Vec::new(),
            setup: Vec::new(),
            acts: Vec::new(),
            checks: Vec::new(),
        }
    }

    /// The scenario's own table name, `d_<name>`, the same in both plays.
    pub fn t(&self) -> String {
        format!("d_{}", self.name)
    }

    /// A scenario whose table `t()` is created fresh before each play with `columns`.
    pub fn with_table(name: &str, columns: &str) -> Self {
        let s = Self::new(name);
        let t = s.t();
        s.setup(&format!(
            "DROP TABLE IF EXISTS {t}; CREATE TABLE {t} ({columns}); GRANT ALL ON {t} TO PUBLIC"
        ))
    }

    pub fn startup(mut self, name: &str, value: &str) -> Self {
        self.startup.push((name.into(), value.into()));
        self
    }
    pub fn setup(mut self, sql: &str) -> Self {
        self.setup.push(sql.into());
        self
    }
    pub fn act(mut self, act: Act) -> Self {
        self.acts.push(act);
        self
    }
    pub fn send(self, batch: Frontend) -> Self {
        self.act(Act::Send(batch))
    }
    pub fn ready(self, n: usize) -> Self {
        self.act(Act::Ready(n))
    }
    pub fn expect(self, n: usize) -> Self {
        self.act(Act::Expect(n))
    }
    /// A simple Query and its replies through ReadyForQuery.
    pub fn q(self, sql: &str) -> Self {
        self.send(Frontend::new().query(sql)).ready(1)
    }
    /// Simple queries, each with a move to another server before it.
    pub fn q_moving(mut self, sqls: &[&str]) -> Self {
        for sql in sqls {
            self = self.mv().q(sql);
        }
        self
    }
    /// Parse, Bind, Execute (all rows), Sync of one unnamed statement with text parameters.
    pub fn x(self, sql: &str, params: &[Option<&str>]) -> Self {
        self.send(
            Frontend::new()
                .parse("", sql)
                .bind("", "", params)
                .describe_portal("")
                .execute("", 0)
                .sync(),
        )
        .ready(1)
    }
    pub fn mv(self) -> Self {
        self.act(Act::Move)
    }
    pub fn terminate(self) -> Self {
        self.send(Frontend::new().terminate()).act(Act::UntilClosed)
    }
    pub fn vanish(self) -> Self {
        self.act(Act::Vanish)
    }
    pub fn cancel(self) -> Self {
        self.act(Act::Cancel)
    }
    /// Once the client is gone and its backend quiet: this query's rows, read directly.
    pub fn check(mut self, sql: &str) -> Self {
        self.checks.push(sql.into());
        self
    }
}

/// pgsluice in transaction pooling with two servers for md5_user, and two holder clients
/// that make `Move` work: one always holds a server inside a transaction, so the scenario's
/// client has exactly one server to use; a move lets the other holder take that server and
/// the first release its own.
pub struct Differential {
    pub pooler: Pooler,
}

impl Differential {
    pub fn start() -> Self {
        Self::start_with(|cfg| cfg)
    }

    /// With extra configuration (a pool size of 2 stays: moves depend on it).
    pub fn start_with(extra: impl FnOnce(PoolerConfig) -> PoolerConfig) -> Self {
        let cfg = extra(
            PoolerConfig::new(shared_cluster())
                .pooler("pool_mode = \"transaction\"")
                .pooler("query_wait_timeout = 60"),
        )
        .pooler("default_pool_size = 2")
        .pooler("reserve_pool_size = 0")
        .pooler("min_pool_size = 0");
        Differential {
            pooler: Pooler::start(cfg),
        }
    }

    /// Plays every scenario both ways, in order, and panics at the first difference.
    pub async fn run_all(&self, scenarios: &[Scenario]) {
        for s in scenarios {
            self.run(s).await;
        }
    }

    /// Plays `s` straight to Postgres, then through pgsluice, and compares.
    pub async fn run(&self, s: &Scenario) {
        let pg = shared_cluster();
        // Shown with the output of a failing test: which play of which scenario hung.
        eprintln!("scenario {}: straight to PostgreSQL", s.name);
        let direct = play(pg, s, None).await;
        eprintln!("scenario {}: through pgsluice", s.name);
        let pooled = play(pg, s, Some(&self.pooler)).await;
        compare(s, &direct, &pooled, &self.pooler);
    }
}

/// What one play produced: the login's messages and the script's, decoded and normalized, and
/// the rows of each check.
struct Transcript {
    login: Vec<String>,
    replies: Vec<String>,
    checks: Vec<Vec<String>>,
}

/// A client through pgsluice that holds a server inside a transaction while it wants to.
struct Holder {
    client: RawClient,
    holding: bool,
}

impl Holder {
    async fn connect(p: &Pooler) -> Self {
        Holder {
            client: RawClient::connect(p, MD5_USER, MD5_PASS, &[]).await,
            holding: false,
        }
    }
    async fn take(&mut self) {
        let replies = self.client.query("BEGIN; SELECT 1").await;
        assert_eq!(replies.last().map(|m| m.body.clone()), Some(b"T".to_vec()));
        self.holding = true;
    }
    async fn release(&mut self) {
        if self.holding {
            self.client.query("COMMIT").await;
            self.holding = false;
        }
    }
}

async fn play(pg: &PgCluster, s: &Scenario, through: Option<&Pooler>) -> Transcript {
    let su = pg.superuser_client(TEST_DB).await;
    for sql in &s.setup {
        su.batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{}: setup {sql:?}: {e}", s.name));
    }
    let params: Vec<(&str, &str)> = s
        .startup
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut holders = match through {
        Some(p) => {
            let mut pair = [Holder::connect(p).await, Holder::connect(p).await];
            pair[0].take().await;
            Some(pair)
        }
        None => None,
    };
    let mut c = Some(match through {
        Some(p) => RawClient::open(p.host(), p.port()).await,
        None => RawClient::open(pg.host(), pg.port()).await,
    });
    let client = c.as_mut().expect("just opened");
    let login_result = client.login(MD5_USER, MD5_PASS, &params).await;
    // Straight to Postgres, the key's process id is the client's backend.
    let backend_pid = client.key.0;
    let login = match login_result {
        Ok(()) => login_lines(&client.startup),
        Err(e) => vec![decode(&e)],
    };
    let mut replies = Vec::new();
    let mut status = tx_status::IDLE;
    let mut turn = 0;
    for act in &s.acts {
        let Some(client) = c.as_mut() else {
            panic!("{}: a step after the connection ended", s.name);
        };
        match act {
            Act::Send(batch) => client.send(batch.clone()).await,
            Act::Ready(n) => {
                for _ in 0..*n {
                    for m in client.recv_until_ready().await {
                        status = m.body.first().copied().unwrap_or(status);
                        replies.push(decode(&m));
                    }
                }
            }
            Act::Expect(n) => replies.extend(client.recv_n(*n).await.iter().map(decode)),
            Act::UntilClosed => {
                replies.extend(client.recv_until_closed().await.iter().map(decode));
                replies.push("<connection closed>".into());
                c = None;
            }
            Act::Vanish => c = None,
            Act::Cancel => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let (host, port) = match through {
                    Some(p) => (p.host(), p.port()),
                    None => (pg.host(), pg.port()),
                };
                let mut other = RawClient::open(host, port).await;
                let mut out = bytes::BytesMut::new();
                postgres_protocol::message::frontend::cancel_request(
                    client.key.0,
                    client.key.1,
                    &mut out,
                );
                other.send_bytes(&out).await;
                other.recv_until_closed().await;
            }
            Act::Move => {
                assert_eq!(
                    status,
                    tx_status::IDLE,
                    "{}: a move inside a transaction",
                    s.name
                );
                if let (Some(pair), Some(p)) = (holders.as_mut(), through) {
                    if pool_has_idle_server(p).await {
                        // The idle holder takes the client's last server; the other lets its
                        // go.
                        pair[1 - turn].take().await;
                        pair[turn].release().await;
                        turn = 1 - turn;
                    }
                }
            }
        }
    }
    if let Some(mut client) = c {
        client.send(Frontend::new().terminate()).await;
        client.recv_until_closed().await;
    }
    if let Some(mut pair) = holders {
        for h in &mut pair {
            h.release().await;
        }
    }
    client_gone(&su, &s.name, through, backend_pid).await;
    quiesce(&su, &s.name, through).await;
    let mut checks = Vec::new();
    for sql in &s.checks {
        let rows = su
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{}: check {sql:?}: {e}", s.name));
        checks.push(
            rows.iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                        (0..r.len())
                            .map(|i| r.get(i).unwrap_or("NULL").to_string())
                            .collect::<Vec<_>>()
                            .join("|"),
                    ),
                    _ => None,
                })
                .collect(),
        );
    }
    Transcript {
        login,
        replies,
        checks,
    }
}

/// Waits until no md5_user backend is inside a transaction or running something: a client
/// that left has had its transaction ended (rolled back, or wrongly committed) by then.
async fn quiesce(su: &tokio_postgres::Client, name: &str, p: Option<&Pooler>) {
    let sql = format!(
        "SELECT coalesce(state, '-') || ': ' || coalesce(query, '') FROM pg_stat_activity \
         WHERE usename = '{MD5_USER}' \
         AND datname = '{TEST_DB}' AND state IS DISTINCT FROM 'idle'"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let busy: Vec<String> = su
            .query(&sql, &[])
            .await
            .expect("pg_stat_activity")
            .iter()
            .map(|r| r.get(0))
            .collect();
        if busy.is_empty() {
            return;
        }
        if std::time::Instant::now() > deadline {
            let log = p.map(|p| log_tail(&p.log(), 30)).unwrap_or_default();
            panic!("{name}: md5_user backends still busy after 30 s: {busy:?}\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the scenario's client has been dealt with completely: through pgsluice, until
/// only the holders (gone by now) and no md5_user client is left in SHOW CLIENTS (pgsluice
/// lists a client until it has given back or closed its server); straight to Postgres, until
/// its backend has exited. Only then does what it left behind show.
async fn client_gone(su: &tokio_postgres::Client, name: &str, through: Option<&Pooler>, pid: i32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let console = match through {
        Some(p) => Some(console(p).await),
        None => None,
    };
    loop {
        let gone = match &console {
            Some(console) => show(console, "SHOW CLIENTS")
                .await
                .rows_where("user", MD5_USER)
                .is_empty(),
            None => {
                su.query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                    &[&pid],
                )
                .await
                .expect("pg_stat_activity")
                .get::<_, i64>(0)
                    == 0
            }
        };
        if gone {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name}: the client still there after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether the pool has an idle server: none while the client is pinned to its own, and
/// then a move cannot happen (and must not: its session state lives there).
async fn pool_has_idle_server(p: &Pooler) -> bool {
    let console = console(p).await;
    let deadline = std::time::Instant::now() + Duration::from_millis(500);
    loop {
        let pools = show(&console, "SHOW POOLS").await;
        let row = pools.row_where("database", TEST_DB);
        if pools.number(row, "sv_idle") > 0 {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The login's messages without authentication, ParameterStatus sorted by name.
fn login_lines(startup: &[Backend]) -> Vec<String> {
    let mut status: Vec<String> = startup
        .iter()
        .filter(|m| m.tag == backend_tag::PARAMETER_STATUS)
        .map(decode)
        .collect();
    status.sort();
    let rest = startup
        .iter()
        .filter(|m| {
            !matches!(
                m.tag,
                backend_tag::PARAMETER_STATUS | backend_tag::AUTHENTICATION
            )
        })
        .map(decode);
    status.into_iter().chain(rest).collect()
}

/// One backend message as a line a person can read, normalized.
pub fn decode(m: &Backend) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match m.tag {
        backend_tag::BACKEND_KEY_DATA => "BackendKeyData".into(),
        backend_tag::READY_FOR_QUERY => format!("ReadyForQuery({})", text(&m.body)),
        backend_tag::PARAMETER_STATUS => format!("ParameterStatus({})", m.cstrings().join("=")),
        backend_tag::COMMAND_COMPLETE => format!("CommandComplete({})", m.cstrings().join("")),
        backend_tag::DATA_ROW => format!("DataRow{:?}", m.columns()),
        backend_tag::ROW_DESCRIPTION => format!("RowDescription{:?}", row_description(&m.body)),
        backend_tag::ERROR_RESPONSE | backend_tag::NOTICE_RESPONSE => {
            let kind = if m.tag == backend_tag::ERROR_RESPONSE {
                "Error"
            } else {
                "Notice"
            };
            let f = |c| m.field(c).unwrap_or_default();
            normalize_names(&format!(
                "{kind}Response({} {} {}{})",
                f(error_field::SEVERITY),
                f(error_field::CODE),
                f(error_field::MESSAGE),
                m.field(error_field::DETAIL)
                    .map(|d| format!(" DETAIL {d}"))
                    .unwrap_or_default()
            ))
        }
        backend_tag::NOTIFICATION_RESPONSE => {
            let rest = m.body.get(4..).unwrap_or_default();
            let parts: Vec<String> = rest
                .split(|b| *b == 0)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect();
            format!("NotificationResponse({})", parts.join(","))
        }
        backend_tag::PARSE_COMPLETE => "ParseComplete".into(),
        backend_tag::BIND_COMPLETE => "BindComplete".into(),
        backend_tag::CLOSE_COMPLETE => "CloseComplete".into(),
        backend_tag::NO_DATA => "NoData".into(),
        backend_tag::EMPTY_QUERY_RESPONSE => "EmptyQueryResponse".into(),
        backend_tag::PORTAL_SUSPENDED => "PortalSuspended".into(),
        backend_tag::PARAMETER_DESCRIPTION => {
            format!("ParameterDescription({} bytes)", m.body.len())
        }
        backend_tag::COPY_IN_RESPONSE
        | backend_tag::COPY_OUT_RESPONSE
        | backend_tag::COPY_BOTH_RESPONSE => format!("Copy{}Response", m.tag as char),
        backend_tag::COPY_DATA => format!("CopyData({})", text(&m.body)),
        backend_tag::COPY_DONE => "CopyDone".into(),
        backend_tag::FUNCTION_CALL_RESPONSE => format!("FunctionCallResponse({:?})", m.body),
        backend_tag::NEGOTIATE_PROTOCOL_VERSION => {
            format!("NegotiateProtocolVersion({:?})", m.body)
        }
        other => format!("'{}'({:?})", other as char, m.body),
    }
}

/// Column names and type OIDs of a RowDescription.
fn row_description(body: &[u8]) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let mut rest = body.get(2..).unwrap_or_default();
    while let Some(end) = rest.iter().position(|b| *b == 0) {
        let name = String::from_utf8_lossy(&rest[..end]).into_owned();
        let fixed = rest.get(end + 1..end + 19).unwrap_or_default();
        let oid = fixed
            .get(6..10)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
            .unwrap_or(0);
        out.push((name, oid));
        rest = rest.get(end + 19..).unwrap_or_default();
    }
    out
}

/// pgsluice's own statement names (`pgsluice_<n>`) stand for whatever the client called them.
fn normalize_names(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("pgsluice_") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + "pgsluice_".len()..];
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str(if digits > 0 {
            "<pooler name>"
        } else {
            "pgsluice_"
        });
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

/// Sorts each run of consecutive ParameterStatus messages: Postgres sends the changes of one
/// reply together before ReadyForQuery, each on its own, in an order of its own making (the
/// order of its settings table, or of the changes, by version); no client reads meaning into
/// it, and pgsluice may report a change it made for the client in the same run.
fn sort_status_runs(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut run_start = 0;
    for line in lines {
        if line.starts_with("ParameterStatus(") {
            out.push(line.clone());
            out[run_start..].sort();
        } else {
            out.push(line.clone());
            run_start = out.len();
        }
    }
    out
}

fn compare(s: &Scenario, direct: &Transcript, pooled: &Transcript, p: &Pooler) {
    let (direct_replies, pooled_replies) = (
        sort_status_runs(&direct.replies),
        sort_status_runs(&pooled.replies),
    );
    if std::env::var_os("DIFFERENTIAL_SHOW").is_some() {
        // For writing scenarios: what both sides said, even when they agree.
        eprintln!(
            "--- {} ---\n{}\n---\n{}",
            s.name,
            numbered(&direct.replies),
            numbered(&pooled.replies)
        );
    }
    let sides = [
        ("login", &direct.login, &pooled.login),
        ("replies", &direct_replies, &pooled_replies),
    ];
    for (part, d, g) in sides {
        if d != g {
            let at = d.iter().zip(g.iter()).take_while(|(a, b)| a == b).count();
            panic!(
                "scenario {}: {part} differ at message {at}\n--- PostgreSQL ---\n{}\n--- pgsluice ---\n{}\n--- pgsluice log ---\n{}",
                s.name,
                numbered(d),
                numbered(g),
                log_tail(&p.log(), 30)
            );
        }
    }
    for (i, (d, g)) in direct.checks.iter().zip(&pooled.checks).enumerate() {
        assert_eq!(
            g,
            d,
            "scenario {}: check {:?} differs (left pgsluice, right PostgreSQL)\n{}",
            s.name,
            s.checks[i],
            log_tail(&p.log(), 30)
        );
    }
}

fn numbered(lines: &[String]) -> String {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{i:3} {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
