//! Impact x urgency -> priority, the ITIL matrix. Admins may replace the default
//! table in the configuration; every cell must be filled.

use super::{Level, Priority};
use serde::{Deserialize, Serialize};

/// Priority for each `impact` (outer key) and `urgency` (inner key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityMatrix {
    /// Row for high impact.
    pub high: Row,
    /// Row for medium impact.
    pub medium: Row,
    /// Row for low impact.
    pub low: Row,
}

/// One impact row: the priority for each urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    /// Priority at high urgency.
    pub high: Priority,
    /// Priority at medium urgency.
    pub medium: Priority,
    /// Priority at low urgency.
    pub low: Priority,
}

impl Default for PriorityMatrix {
    fn default() -> Self {
        use Priority::*;
        Self {
            high: Row { high: P1, medium: P2, low: P3 },
            medium: Row { high: P2, medium: P3, low: P4 },
            low: Row { high: P3, medium: P4, low: P4 },
        }
    }
}

impl PriorityMatrix {
    /// The priority for a ticket of this impact and urgency.
    pub fn priority(&self, impact: Level, urgency: Level) -> Priority {
        let row = match impact {
            Level::High => &self.high,
            Level::Medium => &self.medium,
            Level::Low => &self.low,
        };
        match urgency {
            Level::High => row.high,
            Level::Medium => row.medium,
            Level::Low => row.low,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_matrix_follows_itil() {
        let m = PriorityMatrix::default();
        assert_eq!(m.priority(Level::High, Level::High), Priority::P1);
        assert_eq!(m.priority(Level::High, Level::Low), Priority::P3);
        assert_eq!(m.priority(Level::Medium, Level::Medium), Priority::P3);
        assert_eq!(m.priority(Level::Low, Level::Low), Priority::P4);
    }
}
