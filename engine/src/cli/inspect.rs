//! The inspecting commands: `explain` (why workflows and SLA policies did or did not
//! apply to a ticket), `report` (the manager's figures) and `run` (a run's timeline).
//! Each reads from a running server or a stopped server's data directory.

use super::{
    existing_store, offline_engine, offline_engine_with, refused, segment, send, ExplainArgs, Failure, ReportArgs,
    RunArgs,
};
use crate::config::Config;
use crate::store::Store;

pub(super) async fn explain(args: ExplainArgs) -> Result<(), Failure> {
    let report = match (args.target.server, args.target.data_dir) {
        (Some(url), _) => {
            let ticket = args.ticket.clone();
            let (status, text) =
                send(&url, args.target.token, |c, base| c.get(format!("{base}/tickets/{}/explain", segment(&ticket))))
                    .await?;
            if !status.is_success() {
                return Err(refused(&args.ticket, status, &text));
            }
            serde_json::from_str::<serde_json::Value>(&text).map_err(|e| Failure::runtime(format!("{url}: {e}")))?
        }
        (None, Some(dir)) => {
            let (store, engine) = offline_engine(existing_store(&dir)?)?;
            let report =
                engine.explain(&args.ticket).await.map_err(|e| Failure::input(format!("{}: {e}", args.ticket)))?;
            store.close()?;
            serde_json::to_value(report).map_err(|e| Failure::runtime(e.to_string()))?
        }
        (None, None) => return Err(Failure::input("explain needs --server URL or --data-dir DIR")),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print!("{}", render_explanation(&report));
    }
    Ok(())
}

pub(super) async fn report(args: ReportArgs) -> Result<(), Failure> {
    let mut query = vec![("period", args.period.clone()), ("format", args.format.clone())];
    for (k, v) in [("from", &args.from), ("to", &args.to), ("by", &args.by), ("bucket", &args.bucket), ("tz", &args.tz)]
    {
        if let Some(v) = v {
            query.push((k, v.clone()));
        }
    }
    match (args.target.server, args.target.data_dir) {
        (Some(url), _) => {
            let (status, text) =
                send(&url, args.target.token, |c, base| c.get(format!("{base}/reports")).query(&query)).await?;
            if !status.is_success() {
                return Err(refused("report", status, &text));
            }
            print!("{text}");
            Ok(())
        }
        (None, Some(dir)) => {
            let q: crate::api::reports::ReportQuery = serde_json::from_value(serde_json::Value::Object(
                query.into_iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v))).collect(),
            ))
            .map_err(|e| Failure::input(format!("report: {e}")))?;
            let config = match &args.config {
                Some(path) => Config::from_file(path).map_err(|e| Failure::input(e.to_string()))?,
                None => Config::default(),
            };
            let query = crate::api::reports::query(&q, chrono::Utc::now(), &config.reports)
                .map_err(|e| Failure::input(format!("report: {}", e.message)))?;
            let (store, engine) = offline_engine_with(Config { data_dir: existing_store(&dir)?, ..config })?;
            let report = engine.report(&query).await.map_err(|e| Failure::input(format!("report: {e}")))?;
            store.close()?;
            match args.format.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default()),
                _ => print!("{}", crate::report::csv(&report)),
            }
            Ok(())
        }
        (None, None) => Err(Failure::input("report needs --server URL or --data-dir DIR")),
    }
}

pub(super) async fn show_run(args: RunArgs) -> Result<(), Failure> {
    let run: serde_json::Value = match (args.target.server, args.target.data_dir) {
        (Some(url), _) => {
            let id = args.run.clone();
            let (status, text) =
                send(&url, args.target.token, |c, base| c.get(format!("{base}/runs/{}", segment(&id)))).await?;
            if !status.is_success() {
                return Err(refused(&args.run, status, &text));
            }
            serde_json::from_str(&text).map_err(|e| Failure::runtime(format!("{url}: {e}")))?
        }
        (None, Some(dir)) => {
            let (store, _engine) = offline_engine(existing_store(&dir)?)?;
            use crate::store::RunStore as _;
            let run =
                store.run(&args.run).await?.ok_or_else(|| Failure::input(format!("{}: no such run", args.run)))?;
            store.close()?;
            serde_json::to_value(run).unwrap_or_default()
        }
        (None, None) => return Err(Failure::input("run needs --server URL or --data-dir DIR")),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&run).unwrap_or_default());
    } else {
        print!("{}", render_timeline(&run));
    }
    Ok(())
}

/// A run as a timeline, one line per trace entry, the comparisons of conditions below.
pub(super) fn render_timeline(run: &serde_json::Value) -> String {
    use std::fmt::Write as _;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    let mut out = format!(
        "{}  workflow {} (revision {})  ticket {}  {}{}\n",
        text(&run["id"]),
        text(&run["workflow_id"]),
        run["workflow_revision"],
        if text(&run["ticket_id"]).is_empty() { "-".into() } else { text(&run["ticket_id"]) },
        text(&run["status"]),
        run["error"].as_str().map(|e| format!(": {e}")).unwrap_or_default()
    );
    for e in run["trace"].as_array().into_iter().flatten() {
        let at = text(&e["at"]);
        let time = at.get(11..23).unwrap_or(&at);
        let what = match (e["step"].as_str(), e["step_type"].as_str()) {
            (Some(step), Some(kind)) => format!("{step} ({kind})"),
            _ => text(&e["kind"]),
        };
        let _ = writeln!(out, "  {time}  {what:<24} {:<10} {}", text(&e["outcome"]), text(&e["message"]));
        for c in e["checks"].as_array().into_iter().flatten() {
            let mark = if c["result"].as_bool() == Some(true) { "yes" } else { "no " };
            let expected = if c["expected"].is_null() { String::new() } else { format!(" {}", c["expected"]) };
            let _ = writeln!(
                out,
                "                {mark} {} {}{expected} (saw {}) at {}",
                text(&c["field"]),
                text(&c["op"]),
                c["actual"],
                text(&c["pointer"])
            );
        }
        for c in e["changes"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "                {}: {} -> {}", text(&c["field"]), c["from"], c["to"]);
        }
    }
    out
}

/// The explanation as text: one line per workflow and policy, then the events.
pub(super) fn render_explanation(r: &serde_json::Value) -> String {
    use std::fmt::Write as _;
    let empty = Vec::new();
    let list = |v: &serde_json::Value| v.as_array().unwrap_or(&empty).clone();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    let mut out = format!("ticket {}\n\nworkflows\n", text(&r["ticket"]));
    for w in list(&r["workflows"]) {
        let _ = writeln!(out, "  {} (revision {}): {}", text(&w["workflow"]), w["revision"], text(&w["summary"]));
        for e in list(&w["events"]) {
            let what = match e["outcome"].as_str() {
                Some("started") => format!("started {}", text(&e["run"])),
                Some(other) => format!("{other}: {}", text(&e["reason"])),
                None => String::new(),
            };
            let _ = writeln!(out, "    {} {} by {}: {what}", text(&e["event"]), text(&e["type"]), text(&e["actor"]));
        }
    }
    out.push_str("\nSLA policies\n");
    for p in list(&r["sla_policies"]) {
        let _ = writeln!(out, "  {}: {}", text(&p["policy"]), text(&p["why"]));
    }
    let waiting = list(&r["waiting_runs"]);
    if !waiting.is_empty() {
        out.push_str("\nwaiting runs\n");
        for w in waiting {
            let _ = writeln!(out, "  {} ({}) at step {}", text(&w["run"]), text(&w["workflow"]), text(&w["step"]));
        }
    }
    out
}
