//! # switchboard-sdk
//!
//! Write [Switchboard](https://example.invalid/switchboard) plugins in Rust. A plugin is a
//! WebAssembly module with one or more **actions**: typed functions from JSON input to
//! JSON output, called by workflow `plugin` steps. The host sandboxes every call (time,
//! memory, output and log limits; no files, environment or sockets) and lends the plugin
//! a few capabilities through [`host`]: outbound HTTP and LDAP through connections the
//! admin configured (the host adds the credentials; the plugin never sees them), config
//! values, a small key-value store, logs that land in the run trace, and the ticket.
//!
//! ```ignore
//! use serde::{Deserialize, Serialize};
//! use switchboard_sdk::{plugin, Error};
//!
//! #[derive(Deserialize)]
//! struct In { title: String }
//! #[derive(Serialize)]
//! struct Out { shout: String }
//!
//! fn shout(input: In) -> Result<Out, Error> {
//!     Ok(Out { shout: input.title.to_uppercase() })
//! }
//!
//! plugin!(manifest = "../manifest.json", actions = { "shout" => shout });
//! ```
//!
//! Layout: [`abi`] is the wire contract; [`host`] the host calls (real imports on
//! `wasm32`, an in-process stand-in elsewhere so plugin logic is unit-tested natively);
//! [`plugin!`] generates the exports.

#![deny(missing_docs)]

pub mod abi;
pub mod host;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use serde_json::{json, Value};

/// An action's failure: a stable code, a message for the run trace, and whether trying
/// again may help (the host retries retryable errors with backoff).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Error {
    /// Stable machine-readable code, e.g. `not_found`, `throttled`.
    pub code: String,
    /// For people.
    pub message: String,
    /// Whether a retry may succeed.
    #[serde(default)]
    pub retryable: bool,
    /// How long to wait before that retry, in milliseconds (e.g. a service's
    /// `Retry-After`); the host waits at least this long, up to its configured cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl Error {
    /// A permanent error.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Error { code: code.to_string(), message: message.into(), retryable: false, retry_after_ms: None }
    }

    /// An error worth retrying (throttling, timeouts, 5xx).
    pub fn retryable(code: &str, message: impl Into<String>) -> Self {
        Error { code: code.to_string(), message: message.into(), retryable: true, retry_after_ms: None }
    }

    /// A retryable error that asks the host to wait `ms` milliseconds before trying again.
    pub fn retry_after(code: &str, message: impl Into<String>, ms: u64) -> Self {
        Error { code: code.to_string(), message: message.into(), retryable: true, retry_after_ms: Some(ms) }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// An outbound HTTP request through a named connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// The connection's name, as configured by the admin and granted to the plugin.
    pub connection: String,
    /// `GET`, `POST`, `PATCH`, `PUT`, `DELETE`.
    pub method: String,
    /// Path and query, relative to the connection's base URL, base path included: with
    /// base `https://graph.microsoft.com/v1.0`, `/users/42` is
    /// `https://graph.microsoft.com/v1.0/users/42`. An absolute URL is accepted only if it
    /// stays on the connection's origin and under its base path (whole segments: base
    /// `/api` does not cover `/api-admin`).
    pub path: String,
    /// Extra headers (credentials are added by the host; `authorization` is refused).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// The reply to an [`HttpRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers (lower-case names).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body parsed as JSON when it is JSON, else a string (null when empty).
    #[serde(default)]
    pub body: Value,
}

/// An LDAP operation through a named directory connection (the host binds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LdapRequest {
    /// Subtree search.
    Search {
        /// Connection name.
        connection: String,
        /// Base DN (empty: the connection's base).
        #[serde(default)]
        base: String,
        /// RFC 4515 filter.
        filter: String,
        /// Attributes to return (empty: all).
        #[serde(default)]
        attrs: Vec<String>,
    },
    /// Modify an entry.
    Modify {
        /// Connection name.
        connection: String,
        /// Entry DN.
        dn: String,
        /// Changes in order.
        changes: Vec<LdapChange>,
    },
    /// Add an entry.
    Add {
        /// Connection name.
        connection: String,
        /// Entry DN.
        dn: String,
        /// Attributes.
        attrs: BTreeMap<String, Vec<String>>,
    },
    /// Delete an entry.
    Delete {
        /// Connection name.
        connection: String,
        /// Entry DN.
        dn: String,
    },
    /// Compare an attribute value.
    Compare {
        /// Connection name.
        connection: String,
        /// Entry DN.
        dn: String,
        /// Attribute.
        attr: String,
        /// Value.
        value: String,
    },
}

/// One modification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LdapChange {
    /// `add`, `delete` or `replace`.
    pub op: String,
    /// Attribute.
    pub attr: String,
    /// Values (for `unicodePwd`, the host encodes the quoted UTF-16LE form).
    #[serde(default)]
    pub values: Vec<String>,
}

/// The reply to an [`LdapRequest`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LdapResponse {
    /// LDAP result code (0 success).
    pub code: u32,
    /// Diagnostic message.
    #[serde(default)]
    pub message: String,
    /// Search results: DN and attributes.
    #[serde(default)]
    pub entries: Vec<LdapEntry>,
    /// Compare result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<bool>,
}

/// A search result entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LdapEntry {
    /// Distinguished name.
    pub dn: String,
    /// Attribute values.
    pub attrs: BTreeMap<String, Vec<String>>,
}

#[doc(hidden)]
pub mod __private {
    //! Glue used by the [`plugin!`](crate::plugin) macro. Not a public API.
    use super::*;
    use serde::de::DeserializeOwned;

    /// Runs a typed action on raw JSON input.
    pub fn call<I: DeserializeOwned, O: Serialize>(
        f: fn(I) -> Result<O, Error>,
        input: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let input: I = serde_json::from_slice(input)
            .map_err(|e| Error::new("bad_input", format!("input does not match: {}", e)))?;
        let out = f(input)?;
        serde_json::to_vec(&out).map_err(|e| Error::new("bad_output", e.to_string()))
    }

    /// The body of `switchboard_invoke`.
    pub fn dispatch(action_len: i32, input_len: i32, run: fn(&str, &[u8]) -> Result<Vec<u8>, Error>) -> i32 {
        let (action, input) = match host::read_invocation(action_len, input_len) {
            Ok(x) => x,
            Err(e) => return host::finish(Err(e)),
        };
        host::finish(run(&action, &input))
    }
}

/// Declares the plugin: embeds the manifest, exports the ABI marker and the entry point,
/// and maps action names to functions `fn(Input) -> Result<Output, Error>`.
///
/// `manifest` is a path relative to the file using the macro (as for `include_bytes!`).
#[macro_export]
macro_rules! plugin {
    (manifest = $manifest:literal, actions = { $($name:literal => $func:path),* $(,)? }) => {
        #[cfg(target_arch = "wasm32")]
        #[link_section = "switchboard-manifest"]
        #[doc(hidden)]
        pub static __SWITCHBOARD_MANIFEST: [u8; include_bytes!($manifest).len()] = *include_bytes!($manifest);

        /// ABI marker: the host reads the version from this export's name.
        #[cfg(target_arch = "wasm32")]
        #[no_mangle]
        pub extern "C" fn __switchboard_abi_1() {}

        /// The entry point the host calls.
        #[cfg(target_arch = "wasm32")]
        #[no_mangle]
        pub extern "C" fn switchboard_invoke(action_len: i32, input_len: i32) -> i32 {
            fn run(action: &str, input: &[u8]) -> Result<Vec<u8>, $crate::Error> {
                match action {
                    $($name => $crate::__private::call($func, input),)*
                    other => Err($crate::Error::new("unknown_action", format!("no action `{}`", other))),
                }
            }
            $crate::__private::dispatch(action_len, input_len, run)
        }

        /// The embedded manifest, for native tests.
        #[cfg(not(target_arch = "wasm32"))]
        pub fn __switchboard_manifest() -> $crate::Value {
            $crate::__private_manifest(include_bytes!($manifest))
        }
    };
}

#[doc(hidden)]
pub fn __private_manifest(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}
