-- Switchboard's PostgreSQL schema, version 1. Applied at start (and by `switchboard
-- migrate`) inside one transaction; `meta.schema` records the version applied.
-- Records are JSON text as the engine encodes them (text, not jsonb: they read back byte
-- for byte); what is queried is in columns of its own.

CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL);

CREATE SEQUENCE IF NOT EXISTS ticket_numbers;
CREATE SEQUENCE IF NOT EXISTS run_numbers;
CREATE SEQUENCE IF NOT EXISTS event_numbers;
CREATE SEQUENCE IF NOT EXISTS doc_numbers;

-- One row per ticket; `version` is checked and bumped by every write (optimistic).
CREATE TABLE IF NOT EXISTS tickets (
    n bigint PRIMARY KEY,
    version bigint NOT NULL,
    status text NOT NULL,
    priority text NOT NULL,
    grp text,
    assignee text,
    category text,
    requester text NOT NULL,
    created_at timestamptz NOT NULL,
    done_at timestamptz,
    body text NOT NULL
);
CREATE INDEX IF NOT EXISTS tickets_status ON tickets (status, n);
CREATE INDEX IF NOT EXISTS tickets_priority ON tickets (priority, n);
CREATE INDEX IF NOT EXISTS tickets_grp ON tickets (grp, n);
CREATE INDEX IF NOT EXISTS tickets_assignee ON tickets (assignee, n);
CREATE INDEX IF NOT EXISTS tickets_category ON tickets (category, n);
CREATE INDEX IF NOT EXISTS tickets_requester ON tickets (requester, n);
CREATE INDEX IF NOT EXISTS tickets_created ON tickets (created_at, n);
CREATE INDEX IF NOT EXISTS tickets_done ON tickets (done_at, n) WHERE done_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS comments (
    ticket bigint NOT NULL, id bigint NOT NULL, body text NOT NULL, PRIMARY KEY (ticket, id)
);
CREATE TABLE IF NOT EXISTS history (seq bigserial PRIMARY KEY, ticket bigint NOT NULL, body text NOT NULL);
CREATE INDEX IF NOT EXISTS history_ticket ON history (ticket, seq);

CREATE TABLE IF NOT EXISTS workflows (id text PRIMARY KEY, body text NOT NULL);
CREATE TABLE IF NOT EXISTS revisions (
    id text NOT NULL, revision bigint NOT NULL, body text NOT NULL, PRIMARY KEY (id, revision)
);

-- A run is a small header row plus its start record and one row per journal entry.
CREATE TABLE IF NOT EXISTS runs (
    n bigint PRIMARY KEY,
    ticket bigint,
    workflow text NOT NULL,
    status text NOT NULL,
    active boolean NOT NULL,
    waiting boolean NOT NULL,
    created_at timestamptz NOT NULL,
    finished_at timestamptz,
    header text NOT NULL,
    start text NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_ticket ON runs (ticket, n);
CREATE INDEX IF NOT EXISTS runs_active ON runs (n) WHERE active;
CREATE INDEX IF NOT EXISTS runs_waiting ON runs (ticket, n) WHERE waiting;
CREATE TABLE IF NOT EXISTS journal (
    run bigint NOT NULL, seq bigint NOT NULL, body text NOT NULL, PRIMARY KEY (run, seq)
);

CREATE TABLE IF NOT EXISTS events (n bigint PRIMARY KEY, ticket bigint, at timestamptz NOT NULL, body text NOT NULL);
CREATE INDEX IF NOT EXISTS events_ticket ON events (ticket, n);

CREATE TABLE IF NOT EXISTS agents (id text PRIMARY KEY, body text NOT NULL);
CREATE TABLE IF NOT EXISTS groups (id text PRIMARY KEY, body text NOT NULL);
CREATE TABLE IF NOT EXISTS open_assignments (agent text NOT NULL, ticket bigint NOT NULL, PRIMARY KEY (agent, ticket));
CREATE TABLE IF NOT EXISTS round_robin (grp text PRIMARY KEY, agent text NOT NULL);
CREATE TABLE IF NOT EXISTS audit (seq bigserial PRIMARY KEY, at timestamptz NOT NULL, body text NOT NULL);

CREATE TABLE IF NOT EXISTS sla (ticket bigint PRIMARY KEY, body text NOT NULL);
CREATE TABLE IF NOT EXISTS calendars (id text PRIMARY KEY, body text NOT NULL);
CREATE TABLE IF NOT EXISTS sla_policies (id text PRIMARY KEY, body text NOT NULL);
-- Timers due by `due`; the key replaces.
CREATE TABLE IF NOT EXISTS timers (key text PRIMARY KEY, due timestamptz NOT NULL, body text NOT NULL);
CREATE INDEX IF NOT EXISTS timers_due ON timers (due, key);

CREATE TABLE IF NOT EXISTS plugins (id text PRIMARY KEY, body text NOT NULL);
CREATE TABLE IF NOT EXISTS plugin_modules (
    id text NOT NULL, version text NOT NULL, module bytea, artifact bytea, PRIMARY KEY (id, version)
);
CREATE TABLE IF NOT EXISTS plugin_kv (plugin text NOT NULL, key text NOT NULL, value text NOT NULL, PRIMARY KEY (plugin, key));

-- Small documents by kind and id (approvals, webhook endpoints, deliveries...).
CREATE TABLE IF NOT EXISTS docs (kind text NOT NULL, id text COLLATE "C" NOT NULL, body bytea NOT NULL, PRIMARY KEY (kind, id));
