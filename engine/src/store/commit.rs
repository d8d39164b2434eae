//! Group commit: many writers, one flush.
//!
//! Writers apply their batch to sled (in memory) and then wait here. A single flusher
//! thread takes every waiter queued so far, calls `Db::flush` once, and wakes them all.
//! A writer that arrives during a flush waits for the next one, so every
//! acknowledgement follows a flush that started after its write.
//!
//! Only this thread ever flushes: sled 0.34.7's `flush_async` deadlocks when called
//! concurrently, so it is never used.
//!
//! What "durable" means depends on [`Durability`]; see the README's durability section.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// How hard a commit tries before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    /// Concurrent commits share one `Db::flush` (sync_file_range): survives the process
    /// being killed (`kill -9`, OOM, panic), not a power loss or kernel crash.
    #[default]
    Group,
    /// Group commit plus `fdatasync` of sled's data file after each flush: also
    /// survives power loss, at the cost of one device sync per group.
    GroupSync,
    /// One flush per commit, one at a time: the baseline group commit is measured against.
    PerRequest,
    /// No flush before acknowledging. Only for measuring the ceiling in benchmarks.
    None,
}

type Waiter = oneshot::Sender<Result<(), String>>;

/// Counters for benchmarks and `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Flushes performed.
    pub flushes: AtomicU64,
    /// Commits acknowledged.
    pub commits: AtomicU64,
}

/// The highest ticket, run and event numbers applied to sled, and the file that records
/// those known durable (`<data dir>/committed`, rewritten in place after a flush that
/// made new numbers durable).
///
/// sled recovers a damaged data file by keeping the longest intact prefix of its log and
/// says nothing; a store that silently lost committed tickets must not start. On open,
/// fewer tickets, runs or events than the file names means exactly that.
pub struct Watermark {
    path: std::path::PathBuf,
    applied: [AtomicU64; 3],
    /// The file, kept open, and what it last recorded: a flush that made no new number
    /// durable writes nothing, and one that did overwrites 63 bytes in place (it was a
    /// write and a rename after every flush: 7 % of the flusher thread's time).
    file: Mutex<Option<(File, [u64; 3])>>,
}

impl Watermark {
    /// For the data directory `dir`.
    pub fn new(dir: &std::path::Path) -> Self {
        Self { path: dir.join("committed"), applied: Default::default(), file: Mutex::new(None) }
    }

    /// The numbers recorded as durable by an earlier process, if any.
    pub fn read(dir: &std::path::Path) -> Option<[u64; 3]> {
        let text = std::fs::read_to_string(dir.join("committed")).ok()?;
        let n: Vec<u64> = text.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        (n.len() == 3).then(|| [n[0], n[1], n[2]])
    }

    /// Records that ticket / run / event numbers up to these are applied (not yet durable).
    pub fn applied(&self, max: [u64; 3]) {
        for (slot, n) in self.applied.iter().zip(max) {
            slot.fetch_max(n, Ordering::SeqCst);
        }
    }

    fn snapshot(&self) -> [u64; 3] {
        [0, 1, 2].map(|i| self.applied[i].load(Ordering::SeqCst))
    }

    /// Records `snap` (taken before a flush that succeeded). Each number is written
    /// padded with spaces to 20 characters, so the record always has the same 63 bytes and a write
    /// at offset 0 replaces it whole ([`Watermark::read`] reads both forms).
    fn write(&self, snap: [u64; 3]) {
        use std::os::unix::fs::FileExt;
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if file.as_ref().is_some_and(|(_, last)| *last == snap) {
            return;
        }
        let text = format!("{:<20} {:<20} {:<20}\n", snap[0], snap[1], snap[2]);
        let written = match file.take() {
            Some((f, _)) => f.write_all_at(text.as_bytes(), 0).map(|_| f),
            // The first write replaces whatever an older version left (another width).
            None => {
                let tmp = self.path.with_extension("tmp");
                std::fs::write(&tmp, &text)
                    .and_then(|_| std::fs::rename(&tmp, &self.path))
                    .and_then(|_| std::fs::OpenOptions::new().write(true).open(&self.path))
            }
        };
        match written {
            Ok(f) => *file = Some((f, snap)),
            Err(e) => tracing::warn!(error = %e, "could not record the commit watermark"),
        }
    }
}

/// The flusher and the queue in front of it.
pub struct Flusher {
    mode: Durability,
    db: sled::Db,
    queue: Mutex<Option<mpsc::Sender<Waiter>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    serial: Arc<Mutex<()>>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// What is applied and what is known durable.
    pub watermark: Arc<Watermark>,
}

fn flush(db: &sled::Db, data_file: Option<&File>) -> Result<(), String> {
    db.flush().map_err(|e| e.to_string())?;
    if let Some(f) = data_file {
        f.sync_data().map_err(|e| e.to_string())?;
    }
    Ok(())
}

impl Flusher {
    /// Starts the flusher thread. `data_file` is sled's data file, synced in
    /// [`Durability::GroupSync`] mode.
    pub fn start(db: sled::Db, data_file: Option<File>, mode: Durability, watermark: Watermark) -> Self {
        let stats = Arc::new(Stats::default());
        let watermark = Arc::new(watermark);
        let (tx, rx) = mpsc::channel::<Waiter>();
        let thread = matches!(mode, Durability::Group | Durability::GroupSync).then(|| {
            let db = db.clone();
            let stats = stats.clone();
            let watermark = watermark.clone();
            let data_file = if mode == Durability::GroupSync { data_file } else { None };
            std::thread::Builder::new()
                .name("sled-group-commit".into())
                .spawn(move || {
                    while let Ok(first) = rx.recv() {
                        let mut batch = vec![first];
                        batch.extend(rx.try_iter());
                        let snap = watermark.snapshot();
                        let result = flush(&db, data_file.as_ref());
                        if result.is_ok() {
                            watermark.write(snap);
                        }
                        stats.flushes.fetch_add(1, Ordering::Relaxed);
                        stats.commits.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        for waiter in batch {
                            let _ = waiter.send(result.clone());
                        }
                    }
                })
                .expect("spawn group-commit thread")
        });
        Self {
            mode,
            db,
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(thread),
            serial: Arc::new(Mutex::new(())),
            stats,
            watermark,
        }
    }

    /// The configured durability.
    pub fn mode(&self) -> Durability {
        self.mode
    }

    /// Resolves once everything written before the call is durable.
    pub async fn durable(&self) -> super::Result<()> {
        match self.mode {
            Durability::None => Ok(()),
            Durability::PerRequest => {
                let (db, serial, stats) = (self.db.clone(), self.serial.clone(), self.stats.clone());
                let watermark = self.watermark.clone();
                tokio::task::spawn_blocking(move || {
                    let _one_at_a_time = serial.lock().unwrap_or_else(|p| p.into_inner());
                    stats.flushes.fetch_add(1, Ordering::Relaxed);
                    stats.commits.fetch_add(1, Ordering::Relaxed);
                    let snap = watermark.snapshot();
                    let result = flush(&db, None);
                    if result.is_ok() {
                        watermark.write(snap);
                    }
                    result
                })
                .await
                .map_err(|e| super::Error::Backend(e.to_string()))?
                .map_err(super::Error::Backend)
            }
            Durability::Group | Durability::GroupSync => {
                let (tx, rx) = oneshot::channel();
                {
                    let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                    let sender = queue.as_ref().ok_or(super::Error::Closed)?;
                    sender.send(tx).map_err(|_| super::Error::Closed)?;
                }
                rx.await.map_err(|_| super::Error::Closed)?.map_err(super::Error::Backend)
            }
        }
    }

    /// Stops the thread after it has served everyone queued, then flushes once more.
    pub fn stop(&self) -> super::Result<()> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
        let snap = self.watermark.snapshot();
        self.db.flush().map_err(|e| super::Error::Backend(e.to_string()))?;
        if self.mode != Durability::None {
            self.watermark.write(snap);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_is_rewritten_in_place_and_reads_both_forms() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("committed"), "5 6 7\n").unwrap();
        assert_eq!(Watermark::read(dir.path()), Some([5, 6, 7]), "the form older versions wrote");
        let w = Watermark::new(dir.path());
        w.applied([9, 10, 11]);
        w.write(w.snapshot());
        assert_eq!(Watermark::read(dir.path()), Some([9, 10, 11]));
        w.applied([12_345_678_901, 10, 12]);
        w.write(w.snapshot());
        assert_eq!(Watermark::read(dir.path()), Some([12_345_678_901, 10, 12]));
        let text = std::fs::read_to_string(dir.path().join("committed")).unwrap();
        assert_eq!(text.len(), 63, "one fixed-width record: {text:?}");
    }
}
