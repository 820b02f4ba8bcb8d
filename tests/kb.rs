//! `seki kb ...`: the knowledge base from the command line.

mod common;
use common::*;
use std::path::Path;

const A: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";

fn copy_seed_kb(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(
        root().join("knowledge/architectures.jsonl"),
        to.join("architectures.jsonl"),
    )
    .unwrap();
}

#[test]
fn shipped_knowledge_base_holds_published_darts_cells_with_citations() {
    let d = tempfile::tempdir().unwrap();
    let out = ok(seki(d.path())
        .args(["kb", "list", "--kb"])
        .arg(root().join("knowledge"))
        .args(["--space", "darts", "--json"]));
    let recs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(recs.len() >= 7, "{out}");
    for want in ["darts-v1", "darts-v2", "pc-darts", "p-darts", "gdas"] {
        let r = recs
            .iter()
            .find(|r| r["id"] == want)
            .unwrap_or_else(|| panic!("{want} missing"));
        assert_eq!(r["provenance"]["source"], "paper");
        assert!(r["provenance"]["citation"].as_str().unwrap().len() > 20);
        assert!(r["metrics"]["params"].as_f64().unwrap() > 1e6);
        let err = r["metrics"]["test_error"].as_f64().unwrap();
        assert!((2.0..3.5).contains(&err));
    }
    // Distinct cells have distinct canonical hashes.
    let mut hashes: Vec<&str> = recs.iter().map(|r| r["hash"].as_str().unwrap()).collect();
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), recs.len());
}

#[test]
fn list_top_show_and_pareto() {
    let d = tempfile::tempdir().unwrap();
    copy_seed_kb(&d.path().join("kb"));
    let out = ok(seki(d.path()).args(["kb", "list", "--top", "2"]));
    // One protocol (published CIFAR-10 results): its header, the column
    // header and the best two.
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(out.starts_with("== published cifar10 test accuracy (10 records) =="));
    let top: Vec<serde_json::Value> = ok(seki(d.path()).args(["kb", "list", "--json"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for w in top.windows(2) {
        assert!(w[0]["score"].as_f64() >= w[1]["score"].as_f64());
    }
    let show = ok(seki(d.path()).args(["kb", "show", "darts-v2"]));
    let v: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert_eq!(v["name"], "DARTS_V2");
    assert_eq!(v["arch_json"]["normal"].as_array().unwrap().len(), 8);
    // By hash prefix.
    let hash = v["hash"].as_str().unwrap();
    let again: serde_json::Value =
        serde_json::from_str(&ok(seki(d.path()).args(["kb", "show", &hash[..8]]))).unwrap();
    assert_eq!(again["id"], "darts-v2");
    let pareto = ok(seki(d.path()).args(["kb", "list", "--pareto", "--json"]));
    let front: Vec<serde_json::Value> = pareto
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!front.is_empty() && front.len() < top.len());
    for w in front.windows(2) {
        // Along the front, more parameters buy a better score.
        assert!(w[1]["metrics"]["params"].as_f64() >= w[0]["metrics"]["params"].as_f64());
        assert!(w[1]["score"].as_f64() > w[0]["score"].as_f64());
    }
    let e = fails(seki(d.path()).args(["kb", "show", "no-such-id"]));
    assert!(e.contains("no-such-id"), "{e}");
}

#[test]
fn add_remove_export_import_dedupe() {
    let d = tempfile::tempdir().unwrap();
    let rec = serde_json::json!({"space": "nb201", "arch": A, "score": 84.0, "metrics": {"params": 1.2e6}});
    std::fs::write(d.path().join("one.json"), rec.to_string()).unwrap();
    let out = ok(seki(d.path()).args(["kb", "add", "one.json"]));
    assert!(out.contains("added 1 record"), "{out}");
    let e = fails(seki(d.path()).args(["kb", "add", "one.json"]));
    assert!(e.contains("already exists"), "{e}");
    // The same architecture under another id is a duplicate for dedupe.
    let mut rec2 = rec.clone();
    rec2["id"] = "again".into();
    std::fs::write(d.path().join("two.jsonl"), format!("{rec2}\n")).unwrap();
    ok(seki(d.path()).args(["kb", "add", "two.jsonl"]));
    let out = ok(seki(d.path()).args(["kb", "dedupe"]));
    assert!(out.contains("removed again"), "{out}");
    assert!(ok(seki(d.path()).args(["kb", "dedupe"])).contains("no duplicates"));
    ok(seki(d.path()).args(["kb", "export", "out.json"]));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("out.json")).unwrap()).unwrap();
    assert_eq!(doc["format"], "seki-kb/1");
    assert_eq!(doc["architectures"].as_array().unwrap().len(), 1);
    let out = ok(seki(d.path()).args(["kb", "import", "out.json", "--kb", "other"]));
    assert!(out.contains("imported 1 record"), "{out}");
    let out = ok(seki(d.path()).args(["kb", "import", "out.json", "--kb", "other"]));
    assert!(out.contains("1 record(s) were already present"), "{out}");
    let id = doc["architectures"][0]["id"].as_str().unwrap().to_string();
    ok(seki(d.path()).args(["kb", "remove", &id]));
    assert_eq!(
        ok(seki(d.path()).args(["kb", "list", "--json"]))
            .lines()
            .count(),
        0
    );
    assert!(ok(seki(d.path()).args(["kb", "insights"])).contains("no insights"));
}

#[test]
fn bad_records_and_lines_name_file_line_and_problem() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("bad.json"),
        r#"{"space": "nb201", "arch": "|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|"}"#,
    )
    .unwrap();
    let e = fails(seki(d.path()).args(["kb", "add", "bad.json"]));
    assert!(
        e.contains("bad.json: record 1: field arch")
            && e.contains("conv_9x9")
            && e.contains("nor_conv_3x3"),
        "{e}"
    );
    std::fs::write(d.path().join("nospace.json"), r#"{"arch": "x"}"#).unwrap();
    let e = fails(seki(d.path()).args(["kb", "add", "nospace.json"]));
    assert!(e.contains("missing field space"), "{e}");

    copy_seed_kb(&d.path().join("kb"));
    let path = d.path().join("kb/architectures.jsonl");
    let orig = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = orig.lines().collect();
    let broken = lines[2].replacen("sep_conv_3x3", "sep_conv_9x9", 1);
    let text = format!(
        "{}\n{}\n{}\n{{not json\n",
        lines[..2].join("\n"),
        broken,
        lines[3..].join("\n")
    );
    std::fs::write(&path, &text).unwrap();
    let e = fails(seki(d.path()).args(["kb", "list"]));
    assert!(
        e.contains("architectures.jsonl:3")
            && e.contains("sep_conv_9x9")
            && e.contains("--skip-bad-lines"),
        "{e}"
    );
    let (ok_, out, err) = run(seki(d.path()).args(["kb", "list", "--skip-bad-lines", "--json"]));
    assert!(ok_, "{err}");
    assert_eq!(out.lines().count(), lines.len() - 1);
    assert!(
        err.contains(":3:") && err.contains(&format!(":{}:", lines.len() + 1)),
        "{err}"
    );
}

#[test]
fn a_crash_mid_append_does_not_break_the_next_load() {
    let d = tempfile::tempdir().unwrap();
    copy_seed_kb(&d.path().join("kb"));
    let path = d.path().join("kb/architectures.jsonl");
    let whole = std::fs::read_to_string(&path).unwrap();
    let n = whole.lines().count();
    // A half-written last record (no newline): what a kill during append leaves.
    std::fs::write(&path, format!("{whole}{}", &whole[..80])).unwrap();
    assert_eq!(
        ok(seki(d.path()).args(["kb", "list", "--json"]))
            .lines()
            .count(),
        n
    );
    let rec = serde_json::json!({"space": "nb201", "arch": A, "score": 80.0});
    std::fs::write(d.path().join("r.json"), rec.to_string()).unwrap();
    ok(seki(d.path()).args(["kb", "add", "r.json"]));
    assert_eq!(
        ok(seki(d.path()).args(["kb", "list", "--json"]))
            .lines()
            .count(),
        n + 1
    );
}

#[test]
fn second_writer_gets_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("kb")).unwrap();
    let _held = seki::knowledge::FileLock::acquire(&d.path().join("kb/.lock")).unwrap();
    std::fs::write(
        d.path().join("r.json"),
        serde_json::json!({"space": "nb201", "arch": A}).to_string(),
    )
    .unwrap();
    let e = fails(seki(d.path()).args(["kb", "add", "r.json"]));
    assert!(
        e.contains("locked by another writer")
            && e.contains(&format!("pid {}", std::process::id())),
        "{e}"
    );
    let e = fails(seki(d.path()).args(["search", "--budget", "3", "--run-dir", "r"]));
    assert!(
        e.contains("locked") && e.contains("--kb-records none"),
        "{e}"
    );
    // Readers are not blocked.
    ok(seki(d.path()).args(["kb", "list"]));
}

/// An insight line of a session's knowledge base: a claim with the
/// session's verdict.
fn insight(id: &str, op: &str, place: &str, effect: &str, verdict: &str) -> String {
    serde_json::json!({
        "id": id, "space": "nb201", "text": format!("{op} on {place} {effect}"),
        "evidence": [], "status": "active",
        "claim": {"op": op, "where": place, "effect": effect},
        "stats": {"n_with": 10, "mean_with": 90.0, "n_without": 10, "mean_without": 80.0,
                  "effect_size": 1.0, "verdict": verdict},
        "provenance": {"source": "llm"}, "created": "2026-12-07T00:00:00Z"
    })
    .to_string()
}

#[test]
fn claims_are_judged_against_the_whole_table() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("kb-a"), d.path().join("kb-b"));
    for (dir, lines) in [
        (
            &a,
            vec![
                // True on the table: cells with `none` on an edge score lower
                // and are rarer among the best.
                insight("i1", "none", "anywhere", "hurts", "supported"),
                // False: the same op said to help.
                insight("i2", "none", "node1<-0", "helps", "supported"),
            ],
        ),
        (
            &b,
            vec![
                insight("i3", "nor_conv_3x3", "anywhere", "helps", "supported"),
                insight("i4", "avg_pool_3x3", "node2<-0", "hurts", "undecided"),
            ],
        ),
    ] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("insights.jsonl"), lines.join("\n") + "\n").unwrap();
    }
    let out = seki(d.path())
        .args(["kb", "truth", "--kb"])
        .arg(&a)
        .arg("--kb")
        .arg(&b)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("15625 cells"), "{text}");
    let line = |claim: &str| {
        text.lines()
            .find(|l| l.contains(claim))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line("none anywhere in the cell hurts").contains("true"),
        "{text}"
    );
    assert!(line("none on node1<-0 helps").contains("false"), "{text}");
    assert!(
        line("nor_conv_3x3 anywhere in the cell helps").contains("true"),
        "{text}"
    );
    assert!(
        text.contains("supported claims true: 2 of 3 (67 %) over 2 knowledge base(s)"),
        "{text}"
    );
    // JSON: one object per claim, then the tally by the session's verdict.
    let out = seki(d.path())
        .args(["kb", "truth", "--json", "--kb"])
        .arg(&a)
        .arg("--kb")
        .arg(&b)
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    let tally = &lines[4]["tally"];
    assert_eq!(tally["supported"]["claims"], 3);
    assert_eq!(tally["supported"]["true"], 2);
    assert_eq!(tally["supported"]["false"], 1);
    assert_eq!(tally["undecided"]["claims"], 1);
    // A fraction outside (0, 1) is refused, naming the flag.
    let out = seki(d.path())
        .args(["kb", "truth", "--top", "1.5", "--kb"])
        .arg(&a)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--top"));
}

/// `seki kb truth --rejudge RUN`: each claim is judged again on its
/// session's evaluations (the run's journal) with the current rule, across
/// cells and within parent–child lineages; claims of other sessions are
/// left out.
#[test]
fn claims_are_judged_again_on_their_sessions_evaluations() {
    let d = tempfile::tempdir().unwrap();
    ok(seki(d.path()).args([
        "search",
        "--strategy",
        "rea",
        "--space",
        "nb201",
        "--evaluator",
        "nb201",
        "--budget",
        "60",
        "--seed",
        "1",
        "--kb-records",
        "none",
        "--run-dir",
        "r",
        "-q",
    ]));
    let start = &journal(&d.path().join("r"))[0];
    let session = start["session"].as_str().unwrap().to_string();
    let of = |line: String, session: &str| {
        let mut v: serde_json::Value = serde_json::from_str(&line).unwrap();
        v["provenance"]["session"] = session.into();
        v.to_string()
    };
    let kb = d.path().join("kb-r");
    std::fs::create_dir_all(&kb).unwrap();
    let lines = [
        // Held as contradicted and supported: the opposite of the data.
        of(
            insight("i1", "none", "node3<-0", "hurts", "contradicted"),
            &session,
        ),
        of(
            insight("i2", "none", "node3<-0", "helps", "supported"),
            &session,
        ),
        of(
            insight("i3", "none", "anywhere", "hurts", "supported"),
            "another-session",
        ),
    ];
    std::fs::write(kb.join("insights.jsonl"), lines.join("\n") + "\n").unwrap();
    let out = seki(d.path())
        .args(["kb", "truth", "--json", "--kb"])
        .arg(&kb)
        .arg("--rejudge")
        .arg(d.path().join("r"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("judged 2 claims again"), "{stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "the other session's claim is left out");
    let verdict = |id: &str| {
        lines
            .iter()
            .find(|l| l["insight"] == id)
            .map(|l| l["session"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    // `none` hurts on the table, and within the session's mutations.
    // `none` on that edge hurts, on the table and in the session: across
    // its cells and within its mutations.
    assert_eq!(verdict("i1"), "supported", "{lines:?}");
    assert_eq!(verdict("i2"), "contradicted", "{lines:?}");
    let out = seki(d.path())
        .args(["kb", "truth", "--kb"])
        .arg(&kb)
        .arg("--rejudge")
        .arg(d.path().join("missing"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing"),
        "the run folder is named"
    );
}
