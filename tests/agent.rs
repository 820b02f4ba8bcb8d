//! The SEKI agent driven by recorded LLM replies: exact behaviour, replay,
//! resume, and prompt-template errors.

mod common;
use common::*;
use std::path::Path;

const FIXTURE: &str = "tests/fixtures/seki-nb201-replies.jsonl";

fn fixture() -> String {
    root().join(FIXTURE).display().to_string()
}

fn evaluations(dir: &Path) -> Vec<serde_json::Value> {
    journal(dir)
        .into_iter()
        .filter(|e| e["event"] == "evaluation")
        .collect()
}

fn hash(arch: &str) -> String {
    seki::space::Space::Nb201.parse(arch).unwrap().hash()
}

/// Recorded replies (`{"text": ...}` lines) in `dir/replies.jsonl`, and an
/// empty knowledge base folder beside them.
fn write_replies(dir: &Path, replies: &[String]) -> std::path::PathBuf {
    let file = dir.join("replies.jsonl");
    let lines: Vec<String> = replies
        .iter()
        .map(|t| serde_json::json!({"text": t}).to_string())
        .collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    std::fs::create_dir_all(dir.join("kb")).unwrap();
    file
}

fn run_fixture(d: &Path, run: &str, kb: &str) -> serde_json::Value {
    std::fs::create_dir_all(d.join(kb)).unwrap();
    let out = ok(seki(d).args([
        "search",
        "--strategy",
        "seki",
        "--budget",
        "8",
        "--run-dir",
        run,
        "--kb",
        kb,
        "--llm-replay",
        &fixture(),
        "--json",
    ]));
    serde_json::from_str(&out).unwrap()
}

#[test]
fn recorded_replies_drive_the_loop_exactly() {
    let d = tempfile::tempdir().unwrap();
    let summary = run_fixture(d.path(), "run", "kb");
    let evs = evaluations(&d.path().join("run"));
    assert_eq!(evs.len(), 8);
    // What the fixture's replies say, in the order the agent asks for them.
    let expected = [
        (2, "evolution (parsed)", "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|nor_conv_3x3~0|skip_connect~1|nor_conv_1x1~2|"),
        (3, "evolution (repaired)", "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"),
        (4, "evolution (parsed)", "|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"),
        (5, "inspiration (parsed)", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"),
        (7, "evolution (parsed)", "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"),
        (8, "evolution (parsed)", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"),
    ];
    for (n, origin, arch) in expected {
        let e = &evs[n - 1];
        assert_eq!(e["origin"], origin, "evaluation {n}");
        assert_eq!(e["hash"], hash(arch), "evaluation {n}");
    }
    assert!(evs[0]["origin"]
        .as_str()
        .unwrap()
        .starts_with("seed: random"));
    // Evaluation 6: three unusable replies, then a one-edge mutation of the
    // current architecture (evaluation 5, the best so far).
    assert!(evs[5]["origin"]
        .as_str()
        .unwrap()
        .starts_with("evolution (fallback: mutation; unparsable after 2 repairs"));
    let cur = seki::space::Space::Nb201
        .parse(evs[4]["arch"].as_str().unwrap())
        .unwrap();
    let fb = seki::space::Space::Nb201
        .parse(evs[5]["arch"].as_str().unwrap())
        .unwrap();
    let (seki::space::Arch::Nb201(a), seki::space::Arch::Nb201(b)) = (cur, fb) else {
        panic!()
    };
    assert_eq!(
        a.ops
            .iter()
            .zip(b.ops.iter())
            .filter(|(x, y)| x != y)
            .count(),
        1
    );
    // Counts.
    assert_eq!(summary["parsed_first_try"], 5);
    assert_eq!(summary["parsed_after_repair"], 1);
    assert_eq!(summary["fell_back"], 1);
    // The one repeated reply was caught and asked again: not a skipped
    // proposal (the journal has no duplicate line), a repeated reply.
    assert_eq!(summary["duplicates"], 0);
    assert_eq!(summary["llm_duplicates"], 1);
    assert_eq!(summary["evaluations"], 8);
    assert_eq!(summary["usage"]["evolution_arch"]["calls"], 10);
    assert_eq!(summary["usage"]["inspiration_patterns"]["calls"], 1);
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("run/summary.json")).unwrap())
            .unwrap();
    for key in [
        "parsed_first_try",
        "parsed_after_repair",
        "fell_back",
        "duplicates",
        "evaluations",
        "best",
    ] {
        assert_eq!(on_disk[key], summary[key], "{key}");
    }
    // The duplicate was named to the LLM.
    let j = journal(&d.path().join("run"));
    let dup_prompt = j
        .iter()
        .filter(|e| e["event"] == "strategy" && e["detail"]["kind"] == "llm")
        .nth(7)
        .unwrap()["detail"]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(dup_prompt.contains("Evaluated already"), "{dup_prompt}");
    // Insights: the two bullet lines, citing three of the first four evaluations, stored with their evidence.
    let ins: Vec<serde_json::Value> =
        ok(seki(d.path()).args(["kb", "insights", "--kb", "kb", "--json"]))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert_eq!(ins.len(), 2);
    assert_eq!(
        ins[0]["text"],
        "nor_conv_3x3 on node1<-0 helps: every top cell has it"
    );
    assert_eq!(
        ins[1]["text"],
        "skip_connect on node3<-0 helps: the input reaches the output"
    );
    // Ids are the session's: the run folder's name and a unique suffix.
    let session = summary["session"].as_str().unwrap();
    assert!(session.starts_with("run-") && session.len() == "run-".len() + 6);
    assert_eq!(ins[0]["id"], format!("{session}-i001"));
    let evidence: Vec<&str> = ins[0]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(evidence.len(), 3);
    let records = ok(seki(d.path()).args(["kb", "list", "--kb", "kb", "--json"]));
    for id in &evidence {
        assert!((1..=4).any(|n| *id == format!("{session}-{n:04}")), "{id}");
        assert!(
            records.contains(&format!("\"id\":\"{id}\"")),
            "evidence {id} missing from the knowledge base"
        );
    }
    assert_eq!(ins[0]["provenance"]["strategy"], "seki");
    // Each states a checkable claim, scored on the evaluated cells as results
    // arrived (the last score is stored); the junk pattern was rejected.
    assert_eq!(ins[0]["claim"]["op"], "nor_conv_3x3");
    assert_eq!(ins[0]["claim"]["where"], "node1<-0");
    let n = |i: usize, k: &str| ins[i]["stats"][k].as_u64().unwrap();
    assert!(n(0, "n_with") + n(0, "n_without") >= 5, "{}", ins[0]);
    assert_eq!(summary["insights_rejected"], 1);
    assert!(ins[0]["provenance"]["prompt_template"]
        .as_str()
        .unwrap()
        .starts_with("inspiration_patterns"));
    // Test figures never reach a prompt.
    for e in j
        .iter()
        .filter(|e| e["event"] == "strategy" && e["detail"]["kind"] == "llm")
    {
        let text = e["detail"]["messages"].to_string();
        for ev in &evs {
            let t = format!("{:.2}", ev["test_accuracy"].as_f64().unwrap());
            assert!(
                !text.contains(&t)
                    || text.contains(&format!("{:.2}", ev["score"].as_f64().unwrap())),
                "test accuracy {t} in a prompt"
            );
        }
        assert!(
            !text.contains("test"),
            "a prompt mentions test figures: {text}"
        );
    }
}

#[test]
fn replay_reproduces_the_session_without_an_llm() {
    let d = tempfile::tempdir().unwrap();
    run_fixture(d.path(), "orig", "kb");
    let (ok_, out, err) =
        run(seki(d.path()).args(["search", "--replay", "orig", "--run-dir", "again", "--json"]));
    assert!(ok_, "{err}");
    assert!(
        err.contains("replay matches orig: the same 8 evaluations"),
        "{err}"
    );
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    let orig: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("orig/summary.json")).unwrap())
            .unwrap();
    assert_eq!(s["best"], orig["best"]);
    let a: Vec<_> = evaluations(&d.path().join("orig"))
        .iter()
        .map(|e| e["arch"].clone())
        .collect();
    let b: Vec<_> = evaluations(&d.path().join("again"))
        .iter()
        .map(|e| e["arch"].clone())
        .collect();
    assert_eq!(a, b);
    // A baseline session has nothing to replay.
    ok(seki(d.path()).args([
        "search",
        "--budget",
        "3",
        "--run-dir",
        "rea",
        "--kb-records",
        "none",
        "-q",
    ]));
    let e = fails(seki(d.path()).args(["search", "--replay", "rea"]));
    assert!(e.contains("only seki sessions"), "{e}");
}

#[test]
fn resume_after_a_kill_equals_an_uninterrupted_run() {
    let d = tempfile::tempdir().unwrap();
    run_fixture(d.path(), "whole", "kb1");
    // Cut the journal in the middle of the 5th evaluation's line, after the
    // LLM exchanges of that proposal: what a kill at that moment leaves.
    cut_run(&d.path().join("whole"), &d.path().join("cut"), 5, 0.333);
    std::fs::create_dir_all(d.path().join("kb2")).unwrap();
    let out = ok(seki(d.path()).args([
        "search",
        "--resume",
        "cut",
        "--kb",
        "kb2",
        "--llm-replay",
        &fixture(),
        "--json",
    ]));
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    let whole: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.path().join("whole/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(s["best"], whole["best"]);
    let a: Vec<_> = evaluations(&d.path().join("whole"))
        .iter()
        .map(|e| e["arch"].clone())
        .collect();
    let b: Vec<_> = evaluations(&d.path().join("cut"))
        .iter()
        .map(|e| e["arch"].clone())
        .collect();
    assert_eq!(a, b);
}

#[test]
fn a_broken_user_template_is_named_with_its_line() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("prompts")).unwrap();
    std::fs::write(
        d.path().join("prompts/evolution_strategy.j2"),
        "Current: {{ current.arch }}\nScore: {{ curent.score }}\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("c.toml"),
        format!("[evaluator.nb201]\ntable = \"{}\"\n[agent]\nprompts_dir = \"prompts\"\n[search]\nkb_records = \"none\"\n", table().display()),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_seki"));
    cmd.current_dir(d.path()).args([
        "--config",
        "c.toml",
        "search",
        "--strategy",
        "seki",
        "--budget",
        "3",
        "--run-dir",
        "r",
        "--kb",
        "nokb",
        "--llm-replay",
        &fixture(),
    ]);
    let e = fails(&mut cmd);
    assert!(
        e.contains("evolution_strategy") && e.contains("line 2") && e.contains("curent"),
        "{e}"
    );
}

#[test]
fn report_compares_runs_with_charts_and_insights() {
    let d = tempfile::tempdir().unwrap();
    let (ok_, out, err) = run(seki(d.path()).args([
        "search",
        "--strategy",
        "seki",
        "--budget",
        "8",
        "--run-dir",
        "s",
        "--kb",
        "kb",
        "--llm-replay",
        &fixture(),
    ]));
    assert!(ok_, "{err}");
    assert!(out.contains("report     s/report.md"), "{out}");
    ok(seki(d.path()).args([
        "search",
        "--budget",
        "12",
        "--run-dir",
        "r",
        "--kb-records",
        "none",
        "-q",
    ]));
    let out = ok(seki(d.path()).args(["report", "s", "r", "--out", "cmp"]));
    assert_eq!(out.trim(), "cmp/report.md\ncmp/report.html");
    let md = std::fs::read_to_string(d.path().join("cmp/report.md")).unwrap();
    let row = |run: &str, tail: &str| {
        md.lines()
            .any(|l| l.starts_with(&format!("| {run}-")) && l.contains(tail))
    };
    assert!(row("s", " (seki) | seki | 8 |"), "{md}");
    assert!(row("r", " (rea) | rea | 12 |"), "{md}");
    for want in [
        "best_so_far.svg",
        "## Insights",
        "-i001",
        "evidence: `s-",
        "| 5 | 1 | 1 | 0 | 1 |",
        "## Tokens and cost",
        "inspiration_patterns",
    ] {
        assert!(md.contains(want), "{want} missing from\n{md}");
    }
    let svg = std::fs::read_to_string(d.path().join("cmp/best_so_far.svg")).unwrap();
    // A standalone file: XML declaration, the SVG namespace, a size.
    assert!(
        svg.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\""
        ) && svg.contains(" width=\"")
            && svg.contains(" height=\"")
            && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );
    // One line, one band of ± one standard error and one legend mark per
    // run, in each run's colour.
    for colour in ["#1f77b4", "#ff7f0e"] {
        assert_eq!(
            svg.matches(&format!("stroke=\"{colour}\"")).count(),
            1,
            "{svg}"
        );
        assert_eq!(
            svg.matches(&format!("fill=\"{colour}\"")).count(),
            2,
            "{svg}"
        );
    }
    assert_eq!(svg.matches("class=\"se-band\"").count(), 2, "{svg}");
    assert!(svg.contains(" (seki)") && svg.contains(" (rea)"));
    let e = fails(seki(d.path()).args(["report", "nowhere"]));
    assert!(e.contains("nowhere"), "{e}");
}

#[test]
fn token_and_cost_budgets_stop_the_session() {
    let d = tempfile::tempdir().unwrap();
    // The fixture's replies, each now reporting 120 tokens and $0.001.
    let priced: String = std::fs::read_to_string(root().join(FIXTURE))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let full = serde_json::json!({"prompt": null, "response": {
                "text": v["text"], "usage": {"prompt_tokens": 100, "completion_tokens": 20},
                "latency_seconds": 0.5, "finish": "stop", "model": "priced", "cost_usd": 0.001}});
            format!("{full}\n")
        })
        .collect();
    std::fs::write(d.path().join("priced.jsonl"), priced).unwrap();
    for (flag, value, reason) in [
        ("--max-tokens", "500", "LLM tokens"),
        ("--max-cost", "0.003", "LLM cost"),
    ] {
        let run_dir = format!("r{flag}");
        let out = ok(seki(d.path()).args([
            "search",
            "--strategy",
            "seki",
            "--budget",
            "8",
            "--run-dir",
            &run_dir,
            "--kb-records",
            "none",
            "--kb",
            "nokb",
            "--llm-replay",
            "priced.jsonl",
            flag,
            value,
            "--json",
        ]));
        let s: serde_json::Value = serde_json::from_str(&out).unwrap();
        // Evaluation 2 uses 2 calls (240 tokens, $0.002); evaluation 3 three more
        // (strategy, an unusable architecture, its repair).
        assert_eq!(s["evaluations"], 3, "{s}");
        assert!(s["stop_reason"].as_str().unwrap().contains(reason), "{s}");
        assert_eq!(s["tokens"], 600);
    }
}

#[test]
fn several_candidates_per_reply_are_evaluated_in_order_without_duplicates() {
    let d = tempfile::tempdir().unwrap();
    let (a, b, c, e) = (
        "conv3 | conv3 conv1 | skip conv3 conv1",
        "conv3 | conv1 conv1 | skip conv3 conv1",
        "conv1 | conv3 conv1 | skip conv3 conv3",
        "avg | conv3 conv1 | skip conv3 conv3",
    );
    let replies = [
        "Widen the first node.".to_string(),
        // A repeated candidate within one reply counts once.
        format!("{a}\n{a}\n{b}"),
        "Try 1x1 convolutions.".to_string(),
        // `a` was evaluated already: it never reaches the evaluator.
        format!("{c}\n{a}\n{e}"),
    ];
    let file = write_replies(d.path(), &replies);
    let out = ok(
        seki_with(d.path(), "cfg", "[agent]\ncandidates = 3\n").args([
            "search",
            "--strategy",
            "seki",
            "--budget",
            "5",
            "--run-dir",
            "run",
            "--llm-replay",
            file.to_str().unwrap(),
            "--json",
        ]),
    );
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    let evs = evaluations(&d.path().join("run"));
    let got: Vec<String> = evs[1..]
        .iter()
        .map(|e| e["arch"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = [a, b, c, e]
        .iter()
        .map(|x| seki::space::Space::Nb201.parse(x).unwrap().to_text())
        .collect();
    assert_eq!(got, want);
    assert!(evs[2]["origin"]
        .as_str()
        .unwrap()
        .contains("candidate 2 of one reply"));
    let calls = journal(&d.path().join("run"))
        .iter()
        .filter(|e| e["event"] == "strategy" && e["detail"]["kind"] == "llm")
        .count();
    assert_eq!(calls, 4, "the queued candidates cost no LLM call");
    // The prompt asked for three, one per line; the pattern too.
    let j = journal(&d.path().join("run"));
    let ask = j
        .iter()
        .filter(|e| e["event"] == "strategy" && e["detail"]["kind"] == "llm")
        .nth(1)
        .unwrap();
    let text = ask["detail"]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["content"]
        .as_str()
        .unwrap();
    assert!(text.contains("Write 3 new architectures"), "{text}");
    // The shared part of every prompt (system text: task, space rules, ops)
    // comes first and is identical across calls, so an engine can reuse its
    // KV cache.
    let systems: std::collections::BTreeSet<String> = j
        .iter()
        .filter(|e| e["event"] == "strategy" && e["detail"]["kind"] == "llm")
        .map(|e| {
            e["detail"]["messages"][0]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(systems.len(), 1, "{systems:?}");
    let first = j
        .iter()
        .find(|e| e["event"] == "strategy" && e["detail"]["kind"] == "llm")
        .unwrap();
    assert_eq!(first["detail"]["messages"][0]["role"], "system");
    assert_eq!(summary["evaluations"], 5);
    // The LLM repeated one evaluated architecture; it was caught before
    // the evaluator.
    assert_eq!(summary["llm_duplicates"], 1, "{summary}");
    assert_eq!(summary["operators"]["self-evolution"]["duplicates"], 0);
    assert_eq!(summary["operators"]["self-evolution"]["evaluations"], 4);
}

#[test]
fn llm_pruned_evolution_avoids_what_the_llm_says_hurts() {
    let d = tempfile::tempdir().unwrap();
    let replies = [
        "Use more convolutions.".to_string(),
        "conv3 | conv3 conv1 | skip conv3 conv1".to_string(),
        r#"{"patterns": [{"op": "avg_pool_3x3", "where": "anywhere", "effect": "hurts", "why": "pooling blurs features"}, {"op": "none", "where": "node3<-0", "effect": "hurts", "why": "cuts the shortcut"}]}"#.to_string(),
    ];
    let file = write_replies(d.path(), &replies);
    let out = ok(seki_with(
        d.path(),
        "cfg",
        "[agent]\nsample = 2\nevolution_iterations = 1\ninspiration_iterations = 0\npruned_iterations = 20\nprune_refresh = 50\n",
    )
    .args([
        "search",
        "--strategy",
        "seki",
        "--budget",
        "14",
        "--seed",
        "3",
        "--run-dir",
        "run",
        "--llm-replay",
        file.to_str().unwrap(),
        "--json",
    ]));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    let j = journal(&d.path().join("run"));
    let calls: Vec<&serde_json::Value> = j
        .iter()
        .filter(|e| e["event"] == "strategy" && e["detail"]["kind"] == "llm")
        .collect();
    assert_eq!(
        calls.len(),
        3,
        "one prune call serves every pruned proposal"
    );
    assert_eq!(calls[2]["detail"]["stage"], "prune");
    let prompt = calls[2]["detail"]["messages"][1]["content"]
        .as_str()
        .unwrap();
    assert!(prompt.contains("The worst:"), "{prompt}");
    let evs = evaluations(&d.path().join("run"));
    assert_eq!(evs.len(), 14);
    let space = seki::space::Space::Nb201;
    let by_hash: std::collections::HashMap<String, String> = evs
        .iter()
        .map(|e| {
            let a = e["arch"].as_str().unwrap().to_string();
            (hash(&a), a)
        })
        .collect();
    let violations = |arch: &str| {
        let a = space.parse(arch).unwrap();
        let seki::space::Arch::Nb201(c) = a else {
            unreachable!()
        };
        c.ops.iter().filter(|o| o.name() == "avg_pool_3x3").count()
            + usize::from(c.ops[3].name() == "none")
    };
    let mut pruned = 0;
    for e in &evs[2..] {
        assert_eq!(e["operator"], "llm-pruned-evolution", "{e}");
        pruned += 1;
        let child = violations(e["arch"].as_str().unwrap());
        let parent = by_hash
            .get(e["parent"].as_str().unwrap())
            .map(|p| violations(p))
            .unwrap();
        assert!(child == 0 || child < parent, "{e}");
    }
    assert_eq!(pruned, 12);
    assert_eq!(
        summary["operators"]["llm-pruned-evolution"]["proposals"],
        12
    );
    // The claims are insights, scored on the data.
    let ins = ok(seki(d.path()).args(["kb", "insights", "--kb", "kb", "--json"]));
    assert_eq!(ins.lines().count(), 2, "{ins}");
    assert!(
        ins.contains("avg_pool_3x3 anywhere in the cell hurts"),
        "{ins}"
    );
}
