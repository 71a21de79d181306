//! Byte streams to and from peers: TCP or Unix-domain sockets behind one boxed type, so the
//! relay and the login code do not care which (TLS will wrap the same type).
//! Sockets get TCP_NODELAY (whole messages are written in batches, so Nagle only adds delay)
//! and, when asked, keepalive so dead peers are noticed.

pub(crate) mod pump;

use std::fmt;
use std::io;
use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

/// Any bidirectional byte stream a connection can run over.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Transport for T {}

pub(crate) type BoxStream = Box<dyn Transport>;

/// Where a PostgreSQL server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Address {
    Tcp { host: String, port: u16 },
    Unix { path: PathBuf },
}

impl Address {
    /// libpq's rule: a host starting with '/' is a socket directory holding `.s.PGSQL.<port>`.
    pub(crate) fn from_host_port(host: &str, port: u16) -> Address {
        if host.starts_with('/') {
            Address::Unix {
                path: PathBuf::from(host).join(format!(".s.PGSQL.{port}")),
            }
        } else {
            Address::Tcp {
                host: host.to_string(),
                port,
            }
        }
    }

    pub(crate) async fn connect(&self, keepalive: bool) -> io::Result<BoxStream> {
        match self {
            Address::Tcp { host, port } => {
                let stream = TcpStream::connect((host.as_str(), *port)).await?;
                tune_tcp(&stream, keepalive)?;
                Ok(Box::new(stream))
            }
            Address::Unix { path } => Ok(Box::new(UnixStream::connect(path).await?)),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp { host, port } => write!(f, "{host}:{port}"),
            Address::Unix { path } => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Applies NODELAY and keepalive to a TCP socket, on either side of the pooler.
pub(crate) fn tune_tcp(stream: &TcpStream, keepalive: bool) -> io::Result<()> {
    stream.set_nodelay(true)?;
    if keepalive {
        socket2::SockRef::from(stream).set_keepalive(true)?;
    }
    Ok(())
}
