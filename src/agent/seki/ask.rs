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

    /// [`chat`](Self::chat) with a schema of its own for a constrained call
    /// (default: the space's architecture schema).
    pub(super) fn chat_with(
        &mut self,
        ctx: &mut Context<'_>,
        call: Call<'_>,
        messages: &[Message],
        schema: Option<Value>,
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
                .then(|| Constraint::JsonSchema(schema.unwrap_or_else(|| arch_schema(self.space)))),
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
                if !ctx.is_seen(&a) {
                    return (a, Some(p.hash()));
                }
            }
        }
        let mut a = self.space.random(ctx.rng);
        for _ in 1..RANDOM_TRIES {
            if !ctx.is_seen(&a) {
                break;
            }
            a = self.space.random(ctx.rng);
        }
        (a, None)
    }

    /// Ask for an architecture, repairing and re-asking as configured, and
    /// falling back to a mutation of `parent`.
    pub(super) fn ask_arch(
        &mut self,
        ctx: &mut Context<'_>,
        stage: Stage,
        mut messages: Vec<Message>,
        parent: Option<String>,
    ) -> Result<Proposal, StrategyError> {
        let (model, temperature) = match stage {
            Stage::Evolution | Stage::Ranked | Stage::Crossover => (
                self.models.evolution.clone(),
                self.cfg.temperature_evolution,
            ),
            Stage::Inspiration => (
                self.models.inspiration.clone(),
                self.cfg.temperature_inspiration,
            ),
        };
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
            let resp = self.chat(ctx, call, &messages)?;
            match extract(self.space, &resp.text) {
                Ok(a) if ctx.is_seen(&a) => {
                    self.state.counters.llm_duplicates += 1;
                    self.events.push(AgentEvent::Parse {
                        stage: step.clone(),
                        outcome: ParseOutcome::Duplicate,
                        repairs: None,
                        arch: Some(a.to_text()),
                        error: None,
                    });
                    if duplicates >= self.cfg.max_duplicate_retries {
                        break format!("still a duplicate after {duplicates} re-asks");
                    }
                    duplicates += 1;
                    messages.push(Message::assistant(resp.text));
                    let shown = show(self.space, &a.to_text());
                    messages.push(Message::user(
                        self.render(&step, json!({"duplicate": shown}))?,
                    ));
                }
                Ok(a) => {
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
                    return Ok(Proposal {
                        arch: a,
                        origin: format!("{} ({word})", stage.name()),
                        operator: stage.operator().into(),
                        parent: parent_hash,
                    });
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
