//! Executors: where a session's evaluations run, and how many at once.
//!
//! The session hands an executor evaluation requests (an id and an
//! architecture; the executor knows the evaluator and its settings) and
//! polls it for outcomes, which come back as they finish, out of order.
//!
//! - [`Inline`]: one evaluation at a time, in order, through the session's
//!   own [`Evaluator`](crate::eval::Evaluator) (the table in process, Candle
//!   in a child process). `executor.workers = 1`: exactly how a session
//!   always ran.
//! - [`LocalPool`]: up to N `seki eval-worker REQUEST_FILE` child processes on
//!   this machine, threads split between them or one GPU each.
//! - [`Slurm`]: each evaluation a batch job running the same worker on the
//!   request file in the (shared) run directory.
//! - [`Simulated`]: in memory, N at once on a virtual clock, for benchmarks of
//!   what asynchrony does to a strategy.
//!
//! Requests and results are files ([`request`]); the worker is [`worker`].

pub mod inline;
pub mod local;
pub mod request;
pub mod settings;
pub mod simulated;
pub mod slurm;
pub mod worker;

pub use inline::Inline;
pub use local::LocalPool;
pub use request::{EvalDir, Outcome, Request, RequestError};
pub use settings::{ExecutorConfig, ExecutorKind, SlurmConfig};
pub use simulated::Simulated;
pub use slurm::Slurm;

use crate::knowledge::EvaluatorInfo;
use crate::space::Arch;
use std::path::PathBuf;
use std::time::Duration;

/// An executor failure: evaluations could not be run at all (a failed
/// evaluation is an outcome, not an error).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The in-process evaluator failed.
    #[error(transparent)]
    Eval(#[from] crate::eval::EvalError),
    /// A request or result file.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A worker process could not be started.
    #[error("cannot start the evaluation worker {program}: {source}")]
    Spawn {
        /// The executable.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Slurm's commands are not installed here.
    #[error("executor.kind = \"slurm\", but `{command}` is not found{where_}; install Slurm's client commands, or set executor.slurm.bin_dir")]
    SlurmMissing {
        /// The command.
        command: String,
        /// ` in DIR` or ` on PATH`.
        where_: String,
    },
    /// The Slurm controller does not answer.
    #[error("executor.kind = \"slurm\", but the Slurm controller is unreachable: {message}")]
    SlurmUnreachable {
        /// What the command said.
        message: String,
    },
    /// Slurm refused a job because of a setting.
    #[error("Slurm cannot run the jobs: {setting}: {message}")]
    Refused {
        /// The setting at fault (`executor.slurm.partition`, ...).
        setting: String,
        /// Slurm's message.
        message: String,
    },
    /// A Slurm command failed.
    #[error("`{command}` failed: {message}")]
    Slurm {
        /// The command line.
        command: String,
        /// Its error output.
        message: String,
    },
    /// Jobs ran but left nothing in the run directory.
    #[error("Slurm job {job} ran on {node} but nothing it wrote reached {run_dir}: the run directory must be on a filesystem the compute nodes share (pick one with --run-dir or search.runs_dir)")]
    NotShared {
        /// The run directory.
        run_dir: PathBuf,
        /// The job id.
        job: String,
        /// Where it ran.
        node: String,
    },
    /// Bad settings or environment.
    #[error("{0}")]
    Setup(String),
}

/// What became of a request journalled by an earlier run of the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reattach {
    /// Its result is there, or it still runs: its outcome will come from
    /// [`poll`](Executor::poll).
    Attached,
    /// Still queued or running as this job, whose id the journal lacked
    /// (the kill came before it was journalled).
    Found(String),
    /// Lost: to submit again.
    Lost,
}

/// Runs evaluations, up to [`slots`](Executor::slots) at once.
pub trait Executor {
    /// What it is, for logs and summaries (`local, 4 workers`).
    fn describe(&self) -> String;
    /// The most evaluations in flight at once.
    fn slots(&self) -> usize;
    /// The evaluator and its settings (recorded with every result).
    fn info(&self) -> EvaluatorInfo;
    /// Whether requests outlive the session's process (files, jobs), so the
    /// session journals each submission and a resumed session re-attaches.
    /// `false` for in-process executors, whose sessions journal results only.
    fn durable(&self) -> bool;
    /// Start evaluating `arch` as request `id`; the job id, for executors
    /// with jobs. The first evaluation: [`submit_repeat`](Executor::submit_repeat)
    /// with repeat 0.
    fn submit(&mut self, id: &str, arch: &Arch) -> Result<Option<String>, ExecError> {
        self.submit_repeat(id, arch, 0)
    }
    /// Whether evaluating again with another seed can give other figures
    /// (training can; the table only with noise): sessions re-evaluate
    /// contenders only then.
    fn repeatable(&self) -> bool {
        false
    }
    /// Start evaluating `arch` as request `id` with the evaluator's
    /// `repeat`-th other seed (0: the first evaluation, its usual seed); its
    /// outcome comes from [`poll`](Executor::poll) like any other. The job
    /// id, for executors with jobs.
    fn submit_repeat(
        &mut self,
        id: &str,
        arch: &Arch,
        repeat: u32,
    ) -> Result<Option<String>, ExecError>;
    /// Start evaluating `arch` as request `id` at fidelity rung `rung`
    /// (repeat `repeat` there). Rung 1 is the search's own evaluation; an
    /// executor that cannot evaluate at another says so.
    fn submit_at(
        &mut self,
        id: &str,
        arch: &Arch,
        repeat: u32,
        rung: &crate::eval::Rung,
    ) -> Result<Option<String>, ExecError> {
        if rung.index <= 1 {
            return self.submit_repeat(id, arch, repeat);
        }
        Err(ExecError::Setup(format!(
            "{} evaluates at one fidelity only; rung {} cannot run here",
            self.describe(),
            rung.index
        )))
    }
    /// Take back a request journalled by an earlier run of the session, with
    /// its job id if one was journalled. `cancelled`: the session cancelled
    /// it itself.
    fn reattach(
        &mut self,
        id: &str,
        arch: &Arch,
        job: Option<&str>,
        cancelled: bool,
    ) -> Result<Reattach, ExecError> {
        let _ = (id, arch, job, cancelled);
        Ok(Reattach::Lost)
    }
    /// Outcomes that have finished, waiting up to `wait` for at least one.
    fn poll(&mut self, wait: Duration) -> Result<Vec<Outcome>, ExecError>;
    /// Stop everything in flight; the ids of the requests stopped.
    fn cancel_all(&mut self) -> Result<Vec<String>, ExecError>;
}

/// Evaluation `repeat` of `arch` at `rung` by an evaluator in this process,
/// `base` at rung 1 and its [`at_rung`](crate::eval::Evaluator::at_rung)
/// copies (built once, kept in `rungs`) above.
pub(crate) fn at_rung_or_failed(
    base: &mut dyn crate::eval::Evaluator,
    rungs: &mut std::collections::BTreeMap<u32, Box<dyn crate::eval::Evaluator>>,
    arch: &Arch,
    repeat: u32,
    rung: &crate::eval::Rung,
) -> Result<crate::eval::Evaluation, ExecError> {
    if rung.index <= 1 {
        return Ok(repeat_or_failed(base, arch, repeat)?);
    }
    let evaluator = match rungs.entry(rung.index) {
        std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::btree_map::Entry::Vacant(v) => match base.at_rung(&rung.settings)? {
            Some(e) => v.insert(e),
            None => {
                return Err(ExecError::Setup(format!(
                    "the {} evaluator has one fidelity only; rung {} cannot run",
                    base.info().kind,
                    rung.index
                )))
            }
        },
    };
    Ok(repeat_or_failed(evaluator.as_mut(), arch, repeat)?)
}

/// Evaluation `repeat` of `arch` by an evaluator in this process: the first
/// evaluation for 0; else its figures with another seed, or a `failed`
/// result when the evaluator is deterministic (nothing to repeat).
pub(crate) fn repeat_or_failed(
    evaluator: &mut dyn crate::eval::Evaluator,
    arch: &Arch,
    repeat: u32,
) -> Result<crate::eval::Evaluation, crate::eval::EvalError> {
    if repeat == 0 {
        return evaluator.evaluate(arch);
    }
    Ok(evaluator.evaluate_repeat(arch, repeat)?.unwrap_or_else(|| {
        crate::eval::Evaluation::failed(crate::eval::EvalStatus::Failed(
            "this evaluator gives the same figures every time; nothing to repeat".into(),
        ))
    }))
}

/// The executor `settings` name, for the session `session` in `run_dir`:
/// with one worker on this machine (`workers = 1`, no `devices`),
/// `evaluator` itself, one evaluation at a time; else a pool of worker
/// processes or Slurm jobs, each running `seki eval-worker` (this
/// executable) on a request file with the evaluator `kind` and its
/// `evaluator_settings` (then `evaluator` only gives its description).
/// Slurm is checked (its commands, its controller, the partition) before
/// anything is submitted.
pub fn build<'e>(
    settings: &ExecutorConfig,
    kind: crate::eval::EvaluatorKind,
    evaluator_settings: &crate::eval::EvaluatorConfig,
    run_dir: &std::path::Path,
    session: &str,
    evaluator: Box<dyn crate::eval::Evaluator + 'e>,
) -> Result<Box<dyn Executor + 'e>, ExecError> {
    let slots = settings.slots();
    match settings.kind {
        ExecutorKind::Local if slots == 1 && settings.devices.is_empty() => {
            Ok(Box::new(Inline::owning(evaluator)))
        }
        ExecutorKind::Local => {
            let program = std::env::current_exe()
                .map_err(|e| ExecError::Setup(format!("cannot locate the seki executable: {e}")))?;
            Ok(Box::new(LocalPool::new(
                slots,
                settings.devices.clone(),
                run_dir,
                program,
                kind,
                evaluator_settings.clone(),
                evaluator.info(),
            )?))
        }
        ExecutorKind::Slurm => Ok(Box::new(Slurm::new(
            settings.slurm.clone(),
            slots,
            run_dir,
            session,
            kind,
            evaluator_settings.clone(),
            evaluator.info(),
        )?)),
    }
}
