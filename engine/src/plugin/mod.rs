//! The WebAssembly plugin host: a narrow wrapper around wasmtime.
//!
//! - [`manifest`]: reading a module's ABI version and manifest without running it;
//! - [`sandbox`]: limits, host functions, the reduced WASI;
//! - [`net`]: outbound HTTP through admin-configured connections;
//! - [`directory`]: LDAP through admin-configured directory connections;
//! - this file: the [`PluginHost`] (engine configuration, the epoch ticker, install,
//!   the compiled-module cache, and calls with back-pressure).
//!
//! Every call gets a fresh instance from a pre-linked [`InstancePre`] in the pooling
//! allocator, so nothing survives from one call to the next.

pub mod directory;
pub mod fuzz_guest;
pub mod manifest;
pub mod net;
pub mod sandbox;

use crate::store::{Store, Tx, Write};
use manifest::{inspect, InspectError, PluginRecord};
use sandbox::{Ctx, Limits, Services};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, InstancePre, Module, PoolingAllocationConfig, Trap};

/// Why a plugin could not be installed or called. Call errors carry a stable code.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct PluginError {
    /// `timeout`, `memory_limit`, `stack_overflow`, `trap`, `output_too_large`,
    /// `invalid_input`, `invalid_output`, `not_found`, `disabled`, or the plugin's own code.
    pub code: String,
    /// For people.
    pub message: String,
    /// Whether a retry may help.
    pub retryable: bool,
    /// How long the plugin asks to wait before a retry (e.g. a `Retry-After` it was
    /// given), milliseconds; capped by `plugins.max_retry_after_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// Log lines the call produced before it failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
}

impl PluginError {
    fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into(), retryable: false, retry_after_ms: None, logs: Vec::new() }
    }
}

/// A successful call.
#[derive(Debug, Clone, Serialize)]
pub struct CallOutcome {
    /// The action's output.
    pub output: Value,
    /// Log lines (capped), plus a note when lines were dropped.
    pub logs: Vec<String>,
    /// Plugin version called.
    pub version: String,
    /// Time spent, microseconds.
    pub micros: u64,
}

/// Plugin limits from the configuration.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginConfig {
    /// Wall-clock budget per call, milliseconds.
    pub timeout_ms: u64,
    /// Linear memory per instance, MiB.
    pub memory_mb: usize,
    /// Table elements per instance.
    pub table_elements: usize,
    /// Wasm stack, KiB.
    pub stack_kb: usize,
    /// Largest output, bytes.
    pub max_output_bytes: usize,
    /// Log lines kept per call.
    pub max_log_lines: usize,
    /// Instances that may run at once (the pool size); further calls wait.
    pub pool_size: u32,
    /// Largest module accepted at install, bytes.
    pub max_module_bytes: usize,
    /// Longest wait before retrying a plugin step that asked for one (`retry_after_ms`,
    /// e.g. from Graph's `Retry-After`), milliseconds. The wait holds a run worker.
    pub max_retry_after_ms: u64,
}

impl Default for PluginConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 2000,
            memory_mb: 64,
            table_elements: 20_000,
            stack_kb: 512,
            max_output_bytes: 1 << 20,
            max_log_lines: 200,
            pool_size: 32,
            max_module_bytes: 16 << 20,
            max_retry_after_ms: 60_000,
        }
    }
}

struct Loaded {
    record: PluginRecord,
    pre: InstancePre<Ctx>,
    validators: HashMap<String, (Arc<jsonschema::Validator>, Arc<jsonschema::Validator>)>,
}

/// What a call needs from the rest of the engine.
pub struct CallContext {
    /// The ticket the run is about (for `host::ticket()`).
    pub ticket: Value,
    /// Stable across retries and crash recovery of the same step visit (`run/step/visit`);
    /// each outbound HTTP request of the call carries `Idempotency-Key: <this>/<n>`, so
    /// receivers that honour the header apply a repeated request once.
    pub idempotency_key: Option<String>,
}

/// Compiles, caches and calls plugins.
pub struct PluginHost {
    engine: Engine,
    config: PluginConfig,
    store: Arc<dyn Store>,
    net: Arc<net::Net>,
    directories: Arc<directory::Directories>,
    loaded: Mutex<HashMap<String, Arc<Loaded>>>,
    pool: Arc<tokio::sync::Semaphore>,
}

impl PluginHost {
    /// A host with its epoch ticker running.
    pub fn new(
        config: PluginConfig,
        store: Arc<dyn Store>,
        net: net::Net,
        directories: directory::Directories,
    ) -> anyhow::Result<Arc<Self>> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(config.pool_size)
            .total_memories(config.pool_size)
            .total_tables(config.pool_size)
            .max_memories_per_module(1)
            .max_tables_per_module(1)
            .max_memory_size(config.memory_mb << 20)
            .table_elements(config.table_elements);
        let mut c = Config::new();
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .epoch_interruption(true)
            .max_wasm_stack(config.stack_kb << 10)
            .wasm_multi_memory(false);
        let engine = Engine::new(&c).map_err(|e| anyhow::anyhow!("wasmtime engine: {e}"))?;
        let ticker = engine.weak();
        std::thread::Builder::new().name("plugin-epoch".into()).spawn(move || loop {
            std::thread::sleep(sandbox::TICK);
            match ticker.upgrade() {
                Some(e) => e.increment_epoch(),
                None => return,
            }
        })?;
        Ok(Arc::new(Self {
            pool: Arc::new(tokio::sync::Semaphore::new(config.pool_size as usize)),
            engine,
            config,
            store,
            net: Arc::new(net),
            directories: Arc::new(directories),
            loaded: Mutex::new(HashMap::new()),
        }))
    }

    fn limits(&self) -> Limits {
        Limits {
            timeout: Duration::from_millis(self.config.timeout_ms),
            memory_bytes: self.config.memory_mb << 20,
            table_elements: self.config.table_elements,
            max_output: self.config.max_output_bytes,
            max_log_lines: self.config.max_log_lines,
            max_log_bytes: 256 << 10,
            max_host_calls: 1000,
            max_request: 1 << 20,
        }
    }

    fn compile(&self, bytes: &[u8]) -> Result<(Module, InstancePre<Ctx>), PluginError> {
        let module = Module::new(&self.engine, bytes)
            .map_err(|e| PluginError::new("invalid_module", format!("does not compile: {e}")))?;
        let pre = sandbox::prepare(&self.engine, &module)
            .map_err(|e| PluginError::new("invalid_module", format!("does not link: {e:#}")))?;
        Ok((module, pre))
    }

    /// Validates and stores a module as the plugin's current version. Grants and config
    /// of an existing plugin are kept.
    pub async fn install(&self, bytes: &[u8], actor: &str) -> Result<PluginRecord, PluginError> {
        if bytes.len() > self.config.max_module_bytes {
            return Err(PluginError::new(
                "too_large",
                format!("module is {} bytes; the limit is {}", bytes.len(), self.config.max_module_bytes),
            ));
        }
        let info = inspect(bytes).map_err(|e: InspectError| PluginError::new("invalid_plugin", e.to_string()))?;
        let (_, pre) = self.compile(bytes)?;
        let m = info.manifest;
        let existing = self.store.plugin(&m.id).map_err(|e| PluginError::new("storage", e.to_string()))?;
        let mut versions = existing.as_ref().map(|r| r.versions.clone()).unwrap_or_default();
        versions.retain(|v| v != &m.version);
        versions.push(m.version.clone());
        let record = PluginRecord {
            id: m.id.clone(),
            version: m.version.clone(),
            versions,
            enabled: existing.as_ref().is_none_or(|r| r.enabled),
            connections: existing.as_ref().map(|r| r.connections.clone()).unwrap_or_default(),
            config: existing.as_ref().map(|r| r.config.clone()).unwrap_or_default(),
            sha256: hex::encode(Sha256::digest(bytes)),
            installed_at: chrono::Utc::now(),
            manifest: m,
        };
        let mut tx = Tx::new();
        tx.push(Write::PluginModule { id: record.id.clone(), version: record.version.clone(), bytes: bytes.to_vec() })
            .push(Write::Plugin(Box::new(record.clone())))
            .push(Write::Audit(crate::run::AuditEntry {
                at: record.installed_at,
                actor: actor.into(),
                action: "plugin.install".into(),
                target: record.id.clone(),
                detail: json!({"version": record.version, "sha256": record.sha256}),
            }));
        self.store.commit(tx).await.map_err(|e| PluginError::new("storage", e.to_string()))?;
        // Keep what was just compiled: the first call need not compile again.
        let loaded = Arc::new(Self::loaded(record.clone(), pre)?);
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).insert(record.id.clone(), loaded);
        Ok(record)
    }

    fn loaded(record: PluginRecord, pre: InstancePre<Ctx>) -> Result<Loaded, PluginError> {
        let mut validators = HashMap::new();
        for a in &record.manifest.actions {
            let compile = |s: &Value| {
                jsonschema::validator_for(s)
                    .map(Arc::new)
                    .map_err(|e| PluginError::new("invalid_plugin", e.to_string()))
            };
            validators.insert(a.name.clone(), (compile(&a.input_schema)?, compile(&a.output_schema)?));
        }
        Ok(Loaded { record, pre, validators })
    }

    /// Replaces grants, config or the enabled flag.
    pub async fn update(&self, record: PluginRecord, actor: &str) -> Result<PluginRecord, PluginError> {
        for c in &record.connections {
            if !self.net.has(c) && !self.directories.has(c) {
                return Err(PluginError::new(
                    "unknown_connection",
                    format!("connection `{c}` is not configured on this server"),
                ));
            }
        }
        let mut tx = Tx::new();
        tx.push(Write::Plugin(Box::new(record.clone()))).push(Write::Audit(crate::run::AuditEntry {
            at: chrono::Utc::now(),
            actor: actor.into(),
            action: "plugin.update".into(),
            target: record.id.clone(),
            detail: json!({"enabled": record.enabled, "connections": record.connections}),
        }));
        self.store.commit(tx).await.map_err(|e| PluginError::new("storage", e.to_string()))?;
        // Same module, new grants: keep the compiled code, swap the record.
        let mut cache = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = cache.get(&record.id).cloned() {
            let fresh = Loaded { record: record.clone(), pre: old.pre.clone(), validators: old.validators.clone() };
            cache.insert(record.id.clone(), Arc::new(fresh));
        }
        Ok(record)
    }

    fn load(&self, id: &str) -> Result<Arc<Loaded>, PluginError> {
        if let Some(l) = self.loaded.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Ok(l.clone());
        }
        let storage = |e: crate::store::Error| PluginError::new("storage", e.to_string());
        let record = self
            .store
            .plugin(id)
            .map_err(storage)?
            .ok_or_else(|| PluginError::new("not_found", format!("plugin `{id}` is not installed")))?;
        let bytes =
            self.store.plugin_module(id, &record.version).map_err(storage)?.ok_or_else(|| {
                PluginError::new("not_found", format!("module of `{id}` {} is missing", record.version))
            })?;
        let (_, pre) = self.compile(&bytes)?;
        let loaded = Arc::new(Self::loaded(record, pre)?);
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string(), loaded.clone());
        Ok(loaded)
    }

    /// Calls `plugin.action` with `input`. Waits for a free instance slot when the pool is busy.
    pub async fn call(
        &self,
        plugin: &str,
        action: &str,
        input: Value,
        ctx: CallContext,
    ) -> Result<CallOutcome, PluginError> {
        let loaded = self.load(plugin)?;
        if !loaded.record.enabled {
            return Err(PluginError::new("disabled", format!("plugin `{plugin}` is disabled")));
        }
        let Some((input_schema, output_schema)) = loaded.validators.get(action).cloned() else {
            let names: Vec<&str> = loaded.record.manifest.actions.iter().map(|a| a.name.as_str()).collect();
            return Err(PluginError::new(
                "unknown_action",
                format!("plugin `{plugin}` has no action `{action}`; it has: {}", names.join(", ")),
            ));
        };
        if let Some(e) = input_schema.iter_errors(&input).next() {
            return Err(PluginError::new(
                "invalid_input",
                format!("input {}: {e}", pointer_or_root(&e.instance_path.to_string())),
            ));
        }
        let bytes = serde_json::to_vec(&input).unwrap_or_default();
        let _slot = self
            .pool
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PluginError::new("shutting_down", "plugin host is closing"))?;
        let services: Arc<dyn Services> = Arc::new(HostServices {
            store: self.store.clone(),
            net: self.net.clone(),
            directories: self.directories.clone(),
            record: loaded.record.clone(),
            ticket: ctx.ticket,
            idempotency_key: ctx.idempotency_key,
            requests: std::sync::atomic::AtomicU32::new(0),
            rt: tokio::runtime::Handle::current(),
        });
        let limits = self.limits();
        let engine = self.engine.clone();
        let version = loaded.record.version.clone();
        let action_name = action.to_string();
        let started = Instant::now();
        let run =
            tokio::task::spawn_blocking(move || invoke(&engine, &loaded.pre, limits, &action_name, bytes, services))
                .await
                .map_err(|e| PluginError::new("trap", format!("plugin call crashed: {e}")))?;
        let micros = started.elapsed().as_micros() as u64;
        let (output, logs) = run?;
        if let Some(e) = output_schema.iter_errors(&output).next() {
            let mut err = PluginError::new(
                "invalid_output",
                format!("output {}: {e}", pointer_or_root(&e.instance_path.to_string())),
            );
            err.logs = logs;
            return Err(err);
        }
        Ok(CallOutcome { output, logs, version, micros })
    }
}

fn pointer_or_root(p: &str) -> String {
    if p.is_empty() {
        "/".into()
    } else {
        p.to_string()
    }
}

/// Runs one invocation on the current (blocking) thread.
fn invoke(
    engine: &Engine,
    pre: &InstancePre<Ctx>,
    limits: Limits,
    action: &str,
    input: Vec<u8>,
    services: Arc<dyn Services>,
) -> Result<(Value, Vec<String>), PluginError> {
    let ticks = (limits.timeout.as_millis() / sandbox::TICK.as_millis()).max(1) as u64 + 1;
    let timeout = limits.timeout;
    let input_len = input.len() as i32;
    let mut store = wasmtime::Store::new(engine, Ctx::new(limits, action, input, services));
    sandbox::limit(&mut store);
    store.set_epoch_deadline(ticks);
    store.epoch_deadline_trap();
    let outcome = pre.instantiate(&mut store).and_then(|instance| {
        let f = instance.get_typed_func::<(i32, i32), i32>(&mut store, "switchboard_invoke")?;
        f.call(&mut store, (action.len() as i32, input_len))
    });
    let done = store.into_data().finish();
    let mut logs = done.logs;
    if done.logs_dropped > 0 {
        logs.push(format!("({} more log lines dropped: limit reached)", done.logs_dropped));
    }
    let fail = |code: &str, message: String, logs: Vec<String>| PluginError {
        code: code.into(),
        message,
        retryable: false,
        retry_after_ms: None,
        logs,
    };
    match outcome {
        Err(e) => {
            let (code, message) = if done.memory_denied {
                ("memory_limit", "plugin tried to grow its memory past the limit".to_string())
            } else if done.table_denied {
                ("table_limit", "plugin tried to grow a table past the limit".to_string())
            } else {
                match e.downcast_ref::<Trap>() {
                    Some(Trap::Interrupt) => ("timeout", format!("plugin ran longer than {} ms", timeout.as_millis())),
                    Some(Trap::StackOverflow) => ("stack_overflow", "plugin exhausted its stack".to_string()),
                    Some(t) => ("trap", format!("plugin trapped: {t}")),
                    None => ("trap", format!("plugin failed: {e:#}")),
                }
            };
            Err(fail(code, message, logs))
        }
        Ok(rc) => match (rc, done.result) {
            _ if done.result_refused => {
                Err(fail("output_too_large", "plugin output exceeds the limit (max_output_bytes)".into(), logs))
            }
            (0, Some(Ok(bytes))) => match serde_json::from_slice(&bytes) {
                Ok(v) => Ok((v, logs)),
                Err(e) => Err(fail("invalid_output", format!("output is not JSON: {e}"), logs)),
            },
            (_, Some(Err(bytes))) => {
                let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                Err(PluginError {
                    code: v["code"].as_str().unwrap_or("plugin_error").chars().take(64).collect(),
                    message: v["message"].as_str().unwrap_or("plugin reported an error").chars().take(4096).collect(),
                    retryable: v["retryable"].as_bool().unwrap_or(false),
                    retry_after_ms: v["retry_after_ms"].as_u64(),
                    logs,
                })
            }
            (rc, _) => Err(fail("protocol", format!("plugin returned {rc} without handing back a result"), logs)),
        },
    }
}

/// Host calls backed by the store and the network.
struct HostServices {
    store: Arc<dyn Store>,
    net: Arc<net::Net>,
    directories: Arc<directory::Directories>,
    record: PluginRecord,
    ticket: Value,
    idempotency_key: Option<String>,
    /// HTTP requests made so far in this call (numbers the idempotency keys).
    requests: std::sync::atomic::AtomicU32,
    rt: tokio::runtime::Handle,
}

fn err(code: &str, message: impl Into<String>) -> Value {
    json!({"error": {"code": code, "message": message.into(), "retryable": false}})
}

impl Services for HostServices {
    fn call(&self, op: &str, req: Value) -> Value {
        match op {
            "config" => {
                let key = req["key"].as_str().unwrap_or("");
                json!({"ok": self.record.config.get(key)})
            }
            "ticket" => json!({"ok": self.ticket}),
            "kv.get" => {
                let key = req["key"].as_str().unwrap_or("");
                match self.store.plugin_kv(&self.record.id, key) {
                    Ok(v) => json!({"ok": v}),
                    Err(e) => err("storage", e.to_string()),
                }
            }
            "kv.set" => {
                let key = req["key"].as_str().unwrap_or("").to_string();
                if key.is_empty() || key.len() > 256 {
                    return err("bad_request", "keys are 1-256 bytes");
                }
                let value = req.get("value").cloned().unwrap_or(Value::Null);
                if serde_json::to_vec(&value).map_or(0, |v| v.len()) > 64 << 10 {
                    return err("limit_exceeded", "values are at most 64 KiB");
                }
                let mut tx = Tx::new();
                tx.push(Write::PluginKv {
                    plugin: self.record.id.clone(),
                    key,
                    value: (!value.is_null()).then_some(value),
                });
                match self.rt.block_on(self.store.commit(tx)) {
                    Ok(()) => json!({"ok": null}),
                    Err(e) => err("storage", e.to_string()),
                }
            }
            "http" => match serde_json::from_value::<switchboard_sdk::HttpRequest>(req) {
                Ok(mut r) => {
                    let n = self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if let Some(key) = &self.idempotency_key {
                        if !r.headers.keys().any(|k| k.eq_ignore_ascii_case("idempotency-key")) {
                            r.headers.insert("idempotency-key".into(), format!("{key}/{n}"));
                        }
                    }
                    self.rt.block_on(self.net.send(&self.record.connections, r))
                }
                Err(e) => err("bad_request", format!("http request: {e}")),
            },
            "ldap" => match serde_json::from_value::<switchboard_sdk::LdapRequest>(req) {
                Ok(r) => self.rt.block_on(self.directories.run(&self.record.connections, r)),
                Err(e) => err("bad_request", format!("ldap request: {e}")),
            },
            other => err("not_found", format!("unknown host call `{other}`")),
        }
    }
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_support;
