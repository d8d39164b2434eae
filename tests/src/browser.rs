//! A real browser for the console tests: Debian's headless Chromium driven through
//! chromedriver (WebDriver) with fantoccini. Each [`Browser`] has its own chromedriver on
//! a free loopback port and a fresh profile directory; both go when it is dropped.

use anyhow::{bail, Context, Result};
use fantoccini::{Client, ClientBuilder, Locator};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian puts the browser and its driver.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether this machine has the browser (`tests/deps.sh` installs it).
pub fn available() -> bool {
    Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()
}

/// A headless Chromium session.
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
    /// Screenshots go here (kept after the test when `SWITCHBOARD_SCREENSHOTS` names a dir).
    pub shots: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium `width` × `height` pixels.
    pub async fn start(width: u32, height: u32, shots: &Path) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = Driver(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("start chromedriver")?,
        );
        let profile = tempfile::tempdir()?;
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match reqwest::get(format!("{url}/status")).await {
                Ok(r) if r.status().is_success() => break,
                _ if Instant::now() > deadline => bail!("chromedriver did not answer on {url}"),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--disable-dev-shm-usage".into(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={width},{height}"),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), serde_json::json!({"binary": CHROMIUM, "args": args}));
        // Two TLS providers are linked (ring for the engine, aws-lc for fantoccini's
        // connector); the WebDriver connection is plain HTTP, but rustls wants one chosen.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = ClientBuilder::rustls()?.capabilities(caps).connect(&url).await.context("WebDriver session")?;
        let mut browser = Self { client, _driver: driver, _profile: profile, shots: shots.to_path_buf() };
        browser.resize(width, height).await?;
        Ok(browser)
    }

    /// Sets the window's size.
    pub async fn resize(&mut self, width: u32, height: u32) -> Result<()> {
        self.client.set_window_size(width, height).await?;
        Ok(())
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.client.goto(url).await?;
        Ok(())
    }

    /// Types `text` into the field labelled by CSS `selector`.
    pub async fn fill(&self, selector: &str, text: &str) -> Result<()> {
        let field = self.client.find(Locator::Css(selector)).await.with_context(|| format!("find {selector}"))?;
        field.clear().await?;
        field.send_keys(text).await?;
        Ok(())
    }

    /// Clicks the element `selector` — a link or a form's button — and waits until the
    /// page it loads has replaced this one (WebDriver's click may return before a form's
    /// navigation has happened: the old page is marked, and the wait is for a document
    /// without the mark that has finished loading).
    pub async fn click(&self, selector: &str) -> Result<()> {
        let element = self.client.find(Locator::Css(selector)).await.with_context(|| format!("find {selector}"))?;
        self.eval("document.documentElement.dataset.left = '1'; return true").await?;
        element.click().await?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let state = self
                .eval("return [document.documentElement.dataset.left || '', document.readyState]")
                .await
                .unwrap_or_default();
            if state[0] == "" && state[1] == "complete" {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("clicking {selector} did not load a new page: {state}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The text of the first element `selector`.
    pub async fn text(&self, selector: &str) -> Result<String> {
        Ok(self.client.find(Locator::Css(selector)).await.with_context(|| format!("find {selector}"))?.text().await?)
    }

    /// The page's path (and query).
    pub async fn path(&self) -> Result<String> {
        let url = self.client.current_url().await?;
        Ok(match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        })
    }

    /// The page's HTML.
    pub async fn source(&self) -> Result<String> {
        Ok(self.client.source().await?)
    }

    /// Saves a PNG screenshot as `<shots>/<name>.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let png = self.client.screenshot().await?;
        std::fs::create_dir_all(&self.shots)?;
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Evaluates `script` in the page (WebDriver's script channel, not the page's own
    /// scripts: the console serves none) and returns its value.
    pub async fn eval(&self, script: &str) -> Result<serde_json::Value> {
        Ok(self.client.execute(script, Vec::new()).await?)
    }

    /// Ends the session and the browser.
    pub async fn close(self) -> Result<()> {
        self.client.clone().close().await?;
        Ok(())
    }
}

/// chromedriver; killed when this goes (also when starting the session failed). A
/// closed session has already ended its browser.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
