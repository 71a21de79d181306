//! The `pgsluice` command: parses the command line, initialises logging, loads and validates
//! pooler.toml, then runs the pooler (or, with --check, only reports every config problem).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use pgsluice::config::{syslog_facility_code, Config, LogFormat, Source};
use pgsluice::process::{self, LogFile, PidFile, Syslog};
use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};

/// A PostgreSQL connection pooler.
#[derive(Parser, Debug)]
#[command(
    name = "pgsluice",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Path to pooler.toml.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Path to pooler.toml (same as -c).
    #[arg(value_name = "CONFIG", conflicts_with = "config")]
    config_positional: Option<PathBuf>,
    /// Validate the configuration and auth_file, print every problem, and exit.
    #[arg(long)]
    check: bool,
    /// More log output (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Less log output (repeat for less).
    #[arg(short, long, action = clap::ArgAction::Count)]
    quiet: u8,
    /// Run in the background (PgBouncer's -d); needs pidfile, and logfile for the logs.
    #[arg(short = 'd', long = "daemon")]
    daemon: bool,
    /// Run as this user (PgBouncer's -u; pgsluice must be started as root).
    #[arg(short = 'u', long = "user", value_name = "USER")]
    user: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Print the pooler.toml equivalent of a pgbouncer.ini (warnings on stderr).
    Convert {
        /// The pgbouncer.ini to convert.
        ini: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Convert { ini }) = &cli.command {
        return convert(ini);
    }
    if let Some(user) = &cli.user {
        if std::env::var_os(process::SWITCHED_ENV).is_none() {
            if let Err(e) = process::become_user(user) {
                eprintln!("pgsluice: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let Some(path) = cli.config.clone().or(cli.config_positional.clone()) else {
        eprintln!("pgsluice: no configuration file given; usage: pgsluice -c pooler.toml (see pooler.toml.example)");
        return ExitCode::from(2);
    };
    let loaded = Source::read(&path).and_then(|source| {
        for warning in &source.warnings {
            eprintln!("pgsluice: warning: {warning}");
        }
        source.parse(&source.toml, path.parent().unwrap_or(Path::new("")))
    });
    let config = match loaded {
        Ok(c) => c,
        Err(errors) => {
            eprintln!(
                "pgsluice: {} has {} problem(s):",
                path.display(),
                errors.0.len()
            );
            eprintln!("{errors}");
            return ExitCode::from(1);
        }
    };
    if cli.check {
        if let Err(errors) = pgsluice::app::check_tls(&config) {
            eprintln!(
                "pgsluice: {} has {} problem(s):",
                path.display(),
                errors.0.len()
            );
            eprintln!("{errors}");
            return ExitCode::from(1);
        }
        return match pgsluice::app::load_userlist(&config) {
            Ok(userlist) => {
                if let Some(warning) = pgsluice::app::open_files_warning(&config, &userlist) {
                    eprintln!("pgsluice: warning: {warning}");
                }
                println!("{}: configuration OK", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("pgsluice: {}: pooler.auth_file: {e}", path.display());
                ExitCode::from(1)
            }
        };
    }
    let detached = std::env::var_os(process::DETACHED_ENV).is_some();
    if cli.daemon && !detached {
        return daemonize(&config);
    }
    if let Err(e) = init_logging(&config, cli.verbose, cli.quiet) {
        eprintln!("pgsluice: {e}");
        return ExitCode::from(1);
    }
    let _pidfile = match config
        .pooler
        .process
        .pidfile
        .as_deref()
        .map(PidFile::create)
    {
        Some(Err(e)) => {
            tracing::error!("{e}");
            eprintln!("pgsluice: {e}");
            return ExitCode::from(1);
        }
        Some(Ok(pidfile)) => Some(pidfile),
        None => None,
    };
    match run(config, path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("pgsluice: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `-d`: as PgBouncer, only with a pidfile (and logs need a logfile: stderr goes nowhere).
fn daemonize(config: &Config) -> ExitCode {
    let Some(pidfile) = &config.pooler.process.pidfile else {
        eprintln!("pgsluice: -d needs pidfile in the configuration (PgBouncer's rule too)");
        return ExitCode::from(1);
    };
    if config.pooler.process.logfile.is_none() {
        eprintln!("pgsluice: warning: -d without logfile: the logs are discarded");
    }
    match process::detach(pidfile, std::time::Duration::from_secs(30)) {
        Ok(pid) => {
            println!("pgsluice running in the background, pid {pid}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pgsluice: {e}");
            ExitCode::from(1)
        }
    }
}

/// `pgsluice convert pgbouncer.ini`: the equivalent pooler.toml on stdout; any problem, named by
/// file and line, on stderr with exit status 1.
fn convert(ini: &Path) -> ExitCode {
    let problems = |errors: pgsluice::config::ConfigErrors| {
        eprintln!(
            "pgsluice: {} has {} problem(s):",
            ini.display(),
            errors.0.len()
        );
        eprintln!("{errors}");
        ExitCode::from(1)
    };
    let source = match Source::read(ini) {
        Ok(source) => source,
        Err(errors) => return problems(errors),
    };
    for warning in &source.warnings {
        eprintln!("pgsluice: warning: {warning}");
    }
    match source.parse(&source.toml, ini.parent().unwrap_or(Path::new(""))) {
        Ok(_) => {
            print!("{}", source.toml);
            ExitCode::SUCCESS
        }
        Err(errors) => problems(errors),
    }
}

fn run(config: Config, path: PathBuf) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(pgsluice::app::run(config, Some(path)))?;
    // Client tasks still running after shutdown_timeout are dropped with the runtime.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(())
}

/// Level: `verbose` from the config plus -v, minus -q; RUST_LOG overrides when set. Lines go
/// to `logfile` when set, else to stderr.
fn init_logging(config: &Config, verbose: u8, quiet: u8) -> anyhow::Result<()> {
    let level = 2i32 + i32::from(config.pooler.verbose) + i32::from(verbose) - i32::from(quiet);
    let level = match level {
        i32::MIN..=0 => "error",
        1 => "warn",
        2 => "info",
        3 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("pgsluice={level},warn")));
    // Where lines go: logfile, else stderr; with syslog, the system log as well.
    let process = &config.pooler.process;
    let syslog = if process.syslog {
        let facility = syslog_facility_code(&process.syslog_facility).unwrap_or(3);
        Some(
            Syslog::open(&process.syslog_ident, facility)
                .context("cannot reach the system log (syslog = true)")?,
        )
    } else {
        None
    };
    let primary: BoxMakeWriter = match &process.logfile {
        Some(path) => BoxMakeWriter::new(
            LogFile::open(path)
                .with_context(|| format!("cannot open logfile {}", path.display()))?,
        ),
        None => BoxMakeWriter::new(std::io::stderr),
    };
    let writer = match syslog {
        Some(syslog) => BoxMakeWriter::new(primary.and(syslog)),
        None => primary,
    };
    // Colour codes only on a terminal: in a log file they split `key=value` pairs, so a DBA's
    // grep (or a log shipper's parser) would miss them.
    let ansi = process.logfile.is_none() && !process.syslog && std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match config.pooler.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Plain => builder.init(),
    }
    Ok(())
}
