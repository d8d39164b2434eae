//! The ticket: what a service desk works on.
//!
//! - [`Ticket`] is the stored record; [`NewTicket`] is what callers submit.
//! - [`fields`] is the one place that knows each field's name, type and whether it can
//!   be written, so the HTTP API, workflow `set` steps and conditions agree.
//! - [`priority`] holds the impact x urgency matrix, [`status`] the lifecycle.

pub mod fields;
pub mod priority;
pub mod status;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use fields::{FieldChange, FieldError};
pub use priority::PriorityMatrix;
pub use status::Status;

/// The ITIL record types a desk handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Something is broken.
    #[default]
    Incident,
    /// Someone wants something (access, a laptop, an account).
    ServiceRequest,
    /// The cause behind one or more incidents.
    Problem,
    /// A piece of work, often a child of another ticket.
    Task,
}

/// Impact or urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Many people or a critical service.
    High,
    /// The usual.
    #[default]
    Medium,
    /// One person, with a workaround.
    Low,
}

/// P1 (drop everything) to P4 (when there is time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Priority {
    /// Critical.
    P1,
    /// High.
    P2,
    /// Moderate.
    P3,
    /// Low.
    P4,
}

/// A public reply or an internal note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    /// Position in the ticket's comment list, from 1.
    pub id: u32,
    /// Who wrote it: a user name, or `workflow:<id>` for automation.
    pub author: String,
    /// The text.
    pub body: String,
    /// Internal notes are not shown to the requester.
    pub internal: bool,
    /// When it was written.
    pub at: DateTime<Utc>,
}

/// How two tickets relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// The other ticket is this one's parent.
    Parent,
    /// The other ticket is this one's child.
    Child,
    /// This ticket duplicates the other one.
    DuplicateOf,
    /// Loosely related.
    Related,
}

/// A link to another ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// What the other ticket is to this one.
    pub kind: LinkKind,
    /// The other ticket's id.
    pub ticket: String,
}

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    /// `T-<n>`, assigned by the store.
    pub id: String,
    /// Incident, service request, problem or task.
    pub kind: Kind,
    /// One line.
    pub title: String,
    /// Free text.
    pub description: String,
    /// Who asked.
    pub requester: String,
    /// How many are hurt.
    pub impact: Level,
    /// How fast it must be fixed.
    pub urgency: Level,
    /// Derived from impact x urgency unless set explicitly.
    pub priority: Priority,
    /// Lifecycle state.
    pub status: Status,
    /// E.g. `network`, `access`.
    pub category: Option<String>,
    /// The owning group.
    pub group: Option<String>,
    /// The owning agent.
    pub assignee: Option<String>,
    /// Free labels.
    pub tags: Vec<String>,
    /// Where it came from (portal, email, phone, webhook...).
    pub channel: Option<String>,
    /// The id in the system that sent it, for webhook updates.
    pub external_id: Option<String>,
    /// Site-specific fields.
    pub custom: Map<String, Value>,
    /// Replies and notes, oldest first.
    pub comments: Vec<Comment>,
    /// Parent / child / duplicate links.
    pub links: Vec<Link>,
    /// Child tickets still open (`ticket.open_children` in conditions): kept by the engine
    /// as children open, resolve and reopen, each change an update event on this ticket,
    /// so a run can `wait` until it is 0. A ticket with open children cannot be resolved.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub open_children: u32,
    /// When it was logged.
    pub created_at: DateTime<Utc>,
    /// Last change of any kind.
    pub updated_at: DateTime<Utc>,
    /// When it last became resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When it was closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Counts the ticket's stored changes: 1 when it is logged, one more with every
    /// commit that changes it. A write computed from an older version is refused (the
    /// store's optimistic check), so two writers can never overwrite each other blindly.
    /// A ticket stored before versions reads as version 1.
    #[serde(default = "first_version")]
    pub version: u64,
}

impl Ticket {
    /// The blank ticket that runs without a ticket (schedules without `tickets`) see:
    /// empty id and text, default levels. Validation keeps such runs from writing to it.
    pub fn placeholder(now: DateTime<Utc>) -> Ticket {
        NewTicket::default().into_ticket(String::new(), &PriorityMatrix::default(), now)
    }
}

/// What a caller submits to log a ticket. Only `title` and `requester` are required.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    /// Defaults to incident.
    #[serde(default)]
    pub kind: Kind,
    /// One line, 1 to 500 characters.
    pub title: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Who asked.
    pub requester: String,
    /// Defaults to medium.
    #[serde(default)]
    pub impact: Level,
    /// Defaults to medium.
    #[serde(default)]
    pub urgency: Level,
    /// Overrides the matrix.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// E.g. `network`.
    #[serde(default)]
    pub category: Option<String>,
    /// Owning group.
    #[serde(default)]
    pub group: Option<String>,
    /// Owning agent (the status becomes `assigned`).
    #[serde(default)]
    pub assignee: Option<String>,
    /// Free labels.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Where it came from.
    #[serde(default)]
    pub channel: Option<String>,
    /// The sender's id.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Site-specific fields.
    #[serde(default)]
    pub custom: Map<String, Value>,
    /// Links to other tickets.
    #[serde(default)]
    pub links: Vec<Link>,
}

/// The longest title accepted.
pub const MAX_TITLE: usize = 500;

impl NewTicket {
    /// Checks what serde cannot: lengths and emptiness. Returns `(json pointer, message)`.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.title.trim().is_empty() {
            return Err(("/title".into(), "title must not be empty".into()));
        }
        if self.title.chars().count() > MAX_TITLE {
            return Err(("/title".into(), format!("title is longer than {MAX_TITLE} characters")));
        }
        if self.requester.trim().is_empty() {
            return Err(("/requester".into(), "requester must not be empty".into()));
        }
        Ok(())
    }

    /// Builds the stored ticket.
    pub fn into_ticket(self, id: String, matrix: &PriorityMatrix, now: DateTime<Utc>) -> Ticket {
        let priority = self.priority.unwrap_or_else(|| matrix.priority(self.impact, self.urgency));
        let status = if self.assignee.is_some() { Status::Assigned } else { Status::New };
        Ticket {
            id,
            kind: self.kind,
            title: self.title,
            description: self.description,
            requester: self.requester,
            impact: self.impact,
            urgency: self.urgency,
            priority,
            status,
            category: self.category,
            group: self.group,
            assignee: self.assignee,
            tags: self.tags,
            channel: self.channel,
            external_id: self.external_id,
            custom: self.custom,
            comments: Vec::new(),
            links: self.links,
            open_children: 0,
            created_at: now,
            updated_at: now,
            resolved_at: None,
            closed_at: None,
            version: 0,
        }
    }
}

fn first_version() -> u64 {
    1
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Ticket {
    /// The tickets this one is a child of.
    pub fn parents(&self) -> impl Iterator<Item = &str> {
        self.links.iter().filter(|l| l.kind == LinkKind::Parent).map(|l| l.ticket.as_str())
    }

    /// The tickets that are this one's children.
    pub fn children(&self) -> impl Iterator<Item = &str> {
        self.links.iter().filter(|l| l.kind == LinkKind::Child).map(|l| l.ticket.as_str())
    }

    /// Adds a comment and returns it.
    pub fn add_comment(&mut self, author: &str, body: &str, internal: bool, now: DateTime<Utc>) -> Comment {
        let comment = Comment {
            id: self.comments.len() as u32 + 1,
            author: author.to_string(),
            body: body.to_string(),
            internal,
            at: now,
        };
        self.comments.push(comment.clone());
        self.updated_at = now;
        comment
    }
}
