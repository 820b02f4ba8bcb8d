//! The main job end to end: the shipped `config.toml` (DARTS space, the
//! seki agent, the local Qwen2.5-Coder-0.5B model, the Candle evaluator on
//! Fashion-MNIST), with only its budget and proxy sizes made tiny.

mod common;

use common::{journal, ok, root};
use std::path::Path;

/// The shipped config with `section.key` set to each value; every key must
/// be there already (so that this test follows the shipped file).
fn shipped_config_with(changes: &[(&str, &str, String)]) -> String {
    let text = std::fs::read_to_string(root().join("config.toml")).unwrap();
    let mut section = String::new();
    let mut done = vec![false; changes.len()];
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(s) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.to_string();
        }
        let mut line = line.to_string();
        for (i, (sec, key, value)) in changes.iter().enumerate() {
            let is_key = t
                .split_once('=')
                .is_some_and(|(k, _)| k.trim() == *key && !t.starts_with('#'));
            if section == *sec && is_key {
                line = format!("{key} = {value}");
                done[i] = true;
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    for (i, (sec, key, _)) in changes.iter().enumerate() {
        assert!(done[i], "the shipped config.toml has no {sec}.{key}");
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn the_shipped_configuration_runs_end_to_end_at_a_tiny_budget() {
    let model = root().join("models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf");
    assert!(
        model.is_file(),
        "the default model is missing at {}; fetch it with: scripts/setup.sh",
        model.display()
    );
    let fmnist = Path::new("/usr/share/datasets/fashion-mnist");
    assert!(
        fmnist.join("train-images-idx3-ubyte.gz").is_file(),
        "Fashion-MNIST is missing; run scripts/setup.sh (as root)"
    );
    let d = tempfile::tempdir().unwrap();
    // The shipped knowledge base (published cells: the agent's seeds), copied
    // so that the session's records do not touch the checkout.
    copy_dir(&root().join("knowledge"), &d.path().join("knowledge"));
    let q = |p: &Path| format!("\"{}\"", p.display());
    let config = shipped_config_with(&[
        // The seed at rung 1 and, promoted, at rung 2; then two more
        // searched at rung 1.
        ("search", "max_evaluations", "4".into()),
        ("[search.rungs]", "valid_size", "256".into()),
        ("evaluator.candle", "train_subset", "256".into()),
        ("evaluator.candle", "valid_size", "128".into()),
        ("evaluator.candle", "test_subset", "128".into()),
        ("evaluator.candle", "batch_size", "32".into()),
        ("evaluator.candle", "cells", "3".into()),
        ("evaluator.candle", "channels", "4".into()),
        ("evaluator.candle", "threads", "2".into()),
        ("agent", "max_tokens_text", "24".into()),
        ("llm.profiles.qwen", "model", q(&model)),
    ]);
    // The rest of the shipped path is as shipped.
    for line in [
        "space = \"darts\"",
        "strategy = \"seki\"",
        "evaluator = \"candle\"",
        "dataset = \"fashion-mnist\"",
        "default_profile = \"qwen\"",
        "kind = \"gguf\"",
    ] {
        assert!(
            config.contains(line),
            "the shipped config no longer says {line}"
        );
    }
    std::fs::write(d.path().join("config.toml"), config).unwrap();
    // `seki search` with no flags but the run directory and --json.
    let out = ok(std::process::Command::new(env!("CARGO_BIN_EXE_seki"))
        .current_dir(d.path())
        .env_remove("RUST_LOG")
        .args(["search", "--run-dir", "run", "--json"]));
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["space"], "darts");
    assert_eq!(s["strategy"], "seki");
    assert_eq!(s["evaluations"], 3, "{s}");
    assert_eq!(s["failed"], 0, "{s}");
    assert_eq!(s["stop_reason"], "budget: 4 evaluations");
    // The shipped rungs: the seed went up to rung 2 (5,000-image validation
    // in the shipped file; 256 here) at once, so the answer is compared
    // with it there.
    assert_eq!(s["reevaluations"], 1, "{s}");
    let rungs = &s["rungs"];
    assert_eq!(rungs["rungs"].as_array().unwrap().len(), 2, "{s}");
    assert_eq!(rungs["rungs"][0]["architectures"], 3, "{s}");
    assert_eq!(rungs["rungs"][1]["architectures"], 1, "{s}");
    assert_eq!(rungs["highest_reached"], 2, "{s}");
    assert_eq!(s["best"]["rung"], 2, "{s}");
    assert!(s["best"]["score_se"].as_f64().unwrap() > 0.0, "{s}");
    assert_eq!(s["against_seed"]["rung"], 2, "{s}");
    assert_eq!(s["against_seed"]["verdict"], "same", "{s}");
    assert!(
        s["tokens"].as_u64().unwrap() > 0,
        "the local model ran: {s}"
    );
    let run = d.path().join("run");
    let j = journal(&run);
    let evals: Vec<&serde_json::Value> = j.iter().filter(|e| e["event"] == "evaluation").collect();
    // The seed is the best published cell of the knowledge base; the second
    // architecture comes from the local model through self-evolution.
    assert!(
        evals[0]["origin"].as_str().unwrap().contains("seed"),
        "{}",
        evals[0]
    );
    assert!(
        evals[1]["origin"]
            .as_str()
            .unwrap()
            .starts_with("evolution"),
        "{}",
        evals[1]
    );
    for e in &evals {
        assert_eq!(e["status"], "ok", "{e}");
        let score = e["score"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&score), "{e}");
        assert!(e["metrics"]["params"].as_f64().unwrap() > 0.0, "{e}");
        assert!(e["metrics"]["train_seconds"].as_f64().unwrap() > 0.0, "{e}");
        seki::space::Space::Darts
            .parse(e["arch"].as_str().unwrap())
            .unwrap();
    }
    let calls: Vec<&serde_json::Value> = j
        .iter()
        .filter(|e| e["event"] == "strategy" && e["detail"]["kind"] == "llm")
        .collect();
    assert!(calls.len() >= 2, "a strategy and an architecture call");
    assert!(calls
        .iter()
        .all(|c| c["detail"]["model"].as_str().unwrap().contains("qwen")));
    // Constrained decoding: the architecture reply parsed.
    assert!(j.iter().any(|e| e["event"] == "strategy"
        && e["detail"]["kind"] == "parse"
        && e["detail"]["outcome"] != "invalid"));
    // Results went to the (copied) knowledge base, the report was written.
    let kb = std::fs::read_to_string(d.path().join("knowledge/architectures.jsonl")).unwrap();
    assert!(kb.lines().count() > 10, "a session record was added");
    assert!(kb.contains("\"kind\":\"candle\""));
    assert!(run.join("report.md").is_file() && run.join("best.json").is_file());
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains("## Fidelity rungs") && md.contains("## Against the seed"),
        "{md}"
    );
    let promoted: Vec<&serde_json::Value> = j
        .iter()
        .filter(|e| e["event"] == "reevaluation" && e["purpose"] == "promotion")
        .collect();
    assert_eq!(promoted.len(), 1);
    assert_eq!(promoted[0]["rung"], 2);
    assert_eq!(promoted[0]["of"], 1);
    assert_eq!(
        promoted[0]["metrics"]["valid_images"], 256.0,
        "{}",
        promoted[0]
    );
}
