//! What the raw-protocol tests share: a transaction pool to play scripts through, the check
//! that a script gets the same replies straight from Postgres and through pgsluice, the
//! message builders they repeat, and readers for the parts of a reply they compare.

use pgsluice::protocol::tags::{backend_tag, error_field};

use super::log_tail;
use super::pg::shared_cluster;
use super::pgsetup::{MD5_PASS, MD5_USER};
use super::pooler::Pooler;
use super::pooler_config::PoolerConfig;
use super::raw::{assert_same_replies, play, Backend, RawClient, Step};
use super::raw_frontend::Frontend;

/// pgsluice in transaction pooling on the shared cluster, with `extra` [pooler] lines.
pub fn transaction_pooler(extra: &str) -> Pooler {
    Pooler::start(
        PoolerConfig::new(shared_cluster())
            .pooler("pool_mode = \"transaction\"")
            .pooler(extra),
    )
}

/// Plays `script` straight to Postgres and through `p`; asserts identical replies and
/// returns them.
pub async fn same_as_direct(p: &Pooler, script: &[Step]) -> Vec<Backend> {
    let mut direct = RawClient::connect_direct(shared_cluster(), MD5_USER, MD5_PASS, &[]).await;
    let expected = play(&mut direct, script).await;
    let mut pooled = RawClient::connect(p, MD5_USER, MD5_PASS, &[]).await;
    let got = play(&mut pooled, script).await;
    assert_same_replies(&got, &expected, &log_tail(&p.log(), 40));
    got
}

/// Bind and Execute the unnamed portal of `statement`, then Sync.
pub fn run_statement(statement: &str) -> Frontend {
    Frontend::new()
        .bind("", statement, &[])
        .execute("", 0)
        .sync()
}

/// The first column of every DataRow.
pub fn values(msgs: &[Backend]) -> Vec<String> {
    msgs.iter()
        .filter(|m| m.tag == backend_tag::DATA_ROW)
        .map(Backend::value)
        .collect()
}

/// SQLSTATE and message of every ErrorResponse.
pub fn errors(msgs: &[Backend]) -> Vec<(String, String)> {
    msgs.iter()
        .filter(|m| m.tag == backend_tag::ERROR_RESPONSE)
        .map(|m| {
            (
                m.sqlstate().unwrap(),
                m.field(error_field::MESSAGE).unwrap(),
            )
        })
        .collect()
}

/// The transaction status of every ReadyForQuery, in order ("IIT...").
pub fn statuses(msgs: &[Backend]) -> String {
    msgs.iter()
        .filter(|m| m.tag == backend_tag::READY_FOR_QUERY)
        .map(|z| z.body[0] as char)
        .collect()
}
