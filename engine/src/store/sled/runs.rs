//! Runs in sled: a header under `r/`, the start record under `rs/`, the journal under
//! `rj/` (run n, first seq: the entries one commit appended), and the indexes (`ra/` active, `rt/` by ticket, `rw/` waiting).

use super::{be, body, decode, encode, id_num, parse_id, Batch, Key, SledStore};
use crate::run::journal::{self, Delta, Entry, Header, Start};
use crate::run::{Run, RunStatus};
use crate::store::{Error, Result, RunFilter, RunStore};

impl SledStore {
    /// Adds a run's write to the batch: the header and its indexes, the start record of
    /// a new run, the appended journal entries.
    ///
    /// A journal entry is never overwritten: a delta whose first sequence number is taken
    /// (or, when it appends nothing, the one after its journal) was computed from a run
    /// another writer has appended to since, and is refused as [`Error::Conflict`] (the
    /// whole transaction with it).
    pub(super) fn put_run(&self, b: &mut Batch, delta: Delta) -> Result<()> {
        if let Some(seq) = delta.expected_free() {
            b.journals.push((id_num(&delta.header.id, 'R')?, seq, delta.header.id.clone()));
        }
        put(b, delta)
    }

    /// Refuses the batch when a journal entry it appends is taken already (checked with
    /// the batch's other expectations, just before it is applied).
    pub(super) fn check_journals(&self, b: &Batch) -> Result<()> {
        for (n, seq, id) in &b.journals {
            if self.db.contains_key(Key::Journal(*n, *seq).bytes()).map_err(|e| self.io(e))? {
                return Err(Error::Conflict(format!("run {id} (journal entry {seq})")));
            }
        }
        Ok(())
    }

    /// Reads a run's header, start record and journal, folded.
    fn load_run(&self, n: u64) -> Result<Option<Run>> {
        let Some(header) = self.get::<Header>(&Key::Run(n).bytes())? else { return Ok(None) };
        self.assemble(n, header).map(Some)
    }

    fn assemble(&self, n: u64, header: Header) -> Result<Run> {
        let start: Start = self.get(&Key::RunStart(n).bytes())?.ok_or_else(|| Error::Corrupt {
            key: format!("rs/R-{n}"),
            detail: "the run's header is stored but not what started it".into(),
        })?;
        let mut entries: Vec<Entry> = Vec::new();
        for kv in self.db.scan_prefix(Key::JournalOf(n).bytes()) {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            // The entries one commit appended share a key (a JSON array); a key written
            // before that holds one entry.
            if body(&v).first() == Some(&b'[') {
                entries.extend(decode::<Vec<Entry>>(&k, &v)?);
            } else {
                entries.push(decode(&k, &v)?);
            }
        }
        Ok(journal::fold(header, start, entries))
    }
}

pub(super) fn put(b: &mut Batch, delta: Delta) -> Result<()> {
    let Delta { header, start, entries, was } = delta;
    let n = id_num(&header.id, 'R')?;
    // The status indexes change only with the status (most steps leave them alone); a
    // run stored for the first time has none yet (nor had one in the old layout unless
    // it was active or waiting, which it still is).
    let (active, was_active) = (header.status.is_active(), was.is_some_and(RunStatus::is_active));
    if active && !was_active {
        b.insert(Key::Active(n).bytes(), &[][..]);
    } else if !active && was_active {
        b.remove(Key::Active(n).bytes());
    }
    // Runs without a ticket (schedule summaries) have no ticket indexes.
    if let Some(ticket) = &header.ticket {
        let t = id_num(ticket, 'T')?;
        if start.is_some() {
            b.insert(Key::RunOfTicket(t, n).bytes(), &[][..]);
        }
        let (waiting, was_waiting) = (header.status == RunStatus::Waiting, was == Some(RunStatus::Waiting));
        if waiting != was_waiting {
            let key = Key::Waiting(t, n).bytes();
            if waiting {
                b.insert(key, &[][..]);
            } else {
                b.remove(key);
            }
        }
    }
    if let Some(start) = start {
        b.insert(Key::RunStart(n).bytes(), encode(&*start)?);
    }
    // What one commit appends is one key, at its first sequence number: a step segment
    // writes one journal record, however many entries it made.
    if let Some(&(first, _)) = entries.first() {
        let chunk: Vec<&Entry> = entries.iter().map(|(_, e)| e).collect();
        b.insert(Key::Journal(n, first).bytes(), encode(&chunk)?);
    }
    b.insert(Key::Run(n).bytes(), encode(&header)?);
    Ok(())
}

#[async_trait::async_trait]
impl RunStore for SledStore {
    async fn next_run_id(&self) -> Result<String> {
        self.next_id('R')
    }

    async fn run(&self, id: &str) -> Result<Option<Run>> {
        match parse_id(id, 'R') {
            Some(n) => self.load_run(n),
            None => Ok(None),
        }
    }

    async fn runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        let limit = filter.page_size();
        let mut out = Vec::new();
        if let Some(ticket) = &filter.ticket {
            let Some(t) = parse_id(ticket, 'T') else { return Ok(out) };
            for k in self.keys(&Key::RunsOfTicket(t).bytes())?.into_iter().rev() {
                let n = be(&k);
                let Some(h) = self.get::<Header>(&Key::Run(n).bytes())? else { continue };
                if filter.before_range(&h) {
                    break;
                }
                if filter.keeps(&h) {
                    out.push(self.assemble(n, h)?);
                }
                if out.len() >= limit {
                    break;
                }
            }
            return Ok(out);
        }
        for kv in self.db.scan_prefix(Key::Runs.bytes()).rev() {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            let h: Header = decode(&k, &v)?;
            if filter.before_range(&h) {
                break;
            }
            if filter.keeps(&h) {
                out.push(self.assemble(be(&k), h)?);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    async fn prune_runs(&self, before: chrono::DateTime<chrono::Utc>, limit: usize) -> Result<u64> {
        let mut batch = ::sled::Batch::default();
        let mut n_pruned = 0u64;
        let newest = self.db.scan_prefix(Key::Runs.bytes()).keys().next_back().transpose().map_err(|e| self.io(e))?;
        for kv in self.db.scan_prefix(Key::Runs.bytes()) {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            let h: Header = decode(&k, &v)?;
            // Run numbers follow start times: nothing later started before `before`. The
            // newest stays: the next number after a restart counts from it.
            if h.created_at >= before || n_pruned as usize >= limit || newest.as_ref() == Some(&k) {
                break;
            }
            let finished = !h.status.is_active() && h.status != RunStatus::Waiting;
            if !finished || h.finished_at.is_none_or(|f| f >= before) {
                continue;
            }
            let n = be(&k);
            batch.remove(Key::Run(n).bytes());
            batch.remove(Key::RunStart(n).bytes());
            for j in self.db.scan_prefix(Key::JournalOf(n).bytes()).keys() {
                batch.remove(j.map_err(|e| self.io(e))?);
            }
            if let Some(t) = h.ticket.as_deref().and_then(|t| parse_id(t, 'T')) {
                batch.remove(Key::RunOfTicket(t, n).bytes());
            }
            n_pruned += 1;
        }
        // Finished runs are not written again.
        self.apply_removals(batch)?;
        Ok(n_pruned)
    }

    async fn run_headers_since(&self, from: chrono::DateTime<chrono::Utc>, limit: usize) -> Result<Vec<Header>> {
        let filter = RunFilter { from: Some(from), ..Default::default() };
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(Key::Runs.bytes()).rev() {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            let h: Header = decode(&k, &v)?;
            if filter.before_range(&h) || out.len() >= limit {
                break;
            }
            if filter.keeps(&h) {
                out.push(h);
            }
        }
        Ok(out)
    }

    async fn active_runs(&self, limit: usize) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for k in self.db.scan_prefix(Key::Actives.bytes()).keys().take(limit) {
            out.push(format!("R-{}", be(&k.map_err(|e| self.io(e))?)));
        }
        Ok(out)
    }

    async fn waiting_runs(&self, ticket: &str) -> Result<Vec<String>> {
        let Some(t) = parse_id(ticket, 'T') else { return Ok(Vec::new()) };
        Ok(self.keys(&Key::WaitingOn(t).bytes())?.iter().map(|k| format!("R-{}", be(k))).collect())
    }

    async fn count_waiting_runs(&self) -> Result<u64> {
        let mut n = 0;
        for k in self.db.scan_prefix(Key::Waitings.bytes()).keys() {
            k.map_err(|e| self.io(e))?;
            n += 1;
        }
        Ok(n)
    }
}
