//! Signing in: an API token, typed once into the sign-in form, is exchanged for a
//! session cookie (`sb_session`: random, HttpOnly, SameSite=Strict, Path=/, expiring
//! after [`SESSION_HOURS`], Secure when the request came over HTTPS). The session
//! carries the token's principal (name and role) and a CSRF token that every form of
//! the console sends back and every POST checks. Sessions live in memory: a restart
//! signs everyone out (they sign in again with their token).
//!
//! With `oidc` configured, the sign-in page also offers the organisation's provider
//! (`/console/oidc/start`, `/console/oidc/callback`; the protocol is `api::oidc`).

use super::page::{layout, FormData, PageError, Params};
use crate::api::auth::Principal;
use crate::api::session::{Session, SESSION_HOURS};
use crate::api::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The cookie's name.
pub const COOKIE: &str = "sb_session";
/// The session cookie's value, if the request has one.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
}

/// The signed-in user of a console request. Without a live session the page answers a
/// redirect to the sign-in form (which comes back to the page after).
pub struct User {
    /// The session.
    pub session: Session,
    /// The cookie value (to end the session).
    id: String,
}

impl User {
    /// The principal.
    pub fn principal(&self) -> &Principal {
        &self.session.principal
    }

    /// The name recorded as the actor of what they do.
    pub fn name(&self) -> &str {
        &self.session.principal.name
    }

    /// Whether the session is still live (not signed out, not expired).
    pub fn is_live(&self, sessions: &crate::api::session::Sessions, now: chrono::DateTime<chrono::Utc>) -> bool {
        sessions.find(&self.id, now).is_some()
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        let (a, b) = (Sha256::digest(sent.as_bytes()), Sha256::digest(self.session.csrf.as_bytes()));
        if a == b {
            Ok(())
        } else {
            Err(PageError::new(
                StatusCode::FORBIDDEN,
                "The form was out of date or did not come from this console (CSRF token mismatch). Reload the page and try again.",
            ))
        }
    }
}

impl FromRequestParts<AppState> for User {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let now = state.engine.clock_now();
        if let Some(id) = cookie(&parts.headers) {
            if let Some(session) = state.sessions.find(&id, now) {
                return Ok(User { session, id });
            }
        }
        let back = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/console");
        let query = serde_urlencoded::to_string([("next", back)]).unwrap_or_default();
        Err(Redirect::to(&format!("/console/login?{query}")).into_response())
    }
}

/// Query and form of the sign-in page.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// The API token.
    #[serde(default)]
    pub token: String,
    /// Where to go after.
    #[serde(default)]
    pub next: String,
}

/// Only a console page is a place to go back to (no open redirect).
pub(super) fn safe_next(next: &str) -> &str {
    if next.starts_with("/console") && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/console"
    }
}

fn login_form(s: &AppState, next: &str, error: Option<&str>) -> Markup {
    let body = html! {
        h1 { "Sign in" }
        @if let Some(e) = error {
            p.notice.error role="alert" { (e) }
        }
        form.stack method="post" action="/console/login" {
            input type="hidden" name="next" value=(safe_next(next));
            label for="token" { "API token" }
            input #token type="password" name="token" autocomplete="current-password" required autofocus;
            p.muted { "Use the token from the server's configuration (`tokens`). The console signs you in with its role." }
            button.primary type="submit" { "Sign in" }
        }
        @if let Some(oidc) = &s.oidc {
            p { a.button href=(format!("/console/oidc/start?{}", serde_urlencoded::to_string([("next", safe_next(next))]).unwrap_or_default())) {
                "Sign in with " (oidc.display_name())
            } }
        }
    };
    layout("Sign in", None, None, body)
}

/// `GET /console/login`.
pub async fn login_page(State(s): State<AppState>, Params(q): Params<LoginForm>) -> Markup {
    login_form(&s, &q.next, None)
}

/// `POST /console/login`: a known token starts a session (303 to where the user was
/// going); an unknown one answers 401 with the form again.
pub async fn login(State(s): State<AppState>, headers: HeaderMap, FormData(form): FormData<LoginForm>) -> Response {
    let Some(principal) = s.tokens.find(form.token.trim()) else {
        tracing::info!("console sign-in refused: unknown token");
        return (StatusCode::UNAUTHORIZED, login_form(&s, &form.next, Some("That token is not known to this server.")))
            .into_response();
    };
    tracing::info!(user = %principal.name, "console sign-in");
    signed_in(&s, principal.clone(), &headers, &form.next)
}

/// Starts a session for `principal`: the cookie, and a redirect to `next`.
fn signed_in(s: &AppState, principal: Principal, headers: &HeaderMap, next: &str) -> Response {
    let (id, _) = s.sessions.start(principal, s.engine.clock_now());
    let https = s.engine.config().tls_cert.is_some()
        || headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https");
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_HOURS * 3600,
        if https { "; Secure" } else { "" }
    );
    let mut resp = Redirect::to(safe_next(next)).into_response();
    if let Ok(v) = cookie.parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

fn refused(r: crate::api::oidc::Refused) -> PageError {
    PageError::new(r.status, r.message)
}

/// Query of `GET /console/oidc/start`.
#[derive(Debug, Deserialize)]
pub struct Start {
    #[serde(default)]
    next: String,
}

/// `GET /console/oidc/start`: to the provider.
pub async fn start(State(s): State<AppState>, Params(q): Params<Start>) -> Result<Response, PageError> {
    let oidc =
        s.oidc.as_ref().ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "No sign-in provider is configured."))?;
    let url = oidc.authorization_url(safe_next(&q.next), s.engine.clock_now()).await.map_err(refused)?;
    Ok(Redirect::to(&url).into_response())
}

/// Query of the callback.
#[derive(Debug, Deserialize)]
pub struct Callback {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// `GET /console/oidc/callback`: the provider's answer; a session when it verifies.
pub async fn callback(
    State(s): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<Callback>,
) -> Result<Response, PageError> {
    let oidc =
        s.oidc.as_ref().ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "No sign-in provider is configured."))?;
    if !q.error.is_empty() {
        tracing::info!(error = %q.error, description = %q.error_description, "OpenID Connect sign-in ended by the provider");
        return Err(PageError::new(
            StatusCode::UNAUTHORIZED,
            format!("The sign-in provider said: {} {}", q.error, q.error_description),
        ));
    }
    if q.code.is_empty() || q.state.is_empty() {
        return Err(crate::api::ApiError::invalid("/code", "the provider's answer has no code or state").into());
    }
    let (principal, next) = oidc.finish(&q.code, &q.state, s.engine.clock_now()).await.map_err(refused)?;
    tracing::info!(user = %principal.name, role = principal.role.as_str(), "console sign-in (OpenID Connect)");
    Ok(signed_in(&s, principal, &headers, &next))
}

/// The CSRF field of a form.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token.
    #[serde(default)]
    pub csrf: String,
}

/// `POST /console/logout`: ends the session and clears the cookie.
pub async fn logout(
    State(s): State<AppState>,
    user: User,
    FormData(form): FormData<CsrfForm>,
) -> Result<Response, PageError> {
    user.check_csrf(&form.csrf)?;
    s.sessions.end(&user.id);
    let mut resp = Redirect::to("/console/login").into_response();
    if let Ok(v) = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0").parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}
