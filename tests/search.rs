//! `seki search`: sessions, run directories, resume after a kill.

mod common;
use common::*;
use std::io::BufRead;
use std::time::{Duration, Instant};

fn evaluations(journal: &str) -> Vec<(u64, String, f64)> {
    journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "evaluation")
        .map(|v| {
            (
                v["n"].as_u64().unwrap(),
                v["arch"].as_str().unwrap().to_string(),
                v["score"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect()
}

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn search_writes_run_dir_and_kb_records() {
    let d = tempfile::tempdir().unwrap();
    let out = ok(seki(d.path()).args([
        "search",
        "--strategy",
        "rea",
        "--budget",
        "40",
        "--seed",
        "3",
        "--run-dir",
        "run",
        "--json",
    ]));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["evaluations"], 40);
    let best: serde_json::Value =
        serde_json::from_str(&read(&d.path().join("run/best.json"))).unwrap();
    assert_eq!(best["arch"], summary["best"]["arch"]);
    assert!(best["score"].as_f64().unwrap() > 60.0);
    let on_disk: serde_json::Value =
        serde_json::from_str(&read(&d.path().join("run/summary.json"))).unwrap();
    assert_eq!(on_disk["best"], summary["best"]);
    let cfg = read(&d.path().join("run/config.toml"));
    assert!(
        cfg.contains("seed = 3") && cfg.contains("strategy = \"rea\""),
        "{cfg}"
    );
    let evs = evaluations(&read(&d.path().join("run/journal.jsonl")));
    assert_eq!(evs.len(), 40);
    // The best is the highest score in the journal.
    let max = evs.iter().map(|e| e.2).fold(f64::MIN, f64::max);
    assert_eq!(best["score"].as_f64().unwrap(), max);
    // Improvements went to the knowledge base, the last one being the best.
    let list = ok(seki(d.path()).args(["kb", "list", "--json"]));
    let first: serde_json::Value = serde_json::from_str(list.lines().next().unwrap()).unwrap();
    assert_eq!(first["arch"], best["arch"]);
    assert_eq!(first["provenance"]["session"], summary["session"]);
    assert!(summary["session"].as_str().unwrap().starts_with("run-"));
    // No architecture was evaluated twice.
    let mut archs: Vec<String> = evs.iter().map(|e| e.1.clone()).collect();
    archs.sort();
    archs.dedup();
    assert_eq!(archs.len(), 40);
}

#[test]
fn same_seed_same_session_different_seed_different_session() {
    let d = tempfile::tempdir().unwrap();
    for (dir, seed) in [("a", "5"), ("b", "5"), ("c", "6")] {
        ok(seki(d.path()).args([
            "search",
            "--budget",
            "30",
            "--seed",
            seed,
            "--run-dir",
            dir,
            "--kb-records",
            "none",
            "-q",
        ]));
    }
    let a = evaluations(&read(&d.path().join("a/journal.jsonl")));
    let b = evaluations(&read(&d.path().join("b/journal.jsonl")));
    let c = evaluations(&read(&d.path().join("c/journal.jsonl")));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn resume_after_sigkill_matches_uninterrupted_run() {
    let d = tempfile::tempdir().unwrap();
    let budget = "400";
    ok(seki(d.path()).args([
        "search",
        "--strategy",
        "random",
        "--budget",
        budget,
        "--seed",
        "11",
        "--run-dir",
        "whole",
        "--kb-records",
        "none",
        "-q",
    ]));

    let mut child = seki(d.path())
        .args([
            "search",
            "--strategy",
            "random",
            "--budget",
            budget,
            "--seed",
            "11",
            "--run-dir",
            "killed",
            "--kb-records",
            "none",
            "-q",
        ])
        .spawn()
        .unwrap();
    let journal = d.path().join("killed/journal.jsonl");
    let t = Instant::now();
    loop {
        let lines = std::fs::File::open(&journal)
            .map(|f| std::io::BufReader::new(f).lines().count())
            .unwrap_or(0);
        if lines >= 50 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the session never got going"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = evaluations(&read(&journal));
    assert!(
        partial.len() < 400,
        "the kill came too late to test anything"
    );
    assert!(!d.path().join("killed/summary.json").exists());

    let out = ok(seki(d.path()).args(["search", "--resume", "killed", "--json"]));
    let resumed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let whole: serde_json::Value =
        serde_json::from_str(&read(&d.path().join("whole/summary.json"))).unwrap();
    assert_eq!(resumed["best"], whole["best"]);
    assert_eq!(resumed["evaluations"], whole["evaluations"]);
    assert_eq!(resumed["duplicates"], whole["duplicates"]);
    let a = evaluations(&read(&d.path().join("whole/journal.jsonl")));
    let b = evaluations(&read(&journal));
    assert_eq!(a.len(), b.len());
    assert!(a == b, "the resumed session evaluated other architectures");
}

#[test]
fn resume_from_a_torn_journal_matches_uninterrupted_run() {
    let d = tempfile::tempdir().unwrap();
    ok(seki(d.path()).args([
        "search",
        "--budget",
        "60",
        "--seed",
        "2",
        "--run-dir",
        "whole",
        "--kb",
        "kb1",
        "-q",
    ]));
    // Simulate a crash after 25 evaluations, mid-write of the next line.
    cut_run(&d.path().join("whole"), &d.path().join("cut"), 26, 0.5);
    let out = ok(seki(d.path()).args(["search", "--resume", "cut", "--kb", "kb2", "--json"]));
    let resumed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let whole: serde_json::Value =
        serde_json::from_str(&read(&d.path().join("whole/summary.json"))).unwrap();
    assert_eq!(resumed["best"], whole["best"]);
    assert_eq!(
        evaluations(&read(&d.path().join("whole/journal.jsonl"))),
        evaluations(&read(&d.path().join("cut/journal.jsonl")))
    );
    // The knowledge base written across the crash holds the same improvements.
    let ids = |kb: &str| -> Vec<String> {
        ok(seki(d.path()).args(["kb", "list", "--kb", kb, "--json"]))
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["arch"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(ids("kb1"), ids("kb2"));
}

#[test]
fn run_dir_in_use_and_bad_resume_are_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    ok(seki(d.path()).args([
        "search",
        "--budget",
        "5",
        "--run-dir",
        "r",
        "--kb-records",
        "none",
        "-q",
    ]));
    let e = fails(seki(d.path()).args([
        "search",
        "--budget",
        "5",
        "--run-dir",
        "r",
        "--kb-records",
        "none",
    ]));
    assert!(
        e.contains("already holds a session") && e.contains("--resume"),
        "{e}"
    );
    let e = fails(seki(d.path()).args(["search", "--resume", "nowhere"]));
    assert!(
        e.contains("nowhere") && e.contains("no session journal"),
        "{e}"
    );
    let e = fails(seki(d.path()).args(["search", "--resume", "r", "--seed", "4"]));
    assert!(e.contains("cannot be used with"), "{e}");
}

#[test]
fn time_budget_stops_the_session() {
    let d = tempfile::tempdir().unwrap();
    let out = ok(seki(d.path()).args([
        "search",
        "--strategy",
        "random",
        "--budget",
        "100000",
        "--max-seconds",
        "0.3",
        "--run-dir",
        "r",
        "--kb-records",
        "none",
        "--json",
    ]));
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        s["stop_reason"].as_str().unwrap().contains("seconds")
            || s["stop_reason"].as_str().unwrap().contains("no new"),
        "{s}"
    );
}

#[test]
fn exhausting_the_space_stops_instead_of_looping() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("c.toml"), format!("[evaluator.nb201]\ntable = \"{}\"\n[search]\nmax_consecutive_duplicates = 50\nkb_records = \"none\"\n", table().display())).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_seki"));
    cmd.current_dir(d.path()).args([
        "--config",
        "c.toml",
        "search",
        "--strategy",
        "rea",
        "--budget",
        "20000",
        "--run-dir",
        "r",
        "--json",
    ]);
    let s: serde_json::Value = serde_json::from_str(&ok(&mut cmd)).unwrap();
    assert!(
        s["stop_reason"]
            .as_str()
            .unwrap()
            .starts_with("no new architectures"),
        "{s}"
    );
    assert!(s["evaluations"].as_u64().unwrap() <= 6466);
}
