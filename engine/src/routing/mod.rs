//! Choosing an agent for a ticket.
//!
//! Pure: the caller supplies the agents, their current open-ticket counts and the
//! round-robin cursor, and gets back a [`Decision`] that explains itself (who was
//! considered, who was skipped and why) for the run trace.

use crate::team::Agent;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How to choose among a group's agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Take turns, in agent-id order, skipping agents at capacity.
    RoundRobin,
    /// The agent with the fewest open tickets (ties: agent id), under capacity.
    LeastLoaded,
    /// Agents having every required skill, then least-loaded among them.
    Skills,
}

/// Why an agent was not chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The agent.
    pub agent: String,
    /// Why: `off_shift`, `at_capacity (10/10)`, `missing skills: cisco`.
    pub reason: String,
}

/// The outcome of routing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The chosen agent, if any was eligible.
    pub agent: Option<String>,
    /// Eligible agents with their open-ticket counts, in id order.
    pub eligible: Vec<(String, u32)>,
    /// Agents of the group that were ruled out.
    pub skipped: Vec<Skipped>,
    /// The round-robin cursor to store (the chosen agent's id).
    pub cursor: Option<String>,
}

/// What routing needs to know.
pub struct Request<'a> {
    /// The group's agents.
    pub agents: &'a [Agent],
    /// Open tickets per agent id.
    pub load: &'a HashMap<String, u32>,
    /// The strategy.
    pub strategy: Strategy,
    /// Required skills.
    pub skills: &'a [String],
    /// Skip off-shift agents.
    pub on_shift_only: bool,
    /// The last agent round-robin chose in this group.
    pub cursor: Option<&'a str>,
}

/// Chooses an agent.
pub fn choose(req: &Request<'_>) -> Decision {
    let mut agents: Vec<&Agent> = req.agents.iter().collect();
    agents.sort_by(|a, b| a.id.cmp(&b.id));
    let mut eligible = Vec::new();
    let mut skipped = Vec::new();
    for a in agents {
        let load = req.load.get(&a.id).copied().unwrap_or(0);
        let missing: Vec<&str> = req
            .skills
            .iter()
            .filter(|s| !a.skills.iter().any(|have| have.eq_ignore_ascii_case(s)))
            .map(String::as_str)
            .collect();
        let reason = if req.on_shift_only && !a.on_shift {
            Some("off_shift".to_string())
        } else if load >= a.capacity {
            Some(format!("at_capacity ({load}/{})", a.capacity))
        } else if !missing.is_empty() {
            Some(format!("missing skills: {}", missing.join(", ")))
        } else {
            None
        };
        match reason {
            Some(reason) => skipped.push(Skipped { agent: a.id.clone(), reason }),
            None => eligible.push((a.id.clone(), load)),
        }
    }
    let agent = match req.strategy {
        Strategy::RoundRobin => {
            let after = req.cursor.unwrap_or("");
            eligible.iter().find(|(id, _)| id.as_str() > after).or_else(|| eligible.first()).map(|(id, _)| id.clone())
        }
        Strategy::LeastLoaded | Strategy::Skills => {
            eligible.iter().min_by_key(|(id, load)| (*load, id.clone())).map(|(id, _)| id.clone())
        }
    };
    Decision { cursor: agent.clone(), agent, eligible, skipped }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, capacity: u32, on_shift: bool, skills: &[&str]) -> Agent {
        Agent {
            id: id.into(),
            name: id.into(),
            email: None,
            groups: vec!["net".into()],
            skills: skills.iter().map(|s| s.to_string()).collect(),
            capacity,
            on_shift,
            manager: None,
            out_of_office: None,
        }
    }

    fn run(
        strategy: Strategy,
        agents: &[Agent],
        load: &[(&str, u32)],
        skills: &[&str],
        cursor: Option<&str>,
    ) -> Decision {
        let load = load.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let skills: Vec<String> = skills.iter().map(|s| s.to_string()).collect();
        choose(&Request { agents, load: &load, strategy, skills: &skills, on_shift_only: true, cursor })
    }

    #[test]
    fn round_robin_takes_turns_and_wraps() {
        let agents = [agent("a", 5, true, &[]), agent("b", 5, true, &[]), agent("c", 5, true, &[])];
        let mut cursor = None;
        let mut picks = Vec::new();
        for _ in 0..4 {
            let d = run(Strategy::RoundRobin, &agents, &[], &[], cursor.as_deref());
            picks.push(d.agent.clone().unwrap());
            cursor = d.cursor;
        }
        assert_eq!(picks, ["a", "b", "c", "a"]);
    }

    #[test]
    fn least_loaded_respects_capacity_and_shift() {
        let agents = [agent("a", 2, true, &[]), agent("b", 5, true, &[]), agent("c", 5, false, &[])];
        let d = run(Strategy::LeastLoaded, &agents, &[("a", 2), ("b", 4), ("c", 0)], &[], None);
        assert_eq!(d.agent.as_deref(), Some("b"));
        let reasons: Vec<&str> = d.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(reasons, ["at_capacity (2/2)", "off_shift"]);
    }

    #[test]
    fn skills_need_all_of_them() {
        let agents = [agent("a", 5, true, &["cisco"]), agent("b", 5, true, &["cisco", "German"])];
        let d = run(Strategy::Skills, &agents, &[("b", 3)], &["cisco", "german"], None);
        assert_eq!(d.agent.as_deref(), Some("b"));
        let none = run(Strategy::Skills, &agents, &[], &["juniper"], None);
        assert_eq!(none.agent, None);
    }
}
