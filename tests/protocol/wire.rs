//! The relay at the wire level, with a raw client (`common::raw`): the same message script is
//! played against Postgres directly and through pgsluice, and the replies must be identical
//! byte for byte and in order — Flush answered before any Sync, an error mid-pipeline skipping
//! to its Sync, Execute with a row limit, FunctionCall, Notice/ParameterStatus, huge messages.
//! Also: startup parameters reported back at login, and Terminate handing on a reset server.

use crate::common::raw::{tags, Backend, Frontend, RawClient, Step};
use crate::common::scripts;
use crate::common::scripts::values;
use crate::common::*;
use bytes::Buf;
use Step::*;

/// Plays `script` straight to Postgres, then through a fresh pgsluice in session pooling;
/// asserts the two reply streams are identical and returns them.
async fn same_as_direct(script: &[Step]) -> Vec<Backend> {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()));
    scripts::same_as_direct(&p, script).await
}

#[tokio::test]
async fn flush_gets_replies_before_any_sync() {
    let script = [
        Send(
            Frontend::new()
                .parse("s1", "select $1::int4 + 1 as n")
                .describe_statement("s1")
                .flush(),
        ),
        // ParseComplete, ParameterDescription, RowDescription: no Sync has been sent yet.
        Expect(3),
        Send(
            Frontend::new()
                .bind("", "s1", &[Some("41")])
                .execute("", 0)
                .sync(),
        ),
        UntilReady,
    ];
    let got = same_as_direct(&script).await;
    assert_eq!(tags(&got), "1tT2DCZ");
    let mut param_desc = &got[1].body[..];
    assert_eq!(
        (param_desc.get_i16(), param_desc.get_u32()),
        (1, 23),
        "one int4"
    );
    assert_eq!(&got[2].body[..4], b"\0\x01n\0", "one column, named n");
    assert_eq!(values(&got), ["42"]);
    assert_eq!(got[5].cstrings(), ["SELECT 1"]);
    assert_eq!(&got[6].body[..], b"I");
}

#[tokio::test]
async fn error_mid_pipeline_skips_to_its_sync_and_the_next_batch_runs() {
    // Three batches in one write; the second fails at Parse (PostgreSQL docs, "Extended
    // Query": after an error the server discards messages until Sync).
    let batch = Frontend::new()
        .parse("", "select 'first'")
        .bind("", "", &[])
        .execute("", 0)
        .sync()
        .parse("", "selec oops")
        .bind("", "", &[])
        .execute("", 0)
        .sync()
        .parse("", "select 'third'")
        .bind("", "", &[])
        .execute("", 0)
        .sync();
    let got = same_as_direct(&[Send(batch), UntilReady, UntilReady, UntilReady]).await;
    assert_eq!(tags(&got), "12DCZEZ12DCZ");
    assert_eq!(got[5].sqlstate().as_deref(), Some("42601"));
    assert_eq!(values(&got), ["first", "third"]);
    assert!(got
        .iter()
        .filter(|m| m.tag == b'Z')
        .all(|z| &z.body[..] == b"I"));
}

#[tokio::test]
async fn execute_with_row_limit_suspends_and_resumes_the_portal() {
    let series = "select generate_series(1, 10)";
    let resume = |sync: bool| {
        let f = Frontend::new().execute("", 4);
        Send(if sync { f.sync() } else { f.flush() })
    };
    let script = [
        // Implicit transaction: Flush between Executes keeps the unnamed portal alive.
        Send(
            Frontend::new()
                .parse("", series)
                .bind("", "", &[])
                .execute("", 4)
                .flush(),
        ),
        Expect(7),
        resume(false),
        Expect(5),
        resume(false),
        Expect(3),
        Send(Frontend::new().sync()),
        UntilReady,
        // Explicit transaction: the portal also survives each Sync.
        Send(Frontend::new().query("begin")),
        UntilReady,
        Send(
            Frontend::new()
                .parse("", series)
                .bind("", "", &[])
                .execute("", 4)
                .sync(),
        ),
        UntilReady,
        resume(true),
        UntilReady,
        resume(true),
        UntilReady,
        Send(Frontend::new().query("commit")),
        UntilReady,
    ];
    let got = same_as_direct(&script).await;
    assert_eq!(
        tags(&got),
        "12DDDDsDDDDsDDCZCZ12DDDDsZDDDDsZDDCZCZ",
        "PortalSuspended after each full chunk"
    );
    let expected: Vec<String> = (1..=10).map(|n| n.to_string()).collect();
    let all = values(&got);
    assert_eq!(all[..10], expected[..]);
    assert_eq!(all[10..], expected[..]);
    let statuses: Vec<u8> = got
        .iter()
        .filter(|m| m.tag == b'Z')
        .map(|z| z.body[0])
        .collect();
    assert_eq!(statuses, b"ITTTTI");
}

#[tokio::test]
async fn named_portals_describe_close_and_empty_queries() {
    let batch = Frontend::new()
        .parse("s2", "select $1::text || 'x' as t, null::int as z")
        .bind("p1", "s2", &[Some("a")])
        .describe_portal("p1")
        .execute("p1", 0)
        .close_portal("p1")
        .close_statement("s2")
        // A closed statement is gone: this Bind fails (26000) and the rest is skipped.
        .bind("p2", "s2", &[Some("b")])
        .execute("p2", 0)
        .sync()
        .parse("", "")
        .bind("", "", &[])
        .execute("", 0)
        .sync()
        .query("")
        .query(";");
    let got = same_as_direct(&[Send(batch), UntilReady, UntilReady, UntilReady, UntilReady]).await;
    assert_eq!(tags(&got), "12TDC33EZ12IZIZIZ");
    assert_eq!(got[3].columns(), [Some("ax".to_owned()), None]);
    assert_eq!(got[7].sqlstate().as_deref(), Some("26000"));
}

#[tokio::test]
async fn large_messages_pass_whole_in_both_directions() {
    // Far beyond pkt_buf and any socket buffer: the relay must stream them, not truncate.
    let big = "0123456789abcdef".repeat(1 << 20);
    let script = [
        Send(Frontend::new().query(&format!("select md5('{big}'), length('{big}')"))),
        UntilReady,
        Send(Frontend::new().query("select repeat('pgsluice', 4 * 1024 * 1024)")),
        UntilReady,
        Send(
            Frontend::new()
                .parse("", "select md5($1), $1")
                .bind("", "", &[Some(&big)])
                .execute("", 0)
                .sync(),
        ),
        UntilReady,
    ];
    let got = same_as_direct(&script).await;
    assert_eq!(tags(&got), "TDCZTDCZ12DCZ");
    assert_eq!(got[1].columns()[1].as_deref(), Some("16777216"));
    assert_eq!(got[5].value().len(), 32 * 1024 * 1024);
    assert_eq!(got[10].columns()[1].as_deref(), Some(big.as_str()));
}

#[tokio::test]
async fn function_call_returns_its_result() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()));
    let mut c = RawClient::connect(&p, MD5_USER, MD5_PASS, &[]).await;
    let oid: u32 = c
        .query_value("select 'int4pl'::regproc::oid")
        .await
        .parse()
        .unwrap();
    c.send(Frontend::new().function_call_int4(oid, &[40, 2]))
        .await;
    let got = c.recv_until_ready().await;
    assert_eq!(tags(&got), "VZ", "{got:?}");
    let mut body = &got[0].body[..];
    assert_eq!((body.get_i32(), body.get_i32()), (4, 42));

    // An error inside the function is reported and the session goes on.
    c.send(Frontend::new().function_call_int4(oid, &[i32::MAX, 1]))
        .await;
    let got = c.recv_until_ready().await;
    assert_eq!(tags(&got), "EZ", "{got:?}");
    assert_eq!(got[0].sqlstate().as_deref(), Some("22003"));
    assert_eq!(c.query_value("select 'after'").await, "after");
}

#[tokio::test]
async fn notice_and_parameter_status_pass_through() {
    let script = [
        Send(Frontend::new().query("do $$ begin raise notice 'hello %', 42; end $$")),
        UntilReady,
        Send(Frontend::new().query("set application_name = 'relay_x'")),
        UntilReady,
    ];
    let got = same_as_direct(&script).await;
    let notice = got.iter().find(|m| m.tag == b'N').expect("NoticeResponse");
    assert_eq!(notice.field(b'M').as_deref(), Some("hello 42"));
    assert_eq!(notice.field(b'V').as_deref(), Some("NOTICE"));
    let status = got.iter().find(|m| m.tag == b'S').expect("ParameterStatus");
    assert_eq!(status.cstrings(), ["application_name", "relay_x"]);
    assert_eq!(got.last().map(|z| &z.body[..]), Some(&b"I"[..]));
}

#[tokio::test]
async fn terminate_closes_cleanly_and_the_server_is_reset_for_the_next_client() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()));
    let mut c = RawClient::connect(&p, MD5_USER, MD5_PASS, &[]).await;
    let first_pid = c.query_value("select pg_backend_pid()").await;
    let msgs = c.query("set statement_timeout = 4321").await;
    assert_eq!(tags(&msgs), "CZ");
    c.send(Frontend::new().terminate()).await;
    assert!(c.closed_cleanly().await, "bytes after Terminate");

    // The clean exit returned the server to the pool, reset (server_reset_query).
    let mut next = RawClient::connect(&p, MD5_USER, MD5_PASS, &[]).await;
    assert_eq!(next.query_value("select pg_backend_pid()").await, first_pid);
    assert_eq!(next.query_value("show statement_timeout").await, "0");
}

#[tokio::test]
async fn startup_parameters_come_back_as_parameter_status() {
    let p = Pooler::start(PoolerConfig::new(shared_cluster()));
    let app = unique_name("relay_ps");
    let params = [
        ("application_name", app.as_str()),
        ("DateStyle", "German, DMY"),
        ("TimeZone", "America/Sao_Paulo"),
        ("client_encoding", "LATIN1"),
    ];
    let mut c = RawClient::connect(&p, MD5_USER, MD5_PASS, &params).await;
    assert_eq!(
        c.startup_parameter("application_name").as_deref(),
        Some(&*app)
    );
    assert_eq!(
        c.startup_parameter("DateStyle").as_deref(),
        Some("German, DMY")
    );
    assert_eq!(
        c.startup_parameter("TimeZone").as_deref(),
        Some("America/Sao_Paulo")
    );
    assert_eq!(
        c.startup_parameter("client_encoding").as_deref(),
        Some("LATIN1")
    );
    for name in [
        "server_version",
        "integer_datetimes",
        "standard_conforming_strings",
    ] {
        assert!(
            c.startup_parameter(name).is_some(),
            "no ParameterStatus {name}"
        );
    }
    assert_eq!(c.query_value("show TimeZone").await, "America/Sao_Paulo");
    // Postgres converts to the client's encoding and the relay passes the bytes untouched:
    // 'é' is the single LATIN1 byte 0xE9 (in UTF-8 it would be two).
    let msgs = c.query("select chr(233)").await;
    let row = msgs.iter().find(|m| m.tag == b'D').expect("DataRow");
    assert_eq!(&row.body[..], b"\0\x01\0\0\0\x01\xe9");
}
