//! Sign-in with an OpenID Connect provider: the authorization code flow with PKCE
//! (RFC 7636, `S256`), a `state` that is used once and a `nonce` bound into the ID token.
//!
//! `GET /console/oidc/start` sends the browser to the provider's authorization endpoint;
//! the provider sends it back to `GET /console/oidc/callback` with a code, which is
//! exchanged at the token endpoint (with the PKCE verifier and the client secret). The ID
//! token must be signed RS256 by a key of the provider's JWKS, name the issuer and this
//! client as audience, carry the nonce, and be within its lifetime by the engine's clock.
//! Its `role_claim` values map to a role (the configuration's `oidc.roles`); the person
//! then gets a console session like a token's, named by `name_claim`. The console's
//! `/console/oidc/*` pages drive this client.

use super::auth::Principal;
use crate::config::{OidcConfig, Role};
use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::RngCore;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

/// How long a sign-in may take between leaving for the provider and coming back.
const PENDING_MINUTES: i64 = 10;
/// Most sign-ins under way at once (the oldest are dropped first).
const MAX_PENDING: usize = 10_000;

/// The provider's endpoints (its discovery document).
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// A sign-in under way, by its `state`.
struct Pending {
    verifier: String,
    nonce: String,
    next: String,
    expires: DateTime<Utc>,
}

/// The OpenID Connect client of the console.
pub struct Oidc {
    config: OidcConfig,
    /// `<public_url>/console/oidc/callback`.
    redirect_uri: String,
    http: reqwest::Client,
    discovery: tokio::sync::Mutex<Option<Discovery>>,
    jwks: tokio::sync::Mutex<Option<JwkSet>>,
    pending: Mutex<HashMap<String, Pending>>,
}

fn random() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Why a sign-in failed: the status to answer and a message for the person (the log
/// has the detail).
#[derive(Debug)]
pub struct Refused {
    /// 400 (a stale or unknown sign-in), 401 (not verified), 403 (no role), 502 (the
    /// provider failed).
    pub status: StatusCode,
    /// For the person.
    pub message: String,
}

fn refused(status: StatusCode, message: impl Into<String>) -> Refused {
    Refused { status, message: message.into() }
}

impl Oidc {
    /// A client for `config`, redirecting back to `public_url`.
    pub fn new(config: OidcConfig, public_url: &str) -> Self {
        Self {
            redirect_uri: format!("{}/console/oidc/callback", public_url.trim_end_matches('/')),
            config,
            http: reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().unwrap_or_default(),
            discovery: Default::default(),
            jwks: Default::default(),
            pending: Default::default(),
        }
    }

    /// What the sign-in button says.
    pub fn display_name(&self) -> &str {
        &self.config.display_name
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, Refused> {
        let fail = |e: String| {
            tracing::warn!(%url, error = %e, "OpenID Connect provider");
            refused(StatusCode::BAD_GATEWAY, "The sign-in provider could not be reached; try again later.")
        };
        let resp = self.http.get(url).send().await.map_err(|e| fail(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!("answered {}", resp.status())));
        }
        resp.json().await.map_err(|e| fail(e.to_string()))
    }

    async fn discovery(&self) -> Result<Discovery, Refused> {
        let mut cached = self.discovery.lock().await;
        if let Some(d) = cached.as_ref() {
            return Ok(d.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", self.config.issuer.trim_end_matches('/'));
        let d: Discovery = self.get_json(&url).await?;
        if d.issuer.trim_end_matches('/') != self.config.issuer.trim_end_matches('/') {
            tracing::warn!(configured = %self.config.issuer, announced = %d.issuer, "OpenID Connect issuer mismatch");
            return Err(refused(
                StatusCode::BAD_GATEWAY,
                "The sign-in provider announced another issuer than the one configured.",
            ));
        }
        *cached = Some(d.clone());
        Ok(d)
    }

    /// The key with `kid`, reading the JWKS again once when it is not known (keys rotate).
    async fn key(&self, jwks_uri: &str, kid: Option<&str>) -> Result<DecodingKey, Refused> {
        let mut cached = self.jwks.lock().await;
        for fresh in [false, true] {
            if fresh || cached.is_none() {
                *cached = Some(self.get_json(jwks_uri).await?);
            }
            let set = cached.as_ref().expect("just read");
            let jwk = match kid {
                Some(kid) => set.find(kid),
                None if set.keys.len() == 1 => set.keys.first(),
                None => None,
            };
            if let Some(jwk) = jwk {
                return DecodingKey::from_jwk(jwk).map_err(|e| {
                    refused(StatusCode::BAD_GATEWAY, format!("The provider's signing key is not usable: {e}"))
                });
            }
        }
        Err(refused(StatusCode::UNAUTHORIZED, "The sign-in was signed with a key the provider does not publish."))
    }

    /// Starts a sign-in: the URL of the provider's authorization endpoint.
    pub async fn authorization_url(&self, next: &str, now: DateTime<Utc>) -> Result<String, Refused> {
        let d = self.discovery().await?;
        let (state, verifier, nonce) = (random(), random(), random());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.retain(|_, p| p.expires > now);
            if pending.len() >= MAX_PENDING {
                if let Some(oldest) = pending.iter().min_by_key(|(_, p)| p.expires).map(|(k, _)| k.clone()) {
                    pending.remove(&oldest);
                }
            }
            let expires = now + Duration::minutes(PENDING_MINUTES);
            pending.insert(state.clone(), Pending { verifier, nonce: nonce.clone(), next: next.to_string(), expires });
        }
        let scope: Vec<&str> = std::iter::once("openid")
            .chain(self.config.scopes.iter().map(String::as_str).filter(|s| *s != "openid"))
            .collect();
        let query = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", self.config.client_id.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("scope", scope.join(" ").as_str()),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .unwrap_or_default();
        let sep = if d.authorization_endpoint.contains('?') { '&' } else { '?' };
        Ok(format!("{}{sep}{query}", d.authorization_endpoint))
    }

    /// Finishes a sign-in: the code exchanged, the ID token checked, the person's name
    /// and role. Returns where to go after.
    pub async fn finish(&self, code: &str, state: &str, now: DateTime<Utc>) -> Result<(Principal, String), Refused> {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(state);
        let Some(pending) = pending.filter(|p| p.expires > now) else {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "This sign-in is not known or took too long (each sign-in link works once, for 10 minutes). Start again.",
            ));
        };
        let d = self.discovery().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("client_id", self.config.client_id.as_str()),
            ("code_verifier", pending.verifier.as_str()),
        ];
        if !self.config.client_secret.is_empty() {
            form.push(("client_secret", self.config.client_secret.as_str()));
        }
        let resp = self.http.post(&d.token_endpoint).form(&form).send().await.map_err(|e| {
            tracing::warn!(error = %e, "OpenID Connect token endpoint");
            refused(StatusCode::BAD_GATEWAY, "The sign-in provider could not be reached; try again later.")
        })?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            tracing::warn!(%status, error = %body["error"], description = %body["error_description"], "OpenID Connect code exchange refused");
            return Err(refused(StatusCode::UNAUTHORIZED, "The sign-in provider refused the sign-in; start again."));
        }
        let id_token = body["id_token"].as_str().unwrap_or_default();
        let claims = self.verify(id_token, &d, &pending.nonce, now).await?;
        let name = claims[&self.config.name_claim].as_str().or_else(|| claims["sub"].as_str()).unwrap_or_default();
        if name.is_empty() || name.len() > 256 {
            return Err(refused(
                StatusCode::FORBIDDEN,
                format!("The sign-in has no usable `{}`.", self.config.name_claim),
            ));
        }
        let role = self.role(&claims[&self.config.role_claim]).ok_or_else(|| {
            tracing::info!(user = %name, "OpenID Connect sign-in refused: no mapped role");
            refused(
                StatusCode::FORBIDDEN,
                format!(
                    "{name} signed in, but none of their `{}` values gives a role here (config `oidc.roles`).",
                    self.config.role_claim
                ),
            )
        })?;
        Ok((Principal { name: name.to_string(), role }, pending.next))
    }

    /// The ID token's claims, once it is proven to be this sign-in's.
    async fn verify(&self, token: &str, d: &Discovery, nonce: &str, now: DateTime<Utc>) -> Result<Value, Refused> {
        let bad = |why: String| {
            tracing::warn!(%why, "OpenID Connect ID token refused");
            refused(StatusCode::UNAUTHORIZED, "The sign-in could not be verified; start again.")
        };
        let header = jsonwebtoken::decode_header(token).map_err(|e| bad(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(bad(format!("algorithm {:?}; only RS256 is accepted", header.alg)));
        }
        let key = self.key(&d.jwks_uri, header.kid.as_deref()).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[d.issuer.as_str()]);
        validation.set_audience(&[self.config.client_id.as_str()]);
        // Lifetimes are checked below against the engine's clock.
        validation.validate_exp = false;
        validation.required_spec_claims = ["iss", "aud", "exp", "sub"].iter().map(|s| s.to_string()).collect();
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| bad(e.to_string()))?;
        let claims = data.claims;
        let at = now.timestamp();
        let exp = claims["exp"].as_i64().unwrap_or(0);
        if exp + 60 < at {
            return Err(bad(format!("expired at {exp}, now {at}")));
        }
        if claims["iat"].as_i64().is_some_and(|iat| iat > at + 300) {
            return Err(bad("issued in the future".into()));
        }
        if claims["nonce"].as_str() != Some(nonce) {
            return Err(bad("nonce does not match".into()));
        }
        Ok(claims)
    }

    /// The most capable role the claim's values map to (admin, then agent, then integrator).
    fn role(&self, claim: &Value) -> Option<Role> {
        let values: Vec<&str> = match claim {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let mapped: Vec<Role> = values.iter().filter_map(|v| self.config.roles.get(*v).copied()).collect();
        [Role::Admin, Role::Agent, Role::Integrator].into_iter().find(|r| mapped.contains(r))
    }
}
