//! Helpers for end-to-end tests: start real `switchboard` processes on loopback, talk
//! to them over HTTP, and run small local receivers.

pub mod browser;
pub mod console;
pub mod graph;
pub mod load;
pub mod oidc;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The admin token every test server gets.
pub const ADMIN: &str = "test-admin-token-0123456789";
/// An agent token.
pub const AGENT: &str = "test-agent-token-0123456789";
/// The signing secret of outbound webhooks.
pub const SECRET: &str = "test-signing-secret";
/// The integrator token in every test config.
pub const INTEGRATOR: &str = "test-integrator-token-0123456789";

/// Path of the switchboard binary built with this package (`switchboard-under-test`):
/// beside the running test or benchmark executable (tests run from `target/<profile>/deps`).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe has a directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(format!("switchboard-under-test{}", std::env::consts::EXE_SUFFIX))
}

/// Opens a sled store that a test closed a moment ago. sled releases its directory lock
/// only when its last I/O thread lets go of it, which on a loaded machine can come a
/// moment after the store was dropped (a CI run failed with `Locked`): this waits for
/// that, at most 10 s. A real second server must still be refused at once, so the wait
/// is here and not in `SledStore::open`.
pub async fn reopen_store(
    dir: &Path,
    durability: switchboard::store::Durability,
) -> switchboard::store::sled::SledStore {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match switchboard::store::sled::SledStore::open(dir, 8 << 20, durability) {
            Err(switchboard::store::Error::Locked { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            other => return other.expect("open the store"),
        }
    }
}

/// Copies a directory tree (a data directory, a fixture).
pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// Writes a config file with test tokens and secret into `dir`.
pub fn write_config(dir: &Path, extra: &str) -> Result<PathBuf> {
    let path = dir.join("switchboard.toml");
    let text = format!(
        "{extra}\n[secrets]\ndefault = \"{SECRET}\"\n\n[[tokens]]\nname = \"admin\"\ntoken = \"{ADMIN}\"\nrole = \"admin\"\n\n[[tokens]]\nname = \"agent-ann\"\ntoken = \"{AGENT}\"\nrole = \"agent\"\n\n[[tokens]]\nname = \"integrator-ivy\"\ntoken = \"{INTEGRATOR}\"\nrole = \"integrator\"\n"
    );
    std::fs::write(&path, text)?;
    Ok(path)
}

/// A server on a fresh data directory with the test config (plus `extra`), and clients
/// for its admin and agent tokens; everything goes when it is dropped.
pub struct Stand {
    /// The data directory and config.
    pub dir: tempfile::TempDir,
    /// The process.
    pub server: Server,
    /// Admin client.
    pub admin: Api,
    /// Agent client.
    pub agent: Api,
}

impl Stand {
    /// Starts one.
    pub fn start(extra: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = write_config(dir.path(), extra)?;
        let server = Server::start(&dir.path().join("data"), &config, &[])?;
        let (admin, agent) = (Api::new(&server.url, ADMIN), Api::new(&server.url, AGENT));
        Ok(Self { dir, server, admin, agent })
    }
}

/// A running server process; killed when dropped.
pub struct Server {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl Server {
    /// Starts `switchboard serve` on a free loopback port with the given data dir and
    /// config, and waits until it prints its address.
    pub fn start(data_dir: &Path, config: &Path, extra: &[&str]) -> Result<Self> {
        Self::start_on("127.0.0.1:0", data_dir, config, extra)
    }

    /// Like [`Server::start`], listening on `listen`.
    pub fn start_on(listen: &str, data_dir: &Path, config: &Path, extra: &[&str]) -> Result<Self> {
        Self::spawn(listen, data_dir, config, extra, None)
    }

    /// Like [`Server::start_on`], logging at `level` (`RUST_LOG`) into `log`.
    pub fn start_logged(
        listen: &str,
        data_dir: &Path,
        config: &Path,
        extra: &[&str],
        log: &Path,
        level: &str,
    ) -> Result<Self> {
        Self::spawn(listen, data_dir, config, extra, Some((log, level)))
    }

    fn spawn(listen: &str, data_dir: &Path, config: &Path, extra: &[&str], log: Option<(&Path, &str)>) -> Result<Self> {
        let (level, stderr) = match log {
            Some((path, level)) => (level, Stdio::from(std::fs::File::create(path)?)),
            None => ("warn", Stdio::inherit()),
        };
        let mut child = Command::new(binary())
            .args(["serve", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .arg("--config")
            .arg(config)
            .args(extra)
            .current_dir(repo())
            .env("RUST_LOG", level)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .context("spawn switchboard")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("listening on ") {
                        break url.to_string();
                    }
                }
                _ => {
                    let status = child.wait()?;
                    bail!("server exited before listening: {status}");
                }
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Self { child, url })
    }

    /// SIGKILL, no goodbye.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Posts `payload` to the inbound webhook endpoint `/hooks/{endpoint}` of the server at
/// `base`, signed now with `secret` (and with an `Idempotency-Key` when given).
pub async fn post_hook(
    http: &reqwest::Client,
    base: &str,
    endpoint: &str,
    secret: &str,
    payload: &Value,
    delivery: Option<&str>,
) -> reqwest::Result<reqwest::Response> {
    let body = serde_json::to_vec(payload).unwrap_or_default();
    let signature = switchboard::notify::sign(secret.as_bytes(), chrono::Utc::now().timestamp(), &body);
    let mut req = http
        .post(format!("{base}/hooks/{endpoint}"))
        .header("content-type", "application/json")
        .header("x-switchboard-signature", signature);
    if let Some(d) = delivery {
        req = req.header("idempotency-key", d);
    }
    req.body(body).send().await
}

/// A thin JSON client.
#[derive(Clone)]
pub struct Api {
    /// Base URL.
    pub url: String,
    /// Bearer token.
    pub token: String,
    http: reqwest::Client,
}

impl Api {
    /// A client for `url` using `token`.
    pub fn new(url: &str, token: &str) -> Self {
        // The server closes a keep-alive connection idle for `header_timeout_ms`; a client
        // that keeps idle connections longer may send a request on one just as it closes
        // ("connection closed before message completed": a test that paused to build the
        // plugins failed so). Give idle connections up well before.
        let http = reqwest::Client::builder()
            .pool_idle_timeout(std::time::Duration::from_millis(500))
            .build()
            .expect("a client with default TLS settings builds");
        Self { url: url.to_string(), token: token.to_string(), http }
    }

    /// Sends a request and returns status and JSON body (null when empty).
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
        let (status, _, value) = self.request(method, path, body, &[]).await?;
        Ok((status, value))
    }

    /// [`Api::call`] with extra request headers; also returns the response headers.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<(u16, reqwest::header::HeaderMap, Value)> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut req = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(&self.token);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(json!({"raw": String::from_utf8_lossy(&bytes)}))
        };
        Ok((status, headers, value))
    }

    /// Sends raw bytes.
    pub async fn raw(&self, method: &str, path: &str, body: Vec<u8>) -> Result<(u16, Value)> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let resp = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let value = resp.json().await.unwrap_or(Value::Null);
        Ok((status, value))
    }

    /// GET expecting 200.
    pub async fn get(&self, path: &str) -> Result<Value> {
        let (status, body) = self.call("GET", path, None).await?;
        if status != 200 {
            bail!("GET {path}: {status} {body}");
        }
        Ok(body)
    }

    /// POST expecting 2xx.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let (status, out) = self.call("POST", path, Some(body)).await?;
        if !(200..300).contains(&status) {
            bail!("POST {path}: {status} {out}");
        }
        Ok(out)
    }

    /// The `/metrics` text; an answer other than 2xx is an error.
    pub async fn metrics(&self) -> Result<String> {
        let resp = self.http.get(format!("{}/metrics", self.url)).bearer_auth(&self.token).send().await?;
        if !resp.status().is_success() {
            bail!("GET /metrics: {}", resp.status());
        }
        Ok(resp.text().await?)
    }

    /// The value of one series of `/metrics` (`name{labels}` exactly as rendered), 0
    /// when absent; an answer other than 2xx is an error, never a silent zero.
    pub async fn metric(&self, series: &str) -> Result<f64> {
        let text = self.metrics().await?;
        let line = text.lines().find(|l| l.strip_prefix(series).is_some_and(|rest| rest.starts_with(' ')));
        Ok(line.and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0))
    }

    /// Whether a durable timer is due and not fired yet (`timers_due` of `/health`, one
    /// index read: polling it does not load the server under test).
    pub async fn timers_due(&self) -> Result<bool> {
        let (status, body) = self.call("GET", "/health", None).await?;
        if status != 200 {
            bail!("GET /health: {status} {body}");
        }
        Ok(body["timers_due"] == true)
    }

    /// Polls until no run is pending or running and no timer is overdue, or the deadline
    /// passes.
    pub async fn wait_idle(&self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            // In the order work flows (a due timer makes a run pending, a pending run starts
            // running), so work moving on between two reads is never missed by both.
            // Timers due now (a parent's child count, a wait that ran out) are work too.
            let overdue = u8::from(self.timers_due().await?);
            let pending = self.get("/runs?status=pending&limit=1").await?["runs"].as_array().map_or(0, Vec::len);
            let running = self.get("/runs?status=running&limit=1").await?["runs"].as_array().map_or(0, Vec::len);
            if pending == 0 && running == 0 && overdue == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("runs still active after {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// An on-shift agent with capacity 10 in `groups`, for in-process tests.
pub fn agent(id: &str, groups: &[&str]) -> switchboard::team::Agent {
    switchboard::team::Agent {
        id: id.into(),
        name: id.into(),
        email: None,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        skills: vec![],
        capacity: 10,
        on_shift: true,
        manager: None,
        out_of_office: None,
    }
}

/// Seeds two groups and some agents through the API.
pub async fn seed_team(api: &Api) -> Result<()> {
    for g in ["network", "service-desk"] {
        api.post("/groups", &json!({"id": g, "name": g})).await?;
    }
    for (id, skills, capacity, on_shift) in
        [("alice", vec!["cisco"], 2, true), ("bob", vec![], 5, true), ("carol", vec!["cisco"], 5, false)]
    {
        api.post(
            "/agents",
            &json!({"id": id, "name": id, "groups": ["network"], "skills": skills, "capacity": capacity, "on_shift": on_shift}),
        )
        .await?;
    }
    Ok(())
}

/// A workflow for console tests: tickets whose title contains `word` get category
/// `hardware` and an internal comment "Triaged by triage".
pub fn printer_triage(word: &str) -> Value {
    json!({"id": "triage", "name": "Triage printers", "triggers": [{"on": "ticket.created"}],
        "conditions": {"field": "ticket.title", "op": "contains", "value": word},
        "steps": [{"id": "tag", "type": "set", "fields": {"category": "hardware"}},
                  {"id": "note", "type": "comment", "body": "Triaged by {{workflow.id}}", "internal": true}]})
}

/// Path of a plugin module built from `plugins/` (test-only plugins live in `dist/test/`).
/// Builds the plugins once per test process with `plugins/build.sh` if the file is missing.
pub fn plugin_wasm(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let dist = repo().join("plugins/dist");
    let path =
        if name == "hostile" { dist.join("test").join("hostile.wasm") } else { dist.join(format!("{name}.wasm")) };
    if !path.exists() {
        let built = BUILT.get_or_init(|| {
            let status = Command::new(repo().join("plugins/build.sh")).status().map_err(|e| e.to_string())?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("plugins/build.sh failed: {status}"))
            }
        });
        if let Err(e) = built {
            panic!("{e}");
        }
    }
    path
}

/// A throw-away OpenLDAP server (Debian's `slapd`) on a loopback port, seeded with
/// `dc=example,dc=com`, `uid=jdoe` and the group `cn=vpn`. Killed when dropped.
pub struct Slapd {
    child: Child,
    /// `ldap://127.0.0.1:<port>`.
    pub url: String,
    /// With TLS: the PEM of the CA that signed the server's certificate (StartTLS on `url`).
    pub ca_file: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

/// The directory manager's DN.
pub const LDAP_ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
/// Its password.
pub const LDAP_ADMIN_PW: &str = "ldap-admin-secret";

impl Slapd {
    /// Starts slapd with the standard schemas and a tiny seed (one person, one group).
    pub fn start() -> Result<Self> {
        let seed = "dn: dc=example,dc=com\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
                    dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n\n\
                    dn: uid=jdoe,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: jdoe\ncn: Jane Doe\nsn: Doe\nmail: jdoe@example.com\n\n\
                    dn: cn=vpn,dc=example,dc=com\nobjectClass: groupOfNames\ncn: vpn\nmember: cn=admin,dc=example,dc=com\n";
        Self::launch(None, false, seed, false)
    }

    /// Starts slapd as a stand-in for Active Directory: the AD attribute schema
    /// (`tests/ldap/ad.schema`), the memberof overlay keeping `memberOf` on users, and
    /// the seed users and groups of `tests/ldap/corp.ldif`. `port` None picks a free one.
    pub fn start_corp(port: Option<u16>) -> Result<Self> {
        let seed = std::fs::read_to_string(repo().join("tests/ldap/corp.ldif")).context("tests/ldap/corp.ldif")?;
        Self::launch(port, true, &seed, false)
    }

    /// Like [`Slapd::start_corp`], with StartTLS: a throw-away CA (made with `openssl`)
    /// signs the server's certificate for 127.0.0.1; [`Slapd::ca_file`] holds the CA.
    pub fn start_corp_tls() -> Result<Self> {
        let seed = std::fs::read_to_string(repo().join("tests/ldap/corp.ldif")).context("tests/ldap/corp.ldif")?;
        Self::launch(None, true, &seed, true)
    }

    /// A CA and a server certificate for 127.0.0.1 in `dir`; the slapd.conf lines using them.
    fn certificates(dir: &Path) -> Result<String> {
        loopback_certificate(dir, "server")?;
        let d = dir.display();
        Ok(format!("TLSCACertificateFile {d}/server-ca.pem\nTLSCertificateFile {d}/server.pem\nTLSCertificateKeyFile {d}/server.key\n"))
    }

    fn launch(port: Option<u16>, ad: bool, seed: &str, tls: bool) -> Result<Self> {
        if !Path::new("/usr/sbin/slapd").exists() {
            bail!("slapd is not installed: run tests/deps.sh (apt-get install slapd ldap-utils openssl)");
        }
        let dir = tempfile::tempdir()?;
        let port = match port {
            Some(p) => p,
            None => std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port(),
        };
        let d = dir.path().display();
        std::fs::create_dir_all(dir.path().join("db"))?;
        let (schema, modules, overlay) = if ad {
            (
                format!("include {}\n", repo().join("tests/ldap/ad.schema").display()),
                "moduleload memberof\n",
                "overlay memberof\nmemberof-group-oc group\nmemberof-member-ad member\nmemberof-memberof-ad memberOf\nmemberof-refint true\n",
            )
        } else {
            (String::new(), "", "")
        };
        let tls_conf = if tls { Self::certificates(dir.path())? } else { String::new() };
        let conf = format!(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\ninclude /etc/ldap/schema/inetorgperson.schema\n{schema}\
             modulepath /usr/lib/ldap\nmoduleload back_mdb\n{modules}pidfile {d}/slapd.pid\n{tls_conf}\
             database mdb\nmaxsize 10485760\nsuffix \"dc=example,dc=com\"\nrootdn \"{LDAP_ADMIN_DN}\"\nrootpw {LDAP_ADMIN_PW}\ndirectory {d}/db\n{overlay}"
        );
        std::fs::write(dir.path().join("slapd.conf"), conf)?;
        let url = format!("ldap://127.0.0.1:{port}");
        let child = Command::new("/usr/sbin/slapd")
            .args(["-f", &format!("{d}/slapd.conf"), "-h", &format!("{url}/"), "-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start slapd")?;
        let ca_file = tls.then(|| dir.path().join("server-ca.pem"));
        let server = Self { child, url, ca_file, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ok = Command::new("ldapwhoami")
                .args(["-x", "-H", &server.url, "-D", LDAP_ADMIN_DN, "-w", LDAP_ADMIN_PW])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                break;
            }
            if Instant::now() > deadline {
                bail!("slapd did not answer on {} within 10 s (port taken?)", server.url);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        server.ldap("ldapadd", seed).context("ldapadd of the seed entries")?;
        Ok(server)
    }

    /// Runs an ldap-utils command (`ldapadd`, `ldapmodify`) as the directory manager with `ldif` on stdin.
    pub fn ldap(&self, tool: &str, ldif: &str) -> Result<()> {
        let mut cmd = Command::new(tool)
            .args(["-x", "-H", &self.url, "-D", LDAP_ADMIN_DN, "-w", LDAP_ADMIN_PW])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        use std::io::Write as _;
        cmd.stdin.take().context("stdin")?.write_all(ldif.as_bytes())?;
        if !cmd.wait()?.success() {
            bail!("{tool} failed");
        }
        Ok(())
    }

    /// Subtree search as the directory manager; the entries as LDIF text (`ldapsearch -LLL`).
    pub fn search(&self, filter: &str, attrs: &[&str]) -> Result<String> {
        let out = Command::new("ldapsearch")
            .args(["-x", "-LLL", "-o", "ldif-wrap=no", "-H", &self.url, "-D", LDAP_ADMIN_DN, "-w", LDAP_ADMIN_PW])
            .args(["-b", "dc=example,dc=com", filter])
            .args(attrs)
            .output()?;
        if !out.status.success() {
            bail!("ldapsearch {filter}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CPU model and core count, for benchmark reports.
pub fn machine() -> (String, usize) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    (cpu, std::thread::available_parallelism().map_or(0, |n| n.get()))
}

/// A receiver that answers 503 until it is told to recover, counting hits.
pub async fn flaky_receiver(
) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let (up, hits) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let (up2, hits2) = (up.clone(), hits.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let (up, hits) = (up2.clone(), hits2.clone());
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                if up.load(Ordering::SeqCst) {
                    axum::http::StatusCode::OK
                } else {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let url = format!("http://{}/hook", listener.local_addr().expect("its address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, up, hits)
}

/// A throw-away CA and a certificate for 127.0.0.1 it signed (openssl, valid 2 days), in
/// `dir`: `<name>-ca.pem`, `<name>.pem` and `<name>.key`.
pub fn loopback_certificate(dir: &Path, name: &str) -> Result<()> {
    let d = dir.display();
    std::fs::write(
        dir.join(format!("{name}.ext")),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )?;
    for args in [
        format!("req -x509 -newkey rsa:2048 -nodes -keyout {d}/{name}-ca.key -out {d}/{name}-ca.pem -days 2 -subj /CN=switchboard-test-ca-{name}"),
        format!("req -newkey rsa:2048 -nodes -keyout {d}/{name}.key -out {d}/{name}.csr -subj /CN=127.0.0.1"),
        format!("x509 -req -in {d}/{name}.csr -CA {d}/{name}-ca.pem -CAkey {d}/{name}-ca.key -CAcreateserial -out {d}/{name}.pem -days 2 -extfile {d}/{name}.ext"),
    ] {
        let out = Command::new("openssl").args(args.split(' ')).output().context("openssl (apt-get install openssl)")?;
        if !out.status.success() {
            bail!("openssl {args}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok(())
}
