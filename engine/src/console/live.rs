//! Live refresh: `GET /console/events` is a server-sent event stream that says `change`
//! (at most once a second) when something the console shows may have changed — a run
//! moved, a step ran, a request changed data ([`crate::metrics::Metrics::changes`]).
//! `live.js`, the console's only script, then fetches the page again and swaps its
//! `[data-live]` part, unless the user is typing in a form on it. Pages work the same
//! without it; it only saves pressing reload.

use crate::api::AppState;
use crate::console::session::User;
use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use std::convert::Infallible;
use std::time::Duration;

/// How often the stream looks for changes.
const TICK: Duration = Duration::from_secs(1);

/// `GET /console/events` (signed in): `change` events while the session lasts.
pub async fn events(State(s): State<AppState>, user: User) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let seen = s.engine.metrics().changes();
    let stream = stream::unfold((s, user, seen), |(s, user, mut seen)| async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = s.closing.cancelled() => return None,
            }
            // A session that ended (signed out, expired) ends its stream.
            if !user.is_live(&s.sessions, s.engine.clock_now()) {
                return None;
            }
            let now = s.engine.metrics().changes();
            if now != seen {
                seen = now;
                return Some((Ok(Event::default().event("change").data(now.to_string())), (s, user, seen)));
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// The script (compiled in).
pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("live.js"),
    )
        .into_response()
}
