//! Sessions of the web console: an API token, presented once, exchanged for a random
//! session id that the console keeps in a cookie. A session carries the token's
//! principal (so the console decides exactly as the API would) and a CSRF token. Kept in
//! memory: a restart signs everyone out.

use super::auth::Principal;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

/// How long a session lasts after sign-in.
pub const SESSION_HOURS: i64 = 8;
/// Most sessions held at once (expired ones are dropped first, then the oldest).
const MAX_SESSIONS: usize = 10_000;

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who (the token's name and role): what the API would see with their token.
    pub principal: Principal,
    /// Sent back by every form; a POST without it is refused.
    pub csrf: String,
    /// When the session ends.
    pub expires: DateTime<Utc>,
}

/// The sessions, by the SHA-256 of their cookie value (the value itself is not kept).
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<[u8; 32], Session>>);

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Starts a session; returns the cookie value.
    pub fn start(&self, principal: Principal, now: DateTime<Utc>) -> (String, Session) {
        let id = random_hex();
        let session = Session { principal, csrf: random_hex(), expires: now + Duration::hours(SESSION_HOURS) };
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.expires > now);
        }
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(digest(&id), session.clone());
        (id, session)
    }

    /// The live session with this cookie value (an expired one is removed).
    pub fn find(&self, id: &str, now: DateTime<Utc>) -> Option<Session> {
        let key = digest(id);
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&key) {
            Some(s) if s.expires > now => Some(s.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends a session.
    pub fn end(&self, id: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&digest(id));
    }
}
