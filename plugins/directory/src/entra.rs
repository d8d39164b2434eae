//! Entra ID over Microsoft Graph (through the `msgraph` crate and the host's OAuth2
//! connection). Every write reads first or treats "already so" as success, so an
//! action retried after throttling does not do anything twice.

use crate::{Account, GroupChange};
use msgraph::{encode, longer_wait, membership_item, membership_outcome, text, BatchItem, Graph};
use switchboard_sdk::{json, Error, Value};

/// The account as the plugin reports it.
pub fn account(u: &Value, groups: Vec<String>) -> Account {
    let upn = text(u, "userPrincipalName");
    Account {
        found: true,
        target: "entra".into(),
        id: text(u, "id").to_string(),
        username: text(u, "mailNickname").to_string(),
        upn: upn.to_string(),
        mail: if text(u, "mail").is_empty() { upn.to_string() } else { text(u, "mail").to_string() },
        display_name: text(u, "displayName").to_string(),
        department: text(u, "department").to_string(),
        enabled: u.get("accountEnabled").and_then(Value::as_bool).unwrap_or(true),
        // Entra's smart lockout is not readable or writable through Graph.
        locked: false,
        manager: None,
        groups,
        licenses: u
            .get("assignedLicenses")
            .and_then(Value::as_array)
            .map(|l| l.iter().map(|x| text(x, "skuId").to_string()).collect())
            .unwrap_or_default(),
    }
}

/// Names of the groups a user is a direct member of (every page).
pub fn group_names(graph: &Graph, id: &str) -> Result<Vec<String>, Error> {
    let groups = graph.get_all(&format!("/users/{}/memberOf", encode(id)))?;
    Ok(groups
        .iter()
        .filter(|g| text(g, "@odata.type") == "#microsoft.graph.group")
        .map(|g| text(g, "displayName").to_string())
        .collect())
}

/// Sets `accountEnabled` if it differs; whether it did.
pub fn set_enabled(graph: &Graph, key: &str, enabled: bool) -> Result<bool, Error> {
    let u = graph.user(key)?;
    if u.get("accountEnabled").and_then(Value::as_bool) == Some(enabled) {
        return Ok(false);
    }
    graph.call("PATCH", &format!("/users/{}", text(&u, "id")), Some(json!({ "accountEnabled": enabled })))?;
    Ok(true)
}

/// Replaces the password (app-only calls also need an admin role, else 403).
pub fn set_password(graph: &Graph, id: &str, password: &str, force_change: bool) -> Result<(), Error> {
    let body = json!({"passwordProfile": {"password": password, "forceChangePasswordNextSignIn": force_change}});
    graph.call("PATCH", &format!("/users/{}", encode(id)), Some(body)).map(|_| ())
}

/// Adds to or removes from groups in `$batch` requests; "already a member" and "not a
/// member" count as done. Throttled items make the whole action retryable (after the
/// others were applied), with the longest `Retry-After` any item asked for.
pub fn change_groups(graph: &Graph, key: &str, groups: &[String], add: bool) -> Result<GroupChange, Error> {
    let user = graph.user(key)?;
    let uid = text(&user, "id").to_string();
    let mut ids = Vec::new();
    for name in groups {
        ids.push(graph.group_id(name)?);
    }
    let items: Vec<BatchItem> = ids.iter().enumerate().map(|(i, gid)| membership_item(i, gid, &uid, add)).collect();
    let mut out = GroupChange::default();
    let mut throttled: Option<Error> = None;
    for answer in graph.batch(&items)? {
        let name = answer.id.parse::<usize>().ok().and_then(|i| groups.get(i)).cloned().unwrap_or_default();
        match membership_outcome(&answer, add, &format!("group `{}`", name)) {
            Ok(true) => out.changed.push(name),
            Ok(false) => out.unchanged.push(name),
            Err(e) if e.retryable => throttled = longer_wait(throttled, e),
            Err(e) => return Err(e),
        }
    }
    match throttled {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The user's manager, if set.
pub fn manager(graph: &Graph, key: &str) -> Result<Option<Account>, Error> {
    let u = graph.user(key)?;
    Ok(graph.get_opt(&format!("/users/{}/manager", text(&u, "id")))?.map(|m| account(&m, Vec::new())))
}

/// Sets the user's manager if it differs.
pub fn set_manager(graph: &Graph, key: &str, manager: &str) -> Result<bool, Error> {
    let u = graph.user(key)?;
    let m = graph.user(manager)?;
    let current = graph.get_opt(&format!("/users/{}/manager", text(&u, "id")))?;
    if current.as_ref().map(|c| text(c, "id")) == Some(text(&m, "id")) {
        return Ok(false);
    }
    let body = json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/users/{}", text(&m, "id")) });
    graph.call("PUT", &format!("/users/{}/manager/$ref", text(&u, "id")), Some(body))?;
    Ok(true)
}

/// Creates the user (disabled unless `enabled`) with an undelivered random password;
/// an existing user with that UPN is left alone.
pub fn create(graph: &Graph, new: &crate::NewUser, upn: &str, password: &str) -> Result<(Account, bool), Error> {
    if let Some(existing) = graph.find_user(upn)? {
        return Ok((account(&existing, Vec::new()), false));
    }
    let mut body = json!({
        "accountEnabled": new.enabled,
        "displayName": new.display_name(),
        "givenName": new.given_name,
        "surname": new.surname,
        "mailNickname": new.username,
        "userPrincipalName": upn,
        "department": new.department,
        "passwordProfile": {"password": password, "forceChangePasswordNextSignIn": true},
    });
    if !new.usage_location.is_empty() {
        body["usageLocation"] = json!(new.usage_location);
    }
    let created = graph.call("POST", "/users", Some(body))?;
    Ok((account(&created, Vec::new()), true))
}
