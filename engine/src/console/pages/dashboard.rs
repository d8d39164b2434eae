//! The dashboard for the help-desk manager: the period's figures (volume, SLA %, FCR,
//! MTTR, CSAT, deflection, hours saved), trend charts per day / week / month, the backlog
//! by group, recent SLA breaches, failed runs and the run queue. The figures are the
//! report service's ([`crate::executor::Engine::report`]), the same as `GET /reports`.

use crate::api::AppState;
use crate::console::chart;
use crate::console::page::{layout, maybe_time, pct, time, Nav, PageError, Params};
use crate::console::session::User;
use crate::report::Bucket;
use crate::run::RunStatus;
use crate::sla::Metric;
use crate::store::RunFilter;
use axum::extract::State;
use chrono::Duration;
use maud::{html, Markup};
use serde::Deserialize;

/// The period shown.
#[derive(Debug, Deserialize)]
pub struct Period {
    /// Days back from now (1–366; default 30).
    #[serde(default)]
    pub days: Option<i64>,
    /// `day`, `week` or `month` (default: day up to 31 days, else week).
    #[serde(default)]
    pub bucket: Option<Bucket>,
}

/// How far ahead "breaching soon" looks.
const SOON_HOURS: i64 = 4;

/// `GET /console`.
pub async fn page(State(s): State<AppState>, user: User, Params(p): Params<Period>) -> Result<Markup, PageError> {
    let days = p.days.unwrap_or(30).clamp(1, 366);
    let bucket = p.bucket.unwrap_or(if days <= 31 { Bucket::Day } else { Bucket::Week });
    let snapshot = s.engine.dashboard(days, bucket).await?;
    let report = &snapshot.report;
    let failed = s
        .engine
        .store()
        .runs(&RunFilter {
            status: Some(RunStatus::Failed),
            from: Some(report.from),
            limit: Some(10),
            ..Default::default()
        })
        .await?;
    let soon = s.engine.breaching_soon(Duration::hours(SOON_HOURS), 20).await?;
    // The last hour's runs from their headers (newest first, capped like the workflows page).
    let hour = s.engine.store().run_headers_since(s.engine.clock_now() - Duration::hours(1), 100_000).await?;
    let hour_failed = hour.iter().filter(|h| h.status == RunStatus::Failed).count();
    let pending = s.engine.approvals(Some(user.name()), 1000).await?.len();
    let t = &report.window.total;
    let series = report.series.as_deref().unwrap_or_default();
    let label = |b: &crate::report::BucketFigures| b.start.format("%m-%d").to_string();
    let volume: Vec<(String, f64)> = series.iter().map(|b| (label(b), b.window.total.volume as f64)).collect();
    let per = |f: fn(&crate::report::Figures) -> Option<f64>| -> Vec<(String, Option<f64>)> {
        series.iter().map(|b| (label(b), f(&b.window.total))).collect()
    };
    let sla = per(|f| f.sla_resolution_pct);
    let response = per(|f| f.sla_response_pct);
    let fcr = per(|f| f.fcr_pct);
    let mttr = per(|f| f.resolve_mean_min.map(|m| m / 60.0));
    let csat = per(|f| f.csat_mean);
    let deflection = per(|f| f.deflection_pct);
    let saved: Vec<(String, f64)> = series.iter().map(|b| (label(b), b.window.total.hours_saved)).collect();
    let cards = [
        ("Tickets logged", t.volume.to_string()),
        ("Open backlog", t.backlog.to_string()),
        ("Response SLA met", pct(t.sla_response_pct)),
        ("Resolution SLA met", pct(t.sla_resolution_pct)),
        ("First-contact resolution", pct(t.fcr_pct)),
        ("Mean time to resolve", t.resolve_mean_min.map_or("—".into(), |m| format!("{:.0} min", m))),
        ("CSAT (1–5)", t.csat_mean.map_or("—".into(), |m| format!("{m:.2}"))),
        ("Deflection", pct(t.deflection_pct)),
        ("Hours saved", format!("{:.1}", t.hours_saved)),
        ("Runs per minute (last hour)", format!("{:.1}", hour.len() as f64 / 60.0)),
        ("Failed runs (last hour)", hour_failed.to_string()),
        ("Runs in flight (queued or running)", s.engine.runs_in_flight().to_string()),
        ("Approvals waiting for you", pending.to_string()),
    ];
    let body = html! {
        h1 { "Dashboard" }
        form.filters method="get" action="/console" {
            label { "Period (days)"
                input type="number" name="days" min="1" max="366" value=(days);
            }
            label { "Trend by"
                select name="bucket" {
                    @for (b, name) in [(Bucket::Day, "day"), (Bucket::Week, "week"), (Bucket::Month, "month")] {
                        option value=(name) selected[b == bucket] { (name) }
                    }
                }
            }
            button.secondary type="submit" { "Show" }
        }
        p.muted { "From " (time(report.from)) " to " (time(report.to)) ". Figures as of " (time(snapshot.at))
            " (recounted at most once a minute); the lists below are live." }
        section.cards aria-label="Figures of the period" {
            @for (name, value) in &cards {
                div.card { div.v { (value) } div.k { (name) } }
            }
        }
        h2 { "Trends" }
        (chart::bars("Tickets logged", &volume))
        (chart::percent_line("Resolution SLA met (%)", &sla))
        (chart::percent_line("Response SLA met (%)", &response))
        (chart::percent_line("First-contact resolution (%)", &fcr))
        (chart::line("Mean time to resolve (business hours)", &mttr, 1.0, "h"))
        (chart::line("CSAT (mean, 1–5)", &csat, 5.0, "/ 5"))
        (chart::percent_line("Deflection (%)", &deflection))
        (chart::bars("Hours saved by automation", &saved))
        h2 { "Open backlog by priority" }
        div.scroll { table #backlog-priority {
            thead { tr { th scope="col" { "Priority" } th scope="col" { "Open" } th scope="col" { "Logged in the period" } th scope="col" { "Resolution SLA" } } }
            tbody {
                @for g in &snapshot.by_priority.window.groups {
                    tr {
                        td { a href=(format!("/console/tickets?{}", crate::console::page::query(&[("priority", &g.key)]))) { (g.key) } }
                        td { (g.figures.backlog) }
                        td { (g.figures.volume) }
                        td { (pct(g.figures.sla_resolution_pct)) }
                    }
                }
            }
        } }
        h2 { "Backlog by group" }
        div.scroll { table {
            thead { tr { th scope="col" { "Group" } th scope="col" { "Open" } th scope="col" { "Logged" }
                th scope="col" { "Resolution SLA" } th scope="col" { "<1d" } th scope="col" { "1-3d" } th scope="col" { "3-7d" } th scope="col" { "7-30d" } th scope="col" { ">30d" } } }
            tbody {
                @for g in &report.window.groups {
                    tr {
                        td { a href=(format!("/console/tickets?{}", crate::console::page::query(&[("group", &g.key)]))) { (g.key) } }
                        td { (g.figures.backlog) }
                        td { (g.figures.volume) }
                        td { (pct(g.figures.sla_resolution_pct)) }
                        @for b in crate::report::AGE_BUCKETS {
                            td { (g.figures.ageing.get(b).copied().unwrap_or(0)) }
                        }
                    }
                }
            }
        } }
        section #breaching-soon {
            h2 { "Breaching in the next " (SOON_HOURS) " hours" }
            @if soon.is_empty() { p.muted { "No running SLA clock runs out within " (SOON_HOURS) " hours." } } @else {
                div.scroll { table {
                    thead { tr { th scope="col" { "Ticket" } th scope="col" { "Clock" } th scope="col" { "Runs out" } th scope="col" { "Minutes left" } th scope="col" { "Priority" } } }
                    tbody { @for (r, metric) in &soon {
                        @let clock = if *metric == Metric::Response { &r.response } else { &r.resolution };
                        tr {
                            td { a href=(format!("/console/tickets/{}", r.ticket)) { (r.ticket) } }
                            td { (metric.as_str()) }
                            td { (maybe_time(clock.due_at)) }
                            td { (clock.remaining_minutes) }
                            td { (crate::console::page::label(&r.priority)) }
                        }
                    } }
                } }
            }
        }
        h2 { "SLA breaches" }
        @if report.breaches.is_empty() {
            p.muted { "None in the period." }
        } @else {
            div.scroll { table {
                thead { tr { th scope="col" { "Ticket" } th scope="col" { "Metric" } th scope="col" { "Breached" } th scope="col" { "Group" } th scope="col" { "Assignee" } } }
                tbody {
                    @for b in report.breaches.iter().rev().take(20) {
                        tr {
                            td { a href=(format!("/console/tickets/{}", b.ticket)) { (b.ticket) } " " (b.title) }
                            td { (b.metric) }
                            td { (time(b.breached_at)) }
                            td { (b.group.as_deref().unwrap_or("—")) }
                            td { (b.assignee.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            } }
        }
        section #failed-runs {
            h2 { "Failed runs" }
            @if failed.is_empty() {
                p.muted { "No run started in the period failed." }
            } @else {
                p.muted { "The latest " (failed.len()) " started in the period; " a href="/console/runs?status=failed" { "all failed runs" } "." }
                ul {
                    @for r in &failed {
                        li { a href=(format!("/console/runs/{}", r.id)) { (r.id) } " " (r.workflow_id)
                            @if !r.ticket_id.is_empty() { " on " a href=(format!("/console/tickets/{}", r.ticket_id)) { (r.ticket_id) } }
                            " — " span.failed { (r.error.as_deref().unwrap_or("failed")) } " " (maybe_time(r.finished_at)) }
                    }
                }
            }
        }
    };
    Ok(layout("Dashboard", Some(&user.session), Some(Nav::Dashboard), crate::console::page::live(body)))
}
