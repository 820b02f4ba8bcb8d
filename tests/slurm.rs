//! The Slurm executor against a real (one-node) Slurm cluster, as
//! `scripts/slurm-cluster.sh start` sets one up (the test command does):
//! sessions with several jobs in flight, table lookups and Candle training,
//! a job cancelled with `scancel`, a job that fails, a job over its time
//! limit, a session killed with SIGKILL and resumed, and refusals that name
//! the setting at fault.
//!
//! Without a cluster these tests are skipped with a message, except under
//! `CI=true`, where they fail.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

fn slurm_up() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%t"])
        .output()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout);
            o.status.success()
                && ["idle", "mix", "alloc", "comp"]
                    .iter()
                    .any(|k| s.trim_start().starts_with(k))
        })
        .unwrap_or(false);
    if up {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "no Slurm cluster takes jobs here; the test command starts one with scripts/slurm-cluster.sh start (as root)"
    );
    eprintln!("skipped: no Slurm cluster (start one with scripts/slurm-cluster.sh start, as root)");
    false
}

/// `[executor]` for Slurm with `workers` jobs in flight and `slurm` lines.
fn slurm_cfg(workers: usize, slurm: &str) -> String {
    format!("[executor]\nkind = \"slurm\"\nworkers = {workers}\n[executor.slurm]\npoll_seconds = 0.5\n{slurm}")
}

/// A setup line that runs `cmd` in the job of request `id` only.
fn only(id: &str, cmd: &str) -> String {
    format!("case \\\"$SLURM_JOB_NAME\\\" in *-{id}) {cmd} ;; esac")
}

fn search(dir: &Path, cfg: &str, args: &[&str]) -> serde_json::Value {
    let out = ok(seki_with(dir, "c", cfg)
        .args(["search", "--kb-records", "none", "--json"])
        .args(args));
    serde_json::from_str(&out).unwrap()
}

fn by_request(run: &Path) -> std::collections::BTreeMap<String, serde_json::Value> {
    events(run, "evaluation")
        .into_iter()
        .map(|e| (e["placement"]["request"].as_str().unwrap().to_string(), e))
        .collect()
}

#[test]
fn a_session_keeps_several_slurm_jobs_in_flight() {
    if !slurm_up() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let s = search(
        d.path(),
        &slurm_cfg(4, ""),
        &[
            "--strategy",
            "rea",
            "--budget",
            "16",
            "--seed",
            "6",
            "--run-dir",
            "r",
        ],
    );
    assert_eq!(s["evaluations"], 16);
    assert_eq!(s["failed"], 0, "{s}");
    assert!(s["executor"].as_str().unwrap().starts_with("slurm"), "{s}");
    let run = d.path().join("r");
    assert!(
        most_in_flight(&run) >= 2,
        "never more than one job in flight"
    );
    let jobs = events(&run, "job");
    assert_eq!(jobs.len(), 16, "one job per request");
    for (req, e) in by_request(&run) {
        let job = e["placement"]["job"].as_str().unwrap().to_string();
        assert!(jobs
            .iter()
            .any(|j| j["request"] == req.as_str() && j["job"] == job.as_str()));
        // The job's log stays in the run directory.
        let log = run
            .join("evals")
            .join(&req)
            .join(format!("slurm-{job}.out"));
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains(&format!("{req} ok")),
            "{}: {text}",
            log.display()
        );
    }
}

#[test]
fn candle_training_runs_as_slurm_jobs() {
    if !slurm_up() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let cfg = format!(
        "{}[search]\nspace = \"nb201\"\nevaluator = \"candle\"\n{}",
        candle_proxy(1),
        slurm_cfg(2, "cpus_per_task = 1\n")
    );
    let s = search(
        d.path(),
        &cfg,
        &[
            "--strategy",
            "random",
            "--budget",
            "2",
            "--seed",
            "3",
            "--run-dir",
            "r",
        ],
    );
    assert_eq!(
        (s["evaluations"].as_u64(), s["failed"].as_u64()),
        (Some(2), Some(0)),
        "{s}"
    );
    for e in events(&d.path().join("r"), "evaluation") {
        assert!(e["metrics"]["train_seconds"].as_f64().unwrap() > 0.0, "{e}");
        assert!(e["placement"]["job"].is_string());
    }
}

#[test]
fn cancelled_and_failed_jobs_are_results_and_the_session_goes_on() {
    if !slurm_up() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let cfg = slurm_cfg(
        4,
        &format!(
            "setup = [\"{}\", \"{}\"]\n",
            only("r0002", "sleep 120"),
            only("r0003", "echo worker lost >&2; exit 3")
        ),
    );
    let child = seki_with(d.path(), "c", &cfg)
        .args([
            "search",
            "--strategy",
            "random",
            "--budget",
            "4",
            "--seed",
            "2",
            "--kb-records",
            "none",
            "--json",
            "--run-dir",
            "r",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run = d.path().join("r");
    let mut job = String::new();
    wait_for(60, "the job of r0002", || {
        if let Some(j) = journal_so_far(&run)
            .iter()
            .find(|e| e["event"] == "job" && e["request"] == "r0002")
        {
            job = j["job"].as_str().unwrap().to_string();
        }
        !job.is_empty()
    });
    assert!(Command::new("scancel")
        .arg(&job)
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (s["evaluations"].as_u64(), s["failed"].as_u64()),
        (Some(4), Some(2)),
        "{s}"
    );
    let evs = by_request(&run);
    assert_eq!(evs["r0002"]["status"], "cancelled", "{}", evs["r0002"]);
    assert!(evs["r0002"]["reason"].as_str().unwrap().contains(&job));
    assert_eq!(evs["r0003"]["status"], "failed", "{}", evs["r0003"]);
    let why = evs["r0003"]["reason"].as_str().unwrap();
    assert!(why.contains("3:0") && why.contains("worker lost"), "{why}");
    assert_eq!(evs["r0001"]["status"], "ok");
}

#[test]
fn a_job_over_its_time_limit_times_out() {
    if !slurm_up() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let cfg = slurm_cfg(
        2,
        &format!(
            "time = \"1\"\nsetup = [\"{}\"]\n",
            only("r0001", "sleep 600")
        ),
    );
    let s = search(
        d.path(),
        &cfg,
        &["--strategy", "random", "--budget", "3", "--run-dir", "r"],
    );
    assert_eq!(
        (s["evaluations"].as_u64(), s["failed"].as_u64()),
        (Some(3), Some(1)),
        "{s}"
    );
    let evs = by_request(&d.path().join("r"));
    assert_eq!(evs["r0001"]["status"], "timed_out", "{}", evs["r0001"]);
    let why = evs["r0001"]["reason"].as_str().unwrap();
    assert!(
        why.contains("time limit") && why.contains("executor.slurm.time = 1"),
        "{why}"
    );
}

#[test]
fn a_session_killed_while_jobs_run_resumes_to_the_same_result() {
    if !slurm_up() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let args = [
        "search",
        "--strategy",
        "random",
        "--budget",
        "16",
        "--seed",
        "21",
        "--kb-records",
        "none",
        "-q",
    ];
    ok(seki_with(d.path(), "local", "")
        .args(args)
        .args(["--run-dir", "whole"]));
    let cfg = slurm_cfg(4, "setup = [\"sleep 1\"]\n");
    let mut child = seki_with(d.path(), "c", &cfg)
        .args(args)
        .args(["--run-dir", "killed"])
        .spawn()
        .unwrap();
    let run = d.path().join("killed");
    wait_for(120, "evaluations with jobs in flight", || {
        let j = journal_so_far(&run);
        let done = j.iter().filter(|e| e["event"] == "evaluation").count();
        let sent = j.iter().filter(|e| e["event"] == "job").count();
        done >= 4 && sent > done
    });
    child.kill().unwrap(); // SIGKILL, with jobs queued or running
    child.wait().unwrap();
    let at_kill = journal_so_far(&run);
    let done = at_kill
        .iter()
        .filter(|e| e["event"] == "evaluation")
        .count();
    assert!(done < 16, "the kill came too late");
    // As if the kill had come between sbatch and the journal line of its
    // job id: drop the last `job` line of a request still in flight (the
    // resumed session finds that job by its name).
    let finished: Vec<String> = at_kill
        .iter()
        .filter(|e| e["event"] == "evaluation")
        .map(|e| e["placement"]["request"].as_str().unwrap().to_string())
        .collect();
    let text = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    if let Some(i) = lines.iter().rposition(|l| {
        let e: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
        e["event"] == "job" && !finished.iter().any(|r| e["request"] == r.as_str())
    }) {
        lines.remove(i);
    }
    std::fs::write(run.join("journal.jsonl"), lines.join("\n") + "\n").unwrap();
    let s: serde_json::Value = serde_json::from_str(&ok(
        seki_with(d.path(), "c", &cfg).args(["search", "--resume", "killed", "--json"])
    ))
    .unwrap();
    assert_eq!(s["evaluations"], 16);
    // The same evaluations as the uninterrupted session.
    assert_eq!(evaluated(&d.path().join("whole")), evaluated(&run));
    // Nothing evaluated twice, nothing lost: one result per request, one
    // job per request (those running at the kill were re-attached, not
    // submitted again, and journalled), one log per request.
    let evs = by_request(&run);
    assert_eq!(evs.len(), 16);
    assert_eq!(events(&run, "evaluation").len(), 16);
    let mut job_of = std::collections::BTreeMap::new();
    for j in events(&run, "job") {
        let (r, id) = (j["request"].to_string(), j["job"].to_string());
        let before = job_of.insert(r.clone(), id.clone());
        assert!(before.is_none_or(|b| b == id), "{r} was submitted twice");
    }
    assert_eq!(job_of.len(), 16, "a request's job id is not in the journal");
    for req in evs.keys() {
        let logs = std::fs::read_dir(run.join("evals").join(req))
            .unwrap()
            .filter(|f| {
                f.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("slurm-")
            })
            .count();
        assert_eq!(logs, 1, "{req} ran {logs} times");
    }
}

#[test]
fn refused_jobs_name_the_setting() {
    if !slurm_up() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    for (i, (slurm, want)) in [
        ("partition = \"nope\"\n", "executor.slurm.partition"),
        ("mem = \"99999999\"\n", "executor.slurm.mem"),
        ("cpus_per_task = 99\n", "executor.slurm.cpus_per_task"),
    ]
    .into_iter()
    .enumerate()
    {
        let run = format!("r{i}");
        let e = fails(seki_with(d.path(), "c", &slurm_cfg(2, slurm)).args([
            "search",
            "--budget",
            "2",
            "--kb-records",
            "none",
            "--run-dir",
            &run,
        ]));
        assert!(e.contains(want), "{slurm}: {e}");
    }
    // Nothing of the over-limit jobs is left queued.
    let q = Command::new("squeue")
        .args(["-h", "-o", "%j"])
        .output()
        .unwrap();
    let q = String::from_utf8_lossy(&q.stdout);
    assert!(
        !q.lines().any(|l| l.contains("-r1-") || l.contains("-r2-")),
        "{q}"
    );
}
