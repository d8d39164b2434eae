//! hostile: every action attacks the sandbox in one way. The engine's tests install it
//! and check that each attack fails only its own call, with a clear error.

use std::sync::atomic::{AtomicU64, Ordering};
use switchboard_sdk::host::{self, Level};
use switchboard_sdk::{json, plugin, Error, HttpRequest, LdapRequest, Value};

/// Spins forever (the host's epoch deadline must stop it).
pub fn spin(_: Value) -> Result<Value, Error> {
    let mut x: u64 = 0;
    loop {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        if x == 42 {
            return Ok(json!(x));
        }
    }
}

/// Grows memory without bound (the memory limit must stop it).
pub fn grow_memory(_: Value) -> Result<Value, Error> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = vec![0u8; 16 << 20];
        chunk[0] = 1;
        hoard.push(chunk);
        if hoard.len() > 1_000_000 {
            return Ok(json!(hoard.len()));
        }
    }
}

#[allow(unconditional_recursion)] // the point of the exercise
fn deeper(n: u64, pad: &mut [u8; 256]) -> u64 {
    pad[(n % 256) as usize] = n as u8;
    let mut next = [0u8; 256];
    next[0] = pad[0];
    1 + deeper(n + 1, &mut next) + next[(n % 7) as usize] as u64
}

/// Recurses until the stack overflows (the host's stack limit must trap it).
pub fn recurse(_: Value) -> Result<Value, Error> {
    let mut pad = [0u8; 256];
    Ok(json!(deeper(0, &mut pad)))
}

/// Returns 2 MiB (the host's output cap must refuse it).
pub fn huge_output(_: Value) -> Result<Value, Error> {
    Ok(Value::String("x".repeat(2 << 20)))
}

/// Logs 20 000 lines (the host keeps a capped number).
pub fn log_flood(_: Value) -> Result<Value, Error> {
    for i in 0..20_000 {
        host::log(Level::Info, &format!("line {} {}", i, "y".repeat(200)));
    }
    Ok(json!({"logged": 20000}))
}

/// Panics (a trap for the host).
pub fn panic(_: Value) -> Result<Value, Error> {
    panic!("hostile plugin panics on purpose")
}

/// Tries files, environment and arguments through WASI; reports what it could see.
pub fn wasi_probe(_: Value) -> Result<Value, Error> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string());
    let cwd = std::fs::read_dir(".").map(|d| d.count()).map_err(|e| e.to_string());
    let env: Vec<(String, String)> = std::env::vars().collect();
    let args: Vec<String> = std::env::args().collect();
    Ok(json!({
        "passwd": passwd.is_ok(),
        "cwd": cwd.is_ok(),
        "env": env.len(),
        "args": args.len(),
    }))
}

/// Sends whatever request it is given through the host.
pub fn http(req: HttpRequest) -> Result<Value, Error> {
    let resp = host::http(&req)?;
    Ok(json!({"status": resp.status, "body": resp.body}))
}

/// Sends whatever LDAP request it is given through the host.
pub fn ldap(req: LdapRequest) -> Result<Value, Error> {
    let resp = host::ldap(&req)?;
    Ok(serde_json::to_value(resp).unwrap_or(Value::Null))
}

static SECRET: AtomicU64 = AtomicU64::new(0);

/// Leaves a secret in a static; a fresh instance per call must not show it to the next.
pub fn remember(_: Value) -> Result<Value, Error> {
    SECRET.store(0xC0FFEE, Ordering::SeqCst);
    Ok(json!({"stored": true}))
}

/// Reads what `remember` stored.
pub fn recall(_: Value) -> Result<Value, Error> {
    Ok(json!({"secret": SECRET.load(Ordering::SeqCst)}))
}

/// Writes a key, then spins until the deadline: the write must not survive the timeout.
pub fn write_then_spin(_: Value) -> Result<Value, Error> {
    host::kv_set("written-before-timeout", &json!(true))?;
    spin(json!({}))
}

/// Writes many large entries; the quota must stop it with `limit_exceeded`.
pub fn kv_flood(input: Value) -> Result<Value, Error> {
    let count = input["count"].as_u64().unwrap_or(100);
    let size = input["size"].as_u64().unwrap_or(60 << 10) as usize;
    let blob = "x".repeat(size);
    for i in 0..count {
        host::kv_set(&format!("flood-{}", i), &json!(blob))?;
    }
    Ok(json!({"written": count}))
}

/// Writes one key.
pub fn kv_write(input: Value) -> Result<Value, Error> {
    let key = input["key"].as_str().unwrap_or("k").to_string();
    host::kv_set(&key, &input["value"])?;
    Ok(json!({"written": key}))
}

/// Returns a string of `bytes` x's: a large output of a known size.
pub fn sized_output(input: Value) -> Result<Value, Error> {
    let n = input["bytes"].as_u64().unwrap_or(0).min(2 << 20) as usize;
    Ok(Value::String("x".repeat(n)))
}

/// Works.
pub fn ok(_: Value) -> Result<Value, Error> {
    Ok(json!({"ok": true}))
}

plugin!(manifest = "../manifest.json", actions = {
    "spin" => spin,
    "sized_output" => sized_output,
    "grow_memory" => grow_memory,
    "recurse" => recurse,
    "huge_output" => huge_output,
    "log_flood" => log_flood,
    "panic" => panic,
    "wasi_probe" => wasi_probe,
    "http" => http,
    "ldap" => ldap,
    "remember" => remember,
    "recall" => recall,
    "ok" => ok,
    "write_then_spin" => write_then_spin,
    "kv_flood" => kv_flood,
    "kv_write" => kv_write,
});
