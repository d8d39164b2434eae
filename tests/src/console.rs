//! A web-console client for the tests: keeps its session cookie, follows no redirect
//! (so they can be asserted), sends forms.

use crate::Stand;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

/// A console client: keeps its session cookie, follows no redirect (so they can be
/// asserted), and sends forms.
pub struct Console {
    /// The client (no redirects followed).
    pub http: reqwest::Client,
    /// The server's URL.
    pub base: String,
    /// `sb_session=...` once signed in.
    pub cookie: Option<String>,
}

/// A console answer.
pub struct Page {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// The HTML.
    pub body: String,
}

impl Page {
    /// The redirect's target.
    pub fn location(&self) -> &str {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The CSRF token of the page's forms.
    pub fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("the page has a form with a CSRF token");
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').expect("the token's value ends")].to_string()
    }
}

impl Console {
    /// A client of the server at `base`, not signed in.
    pub fn new(base: &str) -> Self {
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("an HTTP client");
        Self { http, base: base.to_string(), cookie: None }
    }

    /// Sends with the session cookie.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", c),
            None => req,
        };
        let resp = req.send().await.expect("the console answers");
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        Page { status, headers, body: resp.text().await.expect("a body") }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    /// `POST path` with a form.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(self.http.post(format!("{}{path}", self.base)).form(form)).await
    }

    /// Signs in with `token`; keeps the cookie.
    pub async fn sign_in(&mut self, token: &str) -> Page {
        let page = self.post("/console/login", &[("token", token), ("next", "/console")]).await;
        if let Some(c) = page.headers.get(SET_COOKIE).and_then(|v| v.to_str().ok()) {
            self.cookie = c.split(';').next().map(String::from);
        }
        page
    }
}

/// A client signed in with `token`.
pub async fn signed_in(stand: &Stand, token: &str) -> Console {
    let mut console = Console::new(&stand.server.url);
    let page = console.sign_in(token).await;
    assert_eq!(page.status, 303, "{}", page.body);
    console
}
