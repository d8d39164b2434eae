//! The ticket status lifecycle and which transitions it allows.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a ticket stands in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Logged, nobody owns it yet.
    New,
    /// Owned by an agent, not yet worked on.
    Assigned,
    /// Being worked on.
    InProgress,
    /// Waiting on someone else (customer, vendor): SLA clocks may pause.
    Pending,
    /// Fixed; the requester may still reopen it.
    Resolved,
    /// Final.
    Closed,
    /// Resolved once, then reopened by the requester or an agent.
    Reopened,
}

impl Status {
    /// Every status, for error messages and schemas.
    pub const ALL: [Status; 7] = [
        Status::New,
        Status::Assigned,
        Status::InProgress,
        Status::Pending,
        Status::Resolved,
        Status::Closed,
        Status::Reopened,
    ];

    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Assigned => "assigned",
            Status::InProgress => "in_progress",
            Status::Pending => "pending",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
            Status::Reopened => "reopened",
        }
    }

    /// Whether work on the ticket is still owed (it counts against agent capacity).
    pub fn is_open(self) -> bool {
        !matches!(self, Status::Resolved | Status::Closed)
    }

    /// The statuses a ticket may move to from this one.
    pub fn next(self) -> &'static [Status] {
        use Status::*;
        match self {
            New => &[Assigned, InProgress, Pending, Resolved, Closed],
            Assigned => &[New, InProgress, Pending, Resolved, Closed],
            InProgress => &[Assigned, Pending, Resolved],
            Pending => &[Assigned, InProgress, Resolved],
            Resolved => &[Closed, Reopened],
            Closed => &[],
            Reopened => &[Assigned, InProgress, Pending, Resolved],
        }
    }

    /// Whether `self -> to` is allowed. Staying put is always allowed.
    pub fn can_move_to(self, to: Status) -> bool {
        self == to || self.next().contains(&to)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_is_final_and_resolved_can_reopen() {
        assert!(Status::Closed.next().is_empty());
        assert!(Status::Resolved.can_move_to(Status::Reopened));
        assert!(!Status::New.can_move_to(Status::Reopened));
        assert!(!Status::Closed.can_move_to(Status::New));
    }
}
