//! Every key the sled store uses, in one place: one variant per record kind and one per
//! scan, each with its table's stable prefix. Numbers are big-endian, so a prefix scan
//! comes back in number order. A prefix, once written to a data directory, is never
//! reused for anything else: retired ones stay listed here.
//!
//! Retired: none yet (layout 1 kept a whole run under `r/`; layout 2 reused `r/` for the
//! header, and the migration rewrites every `r/` record before anything reads one).

use crate::store::DocKind;

/// A key, or (the plural variants) the prefix of a scan.
#[derive(Debug, Clone, Copy)]
pub(super) enum Key<'a> {
    /// `t/` ticket n: a ticket without its comments.
    Ticket(u64),
    /// Every ticket.
    Tickets,
    /// `tf/` ticket n: the values the ticket is indexed under (see `index`).
    TicketFields(u64),
    /// `tc/` ticket n, comment id: a comment.
    Comment(u64, u32),
    /// A ticket's comments.
    Comments(u64),
    /// `h/` ticket n, seq: a history entry.
    History(u64, u64),
    /// A ticket's history.
    HistoryOf(u64),
    /// `w/` id: a workflow record.
    Workflow(&'a str),
    /// Every workflow record.
    Workflows,
    /// `wv/` id `/` revision: a definition.
    Revision(&'a str, u32),
    /// A workflow's revisions.
    Revisions(&'a str),
    /// `r/` run n: a run header.
    Run(u64),
    /// Every run header.
    Runs,
    /// `rs/` run n: what started a run.
    RunStart(u64),
    /// `rj/` run n, seq: the journal entries one commit appended, from `seq` on (a
    /// layout-2 store has one entry per key).
    Journal(u64, u32),
    /// A run's journal.
    JournalOf(u64),
    /// `ra/` run n: the run has work to do.
    Active(u64),
    /// Every active run.
    Actives,
    /// `rt/` ticket n, run n: runs by ticket.
    RunOfTicket(u64, u64),
    /// A ticket's runs.
    RunsOfTicket(u64),
    /// `rw/` ticket n, run n: runs waiting on a ticket.
    Waiting(u64, u64),
    /// The runs waiting on a ticket.
    WaitingOn(u64),
    /// Every waiting run.
    Waitings,
    /// `e/` event n: an event.
    Event(u64),
    /// Every event.
    Events,
    /// `et/` ticket n, event n: events by ticket.
    EventOfTicket(u64, u64),
    /// A ticket's events.
    EventsOfTicket(u64),
    /// `ag/` id: an agent.
    Agent(&'a str),
    /// Every agent.
    Agents,
    /// `gr/` id: a group.
    Group(&'a str),
    /// Every group.
    Groups,
    /// `ao/` agent `\0` ticket n: an open assignment.
    Open(&'a str, u64),
    /// An agent's open assignments.
    OpenOf(&'a str),
    /// `rr/` group: the last agent round-robin chose.
    RoundRobin(&'a str),
    /// `au/` seq: an audit entry.
    Audit(u64),
    /// The audit log.
    Audits,
    /// `sla/` ticket n: a ticket's SLA clocks.
    Sla(u64),
    /// `cal/` id: a business calendar.
    Calendar(&'a str),
    /// Every calendar.
    Calendars,
    /// `slp/` id: an SLA policy.
    SlaPolicy(&'a str),
    /// Every SLA policy.
    SlaPolicies,
    /// `tm/` due (ms), timer key: a timer, so a range scan finds what is due.
    Timer(u64, &'a str),
    /// Timers due before this time (ms): the end of a range scan.
    TimersBefore(u64),
    /// Every timer.
    Timers,
    /// `tk/` timer key: the timer's `tm/` key.
    TimerIndex(&'a str),
    /// `p/` id: a plugin record.
    Plugin(&'a str),
    /// Every plugin record.
    Plugins,
    /// `pm/` id `/` version: module bytes (`modules` tree).
    Module(&'a str, &'a str),
    /// A plugin's modules.
    ModulesOf(&'a str),
    /// Every module.
    Modules,
    /// `pc/` id `/` version: compiled code (`modules` tree).
    Artifact(&'a str, &'a str),
    /// A plugin's compiled code.
    ArtifactsOf(&'a str),
    /// All compiled code.
    Artifacts,
    /// `pk/` plugin `\0` key: a plugin key-value entry.
    Kv(&'a str, &'a str),
    /// A plugin's key-value store.
    KvOf(&'a str),
    /// `d/<kind>/` id: a document.
    Doc(DocKind, &'a str),
    /// Every document of a kind.
    Docs(DocKind),
    /// `meta/format`: the layout version.
    Format,
}

impl Key<'_> {
    /// The key's bytes (or the scan's prefix).
    pub(super) fn bytes(&self) -> Vec<u8> {
        use Key::*;
        let (prefix, n, m): (&[u8], Option<u64>, Option<u64>) = match *self {
            Ticket(t) => (b"t/", Some(t), None),
            Tickets => (b"t/", None, None),
            TicketFields(t) => (b"tf/", Some(t), None),
            Comment(t, c) => return [&b"tc/"[..], &t.to_be_bytes(), &c.to_be_bytes()].concat(),
            Comments(t) => (b"tc/", Some(t), None),
            History(t, seq) => (b"h/", Some(t), Some(seq)),
            HistoryOf(t) => (b"h/", Some(t), None),
            Workflow(id) => return format!("w/{id}").into_bytes(),
            Workflows => (b"w/", None, None),
            Revision(id, r) => return [format!("wv/{id}/").as_bytes(), &r.to_be_bytes()].concat(),
            Revisions(id) => return format!("wv/{id}/").into_bytes(),
            Run(r) => (b"r/", Some(r), None),
            Runs => (b"r/", None, None),
            RunStart(r) => (b"rs/", Some(r), None),
            Journal(r, seq) => return [&b"rj/"[..], &r.to_be_bytes(), &seq.to_be_bytes()].concat(),
            JournalOf(r) => (b"rj/", Some(r), None),
            Active(r) => (b"ra/", Some(r), None),
            Actives => (b"ra/", None, None),
            RunOfTicket(t, r) => (b"rt/", Some(t), Some(r)),
            RunsOfTicket(t) => (b"rt/", Some(t), None),
            Waiting(t, r) => (b"rw/", Some(t), Some(r)),
            WaitingOn(t) => (b"rw/", Some(t), None),
            Waitings => (b"rw/", None, None),
            Event(e) => (b"e/", Some(e), None),
            Events => (b"e/", None, None),
            EventOfTicket(t, e) => (b"et/", Some(t), Some(e)),
            EventsOfTicket(t) => (b"et/", Some(t), None),
            Agent(id) => return format!("ag/{id}").into_bytes(),
            Agents => (b"ag/", None, None),
            Group(id) => return format!("gr/{id}").into_bytes(),
            Groups => (b"gr/", None, None),
            Open(agent, t) => return [format!("ao/{agent}\0").as_bytes(), &t.to_be_bytes()].concat(),
            OpenOf(agent) => return format!("ao/{agent}\0").into_bytes(),
            RoundRobin(group) => return format!("rr/{group}").into_bytes(),
            Audit(seq) => (b"au/", Some(seq), None),
            Audits => (b"au/", None, None),
            Sla(t) => (b"sla/", Some(t), None),
            Calendar(id) => return format!("cal/{id}").into_bytes(),
            Calendars => (b"cal/", None, None),
            SlaPolicy(id) => return format!("slp/{id}").into_bytes(),
            SlaPolicies => (b"slp/", None, None),
            Timer(due, key) => return [&b"tm/"[..], &due.to_be_bytes(), key.as_bytes()].concat(),
            TimersBefore(due) => (b"tm/", Some(due), None),
            Timers => (b"tm/", None, None),
            TimerIndex(key) => return format!("tk/{key}").into_bytes(),
            Plugin(id) => return format!("p/{id}").into_bytes(),
            Plugins => (b"p/", None, None),
            Module(id, v) => return format!("pm/{id}/{v}").into_bytes(),
            ModulesOf(id) => return format!("pm/{id}/").into_bytes(),
            Modules => (b"pm/", None, None),
            Artifact(id, v) => return format!("pc/{id}/{v}").into_bytes(),
            ArtifactsOf(id) => return format!("pc/{id}/").into_bytes(),
            Artifacts => (b"pc/", None, None),
            Kv(plugin, key) => return format!("pk/{plugin}\0{key}").into_bytes(),
            KvOf(plugin) => return format!("pk/{plugin}\0").into_bytes(),
            Doc(kind, id) => return format!("{}{id}", kind.prefix()).into_bytes(),
            Docs(kind) => return kind.prefix().as_bytes().to_vec(),
            Format => return b"meta/format".to_vec(),
        };
        let mut k = prefix.to_vec();
        k.extend(n.iter().chain(m.iter()).flat_map(|x| x.to_be_bytes()));
        k
    }
}

#[cfg(test)]
mod tests {
    use super::Key;

    /// The bytes are the layout: a change here would orphan every stored record.
    #[test]
    fn keys_keep_their_stored_layout() {
        assert_eq!(Key::Ticket(1).bytes(), b"t/\0\0\0\0\0\0\0\x01");
        assert_eq!(Key::Comment(1, 2).bytes(), b"tc/\0\0\0\0\0\0\0\x01\0\0\0\x02");
        assert_eq!(Key::Journal(3, 4).bytes(), b"rj/\0\0\0\0\0\0\0\x03\0\0\0\x04");
        assert_eq!(Key::RunOfTicket(1, 3).bytes(), b"rt/\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x03");
        assert_eq!(Key::Revision("w", 2).bytes(), b"wv/w/\0\0\0\x02");
        assert_eq!(Key::Open("alice", 1).bytes(), b"ao/alice\0\0\0\0\0\0\0\0\x01");
        assert_eq!(Key::Timer(5, "sla:T-1").bytes(), b"tm/\0\0\0\0\0\0\0\x05sla:T-1");
        assert_eq!(Key::Kv("p", "k").bytes(), b"pk/p\0k");
        assert_eq!(Key::Format.bytes(), b"meta/format");
        assert!(Key::Ticket(7).bytes().starts_with(&Key::Tickets.bytes()));
        assert!(Key::Journal(3, 9).bytes().starts_with(&Key::JournalOf(3).bytes()));
    }
}
