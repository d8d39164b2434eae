//! Data-driven tests of the workflow language: every shipped workflow validates, and
//! every file in `workflows/invalid/` fails with exactly the errors recorded beside it
//! in `<name>.expected`. Run with `BLESS=1` to rewrite the expectations after a
//! deliberate change, then review the diff.

#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use std::path::PathBuf;
use std::process::Command;
use switchboard_tests::{binary, repo};

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

#[test]
fn cli_validate_reports_missing_file() {
    let out = Command::new(binary()).args(["validate", "no/such/file.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/file.json: no such file"));
}
