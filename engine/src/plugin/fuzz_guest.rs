//! A guest module for fuzzing the plugin ABI boundary, shared by the property test
//! (`plugin::fuzz`) and the cargo-fuzz target (`fuzz/fuzz_targets/plugin_abi.rs`).
//!
//! The guest decodes its input (a JSON string of letters `a`-`p`, two per byte) into
//! 17-byte instructions `op a b c d` and runs them: `input(a, b)`, `output(a, b)`,
//! `error(a, b)`, `call(a, b, c, d)`, `take(a)`; then returns the byte before the
//! program as the invoke status. Its memory holds every host operation name
//! ([`OPS`]) and well-formed and malformed requests ([`REQUESTS`]) at known offsets,
//! so generated programs reach deep into the host as well as its pointer checks.

use serde_json::Value;

/// Host operation names at their (offset, length) in the guest's memory.
pub const OPS: [(i32, i32); 8] =
    [(4096, 3), (4100, 6), (4107, 6), (4114, 6), (4121, 6), (4128, 4), (4133, 4), (4138, 7)];
/// Requests at (offset, length): valid ones for each op, then malformed JSON.
pub const REQUESTS: [(i32, i32); 7] =
    [(8192, 33), (8226, 12), (8239, 26), (8266, 2), (8269, 47), (8317, 54), (8372, 3)];

/// The WebAssembly text of the guest, with `manifest` (JSON) as its manifest section.
pub fn guest_wat(manifest: &str) -> String {
    let manifest = manifest.replace('"', "\\\"");
    format!(
        r#"(module
  (@custom "switchboard-manifest" "{manifest}")
  (import "switchboard" "input" (func $input (param i32 i32) (result i32)))
  (import "switchboard" "output" (func $output (param i32 i32) (result i32)))
  (import "switchboard" "error" (func $error (param i32 i32) (result i32)))
  (import "switchboard" "call" (func $call (param i32 i32 i32 i32) (result i32)))
  (import "switchboard" "take" (func $take (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 4096) "log\00kv.get\00kv.set\00config\00ticket\00http\00ldap\00unknown")
  (data (i32.const 8192) "{{\"level\":\"info\",\"message\":\"fuzz\"}}\00{{\"key\":\"k1\"}}\00{{\"key\":\"k1\",\"value\":[1,2]}}\00{{}}\00{{\"connection\":\"none\",\"method\":\"GET\",\"path\":\"/\"}}\00{{\"op\":\"search\",\"connection\":\"none\",\"filter\":\"(uid=x)\"}}\00{{\"k")
  (func (export "__switchboard_abi_1"))
  (func (export "switchboard_invoke") (param $alen i32) (param $ilen i32) (result i32)
    (local $i i32) (local $end i32) (local $p i32) (local $op i32)
    (local $a i32) (local $b i32) (local $c i32) (local $d i32)
    (if (i32.gt_u (local.get $ilen) (i32.const 30000)) (then (return (i32.const 0))))
    (drop (call $input (i32.const 0) (i32.const 1024)))
    (local.set $i (i32.const 1025))
    (local.set $end (i32.add (i32.const 1023) (local.get $ilen)))
    (local.set $p (i32.const 32768))
    (block $decoded (loop $decode
      (br_if $decoded (i32.ge_u (i32.add (local.get $i) (i32.const 1)) (local.get $end)))
      (i32.store8 (local.get $p)
        (i32.or
          (i32.shl (i32.and (i32.sub (i32.load8_u (local.get $i)) (i32.const 97)) (i32.const 15)) (i32.const 4))
          (i32.and (i32.sub (i32.load8_u (i32.add (local.get $i) (i32.const 1))) (i32.const 97)) (i32.const 15))))
      (local.set $i (i32.add (local.get $i) (i32.const 2)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $decode)))
    (local.set $i (i32.const 32769))
    (block $stop (loop $run
      (br_if $stop (i32.gt_u (i32.add (local.get $i) (i32.const 17)) (local.get $p)))
      (local.set $op (i32.load8_u (local.get $i)))
      (local.set $a (i32.load (i32.add (local.get $i) (i32.const 1))))
      (local.set $b (i32.load (i32.add (local.get $i) (i32.const 5))))
      (local.set $c (i32.load (i32.add (local.get $i) (i32.const 9))))
      (local.set $d (i32.load (i32.add (local.get $i) (i32.const 13))))
      (block $next
        (block $c4 (block $c3 (block $c2 (block $c1 (block $c0
          (br_table $c0 $c1 $c2 $c3 $c4 (i32.rem_u (local.get $op) (i32.const 5))))
          (drop (call $input (local.get $a) (local.get $b))) (br $next))
          (drop (call $output (local.get $a) (local.get $b))) (br $next))
          (drop (call $error (local.get $a) (local.get $b))) (br $next))
          (drop (call $call (local.get $a) (local.get $b) (local.get $c) (local.get $d))) (br $next))
        (drop (call $take (local.get $a))))
      (local.set $i (i32.add (local.get $i) (i32.const 17)))
      (br $run)))
    (i32.load8_u (i32.const 32768))))"#
    )
}

/// The program as the guest's input: a string of letters `a`-`p`, two per byte.
pub fn encode(program: &[[i32; 5]], status: u8) -> Value {
    let mut bytes = vec![status];
    for [op, a, b, c, d] in program {
        bytes.push(*op as u8);
        for v in [a, b, c, d] {
            bytes.extend(v.to_le_bytes());
        }
    }
    let text: String = bytes.iter().flat_map(|b| [(b'a' + (b >> 4)) as char, (b'a' + (b & 15)) as char]).collect();
    Value::String(text)
}

/// Reads raw fuzzer bytes as a program: the first byte is the status, then 17 bytes
/// per instruction (a trailing partial instruction is dropped).
pub fn decode(bytes: &[u8]) -> (Vec<[i32; 5]>, u8) {
    let status = bytes.first().copied().unwrap_or(0);
    let word = |c: &[u8], at: usize| i32::from_le_bytes([c[at], c[at + 1], c[at + 2], c[at + 3]]);
    let program = bytes
        .get(1..)
        .unwrap_or(&[])
        .chunks_exact(17)
        .take(64)
        .map(|c| [i32::from(c[0]), word(c, 1), word(c, 5), word(c, 9), word(c, 13)])
        .collect();
    (program, status)
}
