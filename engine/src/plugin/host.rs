//! One invocation of a plugin: a fresh wasmtime store with its limits and deadline,
//! the guest's `switchboard_invoke`, its outcome mapped to a [`PluginError`] code; and
//! the host calls the guest makes meanwhile ([`HostServices`]: config, the ticket,
//! key-value reads and buffered writes within quota, HTTP and LDAP through the admin's
//! connections), each bounded by the call's deadline.

use super::sandbox::{self, Ctx, Limits, Services};
use super::{directory, net, PluginError};
use crate::manifest::PluginRecord;
use crate::store::Store;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wasmtime::{Engine, InstancePre, Trap};

/// Runs one invocation on the current (blocking) thread.
pub(super) fn invoke(
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

/// Key-value writes of one call, not yet committed.
#[derive(Default)]
pub(super) struct KvPending {
    pub(super) values: std::collections::BTreeMap<String, Option<Value>>,
    /// Change in keys and bytes against the store.
    pub(super) keys: i64,
    pub(super) bytes: i64,
}

/// Host calls backed by the store and the network.
pub(super) struct HostServices {
    pub(super) store: Arc<dyn Store>,
    pub(super) net: Arc<net::Net>,
    pub(super) directories: Arc<directory::Directories>,
    pub(super) record: PluginRecord,
    pub(super) ticket: Value,
    pub(super) idempotency_key: Option<String>,
    /// HTTP requests made so far in this call (numbers the idempotency keys).
    pub(super) requests: std::sync::atomic::AtomicU32,
    pub(super) rt: tokio::runtime::Handle,
    /// When the call's time is up; host calls stop then too.
    pub(super) deadline: Instant,
    pub(super) timeout_ms: u64,
    pub(super) kv: Mutex<KvPending>,
    /// Keys and bytes stored before the call.
    pub(super) kv_usage: (u64, u64),
    pub(super) kv_quota: (u64, u64),
    /// The host call that ran into the deadline, if one did.
    pub(super) late: Mutex<Option<String>>,
}

fn err(code: &str, message: impl Into<String>) -> Value {
    json!({"error": {"code": code, "message": message.into(), "retryable": false}})
}

fn encoded_len(key: &str, v: &Option<Value>) -> i64 {
    v.as_ref().map_or(0, |v| (key.len() + serde_json::to_vec(v).map_or(0, |b| b.len())) as i64)
}

impl HostServices {
    /// Runs a host call's future within the call's deadline.
    fn within<F: std::future::Future<Output = Value>>(&self, op: &str, fut: F) -> Value {
        let deadline = tokio::time::Instant::from_std(self.deadline);
        match self.rt.block_on(async { tokio::time::timeout_at(deadline, fut).await }) {
            Ok(v) => v,
            Err(_) => {
                *self.late.lock().unwrap_or_else(|p| p.into_inner()) = Some(op.to_string());
                err(
                    "timeout",
                    format!("host call `{op}` did not finish within the plugin's {} ms deadline", self.timeout_ms),
                )
            }
        }
    }

    /// A timeout caused by a host call says so.
    pub(super) fn explain_timeout(&self, mut e: PluginError) -> PluginError {
        if e.code == "timeout" {
            if let Some(op) = self.late.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                e.message = format!(
                    "plugin call exceeded its {} ms deadline waiting on host call `{op}` (the deadline covers host calls)",
                    self.timeout_ms
                );
            }
        }
        e
    }

    /// Host calls run on the call's blocking thread: a store read is waited for there.
    fn kv_get(&self, key: &str) -> Result<Option<Value>, crate::store::Error> {
        if let Some(v) = self.kv.lock().unwrap_or_else(|p| p.into_inner()).values.get(key) {
            return Ok(v.clone());
        }
        self.rt.block_on(self.store.plugin_kv(&self.record.id, key))
    }

    fn kv_set(&self, key: String, value: Option<Value>) -> Value {
        let old = match self.kv_get(&key) {
            Ok(v) => v,
            Err(e) => return err("storage", e.to_string()),
        };
        let dk = i64::from(value.is_some()) - i64::from(old.is_some());
        let db = encoded_len(&key, &value) - encoded_len(&key, &old);
        let mut kv = self.kv.lock().unwrap_or_else(|p| p.into_inner());
        let keys = self.kv_usage.0 as i64 + kv.keys + dk;
        let bytes = self.kv_usage.1 as i64 + kv.bytes + db;
        let (max_keys, max_bytes) = self.kv_quota;
        if (dk > 0 && keys > max_keys as i64) || (db > 0 && bytes > max_bytes as i64) {
            return json!({"error": {"code": "limit_exceeded", "retryable": false, "message": format!(
                "key-value quota of plugin `{}` reached: {keys} keys / {bytes} bytes would exceed {max_keys} keys / {max_bytes} bytes (plugins.kv_max_keys, plugins.kv_max_bytes)",
                self.record.id)}});
        }
        kv.keys += dk;
        kv.bytes += db;
        kv.values.insert(key, value);
        json!({"ok": null})
    }
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
                match self.kv_get(key) {
                    Ok(v) => json!({"ok": v}),
                    Err(e) => err("storage", e.to_string()),
                }
            }
            "kv.set" => {
                let key = req["key"].as_str().unwrap_or("").to_string();
                if key.is_empty() || key.len() > 256 || key.contains('\0') {
                    return err("bad_request", "keys are 1-256 bytes, without NUL");
                }
                let value = req.get("value").cloned().unwrap_or(Value::Null);
                if serde_json::to_vec(&value).map_or(0, |v| v.len()) > 64 << 10 {
                    return err("limit_exceeded", "values are at most 64 KiB");
                }
                self.kv_set(key, (!value.is_null()).then_some(value))
            }
            "http" => match serde_json::from_value::<switchboard_sdk::HttpRequest>(req) {
                Ok(mut r) => {
                    let n = self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if let Some(key) = &self.idempotency_key {
                        if !r.headers.keys().any(|k| k.eq_ignore_ascii_case("idempotency-key")) {
                            r.headers.insert("idempotency-key".into(), format!("{key}/{n}"));
                        }
                    }
                    self.within("http", self.net.send(&self.record.connections, r))
                }
                Err(e) => err("bad_request", format!("http request: {e}")),
            },
            "ldap" => match serde_json::from_value::<switchboard_sdk::LdapRequest>(req) {
                Ok(r) => self.within("ldap", self.directories.run(&self.record.connections, r)),
                Err(e) => err("bad_request", format!("ldap request: {e}")),
            },
            other => err("not_found", format!("unknown host call `{other}`")),
        }
    }
}
