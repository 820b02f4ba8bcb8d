//! The score-blind stand-in model (`kind = "blind"`, the bench's
//! seki-blind) and warm starts from a knowledge base of another dataset.

mod common;
use common::*;

/// A config with the blind profile as the default model.
fn blind_config(dir: &std::path::Path) -> std::path::PathBuf {
    common::blind_config(dir, "[agent]\ncandidates = 2\n")
}

#[test]
fn a_seki_session_runs_on_the_blind_stand_in_and_repeats_with_its_seed() {
    let d = tempfile::tempdir().unwrap();
    let cfg = blind_config(d.path());
    let run = |dir: &str| {
        let out = ok(std::process::Command::new(env!("CARGO_BIN_EXE_seki"))
            .current_dir(d.path())
            .args(["--config", cfg.to_str().unwrap()])
            .args([
                "search",
                "--strategy",
                "seki",
                "--space",
                "nb201",
                "--evaluator",
                "nb201",
                "--budget",
                "12",
                "--seed",
                "5",
                "--kb-records",
                "none",
                "--run-dir",
                dir,
                "-q",
                "--json",
            ]));
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let s = run("a");
    assert_eq!(s["evaluations"], 12, "{s}");
    // Its constrained replies are architectures of the notation: read
    // first time, never repaired, never replaced by a mutation.
    assert!(s["parsed_first_try"].as_u64().unwrap() >= 3, "{s}");
    assert_eq!(s["parsed_after_repair"], 0, "{s}");
    assert_eq!(s["fell_back"], 0, "{s}");
    // The same seed, the same session.
    let t = run("b");
    assert_eq!(s["best"], t["best"]);
    let journal = std::fs::read_to_string(d.path().join("a/journal.jsonl")).unwrap();
    assert!(
        journal.contains("score-blind stand-in"),
        "the filler answers free text"
    );
}

#[test]
fn a_warm_knowledge_base_seeds_rea_and_the_agent_and_another_space_is_refused() {
    let d = tempfile::tempdir().unwrap();
    // A CIFAR-10 knowledge base from one short REA session.
    ok(seki(d.path()).args([
        "search",
        "--strategy",
        "rea",
        "--space",
        "nb201",
        "--evaluator",
        "nb201",
        "--budget",
        "40",
        "--kb",
        "kb10",
        "--kb-records",
        "all",
        "-q",
    ]));
    let c100 = table_cifar100();
    let bench = |extra: &[&str]| {
        let out = ok(seki(d.path())
            .args([
                "bench",
                "nb201",
                "--table",
                c100.to_str().unwrap(),
                "--strategy",
                "rea,seki-blind",
                "--budget",
                "12",
                "--seeds",
                "2",
                "--json",
            ])
            .args(extra));
        serde_json::from_str::<Vec<serde_json::Value>>(&out).unwrap()
    };
    let cold = bench(&[]);
    let warm = bench(&["--warm-kb", "kb10", "--warm-seeds", "10"]);
    let names: Vec<&str> = warm
        .iter()
        .map(|r| r["strategy"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["rea warm", "seki-blind warm"]);
    assert_eq!(cold[1]["strategy"], "seki-blind");
    // After ten evaluations both warm strategies have evaluated the same
    // ten records, so they return the same architecture.
    let at10 = |r: &serde_json::Value| r["checkpoints"][0]["values"].clone();
    assert_eq!(warm[0]["checkpoints"][0]["evaluations"], 10);
    assert_eq!(at10(&warm[0]), at10(&warm[1]));
    assert_ne!(at10(&cold[0]), at10(&warm[0]));
    // The shipped knowledge base holds DARTS cells only.
    let shipped = root().join("knowledge");
    let e = fails(seki(d.path()).args([
        "bench",
        "nb201",
        "--warm-kb",
        shipped.to_str().unwrap(),
        "--budget",
        "10",
        "--seeds",
        "1",
    ]));
    assert!(
        e.contains("holds no nb201 architectures; it holds") && e.contains("of the darts space"),
        "{e}"
    );
}
