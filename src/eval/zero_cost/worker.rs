//! Zero-cost scoring in a child process (`seki zc-worker`), with the
//! isolation and time limit of a training evaluation: the parent writes one
//! JSON [`Request`] (a list of architectures) to the child's stdin; the
//! child loads the batch once and answers one JSON [`Answer`] line per
//! architecture as it finishes. An architecture that runs past
//! `timeout_seconds`, or kills the child, gets a failed outcome with the
//! reason, and a fresh child takes the rest of the list.

use super::{probe_batch, score, ZcConfig, ZcScores};
use crate::child::{describe_exit, worker_env};
use crate::eval::candle::CandleError;
use crate::space::{Arch, Space};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the worker scores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// The space's name (`darts`, `nb201`).
    pub space: String,
    /// The architectures' text forms.
    pub archs: Vec<String>,
    /// Settings.
    pub config: ZcConfig,
}

/// How the scoring of one architecture ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Outcome {
    /// Scored (individual proxies may still be missing, with notes).
    Ok {
        /// The scores.
        scores: ZcScores,
    },
    /// Not scored: the worker failed or ran out of time.
    Failed {
        /// Why.
        reason: String,
    },
}

impl Outcome {
    /// The scores, when scored.
    pub fn scores(&self) -> Option<&ZcScores> {
        match self {
            Outcome::Ok { scores } => Some(scores),
            Outcome::Failed { .. } => None,
        }
    }
}

/// One line of the worker's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    /// The architecture's position in the request.
    pub index: usize,
    /// Its outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Serve one request: read it from `input`, write one answer line per
/// architecture to `output` (flushed as each is done). A request that
/// cannot be served at all (bad JSON, missing data) answers every
/// architecture, or index 0, with the reason.
pub fn serve(input: &mut dyn Read, output: &mut dyn Write) -> std::io::Result<()> {
    let mut text = String::new();
    input.read_to_string(&mut text)?;
    let mut emit = |index: usize, outcome: Outcome| -> std::io::Result<()> {
        let json =
            serde_json::to_string(&Answer { index, outcome }).map_err(std::io::Error::other)?;
        writeln!(output, "{json}")?;
        output.flush()
    };
    let req: Request = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            return emit(
                0,
                Outcome::Failed {
                    reason: format!("bad zero-cost request: {e}"),
                },
            )
        }
    };
    let setup = || -> Result<(Space, super::ProbeBatch), CandleError> {
        let space: Space = req
            .space
            .parse()
            .map_err(|e: crate::space::UnknownSpace| CandleError::Setup(e.to_string()))?;
        let device = crate::eval::candle::train::select_device(req.config.candle.device)?;
        Ok((space, probe_batch(&req.config, &device)?))
    };
    let (space, batch) = match setup() {
        Ok(v) => v,
        Err(e) => {
            for i in 0..req.archs.len().max(1) {
                emit(
                    i,
                    Outcome::Failed {
                        reason: e.to_string(),
                    },
                )?;
            }
            return Ok(());
        }
    };
    for (i, text) in req.archs.iter().enumerate() {
        let outcome = match space.parse(text) {
            Err(e) => Outcome::Failed {
                reason: e.to_string(),
            },
            Ok(arch) => match score(&arch, &req.config, &batch) {
                Ok(scores) => Outcome::Ok { scores },
                Err(e) => Outcome::Failed {
                    reason: e.to_string(),
                },
            },
        };
        emit(i, outcome)?;
    }
    Ok(())
}

/// Score `archs` in child processes of `program` (`program zc-worker`),
/// calling `done(i, outcome)` as each finishes, in order. Each architecture
/// has `cfg.candle.timeout_seconds`; one that runs past it (or kills its
/// worker) is `failed` with the reason, and a new worker takes the rest.
pub fn run_children(
    program: &Path,
    archs: &[Arch],
    cfg: &ZcConfig,
    done: &mut dyn FnMut(usize, Outcome),
) -> Result<(), CandleError> {
    let mut next = 0;
    while next < archs.len() {
        next = run_one_child(program, &archs[next..], next, cfg, done)?;
    }
    Ok(())
}

/// One child over `archs` (numbered from `offset`); returns the index of
/// the first architecture it did not settle.
fn run_one_child(
    program: &Path,
    archs: &[Arch],
    offset: usize,
    cfg: &ZcConfig,
    done: &mut dyn FnMut(usize, Outcome),
) -> Result<usize, CandleError> {
    let space = archs
        .first()
        .map(|a| a.space().name().to_string())
        .unwrap_or_default();
    let req = Request {
        space,
        archs: archs.iter().map(Arch::to_text).collect(),
        config: cfg.clone(),
    };
    let body = serde_json::to_string(&req).map_err(|e| CandleError::Setup(e.to_string()))?;
    let io = |what: &str, e: std::io::Error| {
        CandleError::Setup(format!(
            "zero-cost worker {}: {what}: {e}",
            program.display()
        ))
    };
    let mut cmd = Command::new(program);
    cmd.arg("zc-worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in worker_env(cfg.candle.threads) {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| io("cannot start", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A worker that dies at once closes the pipe; its exit status tells why.
        let _ = stdin.write_all(body.as_bytes());
    }
    let (tx, rx) = mpsc::channel::<String>();
    let out_reader = child.stdout.take().map(|s| {
        std::thread::spawn(move || {
            for line in BufReader::new(s).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
    });
    let err_reader = child.stderr.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = s.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        })
    });
    let limit = crate::duration::secs(cfg.candle.timeout_seconds);
    let mut settled = 0;
    let mut started = Instant::now();
    let mut timed_out = false;
    while settled < archs.len() {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                let Ok(a) = serde_json::from_str::<Answer>(&line) else {
                    continue;
                };
                if a.index != settled {
                    continue;
                }
                done(offset + settled, a.outcome);
                settled += 1;
                started = Instant::now();
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if started.elapsed() >= limit {
                    timed_out = true;
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if settled < archs.len() {
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| io("wait", e))?;
    if let Some(h) = out_reader {
        let _ = h.join();
    }
    let stderr = err_reader.and_then(|h| h.join().ok()).unwrap_or_default();
    if settled < archs.len() {
        let reason = if timed_out {
            format!(
                "killed after the {} s limit (timeout_seconds)",
                cfg.candle.timeout_seconds
            )
        } else {
            let t = stderr.trim();
            let start = t.char_indices().rev().nth(600).map(|(i, _)| i).unwrap_or(0);
            format!(
                "zero-cost worker {} without a result{}",
                describe_exit(status),
                if t.is_empty() {
                    String::new()
                } else {
                    format!(": {}", &t[start..])
                }
            )
        };
        done(offset + settled, Outcome::Failed { reason });
        settled += 1;
    }
    Ok(offset + settled)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::eval::candle::CandleConfig;
    use crate::space::Nb201Cell;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, body: &str) -> std::path::PathBuf {
        let p = dir.join("worker.sh");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn archs() -> Vec<Arch> {
        [
            "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|",
            "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|",
            "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|",
        ]
        .iter()
        .map(|s| Arch::Nb201(Nb201Cell::parse(s).unwrap()))
        .collect()
    }

    #[test]
    fn a_hanging_worker_fails_the_architecture_at_hand_and_a_new_one_goes_on() {
        let d = tempfile::tempdir().unwrap();
        // Answers the first architecture, then hangs (each worker started).
        let p = script(
            d.path(),
            "cat >/dev/null; echo '{\"index\":0,\"status\":\"failed\",\"reason\":\"first\"}'; exec sleep 30",
        );
        let mut cfg = ZcConfig::new(CandleConfig::default());
        cfg.candle.timeout_seconds = 0.3;
        let mut got = Vec::new();
        run_children(&p, &archs(), &cfg, &mut |i, o| got.push((i, o))).unwrap();
        let reasons: Vec<(usize, String)> = got
            .into_iter()
            .map(|(i, o)| match o {
                Outcome::Failed { reason } => (i, reason),
                o => panic!("{o:?}"),
            })
            .collect();
        assert_eq!(reasons.len(), 3);
        assert_eq!(reasons[0], (0, "first".to_string()));
        assert!(reasons[1].1.contains("limit"), "{reasons:?}");
        // The third went to a fresh worker, which answered its index 0.
        assert_eq!(reasons[2], (2, "first".to_string()));
    }

    #[test]
    fn a_crashing_worker_is_a_failed_outcome_with_its_stderr() {
        let d = tempfile::tempdir().unwrap();
        let p = script(d.path(), "cat >/dev/null; echo 'zc blew up' >&2; exit 3");
        let cfg = ZcConfig::new(CandleConfig::default());
        let mut got = Vec::new();
        run_children(&p, &archs()[..1], &cfg, &mut |i, o| got.push((i, o))).unwrap();
        match &got[0].1 {
            Outcome::Failed { reason } => {
                assert!(
                    reason.contains("zc blew up") && reason.contains("code 3"),
                    "{reason}"
                )
            }
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn the_worker_answers_each_architecture_in_order() {
        let mut cfg = ZcConfig::new(CandleConfig {
            stage_cells: 1,
            channels: 4,
            ..CandleConfig::default()
        });
        cfg.input = super::super::ProbeInput::Noise;
        cfg.batch = 4;
        cfg.shape = Some(super::super::InputShape {
            channels: 3,
            size: 8,
            classes: 10,
        });
        let req = Request {
            space: "nb201".into(),
            archs: archs()
                .iter()
                .map(Arch::to_text)
                .chain(["|bad|".into()])
                .collect(),
            config: cfg,
        };
        let mut out = Vec::new();
        serve(
            &mut serde_json::to_string(&req).unwrap().as_bytes(),
            &mut out,
        )
        .unwrap();
        let answers: Vec<Answer> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(answers.len(), 4);
        for (i, a) in answers.iter().enumerate() {
            assert_eq!(a.index, i);
        }
        assert!(answers[..3].iter().all(|a| a.outcome.scores().is_some()));
        assert!(matches!(answers[3].outcome, Outcome::Failed { .. }));
    }
}
