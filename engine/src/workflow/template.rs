//! `{{path}}` placeholders in workflow strings, filled from the condition scope
//! (`{{ticket.title}}`, `{{vars.route.agent}}`, `{{event.actor}}`).

use super::condition::{parse_path, resolve, Scope};
use serde_json::Value;

/// The placeholder paths in `s`, each with its byte range; unterminated `{{` is literal.
pub fn placeholders(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    out
}

/// Placeholders that name no known path.
pub fn unknown_paths(s: &str) -> Vec<String> {
    placeholders(s)
        .into_iter()
        .filter(|p| parse_path(p).is_none() && !matches!(*p, "run.id" | "workflow.id"))
        .map(str::to_string)
        .collect()
}

/// Fills placeholders; strings are inserted as is, other values as JSON, null as "".
pub fn render(s: &str, scope: &Scope<'_>, run_id: &str, workflow_id: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push_str(&rest[..start]);
        let path = after[..end].trim();
        let value = match path {
            "run.id" => Value::String(run_id.to_string()),
            "workflow.id" => Value::String(workflow_id.to_string()),
            _ => resolve(scope, path),
        };
        match value {
            Value::String(v) => out.push_str(&v),
            Value::Null => {}
            // A list of names reads better in a comment as `a, b` than as JSON.
            Value::Array(items) if items.iter().all(Value::is_string) => {
                let names: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                out.push_str(&names.join(", "));
            }
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Renders every string inside a JSON value.
///
/// A string that is exactly one placeholder (`"{{vars.backlog.by_group}}"`) takes the
/// value itself, keeping its type (object, number, boolean), unless the value is null.
pub fn render_value(v: &Value, scope: &Scope<'_>, run_id: &str, workflow_id: &str) -> Value {
    match v {
        Value::String(s) => {
            let t = s.trim();
            if let [path] = placeholders(t)[..] {
                if t.starts_with("{{")
                    && t.ends_with("}}")
                    && t[2..t.len() - 2].trim() == path
                    && parse_path(path).is_some()
                {
                    let value = resolve(scope, path);
                    if !value.is_null() {
                        return value;
                    }
                }
            }
            Value::String(render(s, scope, run_id, workflow_id))
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| render_value(x, scope, run_id, workflow_id)).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, x)| (k.clone(), render_value(x, scope, run_id, workflow_id))).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_placeholders_and_ignores_unterminated() {
        assert_eq!(placeholders("a {{ ticket.title }} b {{vars.x}} {{oops"), vec!["ticket.title", "vars.x"]);
        assert_eq!(unknown_paths("{{ticket.nope}} {{run.id}}"), vec!["ticket.nope"]);
    }
}
