//! Admin console helpers for the `admin*` tests: log in to the console as the harness's admin
//! user, run a command with the simple query protocol (the only one the console speaks, as
//! PgBouncer's), and read a SHOW result set by column name. Invariant: column names come from
//! the RowDescription the pooler sent, so a test can check them even when there are no rows.

use std::time::Duration;

use tokio_postgres::{Client, SimpleQueryMessage};

use super::pgsetup::{ADMIN_PASS, ADMIN_USER, MD5_PASS, MD5_USER};
use super::pooler::Pooler;
use super::sqlstate;

/// The console's database name (PgBouncer's `pgbouncer` works too).
pub const CONSOLE_DB: &str = "pgsluice";

/// One SHOW result: the declared column names and the rows, values as text (None = NULL).
#[derive(Debug, Clone)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl ResultSet {
    fn col(&self, name: &str) -> usize {
        self.columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no column {name:?} in {:?}", self.columns))
    }

    /// The value of `column` in row `row`; panics on a NULL or a missing column.
    pub fn get(&self, row: usize, column: &str) -> &str {
        self.rows[row][self.col(column)]
            .as_deref()
            .unwrap_or_else(|| panic!("{column} is NULL in row {row}"))
    }

    /// Indexes of the rows whose `column` equals `value`.
    pub fn rows_where(&self, column: &str, value: &str) -> Vec<usize> {
        let at = self.col(column);
        (0..self.rows.len())
            .filter(|&r| self.rows[r][at].as_deref() == Some(value))
            .collect()
    }

    /// The one row whose `column` equals `value`; panics unless there is exactly one.
    pub fn row_where(&self, column: &str, value: &str) -> usize {
        match self.rows_where(column, value)[..] {
            [r] => r,
            ref rows => panic!("{} rows with {column} = {value:?}: {self:?}", rows.len()),
        }
    }

    /// `column` of the row whose `key_column` equals `key`, e.g. a SHOW CONFIG value.
    pub fn lookup(&self, key_column: &str, key: &str, column: &str) -> &str {
        self.get(self.row_where(key_column, key), column)
    }

    /// A numeric column parsed as an integer.
    pub fn number(&self, row: usize, column: &str) -> i64 {
        let v = self.get(row, column);
        v.parse()
            .unwrap_or_else(|_| panic!("{column} = {v:?} is not a number"))
    }
}

/// Logs in to the console as the admin user (panics with the pooler's log on failure).
pub async fn console(p: &Pooler) -> Client {
    console_as(p, ADMIN_USER, ADMIN_PASS).await
}

/// Logs in to the console as `user` (an admin_users or stats_users member).
pub async fn console_as(p: &Pooler, user: &str, password: &str) -> Client {
    match p.connect(user, password, CONSOLE_DB).await {
        Ok((client, _task)) => client,
        Err(e) => panic!("console login as {user}: {e:?}\n{}", p.log()),
    }
}

/// A pooled client: md5_user on `db`.
pub async fn pooled(p: &Pooler, db: &str) -> Client {
    match p.connect(MD5_USER, MD5_PASS, db).await {
        Ok((client, _task)) => client,
        Err(e) => panic!("login to {db}: {e:?}\n{}", p.log()),
    }
}

/// A pooled client on `db` with an application_name, which SHOW CLIENTS reports.
pub async fn pooled_named(p: &Pooler, db: &str, application_name: &str) -> Client {
    let mut cfg = p.connect_config();
    cfg.user(MD5_USER)
        .password(MD5_PASS)
        .dbname(db)
        .application_name(application_name);
    match super::connect_with(&cfg).await {
        Ok((client, _task)) => client,
        Err(e) => panic!("login to {db}: {e:?}\n{}", p.log()),
    }
}

/// Runs one console query and collects its (last) result set.
pub async fn try_show(console: &Client, query: &str) -> Result<ResultSet, tokio_postgres::Error> {
    let mut set = ResultSet {
        columns: Vec::new(),
        rows: Vec::new(),
    };
    for msg in console.simple_query(query).await? {
        match msg {
            SimpleQueryMessage::RowDescription(cols) => {
                set.columns = cols.iter().map(|c| c.name().to_string()).collect();
                set.rows.clear();
            }
            SimpleQueryMessage::Row(row) => {
                set.rows.push(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                );
            }
            _ => {}
        }
    }
    Ok(set)
}

/// `try_show`, panicking on an error.
pub async fn show(console: &Client, query: &str) -> ResultSet {
    try_show(console, query)
        .await
        .unwrap_or_else(|e| panic!("{query}: {e:?}"))
}

/// Runs a control command; panics on an error.
pub async fn exec(console: &Client, command: &str) {
    if let Err(e) = console.simple_query(command).await {
        panic!("{command}: {e:?}");
    }
}

/// Runs a command that must fail; returns its SQLSTATE and message.
pub async fn admin_error(console: &Client, command: &str) -> (String, String) {
    let err = console
        .simple_query(command)
        .await
        .expect_err(&format!("{command} must fail"));
    let message = err
        .as_db_error()
        .map(|e| e.message().to_string())
        .unwrap_or_else(|| format!("{err:?}"));
    (sqlstate(&err).unwrap_or("none").to_string(), message)
}

/// `select pg_backend_pid()` through the pooler, as text.
pub async fn backend_pid(client: &Client) -> String {
    let rows = client
        .simple_query("select pg_backend_pid()")
        .await
        .expect("select pg_backend_pid()");
    rows.iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .expect("a row")
}

/// True while a spawned query is still waiting after a pause long enough for an unblocked
/// one to finish many times over; only ever asserted as "still pending", never as a speed.
pub async fn still_pending<T>(task: &tokio::task::JoinHandle<T>) -> bool {
    tokio::time::sleep(Duration::from_millis(500)).await;
    !task.is_finished()
}
