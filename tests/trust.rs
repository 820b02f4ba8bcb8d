//! Scores a researcher can trust: standard errors on every score,
//! re-evaluated contenders (and resume during them), evaluation protocols
//! kept apart in the knowledge base and the agent's prompts, and the proxy
//! fidelity check.

mod common;
use common::*;
use std::path::Path;

/// A config for the NAS-Bench-201 table with noise, REA, and contenders.
fn noisy_config(dir: &Path, extra_search: &str) -> std::path::PathBuf {
    let cfg = dir.join("noisy.toml");
    std::fs::write(
        &cfg,
        format!(
            "[search]\nspace = \"nb201\"\nstrategy = \"rea\"\nevaluator = \"nb201\"\nmax_evaluations = 20\nkb_records = \"all\"\n{extra_search}\n[evaluator.nb201]\ntable = \"{}\"\nnoise_sd = 2.0\nnoise_seed = 5\n[kb]\ndir = \"kb\"\n[strategy.rea]\npopulation = 5\nsample = 2\n",
            table().display()
        ),
    )
    .unwrap();
    cfg
}

/// A `seki` command run in `dir` with the config `cfg`.
fn seki_with(dir: &Path, cfg: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_seki"));
    c.current_dir(dir)
        .arg("--config")
        .arg(cfg)
        .env_remove("RUST_LOG");
    c
}

fn search(dir: &Path, cfg: &Path, run: &str) -> serde_json::Value {
    let out = ok(seki_with(dir, cfg).args(["search", "--run-dir", run, "--json"]));
    serde_json::from_str(&out).unwrap()
}

fn reevaluations(dir: &Path) -> Vec<serde_json::Value> {
    journal(dir)
        .into_iter()
        .filter(|e| e["event"] == "reevaluation")
        .collect()
}

#[test]
fn contenders_are_reevaluated_within_the_budget_and_the_best_is_by_the_mean() {
    let d = tempfile::tempdir().unwrap();
    let cfg = noisy_config(d.path(), "contenders = 3\ncontender_repeats = 2\n");
    let s = search(d.path(), &cfg, "run");
    // 14 searched, 6 repeats: the budget of 20 counts both.
    assert_eq!(s["evaluations"], 14, "{s}");
    assert_eq!(s["reevaluations"], 6);
    assert!(s["stop_reason"]
        .as_str()
        .unwrap()
        .contains("held back for re-evaluating contenders"));
    let cs = s["contenders"].as_array().unwrap();
    assert_eq!(cs.len(), 3);
    for c in cs {
        assert_eq!(c["uncertainty"]["repeats"], 3, "{c}");
        assert_eq!(c["uncertainty"]["scores"].as_array().unwrap().len(), 3);
        assert!(c["uncertainty"]["se"].as_f64().unwrap() > 0.0);
    }
    // Best mean first; the session returns it, with its standard error.
    let means: Vec<f64> = cs.iter().map(|c| c["mean"].as_f64().unwrap()).collect();
    assert!(means.windows(2).all(|w| w[0] >= w[1]), "{means:?}");
    assert_eq!(s["best"]["evaluation"], cs[0]["evaluation"]);
    assert_eq!(s["best"]["score"], cs[0]["mean"]);
    assert_eq!(s["best"]["score_se"], cs[0]["uncertainty"]["se"]);
    assert!(s["top_two_distinguishable"].is_boolean());
    assert!(
        s["contenders_note"].as_str().unwrap().contains("top two")
            || s["contenders_note"].as_str().unwrap().contains("ahead")
    );
    // Journalled: repeats 1 and 2 of each contender, in rounds.
    let r = reevaluations(&d.path().join("run"));
    assert_eq!(r.len(), 6);
    assert!(r.iter().all(|e| e["purpose"] == "contender"));
    assert_eq!(r[0]["repeat"], 1);
    assert_eq!(r[3]["repeat"], 2);
    // best.json agrees; the knowledge base keeps the mean and its spread.
    let best: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("run/best.json")).unwrap())
            .unwrap();
    assert_eq!(best["score"], s["best"]["score"]);
    let kb =
        seki::knowledge::KnowledgeBase::open(&d.path().join("kb"), Default::default()).unwrap();
    let n = cs[0]["evaluation"].as_u64().unwrap();
    let session = s["session"].as_str().unwrap();
    let rec = kb.get(&format!("{session}-{n:04}")).unwrap();
    assert_eq!(rec.record.score, cs[0]["mean"].as_f64());
    assert_eq!(rec.record.uncertainty.as_ref().unwrap().repeats, 3);
    // The report shows them.
    let md = std::fs::read_to_string(d.path().join("run/report.md")).unwrap();
    assert!(md.contains("## Contenders re-evaluated"), "{md}");
    assert!(md.contains(" ± "), "{md}");
    let html = std::fs::read_to_string(d.path().join("run/report.html")).unwrap();
    assert!(html.contains("Contenders re-evaluated"));
}

#[test]
fn a_session_killed_during_the_contenders_resumes_to_the_same_end() {
    let d = tempfile::tempdir().unwrap();
    let cfg = noisy_config(d.path(), "contenders = 3\ncontender_repeats = 2\n");
    let full = search(d.path(), &cfg, "full");
    // The same session, cut after its second repeat.
    let lines: Vec<String> = std::fs::read_to_string(d.path().join("full/journal.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut kept = Vec::new();
    let mut repeats = 0;
    for l in &lines {
        if l.contains("\"event\":\"reevaluation\"") {
            repeats += 1;
            if repeats > 2 {
                break;
            }
        }
        kept.push(l.clone());
    }
    std::fs::create_dir_all(d.path().join("cut")).unwrap();
    std::fs::write(d.path().join("cut/journal.jsonl"), kept.join("\n") + "\n").unwrap();
    std::fs::copy(
        d.path().join("full/config.toml"),
        d.path().join("cut/config.toml"),
    )
    .unwrap();
    let out = ok(seki(d.path()).args([
        "search",
        "--resume",
        "cut",
        "--json",
        "--kb-records",
        "none",
    ]));
    let resumed: serde_json::Value = serde_json::from_str(&out).unwrap();
    for key in ["evaluations", "reevaluations", "best", "contenders"] {
        let (a, b) = (&full[key], &resumed[key]);
        if key == "best" {
            assert_eq!(a["evaluation"], b["evaluation"]);
            assert_eq!(a["score"], b["score"]);
        } else if key == "contenders" {
            let m = |v: &serde_json::Value| -> Vec<(u64, f64)> {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|c| {
                        (
                            c["evaluation"].as_u64().unwrap(),
                            c["mean"].as_f64().unwrap(),
                        )
                    })
                    .collect()
            };
            assert_eq!(m(a), m(b));
        } else {
            assert_eq!(a, b, "{key}");
        }
    }
    assert_eq!(reevaluations(&d.path().join("cut")).len(), 6);
}

#[test]
fn close_bests_are_rechecked_at_once_and_a_deterministic_table_is_not_repeated() {
    let d = tempfile::tempdir().unwrap();
    let cfg = noisy_config(
        d.path(),
        "contenders = 2\ncontender_repeats = 2\nreevaluate_close_bests = true\n",
    );
    let s = search(d.path(), &cfg, "close");
    let r = reevaluations(&d.path().join("close"));
    assert!(
        r.iter().any(|e| e["purpose"] == "close-best"),
        "with noise sd 2 some new best is within noise of the old one"
    );
    let used = s["evaluations"].as_u64().unwrap() + s["reevaluations"].as_u64().unwrap();
    assert!(used <= 20, "{s}");
    assert_eq!(s["reevaluations"].as_u64().unwrap() as usize, r.len());
    // Without noise the table gives the same figure every time: no repeats,
    // no budget held back, and the summary says why.
    let plain = d.path().join("plain.toml");
    std::fs::write(
        &plain,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("noise_sd = 2.0", "noise_sd = 0.0"),
    )
    .unwrap();
    let s = search(d.path(), &plain, "plain");
    assert_eq!(s["evaluations"], 20);
    assert_eq!(s["reevaluations"], 0);
    assert!(s["contenders_note"]
        .as_str()
        .unwrap()
        .contains("not re-evaluated"));
    // Every score still carries its standard error: 25,000 validation images.
    let se = s["best"]["score_se"].as_f64().unwrap();
    assert!(se > 0.2 && se < 0.35, "{se}");
}

#[test]
fn the_terminal_summary_shows_noise_bars() {
    let d = tempfile::tempdir().unwrap();
    let cfg = noisy_config(d.path(), "contenders = 2\ncontender_repeats = 1\n");
    let out = ok(seki_with(d.path(), &cfg).args(["search", "--run-dir", "t", "--quiet"]));
    assert!(out.contains("contenders"), "{out}");
    assert!(out.contains("repeats    2 re-evaluations"), "{out}");
    let best = out.lines().find(|l| l.starts_with("best ")).unwrap();
    assert!(best.contains(" ± ") && best.contains("mean of 2"), "{best}");
}

#[test]
fn proxy_check_of_the_table_reports_its_rank_correlations() {
    let d = tempfile::tempdir().unwrap();
    let out = ok(seki(d.path()).args([
        "proxy",
        "check",
        "--space",
        "nb201",
        "--evaluator",
        "nb201",
        "--out",
        "pc",
        "--json",
    ]));
    let f: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(f["n"], 15625);
    let tau = f["kendall_tau"].as_f64().unwrap();
    let rho = f["spearman_rho"].as_f64().unwrap();
    // Cross-checked against an independent computation (see docs/noise.md).
    assert!((tau - 0.594).abs() < 0.001, "{tau}");
    assert!((rho - 0.772).abs() < 0.001, "{rho}");
    let svg = std::fs::read_to_string(d.path().join("pc/proxy-check.svg")).unwrap();
    assert!(svg.starts_with("<svg xmlns=") && svg.contains("<circle"));
    assert!(d.path().join("pc/proxy-check.json").is_file());
    // Training needs a higher-fidelity setting named.
    let e = fails(seki(d.path()).args([
        "proxy",
        "check",
        "--space",
        "darts",
        "--evaluator",
        "candle",
    ]));
    assert!(e.contains("--high-epochs"), "{e}");
}

#[test]
fn the_agent_ranks_only_its_own_protocol_and_shows_others_as_context() {
    let d = tempfile::tempdir().unwrap();
    // A knowledge base with "published" NAS-Bench-201 cells far above any
    // 12-epoch validation score, and table records of the session's protocol.
    let kb = d.path().join("kb");
    std::fs::create_dir_all(&kb).unwrap();
    let archs = [
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
        "|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    ];
    let mut lines = String::new();
    for (i, a) in archs.iter().enumerate() {
        lines.push_str(&serde_json::json!({
            "id": format!("pub-{i}"), "space": "nb201", "arch": a, "score": 99.0 - i as f64,
            "evaluator": {"kind": "published", "dataset": "cifar10", "settings": {"protocol": "200 epochs"}},
            "provenance": {"source": "paper"}, "created": "2020-01-01T00:00:00Z"
        }).to_string());
        lines.push('\n');
    }
    let own = [
        "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    ];
    for (i, a) in own.iter().enumerate() {
        lines.push_str(&serde_json::json!({
            "id": format!("tab-{i}"), "space": "nb201", "arch": a, "score": 90.0 - i as f64,
            "evaluator": {"kind": "nb201-table", "dataset": "cifar10",
                          "settings": {"score": "cifar10_valid_12ep", "test": "cifar10_test_200ep"}},
            "provenance": {"source": "user"}, "created": "2020-01-01T00:00:00Z"
        }).to_string());
        lines.push('\n');
    }
    std::fs::write(kb.join("architectures.jsonl"), lines).unwrap();
    // `kb list` ranks each protocol on its own.
    let list = ok(seki(d.path()).args(["kb", "list"]));
    let headers: Vec<&str> = list.lines().filter(|l| l.starts_with("== ")).collect();
    assert_eq!(headers.len(), 2, "{list}");
    assert!(list.contains("90.00 ± 0.19"), "{list}");
    // One inspiration first: its samples come from the table records only.
    let cfg = d.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[evaluator.nb201]\ntable = \"{}\"\n[kb]\ndir = \"kb\"\n[agent]\nevolution_iterations = 0\ninspiration_iterations = 1\nsample = 3\ntop_k = 3\n",
            table().display()
        ),
    )
    .unwrap();
    let replies = d.path().join("replies.jsonl");
    std::fs::write(
        &replies,
        [
            "- Convolutions everywhere.",
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        ]
        .iter()
        .map(|t| serde_json::json!({ "text": t }).to_string() + "\n")
        .collect::<String>(),
    )
    .unwrap();
    ok(seki_with(d.path(), &cfg)
        .args([
            "search",
            "--strategy",
            "seki",
            "--budget",
            "2",
            "--run-dir",
            "run",
            "--kb-records",
            "none",
            "--llm-replay",
        ])
        .arg(&replies));
    let j = journal(&d.path().join("run"));
    let prompt = j
        .iter()
        .find(|e| {
            e["event"] == "strategy"
                && e["detail"]["kind"] == "llm"
                && e["detail"]["stage"] == "inspiration_patterns"
        })
        .map(|e| {
            e["detail"]["messages"][1]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .unwrap();
    let (ranked, context) = prompt.split_once("For reference").unwrap();
    for i in 0..3 {
        assert!(ranked.contains(&format!("[tab-{i}]")), "{prompt}");
        assert!(!ranked.contains(&format!("[pub-{i}]")), "{prompt}");
    }
    assert!(
        context.contains("[pub-0] published cifar10 test accuracy 99"),
        "{prompt}"
    );
    // At the precision the noise supports (± 0.19: two places).
    assert!(ranked.contains("90.00 ± 0.19"), "{prompt}");
    // The seed was the best record of the session's own protocol.
    let first = j.iter().find(|e| e["event"] == "evaluation").unwrap();
    assert!(
        first["origin"].as_str().unwrap().contains("tab-0"),
        "{first}"
    );
}

#[test]
fn training_repeats_use_other_seeds_and_proxy_check_trains_both_settings() {
    let data = Path::new("/usr/share/datasets/fashion-mnist");
    assert!(
        data.join("train-images-idx3-ubyte.gz").is_file(),
        "Fashion-MNIST is missing; run scripts/setup.sh (as root)"
    );
    let small = seki::eval::candle::CandleConfig {
        data_dir: data.to_path_buf(),
        epochs: 1,
        batch_size: 32,
        train_subset: 300,
        valid_size: 200,
        test_subset: 100,
        channels: 4,
        stage_cells: 1,
        threads: 2,
        ..Default::default()
    };
    use seki::eval::Evaluator;
    let mut e = seki::eval::candle::CandleEvaluator::new(
        small.clone(),
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_seki")),
    )
    .unwrap();
    let arch = seki::space::Space::Nb201
        .parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|")
        .unwrap();
    let first = e.evaluate(&arch).unwrap();
    let score = first.score.unwrap();
    let want = seki::stats::binomial_se(score, 200).unwrap();
    assert!((first.score_se.unwrap() - want).abs() < 1e-9);
    assert_eq!(first.metrics["valid_images"], 200.0);
    assert!(e.repeatable());
    let again = e.evaluate_repeat(&arch, 1).unwrap().unwrap();
    assert_eq!(again.metrics["seed"], 1.0);
    assert!(again.score.is_some());
    // The CLI check: three random cells, the proxy against two epochs.
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[kb]\ndir = \"none\"\n[evaluator.candle]\ndata_dir = \"{}\"\nepochs = 1\nbatch_size = 32\ntrain_subset = 300\nvalid_size = 200\ntest_subset = 100\nchannels = 4\nthreads = 2\n",
            data.display()
        ),
    )
    .unwrap();
    let out = ok(seki_with(d.path(), &cfg).args([
        "proxy",
        "check",
        "--space",
        "nb201",
        "--evaluator",
        "candle",
        "--random",
        "3",
        "--high-epochs",
        "2",
        "--out",
        "pc",
    ]));
    assert!(out.contains("architectures  3 scored under both"), "{out}");
    assert!(
        out.contains("Kendall tau") && out.contains("Spearman rho"),
        "{out}"
    );
    let cache = std::fs::read_to_string(d.path().join("pc/evaluations.jsonl")).unwrap();
    assert_eq!(cache.lines().count(), 6);
    // A rerun reuses every evaluation.
    ok(seki_with(d.path(), &cfg).args([
        "proxy",
        "check",
        "--space",
        "nb201",
        "--evaluator",
        "candle",
        "--random",
        "3",
        "--high-epochs",
        "2",
        "--out",
        "pc",
    ]));
    let again = std::fs::read_to_string(d.path().join("pc/evaluations.jsonl")).unwrap();
    assert_eq!(again.lines().count(), 6);
}

#[test]
fn contenders_run_as_request_files_with_a_pool_of_workers() {
    let d = tempfile::tempdir().unwrap();
    let cfg = noisy_config(d.path(), "contenders = 3\ncontender_repeats = 2\n");
    let text = std::fs::read_to_string(&cfg).unwrap() + "[executor]\nworkers = 3\n";
    std::fs::write(&cfg, text).unwrap();
    let s = search(d.path(), &cfg, "pool");
    assert_eq!(s["reevaluations"], 6, "{s}");
    assert_eq!(
        s["evaluations"].as_u64().unwrap() + s["reevaluations"].as_u64().unwrap(),
        20
    );
    for c in s["contenders"].as_array().unwrap() {
        assert_eq!(c["uncertainty"]["repeats"], 3, "{c}");
    }
    // Each repeat was a request file naming its repeat, answered by a worker.
    let mut repeats = Vec::new();
    for e in std::fs::read_dir(d.path().join("pool/evals")).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with('x') {
            let req: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p.join("request.json")).unwrap())
                    .unwrap();
            repeats.push(req["repeat"].as_u64().unwrap());
            assert!(p.join("result.json").is_file());
        }
    }
    repeats.sort();
    assert_eq!(repeats, [1, 1, 1, 2, 2, 2]);
}
