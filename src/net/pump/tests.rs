//! Unit tests of the pump: byte-exact forwarding, stops, replacements, limits, idle waits.

use super::*;

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

#[tokio::test]
async fn forwards_byte_exact_and_stops_where_asked() {
    let mut input = msg(b'D', &[1u8; 70_000]);
    input.extend(msg(b'Z', b"I"));
    input.extend(msg(b'C', b"SELECT 1\0"));
    let mut reader: &[u8] = &input;
    let mut out: Vec<u8> = Vec::new();
    let mut pump = Pump::new(1 << 20, 4096);
    let mut seen = Vec::new();
    let mut handler = |tag: u8, body: Option<&[u8]>| {
        seen.push((tag, body.map(|b| b.to_vec())));
        if tag == b'Z' {
            Verdict::ForwardThenStop
        } else {
            Verdict::Forward
        }
    };
    let r = std::future::poll_fn(|cx| {
        pump.poll_pump(cx, &mut reader, &mut out, |t| t == b'Z', &mut handler)
    })
    .await
    .unwrap();
    assert_eq!(r, Paused::Stopped);
    assert_eq!(out, input[..70_005 + 6]);
    assert_eq!(seen[0], (b'D', None));
    assert_eq!(seen[1], (b'Z', Some(b"I".to_vec())));
    assert!(pump.is_clean());
}

#[tokio::test]
async fn an_idle_wait_holds_no_buffer_and_loses_no_byte() {
    let (mut client, mut server) = tokio::io::duplex(1 << 16);
    let mut pump = Pump::new(1 << 20, 4096);
    let first = msg(b'Q', b"select 1\0");
    tokio::io::AsyncWriteExt::write_all(&mut client, &first)
        .await
        .unwrap();
    assert!(pump.read_more(&mut server).await.unwrap());
    let mut out: Vec<u8> = Vec::new();
    let mut handler = |_: u8, _: Option<&[u8]>| Verdict::ForwardThenStop;
    std::future::poll_fn(|cx| pump.poll_pump(cx, &mut server, &mut out, |_| true, &mut handler))
        .await
        .unwrap();
    assert_eq!(out, first);
    // Nothing buffered: the wait gives the buffer back while the peer is silent.
    let waiting = {
        let wait = pump.read_more(&mut server);
        tokio::pin!(wait);
        futures_poll_once(wait.as_mut()).await
    };
    assert!(waiting, "the wait must still be pending");
    assert_eq!(pump.buf.capacity(), 0);
    // A request larger than the stack read arrives whole, across reads.
    let big = msg(b'Q', &[b'x'; 20_000]);
    tokio::io::AsyncWriteExt::write_all(&mut client, &big)
        .await
        .unwrap();
    assert!(pump.read_more(&mut server).await.unwrap());
    out.clear();
    std::future::poll_fn(|cx| pump.poll_pump(cx, &mut server, &mut out, |_| false, &mut handler))
        .await
        .unwrap();
    assert_eq!(out, big);
    drop(client);
    assert!(!pump.read_more(&mut server).await.unwrap());
}

/// Polls a future once; true when it is still pending.
async fn futures_poll_once<F: std::future::Future + Unpin>(mut f: F) -> bool {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut f).poll(cx).is_pending())).await
}

#[tokio::test]
async fn stop_before_leaves_message_unforwarded() {
    let mut input = msg(b'Q', b"select 1\0");
    input.extend(msg(b'X', b""));
    let mut reader: &[u8] = &input;
    let mut out: Vec<u8> = Vec::new();
    let mut pump = Pump::new(1 << 20, 4096);
    let mut handler = |tag: u8, _: Option<&[u8]>| {
        if tag == b'X' {
            Verdict::StopBefore
        } else {
            Verdict::Forward
        }
    };
    let r = std::future::poll_fn(|cx| {
        pump.poll_pump(cx, &mut reader, &mut out, |t| t == b'X', &mut handler)
    })
    .await
    .unwrap();
    assert_eq!(r, Paused::Stopped);
    assert_eq!(out, msg(b'Q', b"select 1\0"));
}

#[tokio::test]
async fn replaced_and_dropped_messages_keep_their_place() {
    let mut input = msg(b'1', b"");
    input.extend(msg(b'2', b""));
    input.extend(msg(b'3', b""));
    input.extend(msg(b'Z', b"I"));
    let mut reader: &[u8] = &input;
    let mut out: Vec<u8> = Vec::new();
    let mut pump = Pump::new(1 << 20, 4096);
    let mut handler = |tag: u8, _: Option<&[u8]>| match tag {
        // Dropped: a reply the client did not ask for.
        b'1' => Verdict::Replace(Bytes::new()),
        // Something synthesized in front of a real message.
        b'3' => {
            let mut b = msg(b'n', b"");
            b.extend(msg(b'3', b""));
            Verdict::Replace(Bytes::from(b))
        }
        b'Z' => Verdict::ForwardThenStop,
        _ => Verdict::Forward,
    };
    let r = std::future::poll_fn(|cx| {
        pump.poll_pump(cx, &mut reader, &mut out, |_| true, &mut handler)
    })
    .await
    .unwrap();
    assert_eq!(r, Paused::Stopped);
    let mut expected = msg(b'2', b"");
    expected.extend(msg(b'n', b""));
    expected.extend(msg(b'3', b""));
    expected.extend(msg(b'Z', b"I"));
    assert_eq!(out, expected);
    assert!(pump.is_clean());
}

#[tokio::test]
async fn oversized_message_is_refused() {
    let input = msg(b'Q', &[b'a'; 5000]);
    let mut reader: &[u8] = &input;
    let mut out: Vec<u8> = Vec::new();
    let mut pump = Pump::new(1024, 4096);
    let r = std::future::poll_fn(|cx| {
        pump.poll_pump(cx, &mut reader, &mut out, |_| false, &mut |_, _| {
            Verdict::Forward
        })
    })
    .await;
    assert!(matches!(
        r,
        Err(PumpError::Protocol(ProtocolError::MessageTooLong { .. }))
    ));
    assert!(out.is_empty());
}

#[tokio::test]
async fn a_request_is_ready_only_once_its_first_message_is_whole() {
    let query = msg(b'Q', b"select 1\0");
    let mut pump = Pump::new(1 << 20, 1024);
    let mut reader: &[u8] = &query[..7];
    assert!(pump.read_more(&mut reader).await.unwrap());
    assert_eq!(pump.peek_tag(), Some(b'Q'));
    assert_eq!(
        pump.peek_request(),
        None,
        "half a Query is not a request yet"
    );
    let mut reader: &[u8] = &query[7..];
    assert!(pump.read_more(&mut reader).await.unwrap());
    assert_eq!(pump.peek_request(), Some(b'Q'));

    // Longer than the read-ahead bound: handed over from its first bytes, streamed.
    let big = msg(b'Q', &[b'a'; 20_000]);
    let mut pump = Pump::new(1 << 20, 1024);
    let mut reader: &[u8] = &big[..100];
    assert!(pump.read_more(&mut reader).await.unwrap());
    assert_eq!(pump.peek_request(), Some(b'Q'));
    assert!(
        pump.awaiting_rest() && !pump.mid_message(),
        "held, not passed on"
    );
}

#[tokio::test]
async fn a_message_cut_short_is_mid_message_once_part_of_it_is_passed_on() {
    let big = msg(b'd', &[b'a'; 20_000]);
    let mut reader: &[u8] = &big[..10_000];
    let mut out: Vec<u8> = Vec::new();
    let mut pump = Pump::new(1 << 20, 4096);
    let r = std::future::poll_fn(|cx| {
        pump.poll_pump(cx, &mut reader, &mut out, |_| false, &mut |_, _| {
            Verdict::Forward
        })
    })
    .await
    .unwrap();
    assert_eq!(r, Paused::Eof);
    assert_eq!(out.len(), 10_000, "streamed as it came");
    assert!(pump.mid_message() && pump.awaiting_rest());
}
