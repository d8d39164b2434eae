//! Agents and the groups they work in: the people routing chooses between.

use serde::{Deserialize, Serialize};

/// A person who works tickets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// Login name, e.g. `alice`.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// E-mail address for notifications.
    #[serde(default)]
    pub email: Option<String>,
    /// Groups the agent works in.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Skills used by skills-based routing, e.g. `cisco`, `german`.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Most open tickets the agent should hold; routing skips agents at capacity.
    #[serde(default = "default_capacity")]
    pub capacity: u32,
    /// Whether the agent is working now; routing skips off-shift agents by default.
    #[serde(default = "default_true")]
    pub on_shift: bool,
    /// The agent's manager (an agent id), for hierarchical escalation.
    #[serde(default)]
    pub manager: Option<String>,
    /// An absence during which approvals go to a delegate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_office: Option<OutOfOffice>,
}

/// An absence: approval requests made between `from` and `until` go to `delegate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutOfOffice {
    /// Start.
    pub from: chrono::DateTime<chrono::Utc>,
    /// End.
    pub until: chrono::DateTime<chrono::Utc>,
    /// The agent who decides meanwhile.
    pub delegate: String,
}

impl Agent {
    /// The delegate acting for this agent at `now`, if they are out of office.
    pub fn delegate_at(&self, now: chrono::DateTime<chrono::Utc>) -> Option<&OutOfOffice> {
        self.out_of_office.as_ref().filter(|o| o.from <= now && now < o.until && o.delegate != self.id)
    }
}

fn default_capacity() -> u32 {
    10
}

fn default_true() -> bool {
    true
}

/// A team that owns tickets, e.g. `network` or `service-desk`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Short name used in workflows, e.g. `network`.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// What the group handles.
    #[serde(default)]
    pub description: String,
    /// The group's manager (an agent id).
    #[serde(default)]
    pub manager: Option<String>,
}

/// Checks an id used in URLs and keys: 1-64 characters of `[A-Za-z0-9._-]`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
