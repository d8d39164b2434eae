//! Prometheus metrics, kept in memory and rendered in the text exposition format at
//! `GET /metrics`. Counters start at zero with the process (Prometheus handles resets).
//!
//! Label values come from workflow, plugin and endpoint ids (validated identifiers) and
//! fixed outcome words, so label cardinality is bounded by what admins configure.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Histogram bucket bounds, seconds: 50 µs to 10 s.
const BOUNDS: [f64; 12] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0, 10.0];

#[derive(Debug, Clone, Default)]
struct Histogram {
    counts: [u64; BOUNDS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, b) in BOUNDS.iter().enumerate() {
            if seconds <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

#[derive(Default)]
struct Inner {
    runs: BTreeMap<(String, &'static str), u64>,
    steps: BTreeMap<String, Histogram>,
    plugin_calls: BTreeMap<String, Histogram>,
    plugin_errors: BTreeMap<(String, String), u64>,
    sla: BTreeMap<(&'static str, String), u64>,
    inbound: BTreeMap<(String, &'static str), u64>,
    outbound: BTreeMap<(&'static str, &'static str), u64>,
    timers: BTreeMap<String, u64>,
    /// By route, then (method, status): looked up without allocating once a route is known.
    http: BTreeMap<String, BTreeMap<(&'static str, u16), u64>>,
    http_seconds: BTreeMap<String, Histogram>,
}

/// The engine's metrics.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    /// Bumped by everything that changes what the console shows (a run's state, a step,
    /// a request that is not a read): the console's live refresh watches it.
    changes: AtomicU64,
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Relaxed);
    }

    /// How many changes so far (a number that grows; only its changing means anything).
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    /// A run changed state: `started`, `completed`, `failed`, `refused`.
    pub fn run(&self, workflow: &str, outcome: &'static str) {
        self.changed();
        self.with(|m| *m.runs.entry((workflow.to_string(), outcome)).or_default() += 1);
    }

    /// A step of type `kind` took `seconds` (execution and commit).
    pub fn step(&self, kind: &str, seconds: f64) {
        self.changed();
        self.with(|m| m.steps.entry(kind.to_string()).or_default().observe(seconds));
    }

    /// A plugin call took `seconds`; `error` is its error code, if it failed.
    pub fn plugin_call(&self, plugin: &str, seconds: f64, error: Option<&str>) {
        self.with(|m| {
            m.plugin_calls.entry(plugin.to_string()).or_default().observe(seconds);
            if let Some(code) = error {
                *m.plugin_errors.entry((plugin.to_string(), code.to_string())).or_default() += 1;
            }
        });
    }

    /// An SLA clock crossed a warning (`warning`) or ran out (`breached`).
    pub fn sla(&self, kind: &'static str, metric: &str) {
        self.with(|m| *m.sla.entry((kind, metric.to_string())).or_default() += 1);
    }

    /// An inbound webhook delivery and how it ended.
    pub fn inbound(&self, endpoint: &str, outcome: &'static str) {
        self.with(|m| *m.inbound.entry((endpoint.to_string(), outcome)).or_default() += 1);
    }

    /// An outbound webhook of a `kind` (`notify`, `approval_request`) and how it ended
    /// (`delivered`, `dead_lettered`, `not_sent`).
    pub fn outbound(&self, kind: &'static str, outcome: &'static str) {
        self.with(|m| *m.outbound.entry((kind, outcome)).or_default() += 1);
    }

    /// An HTTP request: its method, matched route (a template such as `/tickets/{id}`,
    /// so the label set stays bounded), status and latency.
    pub fn http(&self, method: &str, route: &str, status: u16, seconds: f64) {
        // Methods outside the standard set are one label, so clients cannot grow it.
        const METHODS: [&str; 9] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE"];
        let method = METHODS.iter().find(|m| **m == method).copied().unwrap_or("OTHER");
        if !matches!(method, "GET" | "HEAD" | "OPTIONS") {
            self.changed();
        }
        self.with(|m| {
            match m.http.get_mut(route) {
                Some(by) => *by.entry((method, status)).or_default() += 1,
                None => {
                    m.http.insert(route.to_string(), BTreeMap::from([((method, status), 1)]));
                }
            }
            match m.http_seconds.get_mut(route) {
                Some(h) => h.observe(seconds),
                None => m.http_seconds.entry(route.to_string()).or_default().observe(seconds),
            }
        });
    }

    /// A durable timer fired (`sla`, `wait`, `schedule`, `approval`).
    pub fn timer(&self, kind: &str, n: u64) {
        self.with(|m| *m.timers.entry(kind.to_string()).or_default() += n);
    }

    /// The exposition text, with `gauges` (name, help, value) appended; a gauge's name
    /// may carry labels (`name{label="v"}`): rows of one name share its HELP line.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        counter(
            &mut out,
            "switchboard_runs_total",
            "Runs by workflow and outcome (started, completed, failed, refused).",
            m.runs.iter().map(|((w, o), n)| (format!("workflow=\"{}\",outcome=\"{o}\"", esc(w)), *n)),
        );
        histogram(
            &mut out,
            "switchboard_step_seconds",
            "Step execution and commit time by step type.",
            "type",
            &m.steps,
        );
        histogram(
            &mut out,
            "switchboard_plugin_call_seconds",
            "Plugin call time by plugin.",
            "plugin",
            &m.plugin_calls,
        );
        counter(
            &mut out,
            "switchboard_plugin_errors_total",
            "Plugin call errors by plugin and error code.",
            m.plugin_errors.iter().map(|((p, c), n)| (format!("plugin=\"{}\",code=\"{}\"", esc(p), esc(c)), *n)),
        );
        counter(
            &mut out,
            "switchboard_sla_events_total",
            "SLA warnings and breaches by metric.",
            m.sla.iter().map(|((k, metric), n)| (format!("kind=\"{k}\",metric=\"{}\"", esc(metric)), *n)),
        );
        counter(
            &mut out,
            "switchboard_webhook_deliveries_total",
            "Inbound webhook deliveries by endpoint and outcome.",
            m.inbound.iter().map(|((e, o), n)| (format!("endpoint=\"{}\",outcome=\"{o}\"", esc(e)), *n)),
        );
        counter(
            &mut out,
            "switchboard_outbound_webhooks_total",
            "Outbound webhooks by kind (notify, approval_request) and outcome.",
            m.outbound.iter().map(|((k, o), n)| (format!("kind=\"{k}\",outcome=\"{o}\""), *n)),
        );
        counter(
            &mut out,
            "switchboard_http_requests_total",
            "HTTP requests by method, route and status.",
            m.http.iter().flat_map(|(route, by)| {
                by.iter().map(move |((method, status), n)| {
                    (format!("method=\"{method}\",route=\"{}\",status=\"{status}\"", esc(route)), *n)
                })
            }),
        );
        histogram(
            &mut out,
            "switchboard_http_request_seconds",
            "HTTP request latency by route.",
            "route",
            &m.http_seconds,
        );
        counter(
            &mut out,
            "switchboard_timers_fired_total",
            "Durable timers fired by kind.",
            m.timers.iter().map(|(k, n)| (format!("kind=\"{}\"", esc(k)), *n)),
        );
        let mut described = std::collections::BTreeSet::new();
        for (name, help, value) in gauges {
            let family = name.split('{').next().unwrap_or(name);
            if described.insert(family) {
                let _ = writeln!(out, "# HELP {family} {help}\n# TYPE {family} gauge");
            }
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn counter(out: &mut String, name: &str, help: &str, rows: impl Iterator<Item = (String, u64)>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (labels, n) in rows {
        let _ = writeln!(out, "{name}{{{labels}}} {n}");
    }
}

fn histogram(out: &mut String, name: &str, help: &str, label: &str, rows: &BTreeMap<String, Histogram>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (value, h) in rows {
        let v = esc(value);
        for (b, c) in BOUNDS.iter().zip(h.counts.iter()) {
            let _ = writeln!(out, "{name}_bucket{{{label}=\"{v}\",le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{{label}=\"{v}\",le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "{name}_sum{{{label}=\"{v}\"}} {}", h.sum);
        let _ = writeln!(out, "{name}_count{{{label}=\"{v}\"}} {}", h.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.run("wf", "started");
        m.run("wf", "started");
        m.step("comment", 0.0002);
        m.step("comment", 0.02);
        let text = m.render(&[("switchboard_runs_in_flight", "Runs held in memory.", 3.0)]);
        assert!(text.contains("switchboard_runs_total{workflow=\"wf\",outcome=\"started\"} 2"));
        assert!(text.contains("switchboard_step_seconds_bucket{type=\"comment\",le=\"0.00025\"} 1"));
        assert!(text.contains("switchboard_step_seconds_bucket{type=\"comment\",le=\"0.05\"} 2"));
        assert!(text.contains("switchboard_step_seconds_count{type=\"comment\"} 2"));
        assert!(text.contains("switchboard_runs_in_flight 3"));
    }
}
