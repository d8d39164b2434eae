//! Calls into the host.
//!
//! On `wasm32` these are the real imports. Elsewhere (native unit tests of plugin logic)
//! they go to a [`Stub`] installed with [`set_stub`], so plugins are tested with
//! `cargo test` on the host target.

use crate::{abi, Error, HttpRequest, HttpResponse, LdapRequest, LdapResponse, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Detail.
    Debug,
    /// Normal.
    Info,
    /// Something odd.
    Warn,
    /// Something failed.
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

fn status_error(op: &str, status: i32) -> Error {
    let what = match status {
        abi::status::BAD_ARGUMENT => "bad argument",
        abi::status::DENIED => "denied",
        abi::status::LIMIT_EXCEEDED => "limit exceeded",
        abi::status::INVALID_MEMORY => "invalid memory",
        abi::status::NOT_FOUND => "unknown operation",
        abi::status::PARSE_FAILURE => "request did not parse",
        _ => "host error",
    };
    let code = if status == abi::status::DENIED { "denied" } else { "host_call_failed" };
    Error::new(code, format!("host call `{}` failed: {} ({})", op, what, status))
}

/// Sends a host call and decodes the `{"ok": ...}` / `{"error": ...}` reply.
fn call<Req: Serialize, Resp: DeserializeOwned>(op: &str, req: &Req) -> Result<Resp, Error> {
    let req = serde_json::to_vec(req).map_err(|e| Error::new("bad_request", e.to_string()))?;
    let reply = raw_call(op, &req)?;
    let reply: Value = serde_json::from_slice(&reply).map_err(|e| Error::new("bad_reply", e.to_string()))?;
    if let Some(err) = reply.get("error") {
        return Err(
            serde_json::from_value(err.clone()).unwrap_or_else(|_| Error::new("host_call_failed", err.to_string()))
        );
    }
    serde_json::from_value(reply.get("ok").cloned().unwrap_or(Value::Null))
        .map_err(|e| Error::new("bad_reply", format!("{} reply: {}", op, e)))
}

/// Writes a log line into the run trace (the host caps count and size).
pub fn log(level: Level, message: &str) {
    let _ = call::<_, Value>(abi::ops::LOG, &serde_json::json!({"level": level.as_str(), "message": message}));
}

/// A plugin configuration value set by the admin.
pub fn config(key: &str) -> Result<Option<String>, Error> {
    call(abi::ops::CONFIG, &serde_json::json!({ "key": key }))
}

/// Reads from the plugin's own key-value store.
pub fn kv_get(key: &str) -> Result<Option<Value>, Error> {
    call(abi::ops::KV_GET, &serde_json::json!({ "key": key }))
}

/// Writes to the plugin's own key-value store.
pub fn kv_set(key: &str, value: &Value) -> Result<(), Error> {
    call::<_, Value>(abi::ops::KV_SET, &serde_json::json!({ "key": key, "value": value })).map(|_| ())
}

/// The ticket the run is about.
pub fn ticket() -> Result<Value, Error> {
    call(abi::ops::TICKET, &serde_json::json!({}))
}

/// Outbound HTTP through a connection.
pub fn http(req: &HttpRequest) -> Result<HttpResponse, Error> {
    call(abi::ops::HTTP, req)
}

/// An LDAP operation through a directory connection.
pub fn ldap(req: &LdapRequest) -> Result<LdapResponse, Error> {
    call(abi::ops::LDAP, req)
}

/// `len` random bytes from the host's cryptographic generator (WASI `random_get`), e.g.
/// for generated passwords. Natively (unit tests) they come from std's hasher seeds,
/// which are random per process but not meant for secrets.
pub fn random_bytes(len: usize) -> Result<Vec<u8>, Error> {
    let mut buf = vec![0u8; len];
    fill_random(&mut buf)?;
    Ok(buf)
}

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
fn fill_random(buf: &mut [u8]) -> Result<(), Error> {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        fn random_get(buf: i32, len: i32) -> i32;
    }
    for chunk in buf.chunks_mut(4096) {
        // SAFETY: the host writes exactly `chunk.len()` bytes into our memory.
        let errno = unsafe { random_get(chunk.as_mut_ptr() as i32, chunk.len() as i32) };
        if errno != 0 {
            return Err(Error::new("host_call_failed", format!("random_get failed (errno {})", errno)));
        }
    }
    Ok(())
}

#[cfg(not(target_arch = "wasm32"))]
fn fill_random(buf: &mut [u8]) -> Result<(), Error> {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_usize(i);
        let bytes = h.finish().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    Ok(())
}

#[cfg(target_arch = "wasm32")]
mod imports {
    #[link(wasm_import_module = "switchboard")]
    extern "C" {
        pub fn input(action_ptr: *mut u8, input_ptr: *mut u8) -> i32;
        pub fn output(ptr: *const u8, len: i32) -> i32;
        pub fn error(ptr: *const u8, len: i32) -> i32;
        pub fn call(op_ptr: *const u8, op_len: i32, req_ptr: *const u8, req_len: i32) -> i32;
        pub fn take(ptr: *mut u8) -> i32;
    }
}

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
fn raw_call(op: &str, req: &[u8]) -> Result<Vec<u8>, Error> {
    // SAFETY: the host reads exactly the given ranges of our memory.
    let n = unsafe { imports::call(op.as_ptr(), op.len() as i32, req.as_ptr(), req.len() as i32) };
    if n < 0 {
        return Err(status_error(op, n));
    }
    let mut buf = vec![0u8; n as usize];
    // SAFETY: `buf` has exactly the length the host announced.
    let got = unsafe { imports::take(buf.as_mut_ptr()) };
    if got < 0 {
        return Err(status_error(op, got));
    }
    Ok(buf)
}

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
pub(crate) fn read_invocation(action_len: i32, input_len: i32) -> Result<(String, Vec<u8>), Error> {
    if action_len < 0 || input_len < 0 {
        return Err(Error::new("bad_invocation", "negative lengths"));
    }
    let mut action = vec![0u8; action_len as usize];
    let mut input = vec![0u8; input_len as usize];
    // SAFETY: both buffers have exactly the lengths the host announced.
    let rc = unsafe { imports::input(action.as_mut_ptr(), input.as_mut_ptr()) };
    if rc < 0 {
        return Err(status_error("input", rc));
    }
    let action = String::from_utf8(action).map_err(|_| Error::new("bad_invocation", "action name is not UTF-8"))?;
    Ok((action, input))
}

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
pub(crate) fn finish(result: Result<Vec<u8>, Error>) -> i32 {
    match result {
        Ok(out) => {
            // SAFETY: the host copies `out` before returning.
            let rc = unsafe { imports::output(out.as_ptr(), out.len() as i32) };
            if rc < 0 {
                let e = serde_json::to_vec(&status_error("output", rc)).unwrap_or_default();
                // SAFETY: as above.
                unsafe { imports::error(e.as_ptr(), e.len() as i32) };
                return abi::INVOKE_ERROR;
            }
            abi::INVOKE_OK
        }
        Err(e) => {
            let e = serde_json::to_vec(&e).unwrap_or_default();
            // SAFETY: the host copies `e` before returning.
            unsafe { imports::error(e.as_ptr(), e.len() as i32) };
            abi::INVOKE_ERROR
        }
    }
}

/// What native tests put in place of the host.
#[cfg(not(target_arch = "wasm32"))]
pub trait Stub {
    /// Answers a host call with the JSON reply (`{"ok": ...}` or `{"error": ...}`).
    fn call(&mut self, op: &str, request: Value) -> Value;
}

#[cfg(not(target_arch = "wasm32"))]
std::thread_local! {
    static STUB: std::cell::RefCell<Option<Box<dyn Stub>>> = std::cell::RefCell::new(None);
}

/// Installs the stand-in host for this thread (native tests only).
#[cfg(not(target_arch = "wasm32"))]
pub fn set_stub(stub: Box<dyn Stub>) {
    STUB.with(|s| *s.borrow_mut() = Some(stub));
}

#[cfg(not(target_arch = "wasm32"))]
fn raw_call(op: &str, req: &[u8]) -> Result<Vec<u8>, Error> {
    let request: Value = serde_json::from_slice(req).unwrap_or(Value::Null);
    STUB.with(|s| match s.borrow_mut().as_mut() {
        Some(stub) => Ok(serde_json::to_vec(&stub.call(op, request)).unwrap_or_default()),
        None => Err(status_error(op, abi::status::NOT_FOUND)),
    })
}

#[cfg(not(target_arch = "wasm32"))]
#[allow(dead_code)]
pub(crate) fn read_invocation(_: i32, _: i32) -> Result<(String, Vec<u8>), Error> {
    Err(Error::new("native", "invocations only exist inside the wasm sandbox"))
}

#[cfg(not(target_arch = "wasm32"))]
#[allow(dead_code)]
pub(crate) fn finish(result: Result<Vec<u8>, Error>) -> i32 {
    if result.is_ok() {
        abi::INVOKE_OK
    } else {
        abi::INVOKE_ERROR
    }
}
