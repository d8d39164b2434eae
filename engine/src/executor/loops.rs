//! The loop guard: what stops workflows that trigger each other from running away.
//!
//! Every event a run causes carries its causation chain (the runs that led to it,
//! oldest first); the first link names the **originating event**, the one a person or
//! a system raised. Three limits apply to a run about to start from a caused event:
//!
//! - `loop_depth`: how often one workflow may appear in its own chain;
//! - `max_chain`: how long any chain may be;
//! - the **tree budget** of the originating event: at most `max_tree_runs` runs started
//!   and `max_tree_changes` ticket field changes made by runs, over the whole tree the
//!   event set off, however it fans out (every update offers itself to every workflow).
//!
//! Past a limit the run is refused with a reason naming the limit, the originating event
//! and the chain. A refusal is recorded as a refused run once per workflow per tree;
//! later attempts only show in the event's evaluations, so refusals cannot flood the run
//! list. Budgets are kept in memory (the most recent [`TREES_KEPT`] trees): a restart
//! gives a tree that was still unfolding a fresh budget, which bounds it all the same.
//!
//! [`Engine::causation_tree`] draws a tree for the run page and `explain`.

use super::{Engine, Result};
use crate::run::{Event, Run};
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

/// How many trees' budgets are remembered (oldest forgotten first).
pub const TREES_KEPT: usize = 10_000;

/// What one originating event's tree has used.
#[derive(Debug, Default)]
struct Budget {
    runs: usize,
    changes: usize,
    /// Workflows already recorded as refused in this tree.
    refused: HashSet<String>,
}

/// Budgets by originating event.
#[derive(Debug, Default)]
pub(super) struct Trees {
    inner: Mutex<(HashMap<String, Budget>, VecDeque<String>)>,
}

impl Trees {
    fn with<R>(&self, origin: &str, f: impl FnOnce(&mut Budget) -> R) -> R {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *guard;
        if !map.contains_key(origin) {
            if order.len() >= TREES_KEPT {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
            order.push_back(origin.to_string());
        }
        f(map.entry(origin.to_string()).or_default())
    }
}

/// The event that set off the tree `event` belongs to.
pub fn origin(event: &Event) -> &str {
    event.causation.first().map_or(event.id.as_str(), |c| c.event_id.as_str())
}

/// The events each run caused, by run id (from their causation's last link).
fn children(events: &[Event]) -> HashMap<&str, Vec<&Event>> {
    let mut by_parent: HashMap<&str, Vec<&Event>> = HashMap::new();
    for e in events {
        if let Some(last) = e.causation.last() {
            by_parent.entry(last.run_id.as_str()).or_default().push(e);
        }
    }
    by_parent
}

/// What the guard says about a run about to start.
pub(super) enum Verdict {
    /// Start it.
    Start,
    /// Refuse it, recording a refused run (the first refusal of this workflow in the tree).
    Record(String),
    /// Refuse it; the workflow's refusal in this tree is already recorded.
    Quiet(String),
}

impl Engine {
    /// Counts the field changes a run made (an event it caused) against its tree.
    pub(super) fn count_changes(&self, event: &Event) {
        if !event.causation.is_empty() && !event.changes.is_empty() {
            self.trees.with(origin(event), |b| b.changes += event.changes.len());
        }
    }

    /// Decides whether `workflow` may start a run from `event`, and counts it if so.
    pub(super) fn guard(&self, workflow: &str, event: &Event) -> Verdict {
        let c = &self.config;
        let origin = origin(event);
        let chain = || event.causation.iter().map(|c| format!("{}({})", c.workflow_id, c.run_id)).collect::<Vec<_>>();
        self.trees.with(origin, |budget| {
            let reason = if event.causation.is_empty() {
                None // a person's or a system's own event always gets its runs
            } else if budget.runs >= c.max_tree_runs {
                Some(format!(
                    "loop guard: the tree set off by event {origin} already started {} runs (max_tree_runs {})",
                    budget.runs, c.max_tree_runs
                ))
            } else if budget.changes >= c.max_tree_changes {
                Some(format!(
                    "loop guard: the tree set off by event {origin} already made {} ticket changes (max_tree_changes {})",
                    budget.changes, c.max_tree_changes
                ))
            } else {
                let repeats = event.causation.iter().filter(|c| c.workflow_id == workflow).count();
                if repeats >= c.loop_depth {
                    Some(format!(
                        "loop guard: workflow `{workflow}` already ran {repeats} time(s) in this causation chain (loop_depth {}) set off by event {origin}",
                        c.loop_depth
                    ))
                } else if event.causation.len() >= c.max_chain {
                    Some(format!(
                        "loop guard: causation chain is {} runs long (max_chain {}) set off by event {origin}",
                        event.causation.len(),
                        c.max_chain
                    ))
                } else {
                    None
                }
            };
            match reason {
                None => {
                    budget.runs += 1;
                    Verdict::Start
                }
                Some(r) => {
                    let r = format!("{r}; chain: {}", chain().join(" -> "));
                    if budget.refused.insert(workflow.to_string()) {
                        Verdict::Record(r)
                    } else {
                        Verdict::Quiet(r)
                    }
                }
            }
        })
    }

    /// The causation tree around a run: from its originating event, every run each
    /// event started (or refused) and every event those runs caused, on the run's ticket.
    pub async fn causation_tree(&self, run: &Run) -> Result<CausationTree> {
        let events = match run.ticket_id.as_str() {
            "" => Vec::new(),
            ticket => self.store.ticket_events(ticket).await?,
        };
        let origin = run.causation.first().map_or(run.event_id.as_str(), |c| c.event_id.as_str());
        Ok(self.tree_from(&events, &children(&events), origin))
    }

    /// Trees of a ticket's events that set off other runs' events (for `explain`).
    pub(super) fn ticket_trees(&self, events: &[Event]) -> Vec<CausationTree> {
        let by_parent = children(events);
        let caused: HashSet<&str> =
            events.iter().filter_map(|e| e.causation.first().map(|c| c.event_id.as_str())).collect();
        events
            .iter()
            .filter(|e| e.causation.is_empty() && caused.contains(e.id.as_str()))
            .map(|e| self.tree_from(events, &by_parent, &e.id))
            .collect()
    }

    fn tree_from<'a>(
        &self,
        events: &'a [Event],
        by_parent: &HashMap<&str, Vec<&'a Event>>,
        origin: &str,
    ) -> CausationTree {
        fn node<'a>(
            e: &'a Event,
            by_parent: &HashMap<&str, Vec<&'a Event>>,
            counts: &mut (usize, usize, usize),
            depth: usize,
        ) -> TreeEvent {
            if !e.causation.is_empty() {
                counts.2 += e.changes.len();
            }
            let runs = e
                .evaluations
                .iter()
                .filter(|ev| ev.outcome == "started" || ev.outcome == "refused")
                .map(|ev| {
                    let children = match (&ev.run_id, ev.outcome.as_str()) {
                        (Some(id), "started") if depth < 64 => by_parent.get(id.as_str()).cloned().unwrap_or_default(),
                        _ => Vec::new(),
                    };
                    if ev.outcome == "started" {
                        counts.0 += 1;
                    } else {
                        counts.1 += 1;
                    }
                    TreeRun {
                        run: ev.run_id.clone(),
                        workflow: ev.workflow_id.clone(),
                        status: ev.outcome.clone(),
                        reason: ev.reason.clone(),
                        events: children.iter().map(|c| node(c, by_parent, counts, depth + 1)).collect(),
                    }
                })
                .collect();
            TreeEvent {
                event: e.id.clone(),
                kind: e.kind.as_str(),
                actor: e.actor.clone(),
                changes: e.changes.iter().map(|c| c.field.clone()).collect(),
                runs,
            }
        }
        // (runs started, refusals, changes made by runs)
        let mut counts = (0, 0, 0);
        let origin = events.iter().find(|e| e.id == origin).map(|e| node(e, by_parent, &mut counts, 0));
        let (runs_started, refusals, changes) = counts;
        CausationTree {
            origin,
            runs_started,
            refusals,
            changes,
            max_tree_runs: self.config.max_tree_runs,
            max_tree_changes: self.config.max_tree_changes,
            stopped_by_guard: refusals > 0,
        }
    }
}

/// What one event set off: the runs it started or the loop guard refused, and what
/// those runs caused in turn (the run page and `explain` draw it).
#[derive(Debug, Clone, Serialize)]
pub struct CausationTree {
    /// The event the tree starts from (absent when it is not on the ticket).
    pub origin: Option<TreeEvent>,
    /// Runs started in the tree.
    pub runs_started: usize,
    /// Runs the loop guard refused.
    pub refusals: usize,
    /// Ticket fields changed by the tree's runs.
    pub changes: usize,
    /// The guard's limits (`max_tree_runs`, `max_tree_changes`).
    pub max_tree_runs: usize,
    pub max_tree_changes: usize,
    /// Whether the loop guard stopped part of it.
    pub stopped_by_guard: bool,
}

/// An event of a causation tree.
#[derive(Debug, Clone, Serialize)]
pub struct TreeEvent {
    pub event: String,
    pub kind: &'static str,
    pub actor: String,
    /// The fields it changed.
    pub changes: Vec<String>,
    pub runs: Vec<TreeRun>,
}

/// A run an event of a causation tree started (or the guard refused).
#[derive(Debug, Clone, Serialize)]
pub struct TreeRun {
    pub run: Option<String>,
    pub workflow: String,
    /// `started` or `refused`.
    pub status: String,
    pub reason: Option<String>,
    /// The events it caused.
    pub events: Vec<TreeEvent>,
}
