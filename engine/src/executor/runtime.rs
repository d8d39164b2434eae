//! The run runtime: which runs are held as tasks (at most `run_queue`, the rest wait in
//! the store as `pending` and are queued as the queue drains), the workers a step holds
//! while it computes and applies, the timer loop, and stopping. What a run does is the
//! driver (`step.rs`); this module only decides when runs are driven.

use super::{Engine, Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::task::TaskTracker;

/// The runtime's state, owned by the [`Engine`].
pub(super) struct Runtime {
    pub(super) tasks: TaskTracker,
    /// Ids of the runs held as tasks; at most `config.run_queue`.
    pub(super) in_flight: Mutex<std::collections::HashSet<String>>,
    /// Set when a run was left in the store because the queue was full.
    pub(super) overflow: AtomicBool,
    /// A step holds one while it computes and applies (not while it waits on the outside
    /// world or on the flush).
    pub(super) workers: Arc<tokio::sync::Semaphore>,
    pub(super) stopping: AtomicBool,
    /// Wakes waits that should end when the engine stops (backoff between plugin attempts).
    pub(super) stop_signal: tokio::sync::Notify,
    /// Wakes the timer loop when a timer may have become due sooner.
    pub(super) timer_wakeup: tokio::sync::Notify,
    /// The timer loop ([`Engine::spawn_timers`]), awaited by [`Engine::shutdown`] so no
    /// timer fires into a store that is closing.
    pub(super) timer_loop: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Runtime {
    pub(super) fn new(workers: usize) -> Self {
        Self {
            tasks: TaskTracker::new(),
            in_flight: Mutex::new(Default::default()),
            overflow: AtomicBool::new(false),
            workers: Arc::new(tokio::sync::Semaphore::new(workers)),
            stopping: AtomicBool::new(false),
            stop_signal: tokio::sync::Notify::new(),
            timer_wakeup: tokio::sync::Notify::new(),
            timer_loop: Mutex::new(None),
        }
    }

    /// Whether the engine is stopping (no new step starts).
    pub(super) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

impl Engine {
    /// Re-queues the runs that were pending or running when the process stopped (up to
    /// `run_queue` at once; the rest follow as the queue drains). Returns how many were
    /// queued now.
    pub async fn recover(self: &Arc<Self>) -> Result<usize> {
        self.index_pending_approvals().await?;
        let limit = self.config.run_queue + 1;
        let active = self.store.active_runs(limit).await?;
        let n = active.len().min(self.config.run_queue);
        self.queue(active, limit);
        Ok(n)
    }

    /// Spawns `ids` (read from the store with `limit`). When the store may hold more,
    /// marks the queue as overflowing so that it refills as it drains. That must not
    /// depend on `spawn_run` finding the queue full: runs spawned first may already have
    /// finished by the time the last is spawned.
    pub(super) fn queue(self: &Arc<Self>, ids: Vec<String>, limit: usize) {
        let more = ids.len() >= limit;
        for id in ids {
            self.spawn_run(id);
        }
        if more {
            self.runtime.overflow.store(true, Ordering::SeqCst);
            let left = self.runtime.in_flight.lock().unwrap_or_else(|p| p.into_inner()).len();
            // Everything spawned may be done already; then no finishing run will refill.
            if left <= self.config.run_queue / 2 && self.runtime.overflow.swap(false, Ordering::SeqCst) {
                let engine = self.clone();
                self.runtime.tasks.spawn(async move { engine.refill().await });
            }
        }
    }

    /// Stops starting new steps and waits for the ones under way to commit.
    pub async fn shutdown(&self) {
        self.runtime.stopping.store(true, Ordering::SeqCst);
        self.runtime.stop_signal.notify_waiters();
        let timers = self.runtime.timer_loop.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(timers) = timers {
            // A firing in progress completes (its commit is whole); the loop then stops.
            let _ = timers.await;
        }
        self.runtime.tasks.close();
        self.runtime.tasks.wait().await;
    }

    /// Runs being driven right now (or queued for a worker).
    pub fn runs_in_flight(&self) -> usize {
        self.runtime.tasks.len()
    }

    /// Drives a run in a task, unless it is already in flight or the queue is full (then
    /// it stays `pending` in the store and [`Engine::refill`] picks it up later).
    pub(super) fn spawn_run(self: &Arc<Self>, id: String) {
        {
            let mut in_flight = self.runtime.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            if in_flight.contains(&id) {
                return;
            }
            if in_flight.len() >= self.config.run_queue {
                self.runtime.overflow.store(true, Ordering::SeqCst);
                return;
            }
            in_flight.insert(id.clone());
        }
        let engine = self.clone();
        self.runtime.tasks.spawn(async move {
            if let Err(e) = engine.drive(&id).await {
                if engine.runtime.stopping() {
                    tracing::info!(run = %id, "run paused by the shutdown; it resumes on restart");
                } else {
                    tracing::error!(run = %id, error = %e, "run stopped; it resumes on restart");
                }
            }
            let left = {
                let mut in_flight = engine.runtime.in_flight.lock().unwrap_or_else(|p| p.into_inner());
                in_flight.remove(&id);
                in_flight.len()
            };
            // Refill at half capacity, so each scan of the store queues many runs.
            if left <= engine.config.run_queue / 2 && engine.runtime.overflow.swap(false, Ordering::SeqCst) {
                engine.refill().await;
            }
        });
    }

    /// Queues active runs that were left in the store while the queue was full.
    pub(super) async fn refill(self: &Arc<Self>) {
        if self.runtime.stopping() {
            return;
        }
        // The oldest active runs are the ones in flight and the next to queue.
        let in_flight = self.runtime.in_flight.lock().unwrap_or_else(|p| p.into_inner()).len();
        let limit = in_flight + self.config.run_queue;
        match self.store.active_runs(limit).await {
            Ok(ids) => self.queue(ids, limit),
            Err(e) => {
                tracing::error!(error = %e, "reading pending runs; they resume on restart");
            }
        }
    }

    /// After a commit: start the runs it created and let the timer loop see new timers.
    pub(super) fn after_commit(self: &Arc<Self>, runs: &[String]) {
        self.spawn_runs(runs);
        self.wake_timers();
    }

    pub(super) fn spawn_runs(self: &Arc<Self>, ids: &[String]) {
        for id in ids {
            self.spawn_run(id.clone());
        }
    }

    /// Sleeps for `d` unless the engine stops first; returns whether the time passed.
    pub(super) async fn pause(&self, d: std::time::Duration) -> bool {
        let stopping = self.runtime.stop_signal.notified();
        if self.runtime.stopping() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = stopping => false,
        }
    }

    pub(super) async fn worker(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.runtime.workers.clone().acquire_owned().await.map_err(|_| Error::Conflict("the engine is stopping".into()))
    }

    /// Runs the timer loop until shutdown: fires due timers, then sleeps until the next
    /// one is due (at most a second, or until woken by a new timer or by the shutdown).
    pub fn spawn_timers(self: &Arc<Self>) {
        self.spawn_retention();
        let engine = self.clone();
        let handle = tokio::spawn(async move {
            loop {
                // Created before the flag is read: a shutdown in between still wakes it.
                let stopping = engine.runtime.stop_signal.notified();
                if engine.runtime.stopping() {
                    break;
                }
                if let Err(e) = engine.fire_due_timers().await {
                    tracing::error!(error = %e, "timer loop");
                }
                let wait = match engine.store.next_timer().await {
                    Ok(Some(due)) => {
                        (due - engine.now()).to_std().unwrap_or_default().min(std::time::Duration::from_secs(1))
                    }
                    _ => std::time::Duration::from_secs(1),
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = engine.runtime.timer_wakeup.notified() => {}
                    _ = stopping => break,
                }
            }
        });
        *self.runtime.timer_loop.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
    }

    /// Wakes the timer loop (after a commit that may have set an earlier timer).
    pub(super) fn wake_timers(&self) {
        self.runtime.timer_wakeup.notify_one();
    }
}
