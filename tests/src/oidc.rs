//! A stand-in OpenID Connect provider (what Entra ID does for an app registration), on
//! loopback, for the console's sign-in tests: discovery, an authorization endpoint that
//! signs in whoever the test says (no login form), a token endpoint that checks the code
//! (once), the redirect URI, the client secret and the PKCE verifier (S256) as RFC 6749
//! and RFC 7636 say, and ID tokens signed RS256 with a key published in its JWKS. A test
//! can make it misbehave (wrong audience, wrong nonce, a key it does not publish) to see
//! the console refuse.

use anyhow::{Context, Result};
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How the provider misbehaves, if at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// ID tokens name another client as audience.
    WrongAudience,
    /// ID tokens carry another nonce.
    WrongNonce,
    /// ID tokens are signed with a key the JWKS does not hold.
    UnpublishedKey,
}

struct Grant {
    redirect_uri: String,
    nonce: String,
    challenge: String,
    claims: Value,
}

struct Issuer {
    url: String,
    client_id: String,
    client_secret: String,
    /// The claims of whoever signs in next; `None` declines (`access_denied`).
    next_user: Option<Value>,
    codes: HashMap<String, Grant>,
    tamper: Option<Tamper>,
    key: jsonwebtoken::EncodingKey,
    other_key: jsonwebtoken::EncodingKey,
    jwk: Value,
    /// Requests the token endpoint refused, with why.
    refusals: Vec<String>,
}

/// The running provider.
pub struct FakeIssuer {
    /// Its issuer URL.
    pub url: String,
    state: Arc<Mutex<Issuer>>,
}

/// A fresh 2048-bit RSA key from the `openssl` command (installed by `tests/deps.sh`):
/// the private key for signing and the public JWK.
fn rsa_key(kid: &str) -> Result<(jsonwebtoken::EncodingKey, Value)> {
    let pem = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "2048"])
        .stderr(std::process::Stdio::null())
        .output()
        .context("openssl genrsa")?
        .stdout;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("key.pem");
    std::fs::write(&path, &pem)?;
    let out = std::process::Command::new("openssl").args(["rsa", "-noout", "-modulus", "-in"]).arg(&path).output()?;
    let text = String::from_utf8(out.stdout)?;
    let modulus = hex::decode(text.trim().trim_start_matches("Modulus=")).context("modulus")?;
    let jwk = json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": URL_SAFE_NO_PAD.encode(modulus), "e": "AQAB"});
    Ok((jsonwebtoken::EncodingKey::from_rsa_pem(&pem)?, jwk))
}

impl FakeIssuer {
    /// Starts one for client `client_id` with `client_secret`.
    pub async fn start(client_id: &str, client_secret: &str) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/tenant-1/v2.0", listener.local_addr()?);
        let (key, jwk) = rsa_key("key-1")?;
        let (other_key, _) = rsa_key("key-1")?;
        let state = Arc::new(Mutex::new(Issuer {
            url: url.clone(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            next_user: None,
            codes: HashMap::new(),
            tamper: None,
            key,
            other_key,
            jwk,
            refusals: Vec::new(),
        }));
        let app = Router::new()
            .route("/tenant-1/v2.0/.well-known/openid-configuration", get(discovery))
            .route("/tenant-1/v2.0/authorize", get(authorize))
            .route("/tenant-1/v2.0/token", post(token))
            .route("/tenant-1/v2.0/keys", get(keys))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { url, state })
    }

    /// Who signs in next: their name and the values of the `roles` claim.
    pub fn sign_in_as(&self, name: &str, roles: &[&str]) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).next_user =
            Some(json!({"sub": format!("sub-{name}"), "preferred_username": name, "roles": roles}));
    }

    /// Makes the provider misbehave (or not).
    pub fn tamper(&self, how: Option<Tamper>) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).tamper = how;
    }

    /// What the token endpoint refused.
    pub fn refusals(&self) -> Vec<String> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).refusals.clone()
    }
}

async fn discovery(State(s): State<Arc<Mutex<Issuer>>>) -> Json<Value> {
    let url = s.lock().unwrap_or_else(|p| p.into_inner()).url.clone();
    Json(json!({
        "issuer": url,
        "authorization_endpoint": format!("{url}/authorize"),
        "token_endpoint": format!("{url}/token"),
        "jwks_uri": format!("{url}/keys"),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "subject_types_supported": ["pairwise"],
    }))
}

fn random() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn authorize(State(s): State<Arc<Mutex<Issuer>>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let problem = if get("response_type") != "code" {
        Some("unsupported_response_type")
    } else if get("client_id") != s.client_id {
        Some("unauthorized_client")
    } else if !get("scope").split(' ').any(|x| x == "openid") {
        Some("invalid_scope")
    } else if get("code_challenge_method") != "S256" || get("code_challenge").len() < 43 || get("nonce").is_empty() {
        Some("invalid_request")
    } else {
        None
    };
    if let Some(p) = problem {
        return (StatusCode::BAD_REQUEST, p).into_response();
    }
    let redirect = get("redirect_uri");
    let state = get("state");
    let Some(claims) = s.next_user.clone() else {
        return Redirect::to(&format!("{redirect}?error=access_denied&state={state}")).into_response();
    };
    let code = random();
    s.codes.insert(
        code.clone(),
        Grant { redirect_uri: redirect.clone(), nonce: get("nonce"), challenge: get("code_challenge"), claims },
    );
    let query = serde_urlencoded::to_string([("code", code.as_str()), ("state", state.as_str())]).unwrap_or_default();
    Redirect::to(&format!("{redirect}?{query}")).into_response()
}

async fn token(State(s): State<Arc<Mutex<Issuer>>>, Form(f): Form<HashMap<String, String>>) -> Response {
    let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let grant = s.codes.remove(&get("code"));
    let why = match &grant {
        None => Some("unknown or used code"),
        Some(_) if get("grant_type") != "authorization_code" => Some("grant_type"),
        Some(g) if g.redirect_uri != get("redirect_uri") => {
            Some("redirect_uri differs from the authorization request's")
        }
        Some(_) if get("client_id") != s.client_id || get("client_secret") != s.client_secret => {
            Some("client authentication")
        }
        Some(g) if URL_SAFE_NO_PAD.encode(Sha256::digest(get("code_verifier").as_bytes())) != g.challenge => {
            Some("PKCE verifier does not match the challenge")
        }
        Some(_) => None,
    };
    if let Some(why) = why {
        s.refusals.push(why.to_string());
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_grant", "error_description": why})))
            .into_response();
    }
    let grant = grant.expect("checked");
    let now = chrono::Utc::now().timestamp();
    let mut claims = grant.claims.clone();
    claims["iss"] = json!(s.url);
    claims["aud"] =
        json!(if s.tamper == Some(Tamper::WrongAudience) { "another-app".to_string() } else { s.client_id.clone() });
    claims["nonce"] = json!(if s.tamper == Some(Tamper::WrongNonce) { "not-yours".to_string() } else { grant.nonce });
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 3600);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("key-1".into());
    let key = if s.tamper == Some(Tamper::UnpublishedKey) { &s.other_key } else { &s.key };
    let id_token = jsonwebtoken::encode(&header, &claims, key).expect("RS256 signing with a fresh key");
    Json(json!({"access_token": random(), "token_type": "Bearer", "expires_in": 3600, "id_token": id_token}))
        .into_response()
}

async fn keys(State(s): State<Arc<Mutex<Issuer>>>) -> Json<Value> {
    Json(json!({"keys": [s.lock().unwrap_or_else(|p| p.into_inner()).jwk.clone()]}))
}
