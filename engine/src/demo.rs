//! Demo data for `switchboard serve --demo`: tokens, groups, agents, a signing secret.

use crate::config::{Config, Role, Token};
use crate::executor::Engine;
use crate::team::{Agent, Group};
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
        if engine.store().group(id)?.is_none() {
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
        if engine.store().agent(&a.id)?.is_none() {
            engine.put_agent(a, "demo").await?;
        }
    }
    Ok(())
}
