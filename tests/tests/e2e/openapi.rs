//! The OpenAPI document matches the routes: every route registered in `api/mod.rs` (and
//! each API path the console serves) has an operation in the document and every
//! operation has a route; and the served document answers on a real server.

use std::collections::BTreeSet;
use switchboard_tests::{repo, write_config, Server};

/// `(method, path)` of every `.route(...)` in the API router's source, and of the API
/// paths the console's router serves (signed approval links: pages for people).
fn registered_routes() -> BTreeSet<(String, String)> {
    let mut out = routes_in("engine/src/api/mod.rs");
    out.extend(
        routes_in("engine/src/console/mod.rs").into_iter().filter(|(_, p)| p != "/" && !p.starts_with("/console")),
    );
    out
}

fn routes_in(file: &str) -> BTreeSet<(String, String)> {
    let src = std::fs::read_to_string(repo().join(file)).unwrap();
    let mut out = BTreeSet::new();
    let mut rest = src.as_str();
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        // The call's text, up to its matching parenthesis.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .unwrap()
            .0;
        let call = &rest[..end];
        let path = call.split('"').nth(1).unwrap().to_string();
        for method in ["get", "post", "put", "patch", "delete"] {
            let calls =
                [format!("({method}("), format!(".{method}("), format!("routing::{method}("), format!(" {method}(")];
            if calls.iter().any(|c| call.contains(c.as_str())) {
                out.insert((method.to_string(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn every_route_is_documented_and_every_operation_routed() {
    let routes = registered_routes();
    assert!(routes.len() > 40, "parsed {} routes", routes.len());
    let documented: BTreeSet<(String, String)> =
        switchboard::api::openapi::OPERATIONS.iter().map(|(m, p, ..)| (m.to_string(), p.to_string())).collect();
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routes).collect();
    assert!(undocumented.is_empty(), "routes missing from the OpenAPI document: {undocumented:?}");
    assert!(unrouted.is_empty(), "documented operations with no route: {unrouted:?}");
}

#[tokio::test]
async fn the_server_serves_its_document_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "").unwrap();
    let server = Server::start(&dir.path().join("data"), &config, &[]).unwrap();
    let doc: serde_json::Value =
        reqwest::get(format!("{}/openapi.json", server.url)).await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["paths"]["/hooks/{id}"]["post"]["responses"]["429"]["description"], "rate limited; see Retry-After");
    assert_eq!(doc["paths"]["/tickets/{id}"]["patch"]["parameters"][0]["name"], "id");
    let schema: serde_json::Value =
        reqwest::get(format!("{}/schema/workflow.v1.json", server.url)).await.unwrap().json().await.unwrap();
    assert_eq!(schema["title"], "Switchboard workflow, language v1");
}
