//! Upgrade: a data directory written by the binary before the run journal (each run one
//! document under `r/`) opens with today's binary, is migrated once, and loses nothing.
//! The fixture, and what the old binary's API answered, are made by
//! `tests/fixtures/make-v1-store.sh`.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use switchboard::store::{Durability, RunStore, Store, TicketStore};
use switchboard_tests::{copy_dir, repo, write_config, Api, Server, ADMIN};

/// Every key and value of a sled directory.
async fn raw(dir: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    // After a store was closed, sled's lock goes with its last I/O thread, which on a
    // loaded machine can be a moment later (see `reopen_store`): retry, bounded.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let db = loop {
        match sled::open(dir) {
            Err(e) if std::time::Instant::now() < deadline && e.to_string().contains("lock") => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            other => break other.unwrap(),
        }
    };
    let all = db.iter().map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap()).collect();
    drop(db);
    all
}

/// The records the migrations rewrite: runs (into header, start and journal) and
/// tickets (their comments into records of their own).
/// The JSON documents stored under `prefix`, by their `id`.
fn documents(all: &BTreeMap<Vec<u8>, Vec<u8>>, prefix: &[u8]) -> Vec<(String, Value)> {
    let docs = all.iter().filter(|(k, _)| k.starts_with(prefix));
    docs.map(|(_, v)| serde_json::from_slice::<Value>(v).unwrap())
        .map(|d| (d["id"].as_str().unwrap().to_string(), d))
        .collect()
}

fn is_rewritten(key: &[u8]) -> bool {
    [&b"r/"[..], b"rs/", b"rj/", b"t/", b"tc/"].iter().any(|p| key.starts_with(p))
}

#[tokio::test]
async fn a_store_written_before_the_journal_is_migrated_with_nothing_lost() {
    let fixture = repo().join("tests/fixtures/v1-store");
    let expected: serde_json::Map<String, Value> =
        serde_json::from_slice(&std::fs::read(fixture.join("expected.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(&fixture.join("data"), &data).unwrap();

    // In-process first, with no timer running: every record the migrations do not
    // rewrite is kept byte for byte (history, events, approvals, timers, SLA clocks,
    // webhooks and their deliveries, audit...); every run folds back to its old
    // document, and every ticket reads back with its comments as it was stored whole.
    let before = raw(&data).await;
    let old_runs = documents(&before, b"r/");
    assert!(old_runs.len() >= 8, "the fixture has runs of several kinds ({})", old_runs.len());
    let old_tickets = documents(&before, b"t/");
    assert!(old_tickets.iter().any(|(_, t)| t["comments"].as_array().unwrap().len() >= 2), "tickets with comments");
    {
        let store = switchboard_tests::reopen_store(&data, Durability::Group).await;
        for (id, old) in &old_runs {
            let now = serde_json::to_value(store.run(id).await.unwrap().unwrap()).unwrap();
            assert_eq!(&now, old, "{id} reads back as it was stored whole");
        }
        for (id, old) in &old_tickets {
            let mut now = serde_json::to_value(store.ticket(id).await.unwrap().unwrap()).unwrap();
            // Versions came later: a ticket stored before them reads as version 1.
            assert_eq!(now.as_object_mut().unwrap().remove("version"), Some(serde_json::json!(1)), "{id}");
            assert_eq!(&now, old, "{id} reads back with its comments");
        }
        store.close().unwrap();
    }
    let after = raw(&data).await;
    for (k, v) in before.iter().filter(|(k, _)| !is_rewritten(k)) {
        assert_eq!(after.get(k), Some(v), "{} is kept as it was", String::from_utf8_lossy(k));
    }
    let added: Vec<String> = after
        .keys()
        .filter(|k| !before.contains_key(*k) && !is_rewritten(k))
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    // Besides the layout version, only the ticket indexes (layouts 5, 6): one `tf/` record
    // per ticket and its `tx/` entries.
    let (indexes, rest): (Vec<String>, Vec<String>) =
        added.into_iter().partition(|k| k.starts_with("tf/") || k.starts_with("tx/"));
    assert_eq!(rest, ["meta/format"], "only the layout version and the indexes are new outside the rewritten tables");
    assert_eq!(indexes.iter().filter(|k| k.starts_with("tf/")).count(), old_tickets.len(), "every ticket indexed");
    assert!(indexes.iter().any(|k| k.starts_with("tx/g\0\u{7}network")), "{indexes:?}");

    // The server answers what the old binary answered, before and after a restart.
    // (Tickets are left out here: their SLA and schedule timers fire in real time.)
    let dave = "[[tokens]]\nname = \"dave\"\ntoken = \"dave-approver-token-0123456789\"\nrole = \"agent\"\n";
    let config = write_config(dir.path(), dave).unwrap();
    let stable = |k: &&String| k.starts_with("/runs/") || k.starts_with("/approvals") || k.as_str() == "/webhooks";
    for _ in 0..2 {
        let mut server = Server::start(&data, &config, &[]).unwrap();
        let api = Api::new(&server.url, ADMIN);
        for (path, want) in expected.iter().filter(|(k, _)| stable(k)) {
            assert_eq!(&api.get(path).await.unwrap(), want, "{path} answers as the old binary did");
        }
        server.terminate();
    }

    // The migrated run parked at an approval goes on when the approval is decided.
    let server = Server::start(&data, &config, &[]).unwrap();
    let api = Api::new(&server.url, ADMIN);
    let approvals = expected["/approvals"]["approvals"].as_array().unwrap();
    let pending = approvals.iter().find(|a| a["status"] == "pending").unwrap();
    assert_eq!(pending["stages"][0]["slots"][0]["approver"], "dave");
    let run_id = pending["run_id"].as_str().unwrap();
    let before = api.get(&format!("/runs/{run_id}")).await.unwrap();
    assert_eq!(before["status"], "waiting");
    let (status, body) = Api::new(&server.url, "dave-approver-token-0123456789")
        .call(
            "POST",
            &format!("/approvals/{}/decisions", pending["id"].as_str().unwrap()),
            Some(&json!({"decision": "reject", "comment": "not this one"})),
        )
        .await
        .unwrap();
    assert!(status < 300, "{status} {body}");
    api.wait_idle(Duration::from_secs(20)).await.unwrap();
    let after = api.get(&format!("/runs/{run_id}")).await.unwrap();
    assert_ne!(after["status"], "waiting", "{after}");
    let old = before["trace"].as_array().unwrap();
    let new = after["trace"].as_array().unwrap();
    assert!(new.len() > old.len(), "{after}");
    assert_eq!(&new[..old.len()], &old[..], "the old journal is kept and new entries follow it");
}
