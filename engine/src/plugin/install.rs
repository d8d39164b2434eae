//! Installing, updating and removing plugins: the module is inspected (ABI, manifest,
//! sizes) without running it, compiled once, and stored with its artifact; an update
//! shows what changed in the manifest; removal refuses a plugin workflows still call.

use super::manifest::{self, inspect, InspectError, PluginRecord};
use super::{storage, Installed, Installer, Loaded, PluginError, PluginHost};
use crate::store::{Tx, Write};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;

impl PluginHost {
    /// Checks the caps that bound what a module costs to compile.
    fn check_size(&self, info: &manifest::ModuleInfo) -> Result<(), PluginError> {
        let c = &self.config;
        let over = |what: &str, got: u64, max: u64, key: &str| {
            PluginError::new("too_complex", format!("module has {got} {what}; the limit is {max} (plugins.{key})"))
        };
        if info.functions > c.max_functions {
            return Err(over("functions", info.functions.into(), c.max_functions.into(), "max_functions"));
        }
        if info.code_bytes > c.max_code_bytes {
            return Err(over("bytes of code", info.code_bytes, c.max_code_bytes, "max_code_bytes"));
        }
        Ok(())
    }

    /// Validates and stores a module as the plugin's current version.
    ///
    /// A new id may be installed by an admin or an integrator and starts with no
    /// grants. A new version of an installed id is an admin's decision: it keeps the
    /// plugin's grants and config, and the answer lists what it asks for that the old
    /// one did not. A version is never replaced by other bytes (`version_conflict`);
    /// the same bytes again change nothing.
    pub async fn install(&self, bytes: &[u8], actor: &str, who: Installer) -> Result<Installed, PluginError> {
        if bytes.len() > self.config.max_module_bytes {
            return Err(PluginError::new(
                "too_large",
                format!(
                    "module is {} bytes; the limit is {} (plugins.max_module_bytes)",
                    bytes.len(),
                    self.config.max_module_bytes
                ),
            ));
        }
        let owned = Arc::new(bytes.to_vec());
        let parse = owned.clone();
        let info = tokio::task::spawn_blocking(move || inspect(&parse))
            .await
            .map_err(|e| PluginError::new("invalid_plugin", format!("reading the module crashed: {e}")))?
            .map_err(|e: InspectError| PluginError::new("invalid_plugin", e.to_string()))?;
        self.check_size(&info)?;
        let m = info.manifest;
        let sha256 = hex::encode(Sha256::digest(bytes));
        let existing = self.store.plugin(&m.id).await.map_err(storage)?;
        if let Some(old) = &existing {
            if who != Installer::Admin {
                return Err(PluginError::new(
                    "forbidden",
                    format!(
                        "plugin `{}` is installed (version {}); only an admin may install a new version of it, since its grants go with it",
                        m.id, old.version
                    ),
                ));
            }
            if old.versions.contains(&m.version) {
                let kept = match old.hashes.get(&m.version) {
                    Some(h) => Some(h.clone()),
                    None => self
                        .store
                        .plugin_module(&m.id, &m.version)
                        .await
                        .map_err(storage)?
                        .map(|b| hex::encode(Sha256::digest(&b))),
                };
                if kept.as_deref() != Some(sha256.as_str()) {
                    return Err(PluginError::new(
                        "version_conflict",
                        format!(
                            "version {} of `{}` is installed with other bytes (sha256 {}); give the new module a new version",
                            m.version,
                            m.id,
                            kept.unwrap_or_default()
                        ),
                    ));
                }
                if old.version == m.version {
                    return Ok(Installed {
                        plugin: old.clone(),
                        replaced: None,
                        changes: json!({}),
                        pruned: Vec::new(),
                        created: false,
                    });
                }
            }
        }
        let (pre, artifact) = self.compile(owned).await?;
        let mut versions = existing.as_ref().map(|r| r.versions.clone()).unwrap_or_default();
        versions.retain(|v| v != &m.version);
        versions.push(m.version.clone());
        let excess = versions.len().saturating_sub(self.config.keep_versions.max(1));
        let pruned: Vec<String> = versions.drain(..excess).collect();
        let mut hashes = existing.as_ref().map(|r| r.hashes.clone()).unwrap_or_default();
        hashes.insert(m.version.clone(), sha256.clone());
        hashes.retain(|v, _| versions.contains(v));
        let changes = existing.as_ref().map_or(json!({}), |old| manifest_changes(&old.manifest, &m));
        let record = PluginRecord {
            id: m.id.clone(),
            version: m.version.clone(),
            versions,
            enabled: existing.as_ref().is_none_or(|r| r.enabled),
            connections: existing.as_ref().map(|r| r.connections.clone()).unwrap_or_default(),
            config: existing.as_ref().map(|r| r.config.clone()).unwrap_or_default(),
            sha256,
            installed_at: chrono::Utc::now(),
            hashes,
            installed_by: actor.to_string(),
            manifest: m,
        };
        let mut tx = Tx::new();
        tx.push(Write::PluginModule { id: record.id.clone(), version: record.version.clone(), bytes: bytes.to_vec() });
        if !artifact.is_empty() {
            tx.push(Write::PluginArtifact { id: record.id.clone(), version: record.version.clone(), bytes: artifact });
        }
        for v in &pruned {
            tx.push(Write::DeletePluginVersion { id: record.id.clone(), version: v.clone() });
        }
        let replaced = existing.as_ref().map(|r| r.version.clone());
        tx.push(Write::Plugin(Box::new(record.clone()))).push(Write::Audit(crate::run::AuditEntry {
            at: record.installed_at,
            actor: actor.into(),
            action: if replaced.is_some() { "plugin.upgrade" } else { "plugin.install" }.into(),
            target: record.id.clone(),
            detail: json!({"version": record.version, "sha256": record.sha256, "replaced": replaced,
                "changes": changes, "pruned": pruned}),
        }));
        self.store.commit(tx).await.map_err(storage)?;
        // Keep what was just compiled: the first call need not compile again.
        let loaded = Arc::new(Self::loaded(record.clone(), pre)?);
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).insert(record.id.clone(), loaded);
        Ok(Installed { plugin: record, created: replaced.is_none(), replaced, changes, pruned })
    }

    /// Removes a plugin entirely (`version` None) or one kept version. Removing the
    /// current version makes the newest other kept version current; the last version
    /// goes only with the plugin. The caller checks that no run still needs it.
    pub async fn delete(
        &self,
        id: &str,
        version: Option<&str>,
        actor: &str,
    ) -> Result<Option<PluginRecord>, PluginError> {
        let record = self.installed(id).await?;
        let mut tx = Tx::new();
        let after = match version {
            None => {
                tx.push(Write::DeletePlugin { id: id.to_string() });
                None
            }
            Some(v) if !record.versions.iter().any(|k| k == v) => {
                return Err(PluginError::new("not_found", format!("plugin `{id}` has no version {v} kept")));
            }
            Some(v) if record.versions.len() == 1 => {
                return Err(PluginError::new(
                    "conflict",
                    format!("{v} is the only version of `{id}`; delete the plugin instead"),
                ));
            }
            Some(v) => {
                let mut next = record.clone();
                next.versions.retain(|k| k != v);
                next.hashes.remove(v);
                if record.version == v {
                    let back = next.versions.last().cloned().unwrap_or_default();
                    let bytes =
                        self.store.plugin_module(id, &back).await.map_err(storage)?.ok_or_else(|| {
                            PluginError::new("not_found", format!("module of `{id}` {back} is missing"))
                        })?;
                    let info = inspect(&bytes).map_err(|e| PluginError::new("invalid_plugin", e.to_string()))?;
                    next.version = back;
                    next.manifest = info.manifest;
                    next.sha256 = hex::encode(Sha256::digest(&bytes));
                }
                tx.push(Write::DeletePluginVersion { id: id.to_string(), version: v.to_string() });
                tx.push(Write::Plugin(Box::new(next.clone())));
                Some(next)
            }
        };
        tx.push(Write::Audit(crate::run::AuditEntry {
            at: chrono::Utc::now(),
            actor: actor.into(),
            action: "plugin.delete".into(),
            target: id.to_string(),
            detail: json!({"version": version, "current": after.as_ref().map(|r| r.version.clone())}),
        }));
        self.store.commit(tx).await.map_err(storage)?;
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        self.kv_usage.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        Ok(after)
    }

    /// Replaces grants, config or the enabled flag.
    pub async fn update(&self, record: PluginRecord, actor: &str) -> Result<PluginRecord, PluginError> {
        for c in &record.connections {
            if !self.net.has(c) && !self.directories.has(c) {
                return Err(PluginError::new(
                    "unknown_connection",
                    format!("connection `{c}` is not configured on this server"),
                ));
            }
        }
        let mut tx = Tx::new();
        tx.push(Write::Plugin(Box::new(record.clone()))).push(Write::Audit(crate::run::AuditEntry {
            at: chrono::Utc::now(),
            actor: actor.into(),
            action: "plugin.update".into(),
            target: record.id.clone(),
            detail: json!({"enabled": record.enabled, "connections": record.connections}),
        }));
        self.store.commit(tx).await.map_err(storage)?;
        // Same module, new grants: keep the compiled code, swap the record.
        let mut cache = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = cache.get(&record.id).cloned() {
            let fresh = Loaded { record: record.clone(), pre: old.pre.clone(), validators: old.validators.clone() };
            cache.insert(record.id.clone(), Arc::new(fresh));
        }
        Ok(record)
    }
}

/// `artifact` prefixed by its SHA-256, as kept in the store.
pub(super) fn with_hash(artifact: &[u8]) -> Vec<u8> {
    let mut out = Sha256::digest(artifact).to_vec();
    out.extend_from_slice(artifact);
    out
}

/// What a new manifest adds and drops against the installed one.
fn manifest_changes(old: &manifest::Manifest, new: &manifest::Manifest) -> Value {
    let names =
        |m: &manifest::Manifest| m.actions.iter().map(|a| a.name.clone()).collect::<std::collections::BTreeSet<_>>();
    let conns = |m: &manifest::Manifest| m.wanted_connections().into_iter().collect::<std::collections::BTreeSet<_>>();
    let (oa, na, oc, nc) = (names(old), names(new), conns(old), conns(new));
    json!({
        "from": old.version,
        "to": new.version,
        "added_actions": na.difference(&oa).collect::<Vec<_>>(),
        "removed_actions": oa.difference(&na).collect::<Vec<_>>(),
        "added_connections": nc.difference(&oc).collect::<Vec<_>>(),
        "removed_connections": oc.difference(&nc).collect::<Vec<_>>(),
    })
}

pub(super) fn pointer_or_root(p: &str) -> String {
    if p.is_empty() {
        "/".into()
    } else {
        p.to_string()
    }
}
