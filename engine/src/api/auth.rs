//! Bearer tokens with roles.
//!
//! Tokens come from the configuration. They are kept hashed (SHA-256) in memory and
//! looked up by hash, so lookups do not compare secrets byte by byte.

use super::{ApiError, AppState};
use crate::config::{Role, Token};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

impl Principal {
    /// Refuses unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "role `{}` may not do this; needs one of: {}",
                role_name(self.role),
                roles.iter().map(|r| role_name(*r)).collect::<Vec<_>>().join(", ")
            )))
        }
    }

    /// Admins only.
    pub fn admin(&self) -> Result<(), ApiError> {
        self.require(&[Role::Admin])
    }
}

fn role_name(r: Role) -> &'static str {
    r.as_str()
}

/// Token hash -> principal.
pub struct Tokens(HashMap<[u8; 32], Principal>);

impl Tokens {
    /// From configured tokens.
    pub fn new(tokens: &[Token]) -> Self {
        Self(
            tokens
                .iter()
                .filter_map(|t| Some((t.digest()?, Principal { name: t.name.clone(), role: t.role })))
                .collect(),
        )
    }

    /// The principal of a token, if it is known.
    pub fn find(&self, token: &str) -> Option<&Principal> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.0.get(&digest)
    }
}

/// Middleware: resolves the bearer token (the scheme in any case, as RFC 9110 says)
/// into a [`Principal`] request extension, and enforces the route's roles from the one
/// table in [`super::openapi::OPERATIONS`].
pub async fn require_token(State(state): State<AppState>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let token = header
        .and_then(|h| h.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        tracing::info!(path = %req.uri().path(), "401: no bearer token");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing `Authorization: Bearer <token>` header",
        ));
    };
    let Some(principal) = state.tokens.find(token) else {
        tracing::info!(path = %req.uri().path(), "401: unknown token");
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "unknown token"));
    };
    let route = req.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str().to_string());
    let access = route.as_deref().and_then(|r| super::openapi::access(req.method().as_str(), r));
    match access {
        Some(super::openapi::Access::Roles(roles)) => principal.require(roles)?,
        // A route missing from the table is refused rather than opened (the test that
        // compares the table with the router keeps this from happening).
        _ => principal.require(&[Role::Admin])?,
    }
    req.extensions_mut().insert(principal.clone());
    let mut resp = next.run(req).await;
    // For the access log, which wraps this layer.
    resp.extensions_mut().insert(principal.clone());
    Ok(resp)
}
