//! `POST /admin/backup` (admin): a consistent snapshot of the whole store, streamed back
//! as it was written to a temporary file (so the copy holds writes back for as short a
//! time as the disk allows, not for as long as the client takes to download).
//! `switchboard restore FILE --data-dir DIR` builds a data directory from it.

use super::auth::Principal;
use super::{ApiError, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use std::io::{Seek, SeekFrom};

/// `POST /admin/backup`.
pub async fn backup(State(s): State<AppState>, Extension(who): Extension<Principal>) -> Result<Response, ApiError> {
    if s.engine.config().store.is_some() {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "backup_not_here",
            "this server keeps its state in PostgreSQL: back up the database with its own tools (pg_dump, base backups)",
        ));
    }
    let store = s.engine.store().clone();
    let dir = s.engine.config().data_dir.clone();
    let started = std::time::Instant::now();
    let written = tokio::task::spawn_blocking(move || -> Result<(std::fs::File, u64), String> {
        // Beside the data (its file system has the room; /tmp may be memory).
        let mut file = tempfile::tempfile_in(&dir).or_else(|_| tempfile::tempfile()).map_err(|e| e.to_string())?;
        let records = store.backup(&mut file).map_err(|e| e.to_string())?;
        file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        Ok((file, records))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("backup task: {e}")))?;
    let (file, records) = written.map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "backup_failed", e))?;
    tracing::info!(by = %who.name, records, ms = started.elapsed().as_millis() as u64, "backup written");
    let name = format!("switchboard-{}.backup", s.engine.clock_now().format("%Y%m%dT%H%M%SZ"));
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file)));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            (header::HeaderName::from_static("x-switchboard-records"), records.to_string()),
        ],
        body,
    )
        .into_response())
}
