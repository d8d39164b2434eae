//! The Graph v1.0 endpoints of the fake: users (and their licences, mailbox settings,
//! passwords), groups and their members, paging and `$batch`, with Graph's status codes and
//! error bodies.

use super::{default_mailbox, throttled, Answer, Graph, Logged, PAGE_SIZE};
use axum::http::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Graph's error body.
pub(super) fn error(status: u16, code: &str, message: &str) -> Answer {
    let at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    (
        status,
        None,
        json!({"error": {"code": code, "message": message,
            "innerError": {"date": at, "request-id": "fake-request", "client-request-id": "fake-client-request"}}}),
    )
}

pub(super) fn not_found(what: &str) -> Answer {
    error(
        404,
        "Request_ResourceNotFound",
        &format!("Resource '{what}' does not exist or one of its queried reference-property objects are not present."),
    )
}

pub(super) fn ok(status: u16, body: Value) -> Answer {
    (status, None, body)
}

/// `field eq 'value'`, the only `$filter` form the fake (and the plugins) use.
fn filter_eq(filter: &str) -> Option<(String, String)> {
    let (field, rest) = filter.split_once(" eq ")?;
    let value = rest.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    Some((field.trim().to_string(), value.replace("''", "'")))
}

/// One page of `items`, with an absolute `@odata.nextLink` while more remain.
fn page(base: &str, path: &str, query: &BTreeMap<String, String>, items: Vec<Value>) -> Answer {
    let skip: usize = query.get("$skiptoken").and_then(|s| s.parse().ok()).unwrap_or(0);
    let top: usize = query.get("$top").and_then(|s| s.parse().ok()).unwrap_or(PAGE_SIZE).clamp(1, PAGE_SIZE);
    let slice: Vec<Value> = items.iter().skip(skip).take(top).cloned().collect();
    let mut body = json!({"value": slice});
    if skip + top < items.len() {
        body["@odata.nextLink"] = json!(format!("{base}/v1.0{path}?$top={top}&$skiptoken={}", skip + top));
    }
    ok(200, body)
}

/// The object id at the end of an `@odata.id` / `user@odata.bind` reference.
fn reference_id(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    let tail = s.rsplit('/').next()?;
    let tail = tail.trim_start_matches("users(").trim_start_matches('\'').trim_end_matches(')').trim_end_matches('\'');
    Some(tail.to_string())
}

/// One Graph request, as the handlers see it.
#[derive(Clone, Copy)]
pub(super) struct Req<'a> {
    /// `http://host:port`, for absolute `@odata.nextLink`s.
    pub(super) base: &'a str,
    pub(super) method: &'a Method,
    /// Path below `/v1.0`.
    pub(super) path: &'a str,
    pub(super) query: &'a BTreeMap<String, String>,
    pub(super) body: &'a Value,
}

pub(super) fn dispatch(g: &mut Graph, req: Req<'_>) -> Answer {
    let Req { base, method, path, query, body } = req;
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["users"]) => {
            let Some(filter) = query.get("$filter") else {
                let all: Vec<Value> = g.users.keys().map(|id| g.user_json(id)).collect();
                return page(base, path, query, all);
            };
            let Some((field, value)) = filter_eq(filter) else {
                return error(400, "Request_UnsupportedQuery", &format!("Unsupported query: {filter}"));
            };
            let hits: Vec<Value> = g
                .users
                .iter()
                .filter(|(_, u)| u.get(&field).and_then(Value::as_str).is_some_and(|v| v.eq_ignore_ascii_case(&value)))
                .map(|(id, _)| g.user_json(id))
                .collect();
            ok(200, json!({"value": hits}))
        }
        ("POST", ["users"]) => {
            for field in ["accountEnabled", "displayName", "mailNickname", "userPrincipalName", "passwordProfile"] {
                if body.get(field).is_none() {
                    return error(
                        400,
                        "Request_BadRequest",
                        &format!("Invalid value specified for property '{field}' of resource 'User'."),
                    );
                }
            }
            let upn = body["userPrincipalName"].as_str().unwrap_or("");
            if g.user_id(upn).is_some() {
                let mut e = error(
                    400,
                    "Request_BadRequest",
                    "Another object with the same value for property userPrincipalName already exists.",
                );
                e.2["error"]["details"] = json!([{"code": "ObjectConflict", "message": "Another object with the same value for property userPrincipalName already exists.", "target": "userPrincipalName"}]);
                return e;
            }
            let id = g.create_user(body.clone());
            ok(201, g.user_json(&id))
        }
        ("GET", ["subscribedSkus"]) => {
            let skus: Vec<Value> = g
                .skus
                .iter()
                .map(|s| json!({"skuId": s.id, "skuPartNumber": s.part, "consumedUnits": g.consumed(&s.id),
                    "prepaidUnits": {"enabled": s.prepaid, "suspended": 0, "warning": 0}, "capabilityStatus": "Enabled"}))
                .collect();
            ok(200, json!({"value": skus}))
        }
        ("GET", ["groups"]) => {
            // Teams are Microsoft 365 groups too: listed here, with `resourceProvisioningOptions`.
            let filter = query.get("$filter").and_then(|f| filter_eq(f));
            let teams = g.teams.iter().map(|(id, t)| {
                let mut v = Graph::group_json(id, t);
                v["resourceProvisioningOptions"] = json!(["Team"]);
                (id, t, v)
            });
            let groups = g.groups.iter().map(|(id, grp)| (id, grp, Graph::group_json(id, grp)));
            let hits: Vec<Value> = groups
                .chain(teams)
                .filter(|(_, grp, _)| match &filter {
                    Some((f, v)) if f == "displayName" => grp.name.eq_ignore_ascii_case(v),
                    Some((f, v)) if f == "mailNickname" => grp.nickname.eq_ignore_ascii_case(v),
                    Some(_) => false,
                    None => true,
                })
                .map(|(_, _, v)| v)
                .collect();
            ok(200, json!({"value": hits}))
        }
        (_, ["users", key, rest @ ..]) => {
            let Some(id) = g.user_id(key) else { return not_found(key) };
            user_call(g, req, &id, rest)
        }
        (_, ["groups", gid, rest @ ..]) => {
            let gid = gid.to_string();
            if !g.groups.contains_key(&gid) {
                return not_found(&gid);
            }
            group_call(g, req, &gid, rest)
        }
        (_, ["teams", tid, "members"]) => {
            let tid = tid.to_string();
            if !g.teams.contains_key(&tid) {
                return error(404, "NotFound", &format!("No team found with Group Id {tid}"));
            }
            match method.as_str() {
                "GET" => {
                    let members: Vec<Value> = g.teams[&tid]
                        .members
                        .iter()
                        .map(|u| json!({"@odata.type": "#microsoft.graph.aadUserConversationMember", "id": format!("m-{u}"),
                            "userId": u, "roles": [], "displayName": g.users.get(u).and_then(|x| x.get("displayName")).cloned()}))
                        .collect();
                    ok(200, json!({"value": members}))
                }
                "POST" => {
                    let Some(uid) = reference_id(&body["user@odata.bind"]).and_then(|u| g.user_id(&u)) else {
                        return error(400, "BadRequest", "user@odata.bind must reference an existing user");
                    };
                    if !g.teams.get_mut(&tid).is_some_and(|t| t.members.insert(uid.clone())) {
                        return error(409, "Conflict", "The user is already a member of the team.");
                    }
                    ok(
                        201,
                        json!({"@odata.type": "#microsoft.graph.aadUserConversationMember", "id": format!("m-{uid}"), "userId": uid, "roles": body["roles"]}),
                    )
                }
                _ => error(405, "Request_BadRequest", "method not allowed"),
            }
        }
        _ => error(400, "Request_BadRequest", &format!("Unsupported request: {} {path}", method)),
    }
}

fn user_call(g: &mut Graph, req: Req<'_>, id: &str, rest: &[&str]) -> Answer {
    let Req { base, method, path, query, body } = req;
    match (method.as_str(), rest) {
        ("GET", []) => ok(200, g.user_json(id)),
        ("PATCH", []) => {
            let Some(changes) = body.as_object() else {
                return error(400, "Request_BadRequest", "body must be an object");
            };
            for (k, v) in changes {
                if k == "passwordProfile" {
                    let Some(pw) = v["password"].as_str().filter(|p| p.len() >= 8) else {
                        return error(400, "Request_BadRequest", "The specified password does not comply with password complexity requirements. Please provide a different password.");
                    };
                    g.passwords.insert(id.to_string(), pw.to_string());
                } else if k == "id"
                    || k == "userPrincipalName" && g.user_id(v.as_str().unwrap_or("")).is_some_and(|o| o != id)
                {
                    return error(
                        400,
                        "Request_BadRequest",
                        &format!("Property '{k}' cannot be changed to that value."),
                    );
                } else if let Some(u) = g.users.get_mut(id) {
                    u.insert(k.clone(), v.clone());
                }
            }
            ok(204, Value::Null)
        }
        ("DELETE", []) => {
            g.users.remove(id);
            for grp in g.groups.values_mut().chain(g.teams.values_mut()) {
                grp.members.remove(id);
            }
            ok(204, Value::Null)
        }
        ("POST", ["revokeSignInSessions"]) => {
            let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
            if let Some(u) = g.users.get_mut(id) {
                u.insert("signInSessionsValidFromDateTime".into(), json!(now));
            }
            ok(200, json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean", "value": true}))
        }
        ("GET", ["memberOf"]) => {
            let groups: Vec<Value> = g
                .groups
                .iter()
                .filter(|(_, grp)| grp.members.contains(id))
                .map(|(gid, grp)| Graph::group_json(gid, grp))
                .collect();
            page(base, path, query, groups)
        }
        ("POST", ["assignLicense"]) => assign_license(g, id, body),
        ("GET", ["manager"]) => match g.managers.get(id) {
            Some(m) => ok(200, g.user_json(m)),
            None => not_found("manager"),
        },
        ("PUT", ["manager", "$ref"]) => {
            let Some(mid) = reference_id(&body["@odata.id"]).and_then(|m| g.user_id(&m)) else {
                return error(400, "Request_BadRequest", "Invalid object identifier in @odata.id.");
            };
            g.managers.insert(id.to_string(), mid);
            ok(204, Value::Null)
        }
        ("GET", ["mailboxSettings"]) => ok(200, g.mailbox.get(id).cloned().unwrap_or_else(default_mailbox)),
        ("PATCH", ["mailboxSettings"]) => {
            let current = g.mailbox.entry(id.to_string()).or_insert_with(default_mailbox);
            if let (Some(cur), Some(new)) = (current.as_object_mut(), body.as_object()) {
                for (k, v) in new {
                    match (cur.get_mut(k), v) {
                        (Some(Value::Object(c)), Value::Object(n)) => c.extend(n.clone()),
                        _ => {
                            cur.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            ok(200, current.clone())
        }
        _ => error(400, "Request_BadRequest", &format!("Unsupported request: {} {path}", method)),
    }
}

fn assign_license(g: &mut Graph, id: &str, body: &Value) -> Answer {
    let add: Vec<String> = body["addLicenses"]
        .as_array()
        .map(|a| a.iter().filter_map(|l| l["skuId"].as_str().map(String::from)).collect())
        .unwrap_or_default();
    let remove: Vec<String> = body["removeLicenses"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default();
    if body.get("addLicenses").is_none() || body.get("removeLicenses").is_none() {
        return error(400, "Request_BadRequest", "addLicenses and removeLicenses are required.");
    }
    let user = g.users.get(id).cloned().unwrap_or_default();
    let has = |sku: &str| {
        user.get("assignedLicenses").and_then(Value::as_array).is_some_and(|l| l.iter().any(|x| x["skuId"] == sku))
    };
    for sku in &add {
        let Some(s) = g.skus.iter().find(|s| &s.id == sku).cloned() else {
            return error(
                400,
                "Request_BadRequest",
                &format!("License {sku} does not correspond to a valid company License."),
            );
        };
        if user.get("usageLocation").is_none_or(Value::is_null) {
            return error(
                400,
                "Request_BadRequest",
                "License assignment cannot be done for user with invalid usage location.",
            );
        }
        if !has(sku) && g.consumed(sku) >= s.prepaid {
            return error(
                400,
                "Request_BadRequest",
                &format!("Subscription with SKU {} does not have any available licenses.", s.part),
            );
        }
    }
    for sku in &remove {
        if !has(sku) {
            return error(400, "Request_BadRequest", &format!("User does not have a corresponding license {sku}."));
        }
    }
    let mut licences: Vec<Value> = user.get("assignedLicenses").and_then(Value::as_array).cloned().unwrap_or_default();
    licences.retain(|l| !remove.iter().any(|r| l["skuId"] == r.as_str()));
    for sku in add {
        if !licences.iter().any(|l| l["skuId"] == sku.as_str()) {
            licences.push(json!({"skuId": sku, "disabledPlans": []}));
        }
    }
    if let Some(u) = g.users.get_mut(id) {
        u.insert("assignedLicenses".into(), Value::Array(licences));
    }
    ok(200, g.user_json(id))
}

fn group_call(g: &mut Graph, req: Req<'_>, gid: &str, rest: &[&str]) -> Answer {
    let Req { base, method, path, query, body } = req;
    match (method.as_str(), rest) {
        ("GET", []) => ok(200, Graph::group_json(gid, &g.groups[gid])),
        ("GET", ["members"]) => {
            let members: Vec<Value> = g.groups[gid].members.iter().map(|u| g.user_json(u)).collect();
            page(base, path, query, members)
        }
        ("POST", ["members", "$ref"]) => {
            let Some(uid) = reference_id(&body["@odata.id"]).filter(|u| g.users.contains_key(u)) else {
                return error(400, "Request_BadRequest", "Invalid object identifier in @odata.id.");
            };
            if !g.groups.get_mut(gid).is_some_and(|grp| grp.members.insert(uid)) {
                return error(400, "Request_BadRequest", "One or more added object references already exist for the following modified properties: 'members'.");
            }
            ok(204, Value::Null)
        }
        ("DELETE", ["members", uid, "$ref"]) => {
            if !g.groups.get_mut(gid).is_some_and(|grp| grp.members.remove(*uid)) {
                return not_found(uid);
            }
            ok(204, Value::Null)
        }
        // The trap the docs warn about: without `/$ref` this deletes the user itself.
        ("DELETE", ["members", uid]) => {
            let uid = uid.to_string();
            user_call(g, Req { method: &Method::DELETE, ..req }, &uid, &[])
        }
        _ => error(400, "Request_BadRequest", &format!("Unsupported request: {} {path}", method)),
    }
}

pub(super) fn split_url(url: &str) -> (String, BTreeMap<String, String>) {
    let (path, q) = url.split_once('?').unwrap_or((url, ""));
    let query = serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default().into_iter().collect();
    (path.to_string(), query)
}

/// `POST /$batch`: at most 20 requests; `dependsOn` a failed request gives 424;
/// answers come back in reverse order, as Graph does not promise any order.
pub(super) fn batch(g: &mut Graph, base: &str, body: &Value) -> Answer {
    let Some(requests) = body["requests"].as_array() else {
        return error(400, "BadRequest", "Invalid batch payload format.");
    };
    if requests.len() > 20 {
        return error(400, "BadRequest", "Number of requests in a batch cannot exceed 20.");
    }
    let mut statuses: BTreeMap<String, u16> = BTreeMap::new();
    let mut responses = Vec::new();
    for r in requests {
        let id = r["id"].as_str().unwrap_or("").to_string();
        let method = Method::from_bytes(r["method"].as_str().unwrap_or("GET").as_bytes()).unwrap_or(Method::GET);
        let url = r["url"].as_str().unwrap_or("");
        let depends: Vec<String> = r["dependsOn"]
            .as_array()
            .map(|a| a.iter().filter_map(|d| d.as_str().map(String::from)).collect())
            .unwrap_or_default();
        let (status, retry, answer) = if depends.iter().any(|d| statuses.get(d).is_none_or(|s| *s >= 400)) {
            error(424, "FailedDependency", "A dependency of this request failed.")
        } else if g.throttle.remaining > 0 {
            g.throttle.remaining -= 1;
            throttled(&g.throttle)
        } else {
            let (path, query) = split_url(url);
            dispatch(g, Req { base, method: &method, path: &path, query: &query, body: &r["body"] })
        };
        g.log.push(Logged {
            at_ms: g.started.elapsed().as_millis() as u64,
            method: method.to_string(),
            path: format!("$batch:{url}"),
            status,
            body: r["body"].clone(),
        });
        statuses.insert(id.clone(), status);
        let mut headers = json!({"Content-Type": "application/json"});
        if let Some(s) = retry {
            headers["Retry-After"] = json!(s.to_string());
        }
        responses.push(json!({"id": id, "status": status, "headers": headers, "body": answer}));
    }
    responses.reverse();
    ok(200, json!({"responses": responses}))
}
