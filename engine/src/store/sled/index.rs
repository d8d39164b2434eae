//! Secondary indexes of tickets, so a filtered list reads the tickets it shows, not the
//! whole table: for each of status, priority, group, assignee, category and requester,
//! and the two [`TicketTime`]s (as [`stamp`]s, so a range of keys is a range of times),
//! `tx/<field><len><value><ticket n>` (an empty value). `tf/<ticket n>` keeps the values a
//! ticket is indexed under, so a write compares with it and touches only what changed
//! (most steps change none of them: one small read).
//!
//! A ticket write that read a stale `tf/` cannot commit: it expects the version it
//! read, and whoever changed the ticket since bumped it (the batch is refused whole).

use super::{encode, Batch, Key, SledStore};
use crate::store::{Result, TicketFilter, TicketTime};
use crate::ticket::Ticket;
use chrono::{DateTime, Utc};

/// The indexed fields, by their one-byte tag.
const FIELDS: [u8; 8] = [b's', b'p', b'g', b'a', b'c', b'q', b't', b'd'];

/// The values a ticket is indexed under, in [`FIELDS`] order.
pub(super) type Values = [Option<String>; 8];

/// The tag of a time index.
pub(super) fn time_tag(time: TicketTime) -> u8 {
    match time {
        TicketTime::Created => b't',
        TicketTime::Done => b'd',
    }
}

/// A time as 16 hex digits that sort as the times do (microseconds since 1970, the sign
/// bit flipped so earlier times sort first).
pub(super) fn stamp(at: DateTime<Utc>) -> String {
    format!("{:016x}", (at.timestamp_micros() as u64) ^ (1 << 63))
}

fn label<T: serde::Serialize>(v: &T) -> Option<String> {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => Some(s),
        _ => None,
    }
}

/// A ticket's indexed values.
pub(super) fn values(t: &Ticket) -> Values {
    [
        label(&t.status),
        label(&t.priority),
        t.group.clone(),
        t.assignee.clone(),
        t.category.clone(),
        Some(t.requester.clone()),
        TicketTime::Created.of(t).map(stamp),
        TicketTime::Done.of(t).map(stamp),
    ]
}

/// The index key of `value` of field `tag` (without the ticket: the scan's prefix).
pub(super) fn prefix(tag: u8, value: &str) -> Vec<u8> {
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    [&b"tx/"[..], &[tag], &len.to_be_bytes(), value.as_bytes()].concat()
}

fn key(tag: u8, value: &str, n: u64) -> Vec<u8> {
    [prefix(tag, value), n.to_be_bytes().to_vec()].concat()
}

/// Adds to `b` what keeps ticket `n`'s index entries in step with `new` (its values
/// were `old`).
pub(super) fn update(b: &mut Batch, n: u64, old: Option<&Values>, new: &Values) -> Result<()> {
    if old == Some(new) {
        return Ok(());
    }
    for (i, tag) in FIELDS.iter().enumerate() {
        let was = old.and_then(|o| o[i].as_deref());
        let is = new[i].as_deref();
        if was == is {
            continue;
        }
        if let Some(v) = was {
            b.remove(key(*tag, v, n));
        }
        if let Some(v) = is {
            b.insert(key(*tag, v, n), &[][..]);
        }
    }
    b.insert(Key::TicketFields(n).bytes(), encode(new)?);
    Ok(())
}

/// The scan prefixes of every indexed field the filter names.
pub(super) fn prefixes(filter: &TicketFilter) -> Vec<Vec<u8>> {
    let text = |tag: u8, v: &Option<String>| v.as_deref().map(|v| prefix(tag, v));
    [
        text(b'a', &filter.assignee),
        text(b'q', &filter.requester),
        text(b'g', &filter.group),
        text(b'c', &filter.category),
        filter.priority.as_ref().and_then(label).map(|v| prefix(b'p', &v)),
        filter.status.as_ref().and_then(label).map(|v| prefix(b's', &v)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

impl SledStore {
    /// The values ticket `n` is indexed under now, if it is stored.
    pub(super) fn indexed(&self, n: u64) -> Result<Option<Values>> {
        self.get(&Key::TicketFields(n).bytes())
    }

    /// The first ticket number at or after `n` in the index under `prefix`.
    fn seek(&self, prefix: &[u8], n: u64) -> Result<Option<u64>> {
        let start = [prefix, &n.to_be_bytes()].concat();
        match self.db.range(start..).keys().next() {
            Some(k) => {
                let k = k.map_err(|e| self.io(e))?;
                Ok(k.starts_with(prefix).then(|| super::be(&k[prefix.len()..])))
            }
            None => Ok(None),
        }
    }

    /// The first ticket number at or after `n`, below `end`, in every index under
    /// `prefixes` (a leapfrog join: each index jumps to the furthest number another one
    /// is at, so two filters read about as many keys as the smaller one's matches, not
    /// the larger one's entries).
    pub(super) fn next_in_all(&self, prefixes: &[Vec<u8>], mut n: u64, end: u64) -> Result<Option<u64>> {
        'search: loop {
            if n >= end {
                return Ok(None);
            }
            for p in prefixes {
                match self.seek(p, n)? {
                    None => return Ok(None),
                    Some(m) if m > n => {
                        n = m;
                        continue 'search;
                    }
                    Some(_) => {}
                }
            }
            return Ok(Some(n));
        }
    }
}
