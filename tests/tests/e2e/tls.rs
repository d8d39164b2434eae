//! HTTPS with `tls_cert` / `tls_key`: the server speaks TLS only, says HSTS, marks the
//! console's cookie Secure, and takes a renewed certificate on SIGHUP without a restart
//! (connections opened after it get the new one); a certificate that does not load stops
//! the start naming the file.

use std::time::{Duration, Instant};
use switchboard_tests::{loopback_certificate, write_config, Server, ADMIN};

/// A client that trusts only the CA `<name>-ca.pem` in `dir`, on fresh connections.
fn trusting(dir: &std::path::Path, name: &str) -> reqwest::Client {
    let ca = std::fs::read(dir.join(format!("{name}-ca.pem"))).unwrap();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_server_speaks_https_says_hsts_and_reloads_its_certificate_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    loopback_certificate(dir.path(), "first").unwrap();
    loopback_certificate(dir.path(), "second").unwrap();
    let (cert, key) = (dir.path().join("live.pem"), dir.path().join("live.key"));
    std::fs::copy(dir.path().join("first.pem"), &cert).unwrap();
    std::fs::copy(dir.path().join("first.key"), &key).unwrap();
    let extra = format!("tls_cert = \"{}\"\ntls_key = \"{}\"", cert.display(), key.display());
    let config = write_config(dir.path(), &extra).unwrap();
    let server = Server::start(&dir.path().join("data"), &config, &[]).unwrap();
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);

    let first = trusting(dir.path(), "first");
    let health = first.get(format!("{}/health/ready", server.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.headers()["strict-transport-security"], "max-age=31536000");
    // Plain HTTP on the same port is not served.
    let plain = reqwest::Client::new().get(server.url.replace("https://", "http://") + "/health").send().await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true), "no plain HTTP");
    // The console's session cookie is Secure.
    let signed = first
        .post(format!("{}/console/login", server.url))
        .form(&[("token", ADMIN), ("next", "/console")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    assert!(signed.headers()["set-cookie"].to_str().unwrap().contains("; Secure"));

    // A renewed certificate (another CA here, so the client can tell): SIGHUP, and new
    // connections get it.
    let second = trusting(dir.path(), "second");
    assert!(second.get(format!("{}/health", server.url)).send().await.is_err(), "not trusted before the reload");
    std::fs::copy(dir.path().join("second.pem"), &cert).unwrap();
    std::fs::copy(dir.path().join("second.key"), &key).unwrap();
    let hup = std::process::Command::new("kill").args(["-HUP", &server.child.id().to_string()]).status().unwrap();
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while second.get(format!("{}/health", server.url)).send().await.is_err() {
        assert!(Instant::now() < deadline, "the new certificate was not picked up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(first.get(format!("{}/health", server.url)).send().await.is_err(), "the old one is gone");

    // A broken file on the next SIGHUP: the current certificate stays.
    std::fs::write(&cert, "not a certificate").unwrap();
    std::process::Command::new("kill").args(["-HUP", &server.child.id().to_string()]).status().unwrap();
    for _ in 0..5 {
        assert_eq!(second.get(format!("{}/health", server.url)).send().await.unwrap().status(), 200);
    }

    // A start with a certificate that does not load stops, naming the file.
    let out = std::process::Command::new(switchboard_tests::binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data2"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("live.pem"), "{stderr}");
}
