//! Tests of the sled backend beyond the store contract: ids, the envelope, journal
//! chunks, group commit and durability order, reopening.

use super::*;
use crate::ticket::{NewTicket, PriorityMatrix};

/// A commit's journal entries share one key; a run whose journal began as one key per
/// entry (before stop 25) reads back whole when later commits append chunks.
#[tokio::test]
async fn journal_chunks_and_single_entries_fold_together() {
    use crate::run::{journal::Entry, TraceEntry};
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap();
    let mut run: crate::run::Run = serde_json::from_value(serde_json::json!({
        "id": "R-1", "workflow_id": "w", "workflow_revision": 1, "ticket_id": "T-1", "event_id": "E-1",
        "event_type": "ticket.created", "actor": "ann", "status": "running", "cursor": "a", "vars": {},
        "trace": [], "steps_done": 0, "created_at": "2026-11-02T08:00:00Z", "updated_at": "2026-11-02T08:00:00Z"
    }))
    .unwrap();
    let at = run.created_at;
    let mut tx = Tx::new();
    tx.run(&mut run);
    store.commit(tx).await.unwrap();
    // Written the old way: entry 0 under its own key, not in an array.
    let old = Entry::Trace(TraceEntry::step(at, "a", "set", "ok", "old layout"));
    store.db.insert(Key::Journal(1, 0).bytes(), encode(&old).unwrap()).unwrap();
    let key = Key::Run(1).bytes();
    let mut header: crate::run::journal::Header = decode(&key, &store.db.get(&key).unwrap().unwrap()).unwrap();
    header.journal_len = 1;
    store.db.insert(&key, encode(&header).unwrap()).unwrap();
    let mut run = store.run("R-1").await.unwrap().unwrap();
    assert_eq!(run.trace.len(), 1, "the old single entry reads");
    for step in ["b", "c"] {
        run.trace.push(TraceEntry::step(at, step, "set", "ok", ""));
    }
    let mut tx = Tx::new();
    tx.run(&mut run);
    let Write::Run(delta) = &tx.writes[0] else { unreachable!() };
    assert_eq!(delta.entries.len(), 2);
    store.commit(tx).await.unwrap();
    assert!(store.db.get(Key::Journal(1, 1).bytes()).unwrap().is_some(), "one key at the first new entry");
    assert!(store.db.get(Key::Journal(1, 2).bytes()).unwrap().is_none());
    let back = store.run("R-1").await.unwrap().unwrap();
    let steps: Vec<&str> = back.trace.iter().filter_map(|t| t.step.as_deref()).collect();
    assert_eq!(steps, ["a", "b", "c"]);
}

/// New records carry the envelope; records from before it (bare JSON) still read.
#[tokio::test]
async fn records_carry_a_version_envelope_and_bare_json_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap();
    let group: crate::team::Group = serde_json::from_value(serde_json::json!({"id": "net", "name": "Net"})).unwrap();
    store.commit(Tx { writes: vec![Write::Group(group)] }).await.unwrap();
    let raw = store.db.get(Key::Group("net").bytes()).unwrap().unwrap();
    assert_eq!(raw[0], JSON_V1);
    store.db.insert(Key::Group("old").bytes(), &br#"{"id":"old","name":"Old"}"#[..]).unwrap();
    let groups: Vec<String> = store.groups().await.unwrap().into_iter().map(|g| g.id).collect();
    assert_eq!(groups, ["net", "old"]);
}

#[test]
fn ids_parse_strictly() {
    assert_eq!(parse_id("T-42", 'T'), Some(42));
    for bad in ["T-", "T42", "R-1", "T-1x", "T--1", "T-99999999999999999999999"] {
        assert_eq!(parse_id(bad, 'T'), None, "{bad}");
    }
}

/// Regression: approval ids jumped (A-50, A-71, then A-2000020 after a restart).
#[tokio::test]
async fn document_numbers_are_dense_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap();
        for expected in 1..=12u64 {
            let n = store.next_number().await.unwrap();
            assert_eq!(n, expected);
            let mut tx = Tx::new();
            tx.doc(DocKind::Approval, &format!("A-{n}"), &serde_json::json!({"n": n}));
            store.commit(tx).await.unwrap();
        }
        store.close().unwrap();
    }
    let store = SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap();
    assert_eq!(store.next_number().await.unwrap(), 13, "after A-12 (not after A-9, the last by key order)");
}

#[tokio::test]
async fn commit_is_visible_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let id;
    {
        let store = SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap();
        id = store.next_ticket_id().await.unwrap();
        let mut t =
            NewTicket { title: "x".into(), requester: "r".into(), assignee: Some("bob".into()), ..Default::default() }
                .into_ticket(id.clone(), &PriorityMatrix::default(), chrono::Utc::now());
        let mut tx = Tx::new();
        tx.ticket(None, &mut t);
        store.commit(tx).await.unwrap();
        assert_eq!(store.open_load("bob").await.unwrap(), 1);
        store.close().unwrap();
    }
    let store = SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap();
    assert_eq!(store.ticket(&id).await.unwrap().unwrap().title, "x");
    assert_ne!(store.next_ticket_id().await.unwrap(), id, "ids are not reused after restart");
}

#[tokio::test]
async fn apply_is_visible_at_once_and_each_wait_resolves_durable() {
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String>;
    {
        let store = SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap();
        ids = vec![store.next_ticket_id().await.unwrap(), store.next_ticket_id().await.unwrap()];
        let mut waits = Vec::new();
        for id in &ids {
            let mut t = NewTicket { title: id.clone(), requester: "r".into(), ..Default::default() }.into_ticket(
                id.clone(),
                &PriorityMatrix::default(),
                chrono::Utc::now(),
            );
            let mut tx = Tx::new();
            tx.ticket(None, &mut t);
            waits.push(store.apply(tx).await.unwrap());
            // Readable before anyone waits for the flush.
            assert_eq!(store.ticket(id).await.unwrap().unwrap().title, *id);
        }
        // Awaited in reverse order: each resolves once its write is durable.
        for wait in waits.into_iter().rev() {
            wait.await.unwrap();
        }
        assert!(store.commit_stats().commits.load(std::sync::atomic::Ordering::Relaxed) >= 1);
        store.close().unwrap();
    }
    let store = SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap();
    for id in &ids {
        assert_eq!(store.ticket(id).await.unwrap().unwrap().title, *id);
    }
}

#[tokio::test]
async fn second_open_of_same_dir_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let _first = SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap();
    let err = SledStore::open(dir.path(), 8 << 20, Durability::Group).err().unwrap();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
}
