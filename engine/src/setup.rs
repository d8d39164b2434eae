//! Configuration as code: one directory holds everything an admin publishes, in the
//! layout of the shipped [`workflows/`](../../workflows):
//!
//! - `*.json`: workflows;
//! - `sla/*.json`: `{"calendars": [...], "policies": [...]}`;
//! - `webhooks/*.json`: inbound webhook endpoints;
//! - `plugins/<plugin id>.json`: a plugin's grants (`{"connections", "config"}`).
//!
//! [`read`] parses and checks every file, collecting each problem as
//! `file:pointer: message` (or `file: line L, column C: ...`), so `switchboard validate`
//! reports them all at once and `switchboard apply` applies nothing from a directory with
//! a problem. Reading is pure apart from the file system; applying is the CLI's.

use crate::calendar::{Calendar, CalendarSpec};
use crate::sla::Policy;
use crate::webhook::Endpoint;
use crate::workflow::{validate_str, Workflow};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The SLA file shape.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaFile {
    /// Business calendars.
    #[serde(default)]
    pub calendars: Vec<CalendarSpec>,
    /// SLA policies.
    #[serde(default)]
    pub policies: Vec<Policy>,
}

/// A plugin's grants, as `PUT /plugins/{id}/grants` takes them.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Connection names the plugin may use.
    #[serde(default)]
    pub connections: Vec<String>,
    /// Plugin configuration values.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

/// Everything a setup directory holds, checked.
#[derive(Debug, Default)]
pub struct Setup {
    /// Workflows, by file.
    pub workflows: Vec<(PathBuf, Workflow)>,
    /// SLA files.
    pub sla: Vec<(PathBuf, SlaFile)>,
    /// Webhook endpoints.
    pub webhooks: Vec<(PathBuf, Endpoint)>,
    /// Grants: file, plugin id, grants.
    pub grants: Vec<(PathBuf, String, Grants)>,
}

impl Setup {
    /// How many objects it holds.
    pub fn len(&self) -> usize {
        self.workflows.len()
            + self.sla.iter().map(|(_, f)| f.calendars.len() + f.policies.len()).sum::<usize>()
            + self.webhooks.len()
            + self.grants.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The `*.json` files of a directory, sorted; none if it does not exist.
fn json_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// Parses a JSON file into `T`, strictly (duplicate keys refused), with the location.
fn parse<T: serde::de::DeserializeOwned>(file: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let value = crate::json::parse(text.as_bytes()).map_err(|e| format!("{}: {e}", file.display()))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let pointer = crate::json::pointer_of(e.path());
        format!("{}:{}: {}", file.display(), if pointer.is_empty() { "/" } else { &pointer }, e.inner())
    })
}

/// Reads an SLA file and checks every calendar and policy in it.
pub fn read_sla(file: &Path) -> Result<SlaFile, Vec<String>> {
    let sla: SlaFile = parse(file).map_err(|e| vec![e])?;
    let mut problems = Vec::new();
    for (i, c) in sla.calendars.iter().enumerate() {
        if let Err(e) = Calendar::new(c) {
            problems.push(format!("{}:/calendars/{i}: {e}", file.display()));
        }
    }
    for (i, p) in sla.policies.iter().enumerate() {
        for (pointer, message) in p.check() {
            problems.push(format!("{}:/policies/{i}{pointer}: {message}", file.display()));
        }
    }
    if problems.is_empty() {
        Ok(sla)
    } else {
        Err(problems)
    }
}

/// Reads a webhook endpoint file and checks it.
pub fn read_endpoint(file: &Path) -> Result<Endpoint, Vec<String>> {
    let endpoint: Endpoint = parse(file).map_err(|e| vec![e])?;
    // An empty secret is allowed here: the server generates one (the demo fills its own).
    let problems: Vec<String> = endpoint
        .check()
        .into_iter()
        .filter(|(p, _)| !(p == "/secret" && endpoint.secret.is_empty()))
        .map(|(p, m)| format!("{}:{p}: {m}", file.display()))
        .collect();
    if problems.is_empty() {
        Ok(endpoint)
    } else {
        Err(problems)
    }
}

/// Reads a grants file; the plugin id is the file's name.
pub fn read_grants(file: &Path) -> Result<(String, Grants), Vec<String>> {
    let id = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
    let grants: Grants = parse(file).map_err(|e| vec![e])?;
    Ok((id, grants))
}

/// Reads and checks a whole setup directory (or one workflow file).
pub fn read(path: &Path) -> Result<Setup, Vec<String>> {
    let mut setup = Setup::default();
    let mut problems = Vec::new();
    let workflow_files = if path.is_dir() {
        json_files(path).map_err(|e| vec![e])?
    } else if path.exists() {
        vec![path.to_path_buf()]
    } else {
        return Err(vec![format!("{}: no such file or directory", path.display())]);
    };
    for file in workflow_files {
        match std::fs::read_to_string(&file) {
            Err(e) => problems.push(format!("{}: {e}", file.display())),
            Ok(text) => match validate_str(&text) {
                Ok(wf) => setup.workflows.push((file, wf)),
                Err(errors) => problems.extend(errors.into_iter().map(|e| {
                    format!("{}:{}: {}", file.display(), if e.pointer.is_empty() { "/" } else { &e.pointer }, e.message)
                })),
            },
        }
    }
    if path.is_dir() {
        let each = |sub: &str, problems: &mut Vec<String>| -> Vec<PathBuf> {
            json_files(&path.join(sub)).unwrap_or_else(|e| {
                problems.push(e);
                Vec::new()
            })
        };
        for file in each("sla", &mut problems) {
            match read_sla(&file) {
                Ok(s) => setup.sla.push((file, s)),
                Err(e) => problems.extend(e),
            }
        }
        for file in each("webhooks", &mut problems) {
            match read_endpoint(&file) {
                Ok(e) => setup.webhooks.push((file, e)),
                Err(e) => problems.extend(e),
            }
        }
        for file in each("plugins", &mut problems) {
            match read_grants(&file) {
                Ok((id, g)) => setup.grants.push((file, id, g)),
                Err(e) => problems.extend(e),
            }
        }
    }
    if problems.is_empty() {
        Ok(setup)
    } else {
        Err(problems)
    }
}
