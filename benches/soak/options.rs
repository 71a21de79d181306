//! The soak's knobs, read once from the environment by `main` (cargo bench passes no options
//! of its own through). Defaults are the full run's: 5,000 clients for 10 minutes with two
//! PostgreSQL restarts; a trial shrinks them (SOAK_CLIENTS=300 SOAK_SECONDS=60).

use std::time::Duration;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Options {
    /// `SOAK_CLIENTS`: concurrent clients, each its own connection through pgsluice.
    pub clients: usize,
    /// `SOAK_SECONDS`: length of the run, ramp-up included.
    pub seconds: u64,
    /// `SOAK_RESTARTS`: PostgreSQL restarts spread evenly over the run (fast, immediate, ...).
    pub restarts: usize,
    /// `SOAK_THINK_MS`: mean pause between a client's operations (uniform 0.5x..1.5x), so the
    /// offered load stays what two cores can serve; 5,000 clients at 2 s is ~2,500 ops/s.
    pub think_ms: u64,
    /// `SOAK_SAMPLE_SECONDS`: length of one reporting window.
    pub sample_seconds: u64,
}

impl Options {
    pub fn from_env() -> Options {
        Options {
            clients: env_or("SOAK_CLIENTS", 5000),
            seconds: env_or("SOAK_SECONDS", 600),
            restarts: env_or("SOAK_RESTARTS", 2),
            think_ms: env_or("SOAK_THINK_MS", 2000),
            sample_seconds: env_or("SOAK_SAMPLE_SECONDS", 10).max(1),
        }
    }

    pub fn run_for(&self) -> Duration {
        Duration::from_secs(self.seconds)
    }

    /// Clients are opened evenly over the first tenth of the run (at least one window).
    pub fn ramp_up(&self) -> Duration {
        Duration::from_secs((self.seconds / 10).max(self.sample_seconds))
    }

    /// When each restart happens, from the start: evenly spaced, never in the ramp-up.
    pub fn restart_times(&self) -> Vec<Duration> {
        let n = self.restarts as u64;
        (1..=n)
            .map(|i| Duration::from_secs(self.seconds * i / (n + 1)))
            .collect()
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid number")),
        Err(_) => default,
    }
}
