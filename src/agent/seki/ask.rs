//! Asking the LLM: one call with its usage counted and journalled, and an
//! architecture with repairs, duplicate re-asks and a bounded fallback.

use super::*;

impl SekiAgent {
    pub(super) fn chat(
        &mut self,
        ctx: &mut Context<'_>,
        call: Call<'_>,
        messages: &[Message],
    ) -> Result<ChatResponse, StrategyError> {
        self.chat_with(ctx, call, messages, None)
    }

    /// [`chat`](Self::chat) with a constraint of its own for a constrained
    /// call (default: the space's notation for `agent.candidates`
    /// architectures).
    pub(super) fn chat_with(
        &mut self,
        ctx: &mut Context<'_>,
        call: Call<'_>,
        messages: &[Message],
        constraint: Option<Constraint>,
    ) -> Result<ChatResponse, StrategyError> {
        let Call {
            stage,
            model,
            temperature,
            max_tokens,
            constrained,
        } = call;
        let options = ChatOptions {
            temperature,
            max_tokens,
            seed: Some(ctx.rng.next_u64()),
            constraint: constrained
                .then(|| constraint.unwrap_or_else(|| Constraint::Regex(self.reply_pattern()))),
            ..ChatOptions::default()
        };
        let resp = self
            .rt
            .block_on(model.chat(messages, &options))
            .map_err(|source| StrategyError::Llm {
                stage: stage.to_string(),
                source,
            })?;
        let u = self
            .state
            .counters
            .usage
            .entry(stage.to_string())
            .or_default();
        u.calls += 1;
        u.prompt_tokens += resp.usage.prompt_tokens;
        u.completion_tokens += resp.usage.completion_tokens;
        u.cached_prompt_tokens += resp.usage.cached_prompt_tokens;
        u.cost_usd += resp.cost_usd.unwrap_or(0.0);
        u.seconds += resp.latency_seconds;
        self.events.push(AgentEvent::Llm {
            stage: stage.to_string(),
            model: model.name(),
            messages: messages.to_vec(),
            options: CallOptions {
                temperature,
                max_tokens,
                seed: options.seed,
                constrained,
            },
            response: resp.clone(),
        });
        Ok(resp)
    }

    /// The pattern of an architecture reply: `agent.candidates` cells of the
    /// space's notation, each within the budgets where the space's costs
    /// allow decoding to enforce them (NAS-Bench-201's parameters and
    /// FLOPs), so that no reply is refused for its cost.
    pub(super) fn reply_pattern(&self) -> String {
        let n = self.candidates();
        self.budget
            .as_ref()
            .filter(|_| self.cfg.decode_within_budget)
            .and_then(|b| b.arch_pattern(self.space, n))
            .unwrap_or_else(|| arch_pattern(self.space, n))
    }

    /// A mutation of `parent` (or a random architecture) not evaluated
    /// before, with the parent's hash when it is a mutation. The search is
    /// bounded: when nearly every architecture has been seen it may return a
    /// seen one, which the session counts as a duplicate (and stops after
    /// `max_consecutive_duplicates` of them).
    pub(super) fn fallback(
        &self,
        ctx: &mut Context<'_>,
        parent: Option<&str>,
    ) -> (Arch, Option<String>) {
        const MUTATION_TRIES: usize = 200;
        const RANDOM_TRIES: usize = 2000;
        if let Some(p) = parent.and_then(|p| self.space.parse(p).ok()) {
            for _ in 0..MUTATION_TRIES {
                let a = p.mutate(ctx.rng);
                if ctx.admits(&a) {
                    return (a, Some(p.hash()));
                }
            }
        }
        let mut a = self.space.random(ctx.rng);
        for _ in 1..RANDOM_TRIES {
            if ctx.admits(&a) {
                break;
            }
            a = self.space.random(ctx.rng);
        }
        (a, None)
    }

    /// The model and temperature of a stage: knowledge inspiration's, or
    /// self-evolution's for every other stage.
    fn model_for(&self, stage: Stage) -> (Arc<dyn ChatModel>, f64) {
        match stage {
            Stage::Evolution | Stage::Ranked | Stage::Crossover | Stage::Pruned => (
                self.models.evolution.clone(),
                self.cfg.temperature_evolution,
            ),
            Stage::Inspiration => (
                self.models.inspiration.clone(),
                self.cfg.temperature_inspiration,
            ),
        }
    }

    /// Ask `stage`'s model, at step `step`, for at most `max` claims (a
    /// reply constrained by the JSON `schema`), and keep them as insights
    /// with `evidence`: the reply's text and [`Self::keep_claims`]' ids and
    /// statements.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ask_claims(
        &mut self,
        ctx: &mut Context<'_>,
        stage: Stage,
        step: &'static str,
        messages: &[Message],
        schema: Value,
        max: usize,
        evidence: &[String],
    ) -> Result<(String, Vec<String>, Vec<String>), StrategyError> {
        let (model, temperature) = self.model_for(stage);
        let call = Call {
            stage: step,
            model: model.clone(),
            temperature,
            max_tokens: self.cfg.max_tokens_text.max(200),
            constrained: true,
        };
        let r = self.chat_with(ctx, call, messages, Some(Constraint::JsonSchema(schema)))?;
        let (ids, stated) = self.keep_claims(step, &r.text, max, evidence, &model.name());
        Ok((r.text, ids, stated))
    }

    /// Ask for an architecture, repairing and re-asking as configured, and
    /// falling back to a mutation of `parent`. `pattern`: a reply
    /// constraint narrower than the session's (a Pareto search's cheaper
    /// cell), if any.
    pub(super) fn ask_arch(
        &mut self,
        ctx: &mut Context<'_>,
        stage: Stage,
        mut messages: Vec<Message>,
        parent: Option<String>,
        pattern: Option<String>,
    ) -> Result<Proposal, StrategyError> {
        let (model, temperature) = self.model_for(stage);
        let step = format!("{}_arch", stage.name());
        let parent_hash = parent
            .as_deref()
            .and_then(|p| self.space.parse(p).ok())
            .map(|a| a.hash());
        let mut repairs = 0;
        let mut duplicates = 0;
        let why = loop {
            let call = Call {
                stage: &step,
                model: model.clone(),
                temperature,
                max_tokens: self.cfg.max_tokens_arch,
                constrained: true,
            };
            let resp =
                self.chat_with(ctx, call, &messages, pattern.clone().map(Constraint::Regex))?;
            // Every architecture of the reply, in order: the seen ones are
            // duplicates, the first novel one is proposed and the other novel
            // ones wait their turn.
            let (novel, seen, over) = match extract_all(self.space, &resp.text) {
                Ok(all) => {
                    let mut novel: Vec<Arch> = Vec::new();
                    let mut seen: Vec<Arch> = Vec::new();
                    let mut over: Vec<(Arch, String)> = Vec::new();
                    for a in all {
                        if ctx.is_seen(&a) {
                            seen.push(a);
                        } else if let Some(why) = ctx.budget().and_then(|b| b.check(&a).refused) {
                            over.push((a, why));
                        } else if !novel.contains(&a) {
                            novel.push(a);
                        }
                    }
                    (Ok(novel), seen, over)
                }
                Err(e) => (Err(e), Vec::new(), Vec::new()),
            };
            for a in &seen {
                self.state.counters.llm_duplicates += 1;
                self.events.push(AgentEvent::Parse {
                    stage: step.clone(),
                    outcome: ParseOutcome::Duplicate,
                    repairs: None,
                    arch: Some(a.to_text()),
                    error: None,
                });
            }
            for (a, why) in &over {
                self.state.counters.over_budget += 1;
                self.events.push(AgentEvent::Parse {
                    stage: step.clone(),
                    outcome: ParseOutcome::OverBudget,
                    repairs: None,
                    arch: Some(a.to_text()),
                    error: Some(why.clone()),
                });
            }
            match novel {
                Ok(novel) if novel.is_empty() => {
                    if duplicates >= self.cfg.max_duplicate_retries {
                        break format!(
                            "still a duplicate or over budget after {duplicates} re-asks"
                        );
                    }
                    duplicates += 1;
                    messages.push(Message::assistant(resp.text));
                    let shown = seen
                        .iter()
                        .map(|a| show(self.space, &a.to_text()))
                        .collect::<Vec<_>>()
                        .join("; ");
                    let over_shown = over
                        .iter()
                        .map(|(a, why)| format!("{} ({why})", show(self.space, &a.to_text())))
                        .collect::<Vec<_>>()
                        .join("; ");
                    let extra = json!({
                        "duplicate": (!shown.is_empty()).then_some(shown),
                        "over_budget": (!over_shown.is_empty()).then_some(over_shown),
                    });
                    messages.push(Message::user(self.render(&step, extra)?));
                }
                Ok(novel) => {
                    let mut novel = novel.into_iter();
                    let Some(a) = novel.next() else {
                        break "no architecture in the reply".to_string();
                    };
                    let (outcome, word) = if repairs == 0 {
                        self.state.counters.parsed_first_try += 1;
                        (ParseOutcome::Parsed, "parsed")
                    } else {
                        self.state.counters.parsed_after_repair += 1;
                        (ParseOutcome::Repaired, "repaired")
                    };
                    self.events.push(AgentEvent::Parse {
                        stage: step.clone(),
                        outcome,
                        repairs: Some(repairs),
                        arch: Some(a.to_text()),
                        error: None,
                    });
                    let origin = format!("{} ({word})", stage.name());
                    let others: Vec<Proposal> = novel
                        .enumerate()
                        .map(|(k, extra)| Proposal {
                            arch: extra,
                            origin: format!("{origin}, candidate {} of one reply", k + 2),
                            operator: stage.operator().into(),
                            parent: parent_hash.clone(),
                        })
                        .collect();
                    let first = Proposal {
                        arch: a,
                        origin,
                        operator: stage.operator().into(),
                        parent: parent_hash,
                    };
                    if self.screen.is_some() && !others.is_empty() {
                        // The screen picks one; the others are dropped.
                        let mut cands = vec![first];
                        cands.extend(others);
                        return self.screen_pick(&step, cands);
                    }
                    self.extras.extend(others);
                    return Ok(first);
                }
                Err(e) => {
                    self.events.push(AgentEvent::Parse {
                        stage: step.clone(),
                        outcome: ParseOutcome::Invalid,
                        repairs: Some(repairs),
                        arch: None,
                        error: Some(e.to_string()),
                    });
                    if repairs >= self.cfg.max_repairs {
                        break format!("unparsable after {repairs} repairs: {e}");
                    }
                    repairs += 1;
                    messages.push(Message::assistant(resp.text));
                    messages.push(Message::user(
                        self.render("repair", json!({"error": e.to_string()}))?,
                    ));
                }
            }
        };
        self.state.counters.fell_back += 1;
        let (arch, parent_hash) = self.fallback(ctx, parent.as_deref());
        self.events.push(AgentEvent::Fallback {
            stage: step,
            reason: why.clone(),
            arch: arch.to_text(),
        });
        Ok(Proposal {
            arch,
            origin: format!("{} (fallback: mutation; {why})", stage.name()),
            operator: "fallback-mutation".into(),
            parent: parent_hash,
        })
    }
}
