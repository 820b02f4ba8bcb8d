//! Hard budgets on parameters, FLOPs and latency (`[search.constraints]`,
//! `--max-params`, ...) and Pareto search (`search.objectives`), through the
//! real CLI on the NAS-Bench-201 table.

mod common;
use common::*;

fn search(dir: &std::path::Path, run_dir: &str, extra: &[&str]) -> serde_json::Value {
    let out = ok(seki(dir)
        .args([
            "search",
            "--space",
            "nb201",
            "--evaluator",
            "nb201",
            "--seed",
            "3",
            "--kb-records",
            "none",
            "--run-dir",
            run_dir,
            "-q",
            "--json",
        ])
        .args(extra));
    serde_json::from_str(&out).unwrap()
}

/// Every evaluation of a constrained session is within the budget, with
/// its cost recorded; the summary states the budget and what it refused.
#[test]
fn every_strategy_evaluates_only_cells_within_the_budget() {
    let d = tempfile::tempdir().unwrap();
    for strategy in ["random", "rea"] {
        let s = search(
            d.path(),
            strategy,
            &[
                "--strategy",
                strategy,
                "--budget",
                "40",
                "--max-params",
                "0.4M",
            ],
        );
        assert_eq!(s["evaluations"], 40, "{s}");
        assert_eq!(s["budget"]["constraints"]["max_params"], 400000.0, "{s}");
        assert!(
            s["budget"]["measured_on"]
                .as_str()
                .unwrap()
                .contains("NAS-Bench-201 benchmark network"),
            "{s}"
        );
        let steps = events(&d.path().join(strategy), "evaluation");
        assert_eq!(steps.len(), 40);
        for e in &steps {
            let p = e["metrics"]["params"].as_f64().unwrap();
            assert!(p <= 400_000.0, "{strategy} evaluated {p} params: {e}");
            assert!(e["metrics"]["flops"].as_f64().unwrap() > 0.0);
        }
        let best = s["best"]["metrics"]["params"].as_f64().unwrap();
        assert!(best <= 400_000.0);
        let md = std::fs::read_to_string(d.path().join(strategy).join("report.md")).unwrap();
        assert!(md.contains("## Budget\n\nparams ≤ 0.400M"), "{md}");
    }
}

/// Without budgets or objectives nothing is measured: the table's
/// evaluations carry no cost, as before.
#[test]
fn without_a_budget_nothing_changes() {
    let d = tempfile::tempdir().unwrap();
    let s = search(
        d.path(),
        "free",
        &["--strategy", "random", "--budget", "40"],
    );
    assert!(s.get("budget").is_none(), "{s}");
    let steps = events(&d.path().join("free"), "evaluation");
    assert_eq!(steps.len(), 40);
    assert!(steps
        .iter()
        .all(|e| e["metrics"].is_object() && e["metrics"].get("params").is_none()));
}

/// A budget refused at load: zero or negative, one no cell meets (with the
/// smallest figure the space reaches), an unknown objective.
#[test]
fn bad_budgets_and_objectives_are_refused_with_the_key() {
    let d = tempfile::tempdir().unwrap();
    let base = [
        "search",
        "--space",
        "nb201",
        "--evaluator",
        "nb201",
        "--budget",
        "5",
        "--kb-records",
        "none",
    ];
    let err = fails(seki(d.path()).args(base).args(["--max-params", "0"]));
    assert!(err.contains("search.constraints.max_params"), "{err}");
    assert!(err.contains("positive"), "{err}");
    let err = fails(seki(d.path()).args(base).args(["--max-flops", "1000"]));
    assert!(err.contains("search.constraints.max_flops"), "{err}");
    assert!(
        err.contains("no architecture of the nb201 space has at most"),
        "{err}"
    );
    assert!(err.contains("none~0"), "names the smallest cell: {err}");
    assert!(!d.path().join("runs").exists(), "nothing was started");
    let err = fails(
        seki(d.path())
            .args(base)
            .args(["--objectives", "speed:min"]),
    );
    assert!(err.contains("unknown objective 'speed:min'"), "{err}");
    let err = fails(
        seki(d.path())
            .args(base)
            .args(["--objectives", "accuracy:max"]),
    );
    assert!(err.contains("search.objectives"), "{err}");
    assert!(err.contains("two or three"), "{err}");
    // In a config file, the line is named.
    let err = fails(
        seki_with(
            d.path(),
            "neg",
            "[search.constraints]\nmax_latency_ms = -2\n",
        )
        .args(["search", "--budget", "5"]),
    );
    assert!(
        err.contains("neg.toml:6: search.constraints.max_latency_ms"),
        "{err}"
    );
}

/// A Pareto search returns its front: mutually non-dominated cells, each
/// with its cost, and the hypervolume against a stated reference point.
#[test]
fn a_pareto_search_returns_its_front_and_hypervolume() {
    let d = tempfile::tempdir().unwrap();
    let s = search(
        d.path(),
        "mo",
        &[
            "--strategy",
            "rea",
            "--budget",
            "40",
            "--objectives",
            "accuracy:max,params:min",
        ],
    );
    let f = &s["front"];
    assert_eq!(f["objectives"][1], "params:min", "{s}");
    let pts = f["points"].as_array().unwrap();
    assert!(pts.len() >= 2, "{f}");
    for a in pts {
        for b in pts {
            let worse = a["score"].as_f64() <= b["score"].as_f64()
                && a["cost"]["params"].as_f64() >= b["cost"]["params"].as_f64()
                && a != b;
            let strictly = a["score"].as_f64() < b["score"].as_f64()
                || a["cost"]["params"].as_f64() > b["cost"]["params"].as_f64();
            assert!(!(worse && strictly), "{a} is dominated by {b}");
        }
    }
    let hv = f["hypervolume"].as_f64().unwrap();
    assert!(hv > 0.0 && hv < 1.0, "{f}");
    assert_eq!(f["reference"][0], 100.0);
    let md = std::fs::read_to_string(d.path().join("mo/report.md")).unwrap();
    assert!(md.contains("## Pareto front"), "{md}");
    let html = std::fs::read_to_string(d.path().join("mo/report.html")).unwrap();
    assert!(html.contains("<h2>Pareto front</h2>"));
}

/// The agent in a Pareto search without budgets (on the score-blind
/// stand-in): its prompts show each cell's cost, its parents come from the
/// whole front (not only the most accurate cell), and every cell it is
/// asked to make cheaper has fewer parameters than its parent.
#[test]
fn the_agent_searches_the_front_and_a_cheaper_cell_is_cheaper() {
    let d = tempfile::tempdir().unwrap();
    let s = blind_search(
        d.path(),
        "",
        &[
            "--budget",
            "40",
            "--seed",
            "4",
            "--objectives",
            "accuracy:max,params:min",
        ],
    );
    assert_eq!(s["evaluations"], 40, "{s}");
    let journal = std::fs::read_to_string(d.path().join("s/journal.jsonl")).unwrap();
    let mut params = std::collections::HashMap::new();
    let mut best = 0.0_f64;
    let (mut cheaper, mut off_best) = (0, 0);
    let mut asked_cheaper = false;
    for line in journal.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        if e["event"] == "strategy" && e["detail"]["stage"] == "evolution_strategy" {
            let shown = e["detail"]["messages"].to_string();
            assert!(shown.contains("M params, "), "costs are shown: {shown}");
            asked_cheaper = shown.contains("Make it cheaper");
        }
        if e["event"] != "evaluation" {
            continue;
        }
        let p = e["metrics"]["params"].as_f64().unwrap();
        if e["operator"] == "self-evolution"
            && e["origin"].as_str().unwrap().starts_with("evolution (")
        {
            let parent = e["parent"].as_str().unwrap();
            let (parent_params, parent_score): (f64, f64) = params[parent];
            if parent_score < best {
                off_best += 1;
            }
            if asked_cheaper {
                assert!(
                    p < parent_params,
                    "asked for a cheaper cell than {parent_params}: {e}"
                );
                cheaper += 1;
            }
        }
        let score = e["score"].as_f64().unwrap_or(0.0);
        best = best.max(score);
        params.insert(e["hash"].as_str().unwrap().to_string(), (p, score));
    }
    assert!(cheaper > 0, "no cheaper self-evolution in 40 evaluations");
    assert!(
        off_best > 0,
        "every parent was the most accurate cell so far"
    );
}

/// A seki session on the score-blind stand-in (`extra`: more config) under
/// 0.2 M parameters, 15 evaluations, in run folder `s`: its summary.
fn blind_session(dir: &std::path::Path, extra: &str) -> serde_json::Value {
    blind_search(
        dir,
        extra,
        &["--budget", "15", "--seed", "2", "--max-params", "0.2M"],
    )
}

/// A seki search on the score-blind stand-in (`extra`: more config;
/// `args`: more flags) in run folder `s`: its summary.
fn blind_search(dir: &std::path::Path, extra: &str, args: &[&str]) -> serde_json::Value {
    let cfg = blind_config(dir, extra);
    let out = ok(std::process::Command::new(env!("CARGO_BIN_EXE_seki"))
        .current_dir(dir)
        .args(["--config", cfg.to_str().unwrap()])
        .args([
            "search",
            "--strategy",
            "seki",
            "--space",
            "nb201",
            "--evaluator",
            "nb201",
            "--kb-records",
            "none",
            "--run-dir",
            "s",
            "-q",
            "--json",
        ])
        .args(args));
    serde_json::from_str(&out).unwrap()
}

/// The agent under a budget (on the score-blind stand-in, whose replies are
/// random cells), with replies checked after decoding
/// (`decode_within_budget = false`): it evaluates only cells within it, its
/// prompts state the budget and each shown cell's cost, and replies whose
/// cells are all over it are answered with which were refused and why.
#[test]
fn the_agent_is_told_the_budget_and_why_a_reply_was_refused() {
    let d = tempfile::tempdir().unwrap();
    let s = blind_session(d.path(), "[agent]\ndecode_within_budget = false\n");
    assert_eq!(s["evaluations"], 15, "{s}");
    for e in events(&d.path().join("s"), "evaluation") {
        assert!(e["metrics"]["params"].as_f64().unwrap() <= 200_000.0, "{e}");
    }
    let journal = std::fs::read_to_string(d.path().join("s/journal.jsonl")).unwrap();
    assert!(
        journal.contains("Hard budget: params ≤ 0.200M"),
        "the system prompt states it"
    );
    assert!(
        journal.contains("M params, "),
        "shown cells carry their cost"
    );
    assert!(
        journal.contains("Over the hard budget (params ≤ 0.200M), refused without evaluation"),
        "a reply over budget is answered"
    );
    assert!(journal.contains("\"outcome\":\"over_budget\""));
}

/// By default the agent's replies are decoded within the budget on
/// NAS-Bench-201: the same session as above has no reply refused, and every
/// cell it evaluates fits.
#[test]
fn replies_are_decoded_within_the_budget() {
    let d = tempfile::tempdir().unwrap();
    let s = blind_session(d.path(), "");
    assert_eq!(s["evaluations"], 15, "{s}");
    assert_eq!(s["budget"]["refused"], 0, "{s}");
    for e in events(&d.path().join("s"), "evaluation") {
        assert!(e["metrics"]["params"].as_f64().unwrap() <= 200_000.0, "{e}");
    }
    let journal = std::fs::read_to_string(d.path().join("s/journal.jsonl")).unwrap();
    assert!(journal.contains("Hard budget: params ≤ 0.200M"));
    assert!(!journal.contains("\"outcome\":\"over_budget\""));
}

/// A constrained session killed mid-journal resumes to the same end as an
/// uninterrupted one, its costs read back from the journal.
#[test]
fn a_constrained_session_resumes_to_the_same_end() {
    let d = tempfile::tempdir().unwrap();
    let args = [
        "--strategy",
        "rea",
        "--budget",
        "30",
        "--max-params",
        "0.4M",
        "--objectives",
        "accuracy:max,flops:min",
    ];
    let whole = search(d.path(), "whole", &args);
    cut_run(&d.path().join("whole"), &d.path().join("cut"), 17, 0.5);
    let out = ok(seki(d.path()).args(["search", "--resume", "cut", "-q", "--json"]));
    let resumed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        evaluated(&d.path().join("whole")),
        evaluated(&d.path().join("cut"))
    );
    assert_eq!(whole["front"], resumed["front"]);
    assert_eq!(whole["best"]["arch"], resumed["best"]["arch"]);
}

/// `seki arch --cost` prints a cell's cost without training it: the
/// benchmark's published figure for the largest NAS-Bench-201 cell.
#[test]
fn arch_cost_prints_the_published_figures() {
    let d = tempfile::tempdir().unwrap();
    let out = ok(seki(d.path()).args([
        "arch",
        "--space",
        "nb201",
        "--cost",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    ]));
    assert!(out.contains("params   1531546\n"), "{out}");
    assert!(out.contains("flops    220119680\n"), "{out}");
    assert!(out.contains("NAS-Bench-201 benchmark network"), "{out}");
}

/// A latency budget measures each evaluated cell's batch-1 CPU latency
/// (median and spread) and keeps every one within it; one no cell meets
/// is refused with the fastest cell's figure.
#[test]
fn a_latency_budget_is_measured_and_kept() {
    let d = tempfile::tempdir().unwrap();
    let s = search(
        d.path(),
        "lat",
        &[
            "--strategy",
            "random",
            "--budget",
            "5",
            "--max-latency-ms",
            "10000",
        ],
    );
    assert_eq!(s["evaluations"], 5, "{s}");
    for e in events(&d.path().join("lat"), "evaluation") {
        let l = e["metrics"]["latency_ms"].as_f64().unwrap();
        assert!(l > 0.0 && l <= 10000.0, "{e}");
        assert!(e["metrics"]["latency_spread_ms"].as_f64().unwrap() >= 0.0);
    }
    let err = fails(seki(d.path()).args([
        "search",
        "--budget",
        "5",
        "--kb-records",
        "none",
        "--max-latency-ms",
        "0.000001",
    ]));
    assert!(err.contains("search.constraints.max_latency_ms"), "{err}");
    assert!(err.contains("the fastest"), "{err}");
}
