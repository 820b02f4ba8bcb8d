//! The candle evaluator end to end through the real CLI: training DARTS_V2
//! and NAS-Bench-201 proxy networks on a Fashion-MNIST subset in a child
//! process, the diverged, timed-out and too-large paths, broken data, and a
//! short search.

mod common;

use common::{fails, ok, run};
use std::path::{Path, PathBuf};
use std::process::Command;

const FMNIST: &str = "/usr/share/datasets/fashion-mnist";

const DARTS_V2: &str = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";

const NB201: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|";

fn fmnist() -> &'static Path {
    let p = Path::new(FMNIST);
    assert!(
        p.join("train-images-idx3-ubyte.gz").is_file(),
        "Fashion-MNIST is missing at {FMNIST}; run scripts/setup.sh (as root)"
    );
    p
}

/// A `seki` command with a config whose `[evaluator.candle]` section is a
/// small proxy setting plus `extra` lines.
fn seki(dir: &Path, extra: &str) -> Command {
    let cfg = dir.join("candle.toml");
    let mut keys: Vec<(String, String)> = [
        ("data_dir", format!("\"{}\"", fmnist().display())),
        ("epochs", "1".into()),
        ("batch_size", "32".into()),
        ("train_subset", "3000".into()),
        ("valid_size", "500".into()),
        ("test_subset", "500".into()),
        ("cells", "3".into()),
        ("channels", "8".into()),
        ("stage_cells", "1".into()),
        ("lr", "0.05".into()),
        ("threads", "2".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for line in extra.lines().filter(|l| !l.trim().is_empty()) {
        let (k, v) = line.split_once('=').unwrap();
        let (k, v) = (k.trim().to_string(), v.trim().to_string());
        keys.retain(|(old, _)| *old != k);
        keys.push((k, v));
    }
    let section: String = keys.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    std::fs::write(
        &cfg,
        format!(
            "[kb]\ndir = \"kb\"\n[evaluator.nb201]\ntable = \"{}\"\n[evaluator.candle]\n{section}",
            common::table().display()
        ),
    )
    .unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_seki"));
    c.current_dir(dir)
        .arg("--config")
        .arg(&cfg)
        .env_remove("RUST_LOG");
    c
}

fn eval_json(dir: &Path, extra: &str, args: &[&str]) -> serde_json::Value {
    let out = ok(seki(dir, extra).args(["eval", "--json"]).args(args));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn darts_v2_proxy_trains_on_fashion_mnist_via_the_cli() {
    let d = tempfile::tempdir().unwrap();
    let v = eval_json(
        d.path(),
        "",
        &[
            "--space",
            "darts",
            "--arch",
            DARTS_V2,
            "--dataset",
            "fashion-mnist",
            "--epochs",
            "1",
        ],
    );
    assert_eq!(v["status"], "ok", "{v}");
    let valid = v["valid_accuracy"].as_f64().unwrap();
    let test = v["test_accuracy"].as_f64().unwrap();
    // Ten classes: chance is 0.1.
    assert!(valid > 0.4 && valid <= 1.0, "validation accuracy {valid}");
    assert!(test > 0.4 && test <= 1.0, "test accuracy {test}");
    assert!((v["score"].as_f64().unwrap() - valid * 100.0).abs() < 1e-9);
    assert!(v["params"].as_f64().unwrap() > 1000.0);
    assert!(v["flops"].as_f64().unwrap() > v["params"].as_f64().unwrap());
    assert!(v["train_seconds"].as_f64().unwrap() > 0.0);
    assert!(v["metrics"]["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(v["metrics"]["peak_memory_mib"].as_f64().unwrap() > 1.0);
    let curve = v["loss_curve"].as_array().unwrap();
    assert_eq!(curve.len(), 1);
    assert!(curve[0].as_f64().unwrap() < 2.3, "{curve:?}");
    assert_eq!(v["evaluator"]["kind"], "candle");
}

#[test]
fn nb201_network_trains_via_the_cli() {
    let d = tempfile::tempdir().unwrap();
    let v = eval_json(
        d.path(),
        "",
        &["--space", "nb201", "--evaluator", "candle", "--arch", NB201],
    );
    assert_eq!(v["status"], "ok", "{v}");
    let valid = v["valid_accuracy"].as_f64().unwrap();
    assert!(valid > 0.4, "validation accuracy {valid}");
    // Text output too.
    let out = ok(
        seki(d.path(), "test_subset = 100\ntrain_subset = 200").args([
            "eval",
            "--space",
            "nb201",
            "--evaluator",
            "candle",
            "--arch",
            NB201,
        ]),
    );
    assert!(
        out.contains("status     ok") && out.contains("valid ") && out.contains("loss curve"),
        "{out}"
    );
}

#[test]
fn huge_learning_rate_diverges() {
    let d = tempfile::tempdir().unwrap();
    let v = eval_json(
        d.path(),
        "lr = 1e30\ngrad_clip = 0.0\ntrain_subset = 300\n",
        &["--space", "nb201", "--evaluator", "candle", "--arch", NB201],
    );
    assert_eq!(v["status"], "diverged", "{v}");
    assert!(v["reason"].as_str().unwrap().contains("loss"), "{v}");
    assert!(v["valid_accuracy"].is_null());
}

#[test]
fn tiny_timeout_kills_the_worker() {
    let d = tempfile::tempdir().unwrap();
    let v = eval_json(
        d.path(),
        "timeout_seconds = 0.2\n",
        &["--space", "darts", "--arch", DARTS_V2],
    );
    assert_eq!(v["status"], "timed_out", "{v}");
    assert!(v["reason"].as_str().unwrap().contains("0.2"), "{v}");
}

#[test]
fn over_the_size_limits_is_too_large_not_trained() {
    let d = tempfile::tempdir().unwrap();
    let v = eval_json(
        d.path(),
        "max_params = 1000\n",
        &["--space", "darts", "--arch", DARTS_V2],
    );
    assert_eq!(v["status"], "too_large", "{v}");
    assert!(v["reason"].as_str().unwrap().contains("max_params"), "{v}");
    assert!(v["params"].as_f64().unwrap() > 1000.0);
    assert!(v["train_seconds"].is_null());
    let v = eval_json(
        d.path(),
        "max_flops = 1000\n",
        &["--space", "nb201", "--evaluator", "candle", "--arch", NB201],
    );
    assert_eq!(v["status"], "too_large", "{v}");
    assert!(v["reason"].as_str().unwrap().contains("max_flops"), "{v}");
}

#[test]
fn broken_dataset_files_are_named() {
    let d = tempfile::tempdir().unwrap();
    let data: PathBuf = d.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for f in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        std::fs::copy(fmnist().join(f), data.join(f)).unwrap();
    }
    std::fs::write(data.join("t10k-labels-idx1-ubyte.gz"), b"not gzip, not idx").unwrap();
    let err = fails(
        seki(d.path(), "")
            .args(["eval", "--space", "darts", "--arch", DARTS_V2, "--data-dir"])
            .arg(&data),
    );
    assert!(
        err.contains("t10k-labels-idx1-ubyte.gz") && err.contains("bad magic"),
        "{err}"
    );
}

#[test]
fn bad_candle_settings_name_key_and_line() {
    let d = tempfile::tempdir().unwrap();
    let err = fails(
        seki(d.path(), "momentum = 1.5\n").args(["eval", "--space", "darts", "--arch", DARTS_V2]),
    );
    assert!(
        err.contains("candle.toml:")
            && err.contains("evaluator.candle.momentum")
            && err.contains("[0, 1)"),
        "{err}"
    );
    let err = fails(
        seki(d.path(), "device = \"tpu\"\n").args(["eval", "--space", "darts", "--arch", DARTS_V2]),
    );
    assert!(err.contains("tpu"), "{err}");
}

#[test]
fn search_with_the_candle_evaluator_records_results() {
    let d = tempfile::tempdir().unwrap();
    let (okay, out, err) = run(seki(
        d.path(),
        "train_subset = 200\ntest_subset = 100\nvalid_size = 100\n",
    )
    .args([
        "search",
        "--space",
        "nb201",
        "--evaluator",
        "candle",
        "--strategy",
        "random",
        "--budget",
        "2",
        "--run-dir",
        "run",
        "--json",
        "-q",
    ]));
    assert!(okay, "{out}\n{err}");
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["evaluations"], 2, "{s}");
    let journal = std::fs::read_to_string(d.path().join("run/journal.jsonl")).unwrap();
    let evals: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "evaluation")
        .collect();
    assert_eq!(evals.len(), 2);
    for e in &evals {
        assert_eq!(e["status"], "ok", "{e}");
        assert!(e["metrics"]["train_seconds"].as_f64().unwrap() > 0.0, "{e}");
        assert!(e["metrics"]["flops"].as_f64().unwrap() > 0.0, "{e}");
    }
}

/// Without the `cuda` feature, asking for the GPU is a clear error before
/// any training (`seki eval` and the training benchmark), and `auto` trains
/// on the CPU.
#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let arch = format!("--arch={DARTS_V2}");
    let err =
        fails(seki(dir.path(), "device = \"cuda\"").args(["eval", "--space", "darts", &arch]));
    assert!(
        err.contains("device = \"cuda\" needs seki built with --features cuda"),
        "{err}"
    );
    let err = fails(
        Command::new(env!("CARGO_BIN_EXE_seki"))
            .current_dir(dir.path())
            .args([
                "bench-train",
                "--device",
                "cuda",
                "--steps",
                "1",
                "--warmup",
                "0",
            ]),
    );
    assert!(err.contains("--features cuda"), "{err}");
    let out = ok(Command::new(env!("CARGO_BIN_EXE_seki"))
        .current_dir(dir.path())
        .args([
            "bench-train",
            "--device",
            "auto",
            "--cells",
            "3",
            "--channels",
            "4",
        ])
        .args([
            "--batch", "2", "--size", "8", "--steps", "1", "--warmup", "0",
        ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["device"], "cpu", "{v}");
    assert!(v["train_images_per_second"].as_f64().unwrap() > 0.0, "{v}");
}

/// The children of process `pid` whose command line contains `needle`.
fn children_running(pid: u32, needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": the fields after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if ppid == Some(pid) && String::from_utf8_lossy(&cmdline).contains(needle) {
            out.push(child);
        }
    }
    out
}

/// The evaluation worker killed as the OOM killer would (SIGKILL) is a
/// `failed` evaluation naming the signal, and the session goes on.
#[test]
fn a_killed_evaluation_worker_is_a_failed_result_and_the_session_goes_on() {
    let d = tempfile::tempdir().unwrap();
    let mut cmd = seki(
        d.path(),
        "train_subset = 200\ntest_subset = 100\nvalid_size = 100\n",
    );
    cmd.args([
        "search",
        "--space",
        "nb201",
        "--evaluator",
        "candle",
        "--strategy",
        "random",
        "--budget",
        "2",
        "--run-dir",
        "run",
        "--json",
        "-q",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let search = cmd.spawn().unwrap();
    let pid = search.id();
    // Kill the first worker as soon as it shows.
    let killed = loop {
        if let Some(&w) = children_running(pid, "eval-worker").first() {
            let st = Command::new("kill")
                .args(["-9", &w.to_string()])
                .status()
                .unwrap();
            assert!(st.success());
            break w;
        }
        assert!(
            std::fs::metadata(format!("/proc/{pid}")).is_ok(),
            "the search ended before a worker was seen"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let out = search.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let s: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(s["evaluations"], 2, "{s}");
    assert_eq!(s["failed"], 1, "{s}");
    let evals: Vec<serde_json::Value> = common::journal(&d.path().join("run"))
        .into_iter()
        .filter(|v| v["event"] == "evaluation")
        .collect();
    assert_eq!(
        evals[0]["status"], "failed",
        "worker {killed}: {}",
        evals[0]
    );
    let reason = evals[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("killed by signal 9 (SIGKILL: out of memory"),
        "{reason}"
    );
    assert_eq!(evals[1]["status"], "ok", "{}", evals[1]);
}

/// `seki proxy zc --space darts`: the zero-cost proxies of `seki proxy
/// check`'s sample (here a hand-made result of four published cells) on the
/// DARTS network the evaluator trains, compared with its trained scores.
#[test]
fn zero_cost_proxies_of_darts_cells_are_compared_with_trained_scores() {
    let d = tempfile::tempdir().unwrap();
    let kb = std::fs::read_to_string(common::root().join("knowledge/architectures.jsonl")).unwrap();
    let pairs: Vec<serde_json::Value> = kb
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["space"] == "darts")
        .take(4)
        .enumerate()
        .map(|(i, r)| {
            serde_json::json!({
                "label": r["name"], "arch": r["arch"],
                "low": 70.0 + i as f64, "high": 80.0 - i as f64,
            })
        })
        .collect();
    assert_eq!(pairs.len(), 4);
    let check = d.path().join("check");
    std::fs::create_dir_all(&check).unwrap();
    let file = serde_json::json!({"low": "1 epoch", "high": "4 epochs", "pairs": pairs});
    std::fs::write(check.join("proxy-check.json"), file.to_string()).unwrap();
    let out = ok(seki(d.path(), "")
        .args([
            "proxy", "zc", "--space", "darts", "--batch", "8", "--json", "--check",
        ])
        .arg(&check));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["n"], 4, "{v}");
    let synflow = &v["proxies"][0];
    assert_eq!(synflow["proxy"], "synflow");
    assert_eq!(synflow["unscored"], 0, "{v}");
    assert_eq!(synflow["agreement"][0]["target"], "trained: 1 epoch");
    assert_eq!(synflow["agreement"][1]["target"], "trained: 4 epochs");
    // The low and high scores are exactly reversed, so are the correlations.
    for p in v["proxies"].as_array().unwrap() {
        let (a, b) = (
            p["agreement"][0]["spearman_rho"].as_f64(),
            p["agreement"][1]["spearman_rho"].as_f64(),
        );
        if let (Some(a), Some(b)) = (a, b) {
            assert!((a + b).abs() < 1e-9, "{p}");
        }
    }
}
