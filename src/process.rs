//! PgBouncer's process conventions for those who run pgsluice as they ran PgBouncer: a
//! `logfile` that follows log rotation (reopened when the file at its path is no longer the
//! one written to, as after logrotate's rename), a `pidfile` written at start and removed at
//! exit (a pidfile of a process still running refuses the start), `-d`, which detaches
//! by starting pgsluice again in a new session-less process group with no terminal and
//! returning once it runs, and `-u user`, which becomes that user by executing pgsluice again
//! under its uid and gid (no unsafe setuid). Called by `main` only.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the log file's path is checked for a rotation.
const ROTATION_CHECK: Duration = Duration::from_secs(1);

/// Appends log lines to `logfile`, reopening it when it was rotated away.
#[derive(Clone)]
pub struct LogFile {
    inner: Arc<Mutex<Open>>,
}

struct Open {
    path: PathBuf,
    file: File,
    inode: u64,
    checked: Instant,
}

impl LogFile {
    pub fn open(path: &Path) -> io::Result<LogFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let inode = file.metadata()?.ino();
        Ok(LogFile {
            inner: Arc::new(Mutex::new(Open {
                path: path.to_path_buf(),
                file,
                inode,
                checked: Instant::now(),
            })),
        })
    }
}

impl Open {
    fn follow_rotation(&mut self) {
        if self.checked.elapsed() < ROTATION_CHECK {
            return;
        }
        self.checked = Instant::now();
        let moved = std::fs::metadata(&self.path).map_or(true, |m| m.ino() != self.inode);
        if moved {
            if let Ok(file) = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
            {
                self.inode = file.metadata().map(|m| m.ino()).unwrap_or(0);
                self.file = file;
            }
        }
    }
}

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut open = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        open.follow_rotation();
        open.file.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .file
            .flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogFile {
    type Writer = LogFile;

    fn make_writer(&'a self) -> LogFile {
        self.clone()
    }
}

/// Where the system log listens (syslog(3)'s socket); `PGSLUICE_SYSLOG_SOCKET` points
/// elsewhere (a container's log agent, a test).
pub const SYSLOG_SOCKET: &str = "/dev/log";

/// Sends each log line to the system log as one datagram in syslog(3)'s format,
/// `<priority>ident[pid]: message`, the priority from the facility and the line's level.
#[derive(Clone)]
pub struct Syslog {
    socket: Arc<std::os::unix::net::UnixDatagram>,
    path: PathBuf,
    ident: String,
    facility: u8,
}

impl Syslog {
    pub fn open(ident: &str, facility: u8) -> io::Result<Syslog> {
        let path = std::env::var_os("PGSLUICE_SYSLOG_SOCKET")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(SYSLOG_SOCKET));
        let socket = std::os::unix::net::UnixDatagram::unbound()?;
        // Fails at start, not silently later, when nothing listens there.
        socket.connect(&path)?;
        Ok(Syslog {
            socket: Arc::new(socket),
            path,
            ident: ident.to_string(),
            facility,
        })
    }
}

/// One line on its way to the system log, with its severity.
pub struct SyslogLine {
    to: Syslog,
    severity: u8,
}

impl Write for SyslogLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let priority = u16::from(self.to.facility) * 8 + u16::from(self.severity);
        let line = format!(
            "<{priority}>{}[{}]: {}",
            self.to.ident,
            std::process::id(),
            text.trim_end()
        );
        // A full or restarted log daemon must not stop the pooler: the line is dropped.
        if self.to.socket.send(line.as_bytes()).is_err() {
            let _ = self.to.socket.connect(&self.to.path);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Syslog {
    type Writer = SyslogLine;

    fn make_writer(&'a self) -> SyslogLine {
        SyslogLine {
            to: self.clone(),
            severity: 6,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> SyslogLine {
        // RFC 5424 severities: err 3, warning 4, info 6, debug 7.
        let severity = match *meta.level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            _ => 7,
        };
        SyslogLine {
            to: self.clone(),
            severity,
        }
    }
}

/// The pidfile, removed again when dropped (at exit).
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes this process's id; refuses when the file names a process that still runs.
    pub fn create(path: &Path) -> Result<PidFile, String> {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                if Path::new(&format!("/proc/{pid}")).exists() && pid != std::process::id() as i32 {
                    return Err(format!(
                        "pidfile {} names process {pid}, which is running: is pgsluice already \
                         running?",
                        path.display()
                    ));
                }
            }
        }
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| format!("cannot write pidfile {}: {e}", path.display()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Marks the detached copy that `-d` starts, so it does not detach again.
pub const DETACHED_ENV: &str = "PGSLUICE_DETACHED";

/// `-d`: starts this program again with the same arguments, detached (no terminal, its own
/// process group, standard streams on /dev/null), and waits until it has written `pidfile`
/// (it runs) or has exited (it could not start; its reasons are in the log file).
pub fn detach(pidfile: &Path, wait: Duration) -> Result<u32, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
    let mut child = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(DETACHED_ENV, "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the background process: {e}"))?;
    let pid = child.id();
    let deadline = Instant::now() + wait;
    loop {
        if let Ok(text) = std::fs::read_to_string(pidfile) {
            if text.trim() == pid.to_string() {
                return Ok(pid);
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the background process exited at once ({status}); see logfile"
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the background process did not start within {wait:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Marks the copy that `-u` executed, so it does not switch again.
pub const SWITCHED_ENV: &str = "PGSLUICE_USER_SWITCHED";

/// `-u user`: replaces this process with pgsluice running as `user` (uid and primary gid from
/// /etc/passwd). Returns only on failure; a no-op `Ok` when already running as that user.
pub fn become_user(user: &str) -> Result<(), String> {
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(|e| format!("cannot read /etc/passwd: {e}"))?;
    let (uid, gid) = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[0] == user)
        .and_then(|f| Some((f[2].parse::<u32>().ok()?, f[3].parse::<u32>().ok()?)))
        .ok_or_else(|| format!("-u: no user {user:?} in /etc/passwd"))?;
    let current = rustix::process::getuid().as_raw();
    if current == uid {
        return Ok(());
    }
    if current != 0 {
        return Err(format!("-u {user}: only root can switch to another user"));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
    let error = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(SWITCHED_ENV, "1")
        .uid(uid)
        .gid(gid)
        .exec();
    Err(format!("-u {user}: cannot run as that user: {error}"))
}
