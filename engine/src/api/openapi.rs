//! The OpenAPI 3.1 document of the HTTP API, served at `GET /openapi.json`.
//!
//! Built from one table ([`OPERATIONS`]) so that a test can compare it with the routes
//! the router registers (`tests/tests/e2e/openapi.rs` reads `api/mod.rs`): a route without
//! an entry here, or an entry without a route, fails the build's tests.

use crate::config::Role;
use serde_json::{json, Map, Value};

/// Who may call an operation. This table is the one place roles are decided: the auth
/// middleware enforces it, the OpenAPI document shows it, and a test calls every route
/// with every role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credential.
    Public,
    /// Authenticated by an HMAC signature (webhooks, approval links).
    Signed,
    /// A bearer token of one of these roles.
    Roles(&'static [Role]),
}

/// Every role: reads, manual runs.
pub const ANY: Access = Access::Roles(&[Role::Admin, Role::Agent, Role::Integrator]);
/// Service-desk work: writing tickets, deciding approvals.
pub const DESK: Access = Access::Roles(&[Role::Admin, Role::Agent]);
/// Building automation: validating and trying workflows, installing and calling plugins.
pub const BUILD: Access = Access::Roles(&[Role::Admin, Role::Integrator]);
/// Configuration: publishing, grants, team, SLAs, webhooks, audit.
pub const ADMIN: Access = Access::Roles(&[Role::Admin]);

/// The access of `(method, route)` (`route` as the router's template, e.g. `/tickets/{id}`).
pub fn access(method: &str, route: &str) -> Option<Access> {
    OPERATIONS.iter().find(|(m, p, ..)| m.eq_ignore_ascii_case(method) && *p == route).map(|(_, _, _, a, ..)| *a)
}

/// One operation: method, path, summary, access, request body (schema name or `json`,
/// `wasm`, `form`), and the success statuses it answers (a test checks them against the
/// server's answers).
pub type Operation = (&'static str, &'static str, &'static str, Access, Option<&'static str>, &'static [u16]);

/// Every operation of the API.
pub const OPERATIONS: &[Operation] = &[
    ("get", "/health", "Readiness with detail: the store, runs in flight, durability mode", Access::Public, None, &[200, 503]),
    ("get", "/health/live", "Liveness: the process answers", Access::Public, None, &[200]),
    ("get", "/health/ready", "Readiness: the store takes writes and the server is not stopping", Access::Public, None, &[200, 503]),
    ("get", "/openapi.json", "This document", Access::Public, None, &[200]),
    ("get", "/schema/workflow.v1.json", "The workflow JSON Schema (draft 7)", Access::Public, None, &[200]),
    ("get", "/metrics", "Prometheus metrics (text format)", ANY, None, &[200]),
    ("get", "/reports", "Manager's report over a period (from, to, period=day|week|month, by=group|agent|category|channel|priority, bucket=day|week|month, tz, format=json|csv)", ANY, None, &[200]),
    ("post", "/tickets", "Log a ticket", DESK, Some("NewTicket"), &[201]),
    ("get", "/tickets", "List tickets (filters: status, group, assignee, category, priority, kind, requester, external_id, text; paged by after, limit)", ANY, None, &[200]),
    ("get", "/tickets/{id}", "Read a ticket", ANY, None, &[200]),
    ("patch", "/tickets/{id}", "Change fields, all or nothing", DESK, Some("json"), &[200]),
    ("post", "/tickets/{id}/comments", "Add a reply or internal note", DESK, Some("json"), &[201]),
    ("post", "/tickets/{id}/links", "Link two tickets (both sides recorded)", DESK, Some("json"), &[200]),
    ("get", "/tickets/{id}/sla", "SLA clocks: status, business minutes used and left, breach time", ANY, None, &[200]),
    ("get", "/tickets/{id}/explain", "Why each workflow and SLA policy applied or not", ANY, None, &[200]),
    ("get", "/tickets/{id}/history", "Field-change history", ANY, None, &[200]),
    ("get", "/tickets/{id}/events", "Events with each workflow's evaluation", ANY, None, &[200]),
    ("get", "/sla", "Calendars and SLA policies", ANY, None, &[200]),
    ("post", "/sla/calendars", "Store a business calendar", ADMIN, Some("json"), &[200]),
    ("post", "/sla/policies", "Store an SLA policy", ADMIN, Some("json"), &[200]),
    ("get", "/agents", "List agents", ANY, None, &[200]),
    ("post", "/agents", "Create or replace an agent", ADMIN, Some("json"), &[200]),
    ("get", "/agents/{id}", "Read an agent", ANY, None, &[200]),
    ("put", "/agents/{id}", "Replace an agent", ADMIN, Some("json"), &[200]),
    ("get", "/groups", "List groups", ANY, None, &[200]),
    ("post", "/groups", "Create or replace a group", ADMIN, Some("json"), &[200]),
    ("get", "/groups/{id}", "Read a group", ANY, None, &[200]),
    ("get", "/workflows", "List workflows", ANY, None, &[200]),
    ("post", "/workflows", "Publish a workflow (validated; a change is a new revision)", ADMIN, Some("Workflow"), &[201, 200]),
    ("post", "/workflows/validate", "Validate a workflow without publishing", BUILD, Some("Workflow"), &[200]),
    ("post", "/workflows/dry-run", "What a definition would do to a ticket, with no side effects", BUILD, Some("json"), &[200]),
    ("post", "/workflows/replay", "A definition run dry against the last N days' tickets, beside what happened", BUILD, Some("json"), &[200]),
    ("get", "/workflows/{id}", "Read a workflow (with its schedule's next occurrences, if it has one)", ANY, None, &[200]),
    ("get", "/schedules", "Scheduled workflows: next occurrences in UTC and local time, last fired, missed", ANY, None, &[200]),
    ("put", "/workflows/{id}", "Publish a workflow under this id", ADMIN, Some("Workflow"), &[200]),
    ("get", "/workflows/{id}/revisions", "The revision numbers kept", ANY, None, &[200]),
    ("get", "/workflows/{id}/revisions/{revision}", "Read a past revision", ANY, None, &[200]),
    ("get", "/workflows/{id}/diff", "Differences between two revisions by JSON pointer (from, to)", ANY, None, &[200]),
    ("post", "/workflows/{id}/rollback", "Publish an old revision again as a new one", ADMIN, Some("json"), &[200]),
    ("get", "/workflows/{id}/draft", "Read the saved draft", ANY, None, &[200]),
    ("put", "/workflows/{id}/draft", "Save a draft (validated, not active), with its diff from the published revision", ADMIN, Some("Workflow"), &[200]),
    ("post", "/workflows/{id}/publish", "Publish the draft as a new revision", ADMIN, None, &[200]),
    ("post", "/workflows/{id}/enable", "Enable", ADMIN, None, &[200]),
    ("post", "/workflows/{id}/disable", "Disable", ADMIN, None, &[200]),
    ("post", "/workflows/{id}/runs", "Start a workflow by hand on a ticket, or a scheduled one now (no ticket)", ANY, Some("json"), &[202]),
    ("get", "/runs", "List runs (ticket, workflow, status, from, to, limit)", ANY, None, &[200]),
    ("get", "/runs/{id}", "A run with its trace", ANY, None, &[200]),
    ("post", "/runs/{id}/retry", "Start a failed run again from its failed step on the current revision", ADMIN, None, &[201]),
    ("get", "/audit", "Admin changes, newest first", ADMIN, None, &[200]),
    ("post", "/admin/backup", "A consistent snapshot of the whole store (application/octet-stream); restore with `switchboard restore`", ADMIN, None, &[200]),
    ("get", "/approvals", "Approvals (pending_for=me: waiting for the caller)", ANY, None, &[200]),
    ("get", "/approvals/{id}", "Read an approval", ANY, None, &[200]),
    ("post", "/approvals/{id}/decisions", "Approve or reject as the caller", DESK, Some("json"), &[200]),
    ("post", "/approvals/{id}/delegate", "Hand the caller's decision to someone", DESK, Some("json"), &[200]),
    ("post", "/approvals/{id}/links", "Signed approve/reject links for the current stage", ADMIN, None, &[200]),
    ("get", "/approvals/{id}/decide", "Signed link: a confirmation page (decides nothing)", Access::Signed, None, &[200]),
    ("post", "/approvals/{id}/decide", "Signed link: record the decision once", Access::Signed, Some("form"), &[200]),
    ("get", "/webhooks", "Inbound webhook endpoints (secrets redacted)", ADMIN, None, &[200]),
    ("post", "/webhooks", "Create or replace an endpoint", ADMIN, Some("json"), &[201]),
    ("get", "/webhooks/{id}", "Read an endpoint (secret redacted)", ADMIN, None, &[200]),
    ("post", "/hooks/{id}", "Deliver a signed webhook", Access::Signed, Some("json"), &[202]),
    ("get", "/dead-letters", "Outbound webhooks that ran out of attempts", ADMIN, None, &[200]),
    ("post", "/dead-letters/{id}/resend", "Send a dead letter again", ADMIN, None, &[200]),
    ("get", "/plugins", "Installed plugins", ANY, None, &[200]),
    ("post", "/plugins", "Install a plugin (body: the .wasm module)", BUILD, Some("wasm"), &[201, 200]),
    ("get", "/plugins/{id}", "Read a plugin (config: admins only; key-value usage and quota)", ANY, None, &[200]),
    ("delete", "/plugins/{id}", "Delete a plugin, its versions and key-value store (refused while runs need it)", ADMIN, None, &[200]),
    ("delete", "/plugins/{id}/versions/{version}", "Delete one kept version (the current one: the newest other becomes current)", ADMIN, None, &[200]),
    ("put", "/plugins/{id}/grants", "Connections, directories and config a plugin gets", ADMIN, Some("json"), &[200]),
    ("post", "/plugins/{id}/enable", "Enable a plugin", ADMIN, None, &[200]),
    ("post", "/plugins/{id}/disable", "Disable a plugin", ADMIN, None, &[200]),
    ("post", "/plugins/{id}/actions/{action}", "Call a plugin action directly", BUILD, Some("json"), &[200]),
    ("get", "/demo/inbox", "Demo: webhooks the demo inbox received", ANY, None, &[200]),
    ("post", "/demo/inbox", "Demo: receive a signed webhook", Access::Signed, Some("json"), &[200]),
];

/// The role table for the README (Markdown), generated from [`OPERATIONS`].
pub fn roles_table() -> String {
    let mut out = String::from("| route | admin | agent | integrator |\n|---|:-:|:-:|:-:|\n");
    for (method, path, _, access, ..) in OPERATIONS {
        let cells: Vec<&str> = match access {
            Access::Public => vec!["public"; 3],
            Access::Signed => vec!["signed"; 3],
            Access::Roles(roles) => [Role::Admin, Role::Agent, Role::Integrator]
                .iter()
                .map(|r| if roles.contains(r) { "yes" } else { "-" })
                .collect(),
        };
        out.push_str(&format!("| `{} {path}` | {} |\n", method.to_uppercase(), cells.join(" | ")));
    }
    out
}

/// The schema (in `components.schemas`) of an operation's success body, where it is one
/// of the API's main objects.
fn response_schema(method: &str, path: &str) -> Option<&'static str> {
    Some(match (method, path) {
        ("post", "/tickets")
        | ("patch", "/tickets/{id}")
        | ("post", "/tickets/{id}/comments")
        | ("post", "/tickets/{id}/links") => "Outcome",
        ("get", "/tickets/{id}") => "Ticket",
        ("get", "/tickets") => "TicketList",
        ("get", "/runs/{id}") => "Run",
        ("get", "/runs") => "RunList",
        ("get", "/workflows/{id}") => "WorkflowRecord",
        ("get", "/schedules") => "Schedules",
        ("post", "/plugins") => "Installed",
        ("get", "/plugins/{id}") => "Plugin",
        ("post", "/workflows/{id}/runs") => "Started",
        _ => return None,
    })
}

fn schemas() -> Value {
    let s = |t: &str| json!({"type": t});
    let strings = json!({"type": "array", "items": {"type": "string"}});
    json!({
        "Ticket": {"type": "object", "required": ["id", "title", "status", "priority", "requester"], "properties": {
            "id": s("string"), "title": s("string"), "requester": s("string"),
            "status": {"enum": ["new", "assigned", "in_progress", "pending", "resolved", "closed", "reopened"]},
            "priority": {"enum": ["P1", "P2", "P3", "P4"]}, "group": {"type": ["string", "null"]},
            "assignee": {"type": ["string", "null"]}, "category": {"type": ["string", "null"]},
            "custom": s("object"), "comments": s("array"), "created_at": {"type": "string", "format": "date-time"},
            "version": {"type": "integer", "minimum": 1, "description": "One more with every stored change of the ticket"}}},
        "TicketList": {"type": "object", "required": ["tickets"], "properties": {"tickets": {"type": "array", "items": {"$ref": "#/components/schemas/Ticket"}}}},
        "Outcome": {"type": "object", "required": ["ticket", "runs"], "properties": {
            "ticket": {"$ref": "#/components/schemas/Ticket"}, "event": s("string"), "runs": strings}},
        "Started": {"type": "object", "required": ["runs"], "properties": {"event": s("string"), "runs": strings}},
        "Run": {"type": "object", "required": ["id", "workflow_id", "status", "trace"], "properties": {
            "id": s("string"), "workflow_id": s("string"), "workflow_revision": s("integer"), "ticket_id": s("string"),
            "status": {"enum": ["pending", "running", "waiting", "completed", "failed", "refused"]},
            "trace": s("array"), "vars": s("object"), "error": {"type": ["string", "null"]},
            "tree": {"type": "object", "description": "the causation tree the run belongs to"}}},
        "RunList": {"type": "object", "required": ["runs"], "properties": {"runs": {"type": "array", "items": {"$ref": "#/components/schemas/Run"}}}},
        "WorkflowRecord": {"type": "object", "required": ["id", "revision", "enabled", "definition"], "properties": {
            "id": s("string"), "revision": s("integer"), "enabled": s("boolean"),
            "definition": {"$ref": "/schema/workflow.v1.json"}, "schedule": {"$ref": "#/components/schemas/Schedule"}}},
        "Schedule": {"type": "object", "required": ["workflow", "cron", "timezone", "next", "missed"], "properties": {
            "workflow": s("string"), "cron": s("string"), "timezone": s("string"), "enabled": s("boolean"),
            "next": {"type": "array", "items": {"$ref": "#/components/schemas/Occurrence"}},
            "last_fired": {"oneOf": [{"$ref": "#/components/schemas/Occurrence"}, {"type": "null"}]},
            "missed": s("integer"), "timer_due": {"type": ["string", "null"]}}},
        "Occurrence": {"type": "object", "required": ["utc", "local", "zone", "weekday"], "properties": {
            "utc": {"type": "string", "format": "date-time"}, "local": s("string"), "zone": s("string"), "weekday": s("string")}},
        "Schedules": {"type": "array", "items": {"$ref": "#/components/schemas/Schedule"}},
        "Plugin": {"type": "object", "required": ["id", "version", "versions", "enabled", "connections", "manifest"], "properties": {
            "id": s("string"), "version": s("string"), "versions": strings, "enabled": s("boolean"),
            "connections": strings, "config": {"description": "admins only"}, "sha256": s("string"),
            "installed_by": s("string"), "manifest": s("object"), "calls_in_flight": s("integer"),
            "kv": {"type": "object", "properties": {"keys": s("integer"), "bytes": s("integer"), "max_keys": s("integer"), "max_bytes": s("integer")}}}},
        "Installed": {"type": "object", "required": ["plugin", "created"], "properties": {
            "plugin": {"$ref": "#/components/schemas/Plugin"}, "created": s("boolean"), "replaced": {"type": ["string", "null"]},
            "changes": s("object"), "pruned": strings}},
    })
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, path, summary, access, body, statuses) in OPERATIONS {
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": summary,
            "operationId": format!("{method}{}", path.replace(['/', '{', '}', '-', '.'], "_")),
            "parameters": params,
            "responses": {
                "400": error_response("malformed JSON"),
                "404": error_response("not found"),
                "422": error_response("invalid input; details.errors[] = {pointer, message}"),
            },
        });
        for status in *statuses {
            op["responses"][status.to_string()] = match response_schema(method, path) {
                Some(name) => json!({"description": "success", "content": {"application/json": {
                    "schema": {"$ref": format!("#/components/schemas/{name}")}}}}),
                None => json!({"description": "success", "content": {"application/json": {"schema": {}}}}),
            };
        }
        match access {
            Access::Public | Access::Signed => op["security"] = json!([]),
            Access::Roles(roles) => {
                let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                op["security"] = json!([{"bearer": []}]);
                op["description"] = json!(format!("Roles: {}.", names.join(", ")));
                op["x-roles"] = json!(names);
                op["responses"]["401"] = error_response("no or unknown bearer token");
                op["responses"]["403"] = error_response("the token's role may not do this");
            }
        }
        if *access == Access::Signed && path.starts_with("/hooks") {
            if let Some(p) = op["parameters"].as_array_mut() {
                p.push(json!({"name": "X-Switchboard-Signature", "in": "header", "required": true,
                    "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">", "schema": {"type": "string"}}));
                p.push(
                    json!({"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string"}}),
                );
            }
            op["responses"]["401"] = error_response("signature missing, wrong or outside the replay window");
            op["responses"]["413"] = error_response("body over the endpoint's limit");
            op["responses"]["429"] = error_response("rate limited; see Retry-After");
        }
        if *path == "/tickets/{id}" {
            // Optimistic concurrency: the ticket's version is its entity tag.
            if *method == "patch" {
                if let Some(p) = op["parameters"].as_array_mut() {
                    p.push(json!({"name": "If-Match", "in": "header", "required": false,
                        "description": "Apply only while the ticket is at this version: \"3\", a list, or *", "schema": {"type": "string"}}));
                }
                op["responses"]["412"] =
                    error_response("the ticket changed since the version in If-Match; nothing written");
            }
            op["responses"]["200"]["headers"] =
                json!({"ETag": {"description": "The ticket's version, quoted", "schema": {"type": "string"}}});
        }
        if let Some(kind) = body {
            let content = match *kind {
                "wasm" => json!({"application/wasm": {"schema": {"type": "string", "format": "binary"}}}),
                "form" => {
                    json!({"application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": {"comment": {"type": "string"}}}}})
                }
                "json" => json!({"application/json": {"schema": {"type": "object"}}}),
                name => json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}),
            };
            op["requestBody"] = json!({"required": true, "content": content});
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "Switchboard", "version": env!("CARGO_PKG_VERSION"),
            "description": "Workflow automation for IT service desks. Errors are {\"error\": {\"code\", \"message\", \"details\"}}."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
                    "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}}}}},
                "NewTicket": {"type": "object", "required": ["title", "requester"], "properties": {
                    "title": {"type": "string", "maxLength": 500}, "requester": {"type": "string"},
                    "kind": {"enum": ["incident", "service_request", "problem", "task"]},
                    "description": {"type": "string"}, "impact": {"enum": ["low", "medium", "high"]},
                    "urgency": {"enum": ["low", "medium", "high"]}, "priority": {"enum": ["P1", "P2", "P3", "P4"]},
                    "category": {"type": "string"}, "group": {"type": "string"}, "assignee": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}}, "channel": {"type": "string"},
                    "external_id": {"type": "string"}, "custom": {"type": "object"}, "links": {"type": "array"}}},
                "Workflow": {"$ref": "/schema/workflow.v1.json"},
            },
        },
    });
    if let (Some(into), Value::Object(more)) = (doc["components"]["schemas"].as_object_mut(), schemas()) {
        into.extend(more);
    }
    doc
}
