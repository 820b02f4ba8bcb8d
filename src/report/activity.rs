//! What a session's strategy did besides evaluating, read back from the
//! journal's `strategy` and `duplicate` events: LLM calls with their tokens,
//! seconds and cost, how replies parsed, the replies it could not use, the
//! insights it distilled, and the proposals skipped as duplicates.

use crate::record::{AgentEvent, Event, ParseOutcome};

/// LLM use of one prompt stage (`evolution_strategy`, `inspiration_arch`, ...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LlmStage {
    /// The stage.
    pub stage: String,
    /// Calls.
    pub calls: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Seconds spent waiting for replies.
    pub seconds: f64,
    /// Cost in US dollars (0 when the backend has no price).
    pub cost_usd: f64,
}

/// A reply the strategy could not use as it was, or a fallback.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// Evaluations done when it happened (it concerns evaluation `after + 1`).
    pub after: usize,
    /// The prompt stage.
    pub stage: String,
    /// `invalid`, `duplicate` or `fallback`.
    pub outcome: String,
    /// The parse error or fallback reason, or the duplicate architecture.
    pub reason: String,
}

/// A proposal that repeated an evaluated architecture and was not evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct Duplicate {
    /// Evaluations done when it was proposed.
    pub after: usize,
    /// How the strategy made it.
    pub origin: String,
    /// Its canonical hash.
    pub hash: String,
    /// The evaluation that first evaluated it.
    pub of: usize,
}

/// Everything [`Activity::observe`] gathered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Activity {
    /// LLM use per stage, in order of first use.
    pub llm: Vec<LlmStage>,
    /// Reply parse outcomes (`parsed`, `repaired`, `invalid`, `duplicate`)
    /// and `fallback`, with their counts, in order of first occurrence.
    pub outcomes: Vec<(String, u64)>,
    /// Unusable replies and fallbacks.
    pub issues: Vec<Issue>,
    /// Proposals skipped as duplicates.
    pub duplicates: Vec<Duplicate>,
    /// The LLM models used.
    pub models: Vec<String>,
}

fn bump(counts: &mut Vec<(String, u64)>, key: &str) {
    match counts.iter_mut().find(|(k, _)| k == key) {
        Some((_, n)) => *n += 1,
        None => counts.push((key.to_string(), 1)),
    }
}

impl Activity {
    /// Take one journal event into account; `after` is the number of
    /// evaluations journalled before it.
    pub fn observe(&mut self, event: &Event, after: usize) {
        match event {
            Event::Strategy { detail } => self.strategy(detail, after),
            Event::Duplicate { proposal, of, .. } => self.duplicates.push(Duplicate {
                after,
                origin: proposal.counted_as().to_string(),
                hash: proposal.hash.clone(),
                of: *of,
            }),
            _ => {}
        }
    }

    fn strategy(&mut self, event: &AgentEvent, after: usize) {
        match event.clone() {
            AgentEvent::Llm {
                stage,
                model,
                response: r,
                ..
            } => {
                let i = match self.llm.iter().position(|s| s.stage == stage) {
                    Some(i) => i,
                    None => {
                        self.llm.push(LlmStage {
                            stage,
                            ..LlmStage::default()
                        });
                        self.llm.len() - 1
                    }
                };
                if let Some(s) = self.llm.get_mut(i) {
                    s.calls += 1;
                    s.prompt_tokens += r.usage.prompt_tokens;
                    s.completion_tokens += r.usage.completion_tokens;
                    s.seconds += r.latency_seconds;
                    s.cost_usd += r.cost_usd.unwrap_or(0.0);
                }
                let model = if r.model.is_empty() || r.model == model {
                    model
                } else {
                    format!("{model} ({})", r.model)
                };
                if !model.is_empty() && !self.models.contains(&model) {
                    self.models.push(model);
                }
            }
            AgentEvent::Parse {
                stage,
                outcome,
                arch,
                error,
                ..
            } => {
                let name = match outcome {
                    ParseOutcome::Parsed => "parsed",
                    ParseOutcome::Repaired => "repaired",
                    ParseOutcome::Duplicate => "duplicate",
                    ParseOutcome::OverBudget => "over budget",
                    ParseOutcome::Invalid => "invalid",
                };
                bump(&mut self.outcomes, name);
                let reason = match outcome {
                    ParseOutcome::Invalid => error.unwrap_or_default(),
                    ParseOutcome::Duplicate => format!("repeats {}", arch.unwrap_or_default()),
                    ParseOutcome::OverBudget => format!(
                        "{}: {}",
                        arch.unwrap_or_default(),
                        error.unwrap_or_default()
                    ),
                    ParseOutcome::Parsed | ParseOutcome::Repaired => return,
                };
                self.issues.push(Issue {
                    after,
                    stage,
                    outcome: name.into(),
                    reason,
                });
            }
            AgentEvent::Fallback { stage, reason, .. } => {
                bump(&mut self.outcomes, "fallback");
                self.issues.push(Issue {
                    after,
                    stage,
                    outcome: "fallback".into(),
                    reason,
                });
            }
            AgentEvent::Insight { .. } | AgentEvent::Screen { .. } => {}
        }
    }

    /// All stages together.
    pub fn total(&self) -> LlmStage {
        let mut t = LlmStage {
            stage: "total".into(),
            ..LlmStage::default()
        };
        for s in &self.llm {
            t.calls += s.calls;
            t.prompt_tokens += s.prompt_tokens;
            t.completion_tokens += s.completion_tokens;
            t.seconds += s.seconds;
            t.cost_usd += s.cost_usd;
        }
        t
    }

    /// The issues grouped by (outcome, reason), most frequent first.
    pub fn issue_groups(&self) -> Vec<(String, String, usize)> {
        let mut groups: Vec<(String, String, usize)> = Vec::new();
        for i in &self.issues {
            match groups
                .iter_mut()
                .find(|(o, r, _)| *o == i.outcome && *r == i.reason)
            {
                Some(g) => g.2 += 1,
                None => groups.push((i.outcome.clone(), i.reason.clone(), 1)),
            }
        }
        groups.sort_by_key(|g| std::cmp::Reverse(g.2));
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ChatResponse, FinishReason, Usage};
    use crate::record::CallOptions;

    fn strategy(e: AgentEvent) -> Event {
        Event::Strategy { detail: e }
    }

    fn call(stage: &str, p: u64, c: u64, cost: Option<f64>) -> Event {
        strategy(AgentEvent::Llm {
            stage: stage.into(),
            model: "m".into(),
            messages: Vec::new(),
            options: CallOptions {
                temperature: 0.7,
                max_tokens: 10,
                seed: None,
                constrained: false,
            },
            response: ChatResponse {
                text: "x".into(),
                usage: Usage {
                    prompt_tokens: p,
                    completion_tokens: c,
                    ..Default::default()
                },
                latency_seconds: 0.5,
                finish: FinishReason::Stop,
                model: "m".into(),
                cost_usd: cost,
            },
        })
    }

    #[test]
    fn llm_calls_add_up_per_stage() {
        let mut a = Activity::default();
        a.observe(&call("evolution_arch", 100, 10, Some(0.001)), 1);
        a.observe(&call("evolution_strategy", 50, 5, None), 1);
        a.observe(&call("evolution_arch", 100, 20, Some(0.002)), 2);
        assert_eq!(a.llm.len(), 2);
        assert_eq!(a.llm[0].stage, "evolution_arch");
        assert_eq!(
            (
                a.llm[0].calls,
                a.llm[0].prompt_tokens,
                a.llm[0].completion_tokens
            ),
            (2, 200, 30)
        );
        let t = a.total();
        assert_eq!((t.calls, t.prompt_tokens), (3, 250));
        assert!((t.cost_usd - 0.003).abs() < 1e-12 && (t.seconds - 1.5).abs() < 1e-12);
        assert_eq!(a.models, vec!["m"]);
    }

    #[test]
    fn unusable_replies_and_fallbacks_are_kept_with_their_reasons() {
        let mut a = Activity::default();
        let parse = |outcome, error: Option<&str>| {
            strategy(AgentEvent::Parse {
                stage: "evolution_arch".into(),
                outcome,
                repairs: None,
                arch: Some("x".into()),
                error: error.map(str::to_string),
            })
        };
        for _ in 0..2 {
            a.observe(
                &parse(ParseOutcome::Invalid, Some("unknown op 'conv_7x7'")),
                3,
            );
        }
        a.observe(&parse(ParseOutcome::Parsed, None), 3);
        a.observe(
            &strategy(AgentEvent::Fallback {
                stage: "evolution_arch".into(),
                reason: "unparsable after 2 repairs".into(),
                arch: "y".into(),
            }),
            3,
        );
        assert_eq!(
            a.outcomes,
            vec![
                ("invalid".to_string(), 2),
                ("parsed".to_string(), 1),
                ("fallback".to_string(), 1)
            ]
        );
        assert_eq!(a.issues.len(), 3);
        let g = a.issue_groups();
        assert_eq!(g[0], ("invalid".into(), "unknown op 'conv_7x7'".into(), 2));
        assert_eq!(g[1].0, "fallback");
    }
}
