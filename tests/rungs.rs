//! Fidelity rungs from the command line (issue 28): a session promotes the
//! best fraction of each rung's results to the next rung as it goes
//! (asynchronous successive halving), returns the best at the highest rung
//! reached, compares it with its seed there, and reports each promoted
//! cell's path; rung lists that cannot work are refused at load.

mod common;

use common::{fails, journal, ok, table};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A config in `dir`: the seki agent answered by the score-blind stand-in,
/// the table with noise sd 2 at rung 1, 0.5 at rung 2 and none at rung 3,
/// and the TOML `extra` in `[search]`.
fn config(dir: &Path, extra: &str, rungs: &str) -> PathBuf {
    let cfg = dir.join("rungs.toml");
    std::fs::write(
        &cfg,
        format!(
            "[kb]\ndir = \"kb\"\n[search]\nspace = \"nb201\"\nstrategy = \"seki\"\nevaluator = \"nb201\"\nkb_records = \"none\"\n{extra}\n{rungs}\n[evaluator.nb201]\ntable = \"{}\"\nnoise_sd = 2.0\nnoise_seed = 5\n[llm]\ndefault_profile = \"b\"\n[llm.profiles.b]\nkind = \"blind\"\nseed = 3\n",
            table().display()
        ),
    )
    .unwrap();
    cfg
}

const THREE_RUNGS: &str = "[[search.rungs]]\nnoise_sd = 0.5\n[[search.rungs]]\nnoise_sd = 0.0\n";

fn seki(dir: &Path, cfg: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_seki"));
    c.current_dir(dir)
        .arg("--config")
        .arg(cfg)
        .env_remove("RUST_LOG");
    c
}

#[test]
fn a_session_promotes_the_best_of_each_rung_and_answers_at_the_top() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(
        d.path(),
        "promote = 0.34\nmax_evaluations = 40",
        THREE_RUNGS,
    );
    let out =
        ok(seki(d.path(), &cfg).args(["search", "--run-dir", "run", "--seed", "4", "--json"]));
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    let run = d.path().join("run");
    let j = journal(&run);

    // Replay the journal: every promotion to rung r + 1 must be of an
    // architecture among the best ⌊n · 0.34⌋ of the n results at rung r
    // known when it was made, or the seed (evaluation 1).
    let mut at: BTreeMap<u32, Vec<(usize, f64)>> = BTreeMap::new();
    let mut promotions = 0;
    for e in &j {
        match e["event"].as_str() {
            Some("evaluation") => {
                if let Some(x) = e["score"].as_f64() {
                    at.entry(1)
                        .or_default()
                        .push((e["n"].as_u64().unwrap() as usize, x));
                }
            }
            Some("reevaluation") if e["purpose"] == "promotion" => {
                promotions += 1;
                let rung = e["rung"].as_u64().unwrap() as u32;
                let of = e["of"].as_u64().unwrap() as usize;
                assert!(rung >= 2, "{e}");
                let mut below = at.get(&(rung - 1)).cloned().unwrap_or_default();
                assert!(
                    below.iter().any(|(n, _)| *n == of),
                    "promoted to rung {rung} without a result at rung {}: {e}",
                    rung - 1
                );
                below.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                let k = (below.len() as f64 * 0.34 + 1e-9).floor() as usize;
                assert!(
                    of == 1 || below.iter().take(k).any(|(n, _)| *n == of),
                    "evaluation {of} is not among the best {k} of rung {}: {below:?}",
                    rung - 1
                );
                if let Some(x) = e["score"].as_f64() {
                    at.entry(rung).or_default().push((of, x));
                }
            }
            _ => {}
        }
    }
    assert!(promotions >= 5, "{promotions} promotions: {s}");
    assert!(at.get(&3).is_some_and(|v| v.len() >= 2), "{at:?}");
    // The seed went up every rung.
    assert!(at[&3].iter().any(|(n, _)| *n == 1), "{at:?}");

    // The answer: the best at the highest rung, with its rung.
    let rungs = &s["rungs"];
    assert_eq!(rungs["highest_reached"], 3, "{s}");
    assert_eq!(rungs["rungs"][2]["settings"], "table", "{s}");
    assert_eq!(rungs["rungs"][1]["settings"], "table, noise sd 0.5", "{s}");
    let top = &at[&3];
    let best = top
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .unwrap();
    assert_eq!(s["best"]["rung"], 3, "{s}");
    assert_eq!(s["best"]["evaluation"], best.0, "{s}");
    assert!(
        (s["best"]["score"].as_f64().unwrap() - best.1).abs() < 1e-9,
        "{s}"
    );
    // Every evaluation counts against the budget: searched and promoted.
    assert_eq!(
        s["evaluations"].as_u64().unwrap() + s["reevaluations"].as_u64().unwrap(),
        40,
        "{s}"
    );

    // Against the seed at the top rung, in words and figures.
    let vs = &s["against_seed"];
    assert_eq!(vs["rung"], 3, "{s}");
    assert_eq!(vs["seed_evaluation"], 1, "{s}");
    let seed3 = at[&3].iter().find(|(n, _)| *n == 1).unwrap().1;
    assert!(
        (vs["seed_score"].as_f64().unwrap() - seed3).abs() < 1e-9,
        "{s}"
    );
    let verdict = vs["verdict"].as_str().unwrap();
    assert!(
        ["better", "worse", "within noise", "same"].contains(&verdict),
        "{s}"
    );
    if best.0 != 1 {
        // The table at rung 3 has no noise beyond its 25,000 images'
        // binomial error (about ± 0.26).
        let diff = best.1 - seed3;
        let (a, b) = (
            vs["seed_se"].as_f64().unwrap(),
            vs["best_se"].as_f64().unwrap(),
        );
        assert!(a < 0.4 && b < 0.4, "{s}");
        let expected = if diff > 1.96 * (a * a + b * b).sqrt() {
            "better"
        } else {
            "within noise"
        };
        assert_eq!(verdict, expected, "{s}");
    }

    // The reports show the rungs and each promoted cell's path.
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("## Fidelity rungs"), "{md}");
    assert!(
        md.contains("| evaluation | rung 1 | rung 2 | rung 3 |"),
        "{md}"
    );
    assert!(md.contains("## Against the seed"), "{md}");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("Paths through the rungs"));

    // The agent was told which rung its scores are from.
    let text = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    assert!(
        text.contains("Scores: every score shown is from rung 1 of 3 (table, noise sd 2)"),
        "the system prompt names the rung"
    );
}

#[test]
fn one_rung_is_the_default_and_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), "max_evaluations = 12", "");
    let out = ok(seki(d.path(), &cfg).args(["search", "--run-dir", "run", "--json"]));
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(s.get("rungs").is_none(), "{s}");
    assert!(s["best"].get("rung").is_none(), "{s}");
    assert_eq!(s["evaluations"], 12, "{s}");
    assert_eq!(s["reevaluations"], 0, "{s}");
    // The seed comparison is there with one rung too.
    assert_eq!(s["against_seed"]["rung"], 1, "{s}");
    let text = std::fs::read_to_string(d.path().join("run/journal.jsonl")).unwrap();
    assert!(!text.contains("Scores: every score"));
}

#[test]
fn rung_lists_that_cannot_work_are_refused_with_the_key() {
    let d = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str); 4] = [
        (
            "",
            "[[search.rungs]]\nnoise_sd = 0.5\n[[search.rungs]]\nnoise_sd = 1.0\n",
            "search.rungs[2].noise_sd",
        ),
        ("promote = 1.5", THREE_RUNGS, "search.promote"),
        ("promote = 0", THREE_RUNGS, "search.promote"),
        (
            "",
            "[[search.rungs]]\nepochs = 3\n",
            "search.rungs[1].epochs",
        ),
    ];
    for (extra, rungs, key) in cases {
        let cfg = config(d.path(), extra, rungs);
        let err = fails(seki(d.path(), &cfg).args(["search", "--run-dir", "bad"]));
        assert!(err.contains(key), "{key}: {err}");
        assert!(err.contains("rungs.toml:"), "the file and line: {err}");
        assert!(!d.path().join("bad").exists());
    }
    // Candle rungs: a validation set larger than the data, a cheaper rung.
    let cfg = d.path().join("candle.toml");
    std::fs::write(
        &cfg,
        "[search]\nspace = \"darts\"\nevaluator = \"candle\"\n[[search.rungs]]\nvalid_size = 40000\ntrain_subset = 30000\n[evaluator.candle]\ntrain_subset = 1000\n",
    )
    .unwrap();
    let err = fails(seki(d.path(), &cfg).args(["search", "--run-dir", "bad"]));
    assert!(
        err.contains("search.rungs[1].valid_size") && err.contains("60000"),
        "{err}"
    );
    std::fs::write(
        &cfg,
        "[search]\nspace = \"darts\"\nevaluator = \"candle\"\n[[search.rungs]]\nepochs = 3\n[[search.rungs]]\nepochs = 2\ntrain_subset = 9000\n",
    )
    .unwrap();
    let err = fails(seki(d.path(), &cfg).args(["search", "--run-dir", "bad"]));
    assert!(
        err.contains("search.rungs[2].epochs") && err.contains("below"),
        "{err}"
    );
}
