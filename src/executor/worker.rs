//! The worker's side of a request file: `seki eval-worker REQUEST_FILE`
//! evaluates the request in its own process and writes the result beside
//! it. The local pool runs it as a child process, the Slurm executor as the
//! body of a batch job.

use super::request::{hostname, unix_now, EvalDir, Outcome, RequestError, Started};
use crate::eval::{self, EvalStatus};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// Held while the worker writes a file: a worker whose session is gone
/// exits between writes, never in the middle of one (which would leave a
/// temporary file).
static WRITING: Mutex<()> = Mutex::new(());

/// The environment variable through which a local pool tells its workers
/// its process id: a worker whose parent is gone (the session was killed)
/// stops at once instead of running on unwatched.
pub const PARENT_ENV: &str = "SEKI_WORKER_PARENT";

/// Evaluate the request in `request_file` and write `result.json` beside it
/// (atomically), after `started.json`. A request that cannot be read or an
/// evaluator that cannot run still gives a `failed` result with the reason;
/// only a folder the worker cannot write to is an error.
pub fn serve_file(request_file: &Path) -> Result<Outcome, RequestError> {
    let dir = EvalDir::of_request(request_file);
    let started = Started {
        host: hostname(),
        pid: std::process::id(),
        time: unix_now(),
        job: std::env::var("SLURM_JOB_ID").ok(),
    };
    {
        let _writing = WRITING.lock();
        dir.write_started(&started)?;
    }
    watch_parent();
    let id = dir
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut outcome = match dir.read_request() {
        Err(e) => Outcome::failed(
            &id,
            EvalStatus::Failed(format!("cannot read the request: {e}")),
        ),
        Ok(req) => {
            let report = req
                .parse_arch()
                .map_err(|e| e.to_string())
                .and_then(|arch| {
                    eval::evaluate_repeat_here(req.evaluator, &req.settings, &arch, req.repeat)
                        .map_err(|e| e.to_string())
                });
            match report {
                Ok(r) => Outcome {
                    id: req.id.clone(),
                    evaluation: r.evaluation,
                    loss_curve: r.loss_curve,
                    host: None,
                    started: None,
                    finished: None,
                },
                Err(message) => Outcome::failed(&req.id, EvalStatus::Failed(message)),
            }
        }
    };
    outcome.host = Some(started.host);
    outcome.started = Some(started.time);
    outcome.finished = Some(unix_now());
    let _writing = WRITING.lock();
    dir.write_result(&outcome)?;
    Ok(outcome)
}

/// When started by a local pool, exit as soon as the pool's process is gone.
fn watch_parent() {
    let Some(parent) = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
    else {
        return;
    };
    std::thread::spawn(move || loop {
        if std::os::unix::process::parent_id() != parent {
            eprintln!("eval-worker: the session (pid {parent}) is gone; stopping");
            // Not in the middle of writing a file (held until exit).
            let _writing = WRITING.lock();
            std::process::exit(3);
        }
        std::thread::sleep(Duration::from_millis(250));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{EvaluatorConfig, EvaluatorKind};
    use crate::executor::request::Request;
    use crate::space::Space;

    #[test]
    fn a_request_the_worker_cannot_evaluate_gives_a_failed_result() {
        let d = tempfile::tempdir().unwrap();
        let arch = Space::Nb201.random(&mut crate::rng::Rng::seed(3));
        let mut settings = EvaluatorConfig::default();
        settings.nb201.table = d.path().join("no-table.csv");
        let dir = EvalDir::new(d.path(), "r0007");
        dir.write_request(&Request::new(
            "r0007",
            &arch,
            EvaluatorKind::Nb201,
            &settings,
        ))
        .unwrap();
        let o = serve_file(&dir.request()).unwrap();
        assert_eq!(o.id, "r0007");
        match &o.evaluation.status {
            EvalStatus::Failed(m) => assert!(m.contains("no-table.csv"), "{m}"),
            s => panic!("{s:?}"),
        }
        assert_eq!(dir.read_result().unwrap(), Some(o.clone()));
        let s = dir.read_started().unwrap();
        assert_eq!(s.pid, std::process::id());
        assert!(o.finished.unwrap() >= s.time);
        // A request file that is not one.
        std::fs::write(dir.request(), "{}").unwrap();
        let o = serve_file(&dir.request()).unwrap();
        assert!(
            matches!(&o.evaluation.status, EvalStatus::Failed(m) if m.contains("cannot read the request")),
            "{o:?}"
        );
    }
}
