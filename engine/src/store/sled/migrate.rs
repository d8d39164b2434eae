//! One-time migrations of a data directory written by an older version, run at open
//! before anything else reads it. `meta/format` holds the layout version: absent in
//! stores from before the journal (version 1), then 2 (runs as header + start +
//! journal), 3 (ticket comments stored apart, appended), 4 (plugin modules and compiled
//! code in the `modules` tree), 5 (ticket indexes), 6 (tickets also indexed by when
//! they were logged and when they were done). Each step rewrites in batches
//! and leaves alone what an earlier, interrupted run of it already rewrote, so a crash
//! midway is finished by the next open; the version is written last.

use super::{runs, Batch, Key};
use crate::run::Run;
use crate::store::{Error, Result};
use crate::ticket::Ticket;

/// The layout this code writes.
const FORMAT: u32 = 6;
/// Records rewritten per batch.
const CHUNK: usize = 512;

/// Brings the store in `db` to [`FORMAT`].
pub(super) fn migrate(db: &::sled::Db) -> Result<()> {
    let backend = |e: ::sled::Error| Error::Backend(e.to_string());
    let found = match db.get(Key::Format.bytes()).map_err(backend)? {
        None => 1,
        Some(v) => std::str::from_utf8(&v).ok().and_then(|v| v.parse().ok()).ok_or_else(|| Error::Corrupt {
            key: "meta/format".into(),
            detail: format!("not a layout version: {:?}", String::from_utf8_lossy(&v)),
        })?,
    };
    if found > FORMAT {
        return Err(Error::Damaged {
            path: String::new(),
            detail: format!(
                "it has layout version {found}, written by a newer switchboard; this one reads up to {FORMAT} \
                 (run the newer version, or restore the copy kept from before the upgrade)"
            ),
        });
    }
    if found < 2 {
        let n = rewrite(db, &Key::Runs.bytes(), |_, v, batch| {
            // A run already rewritten is a header, which does not decode as a whole run.
            let Ok(mut run) = serde_json::from_slice::<Run>(super::body(v)) else { return Ok(false) };
            runs::put(batch, crate::run::journal::delta(&mut run))?;
            Ok(true)
        })?;
        tracing::info!(runs = n, "migrated runs to header + journal");
    }
    if found < 3 {
        let n = rewrite(db, &Key::Tickets.bytes(), |k, v, batch| {
            let mut ticket: Ticket = super::decode(k, v)?;
            if ticket.comments.is_empty() {
                return Ok(false);
            }
            let n = super::be(k);
            for c in std::mem::take(&mut ticket.comments) {
                batch.insert(Key::Comment(n, c.id).bytes(), super::encode(&c)?);
            }
            batch.insert(Key::Ticket(n).bytes(), super::encode(&ticket)?);
            Ok(true)
        })?;
        tracing::info!(tickets = n, "migrated ticket comments to their own records");
    }
    if found < 4 {
        // Copied first, then removed: a crash between leaves both, and the next open
        // copies the same bytes again.
        let modules = db.open_tree(super::MODULES).map_err(backend)?;
        let mut moved = 0u64;
        for prefix in [Key::Modules.bytes(), Key::Artifacts.bytes()] {
            let keys: Vec<::sled::IVec> = db.scan_prefix(prefix).keys().collect::<Result<_, _>>().map_err(backend)?;
            for key in keys {
                if let Some(v) = db.get(&key).map_err(backend)? {
                    modules.insert(&key, v).map_err(backend)?;
                    db.remove(&key).map_err(backend)?;
                    moved += 1;
                }
            }
        }
        tracing::info!(modules = moved, "moved plugin modules to their own tree");
    }
    if found < 6 {
        // Indexed afresh (entries are put, never removed here), so a second run after a
        // crash midway puts the same keys again; a layout-5 store gains the two time
        // indexes (its other entries are put again, unchanged).
        let n = rewrite(db, &Key::Tickets.bytes(), |k, v, batch| {
            let ticket: Ticket = super::decode(k, v)?;
            super::index::update(batch, super::be(k), None, &super::index::values(&ticket))?;
            Ok(true)
        })?;
        tracing::info!(
            tickets = n,
            "indexed tickets by status, priority, group, assignee, category, requester and times"
        );
    }
    if found < FORMAT {
        db.insert(Key::Format.bytes(), FORMAT.to_string().as_bytes()).map_err(backend)?;
        db.flush().map_err(backend)?;
    }
    Ok(())
}

/// Offers every record under `prefix` to `change`, which adds its rewrite to the batch
/// and says whether it did; applies the batches. Returns how many were rewritten.
fn rewrite(
    db: &::sled::Db,
    prefix: &[u8],
    mut change: impl FnMut(&[u8], &[u8], &mut Batch) -> Result<bool>,
) -> Result<u64> {
    let backend = |e: ::sled::Error| Error::Backend(e.to_string());
    let (mut total, mut in_batch, mut batch) = (0u64, 0, Batch::default());
    for kv in db.scan_prefix(prefix) {
        let (k, v) = kv.map_err(backend)?;
        if change(&k, &v, &mut batch)? {
            total += 1;
            in_batch += 1;
        }
        if in_batch == CHUNK {
            db.apply_batch(std::mem::take(&mut batch).inner).map_err(backend)?;
            in_batch = 0;
        }
    }
    db.apply_batch(batch.inner).map_err(backend)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use crate::store::sled::SledStore;
    use crate::store::{Durability, Error, PluginStore, Store};

    /// Layout 3 kept modules among the hot keys; opening moves them to their tree.
    #[tokio::test]
    async fn plugin_modules_move_to_their_own_tree() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = ::sled::open(dir.path()).unwrap();
            db.insert(super::Key::Format.bytes(), &b"3"[..]).unwrap();
            db.insert(&b"pm/kb/1.0.0"[..], &b"wasm"[..]).unwrap();
            db.insert(&b"pc/kb/1.0.0"[..], &b"code"[..]).unwrap();
            db.flush().unwrap();
        }
        let store = SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap();
        assert_eq!(store.plugin_module("kb", "1.0.0").await.unwrap().as_deref(), Some(&b"wasm"[..]));
        assert_eq!(store.plugin_artifact("kb", "1.0.0").await.unwrap().as_deref(), Some(&b"code"[..]));
        store.close().unwrap();
        drop(store);
        let db = ::sled::open(dir.path()).unwrap();
        assert!(db.get(b"pm/kb/1.0.0").unwrap().is_none(), "no longer among the hot keys");
        assert_eq!(db.get(super::Key::Format.bytes()).unwrap().as_deref(), Some(&b"6"[..]));
    }

    /// Layout 4 had no ticket indexes and layout 5 no time indexes (its `tf/` records
    /// name six values); opening builds them.
    #[tokio::test]
    async fn tickets_are_indexed_on_upgrade() {
        use crate::store::{TicketFilter, TicketStore, TicketTime, Tx};
        use crate::ticket::{NewTicket, PriorityMatrix};
        for layout in ["4", "5"] {
            let dir = tempfile::tempdir().unwrap();
            let logged = |n: i64| chrono::DateTime::UNIX_EPOCH + chrono::Duration::days(20_000 + n);
            {
                let store = SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap();
                for (n, group) in [(1, "network"), (2, "desk"), (3, "network")] {
                    let new = NewTicket {
                        title: "t".into(),
                        requester: "ann".into(),
                        group: Some(group.into()),
                        ..Default::default()
                    };
                    let mut t = new.into_ticket(format!("T-{n}"), &PriorityMatrix::default(), logged(n));
                    let mut tx = Tx::new();
                    tx.ticket(None, &mut t);
                    store.commit(tx).await.unwrap();
                }
                store.close().unwrap();
            }
            {
                let db = ::sled::open(dir.path()).unwrap();
                for prefix in [&b"tx/"[..], &b"tf/"[..]] {
                    for k in db.scan_prefix(prefix).keys() {
                        db.remove(k.unwrap()).unwrap();
                    }
                }
                if layout == "5" {
                    // Indexed by six fields, as layout 5 did.
                    let six = br#"["new","P3","network",null,null,"ann"]"#;
                    db.insert(super::Key::TicketFields(1).bytes(), [&[super::super::JSON_V1][..], six].concat())
                        .unwrap();
                }
                db.insert(super::Key::Format.bytes(), layout.as_bytes()).unwrap();
                db.flush().unwrap();
            }
            let store = SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap();
            let found =
                store.tickets(&TicketFilter { group: Some("network".into()), ..Default::default() }).await.unwrap();
            assert_eq!(found.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["T-1", "T-3"], "from {layout}");
            let logged_since = store.tickets_by_time(TicketTime::Created, logged(2), logged(9)).await.unwrap();
            assert_eq!(logged_since, ["T-2", "T-3"], "from {layout}");
        }
    }

    #[test]
    fn a_store_from_a_newer_version_is_refused_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        SledStore::open(dir.path(), 8 << 20, Durability::Group).unwrap().close().unwrap();
        {
            let db = ::sled::open(dir.path()).unwrap();
            db.insert(super::Key::Format.bytes(), &b"99"[..]).unwrap();
            db.flush().unwrap();
        }
        let err = SledStore::open(dir.path(), 8 << 20, Durability::Group).err().unwrap();
        assert!(matches!(err, Error::Damaged { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains(&dir.path().display().to_string()) && text.contains("layout version 99"), "{text}");
    }
}
