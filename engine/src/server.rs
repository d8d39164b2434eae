//! The server as a function: bind elsewhere, pass the listener in.

use crate::api::{self, auth::Tokens, AppState};
use crate::executor::Engine;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Serves the API on `listener` until `shutdown` resolves, then stops taking requests,
/// lets runs finish their current step, and flushes the store.
pub async fn run(
    listener: TcpListener,
    engine: Arc<Engine>,
    demo: bool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState {
        tokens: Arc::new(Tokens::new(&engine.config().tokens)),
        engine: engine.clone(),
        inbox: demo.then(Default::default),
    };
    let app = api::router(state);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    tracing::info!("HTTP stopped; draining runs");
    engine.shutdown().await;
    engine.store().close()?;
    tracing::info!("store flushed; bye");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
