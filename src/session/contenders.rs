//! Contenders: evaluate the best few architectures again with other seeds,
//! so that the session returns the best by the mean over its evaluations,
//! and says when the top two are not distinguishable from noise.
//!
//! Optionally, a new best within noise of the old one is re-evaluated at
//! once (both of them). Every repeat is journalled as a
//! [`Reevaluation`](super::journal::Reevaluation) and counts against the
//! evaluation and time budgets: the search stops early enough to leave the
//! contenders' repeats room.

use super::*;
use crate::executor::request::unix_now;
use crate::executor::Outcome;
use crate::stats::{self, Comparison, Uncertainty};

/// The purpose of an end-of-session repeat.
const CONTENDER: &str = "contender";

/// How contenders are re-evaluated (`[search]` contenders,
/// contender_repeats, reevaluate_close_bests, distinguish_z).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContenderSettings {
    /// Contenders re-evaluated at the end (0: off).
    pub count: usize,
    /// Further evaluations of each.
    pub repeats: usize,
    /// Re-evaluate at once when a new best is within noise of the old one.
    pub close_bests: bool,
    /// Distinguishable: apart by more than this many standard errors.
    pub z: f64,
}

impl Default for ContenderSettings {
    fn default() -> Self {
        ContenderSettings {
            count: 0,
            repeats: 2,
            close_bests: false,
            z: 1.96,
        }
    }
}

impl ContenderSettings {
    /// The settings of a config's `[search]`.
    pub fn from_config(c: &Config) -> Self {
        ContenderSettings {
            count: c.search.contenders,
            repeats: c.search.contender_repeats,
            close_bests: c.search.reevaluate_close_bests,
            z: c.search.distinguish_z,
        }
    }
}

/// A re-evaluation request in flight.
#[derive(Debug, Clone)]
pub(super) struct ReevalFlight {
    pub(super) of: usize,
    arch: String,
    hash: String,
    repeat: u32,
    purpose: String,
    submitted: f64,
    pub(super) rung: u32,
}

/// What re-evaluating the contenders found.
#[derive(Debug, Clone, Default)]
pub(super) struct ContenderOutcome {
    pub contenders: Vec<Contender>,
    pub distinguishable: Option<bool>,
    pub note: Option<String>,
}

impl<'e> Session<'e> {
    /// The scores, standard errors and test accuracies of evaluation `n`
    /// and of its successful repeats, in order.
    fn evaluations_of(&self, step: &Step) -> Vec<(f64, Option<f64>, Option<f64>)> {
        self.evaluations_with(step, true)
    }

    /// As [`Self::evaluations_of`]; without the end-of-session contender
    /// repeats unless `contender_repeats`.
    fn evaluations_with(
        &self,
        step: &Step,
        contender_repeats: bool,
    ) -> Vec<(f64, Option<f64>, Option<f64>)> {
        let mut out = Vec::new();
        let rung = self.top_rung(step.n);
        if rung <= 1 {
            if let (EvalStatus::Ok, Some(s)) = (&step.result.status, step.result.score) {
                out.push((s, step.result.score_se, step.result.test_accuracy));
            } else {
                return out;
            }
        }
        for r in self.reevaluations.iter().filter(|r| {
            r.of == step.n && r.rung == rung && (contender_repeats || r.purpose != CONTENDER)
        }) {
            if let (EvalStatus::Ok, Some(s)) = (&r.result.status, r.result.score) {
                out.push((s, r.result.score_se, r.result.test_accuracy));
            }
        }
        out
    }

    /// The mean score of an evaluation and its repeats, with its
    /// uncertainty when known. `None` when it did not score.
    pub(super) fn estimate(&self, step: &Step) -> Option<(f64, Option<Uncertainty>)> {
        let ev = self.evaluations_of(step);
        let scores: Vec<f64> = ev.iter().map(|e| e.0).collect();
        let ses: Vec<Option<f64>> = ev.iter().map(|e| e.1).collect();
        let (mean, _) = stats::mean_sd(&scores);
        if scores.is_empty() {
            return None;
        }
        Some((mean, Uncertainty::of_repeats(&scores, &ses).map(|(_, u)| u)))
    }

    /// Repeats of evaluation `n`, done or in flight.
    fn repeats_of(&self, n: usize) -> usize {
        let rung = self.top_rung(n);
        self.reevaluations
            .iter()
            .filter(|r| r.of == n && r.rung == rung && r.repeat > 0)
            .count()
            + self
                .reevals_in_flight
                .values()
                .filter(|r| r.of == n && r.rung == rung && r.repeat > 0)
                .count()
    }

    /// The lowest repeat number evaluation `n` has not used (done or in
    /// flight), so a repeat lost in a crash is redone with its own seed.
    fn next_repeat(&self, n: usize, rung: u32) -> u32 {
        let used: std::collections::BTreeSet<u32> = self
            .reevaluations
            .iter()
            .filter(|r| r.of == n && r.rung == rung)
            .map(|r| r.repeat)
            .chain(
                self.reevals_in_flight
                    .values()
                    .filter(|r| r.of == n && r.rung == rung)
                    .map(|r| r.repeat),
            )
            .collect();
        // At rung 1 the search's evaluation was the first (repeat 0); a
        // promotion's first evaluation at a higher rung is its repeat 0.
        let first = u32::from(rung <= 1);
        (first..).find(|r| !used.contains(r)).unwrap_or(first)
    }

    /// Evaluations spent so far: the search's and the repeats (done or in
    /// flight).
    pub(super) fn evaluations_used(&self) -> usize {
        self.steps.len() + self.reevaluations.len() + self.reevals_in_flight.len()
    }

    /// Indices of scored evaluations, best mean first (earliest on ties).
    fn ranked(&self) -> Vec<(usize, f64)> {
        self.ranked_with(true)
    }

    /// As [`Self::ranked`]; the contenders are chosen without their own
    /// repeats, so a session resumed during them chooses the same ones.
    fn ranked_with(&self, contender_repeats: bool) -> Vec<(usize, f64)> {
        let mut v: Vec<(usize, f64)> = self
            .steps
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let ev = self.evaluations_with(s, contender_repeats);
                let scores: Vec<f64> = ev.iter().map(|e| e.0).collect();
                (!scores.is_empty()).then(|| (i, stats::mean_sd(&scores).0))
            })
            .collect();
        // The best at the highest rung reached first: scores are compared
        // within a rung only.
        let rung = |i: usize| self.steps.get(i).map_or(0, |s| self.top_rung(s.n));
        v.sort_by(|a, b| {
            rung(b.0)
                .cmp(&rung(a.0))
                .then(b.1.total_cmp(&a.1))
                .then(a.0.cmp(&b.0))
        });
        v
    }

    /// The evaluations and seconds held back for the contenders' repeats:
    /// the repeats the current top contenders still lack, at the mean
    /// evaluation time so far.
    pub(super) fn reserved(&self) -> (usize, f64) {
        let c = self.spec.contenders;
        if c.count == 0 || !self.exec.repeatable() {
            return (0, 0.0);
        }
        let have: usize = self
            .ranked()
            .iter()
            .take(c.count)
            .filter_map(|&(i, _)| self.steps.get(i))
            .map(|s| self.repeats_of(s.n).min(c.repeats))
            .sum();
        // Contenders not found yet will need their repeats too.
        let n = (c.count * c.repeats).saturating_sub(have);
        let secs = if self.steps.is_empty() {
            0.0
        } else {
            self.steps.iter().map(|s| s.eval_seconds).sum::<f64>() / self.steps.len() as f64
        };
        (n, n as f64 * secs)
    }

    /// Whether the budgets leave room for one more evaluation.
    fn room_for_one(&self) -> bool {
        self.evaluations_used() < self.spec.max_evaluations
            && (self.spec.max_seconds <= 0.0 || self.elapsed() < self.spec.max_seconds)
    }

    /// Submit step `i`'s architecture for its next repeat. `false` when
    /// the executor cannot repeat evaluations.
    fn submit_reevaluation(
        &mut self,
        i: usize,
        purpose: &str,
        rung: Option<u32>,
    ) -> Result<bool, SessionError> {
        let Some(step) = self.steps.get(i) else {
            return Ok(false);
        };
        if !self.exec.repeatable() {
            return Ok(false);
        }
        let (n, text, hash) = (
            step.n,
            step.proposal.arch.clone(),
            step.proposal.hash.clone(),
        );
        let arch = self.spec.space.parse(&text)?;
        let rung = rung.unwrap_or_else(|| self.top_rung(n));
        let repeat = self.next_repeat(n, rung);
        self.reeval_requests += 1;
        let id = format!("x{:04}", self.reeval_requests);
        // Before the submission: an in-process executor evaluates in it.
        let submitted = unix_now();
        match self.spec.rungs.get(rung).filter(|_| rung > 1) {
            Some(r) => {
                let r = r.clone();
                self.exec.submit_at(&id, &arch, repeat, &r)?
            }
            None => self.exec.submit_repeat(&id, &arch, repeat)?,
        };
        self.reevals_in_flight.insert(
            id,
            ReevalFlight {
                of: n,
                arch: text,
                hash,
                repeat,
                purpose: purpose.to_string(),
                submitted,
                rung,
            },
        );
        Ok(true)
    }

    /// Record a re-evaluation's result: journal it; a close best's moves the
    /// best to the better mean.
    pub(super) fn finish_reevaluation(
        &mut self,
        f: ReevalFlight,
        o: Outcome,
    ) -> Result<(), SessionError> {
        let r = Reevaluation {
            of: f.of,
            arch: f.arch,
            hash: f.hash,
            repeat: f.repeat,
            purpose: f.purpose,
            rung: f.rung,
            result: o.evaluation,
            eval_seconds: (unix_now() - f.submitted).max(0.0),
            elapsed: self.elapsed(),
        };
        tracing::info!(of = r.of, repeat = r.repeat, score = ?r.result.score, purpose = %r.purpose, "re-evaluated");
        self.journal(&Event::Reevaluation(Box::new(r.clone())))?;
        let close = r.purpose != CONTENDER;
        self.reevaluations.push(r);
        if close {
            self.rerank_best();
        }
        Ok(())
    }

    /// Re-evaluate the steps at `todo` (indices, in order; one entry per
    /// repeat), as many at once as the executor has free slots, and wait for
    /// them; search results that arrive meanwhile are kept for the loop.
    /// Stops submitting when a budget would be exceeded (with
    /// `keep_reserve`, also the contenders' share). Returns how many were
    /// submitted.
    fn run_reevaluations(
        &mut self,
        todo: &[usize],
        purpose: &str,
        keep_reserve: bool,
    ) -> Result<usize, SessionError> {
        let at: Vec<(usize, Option<u32>)> = todo.iter().map(|&i| (i, None)).collect();
        self.run_reevaluations_at(&at, purpose, keep_reserve)
    }

    /// As [`Self::run_reevaluations`], each at its rung (`None`: the step's
    /// highest rung so far).
    pub(super) fn run_reevaluations_at(
        &mut self,
        todo: &[(usize, Option<u32>)],
        purpose: &str,
        keep_reserve: bool,
    ) -> Result<usize, SessionError> {
        let (mut next, mut stopped) = (0, false);
        loop {
            while !stopped
                && next < todo.len()
                && self.in_flight.len() + self.reevals_in_flight.len() < self.exec.slots().max(1)
            {
                let leaves_reserve = !keep_reserve
                    || self.evaluations_used() + self.reserved().0 < self.spec.max_evaluations;
                if !self.room_for_one()
                    || !leaves_reserve
                    || !self.submit_reevaluation(todo[next].0, purpose, todo[next].1)?
                {
                    stopped = true;
                    break;
                }
                next += 1;
            }
            if self.reevals_in_flight.is_empty() || self.interrupted() {
                break;
            }
            for o in self.exec.poll(super::run::WAIT)? {
                match self.reevals_in_flight.remove(&o.id) {
                    Some(f) => self.finish_reevaluation(f, o)?,
                    None => self.deferred.push(o),
                }
            }
        }
        Ok(next)
    }

    /// Point `best` at the evaluation with the best mean.
    pub(super) fn rerank_best(&mut self) {
        if let Some(&(i, _)) = self.ranked().first() {
            self.best = Some(i);
        }
    }

    /// After evaluation `best` became the new best over `before`: when
    /// `reevaluate_close_bests` is on and the two are within noise,
    /// evaluate both again (up to `contender_repeats` each, within the
    /// budgets) and keep the better mean as the best.
    pub(super) fn recheck_close_best(&mut self, before: Option<usize>) -> Result<(), SessionError> {
        let c = self.spec.contenders;
        let (Some(old), Some(new)) = (before, self.best) else {
            return Ok(());
        };
        if !c.close_bests || c.repeats == 0 || !self.exec.repeatable() || old == new {
            return Ok(());
        }
        let est = |s: &Self, i: usize| -> Option<(f64, Option<f64>)> {
            let (m, u) = s.estimate(s.steps.get(i)?)?;
            let se = u.map(|u| u.se).or(s.steps.get(i)?.result.score_se);
            Some((m, se))
        };
        let (Some((a, sa)), Some((b, sb))) = (est(self, new), est(self, old)) else {
            return Ok(());
        };
        if stats::compare(a, sa, b, sb, c.z) != Comparison::Tie {
            return Ok(());
        }
        let mut todo = Vec::new();
        for round in 1..=c.repeats {
            for i in [new, old] {
                let n = self.steps.get(i).map_or(0, |s| s.n);
                if self.repeats_of(n) < round {
                    todo.push(i);
                }
            }
        }
        // Leave the end-of-session contenders their room.
        self.run_reevaluations(&todo, "close-best", true)?;
        self.rerank_best();
        Ok(())
    }

    /// At the end of the session: evaluate the top `contenders` again,
    /// `contender_repeats` times each in rounds (so a budget that runs out
    /// leaves them evenly evaluated), return the best by the mean and whether
    /// the top two are distinguishable; update their knowledge-base records.
    pub(super) fn reevaluate_contenders(&mut self) -> Result<ContenderOutcome, SessionError> {
        let c = self.spec.contenders;
        if c.count == 0 || c.repeats == 0 {
            return Ok(ContenderOutcome::default());
        }
        let mut note = None;
        if !self.exec.repeatable() {
            return Ok(ContenderOutcome {
                note: Some(
                    "contenders were not re-evaluated: this evaluator gives the same figures every time"
                        .into(),
                ),
                ..ContenderOutcome::default()
            });
        }
        let chosen: Vec<usize> = self
            .ranked_with(false)
            .into_iter()
            .take(c.count)
            .map(|(i, _)| i)
            .collect();
        let mut todo = Vec::new();
        for round in 1..=c.repeats {
            for &i in &chosen {
                let n = self.steps.get(i).map_or(0, |s| s.n);
                if self.repeats_of(n) < round {
                    todo.push(i);
                }
            }
        }
        let submitted = self.run_reevaluations(&todo, CONTENDER, false)?;
        if submitted < todo.len() {
            note = Some(format!(
                "the budget ran out during the contenders' repeats ({submitted} of {} made)",
                todo.len()
            ));
        }
        if self.interrupted() {
            let cancelled = self.cancel_in_flight("interrupted")?;
            return Err(SessionError::Interrupted {
                evaluations: self.steps.len(),
                cancelled,
                run_dir: self
                    .run
                    .as_ref()
                    .map_or_else(|| "RUN_DIR".into(), |r| r.path().display().to_string()),
            });
        }
        let mut contenders: Vec<(usize, Contender)> = chosen
            .iter()
            .filter_map(|&i| {
                let s = self.steps.get(i)?;
                let ev = self.evaluations_of(s);
                let (mean, u) = self.estimate(s)?;
                let tests: Vec<f64> = ev.iter().filter_map(|e| e.2).collect();
                Some((
                    i,
                    Contender {
                        evaluation: s.n,
                        arch: s.proposal.arch.clone(),
                        hash: s.proposal.hash.clone(),
                        first_score: s.result.score?,
                        mean,
                        uncertainty: u,
                        test_accuracy: (!tests.is_empty()).then(|| stats::mean_sd(&tests).0),
                        rung: (self.spec.rungs.len() > 1).then(|| self.top_rung(s.n)),
                    },
                ))
            })
            .collect();
        contenders.sort_by(|a, b| b.1.mean.total_cmp(&a.1.mean).then(a.0.cmp(&b.0)));
        if let Some((i, _)) = contenders.first() {
            self.best = Some(*i);
        }
        let se = |c: &Contender| c.uncertainty.as_ref().map(|u| u.se);
        let distinguishable = match contenders.as_slice() {
            [(_, a), (_, b), ..] => {
                let cmp = stats::compare(a.mean, se(a), b.mean, se(b), c.z);
                let show = |x: &Contender| {
                    format!(
                        "evaluation {} ({}, {} evaluations)",
                        x.evaluation,
                        stats::with_se(x.mean, se(x)),
                        x.uncertainty.as_ref().map_or(1, |u| u.repeats)
                    )
                };
                let text = if cmp == Comparison::Tie {
                    format!(
                        "the top two contenders are not distinguishable: {} and {} differ by {:.2}, within {} standard errors of their difference",
                        show(a),
                        show(b),
                        a.mean - b.mean,
                        c.z
                    )
                } else {
                    format!(
                        "the best contender, {}, is ahead of the second, {}, by more than {} standard errors",
                        show(a),
                        show(b),
                        c.z
                    )
                };
                note = Some(match note {
                    Some(n) => format!("{text}; {n}"),
                    None => text,
                });
                Some(cmp != Comparison::Tie)
            }
            _ => None,
        };
        self.sync_contender_records(&contenders)?;
        self.write_best()?;
        Ok(ContenderOutcome {
            contenders: contenders.into_iter().map(|(_, c)| c).collect(),
            distinguishable,
            note,
        })
    }

    /// Contenders' knowledge-base records carry the mean over their
    /// evaluations (added when the session had not recorded them).
    fn sync_contender_records(
        &mut self,
        contenders: &[(usize, Contender)],
    ) -> Result<(), SessionError> {
        if self.kb.is_none() || self.spec.kb_records == KbRecords::None {
            return Ok(());
        }
        let mut records = Vec::new();
        for (i, c) in contenders {
            let (Some(step), Some(u)) = (self.steps.get(*i), c.uncertainty.as_ref()) else {
                continue;
            };
            let rung = self.top_rung(step.n);
            if u.repeats < 2 && rung <= 1 {
                continue;
            }
            let mut r = self.kb_record(step);
            if let Some(g) = self.spec.rungs.get(rung).filter(|_| rung > 1) {
                // A record of its own, under its rung's protocol.
                r.evaluator = g.info(self.spec.rungs.kind, &self.info);
                r.id = format!("{}-r{rung}", r.id);
            }
            r.score = Some(c.mean);
            r.uncertainty = Some(u.clone());
            r.metrics.insert("first_score".into(), c.first_score);
            if let Some(t) = c.test_accuracy {
                r.metrics.insert("test_accuracy".into(), t);
            }
            records.push(r);
        }
        if let Some(kb) = self.kb.as_mut() {
            kb.upsert(records)?;
        }
        Ok(())
    }
}
