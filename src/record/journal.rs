//! The session journal: one JSON line per event, appended and fsynced, so a
//! session killed at any moment resumes from its last complete line.

use super::agent::AgentEvent;
use super::state::StrategyState;
use crate::eval::Evaluation;
use crate::rng::Rng;
use crate::store::{self, StoreError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The session began.
    Start {
        /// Session id (the run directory's name).
        session: String,
        /// Search space.
        space: String,
        /// Strategy.
        strategy: String,
        /// Seed.
        seed: u64,
        /// seki version.
        version: String,
        /// The strategy's state before the first step (e.g. the knowledge the
        /// agent started from), so replays and resumes start identically.
        #[serde(default, skip_serializing_if = "StrategyState::is_none")]
        initial_state: StrategyState,
        /// When (RFC 3339).
        time: String,
    },
    /// The session was resumed after an interruption.
    Resume {
        /// Evaluations already journalled.
        evaluations: usize,
        /// When (RFC 3339).
        time: String,
    },
    /// Something the strategy did while proposing (an LLM exchange, a repair,
    /// a fallback): only the LLM-guided agent has such events.
    Strategy {
        /// The event.
        detail: AgentEvent,
    },
    /// An evaluation request was handed to an executor whose requests
    /// outlive the session's process (a local pool, Slurm); journalled
    /// before the submission itself, with the state after the proposal.
    Submitted(Box<Submission>),
    /// The job running a request (`sbatch`'s job id); again when a resumed
    /// session submits a lost request anew.
    Job {
        /// The request id.
        request: String,
        /// The job id.
        job: String,
    },
    /// The session stopped a request before it ended (the time budget ran
    /// out, or the user interrupted); a resumed session submits it again.
    Cancelled {
        /// The request id.
        request: String,
        /// Why.
        reason: String,
    },
    /// An architecture was evaluated.
    Evaluation(Box<Step>),
    /// A proposal was already evaluated and was not evaluated again.
    Duplicate {
        /// The proposal.
        #[serde(flatten)]
        proposal: Proposed,
        /// The evaluation number that first evaluated it (0 while that
        /// evaluation is still in flight: see `in_flight`).
        of: usize,
        /// The request still evaluating it, when it had not finished.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_flight: Option<String>,
        /// State after this step.
        #[serde(flatten)]
        state: StepState,
    },
    /// A proposal over the session's budgets (`[search.constraints]`),
    /// refused without an evaluation.
    Refused {
        /// The proposal.
        #[serde(flatten)]
        proposal: Proposed,
        /// Its cost, when it could be computed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost: Option<crate::eval::Cost>,
        /// Which budget it is over, in words.
        reason: String,
        /// State after this step.
        #[serde(flatten)]
        state: StepState,
    },
    /// An evaluated architecture was evaluated again with another seed: a
    /// contender at the end of the session, or a new best within noise of
    /// the one before it.
    Reevaluation(Box<Reevaluation>),
    /// The session ended.
    End {
        /// Why.
        reason: String,
        /// When (RFC 3339).
        time: String,
    },
}

/// A proposal as the journal names it: in an evaluation, a submission and
/// a duplicate alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposed {
    /// The architecture in its space's text form.
    pub arch: String,
    /// Its canonical hash.
    pub hash: String,
    /// How the strategy made it.
    pub origin: String,
    /// The canonical hash of its parent (the architecture it was made
    /// from), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The operator that made it (empty in journals older than operators).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub operator: String,
}

impl Proposed {
    /// The operator it is counted under: its operator, or for journals
    /// older than operators its origin.
    pub fn counted_as(&self) -> &str {
        if self.operator.is_empty() {
            &self.origin
        } else {
            &self.operator
        }
    }
}

/// The session's state after a step: enough to continue from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepState {
    /// Seconds the session has run, over all its runs.
    pub elapsed: f64,
    /// The random stream's state.
    pub rng: Rng,
    /// The strategy's state.
    pub strategy_state: StrategyState,
}

/// One evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// 1-based evaluation number.
    pub n: usize,
    /// What was evaluated and how the strategy made it.
    #[serde(flatten)]
    pub proposal: Proposed,
    /// The result.
    #[serde(flatten)]
    pub result: Evaluation,
    /// Seconds the evaluation took (from its submission to its result).
    pub eval_seconds: f64,
    /// Where and when it ran, for executors with requests and jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// State after this step.
    #[serde(flatten)]
    pub state: StepState,
}

/// One repeated evaluation of an evaluated architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reevaluation {
    /// The number of the evaluation whose architecture this repeats.
    pub of: usize,
    /// The architecture in its space's text form.
    pub arch: String,
    /// Its canonical hash.
    pub hash: String,
    /// Which repeat (1, 2, ...): the evaluator's `repeat`-th other seed.
    pub repeat: u32,
    /// Why: `contender` (end of session), `close-best` (a new best
    /// within noise of the old one) or `promotion` (to a higher fidelity
    /// rung).
    pub purpose: String,
    /// The fidelity rung it was evaluated at (1: the search's own
    /// evaluation, as every evaluation before rungs).
    #[serde(default = "first_rung", skip_serializing_if = "is_first_rung")]
    pub rung: u32,
    /// The result.
    #[serde(flatten)]
    pub result: Evaluation,
    /// Seconds the evaluation took.
    pub eval_seconds: f64,
    /// Seconds the session has run, over all its runs, after it.
    pub elapsed: f64,
}

fn first_rung() -> u32 {
    1
}

fn is_first_rung(r: &u32) -> bool {
    *r <= 1
}

/// A request handed to an executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    /// The request id (`r0001`, ...), its folder under `evals/`.
    pub request: String,
    /// What is evaluated and how the strategy made it.
    #[serde(flatten)]
    pub proposal: Proposed,
    /// When (Unix time, seconds).
    pub submitted: f64,
    /// State after the proposal.
    #[serde(flatten)]
    pub state: StepState,
}

/// Where and when an evaluation ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// The request id.
    pub request: String,
    /// The job id (Slurm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Seconds from the submission to the worker's start (queueing and
    /// start-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_seconds: Option<f64>,
    /// Seconds from the worker's start to its result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_seconds: Option<f64>,
}

/// A request submitted and not answered yet, as the journal leaves it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenRequest {
    /// Its id (`r0001`, ...).
    pub request: String,
    /// What was submitted.
    pub proposal: Proposed,
    /// When (Unix time, seconds).
    pub submitted: f64,
    /// Its job (Slurm), once one was journalled.
    pub job: Option<String>,
    /// Whether the session cancelled it (a resumed session submits it again).
    pub cancelled: bool,
}

/// The requests in flight at some point of a journal: submitted, with no
/// evaluation yet. Feed it the events in order.
#[derive(Debug, Clone, Default)]
pub struct OpenRequests(std::collections::BTreeMap<String, OpenRequest>);

impl OpenRequests {
    /// Take one event into account.
    pub fn observe(&mut self, e: &Event) {
        match e {
            Event::Submitted(sub) => {
                self.0.insert(
                    sub.request.clone(),
                    OpenRequest {
                        request: sub.request.clone(),
                        proposal: sub.proposal.clone(),
                        submitted: sub.submitted,
                        job: None,
                        cancelled: false,
                    },
                );
            }
            Event::Job { request, job } => {
                if let Some(r) = self.0.get_mut(request) {
                    r.job = Some(job.clone());
                    r.cancelled = false;
                }
            }
            Event::Cancelled { request, .. } => {
                if let Some(r) = self.0.get_mut(request) {
                    r.cancelled = true;
                }
            }
            Event::Evaluation(step) => {
                if let Some(p) = &step.placement {
                    self.0.remove(&p.request);
                }
            }
            _ => {}
        }
    }

    /// The open requests, by id.
    pub fn into_requests(self) -> impl Iterator<Item = OpenRequest> {
        self.0.into_values()
    }
}

/// Errors reading a journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// I/O or a malformed line.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The journal has no start line.
    #[error("{0}: not a seki journal (no start line)")]
    NoStart(PathBuf),
}

/// Read a journal. A last line cut short by a crash is ignored.
pub fn read(path: &Path) -> Result<Vec<Event>, JournalError> {
    let (rows, _) = store::read_jsonl::<Event>(path, false, |_| Ok(()))?;
    let events: Vec<Event> = rows.into_iter().map(|(_, e)| e).collect();
    if !matches!(events.first(), Some(Event::Start { .. })) {
        return Err(JournalError::NoStart(path.to_path_buf()));
    }
    Ok(events)
}

/// Append one event and fsync.
pub fn append(path: &Path, event: &Event) -> Result<(), StoreError> {
    store::append_jsonl(path, std::slice::from_ref(event))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposed(hash: &str) -> Proposed {
        Proposed {
            arch: format!("arch {hash}"),
            hash: hash.into(),
            origin: "random".into(),
            parent: None,
            operator: "random".into(),
        }
    }

    fn state() -> StepState {
        StepState {
            elapsed: 0.0,
            rng: Rng::seed(0),
            strategy_state: StrategyState::none(),
        }
    }

    #[test]
    fn open_requests_follow_submissions_jobs_cancellations_and_results() {
        let submitted = |id: &str, h: &str| {
            Event::Submitted(Box::new(Submission {
                request: id.into(),
                proposal: proposed(h),
                submitted: 1.0,
                state: state(),
            }))
        };
        let mut open = OpenRequests::default();
        for e in [
            submitted("r0001", "a"),
            submitted("r0002", "b"),
            submitted("r0003", "c"),
            Event::Job {
                request: "r0002".into(),
                job: "77".into(),
            },
            Event::Cancelled {
                request: "r0003".into(),
                reason: "interrupted".into(),
            },
            Event::Evaluation(Box::new(Step {
                n: 1,
                proposal: proposed("a"),
                result: crate::eval::Evaluation::failed(crate::eval::EvalStatus::Failed(
                    "x".into(),
                )),
                eval_seconds: 1.0,
                placement: Some(Placement {
                    request: "r0001".into(),
                    job: None,
                    host: None,
                    queued_seconds: None,
                    worker_seconds: None,
                }),
                state: state(),
            })),
        ] {
            open.observe(&e);
        }
        let got: Vec<(String, Option<String>, bool)> = open
            .into_requests()
            .map(|r| (r.request, r.job, r.cancelled))
            .collect();
        assert_eq!(
            got,
            [
                ("r0002".to_string(), Some("77".to_string()), false),
                ("r0003".to_string(), None, true)
            ]
        );
    }
}
