//! Demo data for `switchboard serve --demo`: tokens, groups, agents, a signing secret.

use crate::config::{Config, Role, Token};
use crate::executor::Engine;
use crate::store::{DocKind, Tx};
use crate::team::{Agent, Group};
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;

/// The demo admin token (documented in the README; never use it in production).
pub const ADMIN_TOKEN: &str = "demo-admin-token";
/// The demo agent token.
pub const AGENT_TOKEN: &str = "demo-agent-token";
/// The demo integrator token.
pub const INTEGRATOR_TOKEN: &str = "demo-integrator-token";
/// Tokens of two approvers (agents `grace` and `dave`), to decide approvals as them.
pub const APPROVER_TOKENS: [(&str, &str); 2] = [("grace", "demo-approver-grace"), ("dave", "demo-approver-dave")];
/// The signing secret of the demo's inbound webhook endpoints (`workflows/webhooks/`).
pub const WEBHOOK_SECRET: &str = "demo-webhook-secret-0123456789";

/// Adds the demo tokens and signing secret where the configuration has none.
pub fn configure(config: &mut Config) {
    if config.tokens.is_empty() {
        for (name, token, role) in [
            ("demo-admin", ADMIN_TOKEN, Role::Admin),
            ("demo-agent", AGENT_TOKEN, Role::Agent),
            ("demo-integrator", INTEGRATOR_TOKEN, Role::Integrator),
        ] {
            config.tokens.push(Token::new(name, token, role));
        }
        for (name, token) in APPROVER_TOKENS {
            config.tokens.push(Token::new(name, token, Role::Agent));
        }
    }
    config.secrets.entry("default".into()).or_insert_with(|| "demo-signing-secret".into());
    configure_directories(config);
}

/// The address the shipped demo workflows post to (their `/demo/inbox`).
pub const SHIPPED_URL: &str = "http://127.0.0.1:8080";

/// A shipped workflow with its URLs on [`SHIPPED_URL`] moved to where this server
/// really is (`serve --demo --listen 0.0.0.0:9000` posts to port 9000).
pub fn localize(wf: crate::workflow::Workflow, public_url: &str) -> crate::workflow::Workflow {
    fn walk(v: &mut serde_json::Value, to: &str) {
        match v {
            serde_json::Value::String(s) if s.starts_with(SHIPPED_URL) => *s = s.replacen(SHIPPED_URL, to, 1),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|v| walk(v, to)),
            serde_json::Value::Object(m) => m.values_mut().for_each(|v| walk(v, to)),
            _ => {}
        }
    }
    let to = public_url.trim_end_matches('/');
    if to == SHIPPED_URL {
        return wf;
    }
    let Ok(mut value) = serde_json::to_value(&wf) else { return wf };
    walk(&mut value, to);
    serde_json::from_value(value).unwrap_or(wf)
}

/// Where `demo-backends` (tests/src/bin/demo-backends.rs) serves the Graph fake.
pub const GRAPH_FAKE: &str = "http://127.0.0.1:8089";
/// Where it serves OpenLDAP with the AD schema.
pub const LDAP_FAKE: &str = "ldap://127.0.0.1:3389";

/// Connections for the identity workflows, pointing at `demo-backends` (a Graph fake,
/// its stand-in password vault, and a local OpenLDAP), unless the configuration names
/// its own `graph`, `password-channel` or `ad`. The credentials are the fakes' own.
fn configure_directories(config: &mut Config) {
    use crate::plugin::directory::Directory;
    use crate::plugin::net::{Auth, Connection};
    config.connections.entry("graph".into()).or_insert_with(|| Connection {
        base_url: format!("{GRAPH_FAKE}/v1.0"),
        allow_private: true,
        allow_link_local: false,
        auth: Some(Auth::Oauth2 {
            token_url: format!("{GRAPH_FAKE}/demo-tenant/oauth2/v2.0/token"),
            client_id: "switchboard-graph-client".into(),
            client_secret: "graph-client-secret-never-in-plugins".into(),
            scope: "https://graph.microsoft.com/.default".into(),
        }),
        timeout_ms: 5000,
    });
    config.connections.entry("password-channel".into()).or_insert_with(|| Connection {
        base_url: format!("{GRAPH_FAKE}/_vault"),
        allow_private: true,
        allow_link_local: false,
        auth: Some(Auth::Bearer { token: "demo-vault-token".into() }),
        timeout_ms: 5000,
    });
    config.directories.entry("ad".into()).or_insert_with(|| Directory {
        url: LDAP_FAKE.into(),
        starttls: false,
        ca_file: None,
        bind_dn: "cn=admin,dc=example,dc=com".into(),
        bind_password: "ldap-admin-secret".into(),
        base_dn: "dc=example,dc=com".into(),
        allow_private: true,
        timeout_ms: 5000,
    });
}

fn agent(id: &str, name: &str, groups: &[&str], skills: &[&str], capacity: u32, on_shift: bool) -> Agent {
    Agent {
        id: id.into(),
        name: name.into(),
        email: Some(format!("{id}@example.com")),
        groups: groups.iter().map(|s| s.to_string()).collect(),
        skills: skills.iter().map(|s| s.to_string()).collect(),
        capacity,
        on_shift,
        manager: Some("grace".into()),
        out_of_office: None,
    }
}

/// Seeds groups and agents that do not exist yet (existing ones are left alone).
pub async fn seed(engine: &Arc<Engine>) -> crate::executor::Result<()> {
    let groups = [
        ("service-desk", "Service Desk", "First line: everything starts here"),
        ("network", "Network", "Switches, Wi-Fi, VPN, firewalls"),
        ("hardware", "Hardware", "Laptops, printers, phones"),
        ("access", "Identity & Access", "Accounts, passwords, groups, licences"),
        ("licensing", "Licensing", "Buys and assigns Microsoft 365 seats"),
        ("messaging", "Messaging", "Mailboxes, shared mailboxes, Exchange"),
        ("major-incident", "Major Incident", "P1 coordination"),
    ];
    for (id, name, description) in groups {
        if engine.store().group(id).await?.is_none() {
            let g = Group {
                id: id.into(),
                name: name.into(),
                description: description.into(),
                manager: Some("grace".into()),
            };
            engine.put_group(g, "demo").await?;
        }
    }
    let agents = [
        agent("grace", "Grace Hopper", &["service-desk", "major-incident"], &["management"], 5, true),
        agent("alice", "Alice Network", &["network"], &["cisco", "german"], 3, true),
        agent("bob", "Bob Network", &["network"], &["juniper"], 3, true),
        agent("carol", "Carol Network", &["network"], &["cisco"], 3, false),
        agent("dave", "Dave Desk", &["service-desk"], &["english", "french"], 10, true),
        agent("erin", "Erin Hardware", &["hardware"], &["printers"], 8, true),
        agent("frank", "Frank Access", &["access"], &["active-directory", "entra"], 8, true),
    ];
    for a in agents {
        if engine.store().agent(&a.id).await?.is_none() {
            engine.put_agent(a, "demo").await?;
        }
    }
    Ok(())
}

/// What `serve --demo` does with one shipped object at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeding {
    /// Not in the store: apply the file.
    Create,
    /// The file changed since the demo applied it, and nobody edited the object since:
    /// apply the new file.
    Update,
    /// The store holds what the file says: nothing to do.
    Same,
    /// Someone changed the object after the demo applied it (or it was never the
    /// demo's): keep their version.
    KeepEdit,
}

/// Decides from the digest of what the demo last applied, the stored object and the file.
pub fn seeding(last_applied: Option<&str>, current: Option<&Value>, file: &Value) -> Seeding {
    match current {
        None => Seeding::Create,
        Some(c) if c == file => Seeding::Same,
        Some(c) if last_applied == Some(digest(c).as_str()) => Seeding::Update,
        Some(_) => Seeding::KeepEdit,
    }
}

fn digest(v: &Value) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(serde_json::to_vec(v).unwrap_or_default()))
}

/// Applies one shipped object (`kind` = `workflow`, `sla_policy`, `calendar`, `webhook`)
/// if [`seeding`] says so, remembers what it applied, and logs what it did and why.
/// `current` and `file` are the stored and the shipped object in the same JSON shape.
pub async fn seed_object<F, Fut>(
    engine: &Arc<Engine>,
    kind: &str,
    id: &str,
    current: Option<Value>,
    file: Value,
    apply: F,
) -> crate::executor::Result<Seeding>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = crate::executor::Result<()>>,
{
    let key = format!("{kind}/{id}");
    let last: Option<Value> = crate::store::get_doc(engine.store().as_ref(), DocKind::Seeded, &key).await?;
    let last = last.as_ref().and_then(|v| v["digest"].as_str().map(String::from));
    let verdict = seeding(last.as_deref(), current.as_ref(), &file);
    match verdict {
        Seeding::Create | Seeding::Update => apply().await?,
        Seeding::Same if last.as_deref() == Some(digest(&file).as_str()) => return Ok(verdict),
        Seeding::Same => {}
        Seeding::KeepEdit => {
            tracing::warn!(
                kind,
                id,
                "kept the stored {kind} `{id}`: it was changed after the demo applied it, and the shipped file differs"
            );
            return Ok(verdict);
        }
    }
    if verdict == Seeding::Update {
        tracing::info!(kind, id, "applied the changed demo file of {kind} `{id}`");
    }
    let mut tx = Tx::new();
    tx.doc(DocKind::Seeded, &key, &serde_json::json!({"digest": digest(&file)}));
    engine.store().commit(tx).await?;
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_changed_file_is_applied_unless_someone_edited_the_object() {
        let v1 = json!({"name": "one"});
        let v2 = json!({"name": "two"});
        let edit = json!({"name": "mine"});
        assert_eq!(seeding(None, None, &v1), Seeding::Create);
        assert_eq!(seeding(Some(&digest(&v1)), Some(&v1), &v1), Seeding::Same);
        assert_eq!(seeding(Some(&digest(&v1)), Some(&v1), &v2), Seeding::Update, "an upgraded file");
        assert_eq!(seeding(Some(&digest(&v1)), Some(&edit), &v1), Seeding::KeepEdit, "the admin's edit");
        assert_eq!(seeding(Some(&digest(&v1)), Some(&edit), &v2), Seeding::KeepEdit);
        assert_eq!(seeding(None, Some(&edit), &v1), Seeding::KeepEdit, "not the demo's");
    }
}
