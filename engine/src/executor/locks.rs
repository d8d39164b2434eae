//! Per-ticket serialisation: read-modify-write of one ticket happens one at a time.
//! Striped, so memory stays constant however many tickets exist.

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

    /// Waits for the ticket's stripe.
    pub async fn lock(&self, ticket: &str) -> MutexGuard<'_, ()> {
        let mut h = DefaultHasher::new();
        ticket.hash(&mut h);
        self.0[(h.finish() as usize) % STRIPES].lock().await
    }
}
