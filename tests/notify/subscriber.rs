//! A tokio-postgres client whose connection task hands over what arrives unasked
//! (NotificationResponse, NoticeResponse), as a driver's notification callback would.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::error::DbError;
use tokio_postgres::{AsyncMessage, Client, Notification};

use crate::common::*;

/// Something a subscriber received without asking.
#[derive(Debug)]
pub enum Unasked {
    Notification(Notification),
    Notice(Box<DbError>),
    /// The connection ended, with the error that ended it.
    Closed(String),
}

pub struct Subscriber {
    pub client: Client,
    unasked: mpsc::UnboundedReceiver<Unasked>,
}

/// The usual pooler for these tests: transaction pooling (or `mode`), two servers.
pub fn notify_pooler(mode: &str, extra: &str) -> Pooler {
    Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler(&format!("pool_mode = \"{mode}\"\ndefault_pool_size = 2"))
            .pooler(extra),
    )
}

impl Subscriber {
    pub async fn connect(p: &Pooler) -> Subscriber {
        Self::connect_to(md5_login(p.connect_config()), TEST_DB).await
    }

    pub async fn connect_to(mut cfg: tokio_postgres::Config, db: &str) -> Subscriber {
        cfg.dbname(db);
        let (client, mut connection) = cfg.connect(tokio_postgres::NoTls).await.unwrap();
        let (tx, unasked) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let item = match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => Unasked::Notification(n),
                    Some(Ok(AsyncMessage::Notice(e))) => Unasked::Notice(Box::new(e)),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => Unasked::Closed(format!("{e:?}")),
                    None => Unasked::Closed("end of stream".into()),
                };
                let closed = matches!(item, Unasked::Closed(_));
                if tx.send(item).is_err() || closed {
                    return;
                }
            }
        });
        Subscriber { client, unasked }
    }

    /// LISTEN on `channel` (simple query).
    pub async fn listen(&self, channel: &str) {
        self.client
            .batch_execute(&format!("LISTEN {channel}"))
            .await
            .unwrap();
    }

    /// The next thing received unasked, within `within`.
    pub async fn next_within(&mut self, within: Duration) -> Option<Unasked> {
        tokio::time::timeout(within, self.unasked.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next notification (notices in between are skipped); panics after 20 s.
    pub async fn notification(&mut self) -> Notification {
        loop {
            match self.next_within(Duration::from_secs(20)).await {
                Some(Unasked::Notification(n)) => return n,
                Some(Unasked::Notice(_)) => continue,
                Some(Unasked::Closed(e)) => panic!("connection closed: {e}"),
                None => panic!("no notification within 20s"),
            }
        }
    }

    /// The next notice (a notification before it fails the test); panics after 30 s.
    pub async fn notice(&mut self) -> DbError {
        match self.next_within(Duration::from_secs(30)).await {
            Some(Unasked::Notice(e)) => *e,
            other => panic!("expected a notice, got {other:?}"),
        }
    }

    /// Asserts nothing arrives for `quiet`.
    pub async fn nothing_for(&mut self, quiet: Duration) {
        if let Some(item) = self.next_within(quiet).await {
            panic!("expected nothing, got {item:?}");
        }
    }

    /// Payloads of the next `n` notifications, in the order they came.
    pub async fn payloads(&mut self, n: usize) -> Vec<String> {
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            got.push(self.notification().await.payload().to_string());
        }
        got
    }
}

/// A client straight to Postgres that sends notifications.
pub async fn direct_notifier() -> Client {
    let (client, _task) = shared_cluster()
        .connect(MD5_USER, MD5_PASS, TEST_DB)
        .await
        .unwrap();
    client
}

pub async fn notify(c: &Client, channel: &str, payload: &str) {
    c.execute("select pg_notify($1, $2)", &[&channel, &payload])
        .await
        .unwrap();
}

pub async fn backend_pid(c: &Client) -> i32 {
    c.query_one("select pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}
