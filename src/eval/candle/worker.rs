//! Evaluations in a child process: the parent writes one JSON [`Request`] to
//! the child's stdin (`seki eval-worker`) and reads one JSON
//! [`Report`](super::Report) from its stdout. A timeout kills the child; a
//! crash becomes a `failed` result.

use super::data::Dataset;
use super::settings::CandleConfig;
use super::train::{evaluate, Report};
use super::CandleError;
use crate::child::{describe_exit, worker_env};
use crate::eval::EvalStatus;
use crate::space::{Arch, Space};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the worker evaluates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// The space's name (`darts`, `nb201`).
    pub space: String,
    /// The architecture's text form.
    pub arch: String,
    /// Settings.
    pub config: CandleConfig,
}

/// Serve one request: read it from `input`, evaluate, write the report to
/// `output`. Errors become `failed` reports; only I/O on the pipes fails.
pub fn serve(input: &mut dyn Read, output: &mut dyn Write) -> std::io::Result<()> {
    let mut text = String::new();
    input.read_to_string(&mut text)?;
    let report = match run_request(&text) {
        Ok(r) => r,
        Err(e) => Report::failed(EvalStatus::Failed(e.to_string())),
    };
    let json = serde_json::to_string(&report).map_err(std::io::Error::other)?;
    writeln!(output, "{json}")?;
    output.flush()
}

fn run_request(text: &str) -> Result<Report, CandleError> {
    let req: Request = serde_json::from_str(text)
        .map_err(|e| CandleError::Setup(format!("bad worker request: {e}")))?;
    let space: Space = req
        .space
        .parse()
        .map_err(|e: crate::space::UnknownSpace| CandleError::Setup(e.to_string()))?;
    let arch = space
        .parse(&req.arch)
        .map_err(|e| CandleError::Setup(e.to_string()))?;
    let data = Dataset::load(req.config.dataset, &req.config.data_dir)?;
    evaluate(&arch, &req.config, &data, None)
}

/// Run `program eval-worker` on `arch`, killing it after the configured timeout.
pub fn run_child(program: &Path, arch: &Arch, cfg: &CandleConfig) -> Result<Report, CandleError> {
    let req = Request {
        space: arch.space().name().to_string(),
        arch: arch.to_text(),
        config: cfg.clone(),
    };
    let body = serde_json::to_string(&req).map_err(|e| CandleError::Setup(e.to_string()))?;
    let mut cmd = Command::new(program);
    cmd.arg("eval-worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in worker_env(cfg.threads) {
        cmd.env(k, v);
    }
    let io = |what: &str, e: std::io::Error| {
        CandleError::Setup(format!(
            "evaluation worker {}: {what}: {e}",
            program.display()
        ))
    };
    let mut child = cmd.spawn().map_err(|e| io("cannot start", e))?;
    let started = Instant::now();
    if let Some(mut stdin) = child.stdin.take() {
        // A worker that dies at once closes the pipe; its exit status tells why.
        let _ = stdin.write_all(body.as_bytes());
    }
    let out_reader = child.stdout.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut v = String::new();
            let _ = s.read_to_string(&mut v);
            v
        })
    });
    let err_reader = child.stderr.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut v = String::new();
            let _ = s.read_to_string(&mut v);
            v
        })
    });
    let limit = crate::duration::secs(cfg.timeout_seconds);
    let status = loop {
        match child.try_wait().map_err(|e| io("wait", e))? {
            Some(s) => break Some(s),
            None if started.elapsed() >= limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let stdout = out_reader.and_then(|h| h.join().ok()).unwrap_or_default();
    let stderr = err_reader.and_then(|h| h.join().ok()).unwrap_or_default();
    let Some(status) = status else {
        return Ok(Report::failed(EvalStatus::TimedOut(format!(
            "killed after the {} s limit (timeout_seconds)",
            cfg.timeout_seconds
        ))));
    };
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    match serde_json::from_str::<Report>(last) {
        Ok(r) => Ok(r),
        Err(_) => {
            let tail: String = {
                let t = stderr.trim();
                let start = t.char_indices().rev().nth(600).map(|(i, _)| i).unwrap_or(0);
                t[start..].to_string()
            };
            Ok(Report::failed(EvalStatus::Failed(format!(
                "evaluation worker {} without a result{}",
                describe_exit(status),
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {tail}")
                }
            ))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::Nb201Cell;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, body: &str) -> std::path::PathBuf {
        let p = dir.join("worker.sh");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn arch() -> Arch {
        Arch::Nb201(
            Nb201Cell::parse(
                "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|",
            )
            .unwrap(),
        )
    }

    #[test]
    fn a_crashing_worker_is_a_failed_result_with_its_stderr() {
        let d = tempfile::tempdir().unwrap();
        let p = script(
            d.path(),
            "cat >/dev/null; echo 'worker blew up' >&2; exit 3",
        );
        let r = run_child(&p, &arch(), &CandleConfig::default()).unwrap();
        match r.evaluation.status {
            EvalStatus::Failed(m) => {
                assert!(
                    m.contains("worker blew up") && m.contains("exited with code 3"),
                    "{m}"
                )
            }
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn a_worker_killed_by_a_signal_is_a_failed_result_naming_it() {
        let d = tempfile::tempdir().unwrap();
        for (sig, name) in [
            ("KILL", "signal 9 (SIGKILL: out of memory"),
            ("SEGV", "signal 11 (SIGSEGV)"),
        ] {
            let p = script(d.path(), &format!("cat >/dev/null; kill -{sig} $$"));
            let r = run_child(&p, &arch(), &CandleConfig::default()).unwrap();
            match r.evaluation.status {
                EvalStatus::Failed(m) => {
                    assert!(m.contains(name) && m.contains("without a result"), "{m}")
                }
                s => panic!("{s:?}"),
            }
        }
    }

    #[test]
    fn a_hanging_worker_is_killed_at_the_timeout() {
        let d = tempfile::tempdir().unwrap();
        let p = script(d.path(), "cat >/dev/null; exec sleep 30");
        let cfg = CandleConfig {
            timeout_seconds: 0.3,
            ..CandleConfig::default()
        };
        let r = run_child(&p, &arch(), &cfg).unwrap();
        assert!(
            matches!(r.evaluation.status, EvalStatus::TimedOut(_)),
            "{r:?}"
        );
    }

    #[test]
    fn the_worker_reads_a_request_and_answers_one_json_line() {
        let d = tempfile::tempdir().unwrap();
        let req = Request {
            space: "nb201".into(),
            arch: arch().to_text(),
            config: CandleConfig {
                data_dir: d.path().join("nowhere"),
                ..CandleConfig::default()
            },
        };
        let mut out = Vec::new();
        serve(
            &mut serde_json::to_string(&req).unwrap().as_bytes(),
            &mut out,
        )
        .unwrap();
        let r: Report = serde_json::from_slice(&out).unwrap();
        match r.evaluation.status {
            EvalStatus::Failed(m) => assert!(m.contains("nowhere"), "{m}"),
            s => panic!("{s:?}"),
        }
        let mut out = Vec::new();
        serve(&mut &b"{not json"[..], &mut out).unwrap();
        let r: Report = serde_json::from_slice(&out).unwrap();
        assert!(
            matches!(r.evaluation.status, EvalStatus::Failed(ref m) if m.contains("bad worker request"))
        );
    }
}
