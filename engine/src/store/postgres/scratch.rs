//! A throw-away PostgreSQL cluster for tests and benchmarks: `initdb` in a temp
//! directory (as `nobody` when run as root: PostgreSQL refuses root), `pg_ctl` on a free
//! loopback port, a fresh database per caller. One cluster per process, started on first
//! use; a watcher process stops it when this process ends, however it ends.
//!
//! Needs Debian's `postgresql` (`tests/deps.sh` installs it); binaries are looked up in
//! `SWITCHBOARD_PG_BIN` or `/usr/lib/postgresql/*/bin`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The running cluster.
struct Cluster {
    port: u16,
    /// Kept for the process's life (the watcher removes it).
    _dir: PathBuf,
}

fn is_root() -> bool {
    rustix::process::getuid().is_root()
}

fn bin_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("SWITCHBOARD_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("PostgreSQL is not installed (/usr/lib/postgresql: {e}); run tests/deps.sh"))?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().ok_or_else(|| "no PostgreSQL binaries under /usr/lib/postgresql; run tests/deps.sh".into())
}

/// Runs `program` with `args`, as `nobody` when this process is root.
fn run_as_owner(program: &std::path::Path, args: &[&str]) -> Result<(), String> {
    let root = is_root();
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let out = cmd.args(args).output().map_err(|e| format!("{}: {e}", program.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {}: {}{}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn start() -> Result<Cluster, String> {
    let bin = bin_dir()?;
    let dir = std::env::temp_dir().join(format!("switchboard-pg-{}-{}", std::process::id(), rand::random::<u32>()));
    let data = dir.join("data");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if is_root() {
        let status = Command::new("chown").args(["-R", "nobody"]).arg(&dir).status().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("chown nobody {}", dir.display()));
        }
    }
    let data_s = data.display().to_string();
    run_as_owner(&bin.join("initdb"), &["-D", &data_s, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])?;
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
    let options = format!("-h 127.0.0.1 -p {port} -k {} -c fsync=off -c max_connections=200", dir.display());
    let log = dir.join("log").display().to_string();
    run_as_owner(&bin.join("pg_ctl"), &["-D", &data_s, "-o", &options, "-l", &log, "-w", "start"])?;
    // The watcher: once this process is gone, stop the cluster and remove its files.
    let pg_ctl = bin.join("pg_ctl").display().to_string();
    let stop = if is_root() {
        format!("runuser -u nobody -- {pg_ctl} -D {data_s} -m immediate stop")
    } else {
        format!("{pg_ctl} -D {data_s} -m immediate stop")
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        dir = dir.display()
    );
    Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("watcher: {e}"))?;
    Ok(Cluster { port, _dir: dir })
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static NEXT: AtomicU32 = AtomicU32::new(1);

/// The URL of a fresh, empty database on the process's scratch cluster (started on the
/// first call).
pub async fn database() -> Result<String, String> {
    let cluster = tokio::task::spawn_blocking(|| match CLUSTER.get_or_init(start) {
        Ok(c) => Ok(c.port),
        Err(e) => Err(e.clone()),
    })
    .await
    .map_err(|e| e.to_string())??;
    let name = format!("sb_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
    let admin = format!("postgres://postgres@127.0.0.1:{cluster}/postgres");
    let (client, connection) =
        tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.map_err(|e| e.to_string())?;
    let conn = tokio::spawn(connection);
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.map_err(|e| e.to_string())?;
    drop(client);
    let _ = conn.await;
    Ok(format!("postgres://postgres@127.0.0.1:{cluster}/{name}"))
}
