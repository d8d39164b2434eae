//! A data directory on a disk that fills up, or is read-only: a size-limited tmpfs
//! (mounting one needs root, as in CI; elsewhere the test says so and stops).
//!
//! Full while serving: the write that hits it gets 507 `storage_full` and is not kept
//! (all of it or nothing), later writes are refused at once, `/health` says why, reads
//! go on. Full or read-only at start: exit code 3 with the reason. With space freed:
//! every acknowledged ticket is there and writes resume.

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use switchboard_tests::{binary, write_config, Api, Server, ADMIN};

/// A tmpfs mount, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size_mb: u32) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m"), "tmpfs"])
            .arg(at)
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs here ({}); run as root",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Self(at.to_path_buf()))
    }

    fn remount(&self, options: &str) {
        let ok = Command::new("mount").args(["-o", &format!("remount,{options}")]).arg(&self.0).status().unwrap();
        assert!(ok.success(), "remount {options}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Starts `serve` expecting it to fail; its exit code and stderr.
fn failed_start(data: &Path, config: &Path) -> (Option<i32>, String) {
    let out = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_or_read_only_disk_refuses_writes_clearly_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(&dir.path().join("disk"), 12) else { return };
    let data = disk.0.join("data");
    // A 2 MiB reserve on a 12 MiB disk: writes stop cleanly before sled itself runs out.
    let config = write_config(dir.path(), "cache_mb = 8\nmin_free_mb = 2").unwrap();

    let mut server = Server::start(&data, &config, &[]).unwrap();
    let api = Api::new(&server.url, ADMIN);
    let filler = "x".repeat(3000);
    let mut acked = Vec::new();
    let (status, refused) = loop {
        let body = json!({"title": format!("ticket {}", acked.len()), "description": filler, "requester": "disk"});
        let (status, out) = api.call("POST", "/tickets", Some(&body)).await.unwrap();
        if status != 201 {
            break (status, out);
        }
        acked.push(out["ticket"]["id"].as_str().unwrap().to_string());
        assert!(acked.len() < 20_000, "12 MiB never filled up");
    };
    assert_eq!((status, refused["error"]["code"].as_str()), (507, Some("storage_full")), "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("is full") && message.contains("free space and restart"), "{message}");
    assert!(acked.len() > 100, "{} tickets fitted", acked.len());

    // Sticky and explicit: later writes are refused, health says why, reads still work.
    let (status, _) =
        api.call("POST", "/tickets", Some(&json!({"title": "small", "requester": "disk"}))).await.unwrap();
    assert_eq!(status, 507);
    let (status, health) = api.call("GET", "/health", None).await.unwrap();
    assert_eq!((status, health["status"].as_str()), (503, Some("failing")), "{health}");
    assert!(health["reason"].as_str().unwrap().contains("is full"));
    let (status, ready) = api.call("GET", "/health/ready", None).await.unwrap();
    assert_eq!((status, ready["status"].as_str()), (503, Some("not_ready")), "out of the load balancer: {ready}");
    assert_eq!(api.call("GET", "/health/live", None).await.unwrap().0, 200, "alive: no restart would help");
    api.get(&format!("/tickets/{}", acked[0])).await.unwrap();
    server.kill9();

    // Still full: the server will not start, and says why.
    let (code, stderr) = failed_start(&data, &config);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");

    // Read-only: the same.
    disk.remount("ro");
    let (code, stderr) = failed_start(&data, &config);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");

    // Space freed: every acknowledged ticket is there, the refused one is not, writes resume.
    disk.remount("rw,size=64m");
    let server = Server::start(&data, &config, &[]).unwrap();
    let api = Api::new(&server.url, ADMIN);
    for id in &acked {
        api.get(&format!("/tickets/{id}")).await.unwrap_or_else(|e| panic!("acknowledged {id} lost: {e}"));
    }
    let next = format!("T-{}", acked.len() + 1);
    let (status, _) = api.call("GET", &format!("/tickets/{next}"), None).await.unwrap();
    assert_eq!(status, 404, "the refused write left nothing behind");
    let created = api.post("/tickets", &json!({"title": "after", "requester": "disk"})).await.unwrap();
    assert_eq!(created["ticket"]["id"], next.as_str());
}
