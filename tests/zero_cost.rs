//! Zero-cost proxies through the CLI: `seki proxy zc` on the real
//! NAS-Bench-201 table (worker processes, the real network, a Fashion-MNIST
//! batch), its CSV joined by `seki bench nb201 --proxies`, and a search
//! session screened by proxies computed as it goes.

mod common;

use common::{cut_run, fails, ok, seki, seki_with};

#[test]
fn proxy_zc_scores_a_table_sample_writes_a_resumable_csv_and_correlates() {
    let d = tempfile::tempdir().unwrap();
    let csv = d.path().join("zc.csv");
    // The sample's scoring command with `batch` images, writing `zc.csv`.
    let zc = |batch: &str| {
        let mut c = seki(d.path());
        c.args([
            "proxy",
            "zc",
            "--space",
            "nb201",
            "--sample",
            "12",
            "--seed",
            "4",
            "--proxies",
            "synflow,naswot",
            "--batch",
            batch,
            "--out",
        ])
        .arg(&csv);
        c
    };
    let run = || ok(zc("8").arg("--json"));
    let out = run();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["n"], 12);
    let proxies = v["proxies"].as_array().unwrap();
    let names: Vec<&str> = proxies
        .iter()
        .map(|p| p["proxy"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["synflow", "naswot", "params", "flops"]);
    for p in proxies {
        let rho = p["agreement"][0]["spearman_rho"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&rho), "{p}");
        assert_eq!(p["agreement"][0]["target"], "test_200ep");
    }
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 13, "{text}");
    assert!(text.starts_with(
        "index,arch,synflow,naswot,jacob_cov,snip,grad_norm,params,flops,seconds,note\n"
    ));
    // The figures sit beside the scores.
    assert!(d.path().join("zc.json").is_file());
    // A rerun with the same file scores nothing again: same rows, same figures.
    let again: serde_json::Value = serde_json::from_str(&run()).unwrap();
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), text);
    assert_eq!(
        again["proxies"][0]["agreement"],
        v["proxies"][0]["agreement"]
    );

    // The same file with another batch would mix two protocols: refused.
    let err = fails(&mut zc("16"));
    assert!(
        err.contains("zc.csv") && err.contains("batch differs"),
        "{err}"
    );
    // Settings that cannot work are refused before anything is scored.
    let err = fails(seki(d.path()).args([
        "proxy", "zc", "--space", "nb201", "--sample", "2", "--batch", "1",
    ]));
    assert!(err.contains("--batch"), "{err}");

    // The bench joins the file: REA with a zero-cost warm-up runs on it.
    let out = ok(seki(d.path())
        .args([
            "bench",
            "nb201",
            "--strategy",
            "rea,rea-zc",
            "--budget",
            "20",
            "--seeds",
            "2",
            "--warmup",
            "12",
            "--proxies",
        ])
        .arg(&csv));
    assert!(out.contains("rea-zc"), "{out}");

    // A file that does not match the table is refused, the line named.
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[3] = lines[3].replacen("~0|", "~1|", 1);
    let bad = d.path().join("bad.csv");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let err = fails(
        seki(d.path())
            .args([
                "bench",
                "nb201",
                "--strategy",
                "rea-zc",
                "--budget",
                "10",
                "--seeds",
                "1",
                "--proxies",
            ])
            .arg(&bad),
    );
    assert!(err.contains("bad.csv:4"), "{err}");
}

#[test]
fn a_search_screened_by_live_proxies_trains_the_warm_up_s_best_first() {
    let d = tempfile::tempdir().unwrap();
    let extra = "[search]\nspace = \"nb201\"\nstrategy = \"rea\"\nevaluator = \"nb201\"\nmax_evaluations = 25\nruns_dir = \"runs\"\n[search.screen]\nproxies = [\"synflow\"]\nwarmup = 24\n[strategy.rea]\npopulation = 8\nsample = 3\n";
    let out = ok(seki_with(d.path(), "screen", extra).args(["search", "--seed", "1", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ops = &v["operators"];
    assert_eq!(ops["zc-warmup"]["evaluations"], 8, "{v}");
    assert_eq!(v["screen"], "synflow");
    assert!(v["proxy_cpu_seconds"].as_f64().unwrap() > 0.0, "{v}");

    // An unknown proxy is refused at load, the key named.
    let bad = "[search.screen]\nproxies = [\"synflo\"]\n";
    let err = fails(seki_with(d.path(), "bad", bad).args(["search"]));
    assert!(
        err.contains("search.screen.proxies") && err.contains("synflo"),
        "{err}"
    );
}

/// A screened session killed in its warm-up's trainings and resumed ends as
/// the uninterrupted one: the proxies are computed again, deterministically,
/// and the warm-up's queue is in the journalled state.
#[test]
fn a_screened_session_resumed_after_a_crash_ends_as_if_never_interrupted() {
    let d = tempfile::tempdir().unwrap();
    let extra = "[search]\nspace = \"nb201\"\nstrategy = \"rea\"\nevaluator = \"nb201\"\nmax_evaluations = 30\n[search.screen]\nproxies = [\"synflow\"]\nwarmup = 24\n[strategy.rea]\npopulation = 10\nsample = 3\nscreen_mutations = 3\n";
    ok(seki_with(d.path(), "screen", extra).args([
        "search",
        "--seed",
        "5",
        "--run-dir",
        "whole",
        "-q",
    ]));
    // A kill mid-write of evaluation 6, inside the warm-up's ten.
    cut_run(&d.path().join("whole"), &d.path().join("cut"), 6, 0.5);
    let out = ok(seki_with(d.path(), "screen", extra)
        .args(["search", "--resume", "cut", "--kb", "kb2", "--json"]));
    let resumed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let whole: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.path().join("whole/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(resumed["best"], whole["best"]);
    assert_eq!(resumed["operators"], whole["operators"]);
    let archs = |run: &str| -> Vec<String> {
        common::journal(&d.path().join(run))
            .iter()
            .filter(|e| e["event"] == "evaluation")
            .map(|e| e["arch"].to_string())
            .collect()
    };
    assert_eq!(archs("whole"), archs("cut"));
    assert_eq!(archs("whole").len(), 30);
}
