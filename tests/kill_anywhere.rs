//! Crash anywhere (issue 12): real `seki` sessions killed with SIGKILL (the
//! whole process group: the session and its evaluation worker) at seeded
//! random moments, then resumed into the same run directory and the same
//! knowledge base, must end exactly as an uninterrupted run: the same
//! evaluations, scores and strategy states in order, the same summary, the
//! same knowledge-base records and insights (none lost, none duplicated) and
//! no lock or temporary file left behind.
//!
//! The moments are chosen on the journal: the killer waits until the
//! journal reaches a random size between where it is and where the
//! uninterrupted run's ended, then waits a random extra delay (sub-
//! millisecond for table lookups, up to one training for Candle), so kills
//! land while a proposal's LLM exchanges are journalled, while an
//! evaluation runs, between an evaluation's journal line and its
//! knowledge-base record or insights, during the contenders' repeats and
//! the final reports; some land during the setup (the knowledge base locked,
//! no journal yet). A resumed session is itself killed again at times.
//!
//! `SEKI_KILLS` sets the number of kills of each variant (default: 12 on the
//! table, 5 with a pool of workers, 3 with Candle), `SEKI_KILL_SEED` the seed
//! of the moments; `bench/kill-anywhere.sh` runs 20 of each and prints the
//! tallies.

mod common;

use common::{root, table};
use seki::rng::Rng;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One kind of session to kill.
struct Variant {
    name: &'static str,
    /// The config file's text (`kb.dir = "kb"`, beside it).
    config: String,
    /// `seki search` arguments of a new session (no `--run-dir`).
    search: Vec<String>,
    /// The LLM recording (also given to `--resume`).
    replies: PathBuf,
    /// Most extra delay after the journal reached the chosen size.
    max_delay: Duration,
    /// Kills when `SEKI_KILLS` is not set.
    default_kills: usize,
    /// Whether results come in one order (one evaluation at a time); with
    /// several in flight, the evaluations and records are compared as sets.
    ordered: bool,
}

/// The fixture's 18 recorded replies, eight times over: enough for a
/// 30-evaluation session (the agent re-asks on repeats and falls back to
/// mutations, so every path of the agent is journalled).
fn long_recording(dir: &Path) -> PathBuf {
    let one = std::fs::read_to_string(root().join("tests/fixtures/seki-nb201-replies.jsonl"))
        .expect("the recorded replies");
    let p = dir.join("replies.jsonl");
    std::fs::write(&p, one.repeat(8)).unwrap();
    p
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn nb201_variant(dir: &Path) -> Variant {
    Variant {
        name: "nb201",
        config: format!(
            "[kb]\ndir = \"kb\"\n[search]\nkb_records = \"all\"\n[evaluator.nb201]\ntable = \"{}\"\n",
            table().display()
        ),
        search: args(&[
            "--space", "nb201", "--evaluator", "nb201", "--strategy", "seki", "--budget", "30",
            "--seed", "7",
        ]),
        replies: long_recording(dir),
        max_delay: Duration::from_micros(500),
        default_kills: 12,
        ordered: true,
    }
}

/// The agent on the table with fidelity rungs: noisy lookups at rung 1,
/// less noise at rung 2, none at rung 3, a third of each rung promoted, and
/// a contender repeated at its rung; kills land between promotions too.
fn rungs_variant(dir: &Path) -> Variant {
    Variant {
        name: "rungs",
        config: format!(
            "[kb]\ndir = \"kb\"\n[search]\nkb_records = \"all\"\npromote = 0.34\ncontenders = 1\n\
             contender_repeats = 1\n[evaluator.nb201]\ntable = \"{}\"\nnoise_sd = 2.0\n\
             [[search.rungs]]\nnoise_sd = 0.5\n[[search.rungs]]\nnoise_sd = 0.2\n",
            table().display()
        ),
        search: args(&[
            "--space",
            "nb201",
            "--evaluator",
            "nb201",
            "--strategy",
            "seki",
            "--budget",
            "30",
            "--seed",
            "7",
        ]),
        replies: long_recording(dir),
        max_delay: Duration::from_micros(500),
        default_kills: 6,
        ordered: true,
    }
}

fn candle_variant(dir: &Path) -> Variant {
    let data = Path::new("/usr/share/datasets/fashion-mnist");
    assert!(
        data.join("train-images-idx3-ubyte.gz").is_file(),
        "Fashion-MNIST is missing at {}; run scripts/setup.sh (as root)",
        data.display()
    );
    Variant {
        name: "candle",
        // One thread: the same weights, so the same scores, on every run.
        // One contender repeated once: the end of the session re-evaluates
        // and rewrites a knowledge-base record.
        config: format!(
            "[kb]\ndir = \"kb\"\n[search]\nkb_records = \"all\"\ncontenders = 1\ncontender_repeats = 1\n\
             [evaluator.nb201]\ntable = \"{}\"\n[evaluator.candle]\ndata_dir = \"{}\"\nepochs = 1\n\
             batch_size = 32\ntrain_subset = 200\nvalid_size = 100\ntest_subset = 100\ncells = 3\n\
             channels = 8\nstage_cells = 1\nthreads = 1\n",
            table().display(),
            data.display()
        ),
        search: args(&[
            "--space", "nb201", "--evaluator", "candle", "--strategy", "seki", "--budget", "5",
            "--seed", "7",
        ]),
        replies: long_recording(dir),
        max_delay: Duration::from_millis(1500),
        default_kills: 3,
        ordered: true,
    }
}

/// Random search on the table with a pool of two worker processes (each
/// its own process group, stopping when the session is gone): requests
/// journalled as submitted, results out of order, lost requests submitted
/// again on resume.
fn pool_variant(dir: &Path) -> Variant {
    Variant {
        name: "pool",
        config: format!(
            "[kb]\ndir = \"kb\"\n[search]\nkb_records = \"all\"\n[executor]\nworkers = 2\n\
             [evaluator.nb201]\ntable = \"{}\"\n",
            table().display()
        ),
        search: args(&[
            "--space",
            "nb201",
            "--evaluator",
            "nb201",
            "--strategy",
            "random",
            "--budget",
            "24",
            "--seed",
            "7",
        ]),
        replies: long_recording(dir),
        max_delay: Duration::from_millis(2),
        default_kills: 5,
        ordered: false,
    }
}

/// Where one session lives: its config, run directory and knowledge base.
struct Place {
    dir: PathBuf,
}

impl Place {
    fn new(dir: PathBuf, v: &Variant) -> Self {
        std::fs::create_dir_all(dir.join("kb")).unwrap();
        std::fs::write(dir.join("c.toml"), &v.config).unwrap();
        Place { dir }
    }
    fn run(&self) -> PathBuf {
        self.dir.join("run")
    }
    fn journal(&self) -> PathBuf {
        self.run().join("journal.jsonl")
    }
    fn kb(&self) -> PathBuf {
        self.dir.join("kb")
    }
    fn journal_len(&self) -> u64 {
        std::fs::metadata(self.journal()).map_or(0, |m| m.len())
    }
    /// Whether the journal holds a whole start line (so `--resume` applies).
    fn started(&self) -> bool {
        std::fs::read_to_string(self.journal())
            .ok()
            .and_then(|t| {
                let first = t.split_inclusive('\n').next()?.to_string();
                first.ends_with('\n').then_some(first)
            })
            .and_then(|l| serde_json::from_str::<Value>(&l).ok())
            .is_some_and(|v| v["event"] == "start")
    }
    /// Whether the session ended: its summary and then its reports (the
    /// last thing `seki search` writes) are there. A kill while the reports
    /// are written is resumed too, as a user would.
    fn finished(&self) -> bool {
        self.run().join("summary.json").is_file() && self.run().join("report.html").is_file()
    }
    /// The command that takes the session further: a new session while no
    /// journal has started, else `--resume`.
    fn next_command(&self, v: &Variant, attempt: usize) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_seki"));
        c.current_dir(&self.dir)
            .env_remove("RUST_LOG")
            .args(["--config", "c.toml", "search"]);
        if self.started() {
            c.args(["--resume", "run"]);
        } else {
            c.args(&v.search).args(["--run-dir", "run"]);
        }
        c.arg("--llm-replay").arg(&v.replies).arg("-q");
        // Each attempt's output, to show when something fails.
        let log = |what: &str| {
            std::fs::File::create(self.dir.join(format!("attempt{attempt}.{what}"))).unwrap()
        };
        c.stdout(log("out")).stderr(log("err"));
        // Its own process group: the kill takes the evaluation worker too.
        c.process_group(0);
        c
    }
    fn log(&self, attempt: usize) -> String {
        let read = |w: &str| {
            std::fs::read_to_string(self.dir.join(format!("attempt{attempt}.{w}")))
                .unwrap_or_default()
        };
        format!("stdout: {}\nstderr: {}", read("out"), read("err"))
    }
}

/// SIGKILL a process group.
fn kill_group(child: &mut Child) {
    // The session first, at once; then whatever else is in its group (the
    // evaluation worker), which `kill` reaches through the group id.
    let _ = child.kill();
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
}

/// How one started process ended.
enum Ended {
    /// Killed while running.
    Killed,
    /// It finished before the kill came (its exit status).
    Exited(std::process::ExitStatus),
}

/// Run `cmd`, and SIGKILL it once the journal is `at` bytes long (or, with
/// `at = None`, after `delay` from the start) plus `delay`.
fn run_and_kill(place: &Place, mut cmd: Command, at: Option<u64>, delay: Duration) -> Ended {
    let mut child = cmd.spawn().expect("seki starts");
    let start = Instant::now();
    if let Some(at) = at {
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return Ended::Exited(st);
            }
            if place.journal_len() >= at {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "the session did not get on"
            );
            std::thread::yield_now();
        }
    }
    let t = Instant::now();
    while t.elapsed() < delay {
        if let Some(st) = child.try_wait().unwrap() {
            return Ended::Exited(st);
        }
        if delay > Duration::from_millis(2) {
            std::thread::sleep(Duration::from_micros(200));
        } else {
            std::hint::spin_loop();
        }
    }
    if let Some(st) = child.try_wait().unwrap() {
        return Ended::Exited(st);
    }
    kill_group(&mut child);
    Ended::Killed
}

/// What a finished session left, comparable across sessions: the session id
/// is replaced by `SESSION`, and times (and other figures that depend on the
/// machine's speed) are dropped.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// Every evaluation's journal line (result and strategy state after it).
    evaluations: Vec<Value>,
    /// Re-evaluations of contenders.
    reevaluations: Vec<Value>,
    /// `summary.json`.
    summary: Value,
    /// `best.json`.
    best: Value,
    /// Knowledge-base records, in file order.
    records: Vec<Value>,
    /// Knowledge-base insights, in file order.
    insights: Vec<Value>,
}

const VOLATILE: &[&str] = &[
    "elapsed",
    "mean_seconds",
    "elapsed_seconds",
    "eval_seconds",
    "placement",
    "time",
    "created",
    "seconds",
    "latency_seconds",
    "latency_ms",
    "peak_memory_mib",
    "train_images_per_second",
    "train_seconds",
];

fn scrub(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in VOLATILE {
                m.remove(*k);
            }
            m.values_mut().for_each(scrub);
        }
        Value::Array(a) => a.iter_mut().for_each(scrub),
        _ => {}
    }
}

fn lines(path: &Path, session: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(&l.replace(session, "SESSION"))
                .unwrap_or_else(|e| panic!("{}: a bad line ({e}): {l}", path.display()));
            scrub(&mut v);
            v
        })
        .collect()
}

fn outcome(place: &Place) -> Outcome {
    let journal = lines(&place.journal(), "\u{0}");
    let session = journal
        .first()
        .and_then(|s| s["session"].as_str())
        .expect("a start line")
        .to_string();
    let journal = lines(&place.journal(), &session);
    let of = |kind: &str| -> Vec<Value> {
        journal
            .iter()
            .filter(|e| e["event"] == kind)
            .cloned()
            .collect()
    };
    let read_json = |p: PathBuf| -> Value {
        let t = std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .replace(&session, "SESSION");
        let mut v: Value = serde_json::from_str(&t).unwrap();
        scrub(&mut v);
        v
    };
    Outcome {
        evaluations: of("evaluation"),
        reevaluations: of("reevaluation"),
        summary: read_json(place.run().join("summary.json")),
        best: read_json(place.run().join("best.json")),
        records: lines(&place.kb().join("architectures.jsonl"), &session),
        insights: lines(&place.kb().join("insights.jsonl"), &session),
    }
}

/// An outcome with what depends on the order results arrived in left out:
/// evaluations and records as sets (sorted by architecture, without
/// evaluation numbers and record ids), the best by architecture and score.
fn unordered(mut o: Outcome) -> Outcome {
    let pick = |v: &Value, keys: &[&str]| -> Value {
        Value::Object(
            keys.iter()
                .filter_map(|k| v.get(*k).map(|x| (k.to_string(), x.clone())))
                .collect(),
        )
    };
    let sorted = |mut xs: Vec<Value>| -> Vec<Value> {
        xs.sort_by_key(|x| x["arch"].to_string());
        xs
    };
    const RESULT: &[&str] = &[
        "arch",
        "hash",
        "status",
        "reason",
        "score",
        "score_se",
        "test_accuracy",
        "metrics",
    ];
    o.evaluations = sorted(o.evaluations.iter().map(|e| pick(e, RESULT)).collect());
    o.records = sorted(
        o.records
            .iter()
            .map(|r| {
                let keys = [
                    "arch",
                    "space",
                    "score",
                    "uncertainty",
                    "metrics",
                    "evaluator",
                    "provenance",
                ];
                pick(r, &keys)
            })
            .collect(),
    );
    o.best = pick(&o.best, RESULT);
    let best = pick(&o.summary["best"], RESULT);
    o.summary = pick(
        &o.summary,
        &[
            "evaluations",
            "duplicates",
            "failed",
            "reevaluations",
            "stop_reason",
            "space",
            "strategy",
            "seed",
            "executor",
        ],
    );
    o.summary["best"] = best;
    o
}

/// What a finished place must not hold: a lock, a temporary file, a record
/// of another session, a record or insight twice.
fn check_leftovers(place: &Place, o: &Outcome) -> Result<(), String> {
    let lock = place.kb().join(".lock");
    if lock.exists() {
        return Err(format!(
            "a stale lock is left: {} ({:?})",
            lock.display(),
            std::fs::read_to_string(&lock)
        ));
    }
    // The run directory, the knowledge base and each request's folder.
    let mut dirs = vec![place.kb(), place.run()];
    if let Ok(evals) = std::fs::read_dir(place.run().join("evals")) {
        dirs.extend(evals.flatten().map(|e| e.path()));
    }
    for d in dirs {
        for e in std::fs::read_dir(&d).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if name.contains(".tmp") {
                return Err(format!("a temporary file is left: {}/{name}", d.display()));
            }
        }
    }
    // One evaluation per request (with several in flight).
    let mut requests: Vec<String> = common::journal(&place.run())
        .iter()
        .filter(|e| e["event"] == "evaluation")
        .filter_map(|e| e["placement"]["request"].as_str().map(String::from))
        .collect();
    requests.sort();
    let n = requests.len();
    requests.dedup();
    if requests.len() != n {
        return Err(format!("{} requests evaluated twice", n - requests.len()));
    }
    for (what, items) in [("record", &o.records), ("insight", &o.insights)] {
        let mut ids: Vec<&str> = items.iter().map(|r| r["id"].as_str().unwrap()).collect();
        if let Some(other) = ids.iter().find(|i| !i.starts_with("SESSION-")) {
            return Err(format!("a {what} of another session: {other}"));
        }
        ids.sort();
        let n = ids.len();
        ids.dedup();
        if ids.len() != n {
            return Err(format!("{} {what}s duplicated", n - ids.len()));
        }
    }
    Ok(())
}

/// The first place where two JSON values differ: its path and both values.
fn first_difference(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                first_difference(
                    &format!("{path}.{k}"),
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(&format!("{path}[{i}]"), p, q)),
        _ if a == b => None,
        _ => {
            let cut = |v: &Value| v.to_string().chars().take(400).collect::<String>();
            Some(format!("{path}: want {} got {}", cut(a), cut(b)))
        }
    }
}

/// Where two outcomes first differ, in words.
fn difference(want: &Outcome, got: &Outcome) -> Option<String> {
    let list = |what: &str, a: &[Value], b: &[Value]| -> Option<String> {
        if a.len() != b.len() {
            return Some(format!("{} {what} instead of {}", b.len(), a.len()));
        }
        a.iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(&format!("{what}[{i}]"), x, y))
    };
    list("evaluations", &want.evaluations, &got.evaluations)
        .or_else(|| list("reevaluations", &want.reevaluations, &got.reevaluations))
        .or_else(|| list("kb-records", &want.records, &got.records))
        .or_else(|| list("kb-insights", &want.insights, &got.insights))
        .or_else(|| first_difference("best.json", &want.best, &got.best))
        .or_else(|| first_difference("summary.json", &want.summary, &got.summary))
}

/// One run of the harness: what each kill did.
struct Tally {
    survived: usize,
    landed: usize,
    before_journal: usize,
    failures: Vec<String>,
}

fn kills_wanted(v: &Variant) -> usize {
    std::env::var("SEKI_KILLS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(v.default_kills)
}

fn seed() -> u64 {
    std::env::var("SEKI_KILL_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(12)
}

/// Kill `k`: kill the session (and, at times, its resumes) at seeded random
/// moments, resume until it ends, compare with the uninterrupted run.
fn kill_once(
    v: &Variant,
    base: &Path,
    k: usize,
    want: &Outcome,
    full: u64,
    startup: Duration,
    tally: &mut Tally,
) -> Result<(), String> {
    let mut rng = Rng::seed(seed().wrapping_mul(1000).wrapping_add(k as u64));
    let place = Place::new(base.join(format!("{}-kill{k:02}", v.name)), v);
    // One kill, sometimes two or three (of the resumed session too).
    let kills = 1 + usize::from(rng.below(3) == 0) + usize::from(rng.below(4) == 0);
    let mut attempt = 0;
    let mut moments = Vec::new();
    for _ in 0..kills {
        let now = place.journal_len();
        // An eighth of the kills come at a random moment of the setup (or
        // just after it).
        let (at, delay) = if rng.below(8) == 0 {
            (None, startup.mul_f64(rng.unit()))
        } else {
            let at = now + (rng.unit() * full.saturating_sub(now) as f64) as u64;
            (Some(at.max(1)), v.max_delay.mul_f64(rng.unit()))
        };
        attempt += 1;
        let cmd = place.next_command(v, attempt);
        match run_and_kill(&place, cmd, at, delay) {
            Ended::Killed => {
                tally.landed += 1;
                if !place.started() {
                    tally.before_journal += 1;
                }
                moments.push(format!(
                    "killed at journal byte {} of {full} (aimed at {at:?} + {delay:?})",
                    place.journal_len()
                ));
            }
            Ended::Exited(st) if st.success() => {
                moments.push(format!("finished before its kill ({at:?} + {delay:?})"));
                break;
            }
            Ended::Exited(st) => {
                return Err(format!(
                    "attempt {attempt} failed ({st}) after {moments:?}\n{}",
                    place.log(attempt)
                ))
            }
        }
    }
    // Resume until it ends.
    while !place.finished() {
        attempt += 1;
        assert!(attempt < 20, "the session never finishes");
        let st = place
            .next_command(v, attempt)
            .status()
            .expect("seki resumes");
        if !st.success() {
            return Err(format!(
                "resume (attempt {attempt}) failed ({st}) after {moments:?}\n{}",
                place.log(attempt)
            ));
        }
    }
    let got = outcome(&place);
    check_leftovers(&place, &got).map_err(|e| format!("{e} after {moments:?}"))?;
    let got = if v.ordered { got } else { unordered(got) };
    if let Some(d) = difference(want, &got) {
        return Err(format!("differs after {moments:?}: {d}"));
    }
    Ok(())
}

fn harness(v: Variant) {
    let d = tempfile::tempdir().unwrap();
    let base = d.path();
    // The uninterrupted run.
    let reference = Place::new(base.join(format!("{}-whole", v.name)), &v);
    let t = Instant::now();
    let mut child = reference.next_command(&v, 0).spawn().unwrap();
    // How long the setup takes (until the journal starts), for the kills
    // aimed at it.
    let mut setup = None;
    let st = loop {
        if setup.is_none() && reference.journal_len() > 0 {
            setup = Some(t.elapsed());
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        std::thread::sleep(Duration::from_micros(500));
    };
    assert!(st.success(), "{}", reference.log(0));
    let want = outcome(&reference);
    check_leftovers(&reference, &want).unwrap();
    let want = if v.ordered { want } else { unordered(want) };
    assert!(!want.records.is_empty() && !want.evaluations.is_empty());
    let full = reference.journal_len();
    let startup = setup.unwrap_or_else(|| t.elapsed()).mul_f64(1.5);
    let n = kills_wanted(&v);
    let mut tally = Tally {
        survived: 0,
        landed: 0,
        before_journal: 0,
        failures: Vec::new(),
    };
    for k in 0..n {
        match kill_once(&v, base, k, &want, full, startup, &mut tally) {
            Ok(()) => tally.survived += 1,
            Err(e) => tally.failures.push(format!("kill {k}: {e}")),
        }
    }
    println!(
        "{}: kills survived: {}/{n} ({} SIGKILLs landed, {} of them before the journal started; seed {})",
        v.name,
        tally.survived,
        tally.landed,
        tally.before_journal,
        seed()
    );
    assert!(
        tally.failures.is_empty(),
        "{}: {} of {n} did not end as the uninterrupted run:\n{}",
        v.name,
        tally.failures.len(),
        tally.failures.join("\n\n")
    );
    // The kills must have hit something.
    assert!(
        tally.landed >= n.div_ceil(2),
        "only {} kills landed",
        tally.landed
    );
}

#[test]
fn sessions_on_the_table_killed_anywhere_end_as_uninterrupted() {
    let d = tempfile::tempdir().unwrap();
    harness(nb201_variant(d.path()));
}

#[test]
fn sessions_with_rungs_killed_anywhere_end_as_uninterrupted() {
    let d = tempfile::tempdir().unwrap();
    harness(rungs_variant(d.path()));
}

#[test]
fn pool_sessions_killed_anywhere_end_as_uninterrupted() {
    let d = tempfile::tempdir().unwrap();
    harness(pool_variant(d.path()));
}

#[test]
fn candle_sessions_killed_anywhere_end_as_uninterrupted() {
    let d = tempfile::tempdir().unwrap();
    harness(candle_variant(d.path()));
}

/// The first `n` lines of `from`'s journal, with its config, as `to`: what
/// a kill right after line `n` leaves.
fn cut_after_line(from: &Path, to: &Path, n: usize) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(from.join("config.toml"), to.join("config.toml")).unwrap();
    let text = std::fs::read_to_string(from.join("journal.jsonl")).unwrap();
    let kept: String = text.split_inclusive('\n').take(n).collect();
    std::fs::write(to.join("journal.jsonl"), kept).unwrap();
}

/// The (1-based) number of the journal line that is the first LLM exchange
/// after evaluation `n`: a kill after it interrupts a proposal.
fn mid_proposal_line(journal: &Path, n: u64) -> usize {
    let text = std::fs::read_to_string(journal).unwrap();
    let mut after = false;
    for (i, l) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(l).unwrap();
        if v["event"] == "evaluation" && v["n"] == n {
            after = true;
        } else if after && v["event"] == "strategy" && v["detail"]["kind"] == "llm" {
            return i + 1;
        }
    }
    panic!("no LLM exchange after evaluation {n}");
}

fn resume(dir: &Path, run: &str, replies: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_seki"))
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .args(["--config", "c.toml", "search", "--resume", run, "-q"])
        .arg("--llm-replay")
        .arg(replies)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A session killed in the middle of a proposal (after some of its LLM
/// exchanges were journalled), resumed, and killed again the same way later
/// on: the second resume must not count the first kill's interrupted
/// exchanges as used, or it skips replies and goes another way; and
/// `--replay` of that journal must not take them for replies.
#[test]
fn a_session_killed_twice_mid_proposal_resumes_with_the_right_replies() {
    let d = tempfile::tempdir().unwrap();
    let mut v = nb201_variant(d.path());
    v.config = v
        .config
        .replace("kb_records = \"all\"", "kb_records = \"none\"");
    let whole = Place::new(d.path().join("whole"), &v);
    assert!(whole.next_command(&v, 0).status().unwrap().success());
    let want = outcome(&whole).evaluations;
    let cut = d.path().join("whole/cut");
    cut_after_line(&whole.run(), &cut, mid_proposal_line(&whole.journal(), 4));
    resume(&whole.dir, "cut", &v.replies);
    let again = d.path().join("whole/again");
    cut_after_line(
        &cut,
        &again,
        mid_proposal_line(&cut.join("journal.jsonl"), 8),
    );
    resume(&whole.dir, "again", &v.replies);
    let evals = |run: &Path| -> Vec<Value> {
        let session = common::journal(run)[0]["session"]
            .as_str()
            .unwrap()
            .to_string();
        lines(&run.join("journal.jsonl"), &session)
            .into_iter()
            .filter(|e| e["event"] == "evaluation")
            .collect()
    };
    assert_eq!(want.len(), 30);
    for run in [&cut, &again] {
        let got = evals(run);
        assert_eq!(got.len(), want.len(), "{}", run.display());
        if let Some(d) = want
            .iter()
            .zip(&got)
            .enumerate()
            .find_map(|(i, (a, b))| first_difference(&format!("evaluation {}", i + 1), a, b))
        {
            panic!("{}: {d}", run.display());
        }
    }
    // Its journal replays too: the interrupted exchanges are not replies.
    let out = Command::new(env!("CARGO_BIN_EXE_seki"))
        .current_dir(&whole.dir)
        .env_remove("RUST_LOG")
        .args(["--config", "c.toml", "search", "--replay", "again", "-q"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.contains("replay matches"),
        "{err}"
    );
}

/// A kill right after the last evaluation's journal line and record, before
/// the insights that evaluation changed reached the knowledge base: the
/// resumed session brings its own insights up to date (the strategy's
/// restored state has them; nothing else would store them again).
#[test]
fn insights_changed_by_the_last_evaluation_before_a_kill_reach_the_knowledge_base() {
    let d = tempfile::tempdir().unwrap();
    let v = nb201_variant(d.path());
    let whole = Place::new(d.path().join("whole"), &v);
    assert!(whole.next_command(&v, 0).status().unwrap().success());
    let want = outcome(&whole);
    let raw: Vec<Value> = common::journal(&whole.run());
    let last = raw
        .iter()
        .rposition(|e| e["event"] == "evaluation")
        .unwrap();
    let before = raw[..last]
        .iter()
        .rfind(|e| e["event"] == "evaluation")
        .unwrap();
    // What the kill leaves: the journal up to the last evaluation's line,
    // every record, the insights as the evaluation before left them.
    let killed = Place::new(d.path().join("killed"), &v);
    cut_after_line(&whole.run(), &killed.run(), last + 1);
    let config = std::fs::read_to_string(whole.run().join("config.toml")).unwrap();
    let (from, to) = (
        whole.kb().display().to_string(),
        killed.kb().display().to_string(),
    );
    assert!(config.contains(&from));
    std::fs::write(killed.run().join("config.toml"), config.replace(&from, &to)).unwrap();
    std::fs::copy(
        whole.kb().join("architectures.jsonl"),
        killed.kb().join("architectures.jsonl"),
    )
    .unwrap();
    let stale: String = before["strategy_state"]["insights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| format!("{i}\n"))
        .collect();
    std::fs::write(killed.kb().join("insights.jsonl"), stale).unwrap();
    let session = raw[0]["session"].as_str().unwrap();
    assert_ne!(
        lines(&killed.kb().join("insights.jsonl"), session),
        want.insights,
        "the last evaluation changed no insight: this test would test nothing"
    );
    resume(&killed.dir, "run", &v.replies);
    let got = outcome(&killed);
    check_leftovers(&killed, &got).unwrap();
    if let Some(d) = difference(&want, &got) {
        panic!("{d}");
    }
}

/// The knowledge base's lock: a session killed while it holds it leaves the
/// lock file with its dead pid, which the resumed session takes over (and
/// removes when it ends); while a live process holds it, resuming (or a new
/// session) fails at once naming that process's pid, and changes nothing.
/// The temporary files of rewrites a kill interrupted are removed too.
#[test]
fn a_dead_sessions_lock_is_taken_over_and_a_live_holder_is_named() {
    let d = tempfile::tempdir().unwrap();
    let v = nb201_variant(d.path());
    let place = Place::new(d.path().join("p"), &v);
    let lock = place.kb().join(".lock");
    // Killed once its first evaluations are journalled, lock held.
    match run_and_kill(
        &place,
        place.next_command(&v, 1),
        Some(60_000),
        Duration::ZERO,
    ) {
        Ended::Killed => {}
        Ended::Exited(st) => panic!("finished before the kill ({st})"),
    }
    let left = std::fs::read_to_string(&lock).expect("the killed session's lock file");
    let dead: u32 = left.trim().parse().unwrap();
    assert!(!Path::new(&format!("/proc/{dead}")).exists());
    let journal = std::fs::read(place.journal()).unwrap();
    let records = std::fs::read(place.kb().join("architectures.jsonl")).unwrap();
    // A live holder (this test process, after taking the dead one's lock).
    let live = seki::store::FileLock::acquire(&lock).unwrap();
    for attempt in [2, 3] {
        let mut cmd = place.next_command(&v, attempt);
        if attempt == 3 {
            // A new session into the same knowledge base.
            cmd = Command::new(env!("CARGO_BIN_EXE_seki"));
            cmd.current_dir(&place.dir)
                .env_remove("RUST_LOG")
                .args(["--config", "c.toml", "search"])
                .args(&v.search)
                .args(["--run-dir", "other", "--llm-replay"])
                .arg(&v.replies)
                .stderr(std::fs::File::create(place.dir.join("attempt3.err")).unwrap());
        }
        assert!(!cmd.status().unwrap().success());
        let log = place.log(attempt);
        assert!(
            log.contains("locked by another writer")
                && log.contains(&format!("(pid {})", std::process::id())),
            "{log}"
        );
    }
    assert!(!place.dir.join("other").exists());
    assert_eq!(std::fs::read(place.journal()).unwrap(), journal);
    assert_eq!(
        std::fs::read(place.kb().join("architectures.jsonl")).unwrap(),
        records
    );
    drop(live);
    // The lock file as the kill left it: the resumed session takes it over.
    std::fs::write(&lock, &left).unwrap();
    // And what a kill in the middle of an atomic rewrite leaves (pid 4194303
    // is above any pid_max: a process that is gone): removed.
    let temps = [
        place.run().join(".best.json.tmp-4194303"),
        place.kb().join(".insights.jsonl.tmp-4194303"),
    ];
    for t in &temps {
        std::fs::write(t, "{\"half\": ").unwrap();
    }
    let st = place.next_command(&v, 4).status().unwrap();
    assert!(st.success(), "{}", place.log(4));
    assert!(!lock.exists(), "the lock is left behind");
    for t in &temps {
        assert!(!t.exists(), "{} is left behind", t.display());
    }
    let got = outcome(&place);
    check_leftovers(&place, &got).unwrap();
    assert_eq!(got.records.len(), 30);
}
