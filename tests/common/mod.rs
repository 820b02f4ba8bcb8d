//! Shared helpers for the CLI integration tests.
#![allow(dead_code)]

pub mod browser;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The NAS-Bench-201 table shipped beside the checkout in `../shared/`.
pub fn table() -> PathBuf {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/benchmarks/nb201/nb201-cifar10.csv");
    assert!(
        p.is_file(),
        "the NAS-Bench-201 table is missing at {}",
        p.display()
    );
    p
}

/// The NAS-Bench-201 CIFAR-100 table beside it.
pub fn table_cifar100() -> PathBuf {
    table().with_file_name("nb201-cifar100.csv")
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A `seki` command run in `dir` with an empty config (built-in defaults
/// plus the table path), so tests do not depend on the shipped config.toml.
pub fn seki(dir: &Path) -> Command {
    let cfg = dir.join("test-config.toml");
    if !cfg.exists() {
        std::fs::write(
            &cfg,
            format!(
                "[evaluator.nb201]\ntable = \"{}\"\n[kb]\ndir = \"kb\"\n",
                table().display()
            ),
        )
        .unwrap();
    }
    let mut c = Command::new(env!("CARGO_BIN_EXE_seki"));
    c.current_dir(dir)
        .arg("--config")
        .arg(&cfg)
        .env_remove("RUST_LOG");
    c
}

/// Run and return (status ok, stdout, stderr).
/// The events of a run directory's journal.
pub fn journal(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let out: Output = cmd.output().expect("seki runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run, expecting success; return stdout.
pub fn ok(cmd: &mut Command) -> String {
    let (ok, out, err) = run(cmd);
    assert!(ok, "command failed:\nstdout: {out}\nstderr: {err}");
    out
}

/// Run, expecting failure; return stderr.
pub fn fails(cmd: &mut Command) -> String {
    let (ok, out, err) = run(cmd);
    assert!(
        !ok,
        "command should have failed:\nstdout: {out}\nstderr: {err}"
    );
    err
}

/// Copy a run directory's config and its journal up to the middle of the
/// line of evaluation `n` (a fraction `keep` of that line): what a kill while
/// writing that line leaves on disk.
pub fn cut_run(from: &Path, to: &Path, n: usize, keep: f64) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(from.join("config.toml"), to.join("config.toml")).unwrap();
    let text = std::fs::read_to_string(from.join("journal.jsonl")).unwrap();
    let mut kept = String::new();
    let mut seen = 0;
    for line in text.lines() {
        if line.contains("\"event\":\"evaluation\"") {
            seen += 1;
            if seen == n {
                kept.push_str(&line[..(line.len() as f64 * keep) as usize]);
                break;
            }
        }
        kept.push_str(line);
        kept.push('\n');
    }
    std::fs::write(to.join("journal.jsonl"), kept).unwrap();
}

/// A `seki` command run in `dir` with a config of the built-in defaults,
/// the table path, `kb = "kb"` and the TOML `extra` (sections of its own),
/// written to `dir/NAME.toml`.
pub fn seki_with(dir: &Path, name: &str, extra: &str) -> Command {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "[kb]\ndir = \"kb\"\n[evaluator.nb201]\ntable = \"{}\"\n{extra}",
            table().display()
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

/// A small Candle proxy setting on Fashion-MNIST (`[evaluator.candle]`).
pub fn candle_proxy(threads: usize) -> String {
    let data = Path::new("/usr/share/datasets/fashion-mnist");
    assert!(
        data.join("train-images-idx3-ubyte.gz").is_file(),
        "Fashion-MNIST is missing at {}; run scripts/setup.sh (as root)",
        data.display()
    );
    format!(
        "[evaluator.candle]\ndata_dir = \"{}\"\nepochs = 1\nbatch_size = 32\ntrain_subset = 1000\nvalid_size = 300\ntest_subset = 300\ncells = 3\nchannels = 8\nstage_cells = 1\nthreads = {threads}\n",
        data.display()
    )
}

/// The journal's events of one kind.
pub fn events(dir: &Path, kind: &str) -> Vec<serde_json::Value> {
    journal(dir)
        .into_iter()
        .filter(|e| e["event"] == kind)
        .collect()
}

/// (arch, score) of every evaluation in a run directory, sorted.
pub fn evaluated(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = events(dir, "evaluation")
        .iter()
        .map(|e| {
            (
                e["arch"].as_str().unwrap().to_string(),
                e["score"].to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The most requests in flight at once, from the order of the journal's
/// `submitted` and `evaluation` events.
pub fn most_in_flight(dir: &Path) -> usize {
    let (mut now, mut most) = (0i64, 0i64);
    for e in journal(dir) {
        if e["event"] == "submitted" {
            now += 1;
        } else if e["event"] == "evaluation" {
            now -= 1;
        }
        most = most.max(now);
    }
    most as usize
}

/// Wait until `f` holds (polling), at most `secs` seconds.
pub fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let t = std::time::Instant::now();
    while !f() {
        assert!(t.elapsed().as_secs() < secs, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The journal's events so far, skipping a line being written.
pub fn journal_so_far(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A config (`dir/blind.toml`) with the score-blind stand-in (seed 3) as
/// the default model, the table and `kb = "kb"`, and the TOML `extra`.
pub fn blind_config(dir: &Path, extra: &str) -> PathBuf {
    let cfg = dir.join("blind.toml");
    std::fs::write(
        &cfg,
        format!(
            "[evaluator.nb201]\ntable = \"{}\"\n[kb]\ndir = \"kb\"\n[llm]\ndefault_profile = \"b\"\n[llm.profiles.b]\nkind = \"blind\"\nseed = 3\n{extra}",
            table().display()
        ),
    )
    .unwrap();
    cfg
}
