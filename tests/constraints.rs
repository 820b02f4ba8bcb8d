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
            let p = e["result"]["metrics"]["params"].as_f64().unwrap();
            assert!(p <= 400_000.0, "{strategy} evaluated {p} params: {e}");
            assert!(e["result"]["metrics"]["flops"].as_f64().unwrap() > 0.0);
        }
        let best = s["best"]["metrics"]["params"].as_f64().unwrap();
        assert!(best <= 400_000.0);
    }
}

/// Without a budget the same seed evaluates the same cells as ever (the
/// random stream is untouched), and some of them are over 0.4M: the
/// budget above is what kept them out.
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
    assert!(steps
        .iter()
        .all(|e| e["result"]["metrics"].get("params").is_none()));
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
}
