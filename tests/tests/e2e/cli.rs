//! The command line as a user runs it, and the data-driven tests of the workflow
//! language: every shipped workflow validates, and every file in `workflows/invalid/`
//! fails with exactly the errors recorded beside it in `<name>.expected`. Run with
//! `BLESS=1` to rewrite the expectations after a deliberate change, then review the diff.

use std::path::PathBuf;
use std::process::Command;
use switchboard_tests::{binary, repo, write_config, Server};

fn json_files(dir: PathBuf) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn shipped_workflows_are_valid() {
    let files = json_files(repo().join("workflows"));
    assert!(files.len() >= 3, "the demo ships at least three workflows");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        if let Err(errors) = switchboard::workflow::validate_str(&text) {
            panic!("{}: {errors:#?}", file.display());
        }
    }
}

#[test]
fn invalid_workflows_fail_with_the_recorded_errors() {
    let bless = std::env::var_os("BLESS").is_some();
    let files = json_files(repo().join("workflows/invalid"));
    assert!(files.len() >= 5);
    let mut mismatches = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let errors = switchboard::workflow::validate_str(&text).expect_err("fixture must be invalid");
        let actual: String = errors.iter().map(|e| format!("{e}\n")).collect();
        let expected_path = file.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            mismatches.push(format!("{}:\n--- expected\n{expected}--- actual\n{actual}", file.display()));
        }
    }
    assert!(mismatches.is_empty(), "{}\n(run with BLESS=1 to accept)", mismatches.join("\n"));
}

#[test]
fn cli_validate_names_file_and_pointer_and_exits_2() {
    let file = repo().join("workflows/invalid/unknown-step-reference.json");
    let out = Command::new(binary()).arg("validate").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for pointer in ["/steps/0/then", "/steps/1/next", "/steps/2/id"] {
        assert!(
            stderr.contains(&format!("unknown-step-reference.json:{pointer}: ")),
            "missing {pointer} in:\n{stderr}"
        );
    }
}

#[test]
fn cli_validate_accepts_the_demo_directory() {
    let out = Command::new(binary()).arg("validate").arg(repo().join("workflows")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("route-network.json: ok"), "{stdout}");
}

/// `validate` prints the next five fire times of each schedule, in UTC and local time.
#[test]
fn cli_validate_prints_the_next_fire_times_of_schedules() {
    let out =
        Command::new(binary()).arg("validate").arg(repo().join("workflows/backlog-summary.json")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("next fire times (Europe/Berlin):"), "{stdout}");
    let times: Vec<&str> = stdout.lines().filter(|l| l.starts_with("    ")).collect();
    assert_eq!(times.len(), 5, "{stdout}");
    // Weekdays at 08:00 Berlin: 07:00Z in winter, 06:00Z in summer.
    for line in times {
        assert!(line.contains("T08:00:00+0"), "{line}");
        assert!(!line.contains("Saturday") && !line.contains("Sunday"), "{line}");
    }
}

#[test]
fn cli_validate_reports_missing_file() {
    let out = Command::new(binary()).args(["validate", "no/such/file.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/file.json: no such file"));
}

#[test]
fn cli_apply_into_a_data_dir_then_the_server_serves_those_workflows() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = Command::new(binary())
        .arg("apply")
        .arg(repo().join("workflows"))
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("route-network revision 1"));
    // Applying the same files again changes nothing (no new revision).
    let again = Command::new(binary())
        .arg("apply")
        .arg(repo().join("workflows"))
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("route-network revision 1"));
    // An invalid directory applies nothing and says why.
    let bad = Command::new(binary())
        .arg("apply")
        .arg(repo().join("workflows/invalid"))
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown-fields.json:/conditons"));

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let config = switchboard_tests::write_config(dir.path(), "").unwrap();
        let server = switchboard_tests::Server::start(&data, &config, &[]).unwrap();
        let api = switchboard_tests::Api::new(&server.url, switchboard_tests::ADMIN);
        let wf = api.get("/workflows").await.unwrap();
        let ids: Vec<&str> = wf["workflows"].as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap()).collect();
        assert!(ids.contains(&"route-network") && ids.contains(&"p1-major-incident"), "{ids:?}");
    });
}

#[test]
fn a_second_server_on_the_same_data_dir_exits_3_and_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let config = switchboard_tests::write_config(dir.path(), "").unwrap();
    let data = dir.path().join("data");
    let mut first = switchboard_tests::Server::start(&data, &config, &[]).unwrap();
    let second = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(3), "{}", String::from_utf8_lossy(&second.stderr));
    assert!(String::from_utf8_lossy(&second.stderr).contains("in use by another process"));
    assert_eq!(first.terminate(), Some(0), "SIGTERM drains and exits 0");
}

#[test]
fn a_broken_config_file_is_exit_2_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\nworkers = \"many\"\n").unwrap();
    let out = Command::new(binary()).args(["serve", "--config"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml") && stderr.contains("line 2"), "{stderr}");
    let none = Command::new(binary()).args(["serve", "--data-dir"]).arg(dir.path().join("d")).output().unwrap();
    assert_eq!(none.status.code(), Some(2), "no tokens configured");
    assert!(String::from_utf8_lossy(&none.stderr).contains("no API tokens configured"));
}

/// Starts `serve` and expects it to refuse: returns the exit code and stderr. A server
/// that starts after all is killed and the test fails.
fn serve_must_refuse(data: &std::path::Path, config: &std::path::Path) -> (Option<i32>, String) {
    let mut child = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .arg("--config")
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (status.code(), err);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server started on a damaged data directory");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[tokio::test]
async fn a_damaged_data_file_that_lost_committed_tickets_is_refused_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let config = switchboard_tests::write_config(dir.path(), "").unwrap();
    let data = dir.path().join("data");
    let mut server = switchboard_tests::Server::start(&data, &config, &[]).unwrap();
    let api = switchboard_tests::Api::new(&server.url, switchboard_tests::ADMIN);
    for i in 0..300 {
        api.post("/tickets", &serde_json::json!({"title": format!("t{i}"), "requester": "ann"})).await.unwrap();
    }
    assert_eq!(server.terminate(), Some(0));
    assert_eq!(std::fs::read_to_string(data.join("committed")).unwrap().split_whitespace().next(), Some("300"));
    // Lose the end of sled's log, as a damaged disk or a bad copy would.
    let db = data.join("db");
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&db).unwrap().set_len(len / 3).unwrap();
    let (code, err) = serve_must_refuse(&data, &config);
    assert_eq!(code, Some(3), "{err}");
    // Either sled notices (its own corruption error) or it recovers a prefix and the
    // watermark shows what is missing; it must never start on the remains.
    if err.contains("is damaged") {
        assert!(err.contains("but T-300 had been committed"), "{err}");
    } else {
        assert!(err.contains("corrupt"), "{err}");
    }

    // A regular file where the data directory should be is named as such.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let (code, err) = serve_must_refuse(&file, &config);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("not a directory"), "{err}");
}

/// Regressions: a typo in `--data-dir` made an empty store and an empty report (exit 0);
/// a server that is down or a URL without its scheme gave raw client errors; the same
/// 401 was exit 1 for `apply` and 2 for `explain`; ids went into URLs unescaped
/// (`explain x/../y` asked for ticket `y`).
#[tokio::test]
async fn the_cli_says_plainly_what_is_wrong_with_one_exit_code_rule() {
    let run = |args: &[&str]| {
        let out = Command::new(binary()).args(args).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("dta");
    let (code, err) = run(&["report", "--data-dir", typo.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no Switchboard data directory"), "{err}");
    assert!(!typo.exists(), "nothing was created");

    let (code, err) = run(&["report", "--server", "127.0.0.1:9", "--token", "whatever-0123456789"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("needs its scheme, e.g. http://127.0.0.1:9"), "{err}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{closed}");
    let (code, err) = run(&["report", "--server", &url, "--token", "whatever-0123456789"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&format!("connection refused to {url}")), "{err}");

    let config = write_config(dir.path(), "").unwrap();
    let server = Server::start(&dir.path().join("data"), &config, &[]).unwrap();
    let workflows = repo().join("workflows");
    let bad_token = "not-a-token-0123456789";
    let (apply, err_a) = run(&["apply", workflows.to_str().unwrap(), "--server", &server.url, "--token", bad_token]);
    let (explain, err_e) = run(&["explain", "T-1", "--server", &server.url, "--token", bad_token]);
    assert_eq!((apply, explain), (Some(2), Some(2)), "{err_a}\n{err_e}");
    assert!(err_a.contains("401") && err_e.contains("401"), "{err_a}\n{err_e}");
    let (code, err) = run(&["explain", "x/../y", "--server", &server.url, "--token", switchboard_tests::ADMIN]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("x/../y") && err.contains("not found"), "{err}");
}

/// Configuration as code: `apply` publishes a directory's workflows, SLA calendars and
/// policies and webhook endpoints (and plugin grants); `validate` checks those files too,
/// naming file and pointer. The desk commands list and show tickets, dry-run a file,
/// replay it, and start a workflow, against a running server.
#[tokio::test]
async fn apply_is_configuration_as_code_and_the_desk_commands_work_against_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "").unwrap();
    let server = Server::start(&dir.path().join("data"), &config, &[]).unwrap();
    let setup = dir.path().join("setup");
    for sub in ["sla", "webhooks", "plugins"] {
        std::fs::create_dir_all(setup.join(sub)).unwrap();
    }
    std::fs::copy(repo().join("workflows/sla/standard.json"), setup.join("sla/standard.json")).unwrap();
    std::fs::copy(
        repo().join("workflows/webhooks/monitoring-alert.json"),
        setup.join("webhooks/monitoring-alert.json"),
    )
    .unwrap();
    std::fs::copy(repo().join("workflows/plugins/m365.json"), setup.join("plugins/m365.json")).unwrap();
    let greet = serde_json::json!({"id": "greet", "name": "greet", "triggers": [{"on": "ticket.created"}, {"on": "manual"}],
        "steps": [{"id": "hi", "type": "comment", "internal": false, "body": "Hello"}]});
    std::fs::write(setup.join("greet.json"), greet.to_string()).unwrap();
    let cli = |args: &[&str]| {
        let out = Command::new(binary()).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let remote = ["--server", server.url.as_str(), "--token", switchboard_tests::ADMIN];

    // A mistake in an SLA file is found by validate, with file and pointer, and applies nothing.
    let mut broken: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(setup.join("sla/standard.json")).unwrap()).unwrap();
    broken["policies"][0]["warnings"] = serde_json::json!([150]);
    std::fs::write(setup.join("sla/broken.json"), broken.to_string()).unwrap();
    let (code, _, err) = cli(&["validate", setup.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("broken.json:/policies/0/warnings/0"), "{err}");
    let (code, _, err) = cli(&[&["apply", setup.to_str().unwrap()][..], &remote].concat());
    assert_eq!(code, Some(2), "{err}");
    std::fs::remove_file(setup.join("sla/broken.json")).unwrap();

    let (code, out, err) = cli(&["validate", setup.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("standard.json: ok (1 calendar(s), 1 SLA policy(ies))"), "{out}");
    assert!(out.contains("monitoring-alert.json: ok (webhook monitoring-alert)"), "{out}");
    let (code, out, err) = cli(&[&["apply", setup.to_str().unwrap()][..], &remote].concat());
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("calendar") && out.contains("SLA policy") && out.contains("webhook monitoring-alert"),
        "{out}"
    );
    assert!(out.contains("greet revision 1"), "{out}");
    assert!(err.contains("plugin `m365` is not installed; its grants were skipped"), "{err}");
    let api = switchboard_tests::Api::new(&server.url, switchboard_tests::ADMIN);
    let sla = api.get("/sla").await.unwrap();
    assert!(sla.to_string().contains("berlin-office"), "{sla}");
    assert_eq!(api.get("/webhooks/monitoring-alert").await.unwrap()["id"], "monitoring-alert");

    // Desk commands.
    let created = api.post("/tickets", &serde_json::json!({"title": "Printer jam", "requester": "ann"})).await.unwrap();
    let id = created["ticket"]["id"].as_str().unwrap().to_string();
    api.wait_idle(std::time::Duration::from_secs(10)).await.unwrap();
    let (code, out, err) = cli(&[&["tickets", "list"][..], &remote].concat());
    assert_eq!(code, Some(0), "{err}");
    assert!(out.lines().any(|l| l.starts_with(&id) && l.contains("Printer jam")), "{out}");
    let (code, out, _) = cli(&[&["tickets", "show", &id][..], &remote].concat());
    assert_eq!(code, Some(0));
    assert!(out.contains("reply by workflow:greet") && out.contains("Hello"), "{out}");
    let (code, out, _) = cli(&[&["tickets", "show", "T-999"][..], &remote].concat());
    assert_eq!(code, Some(2), "{out}");
    let file = setup.join("greet.json");
    let (code, out, err) = cli(&[&["dry-run", file.to_str().unwrap(), "--ticket", &id][..], &remote].concat());
    assert_eq!(code, Some(0), "{err}");
    let dry: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(dry["comments"][0]["body"], "Hello");
    let mut quiet = greet.clone();
    quiet["steps"][0]["body"] = serde_json::json!("Hi there");
    std::fs::write(setup.join("quiet.json"), quiet.to_string()).unwrap();
    let quiet_file = setup.join("quiet.json");
    let (code, out, err) = cli(&[&["replay", quiet_file.to_str().unwrap()][..], &remote].concat());
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("1 differ") && out.contains("comments: would"), "{out}");
    let (code, out, err) = cli(&[&["start", "greet", "--ticket", &id][..], &remote].concat());
    assert_eq!(code, Some(0), "{err}");
    assert!(out.trim().starts_with("R-"), "{out}");
}
