//! Unit tests of the reply plan: what the client sees for a backend stream under a plan.

use super::*;
use crate::protocol::tags::backend_tag;

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// What the client receives for a backend stream under `plan`.
fn client_sees(plan: &mut ReplyPlan, backend: &[(u8, &[u8])]) -> Vec<u8> {
    let mut seen = plan.take_ready().map(|b| b.to_vec()).unwrap_or_default();
    for (tag, body) in backend {
        let whole = if must_buffer(*tag) { Some(*body) } else { None };
        loop {
            match plan.on_backend(*tag, whole) {
                Verdict::Forward => {
                    seen.extend(msg(*tag, body));
                    break;
                }
                Verdict::Replace(b) => {
                    seen.extend_from_slice(&b);
                    break;
                }
                Verdict::InsertBefore(b) => seen.extend_from_slice(&b),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    seen
}

fn synth(tag: u8) -> Bytes {
    Bytes::from(msg(tag, b""))
}

#[test]
fn failed_and_skipped_parses_are_handed_back() {
    let mut plan = ReplyPlan::default();
    let undo = |id| {
        Some(Undo {
            server: Some(id),
            client: Some(("s".into(), id)),
            ..Undo::default()
        })
    };
    plan.expect_or_undo(Kind::One, Disposition::Forward, undo(1));
    plan.synthesize(synth(backend_tag::PARSE_COMPLETE), undo(2));
    plan.expect(Kind::Sync, Disposition::Forward);
    let err = b"SERROR\0C42601\0Mbad\0\0";
    client_sees(
        &mut plan,
        &[
            (backend_tag::ERROR_RESPONSE, err),
            (backend_tag::READY_FOR_QUERY, b"I"),
        ],
    );
    let undone = plan.take_undone();
    assert_eq!(undone.len(), 2);
    assert_eq!(undone[0].server, Some(1));
    assert_eq!(undone[1].server, Some(2));
}

#[test]
fn skipped_parse_gets_its_parse_complete_in_place() {
    // Client: Parse S (already on the server), Bind, Execute, Sync.
    let mut plan = ReplyPlan::default();
    plan.synthesize(synth(backend_tag::PARSE_COMPLETE), None);
    plan.expect(Kind::One, Disposition::Forward);
    plan.expect(Kind::Execute, Disposition::Forward);
    plan.expect(Kind::Sync, Disposition::Forward);
    let seen = client_sees(
        &mut plan,
        &[
            (backend_tag::BIND_COMPLETE, b""),
            (backend_tag::DATA_ROW, b"\0\x01\0\0\0\x011"),
            (backend_tag::COMMAND_COMPLETE, b"SELECT 1\0"),
            (backend_tag::READY_FOR_QUERY, b"I"),
        ],
    );
    let mut expected = msg(backend_tag::PARSE_COMPLETE, b"");
    expected.extend(msg(backend_tag::BIND_COMPLETE, b""));
    expected.extend(msg(backend_tag::DATA_ROW, b"\0\x01\0\0\0\x011"));
    expected.extend(msg(backend_tag::COMMAND_COMPLETE, b"SELECT 1\0"));
    expected.extend(msg(backend_tag::READY_FOR_QUERY, b"I"));
    assert_eq!(seen, expected);
    assert!(plan.is_empty());
}

#[test]
fn injected_parse_is_hidden_and_close_answered_locally() {
    // Injected Parse before Bind; client Close S answered by pgsluice; Sync.
    let mut plan = ReplyPlan::default();
    plan.expect(Kind::One, Disposition::Swallow);
    plan.expect(Kind::One, Disposition::Forward);
    plan.synthesize(synth(backend_tag::CLOSE_COMPLETE), None);
    plan.expect(Kind::Sync, Disposition::Forward);
    let seen = client_sees(
        &mut plan,
        &[
            (backend_tag::PARSE_COMPLETE, b""),
            (backend_tag::BIND_COMPLETE, b""),
            (backend_tag::READY_FOR_QUERY, b"I"),
        ],
    );
    let mut expected = msg(backend_tag::BIND_COMPLETE, b"");
    expected.extend(msg(backend_tag::CLOSE_COMPLETE, b""));
    expected.extend(msg(backend_tag::READY_FOR_QUERY, b"I"));
    assert_eq!(seen, expected);
}

#[test]
fn an_error_skips_our_replies_up_to_sync_like_postgres() {
    // Bind fails; the skipped Parse after it must get no ParseComplete.
    let mut plan = ReplyPlan::default();
    plan.expect(Kind::One, Disposition::Forward);
    plan.synthesize(synth(backend_tag::PARSE_COMPLETE), None);
    plan.expect(Kind::Execute, Disposition::Forward);
    plan.expect(Kind::Sync, Disposition::Forward);
    plan.synthesize(synth(backend_tag::PARSE_COMPLETE), None);
    plan.expect(Kind::Sync, Disposition::Forward);
    let err = b"SERROR\0C42P01\0Mboom\0\0";
    let seen = client_sees(
        &mut plan,
        &[
            (backend_tag::ERROR_RESPONSE, err),
            (backend_tag::READY_FOR_QUERY, b"I"),
            (backend_tag::READY_FOR_QUERY, b"I"),
        ],
    );
    let mut expected = msg(backend_tag::ERROR_RESPONSE, err);
    expected.extend(msg(backend_tag::READY_FOR_QUERY, b"I"));
    expected.extend(msg(backend_tag::PARSE_COMPLETE, b""));
    expected.extend(msg(backend_tag::READY_FOR_QUERY, b"I"));
    assert_eq!(seen, expected);
}

#[test]
fn a_query_skipped_after_an_extended_error_is_counted() {
    // Parse fails (sent with Flush); the Query after it is skipped up to the Sync.
    let mut plan = ReplyPlan::default();
    plan.expect(Kind::One, Disposition::Forward);
    plan.expect(Kind::UntilReady, Disposition::Forward);
    plan.expect(Kind::Sync, Disposition::Forward);
    let err = b"SERROR\0C42601\0Msyntax\0\0";
    client_sees(&mut plan, &[(backend_tag::ERROR_RESPONSE, err)]);
    assert_eq!(plan.take_skipped_requests(), 1);
    client_sees(&mut plan, &[(backend_tag::READY_FOR_QUERY, b"I")]);
    assert!(plan.is_empty());
    assert_eq!(plan.take_skipped_requests(), 0);
}

#[test]
fn a_query_sent_after_the_error_and_before_the_sync_is_skipped() {
    // Parse fails with Flush; only then does the client send Query and Sync.
    let mut plan = ReplyPlan::default();
    plan.expect(Kind::One, Disposition::Forward);
    let err = b"SERROR\0C42601\0Msyntax\0\0";
    client_sees(&mut plan, &[(backend_tag::ERROR_RESPONSE, err)]);
    plan.expect(Kind::UntilReady, Disposition::Forward);
    plan.synthesize(synth(backend_tag::PARSE_COMPLETE), None);
    assert_eq!(plan.take_skipped_requests(), 1);
    plan.expect(Kind::Sync, Disposition::Forward);
    let seen = client_sees(&mut plan, &[(backend_tag::READY_FOR_QUERY, b"I")]);
    assert_eq!(
        seen,
        msg(backend_tag::READY_FOR_QUERY, b"I"),
        "no ParseComplete for the skipped Parse"
    );
    assert!(plan.is_empty());
    plan.expect(Kind::UntilReady, Disposition::Forward);
    assert_eq!(
        plan.take_skipped_requests(),
        0,
        "not skipping after the Sync"
    );
}

#[test]
fn only_the_first_completion_of_an_extended_query_is_shown() {
    let mut plan = ReplyPlan::default();
    plan.expect(Kind::UntilReady, Disposition::FirstCompletion);
    let seen = client_sees(
        &mut plan,
        &[
            (backend_tag::COMMAND_COMPLETE, b"RESET\0"),
            (backend_tag::COMMAND_COMPLETE, b"SET\0"),
            (backend_tag::PARAMETER_STATUS, b"application_name\0a\0"),
            (backend_tag::READY_FOR_QUERY, b"I"),
        ],
    );
    let mut expected = msg(backend_tag::COMMAND_COMPLETE, b"RESET\0");
    expected.extend(msg(backend_tag::PARAMETER_STATUS, b"application_name\0a\0"));
    expected.extend(msg(backend_tag::READY_FOR_QUERY, b"I"));
    assert_eq!(seen, expected);
}

#[test]
fn errors_about_a_renamed_statement_name_the_clients_statement() {
    let mut plan = ReplyPlan::default();
    plan.expect(
        Kind::One,
        Disposition::Rename {
            from: "pgsluice_7".into(),
            to: "mine".into(),
        },
    );
    plan.expect(Kind::Sync, Disposition::Forward);
    let err = b"SERROR\0C42P05\0Mprepared statement \"pgsluice_7\" already exists\0\0";
    let seen = client_sees(
        &mut plan,
        &[
            (backend_tag::ERROR_RESPONSE, err),
            (backend_tag::READY_FOR_QUERY, b"E"),
        ],
    );
    let text = String::from_utf8_lossy(&seen);
    assert!(
        text.contains("prepared statement \"mine\" already exists"),
        "{text}"
    );
    assert!(!text.contains("pgsluice_7"));
}

#[test]
fn synthesized_reply_before_a_streamed_row_goes_in_front_of_it() {
    let mut plan = ReplyPlan::default();
    plan.synthesize(synth(backend_tag::PARSE_COMPLETE), None);
    plan.expect(Kind::Execute, Disposition::Forward);
    // Not drained up front: the row arrives streamed.
    let seen = {
        let mut seen = Vec::new();
        match plan.on_backend(backend_tag::DATA_ROW, None) {
            Verdict::InsertBefore(b) => seen.extend_from_slice(&b),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            plan.on_backend(backend_tag::DATA_ROW, None),
            Verdict::Forward
        );
        seen
    };
    assert_eq!(seen, msg(backend_tag::PARSE_COMPLETE, b""));
}

#[test]
fn notices_and_parameter_status_do_not_consume_replies() {
    let mut plan = ReplyPlan::default();
    plan.expect(Kind::One, Disposition::Swallow);
    assert_eq!(
        plan.on_backend(backend_tag::NOTICE_RESPONSE, Some(b"SNOTICE\0\0")),
        Verdict::Forward
    );
    assert_eq!(
        plan.on_backend(backend_tag::PARAMETER_STATUS, Some(b"a\0b\0")),
        Verdict::Forward
    );
    assert_eq!(
        plan.on_backend(backend_tag::PARSE_COMPLETE, Some(b"")),
        Verdict::Replace(Bytes::new())
    );
    assert!(plan.is_empty());
}

#[test]
fn syncs_postgres_ignored_in_copy_in_are_not_waited_for() {
    let mut plan = ReplyPlan::default();
    plan.expect(Kind::Execute, Disposition::Forward);
    plan.expect(Kind::Sync, Disposition::Forward);
    plan.drop_ignored_syncs(1);
    plan.expect(Kind::Sync, Disposition::Forward);
    // CommandComplete ends the Execute; the one ReadyForQuery ends the later Sync.
    assert_eq!(
        plan.on_backend(backend_tag::COMMAND_COMPLETE, Some(b"COPY 1\0")),
        Verdict::Forward
    );
    assert_eq!(
        plan.on_backend(backend_tag::READY_FOR_QUERY, Some(b"I")),
        Verdict::Forward
    );
    assert!(plan.is_empty());
}
