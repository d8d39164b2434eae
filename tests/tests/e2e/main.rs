//! End-to-end tests: real switchboard processes (or the engine in-process) over real
//! HTTP on loopback, real sled files, real WASM plugins, real slapd, and the Graph fake.
//!
//! One test binary rather than one per file: each binary links the whole engine
//! (wasmtime, cranelift, sled), so seventeen of them cost a gigabyte of disk and as many
//! slow links. `cargo test -p switchboard-tests --test e2e crash::` runs one module.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod api;
mod approvals;
mod backup;
mod browser;
mod burst;
mod cli;
mod console;
mod console_admin;
mod contract;
mod crash;
mod cron_model;
mod disk;
mod explain;
mod faults;
mod hardening;
mod identity;
mod journal;
mod loops;
mod openapi;
mod plugins;
mod postgres;
mod properties;
mod queue;
mod reports;
mod retention;
mod runs;
mod schedule;
mod time;
mod tls;
mod upgrade;
mod versions;
mod webhooks;
