//! m365: Microsoft 365 tasks over Microsoft Graph, through the host's OAuth2 connection
//! (plugin config `graph_connection`, default `graph`).
//!
//! | action | Graph calls | idempotent because |
//! |---|---|---|
//! | `list_licenses` | `GET /subscribedSkus` | read only |
//! | `assign_license` | `GET /users/{id}`, `PATCH` usageLocation, `POST assignLicense` | skipped when assigned; checks usage location and free seats first |
//! | `remove_license` | `POST assignLicense` with `removeLicenses` | only licences the user has |
//! | `revoke_sessions` | `POST revokeSignInSessions` | once while the account stays disabled |
//! | `set_auto_reply` | `GET`/`PATCH mailboxSettings` | only when different |
//! | `add_to_team` | `GET`/`POST /teams/{id}/members` | only when not a member (409 counts as done) |
//! | `add_group_members` / `remove_group_members` | `$batch` of `members/$ref`, 20 per request | "already" counts as done; per-item failures reported |
//!
//! Throttling (429/503) anywhere makes the action fail as retryable with Graph's
//! `Retry-After`, and the engine runs it again after that wait; the read-first design
//! makes the rerun pick up where the first attempt stopped.

use msgraph::{answer_error, encode, longer_wait, membership_item, membership_outcome, text, BatchItem, Graph};
use serde::Deserialize;
use switchboard_sdk::host::{self, Level};
use switchboard_sdk::{json, plugin, Error, Value};

fn graph() -> Result<Graph, Error> {
    Graph::from_config()
}

/// SKUs with seat counts: `[{sku_id, sku, enabled, consumed, free}]`.
fn skus(graph: &Graph) -> Result<Vec<Value>, Error> {
    let all = graph.get_all("/subscribedSkus")?;
    Ok(all
        .iter()
        .map(|s| {
            let enabled = s.pointer("/prepaidUnits/enabled").and_then(Value::as_i64).unwrap_or(0);
            let consumed = s.get("consumedUnits").and_then(Value::as_i64).unwrap_or(0);
            json!({"sku_id": text(s, "skuId"), "sku": text(s, "skuPartNumber"), "enabled": enabled,
                "consumed": consumed, "free": (enabled - consumed).max(0)})
        })
        .collect())
}

/// No input.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nothing {}

/// `list_licenses`.
pub fn list_licenses(_: Nothing) -> Result<Value, Error> {
    Ok(json!({ "licenses": skus(&graph()?)? }))
}

/// Input of `assign_license` / `remove_license`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenseIn {
    /// UPN, mail or object id.
    pub user: String,
    /// SKU part number (`ENTERPRISEPACK`) or id. For `remove_license`, absent means all.
    #[serde(default)]
    pub sku: String,
    /// Two-letter country to set when the user has none (licences need one).
    #[serde(default)]
    pub usage_location: String,
}

fn assigned(user: &Value) -> Vec<String> {
    user.get("assignedLicenses")
        .and_then(Value::as_array)
        .map(|l| l.iter().map(|x| text(x, "skuId").to_string()).collect())
        .unwrap_or_default()
}

/// `assign_license`: `{assigned, changed}`, or `{assigned: false, reason: "no_free_seats"}`
/// when the tenant has no seat left (a business outcome for the workflow to route, not an error).
pub fn assign_license(input: LicenseIn) -> Result<Value, Error> {
    let graph = graph()?;
    let user = graph.user(&input.user)?;
    let id = text(&user, "id").to_string();
    let all = skus(&graph)?;
    let sku = all
        .iter()
        .find(|s| text(s, "sku").eq_ignore_ascii_case(&input.sku) || text(s, "sku_id") == input.sku)
        .cloned()
        .ok_or_else(|| Error::new("unknown_sku", format!("the tenant has no SKU `{}`", input.sku)))?;
    let (sku_id, part) = (text(&sku, "sku_id").to_string(), text(&sku, "sku").to_string());
    if assigned(&user).contains(&sku_id) {
        return Ok(json!({"assigned": true, "changed": false, "sku": part}));
    }
    if user.get("usageLocation").map_or(true, Value::is_null) {
        if input.usage_location.is_empty() {
            return Err(Error::new(
                "no_usage_location",
                format!("{} has no usageLocation, which licences need; pass usage_location", input.user),
            ));
        }
        graph.call("PATCH", &format!("/users/{}", id), Some(json!({ "usageLocation": input.usage_location })))?;
    }
    if sku["free"].as_i64().unwrap_or(0) <= 0 {
        host::log(Level::Warn, &format!("no free {} seats", part));
        return Ok(json!({"assigned": false, "changed": false, "sku": part, "reason": "no_free_seats"}));
    }
    let body = json!({"addLicenses": [{"skuId": sku_id, "disabledPlans": []}], "removeLicenses": []});
    let resp = graph.send("POST", &format!("/users/{}/assignLicense", id), Some(body))?;
    match resp.status {
        200..=299 => Ok(json!({"assigned": true, "changed": true, "sku": part})),
        // Someone took the last seat since we counted.
        400 if text(&resp.body["error"], "message").contains("available licenses") => {
            Ok(json!({"assigned": false, "changed": false, "sku": part, "reason": "no_free_seats"}))
        }
        _ => Err(msgraph::graph_error(&resp, "assignLicense")),
    }
}

/// `remove_license`: `{removed: [SKU part numbers]}`.
pub fn remove_license(input: LicenseIn) -> Result<Value, Error> {
    let graph = graph()?;
    let user = graph.user(&input.user)?;
    let all = skus(&graph)?;
    let part_of = |id: &str| {
        all.iter()
            .find(|s| text(s, "sku_id") == id)
            .map(|s| text(s, "sku").to_string())
            .unwrap_or_else(|| id.to_string())
    };
    let remove: Vec<String> = assigned(&user)
        .into_iter()
        .filter(|id| input.sku.is_empty() || input.sku.eq_ignore_ascii_case(&part_of(id)) || &input.sku == id)
        .collect();
    if remove.is_empty() {
        return Ok(json!({"removed": [], "changed": false}));
    }
    let body = json!({"addLicenses": [], "removeLicenses": remove});
    graph.call("POST", &format!("/users/{}/assignLicense", text(&user, "id")), Some(body))?;
    let names: Vec<String> = remove.iter().map(|id| part_of(id)).collect();
    Ok(json!({"removed": names, "changed": true}))
}

/// Input naming a user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserIn {
    /// UPN, mail or object id.
    pub user: String,
}

/// `revoke_sessions`: invalidates refresh tokens. Done once while the account stays
/// disabled (a disabled account cannot sign in again, so a second revoke changes nothing).
pub fn revoke_sessions(input: UserIn) -> Result<Value, Error> {
    let graph = graph()?;
    let user = graph.user(&input.user)?;
    let id = text(&user, "id").to_string();
    let disabled = user.get("accountEnabled").and_then(Value::as_bool) == Some(false);
    let key = format!("revoked/{}", id);
    if disabled && host::kv_get(&key)?.map_or(false, |v| !v.is_null()) {
        return Ok(json!({"revoked": false, "reason": "already revoked while disabled"}));
    }
    graph.call("POST", &format!("/users/{}/revokeSignInSessions", id), None)?;
    host::kv_set(&key, &if disabled { json!(true) } else { Value::Null })?;
    Ok(json!({ "revoked": true }))
}

/// Input of `set_auto_reply`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoReplyIn {
    /// UPN, mail or object id.
    pub user: String,
    /// Reply to colleagues.
    pub message: String,
    /// Reply to outside senders (default: the same).
    #[serde(default)]
    pub external_message: String,
    /// `all` (default), `contactsOnly` or `none`.
    #[serde(default)]
    pub audience: String,
}

/// `set_auto_reply`: always-on automatic replies; `changed: false` when already so.
pub fn set_auto_reply(input: AutoReplyIn) -> Result<Value, Error> {
    let graph = graph()?;
    let user = graph.user(&input.user)?;
    let path = format!("/users/{}/mailboxSettings", text(&user, "id"));
    let external =
        if input.external_message.is_empty() { input.message.clone() } else { input.external_message.clone() };
    let audience = if input.audience.is_empty() { "all".to_string() } else { input.audience.clone() };
    let wanted = json!({"status": "alwaysEnabled", "externalAudience": audience,
        "internalReplyMessage": input.message, "externalReplyMessage": external});
    let current = graph.call("GET", &path, None)?;
    let now = &current["automaticRepliesSetting"];
    let same = ["status", "externalAudience", "internalReplyMessage", "externalReplyMessage"]
        .iter()
        .all(|k| now[*k] == wanted[*k]);
    if same {
        return Ok(json!({ "changed": false }));
    }
    graph.call("PATCH", &path, Some(json!({ "automaticRepliesSetting": wanted })))?;
    Ok(json!({ "changed": true }))
}

/// Input of `add_to_team`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamIn {
    /// UPN, mail or object id.
    pub user: String,
    /// Team name or id.
    pub team: String,
    /// `owner` to add as owner (default member).
    #[serde(default)]
    pub role: String,
}

/// `add_to_team`.
pub fn add_to_team(input: TeamIn) -> Result<Value, Error> {
    let graph = graph()?;
    let user = graph.user(&input.user)?;
    let uid = text(&user, "id").to_string();
    let team = graph.group_id(&input.team)?;
    let members = graph.get_all(&format!("/teams/{}/members", encode(&team)))?;
    if members.iter().any(|m| text(m, "userId") == uid) {
        return Ok(json!({ "changed": false }));
    }
    let roles: Vec<&str> = if input.role == "owner" { vec!["owner"] } else { vec![] };
    let body = json!({"@odata.type": "#microsoft.graph.aadUserConversationMember", "roles": roles,
        "user@odata.bind": format!("https://graph.microsoft.com/v1.0/users('{}')", uid)});
    let resp = graph.send("POST", &format!("/teams/{}/members", team), Some(body))?;
    match resp.status {
        200..=299 => Ok(json!({ "changed": true })),
        409 => Ok(json!({ "changed": false })),
        _ => Err(msgraph::graph_error(&resp, "add team member")),
    }
}

/// Input of `add_group_members` / `remove_group_members`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersIn {
    /// Group name or id.
    pub group: String,
    /// Users (UPN, mail or object id).
    pub users: Vec<String>,
}

/// Adds or removes many users in `$batch` requests of 20. Unknown users and per-item
/// permanent failures are reported in `failed`; throttled items make the action
/// retryable after the others were applied.
fn change_members(input: MembersIn, add: bool) -> Result<Value, Error> {
    let graph = graph()?;
    let gid = graph.group_id(&input.group)?;
    let lookups: Vec<BatchItem> = input
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| BatchItem {
            id: i.to_string(),
            method: "GET".into(),
            url: format!("/users/{}", encode(u)),
            body: None,
        })
        .collect();
    let mut failed = Vec::new();
    let mut ids: Vec<(String, String)> = Vec::new();
    let mut throttled: Option<Error> = None;
    for a in graph.batch(&lookups)? {
        let name = a.id.parse::<usize>().ok().and_then(|i| input.users.get(i)).cloned().unwrap_or_default();
        match a.status {
            200 => ids.push((name, text(&a.body, "id").to_string())),
            404 => failed.push(json!({"user": name, "code": "not_found", "message": "no such user"})),
            _ => match answer_error(&a, &name) {
                e if e.retryable => throttled = longer_wait(throttled, e),
                e => failed.push(json!({"user": name, "code": e.code, "message": e.message})),
            },
        }
    }
    let items: Vec<BatchItem> =
        ids.iter().enumerate().map(|(i, (_, uid))| membership_item(i, &gid, uid, add)).collect();
    let (mut changed, mut unchanged) = (Vec::new(), Vec::new());
    for a in graph.batch(&items)? {
        let name = a.id.parse::<usize>().ok().and_then(|i| ids.get(i)).map(|x| x.0.clone()).unwrap_or_default();
        match membership_outcome(&a, add, &name) {
            Ok(true) => changed.push(name),
            Ok(false) => unchanged.push(name),
            Err(e) if e.retryable => throttled = longer_wait(throttled, e),
            Err(e) => failed.push(json!({"user": name, "code": e.code, "message": e.message})),
        }
    }
    if let Some(e) = throttled {
        host::log(Level::Warn, &format!("{} applied before Graph throttled; the rest follows on retry", changed.len()));
        return Err(e);
    }
    Ok(json!({"changed": changed, "unchanged": unchanged, "failed": failed, "complete": failed.is_empty()}))
}

/// `add_group_members`.
pub fn add_group_members(input: MembersIn) -> Result<Value, Error> {
    change_members(input, true)
}

/// `remove_group_members`.
pub fn remove_group_members(input: MembersIn) -> Result<Value, Error> {
    change_members(input, false)
}

plugin!(manifest = "../manifest.json", actions = {
    "list_licenses" => list_licenses,
    "assign_license" => assign_license,
    "remove_license" => remove_license,
    "revoke_sessions" => revoke_sessions,
    "set_auto_reply" => set_auto_reply,
    "add_to_team" => add_to_team,
    "add_group_members" => add_group_members,
    "remove_group_members" => remove_group_members,
});

#[cfg(test)]
mod tests;
