//! Byte streams to and from peers: TCP or Unix-domain sockets behind one boxed type, so the
//! relay and the login code do not care which (a TLS stream is boxed the same way).
//! Sockets get TCP_NODELAY (whole messages are written in batches, so Nagle only adds delay)
//! and, when asked, keepalive so dead peers are noticed.

pub(crate) mod prefixed;
pub(crate) mod pump;
pub(crate) mod write_through;

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
        Ok(self.connect_with_local(keepalive).await?.0)
    }

    /// Connects and also says which local TCP address was used (SHOW SERVERS lists it, and it
    /// is the client_port Postgres shows in pg_stat_activity).
    pub(crate) async fn connect_with_local(
        &self,
        keepalive: bool,
    ) -> io::Result<(BoxStream, Option<std::net::SocketAddr>)> {
        match self {
            Address::Tcp { host, port } => {
                let stream = TcpStream::connect((host.as_str(), *port)).await?;
                tune_tcp(&stream, keepalive)?;
                let local = stream.local_addr().ok();
                Ok((Box::new(stream), local))
            }
            Address::Unix { path } => Ok((Box::new(UnixStream::connect(path).await?), None)),
        }
    }

    /// Host and port for display (a Unix socket shows its path and no port).
    pub(crate) fn host_port(&self) -> (String, u16) {
        match self {
            Address::Tcp { host, port } => (host.clone(), *port),
            Address::Unix { path } => (path.display().to_string(), 0),
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
