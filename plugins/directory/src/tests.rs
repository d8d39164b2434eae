//! Native unit tests against a scripted host: the Active Directory result codes OpenLDAP
//! does not produce, and where generated passwords may (not) go.

use super::*;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use switchboard_sdk::host::{set_stub, Stub};

/// Answers like an AD with one user `jdoe` (DN `cn=Jane Doe,...`) and one group `vpn`.
#[derive(Default)]
struct FakeAd {
    calls: Rc<RefCell<Vec<(String, Value)>>>,
    config: BTreeMap<String, String>,
    kv: BTreeMap<String, Value>,
    /// Result code of member modifications.
    member_code: u32,
    /// userAccountControl of jdoe.
    uac: u64,
}

impl Stub for FakeAd {
    fn call(&mut self, op: &str, req: Value) -> Value {
        self.calls.borrow_mut().push((op.to_string(), req.clone()));
        match op {
            "config" => json!({"ok": self.config.get(req["key"].as_str().unwrap_or(""))}),
            "kv.get" => json!({"ok": self.kv.get(req["key"].as_str().unwrap_or(""))}),
            "kv.set" => {
                self.kv.insert(req["key"].as_str().unwrap_or("").to_string(), req["value"].clone());
                json!({"ok": null})
            }
            "ticket" => json!({"ok": {"id": "T-7"}}),
            "http" => json!({"ok": {"status": 204, "headers": {}, "body": null}}),
            "ldap" => match req["op"].as_str() {
                Some("search") if req["filter"].as_str().unwrap_or("").contains("objectClass=group") => {
                    json!({"ok": {"code": 0, "entries": [{"dn": "cn=vpn,ou=Groups,dc=example,dc=com", "attrs": {"cn": ["vpn"]}}]}})
                }
                Some("search") => json!({"ok": {"code": 0, "entries": [{"dn": "cn=Jane Doe,ou=Users,dc=example,dc=com",
                    "attrs": {"sAMAccountName": ["jdoe"], "userAccountControl": [self.uac.to_string()], "lockoutTime": ["0"]}}]}}),
                Some("modify") if req["changes"][0]["attr"] == "member" => {
                    json!({"ok": {"code": self.member_code, "message": "x"}})
                }
                _ => json!({"ok": {"code": 0, "message": ""}}),
            },
            _ => json!({"ok": null}),
        }
    }
}

fn install(ad: FakeAd) -> Rc<RefCell<Vec<(String, Value)>>> {
    let calls = ad.calls.clone();
    set_stub(Box::new(ad));
    calls
}

fn groups(user: &str) -> GroupsIn {
    GroupsIn { user: user.into(), target: Target::Ad, group: Some("vpn".into()), groups: vec![] }
}

#[test]
fn ad_already_member_and_not_a_member_codes_count_as_done() {
    install(FakeAd { member_code: 68, uac: 512, ..FakeAd::default() });
    assert_eq!(add_to_group(groups("jdoe")).unwrap(), GroupChange { changed: vec![], unchanged: vec!["vpn".into()] });
    install(FakeAd { member_code: 53, uac: 512, ..FakeAd::default() });
    assert_eq!(remove_from_group(groups("jdoe")).unwrap().unchanged, vec!["vpn".to_string()]);
    install(FakeAd { member_code: 50, uac: 512, ..FakeAd::default() });
    assert_eq!(add_to_group(groups("jdoe")).unwrap_err().code, "access_denied");
}

#[test]
fn a_reset_without_a_secure_channel_changes_nothing() {
    let calls = install(FakeAd { uac: 512, ..FakeAd::default() });
    let err = reset_password(ResetIn {
        user: "jdoe".into(),
        target: Target::Ad,
        force_change: true,
        deliver: true,
        recipient: String::new(),
    })
    .unwrap_err();
    assert_eq!(err.code, "no_secure_channel");
    assert!(!calls.borrow().iter().any(|(op, r)| op == "ldap" && r["op"] == "modify"));
}

#[test]
fn the_password_goes_to_the_channel_and_nowhere_else() {
    let mut ad = FakeAd { uac: 512, ..FakeAd::default() };
    ad.config.insert("password_channel".into(), "vault".into());
    let calls = install(ad);
    let out = reset_password(ResetIn {
        user: "jdoe".into(),
        target: Target::Ad,
        force_change: true,
        deliver: true,
        recipient: "mia".into(),
    })
    .unwrap();
    let calls = calls.borrow();
    let set = calls.iter().find(|(op, r)| op == "ldap" && r["op"] == "modify").unwrap();
    let pw = set.1["changes"][0]["values"][0].as_str().unwrap().to_string();
    assert_eq!(set.1["changes"][1], json!({"op": "replace", "attr": "pwdLastSet", "values": ["0"]}));
    let sent: Vec<&Value> = calls.iter().filter(|(op, _)| op == "http").map(|(_, r)| r).collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["connection"], "vault");
    assert_eq!(sent[0]["body"]["password"], pw.as_str());
    assert_eq!(sent[0]["body"]["ticket"], "T-7");
    assert!(!out.to_string().contains(&pw));
    assert!(!calls.iter().any(|(op, r)| op == "log" && r.to_string().contains(&pw)));
}

#[test]
fn a_scramble_happens_once_while_the_account_stays_disabled() {
    let calls = install(FakeAd { uac: 514, ..FakeAd::default() });
    let scramble = || ResetIn {
        user: "jdoe".into(),
        target: Target::Ad,
        force_change: true,
        deliver: false,
        recipient: String::new(),
    };
    assert_eq!(reset_password(scramble()).unwrap()["reset"], true);
    assert_eq!(reset_password(scramble()).unwrap()["reset"], false);
    let modifies = calls.borrow().iter().filter(|(op, r)| op == "ldap" && r["op"] == "modify").count();
    assert_eq!(modifies, 1);
}

#[test]
fn usernames_come_from_the_name() {
    assert_eq!(username("Zoë", "O'Neil"), "zoneil");
    assert_eq!(username("Ana", "García López"), "agarcialopez");
    assert_eq!(username("Jürgen", "Weiß"), "jweiss");
}

#[test]
fn manifest_lists_every_action() {
    let m = __switchboard_manifest();
    let names: Vec<&str> = m["actions"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 11, "{:?}", names);
}
