//! The local executor through the real CLI: a pool of `seki eval-worker`
//! processes with several evaluations in flight (table lookups and Candle
//! training), kill and resume, Ctrl-C, the worker on a request file, and the
//! clear errors of a Slurm executor without Slurm.

mod common;
use common::*;
use std::path::Path;

fn search(dir: &Path, cfg: &str, args: &[&str]) -> serde_json::Value {
    let out = ok(seki_with(dir, "c", cfg)
        .args(["search", "--kb-records", "none", "--json"])
        .args(args));
    serde_json::from_str(&out).unwrap()
}

#[test]
fn a_pool_of_workers_keeps_several_evaluations_in_flight() {
    let d = tempfile::tempdir().unwrap();
    let s = search(
        d.path(),
        "",
        &[
            "--strategy",
            "rea",
            "--workers",
            "3",
            "--budget",
            "24",
            "--seed",
            "4",
            "--run-dir",
            "r",
        ],
    );
    assert_eq!(s["evaluations"], 24);
    assert!(
        s["executor"]
            .as_str()
            .unwrap()
            .starts_with("local, 3 workers"),
        "{s}"
    );
    let run = d.path().join("r");
    assert_eq!(events(&run, "submitted").len(), 24);
    assert!(most_in_flight(&run) >= 2, "never more than one in flight");
    // Each result came from its request's worker, in the run directory.
    let evs = events(&run, "evaluation");
    let mut requests: Vec<&str> = evs
        .iter()
        .map(|e| e["placement"]["request"].as_str().unwrap())
        .collect();
    requests.sort();
    requests.dedup();
    assert_eq!(requests.len(), 24);
    for r in requests {
        let dir = run.join("evals").join(r);
        for f in ["request.json", "started.json", "result.json", "worker.log"] {
            assert!(dir.join(f).is_file(), "{r}/{f} missing");
        }
    }
    assert_eq!(evaluated(&run).len(), 24);
    let mut archs: Vec<String> = evaluated(&run).into_iter().map(|e| e.0).collect();
    archs.dedup();
    assert_eq!(archs.len(), 24, "an architecture was evaluated twice");
}

#[test]
fn random_search_with_a_pool_evaluates_what_one_worker_evaluates() {
    let d = tempfile::tempdir().unwrap();
    let one = search(
        d.path(),
        "",
        &[
            "--strategy",
            "random",
            "--budget",
            "20",
            "--seed",
            "8",
            "--run-dir",
            "one",
        ],
    );
    let pool = search(
        d.path(),
        "",
        &[
            "--strategy",
            "random",
            "--budget",
            "20",
            "--seed",
            "8",
            "--run-dir",
            "pool",
            "--workers",
            "4",
        ],
    );
    assert_eq!(
        evaluated(&d.path().join("one")),
        evaluated(&d.path().join("pool"))
    );
    assert_eq!(one["best"]["arch"], pool["best"]["arch"]);
}

#[test]
fn a_killed_pool_session_resumes_without_losing_or_repeating_work() {
    let d = tempfile::tempdir().unwrap();
    let args = [
        "search",
        "--strategy",
        "random",
        "--budget",
        "40",
        "--seed",
        "12",
        "--kb-records",
        "none",
        "-q",
    ];
    ok(seki_with(d.path(), "c", "")
        .args(args)
        .args(["--run-dir", "whole"]));
    let mut child = seki_with(d.path(), "c", "")
        .args(args)
        .args(["--run-dir", "killed", "--workers", "3"])
        .spawn()
        .unwrap();
    let run = d.path().join("killed");
    wait_for(120, "evaluations", || {
        journal_so_far(&run)
            .iter()
            .filter(|e| e["event"] == "evaluation")
            .count()
            >= 8
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = journal_so_far(&run);
    let done = before.iter().filter(|e| e["event"] == "evaluation").count();
    assert!(done < 40, "the kill came too late");
    ok(seki_with(d.path(), "c", "").args(["search", "--resume", "killed", "-q"]));
    assert_eq!(evaluated(&d.path().join("whole")), evaluated(&run));
    // One evaluation per request, none lost.
    let mut reqs: Vec<String> = events(&run, "evaluation")
        .iter()
        .map(|e| e["placement"]["request"].as_str().unwrap().to_string())
        .collect();
    let n = reqs.len();
    reqs.sort();
    reqs.dedup();
    assert_eq!((n, reqs.len()), (40, 40));
}

#[test]
fn candle_training_in_two_workers() {
    let d = tempfile::tempdir().unwrap();
    let cfg = format!(
        "{}[search]\nspace = \"nb201\"\nevaluator = \"candle\"\n[executor]\nworkers = 2\n",
        candle_proxy(1)
    );
    let s = search(
        d.path(),
        &cfg,
        &[
            "--strategy",
            "random",
            "--budget",
            "3",
            "--seed",
            "1",
            "--run-dir",
            "r",
        ],
    );
    assert_eq!(s["evaluations"], 3);
    assert_eq!(s["failed"], 0, "{s}");
    let run = d.path().join("r");
    assert!(most_in_flight(&run) >= 2);
    for e in events(&run, "evaluation") {
        assert_eq!(e["status"], "ok", "{e}");
        assert!(e["score"].as_f64().is_some(), "{e}");
        assert!(e["metrics"]["params"].as_f64().unwrap() > 0.0);
        assert!(e["placement"]["host"].as_str().is_some());
    }
}

#[test]
fn a_worker_over_its_time_limit_is_a_result_and_the_session_goes_on() {
    let d = tempfile::tempdir().unwrap();
    let cfg = format!(
        "{}timeout_seconds = 0.001\n[search]\nspace = \"nb201\"\nevaluator = \"candle\"\n[executor]\nworkers = 2\n",
        candle_proxy(1)
    );
    // Every evaluation timed out, so the session has no best (an error),
    // but it ran to its budget.
    let e = fails(seki_with(d.path(), "c", &cfg).args([
        "search",
        "--strategy",
        "random",
        "--budget",
        "2",
        "--kb-records",
        "none",
        "--run-dir",
        "r",
    ]));
    assert!(
        e.contains("no architecture that evaluated successfully"),
        "{e}"
    );
    assert_eq!(events(&d.path().join("r"), "evaluation").len(), 2);
    assert_eq!(events(&d.path().join("r"), "end").len(), 1);
    for e in events(&d.path().join("r"), "evaluation") {
        assert_eq!(e["status"], "timed_out", "{e}");
    }
}

#[test]
fn ctrl_c_cancels_the_workers_and_the_session_resumes() {
    let d = tempfile::tempdir().unwrap();
    let cfg = format!(
        "{}[search]\nspace = \"nb201\"\nevaluator = \"candle\"\n[executor]\nworkers = 2\n",
        candle_proxy(1)
    );
    let args = [
        "search",
        "--strategy",
        "random",
        "--budget",
        "3",
        "--seed",
        "2",
        "--kb-records",
        "none",
        "--run-dir",
        "r",
    ];
    let child = seki_with(d.path(), "c", &cfg)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run = d.path().join("r");
    wait_for(60, "two requests in flight", || {
        journal_so_far(&run)
            .iter()
            .filter(|e| e["event"] == "submitted")
            .count()
            >= 2
    });
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("interrupted") && err.contains("--resume"),
        "{err}"
    );
    let cancelled = events(&run, "cancelled");
    assert!(!cancelled.is_empty());
    assert!(cancelled.iter().all(|e| e["reason"] == "interrupted"));
    assert!(events(&run, "end").is_empty());
    // The workers are gone.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(
        !ps.contains(&run.join("evals").display().to_string()),
        "a worker still runs"
    );
    let s: serde_json::Value = serde_json::from_str(&ok(
        seki_with(d.path(), "c", &cfg).args(["search", "--resume", "r", "--json"])
    ))
    .unwrap();
    assert_eq!(s["evaluations"], 3);
    assert_eq!(s["failed"], 0, "{s}");
}

#[test]
fn the_worker_evaluates_a_request_file() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("evals/r0001");
    std::fs::create_dir_all(&dir).unwrap();
    let arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|";
    let req = serde_json::json!({
        "id": "r0001", "space": "nb201", "arch": arch, "evaluator": "nb201",
        "settings": {"nb201": {"table": table()}},
    });
    std::fs::write(dir.join("request.json"), req.to_string()).unwrap();
    let (okay, _, err) = run(std::process::Command::new(env!("CARGO_BIN_EXE_seki"))
        .args(["eval-worker"])
        .arg(dir.join("request.json")));
    assert!(okay, "{err}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["id"], "r0001");
    assert_eq!(r["evaluation"]["status"], "ok");
    assert!(r["evaluation"]["score"].as_f64().unwrap() > 50.0);
    assert!(r["finished"].as_f64().unwrap() >= r["started"].as_f64().unwrap());
}

#[test]
fn slurm_missing_or_unreachable_is_a_clear_error_before_anything_is_submitted() {
    let d = tempfile::tempdir().unwrap();
    let e = fails(
        seki_with(
            d.path(),
            "c",
            "[executor.slurm]\nbin_dir = \"no-slurm-here\"\n",
        )
        .args([
            "search",
            "--executor",
            "slurm",
            "--budget",
            "2",
            "--run-dir",
            "r",
        ]),
    );
    assert!(
        e.contains("`sbatch` is not found in") && e.contains("no-slurm-here"),
        "{e}"
    );
    assert!(
        !d.path().join("r").exists(),
        "a run directory was left behind"
    );
    // Commands that are there, with a controller that does not answer.
    let bin = d.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for name in ["sbatch", "squeue", "scancel", "sinfo"] {
        write_script(&bin.join(name), "echo should not run >&2; exit 1");
    }
    write_script(
        &bin.join("scontrol"),
        "echo 'slurm_load_partitions: Unable to contact slurm controller (connect failure)' >&2; exit 1",
    );
    let e = fails(
        seki_with(d.path(), "c", "[executor.slurm]\nbin_dir = \"bin\"\n").args([
            "search",
            "--executor",
            "slurm",
            "--budget",
            "2",
            "--run-dir",
            "r2",
        ]),
    );
    assert!(
        e.contains("Slurm controller is unreachable") && e.contains("connect failure"),
        "{e}"
    );
    assert!(
        !d.path().join("r2").exists(),
        "a run directory was left behind"
    );
}

fn write_script(p: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn executor_settings_are_checked_with_their_key() {
    let d = tempfile::tempdir().unwrap();
    for (cfg, key) in [
        ("[executor]\nworkers = 0\n", "executor.workers"),
        ("[executor]\nkind = \"kubernetes\"\n", "kubernetes"),
        ("[executor.slurm]\ntime = \"1h\"\n", "executor.slurm.time"),
        (
            "[executor.slurm]\nextra = [\"constraint=a100\"]\n",
            "executor.slurm.extra",
        ),
        ("[agent]\nislands = 0\n", "agent.islands"),
    ] {
        let e = fails(seki_with(d.path(), "bad", cfg).args(["search", "--budget", "1"]));
        assert!(e.contains(key), "{cfg}: {e}");
    }
    let e = fails(seki_with(d.path(), "c", "").args(["search", "--workers", "0", "--budget", "1"]));
    assert!(e.contains("executor.workers"), "{e}");
}

#[test]
fn a_slurm_job_that_left_nothing_in_the_run_directory_stops_the_session() {
    // A stand-in for Slurm whose job "ran" on node7 but wrote nothing here:
    // what a run directory the compute nodes do not share looks like.
    let d = tempfile::tempdir().unwrap();
    let bin = d.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    write_script(&bin.join("sbatch"), "echo 42");
    write_script(&bin.join("squeue"), "exit 0");
    write_script(&bin.join("sinfo"), "echo 'debug*'");
    write_script(
        &bin.join("scancel"),
        &format!("echo \"$@\" >> {}/cancelled", d.path().display()),
    );
    write_script(
        &bin.join("scontrol"),
        "case \"$1\" in ping) echo 'Slurmctld(primary) at head is UP' ;; *) echo 'JobId=42 JobName=x JobState=COMPLETED Reason=None ExitCode=0:0 NodeList=node7' ;; esac",
    );
    let e = fails(seki_with(
        d.path(),
        "c",
        "[executor]\nkind = \"slurm\"\n[executor.slurm]\nbin_dir = \"bin\"\npoll_seconds = 0.1\n",
    )
    .args(["search", "--budget", "1", "--kb-records", "none", "--run-dir", "r"]));
    assert!(
        e.contains("job 42 ran on node7") && e.contains("filesystem the compute nodes share"),
        "{e}"
    );
    assert!(d.path().join("r/evals/r0001/job.sh").is_file());
    assert_eq!(events(&d.path().join("r"), "job")[0]["job"], "42");
}

#[test]
fn the_seki_agent_keeps_two_in_flight_on_two_islands_and_resumes() {
    let d = tempfile::tempdir().unwrap();
    let fixture = root().join("tests/fixtures/seki-nb201-replies.jsonl");
    let cfg = "[agent]\nislands = 2\n[executor]\nworkers = 2\n";
    let args = [
        "search",
        "--strategy",
        "seki",
        "--budget",
        "6",
        "--kb-records",
        "none",
        "--llm-replay",
    ];
    let s: serde_json::Value = serde_json::from_str(&ok(seki_with(d.path(), "c", cfg)
        .args(args)
        .arg(&fixture)
        .args(["--run-dir", "r", "--json"])))
    .unwrap();
    assert_eq!(s["evaluations"], 6, "{s}");
    let run = d.path().join("r");
    assert!(most_in_flight(&run) >= 2);
    let last = events(&run, "evaluation").pop().unwrap();
    let lines = last["strategy_state"]["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["current"].is_object()), "{lines:?}");
    // Cut after the third submission: the resumed session takes back what
    // was in flight and ends with as many evaluations.
    let cut = d.path().join("cut");
    std::fs::create_dir_all(&cut).unwrap();
    std::fs::copy(run.join("config.toml"), cut.join("config.toml")).unwrap();
    let text = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    let mut kept = String::new();
    let mut submitted = 0;
    for line in text.lines() {
        kept.push_str(line);
        kept.push('\n');
        if line.contains("\"event\":\"submitted\"") {
            submitted += 1;
            if submitted == 3 {
                break;
            }
        }
    }
    std::fs::write(cut.join("journal.jsonl"), kept).unwrap();
    let s: serde_json::Value = serde_json::from_str(&ok(seki_with(d.path(), "c", cfg)
        .args(["search", "--resume", "cut", "--llm-replay"])
        .arg(&fixture)
        .arg("--json")))
    .unwrap();
    assert_eq!(s["evaluations"], 6, "{s}");
    let mut reqs: Vec<String> = events(&cut, "evaluation")
        .iter()
        .map(|e| e["placement"]["request"].as_str().unwrap().to_string())
        .collect();
    reqs.sort();
    reqs.dedup();
    assert_eq!(reqs.len(), 6);
}

#[test]
fn search_help_shows_a_slurm_example_with_gpus() {
    let d = tempfile::tempdir().unwrap();
    let out = ok(seki_with(d.path(), "c", "").args(["search", "--help"]));
    for want in [
        "--executor",
        "--workers",
        "kind = \"slurm\"",
        "[executor.slurm]",
        "gpus = \"1\"",
        "partition",
    ] {
        assert!(out.contains(want), "{want} missing from:\n{out}");
    }
}
