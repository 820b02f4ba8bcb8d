//! The two SEKI stages: self-evolution (a refinement strategy, then an
//! architecture) and knowledge inspiration (shared patterns of sampled top
//! architectures, kept as insights, then an architecture).

use super::*;

impl SekiAgent {
    pub(super) fn evolve(
        &mut self,
        ctx: &mut Context<'_>,
        current: PoolEntry,
    ) -> Result<Proposal, StrategyError> {
        let history: Vec<Value> = {
            let h = &self.state.history;
            h[h.len().saturating_sub(self.cfg.history)..]
                .iter()
                .map(|x| json!({"strategy": x.strategy, "outcome": x.outcome}))
                .collect()
        };
        let vars = json!({"current": self.entry_ctx(&current), "history": history});
        let system = Message::system(self.render("system", vars.clone())?);
        let ask = Message::user(self.render("evolution_strategy", vars.clone())?);
        let model = self.models.evolution.clone();
        let mut messages = vec![system, ask];
        let call = Call {
            stage: "evolution_strategy",
            model,
            temperature: self.cfg.temperature_evolution,
            max_tokens: self.cfg.max_tokens_text,
            constrained: false,
        };
        let r = self.chat(ctx, call, &messages)?;
        let strategy = clip(r.text.trim(), 600);
        messages.push(Message::assistant(strategy.clone()));
        messages.push(Message::user(self.render("evolution_arch", vars)?));
        let p = self.ask_arch(ctx, Stage::Evolution, messages, Some(current.arch.clone()))?;
        self.state.pending = Some(Pending::Evolution {
            strategy,
            parent_score: current.score,
        });
        Ok(p)
    }

    pub(super) fn inspire(&mut self, ctx: &mut Context<'_>) -> Result<Proposal, StrategyError> {
        let mut ranked = self.state.pool.clone();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
        ranked.truncate(self.cfg.top_k);
        let picks = ctx.rng.sample_indices(ranked.len(), self.cfg.sample);
        let samples: Vec<PoolEntry> = picks
            .iter()
            .filter_map(|&i| ranked.get(i).cloned())
            .collect();
        let vars =
            json!({"samples": samples.iter().map(|s| self.entry_ctx(s)).collect::<Vec<_>>()});
        let system = Message::system(self.render("system", vars.clone())?);
        let ask = Message::user(self.render("inspiration_patterns", vars.clone())?);
        let model = self.models.inspiration.clone();
        let mut messages = vec![system, ask];
        let call = Call {
            stage: "inspiration_patterns",
            model: model.clone(),
            temperature: self.cfg.temperature_inspiration,
            max_tokens: self.cfg.max_tokens_text,
            constrained: false,
        };
        let r = self.chat(ctx, call, &messages)?;
        let evidence: Vec<String> = samples.iter().map(|s| s.id.clone()).collect();
        let mut ids = Vec::new();
        for text in split_patterns(&r.text, 3) {
            self.state.insight_seq += 1;
            let insight = Insight {
                id: format!("{}-i{:03}", self.session, self.state.insight_seq),
                space: self.space,
                text,
                evidence: evidence.clone(),
                status: InsightStatus::Active,
                contradicted_by: Vec::new(),
                provenance: Provenance {
                    source: "session".into(),
                    session: Some(self.session.clone()),
                    llm: Some(model.name()),
                    prompt_template: Some(format!(
                        "inspiration_patterns ({})",
                        self.prompts
                            .origin("inspiration_patterns")
                            .unwrap_or("built-in")
                    )),
                    strategy: Some("seki".into()),
                    ..Default::default()
                },
                created: now_rfc3339(),
            };
            self.events.push(AgentEvent::Insight {
                id: insight.id.clone(),
                text: insight.text.clone(),
                evidence: insight.evidence.clone(),
            });
            ids.push(insight.id.clone());
            self.outbox.push(insight.clone());
            self.state.insights.push(insight);
        }
        messages.push(Message::assistant(clip(r.text.trim(), 900)));
        messages.push(Message::user(self.render("inspiration_arch", vars)?));
        let parent = samples.first().map(|s| s.arch.clone());
        let p = self.ask_arch(ctx, Stage::Inspiration, messages, parent)?;
        self.state.pending = Some(Pending::Inspiration { insights: ids });
        Ok(p)
    }

    pub(super) fn next_stage(&self) -> Stage {
        let round = self.cfg.evolution_iterations + self.cfg.inspiration_iterations;
        let pos = self.state.iterations % round.max(1);
        let enough = self.state.pool.len() >= self.cfg.sample.min(self.cfg.top_k);
        if (pos >= self.cfg.evolution_iterations && enough) || self.cfg.evolution_iterations == 0 {
            Stage::Inspiration
        } else {
            Stage::Evolution
        }
    }
}
