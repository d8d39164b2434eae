//! Configuration as code: `apply` (a directory of workflows, SLA policies, calendars,
//! endpoints, agents and groups, to a server or a data directory), `install` (plugins)
//! and what `serve --demo` loads at start.

use super::{error_message, offline_engine, refused, segment, send, workflow_files, ApplyArgs, Failure, InstallArgs};
use crate::executor::Engine;
use crate::store::Store;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(super) async fn apply(args: ApplyArgs) -> Result<(), Failure> {
    let setup = read_setup(&args.dir)?;
    if setup.is_empty() {
        return Err(Failure::input(format!("{}: no workflow, SLA, webhook or grant files found", args.dir.display())));
    }
    match (args.target.server, args.target.data_dir) {
        (Some(url), _) => apply_to_server(&url, args.target.token, setup).await,
        (None, Some(dir)) => {
            let (store, engine) = offline_engine(dir)?;
            let result = apply_to_engine(&engine, setup).await;
            store.close()?;
            result
        }
        (None, None) => Err(Failure::input("apply needs --server URL or --data-dir DIR")),
    }
}

/// Reads a setup directory; every problem goes to stderr as `file:pointer: message`.
pub(super) fn read_setup(path: &Path) -> Result<crate::setup::Setup, Failure> {
    crate::setup::read(path).map_err(|problems| {
        for p in &problems {
            eprintln!("{p}");
        }
        Failure::input(format!("{} problem(s) found", problems.len()))
    })
}

/// Applies a setup through the HTTP API, in dependency order: SLA calendars, then
/// policies, workflows, webhook endpoints (which may start workflows), plugin grants.
pub(super) async fn apply_to_server(
    url: &str,
    token: Option<String>,
    setup: crate::setup::Setup,
) -> Result<(), Failure> {
    let token = Some(token.ok_or_else(|| Failure::input("--server needs --token (or SWITCHBOARD_TOKEN)"))?);
    let post = |file: PathBuf, method: reqwest::Method, path: String, body: serde_json::Value| {
        let token = token.clone();
        async move {
            let (status, text) =
                send(url, token, |c, base| c.request(method, format!("{base}{path}")).json(&body)).await?;
            if !status.is_success() {
                return Err(refused(&file.display().to_string(), status, &text));
            }
            Ok(serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default())
        }
    };
    for (file, sla) in setup.sla {
        for c in sla.calendars {
            let id = c.id.clone();
            post(file.clone(), reqwest::Method::POST, "/sla/calendars".into(), json(&c)).await?;
            println!("{}: calendar {id}", file.display());
        }
        for p in sla.policies {
            let id = p.id.clone();
            post(file.clone(), reqwest::Method::POST, "/sla/policies".into(), json(&p)).await?;
            println!("{}: SLA policy {id}", file.display());
        }
    }
    for (file, wf) in setup.workflows {
        let body = post(file.clone(), reqwest::Method::POST, "/workflows".into(), json(&wf)).await?;
        println!("{}: {} revision {}", file.display(), wf.id, body["workflow"]["revision"]);
    }
    for (file, endpoint) in setup.webhooks {
        let id = endpoint.id.clone();
        post(file.clone(), reqwest::Method::POST, "/webhooks".into(), json(&endpoint)).await?;
        println!("{}: webhook {id}", file.display());
    }
    for (file, id, grants) in setup.grants {
        let installed = send(url, token.clone(), |c, base| c.get(format!("{base}/plugins/{}", segment(&id)))).await?;
        if installed.0 == reqwest::StatusCode::NOT_FOUND {
            eprintln!(
                "{}: plugin `{id}` is not installed; its grants were skipped (install it, then apply again)",
                file.display()
            );
            continue;
        }
        post(file.clone(), reqwest::Method::PUT, format!("/plugins/{}/grants", segment(&id)), json(&grants)).await?;
        println!("{}: grants of plugin {id}", file.display());
    }
    Ok(())
}

/// Applies a setup to a stopped server's data directory, in the same order.
pub(super) async fn apply_to_engine(engine: &Arc<Engine>, setup: crate::setup::Setup) -> Result<(), Failure> {
    for (file, sla) in setup.sla {
        for c in sla.calendars {
            let id = c.id.clone();
            engine.put_calendar(c).await.map_err(|e| engine_failure(&file, e))?;
            println!("{}: calendar {id}", file.display());
        }
        for p in sla.policies {
            let id = p.id.clone();
            engine.put_sla_policy(p).await.map_err(|e| engine_failure(&file, e))?;
            println!("{}: SLA policy {id}", file.display());
        }
    }
    for (file, wf) in setup.workflows {
        let (record, _) = engine.put_workflow(wf, "cli").await.map_err(|e| engine_failure(&file, e))?;
        println!("{}: {} revision {}", file.display(), record.id, record.revision);
    }
    for (file, endpoint) in setup.webhooks {
        let (stored, _) = engine.put_endpoint(endpoint, "cli").await.map_err(|e| engine_failure(&file, e))?;
        println!("{}: webhook {}", file.display(), stored.id);
    }
    for (file, id, grants) in setup.grants {
        let Some(mut record) = engine.store().plugin(&id).await.map_err(|e| Failure::runtime(e.to_string()))? else {
            eprintln!(
                "{}: plugin `{id}` is not installed; its grants were skipped (install it, then apply again)",
                file.display()
            );
            continue;
        };
        record.connections = grants.connections;
        record.config = grants.config;
        engine.plugins().update(record, "cli").await.map_err(|e| Failure::input(format!("{}: {e}", file.display())))?;
        println!("{}: grants of plugin {id}", file.display());
    }
    Ok(())
}

/// Installs every `*.wasm` in `dir` (the demo's plugins).
pub(super) async fn install_dir(engine: &Arc<Engine>, dir: &Path) -> Result<(), Failure> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::warn!(dir = %dir.display(), "no plugins directory; run plugins/build.sh to build the demo plugins");
        return Ok(());
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    files.sort();
    for file in files {
        let bytes = std::fs::read(&file).map_err(|e| Failure::input(format!("{}: {e}", file.display())))?;
        let record = engine
            .plugins()
            .install(&bytes, "demo", crate::plugin::Installer::Admin)
            .await
            .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?;
        tracing::info!(plugin = %record.plugin.id, version = %record.plugin.version, "installed demo plugin");
    }
    Ok(())
}

/// Applies `<plugin id>.json` grants (the body of `PUT /plugins/{id}/grants`) from a
/// directory (the demo's `workflows/plugins/`) to installed plugins.
pub(super) async fn grant_dir(engine: &Arc<Engine>, dir: &Path) -> Result<(), Failure> {
    let Ok(files) = workflow_files(dir) else { return Ok(()) };
    for file in files {
        let (id, grants) = crate::setup::read_grants(&file).map_err(|problems| Failure::input(problems.join("\n")))?;
        let Some(mut record) = engine.store().plugin(&id).await.map_err(|e| Failure::runtime(e.to_string()))? else {
            tracing::warn!(file = %file.display(), "grants for a plugin that is not installed");
            continue;
        };
        record.connections = grants.connections;
        record.config = grants.config;
        engine
            .plugins()
            .update(record, "demo")
            .await
            .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?;
    }
    Ok(())
}

pub(super) async fn install(args: InstallArgs) -> Result<(), Failure> {
    let bytes = std::fs::read(&args.file).map_err(|e| Failure::input(format!("{}: {e}", args.file.display())))?;
    match (args.target.server, args.target.data_dir) {
        (Some(url), _) => {
            let (status, text) = send(&url, args.target.token, |c, base| {
                c.post(format!("{base}/plugins")).header("content-type", "application/wasm").body(bytes)
            })
            .await?;
            if !status.is_success() {
                let msg = error_message(&text);
                return Err(Failure::input(format!(
                    "{}: server refused the plugin ({status}): {msg}",
                    args.file.display()
                )));
            }
            let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            println!("{}: installed {} {}", args.file.display(), body["plugin"]["id"], body["plugin"]["version"]);
            Ok(())
        }
        (None, Some(dir)) => {
            let (store, engine) = offline_engine(dir)?;
            let record = engine
                .plugins()
                .install(&bytes, "cli", crate::plugin::Installer::Admin)
                .await
                .map_err(|e| Failure::input(format!("{}: {e}", args.file.display())))?;
            println!("{}: installed {} {}", args.file.display(), record.plugin.id, record.plugin.version);
            store.close()?;
            Ok(())
        }
        (None, None) => Err(Failure::input("install needs --server URL or --data-dir DIR")),
    }
}

/// An engine error about a file: input errors name the file and the JSON pointer.
pub(super) fn engine_failure(file: &Path, e: crate::executor::Error) -> Failure {
    match e {
        crate::executor::Error::Invalid(errs) => Failure::input(
            errs.iter().map(|(p, m)| format!("{}:{p}: {m}", file.display())).collect::<Vec<_>>().join("\n"),
        ),
        other => Failure::runtime(other.to_string()),
    }
}

/// Registers the inbound webhook endpoints in a directory (the demo's), signed with
/// [`crate::demo::WEBHOOK_SECRET`] unless a file sets its own secret.
pub(super) async fn load_webhooks(engine: &Arc<Engine>, dir: &Path) -> Result<(), Failure> {
    let Ok(files) = workflow_files(dir) else { return Ok(()) };
    for file in files {
        let mut endpoint =
            crate::setup::read_endpoint(&file).map_err(|problems| Failure::input(problems.join("\n")))?;
        if endpoint.secret.is_empty() {
            endpoint.secret = crate::demo::WEBHOOK_SECRET.into();
        }
        let shape = |e: &crate::webhook::Endpoint| {
            let mut v = json(e);
            v.as_object_mut().map(|m| m.remove("secret"));
            v
        };
        let current = engine.endpoint(&endpoint.id).await.map_err(|e| engine_failure(&file, e))?.map(|e| shape(&e));
        let id = endpoint.id.clone();
        let shipped = shape(&endpoint);
        crate::demo::seed_object(engine, "webhook", &id, current, shipped, || async {
            engine.put_endpoint(endpoint, "demo").await.map(|_| ())
        })
        .await
        .map_err(|e| engine_failure(&file, e))?;
    }
    Ok(())
}

/// A value as JSON, for comparing a stored object with a shipped file.
pub(super) fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// Loads SLA files (`{"calendars": [...], "policies": [...]}`) from a directory (the demo's).
pub(super) async fn load_sla(engine: &Arc<Engine>, dir: &Path) -> Result<(), Failure> {
    let Ok(files) = workflow_files(dir) else { return Ok(()) };
    for file in files {
        let sla = crate::setup::read_sla(&file).map_err(|problems| Failure::input(problems.join("\n")))?;
        let invalid = |e| engine_failure(&file, e);
        let calendars = engine.store().calendars().await.map_err(|e| invalid(e.into()))?;
        for c in sla.calendars {
            let current = calendars.iter().find(|x| x.id == c.id).map(json);
            let (id, shipped) = (c.id.clone(), json(&c));
            crate::demo::seed_object(engine, "calendar", &id, current, shipped, || async {
                engine.put_calendar(c).await.map(|_| ())
            })
            .await
            .map_err(invalid)?;
        }
        let policies = engine.store().sla_policies().await.map_err(|e| invalid(e.into()))?;
        for p in sla.policies {
            let current = policies.iter().find(|x| x.id == p.id).map(json);
            let (id, shipped) = (p.id.clone(), json(&p));
            crate::demo::seed_object(engine, "sla_policy", &id, current, shipped, || async {
                engine.put_sla_policy(p).await.map(|_| ())
            })
            .await
            .map_err(invalid)?;
        }
    }
    Ok(())
}
