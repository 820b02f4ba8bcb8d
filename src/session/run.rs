//! The loop: propose, skip duplicates, evaluate, journal, tell the strategy,
//! until a budget ends.

use super::*;

impl<'e> Session<'e> {
    /// Why the session should stop now, if it should.
    pub(super) fn stop_reason(&self) -> Option<String> {
        if self.steps.len() >= self.spec.max_evaluations {
            return Some(format!("budget: {} evaluations", self.spec.max_evaluations));
        }
        if self.spec.max_seconds > 0.0 && self.elapsed() >= self.spec.max_seconds {
            return Some(format!("budget: {} seconds", self.spec.max_seconds));
        }
        let stats = self.strategy.stats();
        if self.spec.max_tokens > 0 {
            let used = stats.tokens;
            if used >= self.spec.max_tokens {
                return Some(format!(
                    "budget: {} LLM tokens ({used} used)",
                    self.spec.max_tokens
                ));
            }
        }
        if self.spec.max_cost_usd > 0.0 {
            let used = stats.cost_usd;
            if used >= self.spec.max_cost_usd {
                return Some(format!(
                    "budget: ${} of LLM cost (${used:.4} used)",
                    self.spec.max_cost_usd
                ));
            }
        }
        if self.consecutive_duplicates >= self.spec.max_consecutive_duplicates {
            return Some(format!(
                "no new architectures: the last {} proposals were all evaluated before",
                self.consecutive_duplicates
            ));
        }
        None
    }

    /// One step: propose, and evaluate unless already evaluated.
    pub fn step(&mut self) -> Result<(), SessionError> {
        let seen = &self.seen;
        let is_seen = |h: &str| seen.contains_key(h);
        let proposal = self
            .strategy
            .propose(&mut Context::new(&mut self.rng, &is_seen));
        for detail in self.strategy.drain_events() {
            self.journal(&Event::Strategy { detail })?;
        }
        let proposal = proposal?;
        self.store_insights()?;
        let hash = proposal.arch.hash();
        if let Some(&(of, score)) = self.seen.get(&hash) {
            self.duplicates += 1;
            self.consecutive_duplicates += 1;
            *self
                .duplicate_operators
                .entry(proposal.operator.clone())
                .or_insert(0) += 1;
            let params = self
                .steps
                .get(of.wrapping_sub(1))
                .and_then(|s| s.result.metrics.get("params").copied());
            self.strategy.observe(&Observation {
                arch: &proposal.arch,
                score,
                evaluation: None,
                params,
            });
            tracing::debug!(%hash, of, "duplicate proposal skipped");
            self.journal(&Event::Duplicate {
                arch: proposal.arch.to_text(),
                hash,
                origin: proposal.origin,
                parent: proposal.parent,
                operator: proposal.operator.clone(),
                of,
                state: self.state(),
            })?;
            return Ok(());
        }
        self.consecutive_duplicates = 0;
        let t = Instant::now();
        let result = self.evaluator.evaluate(&proposal.arch)?;
        let eval_seconds = t.elapsed().as_secs_f64();
        let score = match result.status {
            EvalStatus::Ok => result.score,
            _ => None,
        };
        let n = self.steps.len() + 1;
        self.strategy.observe(&Observation {
            arch: &proposal.arch,
            score,
            evaluation: Some(n),
            params: result.metrics.get("params").copied(),
        });
        self.seen.insert(hash.clone(), (n, score));
        let best_before = self.best().map(|b| b.score);
        let step = Step {
            n,
            arch: proposal.arch.to_text(),
            hash,
            origin: proposal.origin,
            parent: proposal.parent,
            operator: proposal.operator,
            result,
            eval_seconds,
            state: self.state(),
        };
        self.journal(&Event::Evaluation(Box::new(step.clone())))?;
        match score {
            Some(s) => tracing::debug!(n, score = s, arch = %step.arch, "evaluated"),
            None => {
                tracing::warn!(n, status = step.result.status.name(), arch = %step.arch, "evaluation failed")
            }
        }
        let record = if self.kb.is_some() && self.wants_record(&step, best_before) {
            Some(self.kb_record(&step))
        } else {
            None
        };
        self.record_step(step);
        if self.best.is_some_and(|i| i + 1 == n) {
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

    /// Run until the budget ends; writes `summary.json` and returns the summary.
    pub fn run(mut self) -> Result<Summary, SessionError> {
        self.report("start");
        let reason = loop {
            if let Some(r) = self.stop_reason() {
                break r;
            }
            match self.step() {
                Ok(()) => {}
                // Not a failure: the journal is whole and `--resume`
                // continues once the server lets us in again.
                Err(SessionError::Strategy(e)) if e.is_rate_limited() => {
                    break format!("LLM rate limit: {e}");
                }
                Err(e) => return Err(e),
            }
            let stage = self.strategy.stage();
            self.report(&stage);
        };
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
            duplicates: self.duplicates + self.strategy.stats().llm_duplicates as usize,
            failed: self
                .steps
                .iter()
                .filter(|s| s.result.status != EvalStatus::Ok)
                .count(),
            best: self.best(),
            stop_reason: reason,
            elapsed_seconds: self.elapsed(),
            operators: operators::operator_stats(&self.steps, &self.duplicate_operators),
            strategy_stats: self.strategy.stats(),
        };
        if let Some(run) = &self.run {
            run.write_json(run_dir::SUMMARY, &summary)?;
        }
        Ok(summary)
    }

    /// Run until the budget ends and return every evaluation (for benchmarks).
    pub fn run_to_steps(mut self) -> Result<Vec<Step>, SessionError> {
        while self.stop_reason().is_none() {
            self.step()?;
        }
        Ok(self.steps)
    }
}
