//! Online backup and restore over real processes: a backup taken while tickets keep
//! arriving holds every ticket acknowledged before it was asked for; the restored
//! directory serves them, its waiting runs resume (an approval decided, a timer that
//! fires), and a damaged backup or a non-empty target is refused before anything is
//! written.

use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_tests::{binary, write_config, Api, Server, ADMIN, AGENT};

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(binary()).args(args).output().unwrap()
}

#[tokio::test]
async fn a_backup_under_load_restores_every_acknowledged_write_and_its_waiting_runs_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "").unwrap();
    let server = Server::start(&dir.path().join("data"), &config, &[]).unwrap();
    let api = Api::new(&server.url, ADMIN);
    api.post(
        "/workflows",
        &json!({"id": "laptop", "name": "Laptop approval", "triggers": [{"on": "ticket.created"}],
            "conditions": {"field": "ticket.title", "op": "contains", "value": "laptop"},
            "steps": [{"id": "ask", "type": "approval", "stages": [{"name": "manager", "approvers": [{"user": "admin"}]}]},
                      {"id": "done", "type": "comment", "body": "approved", "internal": true}]}),
    )
    .await
    .unwrap();
    api.post(
        "/workflows",
        &json!({"id": "later", "name": "Remind in a minute", "triggers": [{"on": "ticket.created"}],
            "conditions": {"field": "ticket.title", "op": "contains", "value": "remind"},
            "steps": [{"id": "hold", "type": "wait", "minutes": 1}, {"id": "note", "type": "comment", "body": "reminded", "internal": true}]}),
    )
    .await
    .unwrap();
    let laptop = api.post("/tickets", &json!({"title": "New laptop", "requester": "bob"})).await.unwrap();
    let laptop = laptop["ticket"]["id"].as_str().unwrap().to_string();
    let remind = api.post("/tickets", &json!({"title": "remind me", "requester": "bob"})).await.unwrap();
    let remind = remind["ticket"]["id"].as_str().unwrap().to_string();
    api.wait_idle(Duration::from_secs(10)).await.unwrap();

    // Tickets keep arriving while the backup is taken.
    let (acked, stop) = (Arc::new(Mutex::new(Vec::<String>::new())), Arc::new(AtomicBool::new(false)));
    let writer = {
        let (api, acked, stop) = (api.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let out =
                    api.post("/tickets", &json!({"title": format!("load {i}"), "requester": "load"})).await.unwrap();
                acked.lock().unwrap().push(out["ticket"]["id"].as_str().unwrap().to_string());
                i += 1;
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 50 {
        assert!(Instant::now() < deadline, "the writer is stuck");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before: Vec<String> = acked.lock().unwrap().clone();
    let file = dir.path().join("desk.backup");
    let (url, out) = (server.url.clone(), file.to_str().unwrap().to_string());
    let taken =
        tokio::task::spawn_blocking(move || cli(&["backup", "--server", &url, "--token", ADMIN, "--out", &out]))
            .await
            .unwrap();
    assert!(taken.status.success(), "{}", String::from_utf8_lossy(&taken.stderr));
    assert!(String::from_utf8_lossy(&taken.stderr).contains("records"));
    // Writes went on during and after it.
    let during = acked.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < during + 20 {
        assert!(Instant::now() < deadline, "writes stopped after the backup");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    // Only admins take backups.
    let (status, body) = Api::new(&server.url, AGENT).call("POST", "/admin/backup", None).await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    drop(server);

    // Refused before anything is written: a damaged file (a flipped byte anywhere — in a
    // record, a length, the header of a frame — or a cut-off end), a directory in use.
    let original = std::fs::read(&file).unwrap();
    let n = original.len();
    let damaged = dir.path().join("damaged.backup");
    let mut cases: Vec<(String, Vec<u8>)> = [25, n / 4, n / 2, n * 3 / 4, n - 1]
        .into_iter()
        .map(|at| {
            let mut bytes = original.clone();
            bytes[at] ^= 0x55;
            (format!("byte {at} of {n} flipped"), bytes)
        })
        .collect();
    cases.push(("cut short".into(), original[..n - 100].to_vec()));
    for (what, bytes) in cases {
        std::fs::write(&damaged, &bytes).unwrap();
        let refused =
            cli(&["restore", damaged.to_str().unwrap(), "--data-dir", dir.path().join("r1").to_str().unwrap()]);
        assert_eq!(refused.status.code(), Some(3), "{what}");
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(err.contains("checksum does not match"), "{what}: {err}");
    }
    assert!(!dir.path().join("r1").exists() || dir.path().join("r1").read_dir().unwrap().next().is_none());
    let busy = cli(&["restore", file.to_str().unwrap(), "--data-dir", dir.path().join("data").to_str().unwrap()]);
    assert_eq!(busy.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&busy.stderr).contains("not empty"));

    let restored_dir = dir.path().join("restored");
    let restored = cli(&["restore", file.to_str().unwrap(), "--data-dir", restored_dir.to_str().unwrap()]);
    assert!(restored.status.success(), "{}", String::from_utf8_lossy(&restored.stderr));
    let server = Server::start(&restored_dir, &config, &[]).unwrap();
    let api = Api::new(&server.url, ADMIN);
    for id in &before {
        api.get(&format!("/tickets/{id}"))
            .await
            .unwrap_or_else(|e| panic!("{id} was acknowledged before the backup: {e}"));
    }
    // New tickets get fresh numbers; history keeps its order.
    let fresh = api.post("/tickets", &json!({"title": "after restore", "requester": "bob"})).await.unwrap();
    let fresh_n: u64 = fresh["ticket"]["id"].as_str().unwrap()[2..].parse().unwrap();
    assert!(before.iter().all(|id| id[2..].parse::<u64>().unwrap() < fresh_n));

    // The approval waits in the restored store: deciding it finishes the run.
    let pending = api.get("/approvals?pending_for=me").await.unwrap();
    let approval = pending["approvals"][0]["id"].as_str().unwrap().to_string();
    api.post(&format!("/approvals/{approval}/decisions"), &json!({"decision": "approve"})).await.unwrap();
    api.wait_idle(Duration::from_secs(10)).await.unwrap();
    let runs = api.get(&format!("/runs?ticket={laptop}")).await.unwrap();
    assert_eq!(runs["runs"][0]["status"], "completed", "{runs}");
    // The wait's timer fires in the restored server, a minute after it was set.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let runs = api.get(&format!("/runs?ticket={remind}")).await.unwrap();
        if runs["runs"][0]["status"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "the timer did not fire: {runs}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
