//! What a list of tickets or runs asks for, and the times tickets are indexed by.

use super::parse_id;
use crate::run::RunStatus;
use crate::ticket::{Kind, Priority, Status, Ticket};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which tickets to list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketFilter {
    /// Only this status.
    pub status: Option<Status>,
    /// Only this group.
    pub group: Option<String>,
    /// Only this assignee.
    pub assignee: Option<String>,
    /// Only this category.
    pub category: Option<String>,
    /// Only this priority.
    pub priority: Option<Priority>,
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Only this requester.
    pub requester: Option<String>,
    /// Only tickets with this external id.
    pub external_id: Option<String>,
    /// Only tickets whose title or description contains this text (any case).
    #[serde(default)]
    pub text: Option<String>,
    /// Tickets after this id (paging).
    pub after: Option<String>,
    /// Tickets before this id only (a window of ids: a text search reads one window per
    /// page, so no page reads the whole table).
    #[serde(default)]
    pub before: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

impl TicketFilter {
    /// Whether a ticket passes the filter (paging aside).
    pub fn matches(&self, t: &Ticket) -> bool {
        self.status.is_none_or(|s| t.status == s)
            && self.group.as_ref().is_none_or(|g| t.group.as_ref() == Some(g))
            && self.assignee.as_ref().is_none_or(|a| t.assignee.as_ref() == Some(a))
            && self.category.as_ref().is_none_or(|c| t.category.as_ref() == Some(c))
            && self.priority.is_none_or(|p| t.priority == p)
            && self.kind.is_none_or(|k| t.kind == k)
            && self.requester.as_ref().is_none_or(|r| &t.requester == r)
            && self.external_id.as_ref().is_none_or(|x| t.external_id.as_ref() == Some(x))
            && self
                .text
                .as_ref()
                .is_none_or(|text| contains_folded(&t.title, text) || contains_folded(&t.description, text))
    }

    /// The page size to use.
    pub fn page_size(&self) -> usize {
        self.limit.unwrap_or(100).clamp(1, 1000)
    }

    /// The ticket numbers the filter's window spans: after `after`, before `before`.
    pub fn window(&self) -> std::ops::Range<u64> {
        let from = self.after.as_deref().and_then(|a| parse_id(a, 'T')).map_or(0, |n| n.saturating_add(1));
        let to = self.before.as_deref().and_then(|b| parse_id(b, 'T')).unwrap_or(u64::MAX);
        from..to.max(from)
    }
}

/// Whether `haystack` contains `needle`, ignoring case.
fn contains_folded(haystack: &str, needle: &str) -> bool {
    let needle = needle.to_lowercase();
    needle.is_empty() || haystack.to_lowercase().contains(&needle)
}

/// Which runs to list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFilter {
    /// Only runs on this ticket.
    pub ticket: Option<String>,
    /// Only runs of this workflow.
    pub workflow: Option<String>,
    /// Only runs in this status.
    pub status: Option<RunStatus>,
    /// Only runs started at or after this time.
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// Only runs started before this time.
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
    /// At most this many, newest first (default 100, at most 1000).
    pub limit: Option<usize>,
}

impl RunFilter {
    /// Whether a run passes the filter (its ticket aside: backends list by ticket).
    pub fn keeps(&self, h: &crate::run::journal::Header) -> bool {
        self.workflow.as_ref().is_none_or(|w| &h.workflow_id == w)
            && self.status.is_none_or(|s| h.status == s)
            && self.from.is_none_or(|from| h.created_at >= from)
            && self.to.is_none_or(|to| h.created_at < to)
    }

    /// Whether a run, and every older one, starts too early for the filter: runs are
    /// listed newest first, and numbers follow start times up to the moment it takes to
    /// allocate one, so a minute's margin is plenty.
    pub fn before_range(&self, h: &crate::run::journal::Header) -> bool {
        self.from.is_some_and(|from| h.created_at < from - chrono::Duration::minutes(1))
    }

    /// The page size to use.
    pub fn page_size(&self) -> usize {
        self.limit.unwrap_or(100).clamp(1, 1000)
    }
}

/// A time tickets are indexed by ([`super::TicketStore::tickets_by_time`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketTime {
    /// When it was logged (never changes).
    Created,
    /// For a ticket that is not open (resolved, closed): when it was last changed. An
    /// open ticket has none. A ticket open at some moment and not open now was changed
    /// since that moment, so "open now, or done since `t`" holds every ticket open at
    /// any time from `t` on: what a report's backlog reads instead of the whole desk.
    Done,
}

impl TicketTime {
    /// The ticket's time in this index, if it has one.
    pub fn of(self, t: &Ticket) -> Option<DateTime<Utc>> {
        match self {
            TicketTime::Created => Some(t.created_at),
            TicketTime::Done => (!t.status.is_open()).then_some(t.updated_at),
        }
    }
}
