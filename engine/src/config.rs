//! Server configuration: one typed struct.
//!
//! Precedence, lowest first: built-in defaults < the TOML file given with `--config`
//! < `SWITCHBOARD_*` environment variables < command-line flags (the last two are
//! handled by clap in [`crate::cli`]).

use crate::store::Durability;
use crate::ticket::PriorityMatrix;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// API roles. Each token has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including workflows, agents and groups.
    Admin,
    /// Works tickets and decides approvals; reads the rest; starts workflows by hand.
    Agent,
    /// Reads; validates and tries workflows; installs and calls plugins; starts workflows by hand.
    Integrator,
}

impl Role {
    /// The name used in configuration and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Agent => "agent",
            Role::Integrator => "integrator",
        }
    }
}

/// What publishing a workflow that closes a cycle does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnCycle {
    /// Publish and report the cycle.
    Warn,
    /// Refuse with 422.
    Refuse,
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One readable line per event (colours only on a terminal).
    #[default]
    Text,
    /// One JSON object per line, with the span fields (run, workflow, ticket): for a log
    /// shipper.
    Json,
}

/// A bearer token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// Who uses it; recorded as the actor of what they do.
    pub name: String,
    /// The secret (send as `Authorization: Bearer <token>`). At least 16 characters.
    /// Give it or `token_sha256`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token: String,
    /// The SHA-256 of the token, hex: the config file then holds no usable secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// What it may do.
    pub role: Role,
    /// `person` or `integration` (a portal, monitoring, HR): reports and SLA policies
    /// count what integrations do as automation, not as human work. Default: integration
    /// for the `integrator` role, person otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<crate::actor::Kind>,
}

impl Token {
    /// A token given in clear.
    pub fn new(name: &str, token: &str, role: Role) -> Self {
        Self { name: name.into(), token: token.into(), token_sha256: None, role, kind: None }
    }

    /// The SHA-256 the server looks the token up by.
    pub fn digest(&self) -> Option<[u8; 32]> {
        use sha2::Digest;
        match &self.token_sha256 {
            Some(hex_digest) => hex::decode(hex_digest.trim()).ok()?.try_into().ok(),
            None => Some(sha2::Sha256::digest(self.token.as_bytes()).into()),
        }
    }
}

/// Everything the server needs to know.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `text` (default) or `json` log lines (also `--log-format`, `SWITCHBOARD_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Where the sled database lives.
    pub data_dir: PathBuf,
    /// A PostgreSQL database instead of sled (`postgres://user:password@host/db`; also
    /// `--store`, `SWITCHBOARD_STORE`): the backend several nodes share.
    pub store: Option<String>,
    /// What an acknowledged write survives; see the README.
    pub durability: Durability,
    /// sled page-cache size in MiB (sled's own default is 1024).
    pub cache_mb: u64,
    /// Free space (MiB) the data directory's file system must keep: below it the server
    /// refuses writes (507) before the disk is really full, so a refused write is never
    /// half-applied, and refuses to start.
    pub min_free_mb: u64,
    /// Longest time a client may take to send a request's headers, milliseconds.
    pub header_timeout_ms: u64,
    /// Longest time a client may take to send a request's body, milliseconds (in total,
    /// whatever the pace: a body dribbled a byte at a time is cut off).
    pub body_timeout_ms: u64,
    /// Most client connections served at once; further ones are closed at once.
    pub max_connections: usize,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// The address people reach this server at, for signed approval links in e-mails.
    pub public_url: String,
    /// Serve HTTPS with this certificate chain (PEM); with `tls_key`. Both files are read
    /// again on SIGHUP (a renewed certificate without a restart).
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    /// Runs computing or committing a step at the same time. A step's commit waits for
    /// its group flush while holding a worker, so this bounds step throughput to about
    /// `workers / flush time`; plugin and webhook steps give the worker up while they wait.
    pub workers: usize,
    /// Runs held in memory as tasks (running or queued for a worker). Beyond this, new
    /// runs stay only in the store (status `pending`) and are picked up as the queue
    /// drains, so a burst of events costs disk, not memory.
    pub run_queue: usize,
    /// How many times one workflow may appear in a causation chain before the loop
    /// guard refuses to start it again.
    pub loop_depth: usize,
    /// At publish, a workflow that closes a cycle (it writes what another watches, and so
    /// on back to it): `warn` (publish, and say so) or `refuse` (422).
    pub on_cycle: OnCycle,
    /// Longest causation chain of any workflows (stops A -> B -> C -> A cycles too).
    pub max_chain: usize,
    /// Most runs one originating event's whole causation tree may start (its own runs
    /// included), however it fans out.
    pub max_tree_runs: usize,
    /// Most ticket field changes the runs of one causation tree may make.
    pub max_tree_changes: usize,
    /// Most steps one run may execute (guards against jump loops).
    pub max_steps_per_run: u32,
    /// Outbound webhook timeout in milliseconds.
    pub notify_timeout_ms: u64,
    /// Outbound webhook attempts per notify step.
    pub notify_attempts: u32,
    /// First retry delay of outbound webhooks (ms); doubles per attempt, with jitter.
    pub notify_retry_base_ms: u64,
    /// Longest wait between attempts (ms), also the cap on a receiver's `Retry-After`.
    pub notify_retry_max_ms: u64,
    /// API tokens.
    pub tokens: Vec<Token>,
    /// Report settings: minutes of work a deflected ticket saves, by default and per
    /// category (`[reports] minutes_saved_per_ticket = 15`, `minutes_saved = { password = 10 }`).
    pub reports: crate::report::Savings,
    /// Named secrets for signing outbound webhooks (`default` is used when a step names none).
    pub secrets: BTreeMap<String, String>,
    /// Key that encrypts secrets the server stores (inbound webhook signing secrets) at
    /// rest; best given as `{ env = "..." }` or `{ file = "..." }`. Without it they are
    /// stored in clear (and the server says so at start).
    #[serde(skip_serializing)]
    pub secrets_key: Option<String>,
    /// Impact x urgency -> priority.
    pub priority_matrix: PriorityMatrix,
    /// Plugin sandbox limits.
    pub plugins: crate::plugin::PluginConfig,
    /// Named outbound HTTP connections plugins may be granted (the host holds the credentials).
    pub connections: BTreeMap<String, crate::plugin::net::Connection>,
    /// Named LDAP directories plugins may be granted (the host holds the bind credentials).
    pub directories: BTreeMap<String, crate::plugin::directory::Directory>,
    /// Sign-in to the web console with an OpenID Connect provider (absent: tokens only).
    pub oidc: Option<OidcConfig>,
    /// How long finished work is kept (`[retention]`); pruned in the background.
    pub retention: Retention,
}

/// How many days each kind of finished record is kept; 0 keeps it forever. Tickets, their
/// history and SLA clocks (what reports count) are never pruned.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Completed and failed runs with their journals (waiting and running runs stay).
    pub runs_days: u32,
    /// Inbound webhook delivery records (what makes a redelivery a replay).
    pub deliveries_days: u32,
    /// The audit log.
    pub audit_days: u32,
    /// Decided approvals (who approved what: kept like the audit log by default).
    pub approvals_days: u32,
    /// Minutes between pruning passes.
    pub every_minutes: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self { runs_days: 90, deliveries_days: 7, audit_days: 365, approvals_days: 365, every_minutes: 10 }
    }
}

/// Sign-in to the console with an OpenID Connect provider (Microsoft Entra ID, Keycloak,
/// Okta...): the authorization code flow with PKCE; the provider redirects back to
/// `<public_url>/console/oidc/callback` (register that URL with the provider).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer, e.g. `https://login.microsoftonline.com/<tenant>/v2.0`; its
    /// `/.well-known/openid-configuration` is read at the first sign-in.
    pub issuer: String,
    /// The application's client id (the ID token's audience).
    pub client_id: String,
    /// Its client secret (`{ env = "NAME" }` keeps it out of the file); empty for a
    /// public client, which PKCE alone protects.
    #[serde(default, skip_serializing)]
    pub client_secret: String,
    /// What the sign-in button says.
    #[serde(default = "oidc_display_name")]
    pub display_name: String,
    /// Scopes asked for besides `openid`.
    #[serde(default = "oidc_scopes")]
    pub scopes: Vec<String>,
    /// The ID token claim that names the person in Switchboard (the actor of what they
    /// do, the approver they are).
    #[serde(default = "oidc_name_claim")]
    pub name_claim: String,
    /// The claim holding the person's groups or app roles (a string or a list).
    #[serde(default = "oidc_role_claim")]
    pub role_claim: String,
    /// Claim value -> role. A person gets the most capable role their values map to; a
    /// person whose values map to none is refused.
    pub roles: BTreeMap<String, Role>,
}

fn oidc_display_name() -> String {
    "your organisation's sign-in".into()
}

fn oidc_scopes() -> Vec<String> {
    vec!["profile".into(), "email".into()]
}

fn oidc_name_claim() -> String {
    "preferred_username".into()
}

fn oidc_role_claim() -> String {
    "roles".into()
}

/// Replaces `{ env = "NAME" }` and `{ file = "path" }` tables by the string they name.
fn resolve_indirections(v: &mut toml::Value, at: &str, base: &Path) -> Result<(), String> {
    match v {
        toml::Value::Table(t) if t.len() == 1 && (t.contains_key("env") || t.contains_key("file")) => {
            let resolved = if let Some(name) = t.get("env").and_then(|n| n.as_str()) {
                std::env::var(name).map_err(|_| format!("{at}: environment variable `{name}` is not set"))?
            } else if let Some(file) = t.get("file").and_then(|n| n.as_str()) {
                let path = base.join(file);
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{at}: {}: {e}", path.display()))?;
                text.trim_end_matches(['\n', '\r']).to_string()
            } else {
                return Err(format!("{at}: `env` and `file` take a string"));
            };
            *v = toml::Value::String(resolved);
        }
        toml::Value::Table(t) => {
            for (k, child) in t.iter_mut() {
                resolve_indirections(child, format!("{at}.{k}").trim_start_matches('.'), base)?;
            }
        }
        toml::Value::Array(a) => {
            for (i, child) in a.iter_mut().enumerate() {
                resolve_indirections(child, &format!("{at}[{i}]"), base)?;
            }
        }
        _ => {}
    }
    Ok(())
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            log_format: LogFormat::Text,
            data_dir: PathBuf::from("data"),
            store: None,
            durability: Durability::Group,
            cache_mb: 64,
            min_free_mb: 64,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_connections: 1024,
            max_body_bytes: 1 << 20,
            public_url: "http://127.0.0.1:8080".into(),
            tls_cert: None,
            tls_key: None,
            workers: 32,
            run_queue: 4096,
            loop_depth: 3,
            on_cycle: OnCycle::Warn,
            max_chain: 10,
            max_tree_runs: 25,
            max_tree_changes: 100,
            max_steps_per_run: 1000,
            notify_timeout_ms: 5000,
            notify_attempts: 3,
            notify_retry_base_ms: 200,
            notify_retry_max_ms: 30_000,
            tokens: Vec::new(),
            reports: Default::default(),
            secrets: BTreeMap::new(),
            secrets_key: None,
            priority_matrix: PriorityMatrix::default(),
            plugins: crate::plugin::PluginConfig::default(),
            connections: BTreeMap::new(),
            directories: BTreeMap::new(),
            oidc: None,
            retention: Retention::default(),
        }
    }
}

/// Configuration problems.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid configuration.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, with line and column.
        message: String,
    },
    /// A value is not acceptable.
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// The names of the tokens that are integrations (`kind`, or the `integrator` role).
    pub fn integrations(&self) -> impl Iterator<Item = String> + '_ {
        use crate::actor::Kind;
        self.tokens
            .iter()
            .filter(|t| {
                t.kind.unwrap_or(if t.role == Role::Integrator { Kind::Integration } else { Kind::Person })
                    == Kind::Integration
            })
            .map(|t| t.name.clone())
    }

    /// Reads a TOML file over the defaults.
    /// Reads a TOML file. Any string setting may instead be `{ env = "NAME" }` (read from
    /// that environment variable) or `{ file = "/path" }` (the file's contents, trailing
    /// newline trimmed), so that a config file can be committed without its secrets.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: shown.clone(), source })?;
        let mut value: toml::Value =
            toml::from_str(&text).map_err(|e| Error::Parse { path: shown.clone(), message: e.to_string() })?;
        let before = value.clone();
        resolve_indirections(&mut value, "", path.parent().unwrap_or(Path::new(".")))
            .map_err(|message| Error::Parse { path: shown.clone(), message })?;
        if value == before {
            // Nothing indirect: parse the text itself, whose errors carry line and column.
            return toml::from_str(&text).map_err(|e| Error::Parse { path: shown, message: e.to_string() });
        }
        value.try_into().map_err(|e: toml::de::Error| Error::Parse { path: shown, message: e.to_string() })
    }

    /// Checks values that parse but make no sense.
    pub fn check(&self) -> Result<(), Error> {
        for t in &self.tokens {
            if matches!(t.kind, Some(crate::actor::Kind::Automation | crate::actor::Kind::Requester)) {
                return Err(Error::Invalid(format!("token `{}`: kind is `person` or `integration`", t.name)));
            }
            match (&t.token_sha256, t.token.is_empty()) {
                (Some(_), false) => {
                    return Err(Error::Invalid(format!("token `{}`: give `token` or `token_sha256`, not both", t.name)))
                }
                (Some(_), true) if t.digest().is_none() => {
                    return Err(Error::Invalid(format!(
                        "token `{}`: token_sha256 must be 64 hex digits (e.g. `printf %s TOKEN | sha256sum`)",
                        t.name
                    )))
                }
                (None, _) if t.token.len() < 16 => {
                    return Err(Error::Invalid(format!("token `{}` is shorter than 16 characters", t.name)));
                }
                _ => {}
            }
        }
        self.reports.check().map_err(|m| Error::Invalid(format!("reports.{m}")))?;
        if self.secrets_key.as_ref().is_some_and(|k| k.len() < 16) {
            return Err(Error::Invalid("secrets_key must be at least 16 characters".into()));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(Error::Invalid("tls_cert and tls_key go together: give both or neither".into()));
        }
        if self.run_queue < self.workers {
            return Err(Error::Invalid("run_queue must be at least `workers`".into()));
        }
        if self.workers == 0 {
            return Err(Error::Invalid("workers must be at least 1".into()));
        }
        if self.loop_depth == 0 || self.max_chain == 0 || self.max_tree_runs == 0 || self.max_tree_changes == 0 {
            return Err(Error::Invalid(
                "loop_depth, max_chain, max_tree_runs and max_tree_changes must be at least 1".into(),
            ));
        }
        for (name, d) in &self.directories {
            d.tls(name).map_err(Error::Invalid)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_env_or_file_and_tokens_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bind.pw"), "from-a-file\n").unwrap();
        std::env::set_var("SWITCHBOARD_TEST_SIGNING", "from-the-environment");
        let text = r#"
            [secrets]
            default = { env = "SWITCHBOARD_TEST_SIGNING" }
            [[tokens]]
            name = "ops"
            token_sha256 = "0000000000000000000000000000000000000000000000000000000000000001"
            role = "admin"
            [directories.ad]
            url = "ldaps://dc.example.com"
            bind_dn = "cn=svc"
            bind_password = { file = "bind.pw" }
            base_dn = "dc=example,dc=com"
        "#;
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        let c = Config::from_file(&path).unwrap();
        assert_eq!(c.secrets["default"], "from-the-environment");
        assert_eq!(c.directories["ad"].bind_password, "from-a-file");
        c.check().unwrap();
        assert_eq!(c.tokens[0].digest().unwrap()[31], 1);

        std::fs::write(&path, "[secrets]\ndefault = { env = \"SWITCHBOARD_TEST_UNSET_VAR\" }\n").unwrap();
        let e = Config::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("secrets.default") && e.contains("SWITCHBOARD_TEST_UNSET_VAR"), "{e}");
        let mut bad = Config::default();
        bad.tokens.push(Token { token_sha256: Some("xyz".into()), ..Token::new("t", "", Role::Agent) });
        assert!(bad.check().unwrap_err().to_string().contains("64 hex digits"));
    }
}
