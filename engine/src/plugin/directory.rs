//! LDAP for plugins, through admin-configured directory connections.
//!
//! The host binds with the connection's credentials (the plugin never sees them), runs
//! one operation, and unbinds. The same address rules as HTTP apply: loopback and
//! private addresses only when the connection allows them. `unicodePwd` values are
//! encoded the way Active Directory wants them: the password in double quotes, UTF-16LE.
//!
//! Transport: plain `ldap://`, `ldaps://`, or `ldap://` upgraded with StartTLS
//! (`starttls = true`). Active Directory accepts `unicodePwd` only over TLS. Server
//! certificates are checked against the system roots, or only against the CAs in
//! `ca_file` (PEM) for a private PKI; there is no switch to skip verification.

use super::net::restricted;
use ldap3::{LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use switchboard_sdk::LdapRequest as Request;

/// A named directory connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    /// `ldap://host[:389]` or `ldaps://host[:636]`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    #[serde(default)]
    pub starttls: bool,
    /// PEM file of the CA certificates to trust for this directory's TLS (default: the
    /// system's roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// DN the host binds as.
    pub bind_dn: String,
    /// Its password.
    pub bind_password: String,
    /// Default search base.
    pub base_dn: String,
    /// Allow loopback and private addresses (on-prem directories usually need this).
    #[serde(default)]
    pub allow_private: bool,
    /// Per-operation timeout, milliseconds.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_timeout() -> u64 {
    5000
}

fn connection(req: &Request) -> &str {
    match req {
        Request::Search { connection, .. }
        | Request::Modify { connection, .. }
        | Request::Add { connection, .. }
        | Request::Delete { connection, .. }
        | Request::Compare { connection, .. } => connection,
    }
}

/// `"password"` in UTF-16LE, as Active Directory's `unicodePwd` expects.
pub fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"").encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

fn value_bytes(attr: &str, v: &str) -> Vec<u8> {
    if attr.eq_ignore_ascii_case("unicodePwd") {
        unicode_pwd(v)
    } else {
        v.as_bytes().to_vec()
    }
}

impl Directory {
    /// Checks the URL scheme and TLS settings; builds the TLS configuration when a
    /// `ca_file` is given (None: ldap3's default, the system roots).
    pub fn tls(&self, name: &str) -> Tls {
        let scheme = self.url.split("://").next().unwrap_or("");
        match (scheme, self.starttls) {
            ("ldap", _) | ("ldaps", false) => {}
            ("ldaps", true) => {
                return Err(format!("directory `{name}`: `starttls` applies to ldap:// URLs, not ldaps://"))
            }
            _ => return Err(format!("directory `{name}`: url must start with ldap:// or ldaps://")),
        }
        let Some(path) = &self.ca_file else { return Ok(None) };
        let pem = std::fs::read(path).map_err(|e| format!("directory `{name}`: ca_file {}: {e}", path.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        use rustls::pki_types::{pem::PemObject, CertificateDer};
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("directory `{name}`: ca_file {}: {e}", path.display()))?;
            roots.add(cert).map_err(|e| format!("directory `{name}`: ca_file {}: {e}", path.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("directory `{name}`: ca_file {} holds no PEM certificate", path.display()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("directory `{name}`: TLS: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Some(Arc::new(config)))
    }
}

/// A directory's TLS configuration: none (plain, or ldap3's default roots), a custom
/// one, or why it could not be built.
type Tls = Result<Option<Arc<rustls::ClientConfig>>, String>;

/// Directory connections, with their TLS configuration.
pub struct Directories(BTreeMap<String, (Directory, Tls)>);

fn error(code: &str, message: impl Into<String>, retryable: bool) -> Value {
    json!({"error": {"code": code, "message": message.into(), "retryable": retryable}})
}

impl Directories {
    /// Over the configured directories.
    pub fn new(dirs: BTreeMap<String, Directory>) -> Self {
        // ldap3 builds its default TLS configuration (no `ca_file`) with the process's
        // rustls provider; when a build links more than one provider (a workspace build
        // with the test tools links aws-lc beside ring), none is the default and ldap3
        // would panic. The engine's TLS is ring: say so once (a no-op when already set).
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self(
            dirs.into_iter()
                .map(|(name, d)| {
                    let tls = d.tls(&name);
                    (name, (d, tls))
                })
                .collect(),
        )
    }

    /// Whether a directory exists.
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Runs a plugin's request; `granted` are the connections granted to it. Returns
    /// `{"ok": {code, message, entries, matched}}` (LDAP result codes are data, not errors)
    /// or `{"error": ...}` when the host refused or could not reach the directory.
    pub async fn run(&self, granted: &[String], req: Request) -> Value {
        let name = connection(&req).to_string();
        let Some((dir, tls)) = self.0.get(&name).filter(|_| granted.contains(&name)) else {
            return error("denied", format!("directory connection `{name}` is not granted to this plugin"), false);
        };
        let tls = match tls {
            Ok(t) => t.clone(),
            Err(e) => return error("not_configured", e.clone(), false),
        };
        if let Err(e) = check_address(&name, dir).await {
            return error("denied", e, false);
        }
        match tokio::time::timeout(Duration::from_millis(dir.timeout_ms), run(dir, tls, req)).await {
            Ok(Ok(v)) => json!({ "ok": v }),
            Ok(Err(e)) => error("unavailable", format!("directory `{name}`: {e}"), true),
            Err(_) => error("unavailable", format!("directory `{name}` did not answer in {} ms", dir.timeout_ms), true),
        }
    }
}

async fn check_address(name: &str, dir: &Directory) -> Result<(), String> {
    let url = reqwest::Url::parse(&dir.url).map_err(|e| format!("directory `{name}` url: {e}"))?;
    let host = url.host_str().unwrap_or("");
    let port = url.port().unwrap_or(if url.scheme() == "ldaps" { 636 } else { 389 });
    let addrs = tokio::net::lookup_host((host, port)).await.map_err(|e| format!("cannot resolve {host}: {e}"))?;
    for a in addrs {
        if let Some(kind) = restricted(a.ip()) {
            if !dir.allow_private || kind == "link-local" {
                return Err(format!(
                    "{host} resolves to {}, a {kind} address, which directory `{name}` does not allow",
                    a.ip()
                ));
            }
        }
    }
    Ok(())
}

async fn run(dir: &Directory, tls: Option<Arc<rustls::ClientConfig>>, req: Request) -> ldap3::result::Result<Value> {
    let mut settings =
        LdapConnSettings::new().set_conn_timeout(Duration::from_millis(dir.timeout_ms)).set_starttls(dir.starttls);
    if let Some(config) = tls {
        settings = settings.set_config(config);
    }
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &dir.url).await?;
    ldap3::drive!(conn);
    let bind = ldap.simple_bind(&dir.bind_dn, &dir.bind_password).await?;
    if bind.rc != 0 {
        return Ok(json!({"code": bind.rc, "message": format!("bind failed: {}", bind.text)}));
    }
    let out = match req {
        Request::Search { base, filter, attrs, .. } => {
            let base = if base.is_empty() { dir.base_dn.clone() } else { base };
            let res = ldap.search(&base, Scope::Subtree, &filter, attrs).await?;
            let entries: Vec<Value> = res
                .0
                .into_iter()
                .map(|e| {
                    let e = SearchEntry::construct(e);
                    let attrs: BTreeMap<String, Vec<String>> = e.attrs.into_iter().collect();
                    json!({"dn": e.dn, "attrs": attrs})
                })
                .collect();
            json!({"code": res.1.rc, "message": res.1.text, "entries": entries})
        }
        Request::Modify { dn, changes, .. } => {
            let mut mods = Vec::new();
            for c in changes {
                let values: HashSet<Vec<u8>> = c.values.iter().map(|v| value_bytes(&c.attr, v)).collect();
                let attr = c.attr.as_bytes().to_vec();
                mods.push(match c.op.as_str() {
                    "add" => Mod::Add(attr, values),
                    "delete" => Mod::Delete(attr, values),
                    "replace" => Mod::Replace(attr, values),
                    other => return Ok(json!({"code": 2, "message": format!("unknown modify op `{other}`")})),
                });
            }
            let r = ldap.modify(&dn, mods).await?;
            json!({"code": r.rc, "message": r.text})
        }
        Request::Add { dn, attrs, .. } => {
            let attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = attrs
                .iter()
                .map(|(k, vs)| (k.as_bytes().to_vec(), vs.iter().map(|v| value_bytes(k, v)).collect()))
                .collect();
            let r = ldap.add(&dn, attrs).await?;
            json!({"code": r.rc, "message": r.text})
        }
        Request::Delete { dn, .. } => {
            let r = ldap.delete(&dn).await?;
            json!({"code": r.rc, "message": r.text})
        }
        Request::Compare { dn, attr, value, .. } => {
            let r = ldap.compare(&dn, &attr, value_bytes(&attr, &value)).await?;
            let rc = r.0.rc;
            json!({"code": if rc == 5 || rc == 6 { 0 } else { rc }, "message": r.0.text, "matched": rc == 6})
        }
    };
    let _ = ldap.unbind().await;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_pwd_is_quoted_utf16le() {
        assert_eq!(unicode_pwd("Ab1"), vec![b'"', 0, b'A', 0, b'b', 0, b'1', 0, b'"', 0]);
    }
}
