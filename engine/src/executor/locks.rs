//! Per-key serialisation: read-modify-write of one ticket happens one at a time, and
//! routing decisions that share an agent or a group's round-robin cursor happen one at
//! a time. Striped, so memory stays constant however many keys exist.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 1024;

/// A fixed set of mutexes; a ticket id always maps to the same one.
pub struct TicketLocks(Vec<Mutex<()>>);

impl TicketLocks {
    /// All stripes unlocked.
    pub fn new() -> Self {
        Self((0..STRIPES).map(|_| Mutex::new(())).collect())
    }

    fn stripe(ticket: &str) -> usize {
        let mut h = DefaultHasher::new();
        ticket.hash(&mut h);
        (h.finish() as usize) % STRIPES
    }

    /// Waits for the ticket's stripe.
    pub async fn lock(&self, ticket: &str) -> MutexGuard<'_, ()> {
        self.0[Self::stripe(ticket)].lock().await
    }

    /// Locks two tickets' stripes in a fixed order (once if they share one), so two
    /// callers locking the same pair in opposite order cannot deadlock.
    pub async fn lock_pair(&self, a: &str, b: &str) -> (MutexGuard<'_, ()>, Option<MutexGuard<'_, ()>>) {
        let (x, y) = (Self::stripe(a), Self::stripe(b));
        if x == y {
            return (self.0[x].lock().await, None);
        }
        let (first, second) = (x.min(y), x.max(y));
        let g1 = self.0[first].lock().await;
        let g2 = self.0[second].lock().await;
        (g1, Some(g2))
    }

    /// Locks the stripes of all `keys` in stripe order (each once), so callers locking
    /// overlapping sets cannot deadlock.
    pub async fn lock_all<'a>(&'a self, keys: impl IntoIterator<Item = &str>) -> Vec<MutexGuard<'a, ()>> {
        let mut stripes: Vec<usize> = keys.into_iter().map(Self::stripe).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for s in stripes {
            guards.push(self.0[s].lock().await);
        }
        guards
    }
}
