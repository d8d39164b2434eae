//! Switchboard: a workflow automation engine for IT service desks.
//!
//! Layout, lower layers first (each depends only on those above it):
//!
//! | module | what |
//! |---|---|
//! | [`clock`] | injected time |
//! | [`json`] | strict JSON parsing: duplicate keys and NUL refused; JSON pointers (pure) |
//! | [`ticket`] | the ticket model: fields, priority matrix, status lifecycle |
//! | [`actor`] | who acted: person, requester, automation, integration (pure) |
//! | [`team`] | agents and groups |
//! | [`condition`] | conditions over a ticket, its event and run variables, recording each comparison (pure) |
//! | [`routing`] | choosing an agent (pure) |
//! | [`calendar`] | business calendars: time zones, DST, holidays (pure) |
//! | [`sla`] | SLA clocks: pause, retarget, warnings, breach, next due time (pure) |
//! | [`schedule`] | cron expressions in a time zone, catch-up after downtime (pure) |
//! | [`approval`] | approval stages, counting policies, signed decision links (pure) |
//! | [`webhook`] | inbound webhook endpoints: mapping, rate limits (pure) |
//! | [`workflow`] | the workflow language: types, templates, validation, analysis (pure) |
//! | [`run`] | records: events, runs (a header plus an append-only journal), history, audit |
//! | [`manifest`] | plugin manifests (the actions a module declares) and plugin records (pure) |
//! | [`store`] | async storage traits, optimistic expectations (ticket versions, run journals), the sled backend with group commit, the in-memory backend, the contract every backend passes |
//! | [`secret`] | secrets sealed at rest (XChaCha20-Poly1305) |
//! | [`notify`] | signed outbound webhooks: retries, dead letters |
//! | [`plugin`] | the WebAssembly plugin host (wasmtime): install, one invocation and its host calls |
//! | [`metrics`] | Prometheus counters and histograms |
//! | [`report`] | the manager's reports: SLA %, FCR, MTTR, backlog, CSAT, deflection (pure) |
//! | [`config`] | the server's configuration: one typed struct, defaults < file < env < flags |
//! | [`setup`] | configuration as code: a directory of workflows, SLA files, webhooks, grants |
//! | [`executor`] | the engine: the ticket service, dispatch, the run runtime (queue, workers, timers), the driver and one module per step type (load, then a pure plan); services return typed results |
//! | [`api`] | the HTTP API |
//! | [`console`] | the web console: server-rendered pages over the same services, sessions, CSRF |
//! | [`tls`] | HTTPS certificates, reloaded on SIGHUP |
//! | [`server`] | `run(listener, shutdown)`: HTTP or HTTPS, connection limits, HSTS |
//! | [`cli`], [`demo`] | the command line, demo data |

/// The allocator the binaries use: under many small allocations from many threads
/// (JSON, sled nodes, tasks) glibc malloc took ~12 % of CPU in the webhook benchmark.
pub type Allocator = mimalloc::MiMalloc;

/// The git commit this binary was built from (`SWITCHBOARD_COMMIT` at build time, set by
/// `engine/build.rs` from `git rev-parse`), or `unknown`.
pub const BUILD_COMMIT: &str = env!("SWITCHBOARD_COMMIT");

/// What `switchboard --version` prints: the version and the commit.
pub const LONG_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("SWITCHBOARD_COMMIT"), ")");

pub mod actor;
pub mod api;
pub mod approval;
pub mod calendar;
pub mod cli;
pub mod clock;
pub mod condition;
pub mod config;
pub mod console;
pub mod demo;
pub mod executor;
pub mod json;
pub mod manifest;
pub mod metrics;
pub mod notify;
pub mod plugin;
pub mod report;
pub mod routing;
pub mod run;
pub mod schedule;
pub mod secret;
pub mod server;
pub mod setup;
pub mod sla;
pub mod store;
pub mod team;
pub mod ticket;
pub mod tls;
pub mod webhook;
pub mod workflow;
