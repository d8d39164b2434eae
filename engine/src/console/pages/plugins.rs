//! Plugins: installed plugins with their versions, actions and grants; admins change a
//! plugin's grants (connections and config, as `PUT /plugins/{id}/grants`) and enable or
//! disable it; admins and integrators install a module by upload (as `POST /plugins`:
//! integrators new ids only).

use super::operations::tabs;
use crate::api::plugins::{set_enabled, set_grants, Grants};
use crate::api::{ApiError, AppState};
use crate::config::Role;
use crate::console::page::{act, csrf, layout, may, time, FormData, Nav, PageError};
use crate::console::session::User;
use crate::plugin::Installer;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `GET /console/plugins`.
pub async fn list(State(s): State<AppState>, user: User) -> Result<Markup, PageError> {
    let plugins = s.engine.store().plugins().await?;
    let (can_grant, can_install) = (may(&user, "put", "/plugins/{id}/grants"), may(&user, "post", "/plugins"));
    let body = html! {
        (tabs("/console/plugins"))
        h1 { "Plugins" }
        @if plugins.is_empty() { p.muted { "No plugin is installed." } }
        @for p in &plugins {
            section.card aria-labelledby=(format!("plugin-{}", p.id)) {
                h2 #(format!("plugin-{}", p.id)) { (p.id) " " span.muted { (p.version) } @if !p.enabled { " (disabled)" } }
                p { (p.manifest.description) }
                dl.fields {
                    dt { "Actions" } dd { (p.manifest.actions.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")) }
                    dt { "Asks for connections" } dd { (or_none(&p.manifest.wanted_connections())) }
                    dt { "Granted connections" } dd { (or_none(&p.connections)) }
                    dt { "Versions kept" } dd { (p.versions.join(", ")) }
                    dt { "Installed" } dd { (time(p.installed_at)) " by " (p.installed_by) }
                }
                @if can_grant {
                    form.stack method="post" action=(format!("/console/plugins/{}/grants", p.id)) {
                        (csrf(&user.session))
                        label { "Granted connections (comma-separated)"
                            input type="text" name="connections" value=(p.connections.join(", ")); }
                        label { "Config (one key=value per line)"
                            textarea name="config" rows="3" {
                                @for (k, v) in &p.config { (k) "=" (v) "\n" }
                            }
                        }
                        button.primary type="submit" { "Save grants of " (p.id) }
                    }
                    form.inline method="post" action=(format!("/console/plugins/{}/{}", p.id, if p.enabled { "disable" } else { "enable" })) {
                        (csrf(&user.session))
                        button.secondary type="submit" { (if p.enabled { "Disable " } else { "Enable " }) (p.id) }
                    }
                }
            }
        }
        @if can_install {
            h2 { "Install a plugin" }
            p.muted { "A WebAssembly module built with the SDK (see plugins/). "
                @if user.principal().role != Role::Admin { "Integrators install new plugins; a new version of an installed one is an admin's decision." } }
            form.stack method="post" action="/console/plugins" enctype="multipart/form-data" {
                (csrf(&user.session))
                label { "Module (.wasm)" input type="file" name="module" accept=".wasm,application/wasm" required; }
                button.primary type="submit" { "Install" }
            }
        }
    };
    Ok(layout("Plugins", Some(&user.session), Some(Nav::Operations), body))
}

fn or_none(list: &[String]) -> Markup {
    html! { @if list.is_empty() { span.muted { "none" } } @else { (list.join(", ")) } }
}

/// `POST /console/plugins` (multipart: `csrf`, `module`): installs the module.
pub async fn install(State(s): State<AppState>, user: User, mut form: Multipart) -> Result<Response, PageError> {
    let bad = |m: String| PageError::new(StatusCode::BAD_REQUEST, m);
    let (mut token, mut module) = (String::new(), None);
    while let Some(field) = form.next_field().await.map_err(|e| PageError::new(e.status(), e.body_text()))? {
        match field.name() {
            Some("csrf") => token = field.text().await.map_err(|e| bad(e.body_text()))?,
            Some("module") => {
                module = Some(field.bytes().await.map_err(|e| PageError::new(e.status(), e.body_text()))?)
            }
            _ => {}
        }
    }
    act(&user, &token, "post", "/plugins")?;
    let module =
        module.filter(|m| !m.is_empty()).ok_or_else(|| bad("Choose a module file (.wasm) to install.".into()))?;
    let installer = if user.principal().role == Role::Admin { Installer::Admin } else { Installer::Integrator };
    let installed = s.engine.plugins().install(&module, user.name(), installer).await.map_err(ApiError::from)?;
    Ok(Redirect::to(&format!("/console/plugins#plugin-{}", installed.plugin.id)).into_response())
}

/// The grants form.
#[derive(Debug, Deserialize)]
pub struct GrantsForm {
    csrf: String,
    #[serde(default)]
    connections: String,
    #[serde(default)]
    config: String,
}

/// `POST /console/plugins/{id}/grants` (admin): as `PUT /plugins/{id}/grants`.
pub async fn grants(
    State(s): State<AppState>,
    user: User,
    Path(id): Path<String>,
    FormData(f): FormData<GrantsForm>,
) -> Result<Response, PageError> {
    act(&user, &f.csrf, "put", "/plugins/{id}/grants")?;
    let mut config = BTreeMap::new();
    for (n, line) in f.config.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let (k, v) = line.split_once('=').ok_or_else(|| {
            PageError::new(
                StatusCode::BAD_REQUEST,
                format!("Config line {}: `key=value` expected, got `{}`", n + 1, line.trim()),
            )
        })?;
        config.insert(k.trim().to_string(), v.trim().to_string());
    }
    let connections = f.connections.split(',').map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect();
    set_grants(&s, user.name(), &id, Grants { connections, config }).await?;
    Ok(Redirect::to(&format!("/console/plugins#plugin-{id}")).into_response())
}

/// `POST /console/plugins/{id}/{enable|disable}` (admin).
pub async fn toggle(
    State(s): State<AppState>,
    user: User,
    Path((id, action)): Path<(String, String)>,
    FormData(f): FormData<crate::console::session::CsrfForm>,
) -> Result<Response, PageError> {
    let enabled = match action.as_str() {
        "enable" => true,
        "disable" => false,
        _ => return Err(PageError::new(StatusCode::NOT_FOUND, format!("No plugin action `{action}`."))),
    };
    act(&user, &f.csrf, "post", if enabled { "/plugins/{id}/enable" } else { "/plugins/{id}/disable" })?;
    set_enabled(&s, user.name(), &id, enabled).await?;
    Ok(Redirect::to(&format!("/console/plugins#plugin-{id}")).into_response())
}
