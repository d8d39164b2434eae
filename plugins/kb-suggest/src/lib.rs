//! kb-suggest: suggests a knowledge-base article for a ticket.
//!
//! `suggest` scores a small built-in catalogue by keywords (no I/O); `fetch` reads an
//! article from the admin's knowledge-base server through the `kb` HTTP connection.

use serde::{Deserialize, Serialize};
use switchboard_sdk::host::{self, Level};
use switchboard_sdk::{plugin, Error, HttpRequest, Value};

/// An article.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Article {
    /// KB id.
    pub id: &'static str,
    /// Title.
    pub title: &'static str,
    /// Where to read it.
    pub url: &'static str,
}

const CATALOGUE: &[(&[&str], Article)] = &[
    (
        &["password", "passwort", "forgot", "reset", "expired"],
        Article { id: "KB0001", title: "Reset your password yourself", url: "https://kb.example.com/KB0001" },
    ),
    (
        &["vpn", "anyconnect", "remote", "tunnel"],
        Article { id: "KB0002", title: "VPN does not connect", url: "https://kb.example.com/KB0002" },
    ),
    (
        &["printer", "print", "toner", "jam"],
        Article { id: "KB0003", title: "Printer troubleshooting", url: "https://kb.example.com/KB0003" },
    ),
    (
        &["locked", "lockout", "unlock"],
        Article { id: "KB0004", title: "Account locked out", url: "https://kb.example.com/KB0004" },
    ),
];

/// Input of `suggest`.
#[derive(Debug, Deserialize)]
pub struct SuggestIn {
    /// Ticket title.
    pub title: String,
    /// Ticket description.
    #[serde(default)]
    pub description: String,
}

/// Output of `suggest`.
#[derive(Debug, Serialize)]
pub struct SuggestOut {
    /// The best article, if any keyword matched.
    pub article: Option<Article>,
    /// How many keywords matched.
    pub score: u32,
}

/// Scores every article by how many of its keywords occur in the text.
pub fn suggest(input: SuggestIn) -> Result<SuggestOut, Error> {
    let text = format!("{} {}", input.title, input.description).to_lowercase();
    let words: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let mut best: Option<(u32, &Article)> = None;
    for (keywords, article) in CATALOGUE {
        let score = keywords.iter().filter(|k| words.contains(k)).count() as u32;
        if score > 0 && best.map_or(true, |(s, _)| score > s) {
            best = Some((score, article));
        }
    }
    match best {
        Some((score, article)) => {
            host::log(Level::Info, &format!("matched {} with score {}", article.id, score));
            Ok(SuggestOut { article: Some(article.clone()), score })
        }
        None => Ok(SuggestOut { article: None, score: 0 }),
    }
}

/// Input of `fetch`.
#[derive(Debug, Deserialize)]
pub struct FetchIn {
    /// Article id.
    pub id: String,
}

/// Reads an article through the `kb` connection.
pub fn fetch(input: FetchIn) -> Result<Value, Error> {
    if !input.id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(Error::new("bad_input", "article ids are alphanumeric"));
    }
    let resp = host::http(&HttpRequest {
        connection: "kb".into(),
        method: "GET".into(),
        path: format!("/articles/{}", input.id),
        headers: Default::default(),
        body: None,
    })?;
    match resp.status {
        200 => Ok(resp.body),
        404 => Err(Error::new("not_found", format!("no article {}", input.id))),
        429 | 500..=599 => Err(Error::retryable("unavailable", format!("knowledge base answered {}", resp.status))),
        s => Err(Error::new("kb_error", format!("knowledge base answered {}", s))),
    }
}

plugin!(manifest = "../manifest.json", actions = { "suggest" => suggest, "fetch" => fetch });

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::host::{set_stub, Stub};
    use switchboard_sdk::json;

    struct Quiet;
    impl Stub for Quiet {
        fn call(&mut self, op: &str, req: Value) -> Value {
            match op {
                "http" => json!({"ok": {"status": 200, "headers": {}, "body": {"path": req["path"]}}}),
                _ => json!({"ok": null}),
            }
        }
    }

    #[test]
    fn picks_the_article_with_most_keywords() {
        set_stub(Box::new(Quiet));
        let out = suggest(SuggestIn { title: "Forgot password".into(), description: "reset please".into() }).unwrap();
        assert_eq!(out.article.unwrap().id, "KB0001");
        assert_eq!(out.score, 3);
        assert!(suggest(SuggestIn { title: "Monitor flickers".into(), description: String::new() })
            .unwrap()
            .article
            .is_none());
    }

    #[test]
    fn fetch_goes_through_the_kb_connection() {
        set_stub(Box::new(Quiet));
        assert_eq!(fetch(FetchIn { id: "KB0002".into() }).unwrap(), json!({"path": "/articles/KB0002"}));
        assert_eq!(fetch(FetchIn { id: "../etc".into() }).unwrap_err().code, "bad_input");
    }

    #[test]
    fn manifest_lists_every_action() {
        let m = __switchboard_manifest();
        let names: Vec<&str> = m["actions"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["suggest", "fetch"]);
    }
}
