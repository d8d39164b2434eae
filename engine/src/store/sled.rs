//! The embedded store: one sled database in the data directory.
//!
//! Everything lives in sled's default tree under short key prefixes (every key is a
//! [`keys::Key`]), so one
//! `apply_batch` makes a whole [`Tx`] atomic; except plugin modules and their compiled
//! code (megabytes each), which live in the `modules` tree: sled rewrites a whole leaf
//! node when it splits or consolidates it, and a compiled module sharing a leaf with the
//! run keys made every few run writes copy it again (a third of the CPU instructions per
//! run, by callgrind). Module bytes are written before the records naming them and
//! removed after. Numeric ids are stored big-endian so
//! prefix scans come back in id order.
//!
//! | prefix | key | value |
//! |---|---|---|
//! | `t/` | ticket n | ticket |
//! | `tc/` | ticket n, comment id (u32) | comment, appended (the ticket record has none) |
//! | `h/` | ticket n, seq | history entry |
//! | `w/` | workflow id | record |
//! | `wv/` | workflow id, `/`, revision | definition |
//! | `r/` | run n | run header (`run::journal::Header`) |
//! | `rs/` | run n | what started the run (`run::journal::Start`), written once |
//! | `rj/` | run n, first seq (u32) | the journal entries (`run::journal::Entry`) one commit appended, as a JSON array (one entry, not in an array, when written before stop 25) |
//! | `ra/` | run n | (active-run index) |
//! | `rt/` | ticket n, run n | (runs by ticket) |
//! | `rw/` | ticket n, run n | (runs waiting on a ticket) |
//! | `e/` | event n | event |
//! | `et/` | ticket n, event n | (events by ticket) |
//! | `ag/`, `gr/` | id | agent, group |
//! | `ao/` | agent, 0, ticket n | (open assignments) |
//! | `rr/` | group | last round-robin agent |
//! | `au/` | seq | audit entry |
//! | `sla/` | ticket n | the ticket's SLA clocks |
//! | `cal/`, `slp/` | id | business calendar, SLA policy |
//! | `tm/` | due (ms), key | timer, so a range scan finds what is due |
//! | `tk/` | timer key | its `tm/` key, to replace or cancel it |
//! | `p/` | plugin id | plugin record |
//! | `pm/` | plugin id, `/`, version | module bytes (`modules` tree) |
//! | `pk/` | plugin id, 0, key | plugin key-value entry |
//! | `pc/` | plugin id, `/`, version | SHA-256 + compiled module (wasmtime serialize; `modules` tree) |
//! | `meta/format` | | the layout version (2: runs as header + journal; 3: comments apart) |

mod backup;
mod index;
mod keys;
mod migrate;
mod runs;
mod tables;

pub use backup::{restore, Restored};
use keys::Key;

use super::commit::{Durability, Flusher};
use super::*;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Sled-backed [`Store`].
pub struct SledStore {
    db: ::sled::Db,
    /// Plugin modules and compiled code, apart from the hot keys.
    modules: ::sled::Tree,
    counters: [std::sync::atomic::AtomicU64; 3],
    /// The last document number handed out (approval ids `A-<n>`), dense like ticket
    /// numbers: the highest stored one at open, then one more each time.
    numbers: std::sync::atomic::AtomicU64,
    flusher: Flusher,
    path: PathBuf,
    /// Set by the first write that failed with an I/O error: sled does not recover from
    /// those in-process, so later writes are refused at once with the same reason.
    /// (disk full, I/O error text).
    failed: std::sync::OnceLock<(bool, String)>,
    /// Writes are refused (as a full disk) once the data directory's file system has
    /// less free space than this, so sled itself never runs out of space mid-write:
    /// a write refused that way is not applied at all, and reads keep working.
    min_free: u64,
    /// Until when (ms since the epoch) free space is known to be plentiful (at least
    /// four times the reserve when last looked at), so writes skip the `statvfs`.
    plenty_until_ms: std::sync::atomic::AtomicU64,
    /// The bytes of each batch applied since [`SledStore::record_batch_sizes`] turned
    /// recording on (tests and benchmarks: what one step writes).
    batch_sizes: std::sync::Mutex<Option<Vec<u64>>>,
    /// Held while a batch's expectations (ticket versions, journal entries not yet
    /// taken) are checked and the batch applied, so the check and the write are one step.
    applying: std::sync::Mutex<()>,
}

/// The tree of plugin modules and compiled code.
const MODULES: &str = "modules";

fn be(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = bytes.len().min(8);
    buf[8 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
    u64::from_be_bytes(buf)
}

/// sled's error as ours; I/O errors keep their kind so [`SledStore::classify`] can
/// tell a full disk from other failures without reading message text.
fn backend(e: ::sled::Error) -> Error {
    match &e {
        ::sled::Error::Io(io) => Error::Unclassified {
            full: io.raw_os_error() == Some(28) || io.kind() == std::io::ErrorKind::StorageFull,
            detail: e.to_string(),
        },
        _ => Error::Backend(e.to_string()),
    }
}

impl SledStore {
    /// Entries and the bytes of their keys and values: the payload that the files on
    /// disk hold (for the disk-overhead benchmark; a full scan).
    pub fn payload(&self) -> Result<(u64, u64)> {
        let (mut n, mut bytes) = (0u64, 0u64);
        for kv in self.db.iter().chain(self.modules.iter()) {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            n += 1;
            bytes += (k.len() + v.len()) as u64;
        }
        Ok((n, bytes))
    }

    /// Opens (or creates) the store in `dir`.
    ///
    /// `cache_bytes` sizes sled's page cache (sled's own default is 1 GiB).
    pub fn open(dir: &Path, cache_bytes: u64, durability: Durability) -> Result<Self> {
        let path = dir.display().to_string();
        if dir.exists() && !dir.is_dir() {
            let source = std::io::Error::new(std::io::ErrorKind::AlreadyExists, "exists and is not a directory");
            return Err(Error::Io { path, source });
        }
        std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: path.clone(), source })?;
        let open = || {
            ::sled::Config::new()
                .path(dir)
                .cache_capacity(cache_bytes)
                .mode(::sled::Mode::HighThroughput)
                .flush_every_ms(None)
                .open()
                .map_err(|e| match e {
                    ::sled::Error::Io(io)
                        if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock") =>
                    {
                        Error::Locked { path: path.clone() }
                    }
                    ::sled::Error::Io(source) => Error::Io { path: path.clone(), source },
                    ::sled::Error::Corruption { .. } => Error::Corrupt { key: path.clone(), detail: e.to_string() },
                    other => Error::Backend(other.to_string()),
                })
        };
        // sled releases its file lock from a background thread after the last handle is
        // dropped: a store reopened right after closing (a restart, `restore` then the
        // server, tests) may find it still held for a moment. Another process holding it
        // still fails, after a second.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        let db = loop {
            match open() {
                Err(Error::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other?,
            }
        };
        migrate::migrate(&db).map_err(|e| match e {
            Error::Backend(detail) => Error::Backend(format!("{path}: migrating the data directory: {detail}")),
            Error::Damaged { detail, .. } => Error::Damaged { path: path.clone(), detail },
            other => other,
        })?;
        let data_file = std::fs::File::open(dir.join("db")).ok();
        let last = |prefix: &[u8]| -> Result<u64> {
            Ok(db.scan_prefix(prefix).keys().next_back().transpose().map_err(backend)?.map_or(0, |k| be(&k)))
        };
        let last = [last(&Key::Tickets.bytes())?, last(&Key::Runs.bytes())?, last(&Key::Events.bytes())?];
        if let Some(durable) = super::commit::Watermark::read(dir) {
            for ((have, had), (letter, what)) in
                last.iter().zip(durable).zip([('T', "tickets"), ('R', "runs"), ('E', "events")])
            {
                if *have < had {
                    return Err(Error::Damaged {
                        path: path.clone(),
                        detail: format!(
                            "the data file is damaged: it holds {what} up to {letter}-{have}, but {letter}-{had} had been \
                             committed (sled kept only the intact start of its log). Restore the directory from a backup; \
                             to start on what is left, delete {path}/committed"
                        ),
                    });
                }
            }
        }
        let counters = last.map(Into::into);
        let mut highest = 0u64;
        for k in db.scan_prefix(DocKind::Approval.prefix().as_bytes()).keys() {
            let k = k.map_err(backend)?;
            let id = String::from_utf8_lossy(&k[DocKind::Approval.prefix().len()..]).into_owned();
            highest = highest.max(id.rsplit('-').next().and_then(|n| n.parse().ok()).unwrap_or(0));
        }
        let watermark = super::commit::Watermark::new(dir);
        watermark.applied(last);
        let flusher = Flusher::start(db.clone(), data_file, durability, watermark);
        let modules = db.open_tree(MODULES).map_err(backend)?;
        Ok(Self {
            db,
            modules,
            counters,
            numbers: highest.into(),
            flusher,
            path: dir.to_path_buf(),
            failed: std::sync::OnceLock::new(),
            min_free: 0,
            plenty_until_ms: Default::default(),
            batch_sizes: Default::default(),
            applying: Default::default(),
        })
    }

    /// Opens the store refusing to start, and later to write, with less than
    /// `min_free` bytes free on its file system (see [`SledStore::free_space`]).
    pub fn open_with_reserve(dir: &Path, cache_bytes: u64, durability: Durability, min_free: u64) -> Result<Self> {
        // sled first: a read-only or truly full disk is reported as itself.
        let mut store = Self::open(dir, cache_bytes, durability)?;
        if let Some(free) = Self::free_space(dir).filter(|free| *free < min_free) {
            store.close()?;
            return Err(Error::Io {
                path: dir.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    format!(
                        "No space left on device: {} MiB free, below the {} MiB reserve (min_free_mb)",
                        free >> 20,
                        min_free >> 20
                    ),
                ),
            });
        }
        store.min_free = min_free;
        Ok(store)
    }

    /// Bytes an unprivileged writer may still use on `dir`'s file system.
    pub fn free_space(dir: &Path) -> Option<u64> {
        let s = rustix::fs::statvfs(dir).ok()?;
        Some(s.f_bavail.saturating_mul(s.f_frsize))
    }

    /// Refuses (stickily, as a full disk) when free space is under the reserve.
    fn check_reserve(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        if self.min_free == 0 {
            return Ok(());
        }
        let now_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        if now_ms < self.plenty_until_ms.load(Ordering::Relaxed) {
            return Ok(());
        }
        let free = Self::free_space(&self.path);
        if free.is_some_and(|f| f / 4 >= self.min_free) {
            // Far from the reserve (three reserves of margin cannot be written in
            // 100 ms): look again then, not at every write.
            self.plenty_until_ms.store(now_ms + 100, Ordering::Relaxed);
        }
        match free {
            Some(free) if free < self.min_free => {
                let detail = format!(
                    "No space left on device: {} MiB free, below the {} MiB reserve (min_free_mb)",
                    free >> 20,
                    self.min_free >> 20
                );
                self.failed.get_or_init(|| (true, detail));
                let failure = self.failure().unwrap_or(Error::Closed);
                tracing::error!(error = %failure, "the store takes no more writes");
                Err(failure)
            }
            _ => Ok(()),
        }
    }

    /// Starts (or stops) recording the bytes of every batch applied.
    pub fn record_batch_sizes(&self, on: bool) {
        *self.batch_sizes.lock().unwrap_or_else(|e| e.into_inner()) = on.then(Vec::new);
    }

    /// The bytes of each batch applied since recording started, in apply order.
    pub fn batch_sizes(&self) -> Vec<u64> {
        self.batch_sizes.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default()
    }

    fn record_batch(&self, bytes: u64) {
        if let Some(sizes) = self.batch_sizes.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            sizes.push(bytes);
        }
    }

    /// Group-commit counters.
    pub fn commit_stats(&self) -> &super::commit::Stats {
        &self.flusher.stats
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes sled uses on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// Applies removals made outside a [`Tx`] (retention), as a batch does: under the
    /// apply lock, so a backup's copy never sees half of them.
    fn apply_removals(&self, batch: ::sled::Batch) -> Result<()> {
        let _applying = self.applying.lock().unwrap_or_else(|p| p.into_inner());
        self.db.apply_batch(batch).map_err(|e| self.io(e))
    }

    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        match self.db.get(key).map_err(|e| self.io(e))? {
            None => Ok(None),
            Some(bytes) => decode(key, &bytes).map(Some),
        }
    }

    fn scan<T: DeserializeOwned>(&self, prefix: &[u8]) -> Result<Vec<T>> {
        self.db
            .scan_prefix(prefix)
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.io(e))?;
                decode(&k, &v)
            })
            .collect()
    }

    fn keys(&self, prefix: &[u8]) -> Result<Vec<::sled::IVec>> {
        self.db.scan_prefix(prefix).keys().map(|k| k.map_err(|e| self.io(e))).collect()
    }

    /// The next number of a per-kind sequence (`T`, `R`, `E`), from an in-memory counter
    /// that starts above the highest id stored. A number handed out but never committed
    /// may be handed out again after a restart; a committed one never is.
    fn next_id(&self, letter: char) -> Result<String> {
        let counter = match letter {
            'T' => &self.counters[0],
            'R' => &self.counters[1],
            _ => &self.counters[2],
        };
        Ok(format!("{letter}-{}", counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1))
    }

    fn batch(&self, tx: Tx) -> Result<Batch> {
        let mut b = Batch::default();
        // Timers set earlier in this batch, by key: a later write of the same key must
        // replace them too, or the earlier one would stay behind as an orphan that fires.
        let mut timers_here: HashMap<String, Vec<u8>> = HashMap::new();
        let mut indexed_here: HashMap<u64, index::Values> = HashMap::new();
        for w in tx.writes {
            match w {
                Write::Ticket { mut ticket, comments_from, expect } => {
                    let n = id_num(&ticket.id, 'T')?;
                    let comments = std::mem::take(&mut ticket.comments);
                    for c in comments.iter().skip(comments_from) {
                        b.insert(Key::Comment(n, c.id).bytes(), encode(c)?);
                    }
                    b.tickets.push((ticket.id.clone(), expect, ticket.version));
                    // A ticket written twice in one batch: the second compares with the first.
                    let old = match indexed_here.remove(&n) {
                        Some(v) => Some(v),
                        None => self.indexed(n)?,
                    };
                    let new = index::values(&ticket);
                    index::update(&mut b, n, old.as_ref(), &new)?;
                    indexed_here.insert(n, new);
                    b.insert(Key::Ticket(n).bytes(), encode_versioned(&*ticket, ticket.version)?);
                }
                Write::History(h) => {
                    let seq = self.db.generate_id().map_err(|e| self.io(e))?;
                    b.insert(Key::History(id_num(&h.ticket_id, 'T')?, seq).bytes(), encode(&h)?);
                }
                Write::Workflow(w) => {
                    b.insert(Key::Workflow(&w.id).bytes(), encode(&*w)?);
                }
                Write::WorkflowRevision { revision, definition } => {
                    b.insert(Key::Revision(&definition.id, revision).bytes(), encode(&*definition)?);
                }
                Write::Run(delta) => self.put_run(&mut b, *delta)?,
                Write::Event(e) => {
                    let n = id_num(&e.id, 'E')?;
                    b.insert(Key::EventOfTicket(id_num(&e.ticket_id, 'T')?, n).bytes(), &[][..]);
                    b.insert(Key::Event(n).bytes(), encode(&*e)?);
                }
                Write::Agent(a) => {
                    b.insert(Key::Agent(&a.id).bytes(), encode(&a)?);
                }
                Write::Group(g) => {
                    b.insert(Key::Group(&g.id).bytes(), encode(&g)?);
                }
                Write::OpenAssignment { agent, ticket, open } => {
                    let k = Key::Open(&agent, id_num(&ticket, 'T')?).bytes();
                    if open {
                        b.insert(k, &[][..]);
                    } else {
                        b.remove(k);
                    }
                }
                Write::RoundRobin { group, agent } => {
                    b.insert(Key::RoundRobin(&group).bytes(), agent.into_bytes());
                }
                Write::Sla(state) => {
                    b.insert(Key::Sla(id_num(&state.ticket_id, 'T')?).bytes(), encode(&*state)?);
                }
                Write::Calendar(c) => {
                    b.insert(Key::Calendar(&c.id).bytes(), encode(&c)?);
                }
                Write::SlaPolicy(p) => {
                    b.insert(Key::SlaPolicy(&p.id).bytes(), encode(&*p)?);
                }
                Write::Timer(t) => {
                    self.cancel_timer(&mut b, &mut timers_here, &t.key)?;
                    let k = Key::Timer(t.due.timestamp_millis().max(0) as u64, &t.key).bytes();
                    b.insert(Key::TimerIndex(&t.key).bytes(), k.clone());
                    b.insert(k.clone(), encode(&t)?);
                    timers_here.insert(t.key.clone(), k);
                }
                Write::CancelTimer(key) => self.cancel_timer(&mut b, &mut timers_here, &key)?,
                Write::Plugin(p) => {
                    b.insert(Key::Plugin(&p.id).bytes(), encode(&*p)?);
                }
                Write::PluginModule { id, version, bytes } => {
                    b.put_module(Key::Module(&id, &version).bytes(), bytes);
                }
                Write::PluginArtifact { id, version, bytes } => {
                    b.put_module(Key::Artifact(&id, &version).bytes(), bytes);
                }
                Write::DeletePluginVersion { id, version } => {
                    b.remove_module(Key::Module(&id, &version).bytes());
                    b.remove_module(Key::Artifact(&id, &version).bytes());
                }
                Write::DeletePlugin { id } => {
                    b.remove(Key::Plugin(&id).bytes());
                    for k in self.keys(&Key::KvOf(&id).bytes())? {
                        b.remove(k);
                    }
                    for prefix in [Key::ModulesOf(&id).bytes(), Key::ArtifactsOf(&id).bytes()] {
                        for k in self.modules.scan_prefix(prefix).keys() {
                            b.remove_module(k.map_err(|e| self.io(e))?);
                        }
                    }
                }
                Write::Doc { kind, id, value } => {
                    let k = Key::Doc(kind, &id).bytes();
                    match value {
                        Some(v) => b.insert(k, [&[JSON_V1][..], &v].concat()),
                        None => b.remove(k),
                    }
                }
                Write::PluginKv { plugin, key, value } => {
                    let k = Key::Kv(&plugin, &key).bytes();
                    match value {
                        Some(v) => b.insert(k, encode(&v)?),
                        None => b.remove(k),
                    }
                }
                Write::Audit(a) => {
                    b.insert(Key::Audit(self.db.generate_id().map_err(|e| self.io(e))?).bytes(), encode(&a)?);
                }
            }
        }
        Ok(b)
    }
}

/// A sled batch that counts the bytes it writes (keys and values; a removal counts its
/// key), for [`SledStore::batch_sizes`]; with the writes of the `modules` tree beside it.
#[derive(Default)]
struct Batch {
    inner: ::sled::Batch,
    bytes: u64,
    /// Module bytes stored, applied before `inner` (a record never names a module that
    /// is not there yet).
    modules_put: Option<::sled::Batch>,
    /// Module bytes removed, applied after `inner` (a module goes after the record that
    /// named it).
    modules_remove: Option<::sled::Batch>,
    /// The ticket writes' expectations (id, version expected, version written).
    tickets: Vec<(String, Option<u64>, u64)>,
    /// Journal entries appended to runs stored before (run number, first sequence
    /// number, run id): each must not be taken yet.
    journals: Vec<(u64, u32, String)>,
}

impl Batch {
    fn insert(&mut self, key: impl Into<::sled::IVec>, value: impl Into<::sled::IVec>) {
        let (key, value) = (key.into(), value.into());
        self.bytes += (key.len() + value.len()) as u64;
        self.inner.insert(key, value);
    }

    fn remove(&mut self, key: impl Into<::sled::IVec>) {
        let key = key.into();
        self.bytes += key.len() as u64;
        self.inner.remove(key);
    }

    fn put_module(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.bytes += (key.len() + value.len()) as u64;
        self.modules_put.get_or_insert_with(Default::default).insert(key, value);
    }

    fn remove_module(&mut self, key: impl Into<::sled::IVec>) {
        let key = key.into();
        self.bytes += key.len() as u64;
        self.modules_remove.get_or_insert_with(Default::default).remove(key);
    }
}

/// The envelope of a stored record: its first byte says how the rest is encoded, so a
/// record kind can move to another encoding (a compact binary one for the hot records)
/// while older records stay readable. Records written before the envelope are bare JSON,
/// whose first byte is never this one.
const JSON_V1: u8 = 0x01;
/// A record with a version: the version (u64, big-endian), then JSON.
const VERSIONED_JSON_V1: u8 = 0x02;

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    encode_after(vec![JSON_V1], v)
}

/// `envelope` followed by `v` as JSON.
fn encode_after<T: Serialize>(mut out: Vec<u8>, v: &T) -> Result<Vec<u8>> {
    serde_json::to_writer(&mut out, v).map_err(|e| Error::Backend(format!("encode: {e}")))?;
    Ok(out)
}

/// A record's encoded body, its envelope taken off (bare JSON from before the envelope
/// is its own body).
fn body(bytes: &[u8]) -> &[u8] {
    match bytes.split_first() {
        Some((&JSON_V1, rest)) => rest,
        Some((&VERSIONED_JSON_V1, rest)) if rest.len() >= 8 => &rest[8..],
        _ => bytes,
    }
}

/// [`encode`] for a record that carries a version in its envelope (tickets), so a write
/// can check it without decoding the record.
fn encode_versioned<T: Serialize>(v: &T, version: u64) -> Result<Vec<u8>> {
    let mut envelope = vec![VERSIONED_JSON_V1];
    envelope.extend_from_slice(&version.to_be_bytes());
    encode_after(envelope, v)
}

/// The version a stored ticket carries: from its envelope, or, for a record stored
/// before versions, its JSON `version` member (1 when it has none, as it reads).
fn stored_version(key: &[u8], bytes: &[u8]) -> Result<u64> {
    if let Some((&VERSIONED_JSON_V1, rest)) = bytes.split_first() {
        if rest.len() >= 8 {
            return Ok(be(&rest[..8]));
        }
    }
    #[derive(Deserialize)]
    struct Versioned {
        #[serde(default = "one")]
        version: u64,
    }
    fn one() -> u64 {
        1
    }
    decode::<Versioned>(key, bytes).map(|v| v.version)
}

fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(body(bytes))
        .map_err(|e| Error::Corrupt { key: String::from_utf8_lossy(key).into_owned(), detail: e.to_string() })
}

fn id_num(id: &str, letter: char) -> Result<u64> {
    parse_id(id, letter).ok_or_else(|| Error::Backend(format!("malformed id `{id}`")))
}

impl SledStore {
    /// A sled error from any read or write, classified.
    fn io(&self, e: ::sled::Error) -> Error {
        self.classify(backend(e))
    }

    /// Turns an I/O failure into the sticky [`Error::Full`] / [`Error::WriteFailed`];
    /// other errors pass through. Every path to sled goes through here, so a full disk
    /// reads the same (507 `storage_full`) whichever call met it first.
    fn classify(&self, e: Error) -> Error {
        let full_text =
            |d: &str| d.contains("No space left on device") || d.contains("os error 28") || d.contains("StorageFull");
        let sticky = match &e {
            Error::Unclassified { full, detail } if *full || full_text(detail) => {
                (true, "No space left on device".to_string())
            }
            Error::Unclassified { detail, .. } => (false, detail.clone()),
            // sled reports some I/O failures of its background threads as text only.
            Error::Backend(detail) if full_text(detail) => (true, "No space left on device".to_string()),
            Error::Backend(detail) if detail.contains("IO error") || detail.contains("os error") => {
                (false, detail.clone())
            }
            _ => return e,
        };
        self.failed.get_or_init(|| sticky);
        let failure = self.failure().unwrap_or(e);
        tracing::error!(error = %failure, "the store takes no more writes");
        failure
    }

    fn cancel_timer(&self, b: &mut Batch, timers_here: &mut HashMap<String, Vec<u8>>, key: &str) -> Result<()> {
        if let Some(earlier) = timers_here.remove(key) {
            b.remove(earlier);
        }
        let index = Key::TimerIndex(key).bytes();
        if let Some(old) = self.db.get(&index).map_err(|e| self.io(e))? {
            b.remove(old.to_vec());
            b.remove(index);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for SledStore {
    /// sled's log is ordered and a flush covers everything applied before it, so a
    /// later batch is never durable without an earlier one.
    async fn apply(&self, tx: Tx) -> Result<CommitFuture<'_>> {
        let mut max = [0u64; 3];
        for w in &tx.writes {
            let (slot, id, letter) = match w {
                Write::Ticket { ticket, .. } => (0, &ticket.id, 'T'),
                Write::Run(r) => (1, &r.header.id, 'R'),
                Write::Event(e) => (2, &e.id, 'E'),
                _ => continue,
            };
            if let Some(n) = parse_id(id, letter) {
                max[slot] = max[slot].max(n);
            }
        }
        if let Some(e) = self.failure() {
            return Err(e);
        }
        self.check_reserve()?;
        self.batch(tx)
            .and_then(|batch| {
                let _applying = self.applying.lock().unwrap_or_else(|p| p.into_inner());
                let expectations = batch.tickets.iter().map(|(id, e, v)| (id.as_str(), *e, *v));
                check_ticket_versions(expectations, |id| {
                    let key = Key::Ticket(id_num(id, 'T')?).bytes();
                    match self.db.get(&key).map_err(|e| self.io(e))? {
                        Some(bytes) => stored_version(&key, &bytes).map(Some),
                        None => Ok(None),
                    }
                })?;
                self.check_journals(&batch)?;
                self.record_batch(batch.bytes);
                if let Some(put) = batch.modules_put {
                    self.modules.apply_batch(put).map_err(|e| self.io(e))?;
                }
                self.db.apply_batch(batch.inner).map_err(|e| self.io(e))?;
                if let Some(remove) = batch.modules_remove {
                    self.modules.apply_batch(remove).map_err(|e| self.io(e))?;
                }
                Ok(())
            })
            .map_err(|e| self.classify(e))?;
        self.flusher.watermark.applied(max);
        Ok(Box::pin(async move { self.flusher.durable().await.map_err(|e| self.classify(e)) }))
    }

    fn failure(&self) -> Option<Error> {
        let (full, detail) = self.failed.get()?.clone();
        let path = self.path.display().to_string();
        Some(if full { Error::Full { path, detail } } else { Error::WriteFailed { path, detail } })
    }

    fn close(&self) -> Result<()> {
        self.flusher.stop()
    }

    fn backup(&self, out: &mut dyn std::io::Write) -> Result<u64> {
        self.write_backup(out)
    }
}

#[cfg(test)]
mod tests;
