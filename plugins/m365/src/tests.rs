//! Native unit tests against a scripted Graph: batching, per-item failures, throttling,
//! paging, and the licence checks.

use super::*;
use std::cell::RefCell;
use std::rc::Rc;
use switchboard_sdk::host::{set_stub, Stub};

type Log = Rc<RefCell<Vec<Value>>>;

/// Users `u0`..`u99` exist except `ghost`; `slow` is throttled inside batches.
struct Scripted {
    log: Log,
    free_seats: i64,
    usage_location: Value,
}

fn reply(status: u16, body: Value) -> Value {
    json!({"ok": {"status": status, "headers": {}, "body": body}})
}

impl Stub for Scripted {
    fn call(&mut self, op: &str, req: Value) -> Value {
        if op != "http" {
            return json!({"ok": null});
        }
        self.log.borrow_mut().push(req.clone());
        let path = req["path"].as_str().unwrap_or("").to_string();
        let method = req["method"].as_str().unwrap_or("");
        match (method, path.as_str()) {
            ("POST", "/$batch") => {
                let mut responses: Vec<Value> = req["body"]["requests"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| {
                        let url = r["url"].as_str().unwrap_or("");
                        let (status, headers, body) = if url.contains("ghost") {
                            (404, json!({}), json!({"error": {"code": "Request_ResourceNotFound", "message": "gone"}}))
                        } else if url.contains("slow") {
                            (429, json!({"Retry-After": "9"}), json!({"error": {"code": "TooManyRequests", "message": "wait"}}))
                        } else if let Some(user) = url.strip_prefix("/users/") {
                            (200, json!({}), json!({"id": format!("id-{}", user)}))
                        } else if url.contains("id-u1/") || url.ends_with("$ref") && r["body"]["@odata.id"].as_str().unwrap_or("").ends_with("id-u1") {
                            (400, json!({}), json!({"error": {"code": "Request_BadRequest", "message": "One or more added object references already exist"}}))
                        } else {
                            (204, json!({}), Value::Null)
                        };
                        json!({"id": r["id"], "status": status, "headers": headers, "body": body})
                    })
                    .collect();
                responses.reverse();
                reply(200, json!({ "responses": responses }))
            }
            ("GET", "/groups?$filter=displayName%20eq%20%27Sales%27") => {
                reply(200, json!({"value": [{"id": "g-sales"}]}))
            }
            ("GET", "/subscribedSkus") => reply(
                200,
                json!({"value": [
                {"skuId": "sku-e3", "skuPartNumber": "ENTERPRISEPACK", "consumedUnits": 10, "prepaidUnits": {"enabled": 10 + self.free_seats}}],
                "@odata.nextLink": "http://graph.local/v1.0/subscribedSkus?page=2"}),
            ),
            ("GET", "http://graph.local/v1.0/subscribedSkus?page=2") => reply(
                200,
                json!({"value": [
                {"skuId": "sku-ems", "skuPartNumber": "EMS", "consumedUnits": 0, "prepaidUnits": {"enabled": 3}}]}),
            ),
            ("GET", p) if p.starts_with("/users/") => {
                reply(200, json!({"id": "id-new", "assignedLicenses": [], "usageLocation": self.usage_location}))
            }
            _ => reply(200, json!({})),
        }
    }
}

fn install(free_seats: i64, usage_location: Value) -> Log {
    let log: Log = Rc::default();
    set_stub(Box::new(Scripted { log: log.clone(), free_seats, usage_location }));
    log
}

#[test]
fn bulk_adds_go_in_batches_of_twenty_and_report_each_user() {
    let log = install(1, json!("DE"));
    let mut users: Vec<String> = (0..43).map(|i| format!("u{}", i)).collect();
    users.push("ghost".into());
    let out = add_group_members(MembersIn { group: "Sales".into(), users }).unwrap();
    let batches: Vec<usize> = log
        .borrow()
        .iter()
        .filter(|r| r["path"] == "/$batch")
        .map(|r| r["body"]["requests"].as_array().unwrap().len())
        .collect();
    assert_eq!(batches, vec![20, 20, 4, 20, 20, 3], "lookups, then adds");
    assert_eq!(out["changed"].as_array().unwrap().len(), 42);
    assert_eq!(out["unchanged"], json!(["u1"]));
    assert_eq!(out["failed"][0]["user"], "ghost");
    assert_eq!(out["complete"], false);
}

#[test]
fn a_throttled_item_makes_the_action_retryable_with_its_retry_after() {
    install(1, json!("DE"));
    let err =
        add_group_members(MembersIn { group: "Sales".into(), users: vec!["u2".into(), "slow".into()] }).unwrap_err();
    assert_eq!((err.code.as_str(), err.retryable, err.retry_after_ms), ("throttled", true, Some(9000)));
}

#[test]
fn licences_follow_next_links_and_check_seats_and_usage_location() {
    let log = install(0, json!("DE"));
    let listed = list_licenses(Nothing {}).unwrap();
    assert_eq!(listed["licenses"].as_array().unwrap().len(), 2, "second page followed");
    let out = assign_license(LicenseIn {
        user: "new@example.com".into(),
        sku: "ENTERPRISEPACK".into(),
        usage_location: String::new(),
    })
    .unwrap();
    assert_eq!(out["reason"], "no_free_seats");
    assert!(!log.borrow().iter().any(|r| r["path"].as_str().unwrap_or("").ends_with("assignLicense")));

    install(2, Value::Null);
    let err = assign_license(LicenseIn {
        user: "new@example.com".into(),
        sku: "ENTERPRISEPACK".into(),
        usage_location: String::new(),
    })
    .unwrap_err();
    assert_eq!(err.code, "no_usage_location");
    let log = install(2, Value::Null);
    let out = assign_license(LicenseIn {
        user: "new@example.com".into(),
        sku: "ENTERPRISEPACK".into(),
        usage_location: "DE".into(),
    })
    .unwrap();
    assert_eq!(out["assigned"], true);
    let calls: Vec<String> = log
        .borrow()
        .iter()
        .map(|r| format!("{} {}", r["method"].as_str().unwrap(), r["path"].as_str().unwrap()))
        .collect();
    let patch = calls.iter().position(|c| c == "PATCH /users/id-new").expect("usage location set");
    let assign = calls.iter().position(|c| c == "POST /users/id-new/assignLicense").expect("licence assigned");
    assert!(patch < assign, "{:?}", calls);
}
