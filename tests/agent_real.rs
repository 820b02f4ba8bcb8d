//! The SEKI agent with real parts: the local SmolLM2 model on the
//! NAS-Bench-201 table, and the Candle evaluator training on Fashion-MNIST.

mod common;
use common::*;
use std::path::Path;

fn model() -> std::path::PathBuf {
    let p = root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.is_file(),
        "the default model is missing at {}; fetch it with: scripts/setup.sh",
        p.display()
    );
    p
}

fn fmnist() -> &'static str {
    let p = "/usr/share/datasets/fashion-mnist";
    assert!(
        Path::new(p).join("train-images-idx3-ubyte.gz").is_file(),
        "Fashion-MNIST is missing at {p}; run scripts/setup.sh (as root)"
    );
    p
}

fn command(dir: &Path, config: &str) -> std::process::Command {
    std::fs::write(dir.join("c.toml"), config).unwrap();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_seki"));
    c.current_dir(dir)
        .args(["--config", "c.toml"])
        .env_remove("RUST_LOG");
    c
}

#[test]
fn the_local_model_drives_seki_on_the_nb201_table() {
    let d = tempfile::tempdir().unwrap();
    let config = format!(
        "[evaluator.nb201]\ntable = \"{}\"\n[search]\nspace = \"nb201\"\nstrategy = \"seki\"\nkb_records = \"none\"\n[agent]\nmax_tokens_text = 48\n[llm.profiles.local]\nkind = \"gguf\"\nmodel = \"{}\"\n",
        table().display(),
        model().display()
    );
    let out = ok(command(d.path(), &config).args([
        "search",
        "--budget",
        "3",
        "--seed",
        "4",
        "--run-dir",
        "r",
        "--kb",
        "empty",
        "--json",
    ]));
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["evaluations"], 3);
    assert!(s["tokens"].as_u64().unwrap() > 100, "{s}");
    let j = journal(&d.path().join("r"));
    let calls: Vec<&serde_json::Value> = j
        .iter()
        .filter(|e| e["event"] == "strategy" && e["detail"]["kind"] == "llm")
        .collect();
    assert!(calls.len() >= 4, "two iterations of two calls at least");
    assert!(calls
        .iter()
        .all(|c| c["detail"]["model"].as_str().unwrap().contains("local")));
    // Constrained decoding: every architecture reply of the real model parses.
    let parses: Vec<&serde_json::Value> = j
        .iter()
        .filter(|e| e["event"] == "strategy" && e["detail"]["kind"] == "parse")
        .collect();
    assert!(!parses.is_empty());
    for p in &parses {
        assert_ne!(p["detail"]["outcome"], "invalid", "{p}");
    }
    assert_eq!(s["parsed_after_repair"], 0);
    assert_eq!(
        s["parsed_first_try"].as_u64().unwrap() + s["fell_back"].as_u64().unwrap(),
        2,
        "each of the two LLM iterations parsed, or fell back only on duplicates: {s}"
    );
    // Same seed, same session: the local model's sampling is seeded from the journalled stream.
    let again = ok(command(d.path(), &config).args([
        "search",
        "--budget",
        "3",
        "--seed",
        "4",
        "--run-dir",
        "r2",
        "--kb",
        "empty",
        "--json",
    ]));
    let s2: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(s2["best"], s["best"]);
}

#[test]
fn seki_trains_with_the_candle_evaluator_on_fashion_mnist() {
    let d = tempfile::tempdir().unwrap();
    let config = format!(
        "[search]\nspace = \"nb201\"\nstrategy = \"seki\"\nevaluator = \"candle\"\nkb_records = \"all\"\n[evaluator.candle]\ndataset = \"fashion-mnist\"\ndata_dir = \"{}\"\nepochs = 1\nbatch_size = 32\ntrain_subset = 1500\nvalid_size = 500\ntest_subset = 500\nchannels = 8\nstage_cells = 1\nthreads = 2\n",
        fmnist()
    );
    let fixture = root().join("tests/fixtures/seki-nb201-replies.jsonl");
    let out = ok(command(d.path(), &config)
        .args([
            "search",
            "--budget",
            "3",
            "--run-dir",
            "r",
            "--kb",
            "kb",
            "--llm-replay",
        ])
        .arg(&fixture)
        .arg("--json"));
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["evaluations"], 3);
    assert_eq!(s["failed"], 0, "{s}");
    let evs: Vec<serde_json::Value> = journal(&d.path().join("r"))
        .into_iter()
        .filter(|e| e["event"] == "evaluation")
        .collect();
    for e in &evs {
        assert_eq!(e["status"], "ok", "{e}");
        assert!(
            e["score"].as_f64().unwrap() > 20.0,
            "better than chance (10%): {e}"
        );
        assert!(e["metrics"]["params"].as_f64().unwrap() > 1000.0);
    }
    // The agent's second proposal is the fixture's first architecture, trained for real.
    assert_eq!(evs[1]["origin"], "evolution (parsed)");
    // Real parameter counts give the report its size chart.
    let md = std::fs::read_to_string(d.path().join("r/report.md")).unwrap();
    assert!(
        md.contains("pareto.svg") && md.contains("Pareto front"),
        "{md}"
    );
    assert!(d.path().join("r/pareto.svg").is_file());
    let list = ok(command(d.path(), &config).args(["kb", "list", "--kb", "kb", "--json"]));
    assert_eq!(list.lines().count(), 3);
    assert!(list.contains("\"kind\":\"candle\""), "{list}");
}
