//! Evaluation requests and results as files in the run directory, the one
//! interface between a session and the worker that evaluates for it
//! (`seki eval-worker REQUEST_FILE`, run as a child process or a Slurm job).
//!
//! Each request has its folder, `RUN_DIR/evals/<id>/`:
//!
//! | file | written by | what |
//! |---|---|---|
//! | `request.json` | the session | [`Request`]: architecture, evaluator kind and settings |
//! | `started.json` | the worker, first | [`Started`]: host, process and time |
//! | `result.json` | the worker, last (atomically) | [`Outcome`] |
//! | `worker.log` / `slurm-<job>.out` | the worker's stderr | its log |
//! | `job.sh` | the Slurm executor | the batch script |

use crate::eval::{Evaluation, EvaluatorConfig, EvaluatorKind};
use crate::space::{Arch, ArchError, Space};
use crate::store::{self, StoreError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The folder of the run directory holding one folder per request.
pub const EVALS: &str = "evals";
/// The request file's name.
pub const REQUEST: &str = "request.json";
/// The file a worker writes when it starts.
pub const STARTED: &str = "started.json";
/// The result file's name.
pub const RESULT: &str = "result.json";

/// One evaluation to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The request id (`r0001`, ...), unique in its session.
    pub id: String,
    /// The space's name.
    pub space: String,
    /// The architecture's text form.
    pub arch: String,
    /// Which evaluator.
    pub evaluator: EvaluatorKind,
    /// Its settings (`[evaluator]`).
    pub settings: EvaluatorConfig,
    /// 0 for a first evaluation; otherwise evaluate again with the
    /// evaluator's `repeat`-th other seed (a contender's re-evaluation).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub repeat: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Request {
    /// A request to evaluate `arch` with the given evaluator.
    pub fn new(
        id: &str,
        arch: &Arch,
        evaluator: EvaluatorKind,
        settings: &EvaluatorConfig,
    ) -> Self {
        Request {
            id: id.to_string(),
            space: arch.space().name().to_string(),
            arch: arch.to_text(),
            evaluator,
            settings: settings.clone(),
            repeat: 0,
        }
    }

    /// The same request for the `repeat`-th other seed.
    pub fn with_repeat(mut self, repeat: u32) -> Self {
        self.repeat = repeat;
        self
    }

    /// The architecture.
    pub fn parse_arch(&self) -> Result<Arch, RequestError> {
        let space: Space = self
            .space
            .parse()
            .map_err(|e: crate::space::UnknownSpace| RequestError::Bad(e.to_string()))?;
        Ok(space.parse(&self.arch)?)
    }
}

/// What a worker writes when it starts, before evaluating.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Started {
    /// The machine.
    pub host: String,
    /// The worker's process id.
    pub pid: u32,
    /// Unix time, seconds.
    pub time: f64,
    /// The Slurm job id, inside a job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

/// What became of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The request id.
    pub id: String,
    /// Status, score, test accuracy and metrics.
    pub evaluation: Evaluation,
    /// Mean training loss of each epoch (trained evaluators).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loss_curve: Vec<f64>,
    /// The machine it ran on, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Unix time the worker started, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<f64>,
    /// Unix time the result was written, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<f64>,
}

impl Outcome {
    /// An outcome that never ran (or whose worker left no result).
    pub fn failed(id: &str, status: crate::eval::EvalStatus) -> Self {
        Outcome {
            id: id.to_string(),
            evaluation: Evaluation::failed(status),
            loss_curve: Vec::new(),
            host: None,
            started: None,
            finished: None,
        }
    }
}

/// A problem with a request or result file.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Reading or writing the file.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file is not a request or result.
    #[error("{path}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The architecture does not parse.
    #[error("request: {0}")]
    Arch(#[from] ArchError),
    /// Anything else wrong with the request.
    #[error("request: {0}")]
    Bad(String),
}

/// The folder of one request inside a run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalDir {
    path: PathBuf,
}

impl EvalDir {
    /// The folder of request `id` in `run_dir`.
    pub fn new(run_dir: &Path, id: &str) -> Self {
        EvalDir {
            path: run_dir.join(EVALS).join(id),
        }
    }

    /// The folder holding `request_file`.
    pub fn of_request(request_file: &Path) -> Self {
        EvalDir {
            path: request_file
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
        }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The request file.
    pub fn request(&self) -> PathBuf {
        self.path.join(REQUEST)
    }

    /// The worker's start mark.
    pub fn started(&self) -> PathBuf {
        self.path.join(STARTED)
    }

    /// The result file.
    pub fn result(&self) -> PathBuf {
        self.path.join(RESULT)
    }

    /// A file of this folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Write the request (creating the folder; an old result is removed, and
    /// the temporary files of writers killed before they finished).
    pub fn write_request(&self, req: &Request) -> Result<(), RequestError> {
        std::fs::create_dir_all(&self.path).map_err(store::io_err(&self.path))?;
        store::remove_stale_temps(&self.path);
        for stale in [self.result(), self.started()] {
            if stale.exists() {
                std::fs::remove_file(&stale).map_err(store::io_err(&stale))?;
            }
        }
        write_json(&self.request(), req)
    }

    /// Read the request.
    pub fn read_request(&self) -> Result<Request, RequestError> {
        read_json(&self.request())
    }

    /// Write the start mark.
    pub fn write_started(&self, s: &Started) -> Result<(), RequestError> {
        write_json(&self.started(), s)
    }

    /// The start mark, if the worker wrote one.
    pub fn read_started(&self) -> Option<Started> {
        read_json(&self.started()).ok()
    }

    /// Write the result atomically.
    pub fn write_result(&self, o: &Outcome) -> Result<(), RequestError> {
        write_json(&self.result(), o)
    }

    /// The result, once the worker has written it (`None` before).
    pub fn read_result(&self) -> Result<Option<Outcome>, RequestError> {
        let p = self.result();
        if !p.is_file() {
            return Ok(None);
        }
        read_json(&p).map(Some)
    }

    /// The last `chars` characters of a log file of this folder ("" if none).
    pub fn log_tail(&self, name: &str, chars: usize) -> String {
        let text = std::fs::read_to_string(self.file(name)).unwrap_or_default();
        let t = text.trim();
        let start = t
            .char_indices()
            .rev()
            .nth(chars)
            .map(|(i, _)| i)
            .unwrap_or(0);
        t[start..].to_string()
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), RequestError> {
    let mut text = serde_json::to_string_pretty(value).map_err(StoreError::from)?;
    text.push('\n');
    Ok(store::write_atomic(path, text.as_bytes())?)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, RequestError> {
    let text = std::fs::read_to_string(path).map_err(store::io_err(path))?;
    serde_json::from_str(&text).map_err(|e| RequestError::Malformed {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// This machine's name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::EvalStatus;

    #[test]
    fn request_and_result_files_roundtrip() {
        let d = tempfile::tempdir().unwrap();
        let arch = Space::Nb201.random(&mut crate::rng::Rng::seed(1));
        let req = Request::new(
            "r0001",
            &arch,
            EvaluatorKind::Nb201,
            &EvaluatorConfig::default(),
        );
        let dir = EvalDir::new(d.path(), "r0001");
        dir.write_request(&req).unwrap();
        assert_eq!(dir.read_request().unwrap(), req);
        assert_eq!(req.parse_arch().unwrap(), arch);
        assert_eq!(EvalDir::of_request(&dir.request()), dir);
        assert!(dir.read_result().unwrap().is_none());
        let o = Outcome::failed("r0001", EvalStatus::Failed("x".into()));
        dir.write_result(&o).unwrap();
        assert_eq!(dir.read_result().unwrap(), Some(o));
        // Writing the request again clears the old result, and what a
        // session killed while writing it left (pid 4194303: none alive).
        let half = dir.file(".request.json.tmp-4194303");
        std::fs::write(&half, "{\"id\":").unwrap();
        dir.write_request(&req).unwrap();
        assert!(dir.read_result().unwrap().is_none());
        assert!(!half.exists());
        std::fs::write(dir.result(), "{torn").unwrap();
        assert!(dir.read_result().is_err());
    }
}
