//! One admin console session (`psql -U <admin> pgsluice`): greets like a server, then answers
//! simple-query commands — SHOW renders a fresh snapshot, control commands act through
//! `control` — each followed by ReadyForQuery. The extended protocol gets a clear FATAL rather
//! than a hang; stats_users may only SHOW.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::Decoder;

use super::command::{parse, Command};
use super::error::AdminError;
use super::{control, gather, render};
use crate::net::BoxStream;
use crate::protocol::backend;
use crate::protocol::codec::FrameCodec;
use crate::protocol::sqlstate;
use crate::protocol::tags::{frontend_tag, tx_status};
use crate::state::{Shared, Shutdown};

/// Longest console message accepted (a command is one short line).
const MAX_CONSOLE_MESSAGE: usize = 1 << 20;

/// What the user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Admin,
    Stats,
}

/// Runs the session until the client leaves. `buf` holds bytes already read after login.
pub(crate) async fn serve(
    shared: &Shared,
    stream: &mut BoxStream,
    mut buf: BytesMut,
    role: Role,
    cancel_key: (u32, u32),
) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    greet(&mut out, cancel_key);
    stream.write_all(&out).await?;
    let mut codec = FrameCodec::new(MAX_CONSOLE_MESSAGE);
    let mut shutdown = shared.shutdown_state();
    loop {
        let frame = loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => break frame,
                Ok(None) => {}
                Err(_) => return fatal(stream, &AdminError::SimpleQueryOnly).await,
            }
            // A console left open (a psql session, pgbouncer_exporter's persistent
            // connection) must not hold the process past SHUTDOWN or SIGINT/SIGTERM: the
            // reply to the last command is out, so leave now.
            if *shutdown.borrow() != Shutdown::Running {
                return fatal(stream, &AdminError::ShuttingDown).await;
            }
            tokio::select! {
                read = stream.read_buf(&mut buf) => if read? == 0 {
                    return Ok(());
                },
                Ok(()) = shutdown.changed() => {}
            }
        };
        out.clear();
        match frame.tag {
            frontend_tag::QUERY => {
                let text = String::from_utf8_lossy(&frame.body);
                let text = text.trim_end_matches('\0');
                execute(shared, role, text, &mut out).await;
                backend::ready_for_query(&mut out, tx_status::IDLE);
            }
            frontend_tag::SYNC => backend::ready_for_query(&mut out, tx_status::IDLE),
            frontend_tag::TERMINATE => return Ok(()),
            _ => return fatal(stream, &AdminError::SimpleQueryOnly).await,
        }
        stream.write_all(&out).await?;
    }
}

async fn fatal(stream: &mut BoxStream, e: &AdminError) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    e.write_error_response(&mut out);
    stream.write_all(&out).await
}

/// AuthenticationOk, the ParameterStatus values a driver needs, our cancel key,
/// ReadyForQuery.
fn greet(out: &mut BytesMut, key: (u32, u32)) {
    backend::authentication_ok(out);
    let version = format!("{}/pgsluice", env!("CARGO_PKG_VERSION"));
    for (name, value) in [
        ("server_version", version.as_str()),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO"),
        ("TimeZone", "UTC"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
        ("application_name", ""),
    ] {
        backend::parameter_status(out, name, value);
    }
    backend::backend_key_data(out, key.0, key.1);
    backend::ready_for_query(out, tx_status::IDLE);
}

async fn execute(shared: &Shared, role: Role, text: &str, out: &mut BytesMut) {
    let cmd = match parse(text) {
        Ok(cmd) => cmd,
        Err(e) => return e.write_error_response(out),
    };
    if role == Role::Stats && !cmd.is_show() {
        return AdminError::NotAllowed { command: cmd.tag() }.write_error_response(out);
    }
    match &cmd {
        Command::Empty => backend::empty_query_response(out),
        Command::Show(what) => render::show(out, *what, &gather::snapshot(shared)),
        Command::IgnoredSet { .. } => render::set_ignored(out),
        _ => match control::run(shared, &cmd).await {
            Ok(notices) => {
                for notice in notices {
                    backend::notice_response(out, sqlstate::WARNING, &notice);
                }
                backend::command_complete(out, &cmd.tag());
            }
            Err(e) => e.write_error_response(out),
        },
    }
}
