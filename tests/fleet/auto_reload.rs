//! auto_reload with files laid out as Kubernetes mounts a ConfigMap: `pooler.toml` is a
//! symlink to `..data/pooler.toml`, `..data` a symlink to a timestamped directory, and an
//! update swaps `..data` in one rename. The change is picked up without a signal; a broken
//! file is refused and the running configuration stays. An auth_file changed on its own (a
//! Secret update) is picked up too.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use crate::common::*;
use crate::instances::*;

const DEADLINE: Duration = Duration::from_secs(30);

/// Writes `pooler.toml` into a new `dir/name` and points `..data` at it in one rename.
fn publish(dir: &Path, name: &str, text: &str) {
    let version = dir.join(name);
    std::fs::create_dir(&version).unwrap();
    std::fs::write(version.join("pooler.toml"), text).unwrap();
    let staged = dir.join("..data_tmp");
    symlink(name, &staged).unwrap();
    std::fs::rename(&staged, dir.join("..data")).unwrap();
}

#[tokio::test]
async fn a_configmap_style_symlink_swap_is_picked_up() {
    let slot = Slot::new(0);
    let config = slot.config("auto_reload = true");
    let p = Pooler::start(config.clone());
    let dir = p.dir().to_path_buf();
    let first = std::fs::read_to_string(p.config_path()).unwrap();

    // The same contents behind the ConfigMap layout: no change, no reload.
    publish(&dir, "..2026_12_06_v1", &first);
    std::fs::remove_file(p.config_path()).unwrap();
    symlink("..data/pooler.toml", p.config_path()).unwrap();

    // Version 2 adds a database alias.
    let second = config
        .clone()
        .database("fleet_alias", &format!("dbname = \"{TEST_DB}\""))
        .render_toml(slot.port, &dir);
    publish(&dir, "..2026_12_06_v2", &second);
    reloaded_and_serving(&p, "fleet_alias", "the alias to be served").await;

    // Version 3 is broken: refused, logged, and the alias is still served.
    publish(
        &dir,
        "..2026_12_06_v3",
        &second.replace("pool_mode", "pool_mood"),
    );
    wait_for_log(
        &p,
        "were not loaded; the running configuration stays",
        "the refusal",
    )
    .await;
    assert!(p.log().contains("pool_mood"), "{}", p.log());
    let (c, _t) = p.connect(MD5_USER, MD5_PASS, "fleet_alias").await.unwrap();
    c.simple_query("select 1").await.unwrap();
}

#[tokio::test]
async fn a_secret_update_of_the_auth_file_is_picked_up() {
    let slot = Slot::new(0);
    let config = slot.config("auto_reload = true");
    let p = Pooler::start(config.clone().userlist_entry(MD5_USER, "not-the-password"));
    let Err(err) = p.connect(MD5_USER, MD5_PASS, TEST_DB).await else {
        panic!("logged in with a wrong secret in the auth_file");
    };
    assert_eq!(sqlstate(&err), Some("28P01"), "{err:?}");

    // Only userlist.txt changes, as a Kubernetes Secret update would change it.
    let userlist = p.dir().join("userlist.txt");
    let staged = p.dir().join("userlist.txt.new");
    std::fs::write(&staged, config.render_userlist()).unwrap();
    std::fs::rename(&staged, &userlist).unwrap();
    reloaded_and_serving(&p, TEST_DB, "the new secret to be used").await;
}

/// Waits until `db` is served (a login and a query work), then checks auto_reload said why.
async fn reloaded_and_serving(p: &Pooler, db: &str, what: &str) {
    wait_until(what, DEADLINE, || async {
        match p.connect(MD5_USER, MD5_PASS, db).await {
            Ok((c, _t)) => c.simple_query("select 1").await.is_ok(),
            Err(_) => false,
        }
    })
    .await;
    assert!(
        p.log().contains("auto_reload: files changed on disk"),
        "{}",
        p.log()
    );
}
