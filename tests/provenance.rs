//! `provenance.json`: what a run directory records to re-create its session,
//! and the warnings of `--resume` and `--replay` when an input changed.

mod common;
use common::*;
use sha2::{Digest, Sha256};
use std::path::Path;

fn sha256(path: &Path) -> String {
    Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn provenance(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("provenance.json")).unwrap()).unwrap()
}

/// A config reading the table copied to `dir/table.csv`.
fn config_with_own_table(dir: &Path) -> std::path::PathBuf {
    let table = dir.join("table.csv");
    std::fs::copy(common::table(), &table).unwrap();
    let cfg = dir.join("own-table.toml");
    std::fs::write(
        &cfg,
        format!(
            "[evaluator.nb201]\ntable = \"{}\"\n[kb]\ndir = \"kb\"\n",
            table.display()
        ),
    )
    .unwrap();
    cfg
}

fn seki_with(dir: &Path, cfg: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_seki"));
    c.current_dir(dir)
        .arg("--config")
        .arg(cfg)
        .env_remove("RUST_LOG");
    c
}

#[test]
fn resume_warns_of_a_changed_table_and_notes_a_missing_record() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config_with_own_table(d.path());
    let table = d.path().join("table.csv");
    ok(seki_with(d.path(), &cfg).args([
        "search",
        "--strategy",
        "rea",
        "--budget",
        "5",
        "--seed",
        "1",
        "--run-dir",
        "r",
        "--kb-records",
        "none",
        "-q",
    ]));
    let p = provenance(&d.path().join("r"));
    let old = sha256(&table);
    assert_eq!(p["inputs"]["nb201 table"]["sha256"], old.as_str(), "{p}");
    assert_eq!(p["seki_version"], env!("CARGO_PKG_VERSION"));
    assert!(!p["git_commit"].as_str().unwrap().is_empty(), "{p}");
    // Nothing changed: no warning.
    let (ok_, _, err) = run(seki_with(d.path(), &cfg).args(["search", "--resume", "r", "-q"]));
    assert!(ok_, "{err}");
    assert!(!err.contains("warning"), "{err}");
    // One row of the table changes: the resumed session names it, old -> new.
    let text = std::fs::read_to_string(&table).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    // (its test accuracy after 200 epochs, which no search sees)
    let (row, last) = lines[1].rsplit_once(',').unwrap();
    let bumped: f64 = last.parse::<f64>().unwrap() + 0.0001;
    lines[1] = format!("{row},{bumped:.4}");
    std::fs::write(&table, lines.join("\n") + "\n").unwrap();
    let new = sha256(&table);
    let (ok_, _, err) = run(seki_with(d.path(), &cfg).args(["search", "--resume", "r", "-q"]));
    assert!(ok_, "a changed table is a warning, not an error: {err}");
    assert!(
        err.contains("warning")
            && err.contains(&format!(
                "nb201 table ({}): {} -> {}",
                table.display(),
                &old[..16],
                &new[..16]
            )),
        "{err}"
    );
    assert!(!err.contains("git commit"), "{err}");
    // The record keeps what the session started with.
    assert_eq!(
        provenance(&d.path().join("r"))["inputs"]["nb201 table"]["sha256"],
        old.as_str()
    );
    // A run directory from before provenance.json: a note, no check.
    std::fs::remove_file(d.path().join("r/provenance.json")).unwrap();
    let (ok_, _, err) = run(seki_with(d.path(), &cfg).args(["search", "--resume", "r", "-q"]));
    assert!(ok_, "{err}");
    assert!(
        err.contains("note:") && err.contains("no provenance.json") && !err.contains("warning"),
        "{err}"
    );
}

#[test]
fn a_session_reading_the_knowledge_base_records_it_and_resume_and_replay_name_a_change() {
    let d = tempfile::tempdir().unwrap();
    // A knowledge base with a few records, then a seki session that reads
    // it and writes nothing to it (LLM replies from the recorded fixture).
    ok(seki(d.path()).args([
        "search",
        "--strategy",
        "rea",
        "--budget",
        "4",
        "--run-dir",
        "fill",
        "-q",
    ]));
    let fixture = root()
        .join("tests/fixtures/seki-nb201-replies.jsonl")
        .display()
        .to_string();
    ok(seki(d.path()).args([
        "search",
        "--strategy",
        "seki",
        "--budget",
        "3",
        "--run-dir",
        "s",
        "--kb-records",
        "none",
        "--llm-replay",
        &fixture,
        "-q",
    ]));
    let p = provenance(&d.path().join("s"));
    assert!(p["inputs"]["knowledge base"]["sha256"].is_string(), "{p}");
    // Recorded replies: no model was used, none is recorded.
    assert!(
        !p["inputs"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("model")),
        "{p}"
    );
    // Another session adds to the knowledge base.
    ok(seki(d.path()).args([
        "search",
        "--strategy",
        "rea",
        "--budget",
        "4",
        "--seed",
        "9",
        "--run-dir",
        "more",
        "-q",
    ]));
    let (_, _, err) =
        run(seki(d.path()).args(["search", "--resume", "s", "--llm-replay", &fixture, "-q"]));
    assert!(
        err.contains("warning") && err.contains("knowledge base ("),
        "{err}"
    );
    // A replay compares too, and records its own inputs.
    let (_, _, err) = run(seki(d.path()).args(["search", "--replay", "s", "--run-dir", "again"]));
    assert!(
        err.contains("warning") && err.contains("knowledge base ("),
        "{err}"
    );
    let p = provenance(&d.path().join("again"));
    assert_eq!(
        p["inputs"]["nb201 table"]["sha256"],
        sha256(&common::table()).as_str()
    );
}
