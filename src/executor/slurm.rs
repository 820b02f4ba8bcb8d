//! Slurm: each evaluation is a batch job (`sbatch`) running `seki
//! eval-worker` on its request file in the run directory, which must be on a
//! filesystem the compute nodes share.
//!
//! Results are read from the run directory as soon as the worker writes them;
//! `squeue` (every `poll_seconds`) tells which jobs have left the queue
//! without one, and `scontrol show job` (or `sacct`, where accounting is on)
//! why: failed, timed out, cancelled, preempted, node failure. Jobs are named
//! `PREFIX-SESSION-REQUEST`, so a session resumed after a kill finds them
//! again even when the kill came before their job id was journalled.

use super::request::{EvalDir, Outcome, Request};
use super::{ExecError, Executor, Reattach, SlurmConfig};
use crate::child::worker_env;
use crate::eval::{EvalStatus, EvaluatorConfig, EvaluatorKind};
use crate::knowledge::EvaluatorInfo;
use crate::space::Arch;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The batch script's name in a request's folder.
pub const SCRIPT: &str = "job.sh";

/// How long a job may be gone from the queue without its result before
/// Slurm is asked what became of it (a shared filesystem may show a file a
/// little after it was written).
const RESULT_GRACE: Duration = Duration::from_secs(3);

/// How long one Slurm command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

struct Job {
    job: String,
    gone_since: Option<Instant>,
}

/// Evaluations as Slurm batch jobs.
pub struct Slurm {
    cfg: SlurmConfig,
    slots: usize,
    run_dir: PathBuf,
    program: PathBuf,
    session: String,
    evaluator: EvaluatorKind,
    settings: EvaluatorConfig,
    info: EvaluatorInfo,
    jobs: BTreeMap<String, Job>,
    ready: Vec<Outcome>,
    last_queue: Option<Instant>,
}

/// What Slurm says about a job that left the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    /// `COMPLETED`, `FAILED`, `TIMEOUT`, `CANCELLED`, ...
    pub state: String,
    /// `ExitCode` (`1:0`).
    pub exit_code: String,
    /// Where it ran (`(null)` or empty when it never started).
    pub node: String,
    /// Slurm's reason.
    pub reason: String,
}

impl Slurm {
    /// A Slurm executor for `session`, writing into `run_dir`, with `slots`
    /// jobs in flight. Checks, before anything is submitted, that Slurm's
    /// commands are here, that the controller answers and that the
    /// partition exists.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: SlurmConfig,
        slots: usize,
        run_dir: &Path,
        session: &str,
        evaluator: EvaluatorKind,
        settings: EvaluatorConfig,
        info: EvaluatorInfo,
    ) -> Result<Self, ExecError> {
        let run_dir = std::path::absolute(run_dir)
            .map_err(|e| ExecError::Setup(format!("{}: {e}", run_dir.display())))?;
        let program = if cfg.program.as_os_str().is_empty() {
            std::env::current_exe()
                .map_err(|e| ExecError::Setup(format!("cannot locate the seki executable: {e}")))?
        } else {
            cfg.program.clone()
        };
        if !program.is_file() {
            return Err(ExecError::Setup(format!(
                "executor.slurm.program: {} is not a file",
                program.display()
            )));
        }
        let s = Slurm {
            cfg,
            slots: slots.max(1),
            run_dir,
            program,
            session: session.to_string(),
            evaluator,
            settings,
            info,
            jobs: BTreeMap::new(),
            ready: Vec::new(),
            last_queue: None,
        };
        s.check()?;
        Ok(s)
    }

    fn command_path(&self, name: &str) -> PathBuf {
        if self.cfg.bin_dir.as_os_str().is_empty() {
            PathBuf::from(name)
        } else {
            self.cfg.bin_dir.join(name)
        }
    }

    /// Slurm's commands are here and the controller answers; the partition exists.
    fn check(&self) -> Result<(), ExecError> {
        for name in ["sbatch", "squeue", "scontrol", "scancel", "sinfo"] {
            let found = if self.cfg.bin_dir.as_os_str().is_empty() {
                std::env::var_os("PATH")
                    .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
            } else {
                self.command_path(name).is_file()
            };
            if !found {
                return Err(ExecError::SlurmMissing {
                    command: name.into(),
                    where_: if self.cfg.bin_dir.as_os_str().is_empty() {
                        " on PATH".into()
                    } else {
                        format!(" in {}", self.cfg.bin_dir.display())
                    },
                });
            }
        }
        let ping = self.run("scontrol", &["ping"]);
        match ping {
            Ok(out) if out.contains("is UP") => {}
            Ok(out) => {
                return Err(ExecError::SlurmUnreachable {
                    message: out.trim().to_string(),
                })
            }
            Err(ExecError::Slurm { message, .. }) => {
                return Err(ExecError::SlurmUnreachable { message })
            }
            Err(e) => return Err(e),
        }
        if !self.cfg.partition.is_empty() {
            let out = self.run("sinfo", &["-h", "-o", "%P"])?;
            let names: Vec<&str> = out
                .lines()
                .map(|l| l.trim().trim_end_matches('*'))
                .filter(|l| !l.is_empty())
                .collect();
            if !names.contains(&self.cfg.partition.as_str()) {
                return Err(ExecError::Refused {
                    setting: "executor.slurm.partition".into(),
                    message: format!(
                        "the cluster has no partition {:?} (it has: {})",
                        self.cfg.partition,
                        names.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }

    /// Run a Slurm command; its stdout, or its stderr as the error.
    fn run(&self, name: &str, args: &[&str]) -> Result<String, ExecError> {
        run_command(&self.command_path(name), args, &self.run_dir)
    }

    fn job_name(&self, id: &str) -> String {
        format!("{}-{}-{id}", self.cfg.job_name, self.session)
    }

    /// The batch script of a request: extra `#SBATCH` lines, the worker's
    /// environment, the setup lines, the worker.
    fn script(&self, dir: &EvalDir, sbatch_args: &[String]) -> String {
        let mut s = String::from("#!/bin/bash\n");
        s.push_str(&format!(
            "# seki evaluation request, submitted as: sbatch {} {SCRIPT}\n",
            sbatch_args.join(" ")
        ));
        for l in &self.cfg.extra {
            let opt = l.trim().trim_start_matches("#SBATCH").trim();
            s.push_str(&format!("#SBATCH {opt}\n"));
        }
        let threads = self.cfg.cpus_per_task.max(1);
        for (k, v) in worker_env(threads) {
            s.push_str(&format!("export {k}={}\n", quote(&v)));
        }
        for l in &self.cfg.setup {
            s.push_str(l);
            s.push('\n');
        }
        s.push_str(&format!(
            "exec {} eval-worker {}\n",
            quote(&self.program.to_string_lossy()),
            quote(&dir.request().to_string_lossy())
        ));
        s
    }

    fn sbatch_args(&self, id: &str, dir: &EvalDir) -> Vec<String> {
        let c = &self.cfg;
        let mut a = vec![
            "--parsable".to_string(),
            format!("--job-name={}", self.job_name(id)),
            format!("--output={}", dir.file("slurm-%j.out").display()),
            format!("--chdir={}", self.run_dir.display()),
            format!("--cpus-per-task={}", c.cpus_per_task.max(1)),
            "--ntasks=1".to_string(),
        ];
        for (flag, v) in [
            ("partition", &c.partition),
            ("account", &c.account),
            ("qos", &c.qos),
            ("time", &c.time),
            ("mem", &c.mem),
            ("gpus", &c.gpus),
            ("gres", &c.gres),
        ] {
            if !v.is_empty() {
                a.push(format!("--{flag}={v}"));
            }
        }
        a
    }

    /// Jobs of ours still in the queue: job id → (state, reason).
    fn queue(&self) -> Result<HashMap<String, (String, String)>, ExecError> {
        let ids: Vec<&str> = self.jobs.values().map(|j| j.job.as_str()).collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let list = ids.join(",");
        match self.run("squeue", &["-h", "-o", "%i|%T|%r", "-j", &list]) {
            Ok(out) => Ok(parse_squeue(&out)),
            // Every job asked about has left the controller's memory.
            Err(ExecError::Slurm { message, .. }) if message.contains("Invalid job id") => {
                Ok(HashMap::new())
            }
            Err(e) => Err(e),
        }
    }

    /// What Slurm knows about a job that left the queue.
    fn job_info(&self, job: &str) -> Option<JobInfo> {
        if let Ok(out) = self.run("scontrol", &["show", "job", "-o", job]) {
            if let Some(i) = parse_scontrol(&out) {
                return Some(i);
            }
        }
        // Accounting, where the cluster keeps it.
        let out = self
            .run(
                "sacct",
                &[
                    "-n",
                    "-P",
                    "-X",
                    "-j",
                    job,
                    "-o",
                    "State,ExitCode,NodeList,Reason",
                ],
            )
            .ok()?;
        let line = out.lines().find(|l| !l.trim().is_empty())?;
        let f: Vec<&str> = line.split('|').collect();
        Some(JobInfo {
            state: f.first()?.split_whitespace().next()?.to_string(),
            exit_code: f.get(1).unwrap_or(&"").to_string(),
            node: f.get(2).unwrap_or(&"").to_string(),
            reason: f.get(3).unwrap_or(&"").to_string(),
        })
    }

    /// The outcome of a job that left the queue without a result.
    fn ended_without_result(&self, id: &str, job: &str) -> Result<Outcome, ExecError> {
        let dir = EvalDir::new(&self.run_dir, id);
        let log = format!("slurm-{job}.out");
        let tail = dir.log_tail(&log, 600);
        let with_log = |s: String| {
            if tail.is_empty() {
                s
            } else {
                format!("{s}; its log ends: {tail}")
            }
        };
        let Some(info) = self.job_info(job) else {
            return Ok(Outcome::failed(
                id,
                EvalStatus::Failed(with_log(format!(
                    "Slurm job {job} vanished: it left the queue without a result, and Slurm no longer knows it"
                ))),
            ));
        };
        let ran = !info.node.is_empty() && info.node != "(null)" && info.node != "None";
        if ran
            && matches!(info.state.as_str(), "COMPLETED" | "FAILED")
            && !dir.file(&log).exists()
            && dir.read_started().is_none()
        {
            return Err(ExecError::NotShared {
                run_dir: self.run_dir.clone(),
                job: job.to_string(),
                node: info.node,
            });
        }
        let status = status_of(&info, job, &self.cfg.time);
        let status = match status {
            EvalStatus::Failed(m) => EvalStatus::Failed(with_log(m)),
            s => s,
        };
        Ok(Outcome::failed(id, status))
    }

    fn collect_results(&mut self) {
        let ids: Vec<String> = self.jobs.keys().cloned().collect();
        for id in ids {
            if let Ok(Some(o)) = EvalDir::new(&self.run_dir, &id).read_result() {
                self.jobs.remove(&id);
                self.ready.push(o);
            }
        }
    }

    fn check_queue(&mut self) -> Result<(), ExecError> {
        let queued = self.queue()?;
        self.last_queue = Some(Instant::now());
        let mut ended = Vec::new();
        for (id, j) in self.jobs.iter_mut() {
            match queued.get(&j.job) {
                Some((state, reason)) => {
                    j.gone_since = None;
                    if state == "PENDING" {
                        if let Some(setting) = hopeless(reason) {
                            ended.push((id.clone(), Some((setting, reason.clone()))));
                        }
                    }
                }
                None => {
                    let since = *j.gone_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= RESULT_GRACE {
                        ended.push((id.clone(), None));
                    }
                }
            }
        }
        for (id, hopeless) in ended {
            if let Some((setting, reason)) = hopeless {
                let job = self
                    .jobs
                    .get(&id)
                    .map(|j| j.job.clone())
                    .unwrap_or_default();
                self.cancel_all()?;
                let setting = if setting == RESOURCES {
                    resources_set(&self.cfg)
                } else {
                    setting.to_string()
                };
                return Err(ExecError::Refused {
                    setting,
                    message: format!(
                        "job {job} can never start (pending, reason {reason}); all jobs cancelled"
                    ),
                });
            }
            // A result written at the last moment wins.
            if let Ok(Some(o)) = EvalDir::new(&self.run_dir, &id).read_result() {
                self.jobs.remove(&id);
                self.ready.push(o);
                continue;
            }
            let job = self
                .jobs
                .get(&id)
                .map(|j| j.job.clone())
                .unwrap_or_default();
            let outcome = match self.ended_without_result(&id, &job) {
                Ok(o) => o,
                Err(e) => {
                    // Every other job would end the same way.
                    let _ = self.cancel_all();
                    return Err(e);
                }
            };
            self.jobs.remove(&id);
            self.ready.push(outcome);
        }
        Ok(())
    }

    /// The id of a queued job of ours by its name.
    fn find_by_name(&self, id: &str) -> Option<String> {
        let out = self
            .run("squeue", &["-h", "-o", "%i", "-n", &self.job_name(id)])
            .ok()?;
        out.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(String::from)
    }
}

impl Slurm {
    /// Submit request `id` with the evaluator settings `settings`.
    fn submit_with(
        &mut self,
        id: &str,
        arch: &Arch,
        repeat: u32,
        settings: &crate::eval::EvaluatorConfig,
    ) -> Result<Option<String>, ExecError> {
        let dir = EvalDir::new(&self.run_dir, id);
        dir.write_request(&Request::new(id, arch, self.evaluator, settings).with_repeat(repeat))?;
        let args = self.sbatch_args(id, &dir);
        let script = dir.file(SCRIPT);
        crate::store::write_atomic(&script, self.script(&dir, &args).as_bytes())
            .map_err(super::RequestError::from)?;
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        let script_arg = script.to_string_lossy().into_owned();
        all.push(&script_arg);
        let out = match self.run("sbatch", &all) {
            Ok(out) => out,
            Err(ExecError::Slurm { message, .. }) => {
                let setting = match setting_for(&message, &self.cfg) {
                    RESOURCES => resources_set(&self.cfg),
                    s => s.to_string(),
                };
                // sbatch's lines, without their `sbatch: error: ` prefixes.
                let message = message
                    .lines()
                    .map(|l| l.trim().trim_start_matches("sbatch: error: ").trim())
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(ExecError::Refused { setting, message });
            }
            Err(e) => return Err(e),
        };
        let job = parse_sbatch(&out).ok_or_else(|| ExecError::Slurm {
            command: "sbatch --parsable".into(),
            message: format!("no job id in its answer {:?}", out.trim()),
        })?;
        tracing::debug!(request = id, job = %job, "submitted");
        self.jobs.insert(
            id.to_string(),
            Job {
                job: job.clone(),
                gone_since: None,
            },
        );
        Ok(Some(job))
    }
}

impl Executor for Slurm {
    fn describe(&self) -> String {
        let p = if self.cfg.partition.is_empty() {
            "default partition".to_string()
        } else {
            format!("partition {}", self.cfg.partition)
        };
        format!("slurm, {p}, up to {} jobs", self.slots)
    }

    fn slots(&self) -> usize {
        self.slots
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
        job: Option<&str>,
        cancelled: bool,
    ) -> Result<Reattach, ExecError> {
        if let Ok(Some(o)) = EvalDir::new(&self.run_dir, id).read_result() {
            self.ready.push(o);
            return Ok(Reattach::Attached);
        }
        let (job, found) = match job {
            Some(j) => (Some(j.to_string()), false),
            None => (self.find_by_name(id), true),
        };
        let Some(job) = job else {
            return Ok(Reattach::Lost);
        };
        let attached = if found {
            Reattach::Found(job.clone())
        } else {
            Reattach::Attached
        };
        self.jobs.insert(
            id.to_string(),
            Job {
                job: job.clone(),
                gone_since: None,
            },
        );
        let queued = self.queue()?;
        if queued.contains_key(&job) && !cancelled {
            return Ok(attached);
        }
        self.jobs.remove(id);
        if cancelled {
            if queued.contains_key(&job) {
                let _ = self.run("scancel", &[&job]);
            }
            return Ok(Reattach::Lost);
        }
        match self.job_info(&job) {
            Some(info) if info.state != "COMPLETED" => {
                self.ready
                    .push(Outcome::failed(id, status_of(&info, &job, &self.cfg.time)));
                Ok(attached)
            }
            _ => Ok(Reattach::Lost),
        }
    }

    fn poll(&mut self, wait: Duration) -> Result<Vec<Outcome>, ExecError> {
        let end = Instant::now() + wait;
        let every = Duration::from_secs_f64(self.cfg.poll_seconds);
        loop {
            self.collect_results();
            if !self.jobs.is_empty() && self.last_queue.is_none_or(|t| t.elapsed() >= every) {
                self.check_queue()?;
            }
            let now = Instant::now();
            if !self.ready.is_empty() || now >= end || self.jobs.is_empty() {
                return Ok(std::mem::take(&mut self.ready));
            }
            // Result files are looked for every 0.1 s, less often with many
            // jobs (up to 1 s with 100), to spare a shared filesystem.
            let every_file = Duration::from_millis((self.jobs.len() as u64 * 10).clamp(100, 1000));
            std::thread::sleep((end - now).min(every_file));
        }
    }

    fn cancel_all(&mut self) -> Result<Vec<String>, ExecError> {
        let mut ids: Vec<String> = self.ready.drain(..).map(|o| o.id).collect();
        let jobs: Vec<String> = self.jobs.values().map(|j| j.job.clone()).collect();
        if !jobs.is_empty() {
            let refs: Vec<&str> = jobs.iter().map(String::as_str).collect();
            self.run("scancel", &refs)?;
        }
        ids.extend(std::mem::take(&mut self.jobs).into_keys());
        Ok(ids)
    }
}

/// Run a command with a time limit; its stdout, or its stderr as the error.
fn run_command(program: &Path, args: &[&str], dir: &Path) -> Result<String, ExecError> {
    let line = format!("{} {}", program.display(), args.join(" "));
    let mut cmd = Command::new(program);
    // (The run directory does not exist yet when Slurm is first checked.)
    if dir.is_dir() {
        cmd.current_dir(dir);
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ExecError::Slurm {
            command: line.clone(),
            message: e.to_string(),
        })?;
    let read = |s: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = String::new();
            if let Some(mut s) = s {
                let _ = s.read_to_string(&mut v);
            }
            v
        })
    };
    let out = read(child.stdout.take().map(|s| Box::new(s) as _));
    let err = read(child.stderr.take().map(|s| Box::new(s) as _));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if started.elapsed() >= COMMAND_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                return Err(ExecError::Slurm {
                    command: line,
                    message: e.to_string(),
                })
            }
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    match status {
        Some(s) if s.success() => Ok(out),
        Some(s) => Err(ExecError::Slurm {
            command: line,
            message: {
                let e = err.trim();
                if e.is_empty() {
                    format!("exited with {s}: {}", out.trim())
                } else {
                    e.to_string()
                }
            },
        }),
        None => Err(ExecError::Slurm {
            command: line,
            message: format!("no answer within {} s", COMMAND_TIMEOUT.as_secs()),
        }),
    }
}

/// Quote for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The job id in `sbatch --parsable`'s answer (`123` or `123;cluster`).
pub fn parse_sbatch(out: &str) -> Option<String> {
    let line = out.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let id = line.split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit() || c == '_')).then(|| id.to_string())
}

/// `squeue -h -o '%i|%T|%r'` lines: job id → (state, reason).
pub fn parse_squeue(out: &str) -> HashMap<String, (String, String)> {
    out.lines()
        .filter_map(|l| {
            let mut f = l.trim().split('|');
            let id = f.next()?.trim();
            let state = f.next()?.trim();
            let reason = f.next().unwrap_or("").trim();
            (!id.is_empty()).then(|| (id.to_string(), (state.to_string(), reason.to_string())))
        })
        .collect()
}

/// `scontrol show job -o` output: state, exit code, node and reason.
pub fn parse_scontrol(out: &str) -> Option<JobInfo> {
    let line = out.lines().find(|l| l.contains("JobState="))?;
    let mut fields: HashMap<&str, &str> = HashMap::new();
    for tok in line.split_whitespace() {
        if let Some((k, v)) = tok.split_once('=') {
            fields.entry(k).or_insert(v);
        }
    }
    Some(JobInfo {
        state: fields.get("JobState")?.to_string(),
        exit_code: fields.get("ExitCode").unwrap_or(&"").to_string(),
        node: fields.get("NodeList").unwrap_or(&"").to_string(),
        reason: fields.get("Reason").unwrap_or(&"").to_string(),
    })
}

/// The status an evaluation gets from the state of a job that left no result.
pub fn status_of(info: &JobInfo, job: &str, time: &str) -> EvalStatus {
    let on = if info.node.is_empty() || info.node == "(null)" {
        String::new()
    } else {
        format!(" on {}", info.node)
    };
    let state = info.state.trim_end_matches('+');
    match state {
        "TIMEOUT" | "DEADLINE" => EvalStatus::TimedOut(format!(
            "Slurm job {job}{on} reached its time limit{}",
            if time.is_empty() {
                String::new()
            } else {
                format!(" (executor.slurm.time = {time})")
            }
        )),
        "CANCELLED" => EvalStatus::Cancelled(format!("Slurm job {job}{on} was cancelled")),
        "PREEMPTED" => EvalStatus::Preempted(format!("Slurm job {job}{on} was preempted")),
        "NODE_FAIL" | "BOOT_FAIL" => EvalStatus::NodeFailed(format!(
            "Slurm job {job}{on} ended with {state} (reason {})",
            info.reason
        )),
        "OUT_OF_MEMORY" => EvalStatus::Failed(format!(
            "Slurm job {job}{on} ran out of memory (executor.slurm.mem)"
        )),
        "COMPLETED" => EvalStatus::Failed(format!(
            "Slurm job {job}{on} completed without writing a result"
        )),
        other => EvalStatus::Failed(format!(
            "Slurm job {job}{on} ended with {other} (exit code {}, reason {})",
            info.exit_code, info.reason
        )),
    }
}

const RESOURCES: &str =
    "executor.slurm.cpus_per_task, executor.slurm.mem, executor.slurm.gpus or executor.slurm.gres";

/// Of the resource settings, those set (all four when none is).
fn resources_set(cfg: &SlurmConfig) -> String {
    let set: Vec<&str> = [
        ("executor.slurm.cpus_per_task", cfg.cpus_per_task > 1),
        ("executor.slurm.mem", !cfg.mem.is_empty()),
        ("executor.slurm.gpus", !cfg.gpus.is_empty()),
        ("executor.slurm.gres", !cfg.gres.is_empty()),
    ]
    .into_iter()
    .filter_map(|(k, on)| on.then_some(k))
    .collect();
    if set.is_empty() {
        RESOURCES.to_string()
    } else {
        set.join(" or ")
    }
}

/// The setting behind a job that stays pending for a reason that will not
/// pass.
pub fn hopeless(reason: &str) -> Option<&'static str> {
    let r = reason.trim();
    Some(match r {
        "PartitionConfig" | "PartitionNodeLimit" => RESOURCES,
        "PartitionTimeLimit" => "executor.slurm.time",
        "BadConstraints" => "executor.slurm.extra",
        "InvalidAccount" => "executor.slurm.account",
        "InvalidQOS" => "executor.slurm.qos",
        _ if r.starts_with("QOSMax") && r.contains("Wall") => "executor.slurm.time",
        _ if r.starts_with("QOSMax") => "executor.slurm.qos",
        _ if r.starts_with("AssocMax") => "executor.slurm.account",
        _ => return None,
    })
}

/// The setting sbatch's refusal is about.
pub fn setting_for(message: &str, cfg: &SlurmConfig) -> &'static str {
    let m = message.to_lowercase();
    if m.contains("account") || m.contains("association") {
        "executor.slurm.account"
    } else if m.contains("partition") {
        "executor.slurm.partition"
    } else if m.contains("qos") {
        "executor.slurm.qos"
    } else if m.contains("time limit") || m.contains("--time") {
        "executor.slurm.time"
    } else if m.contains("gres") || m.contains("generic resource") || m.contains("gpu") {
        if cfg.gres.is_empty() {
            "executor.slurm.gpus"
        } else {
            "executor.slurm.gres"
        }
    } else if m.contains("memory") || m.contains("--mem") {
        "executor.slurm.mem"
    } else if m.contains("cpu") || m.contains("processors") {
        "executor.slurm.cpus_per_task"
    } else if m.contains("node configuration is not available") {
        RESOURCES
    } else {
        "executor.slurm (or executor.slurm.extra)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_slurm_prints() {
        assert_eq!(parse_sbatch("123\n").as_deref(), Some("123"));
        assert_eq!(parse_sbatch("77;cluster\n").as_deref(), Some("77"));
        assert_eq!(parse_sbatch("Submitted batch job 5"), None);
        let q = parse_squeue("5|PENDING|PartitionConfig\n6|RUNNING|None\n");
        assert_eq!(q["5"], ("PENDING".into(), "PartitionConfig".into()));
        assert_eq!(q["6"].0, "RUNNING");
        let i = parse_scontrol(
            "JobId=5 JobName=j.sh UserId=root(0) JobState=TIMEOUT Reason=TimeLimit Dependency=(null) ExitCode=0:15 NodeList=vm\n",
        )
        .unwrap();
        assert_eq!(
            i,
            JobInfo {
                state: "TIMEOUT".into(),
                exit_code: "0:15".into(),
                node: "vm".into(),
                reason: "TimeLimit".into()
            }
        );
        assert!(parse_scontrol("slurm_load_jobs error: Invalid job id specified").is_none());
    }

    #[test]
    fn job_states_become_statuses() {
        let info = |state: &str| JobInfo {
            state: state.into(),
            exit_code: "1:0".into(),
            node: "n1".into(),
            reason: "None".into(),
        };
        assert!(
            matches!(status_of(&info("TIMEOUT"), "9", "1"), EvalStatus::TimedOut(m) if m.contains("executor.slurm.time = 1"))
        );
        assert!(matches!(
            status_of(&info("CANCELLED+"), "9", ""),
            EvalStatus::Cancelled(_)
        ));
        assert!(matches!(
            status_of(&info("PREEMPTED"), "9", ""),
            EvalStatus::Preempted(_)
        ));
        assert!(
            matches!(status_of(&info("NODE_FAIL"), "9", ""), EvalStatus::NodeFailed(m) if m.contains("n1"))
        );
        assert!(
            matches!(status_of(&info("FAILED"), "9", ""), EvalStatus::Failed(m) if m.contains("exit code 1:0"))
        );
    }

    #[test]
    fn refusals_name_the_setting() {
        let c = SlurmConfig::default();
        for (msg, key) in [
            ("Batch job submission failed: Invalid partition name specified", "partition"),
            ("Batch job submission failed: Invalid account or account/partition combination specified", "account"),
            ("Batch job submission failed: Invalid qos specification", "qos"),
            ("Batch job submission failed: Requested time limit is invalid (missing or exceeds some limit)", "time"),
            ("Invalid generic resource (gres) specification", "gpus"),
            ("Memory specification can not be satisfied", "mem"),
            ("Batch job submission failed: Requested node configuration is not available", "cpus_per_task"),
        ] {
            assert!(setting_for(msg, &c).contains(key), "{msg} -> {}", setting_for(msg, &c));
        }
        assert_eq!(hopeless("PartitionTimeLimit"), Some("executor.slurm.time"));
        assert!(hopeless("PartitionConfig")
            .unwrap()
            .contains("cpus_per_task"));
        assert_eq!(hopeless("Resources"), None);
        assert_eq!(hopeless("Priority"), None);
    }

    #[test]
    fn the_job_script_runs_the_worker_with_the_settings() {
        let d = tempfile::tempdir().unwrap();
        let cfg = SlurmConfig {
            partition: "gpu".into(),
            gpus: "1".into(),
            cpus_per_task: 4,
            extra: vec!["--constraint=a100".into(), "#SBATCH --exclusive".into()],
            setup: vec!["module load cuda".into()],
            ..SlurmConfig::default()
        };
        let s = Slurm {
            cfg,
            slots: 2,
            run_dir: d.path().join("it's"),
            program: PathBuf::from("/opt/seki/bin/seki"),
            session: "run-abc".into(),
            evaluator: EvaluatorKind::Nb201,
            settings: EvaluatorConfig::default(),
            info: EvaluatorInfo {
                kind: "nb201-table".into(),
                dataset: None,
                settings: Default::default(),
            },
            jobs: BTreeMap::new(),
            ready: Vec::new(),
            last_queue: None,
        };
        let dir = EvalDir::new(&s.run_dir, "r0003");
        let args = s.sbatch_args("r0003", &dir);
        assert!(args.contains(&"--partition=gpu".to_string()));
        assert!(args.contains(&"--gpus=1".to_string()));
        assert!(args.contains(&"--cpus-per-task=4".to_string()));
        assert!(args.contains(&"--job-name=seki-run-abc-r0003".to_string()));
        assert!(!args.iter().any(|a| a.starts_with("--account")));
        let script = s.script(&dir, &args);
        assert!(
            script.contains("#SBATCH --constraint=a100\n#SBATCH --exclusive\n"),
            "{script}"
        );
        assert!(script.contains("export RAYON_NUM_THREADS='4'"), "{script}");
        assert!(
            script.contains("module load cuda\nexec '/opt/seki/bin/seki' eval-worker '"),
            "{script}"
        );
        assert!(
            script.contains("it'\\''s/evals/r0003/request.json'"),
            "{script}"
        );
    }
}
