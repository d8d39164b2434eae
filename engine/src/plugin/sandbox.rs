//! The sandbox: one fresh wasmtime instance per call, with hard limits.
//!
//! - time: an epoch ticker advances every [`TICK`]; each call gets a deadline of
//!   `timeout / TICK` ticks and traps with `Interrupt` when it passes. Sibling calls run
//!   in their own stores and are unaffected.
//! - memory and tables: a [`ResourceLimiter`] refuses growth past the limits (and
//!   remembers that it did, so the error says why); the pooling allocator caps them too.
//! - stack: `max_wasm_stack` turns runaway recursion into a `StackOverflow` trap.
//! - output, logs, host calls: capped here; excess is refused with a status code.
//! - WASI: only what Rust's std needs to start, with no files, environment, arguments or
//!   sockets: stdout/stderr go to the capped log, everything else answers `ENOSYS`/`EBADF`.
//! - memory access: every pointer/length pair from the guest is bounds-checked; a bad one
//!   gets `INVALID_MEMORY`, never a host panic.

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{Caller, Engine, Extern, ExternType, InstancePre, Linker, Memory, Module, ResourceLimiter, Val};

/// Epoch tick length.
pub const TICK: Duration = Duration::from_millis(5);

use switchboard_sdk::abi::status;

const ERRNO_BADF: i32 = 8;
const ERRNO_NOSYS: i32 = 52;

/// Per-call limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock budget of one call.
    pub timeout: Duration,
    /// Linear memory ceiling in bytes.
    pub memory_bytes: usize,
    /// Table elements ceiling.
    pub table_elements: usize,
    /// Largest output or error payload.
    pub max_output: usize,
    /// Log lines kept per call.
    pub max_log_lines: usize,
    /// Log bytes kept per call.
    pub max_log_bytes: usize,
    /// Host calls per invocation.
    pub max_host_calls: usize,
    /// Largest host-call request.
    pub max_request: usize,
}

/// Answers host calls other than `log` (config, kv, ticket, http, ldap).
pub trait Services: Send + Sync {
    /// Returns `{"ok": ...}` or `{"error": {code, message, retryable}}`.
    fn call(&self, op: &str, request: Value) -> Value;
}

#[derive(Default)]
struct Limiter {
    memory_max: usize,
    table_max: usize,
    memory_denied: bool,
    table_denied: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let ok = desired <= self.memory_max;
        self.memory_denied |= !ok;
        Ok(ok)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let ok = desired <= self.table_max;
        self.table_denied |= !ok;
        Ok(ok)
    }
}

/// The state of one call.
pub struct Ctx {
    limiter: Limiter,
    limits: Limits,
    action: Vec<u8>,
    input: Vec<u8>,
    /// `Ok(output)` or `Err(error payload)` as handed back by the guest.
    result: Option<Result<Vec<u8>, Vec<u8>>>,
    result_refused: bool,
    pending: Option<Vec<u8>>,
    logs: Vec<String>,
    log_bytes: usize,
    logs_dropped: usize,
    host_calls: usize,
    /// Partial stdout/stderr lines, completed by later writes or flushed at the end.
    streams: [Vec<u8>; 2],
    services: Arc<dyn Services>,
}

/// How a call ended, before interpretation.
pub struct Finished {
    /// The guest's result, if it handed one back.
    pub result: Option<Result<Vec<u8>, Vec<u8>>>,
    /// The guest's output/error was refused for size.
    pub result_refused: bool,
    /// Log lines kept.
    pub logs: Vec<String>,
    /// Log lines dropped by the cap.
    pub logs_dropped: usize,
    /// Memory growth was refused.
    pub memory_denied: bool,
    /// Table growth was refused.
    pub table_denied: bool,
}

impl Ctx {
    /// A context for one invocation.
    pub fn new(limits: Limits, action: &str, input: Vec<u8>, services: Arc<dyn Services>) -> Self {
        Self {
            limiter: Limiter {
                memory_max: limits.memory_bytes,
                table_max: limits.table_elements,
                ..Default::default()
            },
            limits,
            action: action.as_bytes().to_vec(),
            input,
            result: None,
            result_refused: false,
            pending: None,
            logs: Vec::new(),
            log_bytes: 0,
            logs_dropped: 0,
            host_calls: 0,
            streams: [Vec::new(), Vec::new()],
            services,
        }
    }

    /// Appends stdout (0) or stderr (1) bytes; complete lines go to the log.
    fn stream(&mut self, which: usize, bytes: &[u8]) {
        self.streams[which].extend_from_slice(&bytes[..bytes.len().min(8192)]);
        while let Some(nl) = self.streams[which].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.streams[which].drain(..=nl).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).chars().take(2048).collect::<String>();
            let name = if which == 0 { "stdout" } else { "stderr" };
            if !text.is_empty() {
                self.log(format!("{name}: {text}"));
            }
        }
        if self.streams[which].len() > 4096 {
            let rest = std::mem::take(&mut self.streams[which]);
            self.stream(which, &[rest.as_slice(), b"\n"].concat());
        }
    }

    fn log(&mut self, line: String) -> bool {
        if self.logs.len() >= self.limits.max_log_lines || self.log_bytes + line.len() > self.limits.max_log_bytes {
            self.logs_dropped += 1;
            return false;
        }
        self.log_bytes += line.len();
        self.logs.push(line);
        true
    }

    /// Consumes the context.
    pub fn finish(mut self) -> Finished {
        for which in 0..2 {
            if !self.streams[which].is_empty() {
                self.stream(which, b"\n");
            }
        }
        Finished {
            result: self.result,
            result_refused: self.result_refused,
            logs: self.logs,
            logs_dropped: self.logs_dropped,
            memory_denied: self.limiter.memory_denied,
            table_denied: self.limiter.table_denied,
        }
    }
}

/// Installs the limiter on a store.
pub fn limit(store: &mut wasmtime::Store<Ctx>) {
    store.limiter(|ctx| &mut ctx.limiter);
}

fn memory(caller: &mut Caller<'_, Ctx>) -> Option<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Some(m),
        _ => None,
    }
}

/// Copies `len` bytes at `ptr` out of guest memory, refusing more than `cap`.
fn read(caller: &mut Caller<'_, Ctx>, ptr: i32, len: i32, cap: usize) -> Result<Vec<u8>, i32> {
    if len < 0 {
        return Err(status::BAD_ARGUMENT);
    }
    let len = len as usize;
    if len > cap {
        return Err(status::LIMIT_EXCEEDED);
    }
    let mem = memory(caller).ok_or(status::INVALID_MEMORY)?;
    let start = ptr as u32 as usize;
    let data = mem.data(&*caller);
    data.get(start..start.checked_add(len).ok_or(status::INVALID_MEMORY)?)
        .map(<[u8]>::to_vec)
        .ok_or(status::INVALID_MEMORY)
}

/// Copies `bytes` into guest memory at `ptr`.
fn write(caller: &mut Caller<'_, Ctx>, ptr: i32, bytes: &[u8]) -> Result<(), i32> {
    let mem = memory(caller).ok_or(status::INVALID_MEMORY)?;
    let start = ptr as u32 as usize;
    let end = start.checked_add(bytes.len()).ok_or(status::INVALID_MEMORY)?;
    let data = mem.data_mut(&mut *caller);
    data.get_mut(start..end).ok_or(status::INVALID_MEMORY)?.copy_from_slice(bytes);
    Ok(())
}

fn code(r: Result<i32, i32>) -> i32 {
    r.unwrap_or_else(|status| status)
}

fn host_functions(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "switchboard",
        "input",
        |mut caller: Caller<'_, Ctx>, action_ptr: i32, input_ptr: i32| -> i32 {
            let action = caller.data().action.clone();
            let input = std::mem::take(&mut caller.data_mut().input);
            let r = write(&mut caller, action_ptr, &action).and_then(|_| write(&mut caller, input_ptr, &input));
            caller.data_mut().input = input;
            code(r.map(|_| 0))
        },
    )?;
    for (name, ok) in [("output", true), ("error", false)] {
        linker.func_wrap("switchboard", name, move |mut caller: Caller<'_, Ctx>, ptr: i32, len: i32| -> i32 {
            let cap = caller.data().limits.max_output;
            match read(&mut caller, ptr, len, cap) {
                Ok(bytes) => {
                    caller.data_mut().result = Some(if ok { Ok(bytes) } else { Err(bytes) });
                    0
                }
                Err(status) => {
                    if status == status::LIMIT_EXCEEDED {
                        caller.data_mut().result_refused = true;
                    }
                    status
                }
            }
        })?;
    }
    linker.func_wrap(
        "switchboard",
        "call",
        |mut caller: Caller<'_, Ctx>, op_ptr: i32, op_len: i32, req_ptr: i32, req_len: i32| -> i32 {
            let data = caller.data_mut();
            data.host_calls += 1;
            if data.host_calls > data.limits.max_host_calls {
                return status::LIMIT_EXCEEDED;
            }
            let max_request = data.limits.max_request;
            let op = match read(&mut caller, op_ptr, op_len, 64) {
                Ok(op) => String::from_utf8_lossy(&op).into_owned(),
                Err(s) => return s,
            };
            let req = match read(&mut caller, req_ptr, req_len, max_request) {
                Ok(r) => r,
                Err(s) => return s,
            };
            let request: Value = match serde_json::from_slice(&req) {
                Ok(v) => v,
                Err(_) => return status::PARSE_FAILURE,
            };
            let reply = if op == "log" {
                let level = request["level"].as_str().unwrap_or("info").to_string();
                let message: String = request["message"].as_str().unwrap_or("").chars().take(2048).collect();
                if caller.data_mut().log(format!("{level}: {message}")) {
                    json!({"ok": null})
                } else {
                    return status::LIMIT_EXCEEDED;
                }
            } else if matches!(op.as_str(), "config" | "kv.get" | "kv.set" | "ticket" | "http" | "ldap") {
                let services = caller.data().services.clone();
                services.call(&op, request)
            } else {
                return status::NOT_FOUND;
            };
            let bytes = serde_json::to_vec(&reply).unwrap_or_default();
            let len = bytes.len() as i32;
            caller.data_mut().pending = Some(bytes);
            len
        },
    )?;
    linker.func_wrap("switchboard", "take", |mut caller: Caller<'_, Ctx>, ptr: i32| -> i32 {
        let Some(bytes) = caller.data_mut().pending.take() else { return status::NOTHING_PENDING };
        code(write(&mut caller, ptr, &bytes).map(|_| bytes.len() as i32))
    })?;
    Ok(())
}

/// WASI preview 1, reduced to what Rust's std touches, with nothing to reach outside.
fn wasi(linker: &mut Linker<Ctx>, module: &Module) -> wasmtime::Result<()> {
    const W: &str = "wasi_snapshot_preview1";
    for import in module.imports().filter(|i| i.module() == W) {
        let name = import.name();
        match name {
            "fd_write" => {
                linker.func_wrap(
                    W,
                    name,
                    |mut caller: Caller<'_, Ctx>, fd: i32, iovs: i32, n: i32, written: i32| -> i32 {
                        if fd != 1 && fd != 2 {
                            return ERRNO_BADF;
                        }
                        let Ok(raw) = read(&mut caller, iovs, n.saturating_mul(8), 8 * 1024) else { return 21 };
                        let mut total = 0u32;
                        for iov in raw.chunks_exact(8) {
                            let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                            let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                            match read(&mut caller, ptr, len, 64 * 1024) {
                                Ok(bytes) => {
                                    total = total.saturating_add(bytes.len() as u32);
                                    caller.data_mut().stream((fd - 1) as usize, &bytes);
                                }
                                Err(_) => return 21, // EFAULT
                            }
                        }
                        if write(&mut caller, written, &total.to_le_bytes()).is_err() {
                            return 21;
                        }
                        0
                    },
                )?;
            }
            "environ_sizes_get" | "args_sizes_get" => {
                linker.func_wrap(W, name, |mut caller: Caller<'_, Ctx>, count: i32, size: i32| -> i32 {
                    if write(&mut caller, count, &0u32.to_le_bytes()).is_err()
                        || write(&mut caller, size, &0u32.to_le_bytes()).is_err()
                    {
                        return 21;
                    }
                    0
                })?;
            }
            "environ_get" | "args_get" => {
                linker.func_wrap(W, name, |_: Caller<'_, Ctx>, _: i32, _: i32| -> i32 { 0 })?;
            }
            "clock_time_get" => {
                linker.func_wrap(
                    W,
                    name,
                    |mut caller: Caller<'_, Ctx>, _id: i32, _precision: i64, out: i32| -> i32 {
                        let nanos = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_nanos() as u64);
                        if write(&mut caller, out, &nanos.to_le_bytes()).is_err() {
                            return 21;
                        }
                        0
                    },
                )?;
            }
            "random_get" => {
                linker.func_wrap(W, name, |mut caller: Caller<'_, Ctx>, buf: i32, len: i32| -> i32 {
                    if !(0..=65536).contains(&len) {
                        return 28; // EINVAL
                    }
                    let bytes: Vec<u8> = (0..len).map(|_| rand::random::<u8>()).collect();
                    if write(&mut caller, buf, &bytes).is_err() {
                        return 21;
                    }
                    0
                })?;
            }
            "proc_exit" => {
                linker.func_wrap(W, name, |_: Caller<'_, Ctx>, code: i32| -> wasmtime::Result<()> {
                    Err(wasmtime::format_err!("plugin called proc_exit({code})"))
                })?;
            }
            "sched_yield" => {
                linker.func_wrap(W, name, |_: Caller<'_, Ctx>| -> i32 { 0 })?;
            }
            _ => {
                // Files, sockets, polling...: refused. Functions returning an errno get
                // ENOSYS (EBADF for descriptor lookups, so std sees no preopened dirs);
                // anything else traps.
                let ExternType::Func(ty) = import.ty() else { continue };
                let errno = if name.starts_with("fd_") { ERRNO_BADF } else { ERRNO_NOSYS };
                let returns_i32 =
                    ty.results().len() == 1 && matches!(ty.results().next(), Some(wasmtime::ValType::I32));
                let what = name.to_string();
                linker.func_new(W, name, ty, move |_: Caller<'_, Ctx>, _: &[Val], results: &mut [Val]| {
                    if returns_i32 {
                        results[0] = Val::I32(errno);
                        Ok(())
                    } else {
                        Err(wasmtime::format_err!("WASI `{what}` is not available to plugins"))
                    }
                })?;
            }
        }
    }
    Ok(())
}

/// Links a compiled module against the host functions and the reduced WASI.
pub fn prepare(engine: &Engine, module: &Module) -> wasmtime::Result<InstancePre<Ctx>> {
    let mut linker = Linker::new(engine);
    host_functions(&mut linker)?;
    wasi(&mut linker, module)?;
    linker.instantiate_pre(module)
}
