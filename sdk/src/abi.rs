//! The wire contract between a plugin and the host, version 1.
//!
//! A plugin module:
//! - exports a marker function `__switchboard_abi_1` (the host reads the version from the
//!   export's *name*, without running any code, and refuses other versions at install);
//! - carries its manifest as JSON in a custom section named `switchboard-manifest`;
//! - exports `switchboard_invoke(action_len, input_len) -> i32`, the one entry point. The
//!   guest allocates buffers of those sizes and asks the host to fill them (`input`),
//!   runs the action, and hands back the result (`output` or `error`), returning
//!   [`INVOKE_OK`] or [`INVOKE_ERROR`].
//!
//! Host imports (module [`HOST_MODULE`]), every one returning a status (negative) or a
//! length (zero or more):
//! - `input(action_ptr, input_ptr) -> i32`
//! - `output(ptr, len) -> i32`, `error(ptr, len) -> i32`
//! - `call(op_ptr, op_len, req_ptr, req_len) -> i32`: a host call (see [`ops`]); on
//!   success returns the length of the JSON reply, which `take(ptr)` copies out.
//! - `take(ptr) -> i32`

/// The ABI version this SDK speaks.
pub const ABI_VERSION: u32 = 1;
/// The export whose presence declares the ABI version.
pub const ABI_MARKER: &str = "__switchboard_abi_1";
/// Prefix of ABI marker exports (`__switchboard_abi_<n>`).
pub const ABI_MARKER_PREFIX: &str = "__switchboard_abi_";
/// Custom section holding the manifest.
pub const MANIFEST_SECTION: &str = "switchboard-manifest";
/// Import module of host functions.
pub const HOST_MODULE: &str = "switchboard";
/// The entry point export.
pub const INVOKE: &str = "switchboard_invoke";

/// `switchboard_invoke` succeeded and called `output`.
pub const INVOKE_OK: i32 = 0;
/// `switchboard_invoke` failed and called `error`.
pub const INVOKE_ERROR: i32 = 1;

/// Status codes returned by host imports (negative, so lengths stay non-negative).
pub mod status {
    /// An argument was out of range or malformed.
    pub const BAD_ARGUMENT: i32 = -1;
    /// The plugin lacks the capability (connection not granted, host off the allow-list).
    pub const DENIED: i32 = -2;
    /// A size or count limit was hit (output too large, too many logs...).
    pub const LIMIT_EXCEEDED: i32 = -3;
    /// A pointer/length pair fell outside the plugin's memory.
    pub const INVALID_MEMORY: i32 = -4;
    /// The operation is unknown.
    pub const NOT_FOUND: i32 = -5;
    /// The request was not valid JSON for the operation.
    pub const PARSE_FAILURE: i32 = -6;
    /// Nothing is waiting to be taken.
    pub const NOTHING_PENDING: i32 = -7;
}

/// Host call operation names.
pub mod ops {
    /// `{level, message}` -> `null`
    pub const LOG: &str = "log";
    /// `{key}` -> string or null
    pub const CONFIG: &str = "config";
    /// `{key}` -> JSON value or null
    pub const KV_GET: &str = "kv.get";
    /// `{key, value}` -> `null`
    pub const KV_SET: &str = "kv.set";
    /// `{}` -> the ticket the run is about
    pub const TICKET: &str = "ticket";
    /// [`crate::HttpRequest`] -> [`crate::HttpResponse`]
    pub const HTTP: &str = "http";
    /// [`crate::LdapRequest`] -> [`crate::LdapResponse`]
    pub const LDAP: &str = "ldap";
}
