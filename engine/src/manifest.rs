//! What a plugin module says about itself, read without running it.
//!
//! [`inspect`] walks the module's sections: the ABI version comes from the name of the
//! `__switchboard_abi_<n>` export, the manifest from the `switchboard-manifest` custom
//! section, and the imports must come from the two modules the host provides.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wasmtime::wasmparser::{Parser, Payload};

use switchboard_sdk::abi::{ABI_MARKER_PREFIX as ABI_PREFIX, INVOKE, MANIFEST_SECTION};

/// The ABI version this host implements (the SDK's).
pub const ABI_VERSION: u32 = switchboard_sdk::abi::ABI_VERSION;
/// Import modules a plugin may use.
pub const ALLOWED_IMPORT_MODULES: [&str; 2] = ["switchboard", "wasi_snapshot_preview1"];

/// An action a plugin offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// Name used in workflow steps.
    pub name: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the input.
    #[serde(default = "any")]
    pub input_schema: Value,
    /// JSON Schema of the output.
    #[serde(default = "any")]
    pub output_schema: Value,
    /// Capabilities it needs, e.g. `http:graph`, `ldap:corp`.
    #[serde(default)]
    pub capabilities: Vec<String>,
}

fn any() -> Value {
    Value::Object(Default::default())
}

/// The manifest embedded in a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Plugin id, `[a-z0-9-]`.
    pub id: String,
    /// Version, e.g. `1.2.0`.
    pub version: String,
    /// ABI version it was built for.
    pub abi: u32,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Its actions.
    pub actions: Vec<Action>,
}

impl Manifest {
    /// An action by name.
    pub fn action(&self, name: &str) -> Option<&Action> {
        self.actions.iter().find(|a| a.name == name)
    }

    /// Every connection any action asks for (`http:x` / `ldap:x` -> `x`).
    pub fn wanted_connections(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .actions
            .iter()
            .flat_map(|a| a.capabilities.iter())
            .filter_map(|c| c.split_once(':').map(|(_, name)| name.to_string()))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Why a module cannot be installed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InspectError {
    /// Not a WebAssembly module.
    #[error("not a valid WebAssembly module: {0}")]
    Malformed(String),
    /// No ABI marker export.
    #[error("no `__switchboard_abi_<n>` export: not a Switchboard plugin (build it with switchboard-sdk)")]
    NoAbi,
    /// Built for another ABI.
    #[error("plugin was built for plugin ABI {found}; this Switchboard supports ABI {supported}. Rebuild it with a switchboard-sdk for ABI {supported} or upgrade Switchboard")]
    AbiMismatch {
        /// The plugin's ABI.
        found: u32,
        /// Ours.
        supported: u32,
    },
    /// No manifest section.
    #[error("no `switchboard-manifest` custom section")]
    NoManifest,
    /// The manifest is not valid.
    #[error("manifest {pointer}: {message}")]
    BadManifest {
        /// JSON pointer into the manifest.
        pointer: String,
        /// What is wrong.
        message: String,
    },
    /// Imports from a module the host does not provide.
    #[error(
        "imports `{module}::{name}`, which the host does not provide (only `switchboard` and `wasi_snapshot_preview1`)"
    )]
    ForeignImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
    },
    /// No entry point.
    #[error("no `switchboard_invoke` export")]
    NoEntryPoint,
}

/// What [`inspect`] found.
#[derive(Debug, Clone)]
pub struct ModuleInfo {
    /// The manifest.
    pub manifest: Manifest,
    /// Functions the module defines (imports not counted).
    pub functions: u32,
    /// Size of its code section, bytes.
    pub code_bytes: u64,
}

/// A JSON Schema compiled the way the host validates plugin input and output: with the
/// linear-time `regex` engine, after refusing any `pattern` or `patternProperties` key
/// that engine cannot run (lookaround, backreferences: patterns that need backtracking
/// and can take exponential time on a crafted input).
pub fn schema_validator(schema: &Value) -> Result<jsonschema::Validator, String> {
    check_patterns(schema, "")?;
    jsonschema::options()
        .with_pattern_options(jsonschema::PatternOptions::regex().size_limit(1 << 20))
        .build(schema)
        .map_err(|e| e.to_string())
}

fn check_patterns(v: &Value, at: &str) -> Result<(), String> {
    let linear = |p: &str, at: &str| {
        regex::RegexBuilder::new(p).size_limit(1 << 20).build().map(|_| ()).map_err(|e| {
            format!("{at}: pattern `{p}` needs a backtracking regex engine (lookaround or backreferences) or is too large; only linear-time patterns are accepted: {e}")
        })
    };
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (k.as_str(), child) {
                    ("pattern", Value::String(p)) => linear(p, &here)?,
                    ("patternProperties", Value::Object(props)) => {
                        for key in props.keys() {
                            linear(key, &here)?;
                        }
                    }
                    _ => {}
                }
                check_patterns(child, &here)?;
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                check_patterns(child, &format!("{at}/{i}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn bad(pointer: &str, message: impl Into<String>) -> InspectError {
    InspectError::BadManifest { pointer: pointer.into(), message: message.into() }
}

/// Reads ABI version, manifest and imports, and checks them.
pub fn inspect(bytes: &[u8]) -> Result<ModuleInfo, InspectError> {
    let mut abi = None;
    let mut manifest = None;
    let mut entry = false;
    let (mut functions, mut code_bytes) = (0u32, 0u64);
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| InspectError::Malformed(e.to_string()))?;
        match payload {
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| InspectError::Malformed(e.to_string()))?;
                    if let Some(v) = export.name.strip_prefix(ABI_PREFIX) {
                        abi = Some(v.parse::<u32>().unwrap_or(u32::MAX));
                    }
                    entry |= export.name == INVOKE;
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| InspectError::Malformed(e.to_string()))?;
                    if !ALLOWED_IMPORT_MODULES.contains(&import.module) {
                        return Err(InspectError::ForeignImport {
                            module: import.module.to_string(),
                            name: import.name.to_string(),
                        });
                    }
                }
            }
            Payload::FunctionSection(reader) => functions = functions.saturating_add(reader.count()),
            Payload::CodeSectionStart { size, .. } => code_bytes += u64::from(size),
            Payload::CustomSection(section) if section.name() == MANIFEST_SECTION => {
                manifest = Some(section.data().to_vec());
            }
            _ => {}
        }
    }
    match abi {
        None => return Err(InspectError::NoAbi),
        Some(found) if found != ABI_VERSION => return Err(InspectError::AbiMismatch { found, supported: ABI_VERSION }),
        Some(_) => {}
    }
    if !entry {
        return Err(InspectError::NoEntryPoint);
    }
    let raw = manifest.ok_or(InspectError::NoManifest)?;
    let manifest: Manifest = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&raw))
        .map_err(|e| bad(&format!("/{}", e.path()).replace('.', "/"), e.inner().to_string()))?;
    check(&manifest)?;
    Ok(ModuleInfo { manifest, functions, code_bytes })
}

fn check(m: &Manifest) -> Result<(), InspectError> {
    if m.id.is_empty()
        || m.id.len() > 64
        || !m.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(bad("/id", "id must be 1-64 characters of a-z, 0-9 and `-`"));
    }
    if m.version.is_empty()
        || m.version.len() > 32
        || !m.version.bytes().all(|b| b.is_ascii_alphanumeric() || b".-+".contains(&b))
    {
        return Err(bad("/version", "version must look like 1.2.3"));
    }
    if m.abi != ABI_VERSION {
        return Err(InspectError::AbiMismatch { found: m.abi, supported: ABI_VERSION });
    }
    if m.actions.is_empty() {
        return Err(bad("/actions", "a plugin needs at least one action"));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, a) in m.actions.iter().enumerate() {
        if a.name.is_empty() || !seen.insert(a.name.as_str()) {
            return Err(bad(&format!("/actions/{i}/name"), "action names must be non-empty and unique"));
        }
        for (key, schema) in [("input_schema", &a.input_schema), ("output_schema", &a.output_schema)] {
            if let Err(e) = schema_validator(schema) {
                return Err(bad(&format!("/actions/{i}/{key}"), format!("not an accepted JSON Schema: {e}")));
            }
        }
        for (j, c) in a.capabilities.iter().enumerate() {
            let ok = c.split_once(':').is_some_and(|(kind, name)| matches!(kind, "http" | "ldap") && !name.is_empty());
            if !ok {
                return Err(bad(
                    &format!("/actions/{i}/capabilities/{j}"),
                    "capabilities look like `http:<connection>` or `ldap:<connection>`",
                ));
            }
        }
    }
    Ok(())
}

/// An installed plugin version, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginRecord {
    /// Plugin id (from the manifest).
    pub id: String,
    /// The version calls use.
    pub version: String,
    /// Every version installed, oldest first.
    pub versions: Vec<String>,
    /// Manifest of the current version.
    pub manifest: Manifest,
    /// Disabled plugins cannot be called.
    pub enabled: bool,
    /// Connections the admin granted.
    pub connections: Vec<String>,
    /// Configuration values the plugin may read.
    pub config: std::collections::BTreeMap<String, String>,
    /// SHA-256 of the current module, hex.
    pub sha256: String,
    /// When the current version was installed.
    pub installed_at: chrono::DateTime<chrono::Utc>,
    /// SHA-256 of each kept version's module, hex (a version is never replaced by
    /// other bytes).
    #[serde(default)]
    pub hashes: std::collections::BTreeMap<String, String>,
    /// Who installed the current version.
    #[serde(default)]
    pub installed_by: String,
}
