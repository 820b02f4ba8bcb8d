//! A pool of worker processes on this machine: up to N `seki eval-worker
//! REQUEST_FILE` children at once, CPU threads split between them, or one
//! GPU each (`CUDA_VISIBLE_DEVICES`).

use super::request::{EvalDir, Outcome, Request};
use super::worker::PARENT_ENV;
use super::{ExecError, Executor, Reattach};
use crate::child::{describe_exit, worker_env};
use crate::eval::{EvalStatus, EvaluatorConfig, EvaluatorKind};
use crate::knowledge::EvaluatorInfo;
use crate::space::Arch;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A worker's log file in its request's folder.
pub const LOG: &str = "worker.log";

/// Seconds past the evaluator's own time limit before a worker is killed
/// (it stops itself at the limit; this catches one that hangs).
const KILL_GRACE: f64 = 30.0;

struct Running {
    id: String,
    child: Child,
    deadline: Option<Instant>,
}

/// Evaluations in child processes of this machine.
pub struct LocalPool {
    run_dir: PathBuf,
    program: PathBuf,
    evaluator: EvaluatorKind,
    settings: EvaluatorConfig,
    info: EvaluatorInfo,
    devices: Vec<String>,
    threads: usize,
    workers: Vec<Option<Running>>,
    ready: Vec<Outcome>,
}

impl LocalPool {
    /// A pool of `workers` processes of `program` (the seki executable)
    /// writing into `run_dir`. Each worker trains with
    /// `evaluator.candle.threads` threads, or its share of the machine's
    /// cores when that is 0; with `devices`, worker k sees only GPU
    /// `devices[k]`.
    pub fn new(
        workers: usize,
        devices: Vec<String>,
        run_dir: &Path,
        program: PathBuf,
        evaluator: EvaluatorKind,
        settings: EvaluatorConfig,
        info: EvaluatorInfo,
    ) -> Result<Self, ExecError> {
        let workers = workers.max(1);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = match settings.candle.threads {
            0 => (cores / workers).max(1),
            t => t,
        };
        let run_dir = std::path::absolute(run_dir)
            .map_err(|e| ExecError::Setup(format!("{}: {e}", run_dir.display())))?;
        Ok(LocalPool {
            run_dir,
            program,
            evaluator,
            settings,
            info,
            devices,
            threads,
            workers: (0..workers).map(|_| None).collect(),
            ready: Vec::new(),
        })
    }

    /// CPU threads each worker trains with.
    pub fn threads(&self) -> usize {
        self.threads
    }

    fn finished(&self, id: &str, status: std::process::ExitStatus) -> Outcome {
        let dir = EvalDir::new(&self.run_dir, id);
        // A worker killed while writing (the OOM killer) leaves its temporary file.
        crate::store::remove_stale_temps(dir.path());
        match dir.read_result() {
            Ok(Some(o)) => o,
            Ok(None) => {
                let tail = dir.log_tail(LOG, 600);
                Outcome::failed(
                    id,
                    EvalStatus::Failed(format!(
                        "evaluation worker {} without a result{}",
                        describe_exit(status),
                        if tail.is_empty() {
                            String::new()
                        } else {
                            format!(": {tail}")
                        }
                    )),
                )
            }
            Err(e) => Outcome::failed(id, EvalStatus::Failed(e.to_string())),
        }
    }

    fn reap(&mut self) -> Result<(), ExecError> {
        for k in 0..self.workers.len() {
            let Some(r) = self.workers[k].as_mut() else {
                continue;
            };
            let status = r
                .child
                .try_wait()
                .map_err(|e| ExecError::Setup(format!("evaluation worker: wait: {e}")))?;
            let outcome = match status {
                Some(status) => {
                    let id = r.id.clone();
                    Some(self.finished(&id, status))
                }
                None if r.deadline.is_some_and(|d| Instant::now() >= d) => {
                    let _ = r.child.kill();
                    let _ = r.child.wait();
                    Some(Outcome::failed(
                        &r.id,
                        EvalStatus::TimedOut(format!(
                            "killed after the {} s limit (evaluator.candle.timeout_seconds)",
                            self.settings.candle.timeout_seconds
                        )),
                    ))
                }
                None => None,
            };
            if let Some(o) = outcome {
                self.ready.push(o);
                self.workers[k] = None;
            }
        }
        Ok(())
    }
}

impl LocalPool {
    /// Submit request `id` with the evaluator settings `settings`.
    fn submit_with(
        &mut self,
        id: &str,
        arch: &Arch,
        repeat: u32,
        settings: &crate::eval::EvaluatorConfig,
    ) -> Result<Option<String>, ExecError> {
        let Some(slot) = self.workers.iter().position(Option::is_none) else {
            return Err(ExecError::Setup(format!(
                "all {} workers are busy; request {id} submitted too early",
                self.workers.len()
            )));
        };
        let dir = EvalDir::new(&self.run_dir, id);
        dir.write_request(&Request::new(id, arch, self.evaluator, settings).with_repeat(repeat))?;
        let log_path = dir.file(LOG);
        let log = std::fs::File::create(&log_path)
            .map_err(|e| ExecError::Setup(format!("{}: {e}", log_path.display())))?;
        let mut cmd = Command::new(&self.program);
        cmd.arg("eval-worker")
            .arg(dir.request())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .env(PARENT_ENV, std::process::id().to_string())
            // Its own process group: a Ctrl-C at the terminal reaches the
            // session, which stops the workers itself.
            .process_group(0);
        for (k, v) in worker_env(self.threads) {
            cmd.env(k, v);
        }
        if !self.devices.is_empty() {
            cmd.env(
                "CUDA_VISIBLE_DEVICES",
                &self.devices[slot % self.devices.len()],
            );
        }
        let child = cmd.spawn().map_err(|source| ExecError::Spawn {
            program: self.program.clone(),
            source,
        })?;
        let deadline = (self.evaluator == EvaluatorKind::Candle).then(|| {
            Instant::now()
                + Duration::from_secs_f64(self.settings.candle.timeout_seconds + KILL_GRACE)
        });
        self.workers[slot] = Some(Running {
            id: id.to_string(),
            child,
            deadline,
        });
        Ok(None)
    }
}

impl Executor for LocalPool {
    fn describe(&self) -> String {
        let n = self.workers.len();
        match self.devices.len() {
            0 => format!("local, {n} workers × {} threads", self.threads),
            _ => format!("local, {n} workers on GPUs {}", self.devices.join(",")),
        }
    }

    fn slots(&self) -> usize {
        self.workers.len()
    }

    fn info(&self) -> EvaluatorInfo {
        self.info.clone()
    }

    fn durable(&self) -> bool {
        true
    }

    fn repeatable(&self) -> bool {
        self.settings.repeatable(self.evaluator)
    }

    fn submit_repeat(
        &mut self,
        id: &str,
        arch: &Arch,
        repeat: u32,
    ) -> Result<Option<String>, ExecError> {
        let settings = self.settings.clone();
        self.submit_with(id, arch, repeat, &settings)
    }

    fn submit_at(
        &mut self,
        id: &str,
        arch: &Arch,
        repeat: u32,
        rung: &crate::eval::Rung,
    ) -> Result<Option<String>, ExecError> {
        self.submit_with(id, arch, repeat, &rung.settings)
    }

    fn reattach(
        &mut self,
        id: &str,
        _arch: &Arch,
        _job: Option<&str>,
        _cancelled: bool,
    ) -> Result<Reattach, ExecError> {
        // The workers of a killed session stop with it; what they finished
        // is on disk.
        match EvalDir::new(&self.run_dir, id).read_result() {
            Ok(Some(o)) => {
                self.ready.push(o);
                Ok(Reattach::Attached)
            }
            _ => Ok(Reattach::Lost),
        }
    }

    fn poll(&mut self, wait: Duration) -> Result<Vec<Outcome>, ExecError> {
        let end = Instant::now() + wait;
        loop {
            self.reap()?;
            let now = Instant::now();
            if !self.ready.is_empty() || now >= end || self.workers.iter().all(Option::is_none) {
                return Ok(std::mem::take(&mut self.ready));
            }
            std::thread::sleep((end - now).min(Duration::from_millis(10)));
        }
    }

    fn cancel_all(&mut self) -> Result<Vec<String>, ExecError> {
        let mut ids: Vec<String> = self.ready.drain(..).map(|o| o.id).collect();
        for w in self.workers.iter_mut() {
            if let Some(mut r) = w.take() {
                let _ = r.child.kill();
                let _ = r.child.wait();
                ids.push(r.id);
            }
        }
        Ok(ids)
    }
}

impl Drop for LocalPool {
    fn drop(&mut self) {
        let _ = self.cancel_all();
    }
}
