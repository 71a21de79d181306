//! Memory per idle client: a fresh pooler, its RSS before and after N clients have logged in
//! (StartupMessage, md5 password, ReadyForQuery) and then sit idle. In transaction pooling an
//! idle client holds no server, so this is the pooler's own per-connection state. The clients
//! are a tiny raw frontend on one tokio thread of this process, which therefore needs N file
//! descriptors: its soft limit is raised to the hard one and N capped below it.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::options::Options;
use crate::procstat;
use crate::setup::{self, Bench, DATABASE, PASSWORD, USER};

/// Logins in flight at once: enough to be quick, few enough not to overflow the listen backlog.
const CONCURRENT_LOGINS: usize = 64;
/// File descriptors kept free for pgbench, logs and the runtime.
const FD_HEADROOM: u64 = 200;

#[derive(Debug, serde::Serialize)]
pub struct Memory {
    pub pooler: String,
    pub requested: usize,
    pub connected: usize,
    pub first_error: Option<String>,
    /// VmRSS of the freshly started pooler, no client yet.
    pub base_rss_kib: u64,
    /// VmRSS with every connected client logged in and idle.
    pub rss_kib: u64,
}

impl Memory {
    /// Whole RSS divided by the clients: what the "RSS per idle client" target means.
    pub fn per_client_kib(&self) -> f64 {
        self.rss_kib as f64 / self.connected.max(1) as f64
    }
    /// Growth over the idle process, per client: the marginal cost of one more client.
    pub fn delta_per_client_kib(&self) -> f64 {
        self.rss_kib.saturating_sub(self.base_rss_kib) as f64 / self.connected.max(1) as f64
    }
}

pub fn measure_all(bench: &Bench, opts: &Options) -> Vec<Memory> {
    let soft = procstat::raise_nofile();
    let n = (opts.idle_clients as u64).min(soft.saturating_sub(FD_HEADROOM)) as usize;
    if n < opts.idle_clients {
        eprintln!("compare: open-files limit {soft}: idle clients capped at {n}");
    }
    let mut out = Vec::new();
    {
        let pooler = setup::start_pgsluice(&bench.pg, None, opts);
        out.push(measure("pgsluice", pooler.port(), pooler.pid(), n));
    }
    if let Some(bin) = &opts.pgbouncer {
        let bouncer = setup::start_bouncer(bin, &bench.pg);
        out.push(measure("PgBouncer", bouncer.port(), bouncer.pid(), n));
    }
    out
}

fn measure(name: &str, port: u16, pid: u32, n: usize) -> Memory {
    std::thread::sleep(Duration::from_millis(500));
    let base_rss_kib = procstat::rss_kib(pid).unwrap_or(0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (streams, first_error) = runtime.block_on(connect_all(port, n));
    // Let the pooler finish whatever it does after a login (buffers shrink, tasks park).
    std::thread::sleep(Duration::from_secs(2));
    let rss_kib = procstat::rss_kib(pid).unwrap_or(0);
    let memory = Memory {
        pooler: name.to_owned(),
        requested: n,
        connected: streams.len(),
        first_error,
        base_rss_kib,
        rss_kib,
    };
    eprintln!(
        "  idle           {name:<16} {} clients: RSS {} KiB -> {} KiB, {:.2} KiB/client ({:.2} marginal){}",
        memory.connected,
        base_rss_kib,
        rss_kib,
        memory.per_client_kib(),
        memory.delta_per_client_kib(),
        memory
            .first_error
            .as_deref()
            .map(|e| format!("  ERROR {e}"))
            .unwrap_or_default()
    );
    drop(streams);
    memory
}

/// Logs in `n` clients, at most CONCURRENT_LOGINS at a time; returns the live connections
/// and the first failure.
async fn connect_all(port: u16, n: usize) -> (Vec<TcpStream>, Option<String>) {
    let mut streams = Vec::with_capacity(n);
    let mut first_error = None;
    let mut pending = tokio::task::JoinSet::new();
    let mut started = 0;
    while started < n || !pending.is_empty() {
        while started < n && pending.len() < CONCURRENT_LOGINS {
            pending.spawn(tokio::time::timeout(Duration::from_secs(30), login(port)));
            started += 1;
        }
        match pending.join_next().await {
            Some(Ok(Ok(Ok(stream)))) => streams.push(stream),
            Some(Ok(Ok(Err(e)))) => {
                first_error.get_or_insert(e);
            }
            Some(Ok(Err(_))) => {
                first_error.get_or_insert_with(|| "login timed out after 30 s".into());
            }
            Some(Err(e)) => {
                first_error.get_or_insert(e.to_string());
            }
            None => break,
        }
    }
    (streams, first_error)
}

/// One client login as PostgreSQL's "Start-up" message flow describes it, md5 only.
async fn login(port: u16) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    s.write_all(&startup_message())
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let (tag, body) = read_message(&mut s).await?;
        match (tag, body.get(..4)) {
            (b'R', Some([0, 0, 0, 0])) => {}
            (b'R', Some([0, 0, 0, 5])) => {
                let salt: [u8; 4] = body[4..8].try_into().map_err(|_| "short salt")?;
                let secret = pgsluice::auth::md5_secret(USER, PASSWORD);
                let response = pgsluice::auth::md5_response_from_secret(&secret, salt);
                let mut msg = vec![b'p'];
                msg.extend_from_slice(&(response.len() as u32 + 5).to_be_bytes());
                msg.extend_from_slice(response.as_bytes());
                msg.push(0);
                s.write_all(&msg).await.map_err(|e| e.to_string())?;
            }
            (b'R', _) => return Err("server asked for an authentication other than md5".into()),
            (b'E', _) => return Err(error_message(&body)),
            (b'Z', _) => return Ok(s),
            _ => {} // ParameterStatus, BackendKeyData, NoticeResponse
        }
    }
}

fn startup_message() -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec(); // protocol 3.0
    for (k, v) in [("user", USER), ("database", DATABASE)] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = (body.len() as u32 + 4).to_be_bytes().to_vec();
    msg.extend(body);
    msg
}

async fn read_message(s: &mut TcpStream) -> Result<(u8, Vec<u8>), String> {
    let mut header = [0u8; 5];
    s.read_exact(&mut header)
        .await
        .map_err(|e| format!("read: {e}"))?;
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if !(4..=1 << 20).contains(&len) {
        return Err(format!("bad message length {len}"));
    }
    let mut body = vec![0u8; len - 4];
    s.read_exact(&mut body)
        .await
        .map_err(|e| format!("read: {e}"))?;
    Ok((header[0], body))
}

/// The 'M' (message) field of an ErrorResponse.
fn error_message(body: &[u8]) -> String {
    body.split(|b| *b == 0)
        .find_map(|f| f.strip_prefix(b"M"))
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .unwrap_or_else(|| "ErrorResponse".into())
}
