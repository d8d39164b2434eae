//! The `switchboard` command line: `serve` and `validate` here; `apply` (configuration as
//! code) and `install` in [`apply`]; `explain`, `report` and `run` in [`inspect`]; the
//! desk commands in [`desk`].
//!
//! Exit codes: 0 success; 1 runtime failure; 2 invalid input (arguments, configuration,
//! workflow files); 3 the data directory cannot be used (locked, unreadable, corrupt).

use crate::clock::SystemClock;
use crate::config::{Config, Role, Token};
use crate::executor::Engine;
use crate::store::{sled::SledStore, Durability};
use crate::workflow::{validate_str, Workflow};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

mod apply;
mod backup;
mod desk;
mod inspect;

/// Workflow automation for IT service desks.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version = crate::LONG_VERSION, about)]
pub struct Cli {
    /// Log lines as `text` or `json` (default: the config's `log_format`, else text).
    #[arg(long, global = true, env = "SWITCHBOARD_LOG_FORMAT", value_enum)]
    log_format: Option<crate::config::LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Check workflow files (or every *.json in a directory) and print each error with its JSON pointer.
    Validate {
        /// Files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Publish every workflow in a directory, into a running server or a data directory.
    Apply(ApplyArgs),
    /// Install a plugin (.wasm) into a running server or a data directory.
    Install(InstallArgs),
    /// Why each workflow and SLA policy did or did not apply to a ticket.
    Explain(ExplainArgs),
    /// The manager's report over a period, as CSV or JSON.
    Report(ReportArgs),
    /// A run as a timeline: trigger, conditions with the values seen, each step.
    Run(RunArgs),
    /// List tickets, or show one.
    #[command(subcommand)]
    Tickets(desk::TicketsCommand),
    /// What a workflow (a file, or a published id) would do to a ticket; nothing changes.
    DryRun(desk::DryRunArgs),
    /// A workflow run dry against the last days' events, beside what happened.
    Replay(desk::ReplayArgs),
    /// Start a workflow by hand on a ticket, or a scheduled workflow now.
    Start(desk::StartArgs),
    /// Write a consistent snapshot of a running server (admin token) to stdout or --out.
    Backup(backup::BackupArgs),
    /// Build a new data directory from a backup file.
    Restore(backup::RestoreArgs),
    /// Apply the PostgreSQL schema (a server also does at start) and exit.
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The run id, e.g. R-1.
    run: String,
    /// Print the JSON the API returns instead of the timeline.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// Start: RFC 3339 or YYYY-MM-DD (default: `to` minus `--period`).
    #[arg(long)]
    from: Option<String>,
    /// End, exclusive (default: now).
    #[arg(long)]
    to: Option<String>,
    /// day, week or month (when --from is absent).
    #[arg(long, default_value = "week")]
    period: String,
    /// group, agent, category or channel.
    #[arg(long)]
    by: Option<String>,
    /// csv or json.
    #[arg(long, default_value = "csv")]
    format: String,
    /// day, week or month: also a series of buckets of that length.
    #[arg(long)]
    bucket: Option<String>,
    /// IANA time zone of the bucket boundaries (default UTC).
    #[arg(long)]
    tz: Option<String>,
    /// With --data-dir: the server's configuration, for its integration tokens and
    /// `[reports]` minutes saved.
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, Args)]
struct ExplainArgs {
    /// The ticket id, e.g. T-1.
    ticket: String,
    /// Print the JSON the API returns instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, Args)]
struct InstallArgs {
    /// The plugin module.
    file: PathBuf,
    #[command(flatten)]
    target: Target,
}

/// Where `apply` and `install` write: a running server, or a stopped server's data directory.
#[derive(Debug, Args)]
struct Target {
    /// URL of a running server, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "SWITCHBOARD_URL", conflicts_with = "data_dir")]
    server: Option<String>,
    /// Admin token for --server (integrator tokens may install plugins).
    #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Write straight into a data directory (the server must be stopped).
    #[arg(long, env = "SWITCHBOARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct MigrateArgs {
    /// The database (`postgres://user:password@host/db`).
    #[arg(long, env = "SWITCHBOARD_STORE", hide_env_values = true)]
    store: String,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "SWITCHBOARD_LISTEN")]
    listen: Option<SocketAddr>,
    /// Data directory (default ./data).
    #[arg(long, env = "SWITCHBOARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A PostgreSQL database instead of the data directory (`postgres://user:pw@host/db`).
    #[arg(long, env = "SWITCHBOARD_STORE", hide_env_values = true)]
    store: Option<String>,
    /// What an acknowledged write survives.
    #[arg(long, env = "SWITCHBOARD_DURABILITY", value_enum)]
    durability: Option<Durability>,
    /// Concurrent run workers.
    #[arg(long, env = "SWITCHBOARD_WORKERS")]
    workers: Option<usize>,
    /// Adds an admin token named `admin` (at least 16 characters).
    #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Start with demo tokens, groups, agents and the workflows in --workflows.
    #[arg(long)]
    demo: bool,
    /// Where --demo loads workflows from.
    #[arg(long, default_value = "workflows")]
    workflows: PathBuf,
    /// Where --demo loads plugins (*.wasm) from; build them with plugins/build.sh.
    #[arg(long, default_value = "plugins/dist")]
    plugins: PathBuf,
}

#[derive(Debug, Args)]
struct ApplyArgs {
    /// Directory of workflow files (*.json).
    dir: PathBuf,
    #[command(flatten)]
    target: Target,
}

/// A CLI failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn input(message: impl Into<String>) -> Self {
        Self { code: 2, message: message.into() }
    }
    fn runtime(message: impl Into<String>) -> Self {
        Self { code: 1, message: message.into() }
    }
}

impl From<crate::store::Error> for Failure {
    fn from(e: crate::store::Error) -> Self {
        let code = match e {
            crate::store::Error::Locked { .. }
            | crate::store::Error::Held { .. }
            | crate::store::Error::Io { .. }
            | crate::store::Error::Corrupt { .. }
            | crate::store::Error::Damaged { .. } => 3,
            _ => 1,
        };
        Self { code, message: e.to_string() }
    }
}

/// Entry point shared by the binary and the test harness.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The format is needed before the config is read for real: `serve` reports a bad
    // config file later, through the logger set up here.
    let format = cli.log_format.unwrap_or_else(|| match &cli.command {
        Command::Serve(ServeArgs { config: Some(path), .. }) => {
            Config::from_file(path).map(|c| c.log_format).unwrap_or_default()
        }
        _ => crate::config::LogFormat::Text,
    });
    let filter = || tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sled=warn".into());
    match format {
        crate::config::LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .init(),
        crate::config::LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            // Colours only for a person at a terminal, never in a file or a pipe.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    let result = match cli.command {
        Command::Validate { paths } => validate(&paths),
        Command::Serve(args) => runtime().and_then(|rt| rt.block_on(serve(args))),
        Command::Apply(args) => runtime().and_then(|rt| rt.block_on(apply::apply(args))),
        Command::Install(args) => runtime().and_then(|rt| rt.block_on(apply::install(args))),
        Command::Explain(args) => runtime().and_then(|rt| rt.block_on(inspect::explain(args))),
        Command::Report(args) => runtime().and_then(|rt| rt.block_on(inspect::report(args))),
        Command::Tickets(cmd) => runtime().and_then(|rt| rt.block_on(desk::tickets(cmd))),
        Command::DryRun(args) => runtime().and_then(|rt| rt.block_on(desk::dry_run(args))),
        Command::Replay(args) => runtime().and_then(|rt| rt.block_on(desk::replay(args))),
        Command::Start(args) => runtime().and_then(|rt| rt.block_on(desk::start(args))),
        Command::Run(args) => runtime().and_then(|rt| rt.block_on(inspect::show_run(args))),
        Command::Backup(args) => runtime().and_then(|rt| rt.block_on(backup::backup(args))),
        Command::Restore(args) => backup::restore(args),
        Command::Migrate(args) => runtime().and_then(|rt| rt.block_on(migrate(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(format!("cannot start runtime: {e}")))
}

/// The workflow files a path names: the file itself, or the `*.json` directly in a directory.
pub fn workflow_files(path: &Path) -> Result<Vec<PathBuf>, Failure> {
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        Ok(files)
    } else if path.exists() {
        Ok(vec![path.to_path_buf()])
    } else {
        Err(Failure::input(format!("{}: no such file or directory", path.display())))
    }
}

/// Reads and validates workflow files; every error is printed as `file:pointer: message`.
pub fn load_workflows(paths: &[PathBuf]) -> Result<Vec<(PathBuf, Workflow)>, Failure> {
    let mut ok = Vec::new();
    let mut bad = 0usize;
    for path in paths {
        for file in workflow_files(path)? {
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    bad += 1;
                    continue;
                }
            };
            match validate_str(&text) {
                Ok(wf) => ok.push((file, wf)),
                Err(errors) => {
                    bad += errors.len();
                    for e in errors {
                        let at = if e.pointer.is_empty() { "/" } else { &e.pointer };
                        eprintln!("{}:{at}: {}", file.display(), e.message);
                    }
                }
            }
        }
    }
    if bad > 0 {
        return Err(Failure::input(format!("{bad} problem(s) found")));
    }
    Ok(ok)
}

fn validate(paths: &[PathBuf]) -> Result<(), Failure> {
    let mut all = crate::setup::Setup::default();
    let mut problems = 0;
    for path in paths {
        match crate::setup::read(path) {
            Ok(setup) => {
                all.workflows.extend(setup.workflows);
                all.sla.extend(setup.sla);
                all.webhooks.extend(setup.webhooks);
                all.grants.extend(setup.grants);
            }
            Err(found) => {
                for p in &found {
                    eprintln!("{p}");
                }
                problems += found.len();
            }
        }
    }
    if problems > 0 {
        return Err(Failure::input(format!("{problems} problem(s) found")));
    }
    let now = chrono::Utc::now();
    for (file, wf) in &all.workflows {
        println!("{}: ok ({}, {} step(s))", file.display(), wf.id, wf.steps.len());
        // Validation has compiled the schedule already; this cannot fail.
        if let Some(compiled) = wf.schedule().and_then(|s| crate::schedule::Compiled::new(&s.cron, &s.timezone).ok()) {
            println!("  next fire times ({}):", compiled.tz());
            for o in compiled.upcoming(now, 5) {
                println!("    {}  {} {} ({})", o.utc.format("%Y-%m-%d %H:%M:%SZ"), o.local, o.zone, o.weekday);
            }
        }
    }
    for (file, sla) in &all.sla {
        println!(
            "{}: ok ({} calendar(s), {} SLA policy(ies))",
            file.display(),
            sla.calendars.len(),
            sla.policies.len()
        );
    }
    for (file, e) in &all.webhooks {
        println!("{}: ok (webhook {})", file.display(), e.id);
    }
    for (file, id, _) in &all.grants {
        println!("{}: ok (grants of plugin {id})", file.display());
    }
    if all.is_empty() {
        return Err(Failure::input("no workflow files found"));
    }
    Ok(())
}

/// Connects to a PostgreSQL store (applying its schema); a store that cannot be
/// reached or read stops the start with exit code 3, naming it.
async fn open_postgres(url: &str, workers: usize) -> Result<crate::store::postgres::PostgresStore, Failure> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(Failure::input("store: give a postgres:// or postgresql:// URL (or leave it out for sled)"));
    }
    crate::store::postgres::PostgresStore::open(url, workers + 8).await.map_err(Failure::from)
}

/// `switchboard migrate`: applies the PostgreSQL schema and exits.
async fn migrate(args: MigrateArgs) -> Result<(), Failure> {
    crate::store::postgres::PostgresStore::connect(&args.store, 1).await?;
    println!("database schema is up to date");
    Ok(())
}

fn open_store(config: &Config) -> Result<Arc<SledStore>, Failure> {
    let store = SledStore::open_with_reserve(
        &config.data_dir,
        config.cache_mb << 20,
        config.durability,
        config.min_free_mb << 20,
    )?;
    Ok(Arc::new(store))
}

/// An engine over a stopped server's data directory, for `apply` and `install`.
fn offline_engine(data_dir: PathBuf) -> Result<(Arc<SledStore>, Arc<Engine>), Failure> {
    offline_engine_with(Config { data_dir, ..Config::default() })
}

/// An engine over `config.data_dir` that runs nothing by itself.
fn offline_engine_with(config: Config) -> Result<(Arc<SledStore>, Arc<Engine>), Failure> {
    let config = Arc::new(config);
    let store = open_store(&config)?;
    let engine =
        Engine::new(store.clone(), Arc::new(SystemClock), config).map_err(|e| Failure::runtime(e.to_string()))?;
    Ok((store, engine))
}

async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path).map_err(|e| Failure::input(e.to_string()))?,
        None => Config::default(),
    };
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = args.data_dir {
        config.data_dir = v;
    }
    if let Some(v) = args.store {
        config.store = Some(v);
    }
    if let Some(v) = args.durability {
        config.durability = v;
    }
    if let Some(v) = args.workers {
        config.workers = v;
    }
    if let Some(token) = args.admin_token {
        config.tokens.push(Token::new("admin", &token, Role::Admin));
    }
    if args.demo {
        crate::demo::configure(&mut config);
    }
    config.check().map_err(|e| Failure::input(e.to_string()))?;
    if config.tokens.is_empty() {
        return Err(Failure::input(
            "no API tokens configured: add [[tokens]] to the config file, set SWITCHBOARD_ADMIN_TOKEN, or use --demo",
        ));
    }
    // Bind before anything is written, so a busy port leaves no half-seeded store.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Failure::runtime(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener.local_addr().map_err(|e| Failure::runtime(e.to_string()))?;
    // HTTPS: a certificate or key that does not load stops the start, naming the file.
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            Some(Arc::new(crate::tls::Tls::new(cert, key).map_err(|e| Failure::input(format!("TLS: {e}")))?))
        }
        _ => None,
    };
    if config.public_url == Config::default().public_url {
        // Not configured: links and the demo's own webhooks point at where we listen.
        config.public_url = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });
    }
    let demo_workflows = if args.demo {
        let loaded = load_workflows(std::slice::from_ref(&args.workflows))?;
        loaded.into_iter().map(|(file, wf)| (file, crate::demo::localize(wf, &config.public_url))).collect()
    } else {
        Vec::new()
    };
    let config = Arc::new(config);
    let store: Arc<dyn crate::store::Store> = match &config.store {
        Some(url) => Arc::new(open_postgres(url, config.workers).await?),
        None => open_store(&config)?,
    };
    let engine =
        Engine::new(store, Arc::new(SystemClock), config.clone()).map_err(|e| Failure::runtime(e.to_string()))?;
    if args.demo {
        crate::demo::seed(&engine).await.map_err(|e| Failure::runtime(e.to_string()))?;
        apply::install_dir(&engine, &args.plugins).await?;
        apply::grant_dir(&engine, &args.workflows.join("plugins")).await?;
        apply::load_sla(&engine, &args.workflows.join("sla")).await?;
        apply::load_webhooks(&engine, &args.workflows.join("webhooks")).await?;
        for (_, mut wf) in demo_workflows {
            wf.schema = None;
            let current = engine.store().workflow(&wf.id).await.map_err(|e| Failure::runtime(e.to_string()))?;
            let current = current.map(|r| apply::json(&r.definition));
            let file = apply::json(&wf);
            let id = wf.id.clone();
            crate::demo::seed_object(&engine, "workflow", &id, current, file, || async {
                engine.put_workflow(wf, "demo").await.map(|_| ())
            })
            .await
            .map_err(|e| Failure::runtime(e.to_string()))?;
        }
    }
    engine.seal_stored_secrets().await.map_err(|e| Failure::runtime(e.to_string()))?;
    let resumed = engine.recover().await.map_err(|e| Failure::runtime(e.to_string()))?;
    engine.spawn_timers();
    match &config.store {
        Some(_) => tracing::info!(%addr, store = "postgres", resumed, "switchboard listening"),
        None => {
            tracing::info!(%addr, data_dir = %config.data_dir.display(), durability = ?config.durability, resumed, "switchboard listening")
        }
    }
    if args.demo {
        tracing::info!(
            "demo tokens: admin={} agent={} integrator={}",
            crate::demo::ADMIN_TOKEN,
            crate::demo::AGENT_TOKEN,
            crate::demo::INTEGRATOR_TOKEN
        );
    }
    // A line on stdout that scripts and tests can wait for.
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("listening on {scheme}://{addr}");
    println!(
        "console: {scheme}://{addr}/console (sign in with a token from the configuration{})",
        if args.demo { format!(", e.g. {}", crate::demo::AGENT_TOKEN) } else { String::new() }
    );
    crate::server::run(listener, engine, args.demo, tls, crate::server::signal())
        .await
        .map_err(|e| Failure::runtime(e.to_string()))
}

/// Sends a request to a running server (built from its base URL) with the token.
/// Returns the status and the body's text.
async fn send(
    url: &str,
    token: Option<String>,
    build: impl FnOnce(&reqwest::Client, &str) -> reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, String), Failure> {
    let token = token.ok_or_else(|| Failure::input("--server needs --token (or SWITCHBOARD_TOKEN)"))?;
    server_url(url)?;
    let resp = build(&reqwest::Client::new(), url.trim_end_matches('/'))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| unreachable(url, &e))?;
    let status = resp.status();
    Ok((status, resp.text().await.unwrap_or_default()))
}

/// Checks a `--server` value: a URL with its scheme.
fn server_url(url: &str) -> Result<(), Failure> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(Failure::input(format!("--server `{url}` needs its scheme, e.g. http://{url}")))
    }
}

/// A request that did not reach the server, said plainly (exit 1).
fn unreachable(url: &str, e: &reqwest::Error) -> Failure {
    if e.is_connect() {
        Failure::runtime(format!("connection refused to {url}: is the server running there?"))
    } else if e.is_timeout() {
        Failure::runtime(format!("{url} did not answer in time"))
    } else {
        Failure::runtime(format!("{url}: {e}"))
    }
}

/// The one rule for a server's refusal: 4xx (bad input, unknown id, 401/403) is exit 2,
/// anything else exit 1; the message is the API error's.
fn refused(context: &str, status: reqwest::StatusCode, text: &str) -> Failure {
    let message = format!("{context}: {status}: {}", error_message(text));
    if status.is_client_error() {
        Failure::input(message)
    } else {
        Failure::runtime(message)
    }
}

/// An id as one path segment (`x/../y` stays one segment).
fn segment(id: &str) -> String {
    crate::plugin::net::percent_encode(id)
}

/// A data directory for a read command: refused when it holds no store (a typo in
/// `--data-dir` would otherwise create an empty one and report nothing, successfully).
fn existing_store(dir: &Path) -> Result<PathBuf, Failure> {
    if dir.join("conf").is_file() || dir.join("db").is_file() {
        Ok(dir.to_path_buf())
    } else {
        Err(Failure::input(format!("{}: no Switchboard data directory there (no store found)", dir.display())))
    }
}

/// The `error.message` of an API error body (or the whole text).
fn error_message(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(String::from))
        .unwrap_or_else(|| text.to_string())
}
