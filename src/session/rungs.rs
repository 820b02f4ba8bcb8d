//! Fidelity rungs in a session: asynchronous successive halving (ASHA).
//!
//! Every search evaluation is at rung 1. Whenever an architecture is among
//! the best `search.promote` fraction of a rung's results and has not been
//! evaluated at the next rung, it is promoted: evaluated there before the
//! strategy proposes anything new (a `promotion` re-evaluation with its
//! `rung`). No rung waits to fill: with one result in three promoted, the
//! best of the first three results moves up at once. The seed (the
//! session's first evaluation) is promoted to every rung, so that the answer
//! can be compared with it at the same fidelity.
//!
//! Promotions are decided from the journalled results alone, so a session
//! killed anywhere, resumed, makes the same promotions at the same points.
//! Scores are compared within a rung only: the session's best is the best
//! at the highest rung reached.

use super::*;
use crate::record::{RungSummary, RungsSummary, SeedComparison};
use crate::stats::{self, Comparison};

/// The purpose of a promotion's evaluation.
pub(super) const PROMOTION: &str = "promotion";

impl<'e> Session<'e> {
    /// The highest rung at which evaluation `n` has scored (1 when only its
    /// search evaluation has, or nothing has).
    pub(super) fn top_rung(&self, n: usize) -> u32 {
        self.reevaluations
            .iter()
            .filter(|r| r.of == n && r.rung > 1 && r.result.status == EvalStatus::Ok)
            .map(|r| r.rung)
            .max()
            .unwrap_or(1)
    }

    /// Whether evaluation `n` was evaluated (or is in flight) at `rung`,
    /// whatever came of it.
    fn reached(&self, n: usize, rung: u32) -> bool {
        rung <= 1
            || self
                .reevaluations
                .iter()
                .any(|r| r.of == n && r.rung == rung)
            || self
                .reevals_in_flight
                .values()
                .any(|r| r.of == n && r.rung == rung)
    }

    /// The mean score of evaluation `n` at `rung`, with its standard error
    /// (`None`: it has not scored there).
    pub(super) fn score_at(&self, n: usize, rung: u32) -> Option<(f64, Option<f64>)> {
        let step = self.steps.get(n.checked_sub(1)?)?;
        crate::record::score_at_rung(step, &self.reevaluations, rung)
    }

    /// The session's seed: its first evaluation, when a strategy made it
    /// as a seed (the agent's cell from the knowledge base, REA's queued
    /// seeds); random first draws are no seed.
    fn seed_step(&self) -> Option<&Step> {
        self.steps
            .first()
            .filter(|s| s.proposal.counted_as() == "seed" || s.proposal.origin.starts_with("seed"))
    }

    /// The promotions due now, highest target rung first: each rung's best
    /// `promote` fraction not yet at the next rung, and the seed.
    fn due_promotions(&self) -> Vec<(usize, u32)> {
        let rungs = &self.spec.rungs;
        let mut due = Vec::new();
        for rung in (1..rungs.top()).rev() {
            let mut at: Vec<(usize, f64)> = self
                .steps
                .iter()
                .enumerate()
                .filter_map(|(i, s)| self.score_at(s.n, rung).map(|(m, _)| (i, m)))
                .collect();
            at.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let k = rungs.promoted_of(at.len());
            for &(i, _) in at.iter().take(k) {
                if let Some(s) = self.steps.get(i) {
                    if !self.reached(s.n, rung + 1) {
                        due.push((i, rung + 1));
                    }
                }
            }
            if let Some(seed) = self.seed_step() {
                if self.score_at(seed.n, rung).is_some()
                    && !self.reached(seed.n, rung + 1)
                    && !due.contains(&(0, rung + 1))
                {
                    due.push((0, rung + 1));
                }
            }
        }
        due
    }

    /// Make the promotions due (and those their results make due), within
    /// the budgets; whether any was made.
    pub(super) fn promote(&mut self) -> Result<bool, SessionError> {
        if self.spec.rungs.len() < 2 {
            return Ok(false);
        }
        let mut any = false;
        loop {
            let due = self.due_promotions();
            if due.is_empty() || self.interrupted() {
                break;
            }
            let todo: Vec<(usize, Option<u32>)> = due.iter().map(|&(i, r)| (i, Some(r))).collect();
            for &(i, r) in &due {
                tracing::info!(
                    evaluation = self.steps.get(i).map_or(0, |s| s.n),
                    rung = r,
                    "promoted"
                );
            }
            let made = self.run_reevaluations_at(&todo, PROMOTION, true)?;
            any |= made > 0;
            // Out of budget, or nothing changed (a failed promotion is
            // not made again).
            if made < todo.len() || self.due_promotions() == due {
                break;
            }
        }
        Ok(any)
    }

    /// What reached each rung, for the summary (`None` with one rung).
    pub(super) fn rungs_summary(&self) -> Option<RungsSummary> {
        let rungs = &self.spec.rungs;
        if rungs.len() < 2 {
            return None;
        }
        let mut out = Vec::new();
        let mut highest = 1;
        for r in &rungs.rungs {
            let (archs, evals, secs) = if r.index <= 1 {
                let ok = self
                    .steps
                    .iter()
                    .filter(|s| s.result.status == EvalStatus::Ok)
                    .count();
                let secs: f64 = self.steps.iter().map(|s| s.eval_seconds).sum();
                let repeats = self.reevaluations.iter().filter(|x| x.rung <= 1).count();
                (ok, self.steps.len() + repeats, secs)
            } else {
                let here: Vec<&Reevaluation> = self
                    .reevaluations
                    .iter()
                    .filter(|x| x.rung == r.index)
                    .collect();
                let mut archs: Vec<usize> = here
                    .iter()
                    .filter(|x| x.result.status == EvalStatus::Ok)
                    .map(|x| x.of)
                    .collect();
                archs.sort_unstable();
                archs.dedup();
                let secs: f64 = here.iter().map(|x| x.eval_seconds).sum();
                (archs.len(), here.len(), secs)
            };
            if archs > 0 {
                highest = highest.max(r.index);
            }
            out.push(RungSummary {
                rung: r.index,
                settings: crate::eval::rung::describe(rungs.kind, &r.settings),
                architectures: archs,
                evaluations: evals,
                mean_seconds: if evals > 0 { secs / evals as f64 } else { 0.0 },
            });
        }
        Some(RungsSummary {
            promote: rungs.promote,
            rungs: out,
            highest_reached: highest,
        })
    }

    /// The best against the seed at the best's rung, when the seed scored
    /// there.
    pub(super) fn against_seed(&self) -> Option<SeedComparison> {
        let best = self.best.and_then(|i| self.steps.get(i))?;
        let seed = self.seed_step()?;
        let rung = self.top_rung(best.n);
        let (b, bse) = self.score_at(best.n, rung)?;
        let (s, sse) = self.score_at(seed.n, rung)?;
        let z = self.spec.contenders.z;
        let at = if self.spec.rungs.len() > 1 {
            format!(" at rung {rung}")
        } else {
            String::new()
        };
        let (verdict, text) = if best.n == seed.n {
            (
                "same",
                format!(
                    "the best is the seed itself (evaluation {}, {}{at}): nothing found beat it",
                    seed.n,
                    stats::with_se(s, sse)
                ),
            )
        } else {
            let d = b - s;
            let show = format!(
                "evaluation {} ({}) against the seed, evaluation {} ({}){at}: {:+.2}",
                best.n,
                stats::with_se(b, bse),
                seed.n,
                stats::with_se(s, sse),
                d
            );
            match stats::compare(b, bse, s, sse, z) {
                Comparison::Better => (
                    "better",
                    format!("the best beats the seed beyond noise: {show}, more than {z} standard errors of the difference"),
                ),
                Comparison::Worse => (
                    "worse",
                    format!("the best scores below the seed beyond noise: {show}"),
                ),
                Comparison::Tie => (
                    "within noise",
                    format!("the best does not beat the seed beyond noise: {show}, within {z} standard errors of the difference"),
                ),
            }
        };
        Some(SeedComparison {
            seed_evaluation: seed.n,
            seed_arch: seed.proposal.arch.clone(),
            rung,
            seed_score: s,
            seed_se: sse,
            best_score: b,
            best_se: bse,
            difference: b - s,
            verdict: verdict.into(),
            text,
        })
    }
}
