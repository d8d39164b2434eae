//! The desk commands: `tickets list|show`, `dry-run`, `replay` and `start`. Each reads
//! from a running server (`--server`, `--token`) or, where that makes sense, from a
//! stopped server's data directory (`--data-dir`), and prints text (or `--json`).

use super::{existing_store, offline_engine, refused, segment, send, Failure, Target};
use crate::store::{Store, TicketFilter};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::path::PathBuf;

/// `switchboard tickets ...`.
#[derive(Debug, Subcommand)]
pub enum TicketsCommand {
    /// Tickets, filtered, one line each.
    List(ListArgs),
    /// One ticket: fields, comments, links.
    Show(ShowArgs),
}

/// `tickets list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this status (new, assigned, in_progress, pending, resolved, closed, reopened).
    #[arg(long)]
    status: Option<String>,
    /// Only this group.
    #[arg(long)]
    group: Option<String>,
    /// Only this assignee.
    #[arg(long)]
    assignee: Option<String>,
    /// At most this many (default 50).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Print the JSON instead of lines.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

/// `tickets show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The ticket id, e.g. T-1.
    ticket: String,
    /// Print the JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

/// Which definition `dry-run` and `replay` use.
#[derive(Debug, Args)]
pub struct Definition {
    /// A workflow file (e.g. a draft you are editing).
    file: Option<PathBuf>,
    /// Or a published workflow's id.
    #[arg(long, conflicts_with = "file")]
    workflow_id: Option<String>,
}

impl Definition {
    /// The JSON body fields naming it.
    fn body(&self) -> Result<serde_json::Map<String, Value>, Failure> {
        let mut body = serde_json::Map::new();
        match (&self.file, &self.workflow_id) {
            (Some(file), None) => {
                let text =
                    std::fs::read_to_string(file).map_err(|e| Failure::input(format!("{}: {e}", file.display())))?;
                let wf = crate::workflow::validate_str(&text).map_err(|errors| {
                    let lines: Vec<String> = errors
                        .iter()
                        .map(|e| {
                            format!(
                                "{}:{}: {}",
                                file.display(),
                                if e.pointer.is_empty() { "/" } else { &e.pointer },
                                e.message
                            )
                        })
                        .collect();
                    Failure::input(lines.join("\n"))
                })?;
                body.insert("workflow".into(), serde_json::to_value(wf).unwrap_or_default());
            }
            (None, Some(id)) => {
                body.insert("workflow_id".into(), json!(id));
            }
            _ => return Err(Failure::input("give a workflow file or --workflow-id")),
        }
        Ok(body)
    }
}

/// `dry-run`.
#[derive(Debug, Args)]
pub struct DryRunArgs {
    #[command(flatten)]
    definition: Definition,
    /// The ticket to run against (absent for a scheduled workflow: as if it fired now).
    #[arg(long)]
    ticket: Option<String>,
    /// The event to simulate (default ticket.created).
    #[arg(long)]
    event: Option<String>,
    #[command(flatten)]
    target: Target,
}

/// `replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    definition: Definition,
    /// Events of the last this many days (1-90, default 7).
    #[arg(long, default_value_t = 7)]
    days: u32,
    /// Print the JSON instead of the differences.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

/// `start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The workflow id.
    workflow: String,
    /// The ticket to run on (absent for a scheduled workflow: it runs now).
    #[arg(long)]
    ticket: Option<String>,
    /// JSON given to the run as `vars.input`.
    #[arg(long)]
    input: Option<String>,
    #[command(flatten)]
    target: Target,
}

/// GET (no body) or POST `body` to a server; the answer as JSON, a refusal as the one
/// exit-code rule says.
async fn call(
    url: &str,
    token: Option<String>,
    path: &str,
    body: Option<&Value>,
    context: &str,
) -> Result<Value, Failure> {
    let (status, text) = send(url, token, |c, base| match body {
        Some(b) => c.post(format!("{base}{path}")).json(b),
        None => c.get(format!("{base}{path}")),
    })
    .await?;
    if !status.is_success() {
        return Err(refused(context, status, &text));
    }
    serde_json::from_str(&text).map_err(|e| Failure::runtime(format!("{url}: {e}")))
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `tickets list|show`.
pub async fn tickets(cmd: TicketsCommand) -> Result<(), Failure> {
    match cmd {
        TicketsCommand::List(args) => {
            let list = match (args.target.server, args.target.data_dir) {
                (Some(url), _) => {
                    let mut query = vec![format!("limit={}", args.limit.clamp(1, 1000))];
                    for (k, v) in [("status", &args.status), ("group", &args.group), ("assignee", &args.assignee)] {
                        if let Some(v) = v {
                            query.push(format!("{k}={}", segment(v)));
                        }
                    }
                    call(&url, args.target.token, &format!("/tickets?{}", query.join("&")), None, "tickets").await?
                        ["tickets"]
                        .clone()
                }
                (None, Some(dir)) => {
                    let (store, engine) = offline_engine(existing_store(&dir)?)?;
                    let status = match &args.status {
                        Some(s) => Some(
                            serde_json::from_value(json!(s))
                                .map_err(|_| Failure::input(format!("--status: `{s}` is not a status")))?,
                        ),
                        None => None,
                    };
                    let filter = TicketFilter {
                        status,
                        group: args.group.clone(),
                        assignee: args.assignee.clone(),
                        limit: Some(args.limit.clamp(1, 1000)),
                        ..Default::default()
                    };
                    let tickets = engine.store().tickets(&filter).await.map_err(|e| Failure::runtime(e.to_string()))?;
                    store.close()?;
                    serde_json::to_value(tickets).unwrap_or_default()
                }
                (None, None) => return Err(Failure::input("tickets needs --server URL or --data-dir DIR")),
            };
            if args.json {
                print_json(&list);
                return Ok(());
            }
            for t in list.as_array().into_iter().flatten() {
                println!(
                    "{:<8} {:<11} {:<3} {:<14} {:<10} {}",
                    text(&t["id"]),
                    text(&t["status"]),
                    text(&t["priority"]),
                    text(&t["group"]),
                    text(&t["assignee"]),
                    text(&t["title"])
                );
            }
            Ok(())
        }
        TicketsCommand::Show(args) => {
            let ticket = match (args.target.server, args.target.data_dir) {
                (Some(url), _) => {
                    call(&url, args.target.token, &format!("/tickets/{}", segment(&args.ticket)), None, &args.ticket)
                        .await?
                }
                (None, Some(dir)) => {
                    let (store, engine) = offline_engine(existing_store(&dir)?)?;
                    let t = engine.store().ticket(&args.ticket).await.map_err(|e| Failure::runtime(e.to_string()))?;
                    store.close()?;
                    let t = t.ok_or_else(|| Failure::input(format!("{}: ticket not found", args.ticket)))?;
                    serde_json::to_value(t).unwrap_or_default()
                }
                (None, None) => return Err(Failure::input("tickets needs --server URL or --data-dir DIR")),
            };
            if args.json {
                print_json(&ticket);
                return Ok(());
            }
            println!("{} {} ({})", text(&ticket["id"]), text(&ticket["title"]), text(&ticket["status"]));
            for field in ["kind", "priority", "requester", "group", "assignee", "category", "channel", "created_at"] {
                println!("  {field:<10} {}", text(&ticket[field]));
            }
            for l in ticket["links"].as_array().into_iter().flatten() {
                println!("  link       {} {}", text(&l["kind"]), text(&l["ticket"]));
            }
            for c in ticket["comments"].as_array().into_iter().flatten() {
                let kind = if c["internal"] == true { "note" } else { "reply" };
                println!(
                    "  #{} {kind} by {} at {}: {}",
                    text(&c["id"]),
                    text(&c["author"]),
                    text(&c["at"]),
                    text(&c["body"])
                );
            }
            Ok(())
        }
    }
}

/// `dry-run`: what a definition would do, printed as the JSON the API answers.
pub async fn dry_run(args: DryRunArgs) -> Result<(), Failure> {
    let url =
        args.target.server.ok_or_else(|| Failure::input("dry-run needs --server URL (it reads the live store)"))?;
    let mut body = args.definition.body()?;
    if let Some(t) = &args.ticket {
        body.insert("ticket".into(), json!(t));
    }
    if let Some(e) = &args.event {
        body.insert("event".into(), json!(e));
    }
    print_json(&call(&url, args.target.token, "/workflows/dry-run", Some(&Value::Object(body)), "dry-run").await?);
    Ok(())
}

/// `replay`: what a definition would have done on recent events, and where that differs.
pub async fn replay(args: ReplayArgs) -> Result<(), Failure> {
    let url =
        args.target.server.ok_or_else(|| Failure::input("replay needs --server URL (it reads the live store)"))?;
    let mut body = args.definition.body()?;
    body.insert("days".into(), json!(args.days));
    let out = call(&url, args.target.token, "/workflows/replay", Some(&Value::Object(body)), "replay").await?;
    if args.json {
        print_json(&out);
        return Ok(());
    }
    println!(
        "{}: {} event(s) on {} ticket(s) since {}: {} the same, {} differ",
        text(&out["workflow"]),
        text(&out["events"]),
        text(&out["tickets"]),
        text(&out["since"]),
        text(&out["same"]),
        text(&out["differ"])
    );
    for row in out["rows"].as_array().into_iter().flatten().filter(|r| r["differs"] == true) {
        println!(
            "{} {} ({} {}):",
            text(&row["ticket"]),
            text(&row["title"]),
            text(&row["trigger"]),
            text(&row["event"])
        );
        for d in row["differences"].as_array().into_iter().flatten() {
            println!("  {}: would {}, happened {}", text(&d["what"]), d["would"], d["happened"]);
        }
    }
    Ok(())
}

/// `start`: a workflow by hand on a ticket, or a scheduled one now.
pub async fn start(args: StartArgs) -> Result<(), Failure> {
    let url =
        args.target.server.ok_or_else(|| Failure::input("start needs --server URL (runs execute in the server)"))?;
    let mut body = serde_json::Map::new();
    if let Some(t) = &args.ticket {
        body.insert("ticket".into(), json!(t));
    }
    if let Some(input) = &args.input {
        let v: Value = serde_json::from_str(input).map_err(|e| Failure::input(format!("--input is not JSON: {e}")))?;
        body.insert("input".into(), v);
    }
    let path = format!("/workflows/{}/runs", segment(&args.workflow));
    let out = call(&url, args.target.token, &path, Some(&Value::Object(body)), &args.workflow).await?;
    for run in out["runs"].as_array().into_iter().flatten() {
        println!("{}", text(run));
    }
    Ok(())
}
