//! The loop: keep up to the executor's slots of evaluations in flight —
//! propose, skip duplicates (of evaluated architectures and of those in
//! flight), submit — and take results as they come, out of order: journal,
//! tell the strategy, sync the knowledge base; until a budget ends.
//!
//! With one slot (the inline executor) this is propose → evaluate → observe,
//! exactly as sessions always ran: the same seed gives the same
//! architectures.

use super::*;
use crate::executor::request::unix_now;
use crate::executor::{Outcome, Reattach};
use std::time::Duration;

/// How long the loop waits for a result before it looks at its budgets and
/// the interrupt flag again.
pub(super) const WAIT: Duration = Duration::from_millis(200);

/// Why a session stops.
pub(super) enum Stop {
    /// Stop now; what is in flight is cancelled (the time budget).
    Now(String),
    /// Propose no more; let what is in flight finish.
    Drain(String),
}

/// A proposal that is not evaluated (a duplicate, one over budget) as the
/// journal names it.
fn proposed(p: crate::strategy::Proposal, hash: String) -> Proposed {
    Proposed {
        arch: p.arch.to_text(),
        hash,
        origin: p.origin,
        parent: p.parent,
        operator: p.operator,
    }
}

impl<'e> Session<'e> {
    /// Why the session should stop, if it should.
    pub(super) fn stop(&self) -> Option<Stop> {
        if let Some(r) = &self.halt {
            return Some(Stop::Drain(r.clone()));
        }
        // Room is left for the contenders' repeats (see contenders.rs).
        let (held, held_seconds) = self.reserved();
        let held_note = |what: &str| match held {
            0 => String::new(),
            n => format!(" ({n} {what} held back for re-evaluating contenders)"),
        };
        if self.evaluations_used() + held >= self.spec.max_evaluations {
            return Some(Stop::Drain(format!(
                "budget: {} evaluations{}",
                self.spec.max_evaluations,
                held_note("evaluations")
            )));
        }
        if self.spec.max_seconds > 0.0 && self.elapsed() >= self.spec.max_seconds {
            return Some(Stop::Now(format!(
                "budget: {} seconds",
                self.spec.max_seconds
            )));
        }
        if self.spec.max_seconds > 0.0 && self.elapsed() + held_seconds >= self.spec.max_seconds {
            // What is in flight may finish; the contenders get the rest.
            return Some(Stop::Drain(format!(
                "budget: {} seconds{}",
                self.spec.max_seconds,
                held_note("evaluations' time")
            )));
        }
        let stats = self.strategy.stats();
        if self.spec.max_tokens > 0 {
            let used = stats.tokens;
            if used >= self.spec.max_tokens {
                return Some(Stop::Drain(format!(
                    "budget: {} LLM tokens ({used} used)",
                    self.spec.max_tokens
                )));
            }
        }
        if self.spec.max_cost_usd > 0.0 {
            let used = stats.cost_usd;
            if used >= self.spec.max_cost_usd {
                return Some(Stop::Drain(format!(
                    "budget: ${} of LLM cost (${used:.4} used)",
                    self.spec.max_cost_usd
                )));
            }
        }
        if self.consecutive_duplicates >= self.spec.max_consecutive_duplicates {
            return Some(Stop::Drain(match self.budget {
                Some(_) => format!(
                    "no new architectures within budget: the last {} proposals were all evaluated before or over budget",
                    self.consecutive_duplicates
                ),
                None => format!(
                    "no new architectures: the last {} proposals were all evaluated before",
                    self.consecutive_duplicates
                ),
            }));
        }
        None
    }

    /// Why the session would stop now, if it would (for callers driving
    /// [`step`](Self::step) themselves).
    pub fn stop_reason(&self) -> Option<String> {
        self.stop().map(|s| match s {
            Stop::Now(r) | Stop::Drain(r) => r,
        })
    }

    /// One step: propose, submit unless already evaluated or in flight, and
    /// take the results that are ready; with one slot, wait for this one.
    pub fn step(&mut self) -> Result<(), SessionError> {
        self.reattach()?;
        if self.in_flight.len() >= self.exec.slots() {
            self.collect(WAIT)?;
            return Ok(());
        }
        self.propose_one()?;
        let wait = if self.in_flight.len() >= self.exec.slots() {
            WAIT
        } else {
            Duration::ZERO
        };
        self.collect(wait)
    }

    /// Propose one architecture and submit it, or record it as a duplicate;
    /// a lost request is submitted again first.
    fn propose_one(&mut self) -> Result<(), SessionError> {
        if let Some((id, flight)) = self.lost.pop_front() {
            let job = self.exec.submit(&id, &flight.arch)?;
            if let Some(job) = &job {
                self.journal(&Event::Job {
                    request: id.clone(),
                    job: job.clone(),
                })?;
            }
            tracing::info!(request = %id, "submitted again (its job was lost)");
            self.in_flight.insert(
                id,
                Flight {
                    job,
                    submitted: unix_now(),
                    ..flight
                },
            );
            return Ok(());
        }
        let seen = &self.seen;
        let pending = &self.pending;
        let is_seen = |h: &str| seen.contains_key(h) || pending.contains_key(h);
        let proposal = self
            .strategy
            .propose(&mut Context::new(&mut self.rng, &is_seen).with_budget(self.budget.as_ref()));
        for detail in self.strategy.drain_events() {
            self.journal(&Event::Strategy { detail })?;
        }
        let proposal = proposal?;
        self.store_insights()?;
        let hash = proposal.arch.hash();
        let earlier = self.seen.get(&hash).copied();
        let in_flight = self.pending.get(&hash).cloned();
        if earlier.is_some() || in_flight.is_some() {
            let (of, score) = earlier.unwrap_or((0, None));
            self.duplicates += 1;
            self.consecutive_duplicates += 1;
            *self
                .duplicate_operators
                .entry(proposal.operator.clone())
                .or_insert(0) += 1;
            let metrics = self
                .steps
                .get(of.wrapping_sub(1))
                .map(|s| &s.result.metrics);
            let params = metrics.and_then(|m| m.get("params").copied());
            self.strategy.observe(&Observation {
                arch: &proposal.arch,
                score,
                evaluation: None,
                params,
                refused: None,
                cost: metrics.and_then(crate::eval::Cost::from_metrics),
            });
            tracing::debug!(%hash, of, "duplicate proposal skipped");
            self.journal(&Event::Duplicate {
                proposal: proposed(proposal, hash),
                of,
                in_flight,
                state: self.state(),
            })?;
            return Ok(());
        }
        if let Some(fit) = self.budget.as_ref().map(|b| b.check(&proposal.arch)) {
            if let Some(reason) = fit.refused {
                self.refused += 1;
                self.consecutive_duplicates += 1;
                self.strategy.observe(&Observation {
                    arch: &proposal.arch,
                    score: None,
                    evaluation: None,
                    params: fit.cost.map(|c| c.params as f64),
                    refused: Some(&reason),
                    cost: fit.cost,
                });
                tracing::debug!(%hash, %reason, "proposal over budget refused");
                self.journal(&Event::Refused {
                    proposal: proposed(proposal, hash),
                    cost: fit.cost,
                    reason,
                    state: self.state(),
                })?;
                return Ok(());
            }
        }
        self.consecutive_duplicates = 0;
        self.requests += 1;
        let id = format!("r{:04}", self.requests);
        let flight = Flight {
            arch: proposal.arch,
            hash: hash.clone(),
            origin: proposal.origin,
            parent: proposal.parent,
            operator: proposal.operator,
            submitted: unix_now(),
            job: None,
        };
        if self.exec.durable() {
            // Journalled before it is submitted: a kill in between leaves a
            // request the resumed session finds lost and submits again.
            self.journal(&Event::Submitted(Box::new(Submission {
                request: id.clone(),
                proposal: flight.proposed(),
                submitted: flight.submitted,
                state: self.state(),
            })))?;
        }
        self.pending.insert(hash, id.clone());
        let job = self.exec.submit(&id, &flight.arch)?;
        if let Some(job) = &job {
            self.journal(&Event::Job {
                request: id.clone(),
                job: job.clone(),
            })?;
        }
        self.in_flight.insert(id, Flight { job, ..flight });
        Ok(())
    }

    /// Take the results that are ready, waiting up to `wait` for one.
    fn collect(&mut self, wait: Duration) -> Result<(), SessionError> {
        // Results that came while a re-evaluation was awaited come first.
        let mut outcomes = std::mem::take(&mut self.deferred);
        let wait = if outcomes.is_empty() {
            wait
        } else {
            Duration::ZERO
        };
        outcomes.extend(self.exec.poll(wait)?);
        if self.interrupted() {
            // Results of workers the interrupt may have reached are not
            // trusted; a resumed session reads those that finished from disk.
            return Ok(());
        }
        for o in outcomes {
            self.finish(o)?;
            let stage = self.strategy.stage();
            self.report(&stage);
        }
        Ok(())
    }

    /// Record a result: journal it, tell the strategy, sync the knowledge base.
    fn finish(&mut self, o: Outcome) -> Result<(), SessionError> {
        if let Some(r) = self.reevals_in_flight.remove(&o.id) {
            return self.finish_reevaluation(r, o);
        }
        let Some(flight) = self.in_flight.remove(&o.id) else {
            tracing::warn!(request = %o.id, "a result for no request in flight; ignored");
            return Ok(());
        };
        self.pending.remove(&flight.hash);
        let now = unix_now();
        let eval_seconds = (now - flight.submitted).max(0.0);
        let placement = self.exec.durable().then(|| Placement {
            request: o.id.clone(),
            job: flight.job.clone(),
            host: o.host.clone(),
            queued_seconds: o.started.map(|t| (t - flight.submitted).max(0.0)),
            worker_seconds: o.started.zip(o.finished).map(|(a, b)| (b - a).max(0.0)),
        });
        let mut result = o.evaluation;
        if let Some(cost) = self
            .budget
            .as_ref()
            .and_then(|b| b.model.cost(&flight.arch).ok())
        {
            // The figures the budget was checked against.
            for (k, v) in cost.metrics() {
                result.metrics.insert(k.to_string(), v);
            }
        }
        let score = match result.status {
            EvalStatus::Ok => result.score,
            _ => None,
        };
        let n = self.steps.len() + 1;
        self.strategy.observe(&Observation {
            arch: &flight.arch,
            score,
            evaluation: Some(n),
            params: result.metrics.get("params").copied(),
            refused: None,
            cost: self
                .budget
                .as_ref()
                .and_then(|_| crate::eval::Cost::from_metrics(&result.metrics)),
        });
        self.seen.insert(flight.hash.clone(), (n, score));
        let best_before = self.best().map(|b| b.score);
        let step = Step {
            n,
            proposal: flight.proposed(),
            result,
            eval_seconds,
            placement,
            state: self.state(),
        };
        self.journal(&Event::Evaluation(Box::new(step.clone())))?;
        match score {
            Some(s) => tracing::debug!(n, score = s, arch = %step.proposal.arch, "evaluated"),
            None => {
                tracing::warn!(n, status = step.result.status.name(), arch = %step.proposal.arch, "evaluation failed")
            }
        }
        let record = if self.kb.is_some() && self.wants_record(&step, best_before) {
            Some(self.kb_record(&step))
        } else {
            None
        };
        let best_index_before = self.best;
        self.record_step(step);
        if self.best.is_some_and(|i| i + 1 == n) {
            self.recheck_close_best(best_index_before)?;
            self.write_best()?;
            if let Some(b) = self.best() {
                tracing::info!(n, score = b.score, arch = %b.arch, "new best");
            }
        }
        if let (Some(kb), Some(r)) = (self.kb.as_mut(), record) {
            kb.add(vec![r])?;
        }
        // What the strategy learnt from this result (e.g. an insight now
        // contradicted) reaches the knowledge base at once.
        self.store_insights()?;
        Ok(())
    }

    /// Take back the requests a resumed session found in flight: collect
    /// what finished, follow what still runs, queue the lost to submit again.
    pub(super) fn reattach(&mut self) -> Result<(), SessionError> {
        for (id, mut flight, cancelled) in std::mem::take(&mut self.recovered) {
            match self
                .exec
                .reattach(&id, &flight.arch, flight.job.as_deref(), cancelled)?
            {
                Reattach::Attached => {
                    self.in_flight.insert(id, flight);
                }
                Reattach::Found(job) => {
                    self.journal(&Event::Job {
                        request: id.clone(),
                        job: job.clone(),
                    })?;
                    flight.job = Some(job);
                    self.in_flight.insert(id, flight);
                }
                Reattach::Lost => self.lost.push_back((id, flight)),
            }
        }
        Ok(())
    }

    /// Cancel everything in flight (and forget the lost), journalling each.
    pub(super) fn cancel_in_flight(&mut self, reason: &str) -> Result<usize, SessionError> {
        self.exec.cancel_all()?;
        self.reevals_in_flight.clear();
        let mut all: Vec<String> = self.in_flight.keys().cloned().collect();
        all.extend(self.lost.drain(..).map(|(id, _)| id));
        for id in &all {
            if self.exec.durable() {
                self.journal(&Event::Cancelled {
                    request: id.clone(),
                    reason: reason.to_string(),
                })?;
            }
        }
        self.in_flight.clear();
        self.pending.clear();
        self.cancelled += all.len();
        Ok(all.len())
    }

    /// Drive the session until a budget ends; the reason.
    fn drive(&mut self) -> Result<String, SessionError> {
        self.reattach()?;
        loop {
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
            let can_submit = self.in_flight.len() < self.exec.slots();
            match self.stop() {
                Some(Stop::Now(r)) => {
                    let n = self.cancel_in_flight(&r)?;
                    if n > 0 {
                        tracing::info!(cancelled = n, "{r}: evaluations in flight cancelled");
                    }
                    return Ok(r);
                }
                Some(Stop::Drain(r)) if self.in_flight.is_empty() => return Ok(r),
                Some(Stop::Drain(_)) => {}
                None if can_submit && !self.lost.is_empty() => {
                    self.propose_one()?;
                    continue;
                }
                // Promotions to a higher rung come before new proposals.
                None if can_submit && self.promote()? => continue,
                None if can_submit
                    && self.evaluations_used()
                        + self.reserved().0
                        + self.in_flight.len()
                        + self.lost.len()
                        < self.spec.max_evaluations =>
                {
                    match self.propose_one() {
                        Ok(()) => {}
                        // Not a failure: the journal is whole and `--resume`
                        // continues once the server lets us in again; what
                        // is in flight finishes first.
                        Err(SessionError::Strategy(e)) if e.is_rate_limited() => {
                            self.halt = Some(format!("LLM rate limit: {e}"));
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                    let stage = self.strategy.stage();
                    self.report(&stage);
                    self.collect(Duration::ZERO)?;
                    continue;
                }
                None => {}
            }
            self.collect(WAIT)?;
        }
    }

    /// Run until the budget ends; writes `summary.json` and returns the summary.
    pub fn run(mut self) -> Result<Summary, SessionError> {
        self.report("start");
        let reason = self.drive()?;
        let contenders = self.reevaluate_contenders()?;
        self.journal(&Event::End {
            reason: reason.clone(),
            time: now_rfc3339(),
        })?;
        let summary = Summary {
            session: self.id.clone(),
            space: self.spec.space.to_string(),
            strategy: self.strategy.name().into(),
            seed: self.spec.seed,
            evaluations: self.steps.len(),
            duplicates: self.duplicates,
            failed: self
                .steps
                .iter()
                .filter(|s| s.result.status != EvalStatus::Ok)
                .count(),
            executor: self.exec.describe(),
            reevaluations: self.reevaluations.len(),
            best: self.best(),
            contenders: contenders.contenders,
            top_two_distinguishable: contenders.distinguishable,
            contenders_note: contenders.note,
            stop_reason: reason,
            elapsed_seconds: self.elapsed(),
            operators: operators::operator_stats(&self.steps, &self.duplicate_operators),
            budget: self
                .budget
                .as_ref()
                .filter(|b| !b.constraints.is_empty())
                .map(|b| BudgetSummary {
                    constraints: b.constraints,
                    measured_on: b.model.describe().to_string(),
                    refused: self.refused,
                }),
            front: self.front(),
            rungs: self.rungs_summary(),
            against_seed: self.against_seed(),
            strategy_stats: self.strategy.stats(),
        };
        // The knowledge base is whole: release its lock before the summary
        // says the session ended, so that a kill after it leaves no lock.
        self.kb = None;
        if let Some(run) = &self.run {
            run.write_json(run_dir::SUMMARY, &summary)?;
        }
        Ok(summary)
    }

    /// A Pareto search's front so far, with its hypervolume (`None` for a
    /// search of accuracy alone).
    pub fn front(&self) -> Option<crate::record::Front> {
        if self.spec.objectives.len() < 2 {
            return None;
        }
        let reference = self.reference()?;
        Some(crate::record::front_of(
            &self.steps,
            &self.spec.objectives,
            &reference,
        ))
    }

    /// The hypervolume's reference point of this session's objectives.
    pub fn reference(&self) -> Option<Vec<f64>> {
        let b = self.budget.as_ref()?;
        let ceiling = b.model.ceiling(self.spec.space).ok()?;
        Some(crate::eval::cost::reference(
            &self.spec.objectives,
            &ceiling,
        ))
    }

    /// Run until the budget ends and return every evaluation (for benchmarks).
    pub fn run_to_steps(mut self) -> Result<Vec<Step>, SessionError> {
        self.drive()?;
        Ok(self.steps)
    }
}
