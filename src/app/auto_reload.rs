//! auto_reload: pooler.toml and the auth_file are looked at once a second and reloaded, with
//! RELOAD's all-or-nothing validation, when their contents change. Contents, not modification
//! times: a Kubernetes ConfigMap or Secret update swaps a symlink (`..data`) and leaves the
//! link the file is read through untouched, so only reading through it shows the change.
//! A file that fails validation is logged once per change and the running configuration
//! stays.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::admin;
use crate::state::Shared;

/// How often the files are looked at.
pub(super) const PERIOD: Duration = Duration::from_secs(1);

/// Runs until the task is dropped; does nothing while auto_reload is off (a RELOAD may turn
/// it on or off).
pub(super) async fn watch(shared: Arc<Shared>) {
    let Some(config_path) = shared.config_path.clone() else {
        return;
    };
    let mut seen = fingerprint(&shared, &config_path);
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !shared.config().pooler.fleet.auto_reload {
            // Changes made while off are picked up by the next RELOAD, not replayed later.
            seen = fingerprint(&shared, &config_path);
            continue;
        }
        if fingerprint(&shared, &config_path) == seen {
            continue;
        }
        match admin::reload(&shared, &Default::default()) {
            Ok(_) => tracing::info!(
                path = %config_path.display(),
                "auto_reload: files changed on disk; configuration reloaded"
            ),
            Err(e) => tracing::error!(
                "auto_reload: files changed on disk but were not loaded; the running \
                 configuration stays: {e}"
            ),
        }
        // What the reload left behind (a new auth_file path, say) is the new baseline.
        seen = fingerprint(&shared, &config_path);
    }
}

/// A hash of what pooler.toml and the auth_file it names hold now (a missing or unreadable
/// file hashes as such, so its return is a change too).
fn fingerprint(shared: &Shared, config_path: &Path) -> u64 {
    let mut hasher = DefaultHasher::new();
    std::fs::read(config_path).ok().hash(&mut hasher);
    if let Some(auth_file) = &shared.config().pooler.auth_file {
        std::fs::read(auth_file).ok().hash(&mut hasher);
    }
    hasher.finish()
}
