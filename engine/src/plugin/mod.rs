//! The WebAssembly plugin host: a narrow wrapper around wasmtime.
//!
//! - [`manifest`]: reading a module's ABI version and manifest without running it;
//! - [`sandbox`]: limits, host functions, the reduced WASI;
//! - [`net`]: outbound HTTP through admin-configured connections;
//! - [`directory`]: LDAP through admin-configured directory connections;
//! - [`install`]: install, update and removal;
//! - [`host`]: one invocation, and the host calls a guest makes during it;
//! - this file: the [`PluginHost`] (engine configuration, the epoch ticker, install,
//!   the compiled-module cache, and calls with back-pressure).
//!
//! Every call gets a fresh instance from a pre-linked [`InstancePre`] in the pooling
//! allocator, so nothing survives from one call to the next.

pub mod directory;
pub mod fuzz_guest;
mod host;
mod install;
/// Manifests and records live below the store (which keeps them); this path stays.
pub use crate::manifest;
use host::{invoke, HostServices, KvPending};
use install::{pointer_or_root, with_hash};
pub mod net;
pub mod sandbox;

use crate::store::{Store, Tx, Write};
use manifest::PluginRecord;
use sandbox::{Ctx, Limits, Services};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, InstancePre, Module, PoolingAllocationConfig};

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
    /// An error with a code and a message, not retryable.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into(), retryable: false, retry_after_ms: None, logs: Vec::new() }
    }
}

/// A successful call.
#[derive(Debug, Clone, Serialize)]
pub struct CallOutcome {
    /// The key-value writes the call made, for the caller to commit with the step (a
    /// failed or timed-out call makes none).
    #[serde(skip)]
    pub writes: Vec<Write>,
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
    /// Most functions a module may define (checked at install).
    pub max_functions: u32,
    /// Largest code section a module may have, bytes (checked at install).
    pub max_code_bytes: u64,
    /// Calls of one plugin that may run at once: one plugin cannot hold the whole pool.
    pub max_concurrent_per_plugin: u32,
    /// Modules compiled at once (installs, first calls after a restart); compiling runs
    /// on blocking threads, never on the request workers.
    pub compile_concurrency: u32,
    /// Keys a plugin may keep in its key-value store.
    pub kv_max_keys: u64,
    /// Bytes (keys plus values) a plugin may keep in its key-value store.
    pub kv_max_bytes: u64,
    /// Versions kept per plugin (older ones are pruned at install).
    pub keep_versions: usize,
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
            max_module_bytes: 8 << 20,
            max_retry_after_ms: 60_000,
            max_functions: 10_000,
            max_code_bytes: 4 << 20,
            max_concurrent_per_plugin: 8,
            compile_concurrency: 1,
            kv_max_keys: 10_000,
            kv_max_bytes: 16 << 20,
            keep_versions: 5,
        }
    }
}

struct Loaded {
    record: PluginRecord,
    pre: InstancePre<Ctx>,
    validators: HashMap<String, (Arc<jsonschema::Validator>, Arc<jsonschema::Validator>)>,
}

/// What an install did.
#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    /// The plugin as it now is.
    pub plugin: PluginRecord,
    /// The version it replaced as current, if any.
    pub replaced: Option<String>,
    /// What the new version asks for that the old did not, and the reverse: actions
    /// and connections (`added_connections` need an admin's grant to be usable).
    pub changes: Value,
    /// Versions pruned (beyond `keep_versions`).
    pub pruned: Vec<String>,
    /// The id was not installed before.
    pub created: bool,
}

/// Who installs: an admin may replace an installed plugin; others may add new ids only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installer {
    /// May install a new version of an existing plugin (its grants go with it).
    Admin,
    /// May install plugins whose id is not installed yet.
    Integrator,
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
    /// Per-plugin shares of the pool.
    shares: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    compiles: tokio::sync::Semaphore,
    /// Key-value usage (keys, bytes) per plugin, read from the store once.
    kv_usage: Mutex<HashMap<String, (u64, u64)>>,
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
            shares: Mutex::new(HashMap::new()),
            compiles: tokio::sync::Semaphore::new(config.compile_concurrency.max(1) as usize),
            kv_usage: Mutex::new(HashMap::new()),
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

    /// Compiles on a blocking thread, at most `compile_concurrency` at once, and
    /// returns the module's serialized form for the artifact cache.
    async fn compile(&self, bytes: Arc<Vec<u8>>) -> Result<(InstancePre<Ctx>, Vec<u8>), PluginError> {
        let _permit =
            self.compiles.acquire().await.map_err(|_| PluginError::new("shutting_down", "plugin host is closing"))?;
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || {
            let module = Module::new(&engine, bytes.as_slice())
                .map_err(|e| PluginError::new("invalid_module", format!("does not compile: {e}")))?;
            let pre = sandbox::prepare(&engine, &module)
                .map_err(|e| PluginError::new("invalid_module", format!("does not link: {e:#}")))?;
            let artifact = module.serialize().map(|a| with_hash(&a)).unwrap_or_default();
            Ok((pre, artifact))
        })
        .await
        .map_err(|e| PluginError::new("invalid_module", format!("compiling crashed: {e}")))?
    }

    /// Loads compiled code kept by [`Self::compile`], if it is there and intact.
    #[allow(unsafe_code)]
    async fn deserialize(&self, stored: Vec<u8>) -> Option<InstancePre<Ctx>> {
        if stored.len() < 32 {
            return None;
        }
        let (hash, code) = stored.split_at(32);
        if Sha256::digest(code).as_slice() != hash {
            tracing::warn!("a compiled plugin artifact does not match its hash; compiling again");
            return None;
        }
        let engine = self.engine.clone();
        let code = code.to_vec();
        tokio::task::spawn_blocking(move || {
            // SAFETY: the bytes are wasmtime's own serialization of a module this host
            // compiled, read back from our own store and checked against the SHA-256
            // written with them; wasmtime also checks that they match this engine.
            let module = unsafe { Module::deserialize(&engine, &code) }.ok()?;
            sandbox::prepare(&engine, &module).ok()
        })
        .await
        .ok()
        .flatten()
    }

    /// The record of an installed plugin (`not_found` otherwise).
    pub async fn installed(&self, id: &str) -> Result<PluginRecord, PluginError> {
        self.store
            .plugin(id)
            .await
            .map_err(storage)?
            .ok_or_else(|| PluginError::new("not_found", format!("plugin `{id}` is not installed")))
    }

    /// Key-value usage of a plugin: (keys, bytes).
    pub async fn kv_usage(&self, id: &str) -> Result<(u64, u64), PluginError> {
        if let Some(u) = self.kv_usage.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Ok(*u);
        }
        let u = self.store.plugin_kv_usage(id).await.map_err(storage)?;
        self.kv_usage.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string(), u);
        Ok(u)
    }

    /// Calls of the plugin running now (at most `max_concurrent_per_plugin`).
    pub fn calls_in_flight(&self, id: &str) -> usize {
        let share = self.shares.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned();
        share.map_or(0, |s| self.share_size().saturating_sub(s.available_permits()))
    }

    /// The limits in force.
    pub fn config(&self) -> &PluginConfig {
        &self.config
    }

    fn loaded(record: PluginRecord, pre: InstancePre<Ctx>) -> Result<Loaded, PluginError> {
        let mut validators = HashMap::new();
        for a in &record.manifest.actions {
            let compile = |s: &Value| {
                manifest::schema_validator(s).map(Arc::new).map_err(|e| PluginError::new("invalid_plugin", e))
            };
            validators.insert(a.name.clone(), (compile(&a.input_schema)?, compile(&a.output_schema)?));
        }
        Ok(Loaded { record, pre, validators })
    }

    /// The plugin ready to call: from memory, else from its compiled artifact in the
    /// store, else compiled from its module (and the artifact kept for next time).
    async fn load(&self, id: &str) -> Result<Arc<Loaded>, PluginError> {
        if let Some(l) = self.loaded.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Ok(l.clone());
        }
        let record = self.installed(id).await?;
        let stored = self.store.plugin_artifact(id, &record.version).await.map_err(storage)?;
        let pre = match stored {
            Some(a) => self.deserialize(a).await,
            None => None,
        };
        if pre.is_some() {
            tracing::info!(plugin = %id, version = %record.version, "plugin loaded from its compiled artifact");
        } else {
            tracing::info!(plugin = %id, version = %record.version, "plugin compiled (no usable artifact)");
        }
        let pre = match pre {
            Some(pre) => pre,
            None => {
                let bytes = self.store.plugin_module(id, &record.version).await.map_err(storage)?.ok_or_else(|| {
                    PluginError::new("not_found", format!("module of `{id}` {} is missing", record.version))
                })?;
                let (pre, artifact) = self.compile(Arc::new(bytes)).await?;
                if !artifact.is_empty() {
                    let mut tx = Tx::new();
                    tx.push(Write::PluginArtifact { id: id.into(), version: record.version.clone(), bytes: artifact });
                    if let Err(e) = self.store.commit(tx).await {
                        tracing::warn!(plugin = %id, error = %e, "could not keep the compiled plugin");
                    }
                }
                pre
            }
        };
        let loaded = Arc::new(Self::loaded(record, pre)?);
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string(), loaded.clone());
        Ok(loaded)
    }

    /// Calls one plugin may run at once: its setting, within the pool.
    fn share_size(&self) -> usize {
        self.config.max_concurrent_per_plugin.clamp(1, self.config.pool_size.max(1)) as usize
    }

    fn share(&self, id: &str) -> Arc<tokio::sync::Semaphore> {
        let mut shares = self.shares.lock().unwrap_or_else(|p| p.into_inner());
        let n = self.share_size();
        shares.entry(id.to_string()).or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(n))).clone()
    }

    /// Calls `plugin.action` with `input`. Waits for a free slot in the plugin's share
    /// and in the pool when they are busy (back-pressure, not an error). Schema checks
    /// of input and output, the call and its host calls all run on a blocking thread
    /// within the call's deadline; the key-value writes come back in the outcome, for
    /// the caller to commit (a failed call leaves none).
    pub async fn call(
        &self,
        plugin: &str,
        action: &str,
        input: Value,
        ctx: CallContext,
    ) -> Result<CallOutcome, PluginError> {
        let loaded = self.load(plugin).await?;
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
        let closing = |_| PluginError::new("shutting_down", "plugin host is closing");
        let _share = self.share(plugin).acquire_owned().await.map_err(closing)?;
        let _slot = self.pool.clone().acquire_owned().await.map_err(closing)?;
        let limits = self.limits();
        let started = Instant::now();
        let services = Arc::new(HostServices {
            store: self.store.clone(),
            net: self.net.clone(),
            directories: self.directories.clone(),
            record: loaded.record.clone(),
            ticket: ctx.ticket,
            idempotency_key: ctx.idempotency_key,
            requests: std::sync::atomic::AtomicU32::new(0),
            rt: tokio::runtime::Handle::current(),
            deadline: started + limits.timeout,
            timeout_ms: self.config.timeout_ms,
            kv: Mutex::new(KvPending::default()),
            kv_usage: self.kv_usage(plugin).await?,
            kv_quota: (self.config.kv_max_keys, self.config.kv_max_bytes),
            late: Mutex::new(None),
        });
        let engine = self.engine.clone();
        let version = loaded.record.version.clone();
        let action_name = action.to_string();
        let call_services = services.clone();
        let run = tokio::task::spawn_blocking(move || {
            if let Some(e) = input_schema.iter_errors(&input).next() {
                return Err(PluginError::new(
                    "invalid_input",
                    format!("input {}: {e}", pointer_or_root(&e.instance_path.to_string())),
                ));
            }
            let mut limits = limits;
            limits.timeout = match limits.timeout.checked_sub(started.elapsed()) {
                Some(left) if !left.is_zero() => left,
                _ => {
                    return Err(PluginError::new(
                        "timeout",
                        "checking the input against its schema used up the deadline",
                    ))
                }
            };
            let bytes = serde_json::to_vec(&input).unwrap_or_default();
            let services: Arc<dyn Services> = call_services.clone();
            let (output, logs) = invoke(&engine, &loaded.pre, limits, &action_name, bytes, services)
                .map_err(|e| call_services.explain_timeout(e))?;
            if let Some(e) = output_schema.iter_errors(&output).next() {
                let mut err = PluginError::new(
                    "invalid_output",
                    format!("output {}: {e}", pointer_or_root(&e.instance_path.to_string())),
                );
                err.logs = logs;
                return Err(err);
            }
            Ok((output, logs))
        })
        .await
        .map_err(|e| PluginError::new("trap", format!("plugin call crashed: {e}")))?;
        let micros = started.elapsed().as_micros() as u64;
        let (output, logs) = run?;
        let pending = std::mem::take(&mut *services.kv.lock().unwrap_or_else(|p| p.into_inner()));
        if pending.keys != 0 || pending.bytes != 0 {
            let mut usage = self.kv_usage.lock().unwrap_or_else(|p| p.into_inner());
            let u = usage.entry(plugin.to_string()).or_insert(services.kv_usage);
            u.0 = u.0.saturating_add_signed(pending.keys);
            u.1 = u.1.saturating_add_signed(pending.bytes);
        }
        let writes = pending
            .values
            .into_iter()
            .map(|(key, value)| Write::PluginKv { plugin: plugin.to_string(), key, value })
            .collect();
        Ok(CallOutcome { writes, output, logs, version, micros })
    }
}

/// A store failure as a plugin error.
fn storage(e: crate::store::Error) -> PluginError {
    PluginError::new("storage", e.to_string())
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_support;
