//! Who did something to a ticket: a person, the requester, automation, or an integration.
//!
//! Reports (deflection, first-contact resolution) and SLA policies (which replies stop the
//! response clock) ask what *kind* of actor made a change, not merely whether it was the
//! requester. Actors are recorded as names: a token's name (`demo-agent`), a person named
//! by an integration posting on their behalf, or an automation prefix (`workflow:<id>`,
//! `webhook:<endpoint>`, `sla:<policy>`, `schedule`...). Tokens are people unless their
//! role is `integrator` or their configuration says `kind = "integration"` (a portal, a
//! monitoring system, a mail gateway).

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What kind of actor made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An agent or admin: human work on the ticket.
    Person,
    /// The ticket's requester.
    Requester,
    /// A workflow, an inbound webhook mapping, the SLA engine, a schedule, an expiry.
    Automation,
    /// A system acting through a token: a portal, monitoring, HR, a mail gateway.
    Integration,
}

impl Kind {
    /// The name used in configuration and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Person => "person",
            Kind::Requester => "requester",
            Kind::Automation => "automation",
            Kind::Integration => "integration",
        }
    }
}

/// Prefixes of the actor names the engine itself records.
const AUTOMATION: [&str; 8] = ["workflow:", "webhook:", "sla:", "schedule", "expiry", "reminder", "plugin:", "system:"];

/// Classifies actor names; built once from the configured tokens.
#[derive(Debug, Clone, Default)]
pub struct Actors {
    integrations: BTreeSet<String>,
}

impl Actors {
    /// Classifies the names in `integrations` as integrations (the configuration's
    /// integration tokens, see `config::Config::integrations`), other names as people.
    pub fn new(integrations: impl IntoIterator<Item = String>) -> Self {
        Self { integrations: integrations.into_iter().collect() }
    }

    /// What kind of actor `actor` is on a ticket requested by `requester`.
    pub fn kind(&self, actor: &str, requester: &str) -> Kind {
        if actor == requester {
            Kind::Requester
        } else if AUTOMATION.iter().any(|p| actor.starts_with(p)) {
            Kind::Automation
        } else if self.integrations.contains(actor) {
            Kind::Integration
        } else {
            Kind::Person
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_people_unless_integrations_or_automation() {
        let actors = Actors::new(["portal".to_string(), "monitoring".to_string()]);
        assert_eq!(actors.kind("alice", "bob"), Kind::Person);
        assert_eq!(actors.kind("bob", "bob"), Kind::Requester);
        assert_eq!(actors.kind("portal", "bob"), Kind::Integration);
        assert_eq!(actors.kind("monitoring", "bob"), Kind::Integration);
        assert_eq!(actors.kind("workflow:auto", "bob"), Kind::Automation);
        assert_eq!(actors.kind("webhook:hr", "bob"), Kind::Automation);
        assert_eq!(actors.kind("someone-else", "bob"), Kind::Person, "a name no token has is a person");
    }
}
