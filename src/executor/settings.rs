//! `[executor]` and `[executor.slurm]`: where evaluations run and how many
//! at once.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where evaluations run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// On this machine: one evaluation at a time in the session's process
    /// (`workers = 1`), or a pool of `seki eval-worker` child processes.
    Local,
    /// Each evaluation is a Slurm batch job (`sbatch`).
    Slurm,
}

impl ExecutorKind {
    /// The kind's name.
    pub fn name(&self) -> &'static str {
        match self {
            ExecutorKind::Local => "local",
            ExecutorKind::Slurm => "slurm",
        }
    }
}

impl std::str::FromStr for ExecutorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(ExecutorKind::Local),
            "slurm" => Ok(ExecutorKind::Slurm),
            other => Err(format!(
                "unknown executor '{other}'; valid executors: local, slurm"
            )),
        }
    }
}

/// `[executor.slurm]`: how each evaluation's batch job is submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmConfig {
    /// `--partition` ("" = the cluster's default).
    pub partition: String,
    /// `--account` ("" = none).
    pub account: String,
    /// `--qos` ("" = none).
    pub qos: String,
    /// `--time`, in Slurm's forms (`30`, `1:00:00`, `1-00:00:00`; "" = the
    /// partition's default).
    pub time: String,
    /// `--cpus-per-task` (also the worker's CPU threads).
    pub cpus_per_task: usize,
    /// `--mem` (`4G`, `16000M`; "" = the cluster's default).
    pub mem: String,
    /// `--gpus` (`1`, `a100:1`; "" = none).
    pub gpus: String,
    /// `--gres` (`gpu:1`; "" = none).
    pub gres: String,
    /// Further sbatch options, one per line (`--constraint=a100`), written
    /// into the job script as `#SBATCH` lines.
    pub extra: Vec<String>,
    /// Shell lines run in the job before the worker (`module load cuda`).
    pub setup: Vec<String>,
    /// Most jobs queued or running at once (0 = `executor.workers`).
    pub max_jobs: usize,
    /// Seconds between `squeue` calls (results are picked up from the run
    /// directory as soon as they are written, whatever this is).
    pub poll_seconds: f64,
    /// The seki executable the jobs run ("" = this one; it must be on a
    /// filesystem the compute nodes share).
    pub program: PathBuf,
    /// The folder holding `sbatch`, `squeue`, `scontrol` and `scancel`
    /// ("" = search PATH).
    pub bin_dir: PathBuf,
    /// Job names are this prefix, the session id and the request id.
    pub job_name: String,
}

impl Default for SlurmConfig {
    fn default() -> Self {
        SlurmConfig {
            partition: String::new(),
            account: String::new(),
            qos: String::new(),
            time: String::new(),
            cpus_per_task: 1,
            mem: String::new(),
            gpus: String::new(),
            gres: String::new(),
            extra: Vec::new(),
            setup: Vec::new(),
            max_jobs: 0,
            poll_seconds: 10.0,
            program: PathBuf::new(),
            bin_dir: PathBuf::new(),
            job_name: "seki".into(),
        }
    }
}

/// `[executor]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutorConfig {
    /// `local` or `slurm`.
    pub kind: ExecutorKind,
    /// Evaluations in flight at once: local worker processes, or Slurm jobs
    /// (unless `executor.slurm.max_jobs` says otherwise). 1: one at a time,
    /// in order, exactly as a session always ran.
    pub workers: usize,
    /// Local GPUs: one device id per worker (`["0", "1"]`), given to it as
    /// `CUDA_VISIBLE_DEVICES`; empty = none set. With devices and
    /// `workers = 1`, `workers` becomes the number of devices.
    pub devices: Vec<String>,
    /// `[executor.slurm]`
    pub slurm: SlurmConfig,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            kind: ExecutorKind::Local,
            workers: 1,
            devices: Vec::new(),
            slurm: SlurmConfig::default(),
        }
    }
}

impl ExecutorConfig {
    /// How many evaluations may be in flight.
    pub fn slots(&self) -> usize {
        match self.kind {
            ExecutorKind::Local if self.workers == 1 && self.devices.len() > 1 => {
                self.devices.len()
            }
            ExecutorKind::Local => self.workers.max(1),
            ExecutorKind::Slurm if self.slurm.max_jobs > 0 => self.slurm.max_jobs,
            ExecutorKind::Slurm => self.workers.max(1),
        }
    }

    /// The first invalid setting: its key (below `executor`) and what is wrong.
    pub fn check(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, m: String| Err((k.to_string(), m));
        if self.workers == 0 {
            return bad("workers", "must be at least 1".into());
        }
        if let Some(d) = self
            .devices
            .iter()
            .find(|d| d.is_empty() || !d.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return bad(
                "devices",
                format!("{d:?} is not a device id (a number like \"0\" or a GPU UUID)"),
            );
        }
        let s = &self.slurm;
        if s.cpus_per_task == 0 {
            return bad("slurm.cpus_per_task", "must be at least 1".into());
        }
        if !(s.poll_seconds > 0.0 && s.poll_seconds.is_finite()) {
            return bad(
                "slurm.poll_seconds",
                "must be a positive number of seconds".into(),
            );
        }
        if !s.time.is_empty() && !valid_time(&s.time) {
            return bad(
                "slurm.time",
                format!(
                    "{:?} is not a Slurm time limit (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)",
                    s.time
                ),
            );
        }
        for (key, v) in [
            ("slurm.partition", &s.partition),
            ("slurm.account", &s.account),
            ("slurm.qos", &s.qos),
            ("slurm.mem", &s.mem),
            ("slurm.gpus", &s.gpus),
            ("slurm.gres", &s.gres),
            ("slurm.job_name", &s.job_name),
        ] {
            if v.chars()
                .any(|c| c.is_whitespace() || c == '\'' || c == '"')
            {
                return bad(key, format!("{v:?} must not hold spaces or quotes"));
            }
        }
        if let Some(l) = s.extra.iter().find(|l| {
            let l = l.trim().trim_start_matches("#SBATCH").trim();
            !l.starts_with('-') || l.contains('\n')
        }) {
            return bad(
                "slurm.extra",
                format!("{l:?} is not an sbatch option (like \"--constraint=a100\")"),
            );
        }
        Ok(())
    }
}

/// Whether `t` is one of Slurm's time-limit forms.
fn valid_time(t: &str) -> bool {
    let nums = |s: &str, most: usize| {
        let parts: Vec<&str> = s.split(':').collect();
        parts.len() <= most
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    };
    if t == "UNLIMITED" || t == "INFINITE" {
        return true;
    }
    match t.split_once('-') {
        Some((days, rest)) => {
            !days.is_empty() && days.chars().all(|c| c.is_ascii_digit()) && nums(rest, 3)
        }
        None => nums(t, 3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_workers_devices_and_max_jobs() {
        let mut c = ExecutorConfig::default();
        assert_eq!(c.slots(), 1);
        c.devices = vec!["0".into(), "1".into()];
        assert_eq!(c.slots(), 2);
        c.workers = 3;
        assert_eq!(c.slots(), 3);
        c.kind = ExecutorKind::Slurm;
        assert_eq!(c.slots(), 3);
        c.slurm.max_jobs = 16;
        assert_eq!(c.slots(), 16);
    }

    #[test]
    fn time_limits_in_slurm_forms() {
        for ok in [
            "30",
            "1:00:00",
            "10:00",
            "2-0",
            "2-12:00",
            "1-00:00:00",
            "UNLIMITED",
        ] {
            assert!(valid_time(ok), "{ok}");
        }
        for bad in ["", "1h", "1:2:3:4", "-5", "a-1", "1.5"] {
            assert!(!valid_time(bad), "{bad}");
        }
    }
}
