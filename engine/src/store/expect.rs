//! Optimistic expectations: what a transaction's writes expect the store to hold, and the
//! one check every backend runs against them before it applies the transaction.

use super::{Error, Result, Tx, Write};

/// What a ticket write expects the store to hold: its id, the version expected (none
/// for a new ticket), the version written.
pub(crate) type Expectation<'a> = (&'a str, Option<u64>, u64);

/// The expectations of a transaction's ticket writes, in order.
pub(crate) fn ticket_expectations(tx: &Tx) -> impl Iterator<Item = Expectation<'_>> {
    tx.writes.iter().filter_map(|w| match w {
        Write::Ticket { ticket, expect, .. } => Some((ticket.id.as_str(), *expect, ticket.version)),
        _ => None,
    })
}

/// Refuses ticket writes that expect versions the store does not hold: `stored(id)` is
/// the version a backend holds (none when no such ticket); a ticket written earlier in
/// the same transaction counts as held at the version written.
pub(crate) fn check_ticket_versions<'a>(
    expectations: impl IntoIterator<Item = Expectation<'a>>,
    mut stored: impl FnMut(&str) -> Result<Option<u64>>,
) -> Result<()> {
    // A transaction writes a ticket or two: a list beats a map.
    let mut here: Vec<(&str, u64)> = Vec::new();
    for (id, expect, version) in expectations {
        let held = match here.iter().rev().find(|(i, _)| *i == id) {
            Some((_, v)) => Some(*v),
            None => stored(id)?,
        };
        if held != expect {
            let show = |v: Option<u64>| v.map_or_else(|| "none".to_string(), |v| v.to_string());
            return Err(Error::Conflict(format!(
                "ticket {id} (version {} expected, {} stored)",
                show(expect),
                show(held)
            )));
        }
        here.push((id, version));
    }
    Ok(())
}
