//! `seki eval`, `seki bench nb201`, `seki arch`, config errors.

mod common;
use common::*;

const A: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";

#[test]
fn eval_looks_up_the_table_row() {
    let d = tempfile::tempdir().unwrap();
    let out = ok(seki(d.path()).args([
        "eval",
        "--space",
        "nb201",
        "--evaluator",
        "nb201",
        "--arch",
        A,
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // Row 1 of the table.
    assert_eq!(v["status"], "ok");
    assert_eq!(v["score"], 82.834);
    assert_eq!(v["test_accuracy"], 93.66);
    assert_eq!(v["metrics"]["benchmark_index"], 1.0);
    std::fs::write(d.path().join("a.txt"), A).unwrap();
    let text = ok(seki(d.path()).args(["eval", "--space", "nb201", "--arch", "@a.txt"]));
    assert!(text.contains("82.83"), "{text}");
}

#[test]
fn eval_bad_inputs_are_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    let e = fails(seki(d.path()).args([
        "eval",
        "--space",
        "nb201",
        "--arch",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|",
    ]));
    assert!(e.contains("node 3 takes 3 inputs"), "{e}");
    // (Without --evaluator, a DARTS cell goes to the candle evaluator.)
    let e = fails(seki(d.path()).args([
        "eval",
        "--space",
        "darts",
        "--evaluator",
        "nb201",
        "--arch",
        "x",
    ]));
    assert!(
        e.contains("search.evaluator") && e.contains("nb201 space only"),
        "{e}"
    );
    std::fs::write(
        d.path().join("t.csv"),
        "index,arch,cifar10_test_200ep\n0,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1.0\n",
    )
    .unwrap();
    let e =
        fails(seki(d.path()).args(["eval", "--space", "nb201", "--table", "t.csv", "--arch", A]));
    assert!(
        e.contains("t.csv:1: missing column '<dataset>_valid_12ep' (e.g. 'cifar10_valid_12ep')"),
        "{e}"
    );
    let e = fails(seki(d.path()).args([
        "eval",
        "--space",
        "nb201",
        "--table",
        "missing.csv",
        "--arch",
        A,
    ]));
    assert!(e.contains("missing.csv"), "{e}");
    let e = fails(seki(d.path()).args(["eval", "--space", "resnet", "--arch", A]));
    assert!(e.contains("valid spaces: darts, nb201"), "{e}");
}

#[test]
fn a_cifar100_table_is_read_from_its_columns_and_benched_as_cifar100() {
    let d = tempfile::tempdir().unwrap();
    let t = table_cifar100();
    let t = t.to_str().unwrap();
    let out = ok(seki(d.path()).args([
        "eval", "--space", "nb201", "--table", t, "--arch", A, "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // Row 1 of the CIFAR-100 table: its own figures, not CIFAR-10's.
    let row = std::fs::read_to_string(t).unwrap();
    let row: Vec<&str> = row.lines().nth(2).unwrap().split(',').collect();
    assert_eq!(row[1], A);
    assert_eq!(v["score"].as_f64().unwrap(), row[2].parse::<f64>().unwrap());
    assert_eq!(
        v["test_accuracy"].as_f64().unwrap(),
        row[4].parse::<f64>().unwrap()
    );
    // 5,000 validation images behind each score.
    let s = v["score"].as_f64().unwrap();
    let se = (s * (100.0 - s) / 5000.0).sqrt();
    assert!((v["score_se"].as_f64().unwrap() - se).abs() < 1e-9, "{v}");
    let text = ok(seki(d.path()).args([
        "bench",
        "nb201",
        "--table",
        t,
        "--strategy",
        "rea",
        "--budget",
        "25",
        "--seeds",
        "3",
    ]));
    assert!(
        text.contains("NAS-Bench-201 CIFAR-100:") && text.contains("best in table: 73.51"),
        "{text}"
    );
}

#[test]
fn bench_reproduces_published_random_search_and_rea_figures() {
    let d = tempfile::tempdir().unwrap();
    let out = ok(seki(d.path()).args([
        "bench",
        "nb201",
        "--strategy",
        "random,rea",
        "--budget",
        "100",
        "--seeds",
        "20",
        "--json",
    ]));
    let v: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(v.len(), 2);
    let at = |s: &serde_json::Value, n: u64| {
        s["checkpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["evaluations"] == n)
            .unwrap()["mean"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(v[0]["strategy"], "random");
    assert_eq!(v[1]["seeds"], 20);
    let evals: Vec<u64> = v[0]["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["evaluations"].as_u64().unwrap())
        .collect();
    assert_eq!(evals, vec![10, 25, 50, 100]);
    // Published: random search 93.70 ± 0.36, REA 93.92 ± 0.30 at this budget; 20 seeds leave ~0.1 of noise.
    let rs = at(&v[0], 100);
    let rea = at(&v[1], 100);
    assert!((93.4..94.1).contains(&rs), "random search {rs}");
    assert!((93.7..94.3).contains(&rea), "REA {rea}");
    assert!(at(&v[1], 25) < rea, "REA improves with budget");
    let text = ok(seki(d.path()).args(["bench", "nb201", "--budget", "50", "--seeds", "3"]));
    assert!(
        text.contains("random (n=3)") && text.contains("rea (n=3)") && text.contains("±"),
        "{text}"
    );
}

#[test]
fn arch_converts_between_darts_forms() {
    let d = tempfile::tempdir().unwrap();
    let g = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";
    let json = ok(seki(d.path()).args(["arch", "--space", "darts", "--to", "json", g]));
    let back = ok(seki(d.path()).args(["arch", "--space", "darts", "--to", "text", json.trim()]));
    assert!(
        back.starts_with("Genotype(normal=[('sep_conv_3x3', 0)") && back.contains("range(2, 6)"),
        "{back}"
    );
    // The compact notation, out and back in.
    let n = ok(seki(d.path()).args(["arch", "--space", "darts", "--to", "notation", g]));
    assert_eq!(n.trim(), "normal: sep:0 sep:1 | sep:0 sep:1 | sep:1 skip:0 | skip:0 dil:2 ; reduce: max:0 max:1 | skip:2 max:1 | max:0 skip:2 | skip:2 max:1");
    let back2 = ok(seki(d.path()).args(["arch", "--space", "darts", "--to", "text", n.trim()]));
    assert_eq!(back2, back);
    let e = fails(seki(d.path()).args([
        "arch",
        "--space",
        "darts",
        &g.replace("dil_conv_3x3", "conv_7x1_1x7"),
    ]));
    assert!(
        e.contains("normal cell, node 5, edge 2") && e.contains("conv_7x1_1x7"),
        "{e}"
    );
    let out = ok(seki(d.path()).args(["space", "nb201"]));
    assert!(out.contains("nor_conv_1x1"));
}

#[test]
fn config_errors_name_file_line_and_key() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("c.toml"),
        "[search]\nseed = 1\nmax_evaluatons = 5\n",
    )
    .unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_seki"));
    cmd.current_dir(d.path())
        .args(["--config", "c.toml", "search"]);
    let e = fails(&mut cmd);
    assert!(
        e.contains("c.toml") && e.contains("line 3") && e.contains("max_evaluatons"),
        "{e}"
    );
    std::fs::write(d.path().join("c.toml"), "[search]\nmax_evaluations = 0\n").unwrap();
    let e = fails(&mut cmd);
    assert!(
        e.contains("c.toml:2: search.max_evaluations: must be at least 1"),
        "{e}"
    );
    let e = fails(seki(d.path()).args(["search", "--budget", "0"]));
    assert!(e.contains("search.max_evaluations"), "{e}");
}

#[test]
fn shipped_config_parses_and_help_is_complete() {
    let d = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_seki"));
    cmd.current_dir(root())
        .args(["--config", "config.toml", "kb", "list", "--top", "1"]);
    ok(&mut cmd);
    let help = ok(seki(d.path()).arg("--help"));
    for sub in ["search", "eval", "kb", "bench", "arch", "space"] {
        assert!(help.contains(sub), "{help}");
    }
    let kb_help = ok(seki(d.path()).args(["kb", "--help"]));
    for sub in [
        "list", "show", "add", "remove", "import", "export", "dedupe", "insights",
    ] {
        assert!(kb_help.contains(sub), "{kb_help}");
    }
}

#[test]
fn bench_sessions_are_kept_and_read_back_not_run_again() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("sessions.jsonl");
    let bench = |seeds: &str, budget: &str| {
        let mut c = seki(d.path());
        c.args([
            "bench",
            "nb201",
            "--strategy",
            "rea,seki-blind",
            "--budget",
            budget,
            "--seeds",
            seeds,
            "--sessions",
            "sessions.jsonl",
        ]);
        c
    };
    let json = |mut c: std::process::Command| -> serde_json::Value {
        serde_json::from_str(&ok(c.arg("--json"))).unwrap()
    };
    let values = |v: &serde_json::Value, i: usize| -> Vec<f64> {
        v[i]["checkpoints"][1]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let first = json(bench("2", "25"));
    let lines = |f: &std::path::Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(f)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let kept = lines(&file);
    assert_eq!(kept.len(), 4, "one line per session: {kept:?}");
    assert_eq!(kept[0]["strategy"], "rea");
    assert_eq!(kept[3]["strategy"], "seki-blind");
    assert_eq!(kept[3]["seed"], 1);
    // A figure changed in the file is what the next run reports: the
    // sessions there are read back, not run again.
    let mut edited = kept.clone();
    edited[0]["values"][1] = serde_json::json!(12.5);
    let text: Vec<String> = edited.iter().map(|l| l.to_string() + "\n").collect();
    std::fs::write(&file, text.concat()).unwrap();
    let more = json(bench("3", "25"));
    let rea = values(&more, 0);
    assert_eq!(rea.len(), 3);
    assert_eq!(rea[0], 12.5);
    assert_eq!(rea[1], values(&first, 0)[1]);
    assert_eq!(values(&more, 1)[..2], values(&first, 1)[..]);
    assert_eq!(more[1]["seeds"], 3);
    assert_eq!(lines(&file).len(), 6, "seed 2 of each strategy added");
    // A torn last line (a write cut short) is ignored; other settings are
    // refused with the file and line named.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"strategy\":\"rea\",\"in_fl").unwrap();
    let (good, table, err) = run(&mut bench("3", "25"));
    assert!(good, "{err}");
    assert!(
        err.contains(
            "rea seed 0: test accuracy of the returned architecture 12.50 (from --sessions)"
        ),
        "{err}"
    );
    assert!(table.contains("rea (n=3)"), "{table}");
    let e = fails(&mut bench("3", "30"));
    assert!(
        e.contains("sessions.jsonl:1")
            && e.contains("session rea seed 0 was run with other settings"),
        "{e}"
    );
}
