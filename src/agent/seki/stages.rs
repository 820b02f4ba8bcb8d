//! The two SEKI stages: self-evolution (a refinement strategy, then an
//! architecture) and knowledge inspiration (shared patterns of sampled top
//! architectures, kept as insights, then an architecture).

use super::*;

impl SekiAgent {
    pub(super) fn evolve(
        &mut self,
        ctx: &mut Context<'_>,
        current: PoolEntry,
        line: usize,
    ) -> Result<(Proposal, Pending), StrategyError> {
        let history = self.recent_history(line);
        // In a Pareto search, a direction along the front: cheaper at the
        // same accuracy, or more accurate at the same cost.
        // Nothing is cheaper than the space's cheapest cell: from there,
        // only more accurate.
        let direction = (self.objectives.len() >= 2).then(|| {
            if ctx.rng.below(2) == 0 && !self.is_cheapest(&current) {
                "cheaper"
            } else {
                "more accurate"
            }
        });
        let vars = json!({
            "current": self.entry_ctx(&current),
            "history": history,
            "direction": direction,
        });
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
        // Asked for a cheaper cell, the model can only write one: replies
        // are decoded under the parent's cost (the budget's pattern).
        let pattern = direction
            .filter(|d| *d == "cheaper")
            .and_then(|_| self.cheaper_pattern(&current));
        let p = self.ask_arch(
            ctx,
            Stage::Evolution,
            messages,
            Some(current.arch.clone()),
            pattern,
        )?;
        Ok((
            p,
            Pending::Evolution {
                strategy,
                parent_score: current.score,
                parent_se: current.se,
            },
        ))
    }

    pub(super) fn inspire(
        &mut self,
        ctx: &mut Context<'_>,
    ) -> Result<(Proposal, Pending), StrategyError> {
        // The top-k of the session's own protocol; other protocols' results
        // are shown apart, as labelled context.
        let mut ranked = self.comparable();
        ranked.truncate(self.cfg.top_k);
        let picks = ctx.rng.sample_indices(ranked.len(), self.cfg.sample);
        let samples: Vec<PoolEntry> = picks
            .iter()
            .filter_map(|&i| ranked.get(i).cloned())
            .collect();
        let context: Vec<Value> = self
            .context_entries(self.cfg.sample)
            .iter()
            .map(|s| self.entry_ctx(s))
            .collect();
        let vars = json!({
            "samples": samples.iter().map(|s| self.entry_ctx(s)).collect::<Vec<_>>(),
            "places": claim::places(self.space),
            "context": context,
        });
        let system = Message::system(self.render("system", vars.clone())?);
        let ask = Message::user(self.render("inspiration_patterns", vars.clone())?);
        let mut messages = vec![system, ask];
        let evidence: Vec<String> = samples.iter().map(|s| s.id.clone()).collect();
        let (text, ids, stated) = self.ask_claims(
            ctx,
            Stage::Inspiration,
            "inspiration_patterns",
            &messages,
            claim::schema(self.space, 3),
            3,
            &evidence,
        )?;
        messages.push(Message::assistant(if stated.is_empty() {
            clip(text.trim(), 900)
        } else {
            stated.join("\n")
        }));
        messages.push(Message::user(self.render("inspiration_arch", vars)?));
        let parent = samples.first().map(|s| s.arch.clone());
        let p = self.ask_arch(ctx, Stage::Inspiration, messages, parent, None)?;
        Ok((p, Pending::Inspiration { insights: ids }))
    }

    /// The stage of the next iteration. A round is λ self-evolutions, γ
    /// knowledge inspirations, then the ranked mutations and crossovers the
    /// settings ask for; inspiration and crossover wait until the pool has
    /// enough architectures to sample (self-evolution runs instead).
    pub(super) fn next_stage(&self) -> Stage {
        let c = &self.cfg;
        let round = c.evolution_iterations
            + c.inspiration_iterations
            + c.ranked_iterations
            + c.crossover_iterations
            + c.pruned_iterations;
        if round == 0 {
            return Stage::Evolution;
        }
        let pos = self.state.iterations % round;
        let comparable = self
            .state
            .known
            .pool
            .iter()
            .filter(|e| !e.other_protocol)
            .count();
        let enough = comparable >= c.sample.min(c.top_k).max(2);
        let stage = if pos < c.evolution_iterations {
            Stage::Evolution
        } else if pos < c.evolution_iterations + c.inspiration_iterations {
            Stage::Inspiration
        } else if pos < c.evolution_iterations + c.inspiration_iterations + c.ranked_iterations {
            Stage::Ranked
        } else if pos
            < c.evolution_iterations
                + c.inspiration_iterations
                + c.ranked_iterations
                + c.crossover_iterations
        {
            Stage::Crossover
        } else {
            Stage::Pruned
        };
        match stage {
            Stage::Inspiration | Stage::Crossover | Stage::Pruned if !enough => Stage::Evolution,
            s => s,
        }
    }

    /// LLM-ranked mutation: list distinct unseen single-step mutations of
    /// the current architecture with letters; the constrained reply is one
    /// letter (one prefill, a few tokens).
    pub(super) fn ranked(
        &mut self,
        ctx: &mut Context<'_>,
        current: PoolEntry,
        line: usize,
    ) -> Result<(Proposal, Pending), StrategyError> {
        let parent = self.space.parse(&current.arch).ok();
        let mut cands: Vec<Arch> = Vec::new();
        if let Some(p) = &parent {
            let want = self.cfg.ranked_candidates.clamp(2, 26);
            for _ in 0..want * 20 {
                let m = p.mutate(ctx.rng);
                if ctx.admits(&m) && !cands.iter().any(|c| c.hash() == m.hash()) {
                    cands.push(m);
                    if cands.len() == want {
                        break;
                    }
                }
            }
        }
        if cands.len() < 2 {
            // Nothing to rank: self-evolution instead.
            return self.evolve(ctx, current, line);
        }
        let letters: Vec<String> = (0..cands.len())
            .map(|i| char::from(b'A' + i as u8).to_string())
            .collect();
        let listed: Vec<Value> = cands
            .iter()
            .zip(&letters)
            .map(|(c, l)| {
                json!({
                    "letter": l,
                    "arch": notation::to_llm(c).to_string(),
                    "change": parent.as_ref().map(|p| notation::describe_change(p, c)).unwrap_or_default(),
                })
            })
            .collect();
        let history = self.recent_history(line);
        let vars =
            json!({"current": self.entry_ctx(&current), "history": history, "candidates": listed});
        let messages = vec![
            Message::system(self.render("system", vars.clone())?),
            Message::user(self.render("ranked_mutation", vars)?),
        ];
        let schema = json!({"type": "string", "enum": letters});
        let call = Call {
            stage: "ranked_mutation",
            model: self.models.evolution.clone(),
            temperature: self.cfg.temperature_evolution,
            max_tokens: 8,
            constrained: true,
        };
        let resp = self.chat_with(ctx, call, &messages, Some(Constraint::JsonSchema(schema)))?;
        let picked = serde_json::from_str::<String>(resp.text.trim())
            .ok()
            .or_else(|| {
                let t = resp.text.trim().trim_matches('"').to_string();
                (t.len() == 1).then_some(t)
            })
            .and_then(|l| letters.iter().position(|x| *x == l));
        let (idx, how) = match picked {
            Some(i) => {
                self.state.counters.parsed_first_try += 1;
                (i, "picked")
            }
            None => {
                self.state.counters.fell_back += 1;
                (ctx.rng.below(cands.len()), "unreadable reply; random pick")
            }
        };
        let letter = letters.get(idx).cloned().unwrap_or_default();
        let arch = cands.swap_remove(idx);
        let change = parent
            .as_ref()
            .map(|p| notation::describe_change(p, &arch))
            .unwrap_or_default();
        let pending = Pending::Ranked {
            choice: format!("ranked choice {letter} of {}: {change}", letters.len()),
            parent_score: current.score,
            parent_se: current.se,
        };
        let mut p = Proposal::new(
            arch,
            format!("ranked mutation ({how} {letter} of {})", letters.len()),
        )
        .by(Stage::Ranked.operator());
        p.parent = parent.map(|a| a.hash());
        Ok((p, pending))
    }

    /// Crossover of two architectures sampled from the top-k (no LLM).
    pub(super) fn crossover(
        &mut self,
        ctx: &mut Context<'_>,
        current: PoolEntry,
    ) -> Result<(Proposal, Pending), StrategyError> {
        let mut ranked = self.comparable();
        ranked.truncate(self.cfg.top_k.max(2));
        let archs: Vec<Arch> = ranked
            .iter()
            .filter_map(|e| self.space.parse(&e.arch).ok())
            .collect();
        // Pairs of the top-k in random order; the first pair with an
        // unevaluated child gives it.
        let pairs: Vec<(usize, usize)> = (0..archs.len())
            .flat_map(|i| (i + 1..archs.len()).map(move |j| (i, j)))
            .collect();
        let order = ctx.rng.sample_indices(pairs.len(), pairs.len());
        let pairs: Vec<(usize, usize)> = order
            .iter()
            .filter_map(|&k| pairs.get(k).copied())
            .collect();
        // With a screen, up to `agent.candidates` distinct children, the
        // best by the screen kept.
        let want = self.screened_children();
        let mut found: Vec<Proposal> = Vec::new();
        'pairs: for (i, j) in pairs {
            let (a, b) = (&archs[i], &archs[j]);
            for _ in 0..10 {
                if let Some(child) = a.crossover(b, ctx.rng) {
                    if ctx.admits(&child) && !found.iter().any(|p| p.arch.hash() == child.hash()) {
                        found.push(
                            Proposal::from_parent(
                                child,
                                format!("crossover of {} and {}", a.hash(), b.hash()),
                                a,
                            )
                            .by(Stage::Crossover.operator()),
                        );
                        if found.len() >= want {
                            break 'pairs;
                        }
                    }
                }
            }
        }
        if !found.is_empty() {
            let p = self.screen_pick(Stage::Crossover.name(), found)?;
            return Ok((p, Pending::Crossover));
        }
        // The parents' children were all evaluated: a mutation of the current.
        let (arch, parent) = self.fallback(ctx, Some(&current.arch));
        let mut p = Proposal::new(arch, "crossover (fallback: mutation)").by("fallback-mutation");
        p.parent = parent;
        Ok((p, Pending::Crossover))
    }
}

impl SekiAgent {
    /// The checkable claims of a patterns reply (at most `max`) kept as
    /// insights citing `evidence`; the rejected ones counted and journalled.
    /// Returns the new insights' ids and the claims in words.
    pub(super) fn keep_claims(
        &mut self,
        step: &str,
        reply: &str,
        max: usize,
        evidence: &[String],
        model: &str,
    ) -> (Vec<String>, Vec<String>) {
        let (claims, rejected) = read_claims(self.space, reply, max);
        for e in &rejected {
            self.state.counters.insights_rejected += 1;
            self.events.push(AgentEvent::Parse {
                stage: step.into(),
                outcome: ParseOutcome::Invalid,
                repairs: None,
                arch: None,
                error: Some(e.clone()),
            });
        }
        let stated: Vec<String> = claims
            .iter()
            .map(|(c, why)| format!("- {}: {why}", c.text()))
            .collect();
        let mut ids = Vec::new();
        for (claim, why) in claims {
            // One insight per claim: a claim already held gains this
            // evidence instead of a copy of itself.
            let space = self.space;
            if let Some(held) = self
                .state
                .known
                .insights
                .iter_mut()
                .find(|i| i.space == space && i.claim.as_ref() == Some(&claim))
            {
                for e in evidence {
                    if !held.evidence.contains(e) {
                        held.evidence.push(e.clone());
                    }
                }
                self.events.push(AgentEvent::Insight {
                    id: held.id.clone(),
                    text: held.text.clone(),
                    evidence: held.evidence.clone(),
                });
                if !ids.contains(&held.id) {
                    ids.push(held.id.clone());
                }
                self.outbox.push(held.clone());
                continue;
            }
            let text = if why.is_empty() {
                claim.text()
            } else {
                format!("{}: {why}", claim.text())
            };
            self.state.insight_seq += 1;
            let insight = Insight {
                id: format!("{}-i{:03}", self.session, self.state.insight_seq),
                space: self.space,
                text,
                evidence: evidence.to_vec(),
                status: InsightStatus::Active,
                contradicted_by: Vec::new(),
                claim: Some(claim),
                stats: None,
                provenance: Provenance {
                    source: "session".into(),
                    session: Some(self.session.clone()),
                    llm: Some(model.to_string()),
                    prompt_template: Some(format!(
                        "{step} ({})",
                        self.prompts.origin(step).unwrap_or("built-in")
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
            self.state.known.insights.push(insight);
        }
        (ids, stated)
    }
}

/// The checkable claims of a patterns reply (a JSON object with a
/// `patterns` list, possibly inside other text), and why each other stated
/// pattern was rejected.
fn read_claims(space: Space, text: &str, max: usize) -> (Vec<(Claim, String)>, Vec<String>) {
    let json = match (text.find('{'), text.rfind('}')) {
        (Some(a), Some(b)) if a < b => text.get(a..=b),
        _ => None,
    };
    let Some(v) = json.and_then(|j| serde_json::from_str::<Value>(j).ok()) else {
        return (
            Vec::new(),
            vec![format!(
                "no JSON patterns in the reply: {}",
                clip(text.trim(), 120)
            )],
        );
    };
    let Some(list) = v.get("patterns").and_then(Value::as_array) else {
        return (
            Vec::new(),
            vec!["the reply has no \"patterns\" list".into()],
        );
    };
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    for (i, p) in list.iter().take(max).enumerate() {
        match Claim::parse(space, p, i + 1) {
            Ok((c, why)) if !ok.iter().any(|(x, _): &(Claim, String)| *x == c) => {
                ok.push((c, clip(&why, 100)))
            }
            Ok(_) => {}
            Err(e) => bad.push(e.to_string()),
        }
    }
    (ok, bad)
}
