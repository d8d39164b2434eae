//! The server as a function: bind elsewhere, pass the listener in.
//!
//! Connections are served by hyper directly (not `axum::serve`) so that slow clients
//! are bounded: headers must arrive within `header_timeout_ms` (bodies within
//! `body_timeout_ms`, enforced by the extractors), and at most `max_connections` are
//! open at once; a connection past the cap is closed as soon as it is accepted. With
//! `tls_cert` and `tls_key` every connection is HTTPS (the handshake bounded like the
//! headers) and every answer carries `Strict-Transport-Security`.

use crate::api::{self, auth::Tokens, AppState};
use crate::console;
use crate::executor::Engine;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Serves the API on `listener` until `shutdown` resolves, then stops taking requests,
/// lets runs finish their current step, and flushes the store.
pub async fn run(
    listener: TcpListener,
    engine: Arc<Engine>,
    demo: bool,
    tls: Option<Arc<crate::tls::Tls>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState {
        tokens: Arc::new(Tokens::new(&engine.config().tokens)),
        engine: engine.clone(),
        inbox: demo.then(Default::default),
        sessions: Default::default(),
        oidc: engine.config().oidc.clone().map(|c| Arc::new(api::oidc::Oidc::new(c, &engine.config().public_url))),
        closing: Default::default(),
    };
    let closing = state.closing.clone();
    // The console's pages beside the API (the API's fallback answers what neither has).
    let mut app = api::router(state.clone()).merge(console::router(state));
    if let Some(tls) = &tls {
        tls.reload_on_sighup();
        // Browsers keep to HTTPS for this host from now on.
        app = app.layer(axum::middleware::map_response(|mut resp: axum::response::Response| async move {
            resp.headers_mut().insert(
                axum::http::header::STRICT_TRANSPORT_SECURITY,
                axum::http::HeaderValue::from_static("max-age=31536000"),
            );
            resp
        }));
    }
    let config = engine.config();
    let header_timeout = Duration::from_millis(config.header_timeout_ms);
    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = config.max_connections, "connection limit reached; closing a new connection");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let watcher = graceful.watcher();
        let acceptor = tls.as_ref().map(|t| t.acceptor());
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
            builder.http2().timer(TokioTimer::new());
            let ended = match acceptor {
                None => {
                    watcher
                        .watch(builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned())
                        .await
                }
                // The handshake is bounded like the headers: a client that stalls in it is cut off.
                Some(acceptor) => match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        watcher
                            .watch(builder.serve_connection_with_upgrades(TokioIo::new(tls), service).into_owned())
                            .await
                    }
                    Ok(Err(e)) => Err(e.into()),
                    Err(_) => Err("TLS handshake timed out".into()),
                },
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    closing.cancel();
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => tracing::warn!("connections still open after 10 s; closing them"),
    }
    tracing::info!("HTTP stopped; draining runs");
    engine.shutdown().await;
    engine.store().close()?;
    tracing::info!("store flushed; bye");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled: the server prints "listening on" before it polls
/// its shutdown future, and a SIGTERM sent in between used to kill the process outright
/// (exit by signal instead of a drain; seen on a loaded CI machine).
pub fn signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (mut int, mut term) = (signal(SignalKind::interrupt()).ok(), signal(SignalKind::terminate()).ok());
        async move {
            let int = async {
                match int.as_mut() {
                    Some(s) => drop(s.recv().await),
                    None => std::future::pending::<()>().await,
                }
            };
            let term = async {
                match term.as_mut() {
                    Some(s) => drop(s.recv().await),
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! { _ = int => {}, _ = term => {} }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
