//! `switchboard backup` and `switchboard restore`: an online snapshot of a running
//! server (`POST /admin/backup`), and a new data directory built from one.

use super::{server_url, unreachable, Failure};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

/// `switchboard backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// URL of the running server, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "SWITCHBOARD_URL")]
    server: String,
    /// An admin token.
    #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true)]
    token: String,
    /// Write here (first as `<file>.partial`, renamed once complete) instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `switchboard restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file.
    file: PathBuf,
    /// The data directory to build (absent or empty).
    #[arg(long)]
    data_dir: PathBuf,
}

/// Streams the server's snapshot to the file or stdout.
pub async fn backup(args: BackupArgs) -> Result<(), Failure> {
    server_url(&args.server)?;
    let url = format!("{}/admin/backup", args.server.trim_end_matches('/'));
    let mut resp = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&args.token)
        .send()
        .await
        .map_err(|e| unreachable(&args.server, &e))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let fail = if status.is_client_error() { Failure::input } else { Failure::runtime };
        return Err(fail(format!("backup refused: {status}: {body}")));
    }
    let records = resp.headers().get("x-switchboard-records").and_then(|v| v.to_str().ok()).unwrap_or("?").to_string();
    let partial = args.out.as_ref().map(|p| p.with_extension("partial"));
    let mut out: Box<dyn Write> = match &partial {
        Some(p) => Box::new(std::fs::File::create(p).map_err(|e| Failure::input(format!("{}: {e}", p.display())))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut bytes = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(|e| Failure::runtime(format!("the backup was cut off: {e}")))? {
        out.write_all(&chunk).map_err(|e| Failure::runtime(format!("writing the backup: {e}")))?;
        bytes += chunk.len() as u64;
    }
    out.flush().map_err(|e| Failure::runtime(format!("writing the backup: {e}")))?;
    drop(out);
    if let (Some(partial), Some(done)) = (&partial, &args.out) {
        std::fs::File::open(partial).and_then(|f| f.sync_all()).map_err(|e| Failure::runtime(e.to_string()))?;
        std::fs::rename(partial, done).map_err(|e| Failure::runtime(format!("{}: {e}", done.display())))?;
    }
    eprintln!("backup: {records} records, {bytes} bytes");
    Ok(())
}

/// Builds a data directory from a backup (checked whole first).
pub fn restore(args: RestoreArgs) -> Result<(), Failure> {
    let restored = crate::store::sled::restore(&args.file, &args.data_dir)?;
    // Open it once as the server would (a backup of an older layout is migrated here).
    let store = crate::store::sled::SledStore::open(&args.data_dir, 64 << 20, crate::store::Durability::Group)?;
    crate::store::Store::close(&store)?;
    println!(
        "restored {} records ({} trees) into {}; start the server on it",
        restored.records,
        restored.trees,
        args.data_dir.display()
    );
    Ok(())
}
