//! What a session's strategy did besides evaluating, read back from the
//! journal's `strategy` and `duplicate` events: LLM calls with their tokens,
//! seconds and cost, how replies parsed, the replies it could not use, the
//! insights it distilled, and the proposals skipped as duplicates.

use crate::session::Event;
use serde_json::Value;

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

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
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
            Event::Duplicate {
                origin, hash, of, ..
            } => self.duplicates.push(Duplicate {
                after,
                origin: origin.clone(),
                hash: hash.clone(),
                of: *of,
            }),
            _ => {}
        }
    }

    fn strategy(&mut self, d: &Value, after: usize) {
        let stage = text(&d["stage"]);
        match d["kind"].as_str() {
            Some("llm") => {
                let r = &d["response"];
                let i = match self.llm.iter().position(|s| s.stage == stage) {
                    Some(i) => i,
                    None => {
                        self.llm.push(LlmStage {
                            stage: stage.clone(),
                            ..LlmStage::default()
                        });
                        self.llm.len() - 1
                    }
                };
                if let Some(s) = self.llm.get_mut(i) {
                    s.calls += 1;
                    s.prompt_tokens += r["usage"]["prompt_tokens"].as_u64().unwrap_or(0);
                    s.completion_tokens += r["usage"]["completion_tokens"].as_u64().unwrap_or(0);
                    s.seconds += r["latency_seconds"].as_f64().unwrap_or(0.0);
                    s.cost_usd += r["cost_usd"].as_f64().unwrap_or(0.0);
                }
                let model = match (d["model"].as_str(), r["model"].as_str()) {
                    (Some(a), Some(b)) if a != b => format!("{a} ({b})"),
                    (Some(a), _) => a.to_string(),
                    (None, Some(b)) => b.to_string(),
                    (None, None) => String::new(),
                };
                if !model.is_empty() && !self.models.contains(&model) {
                    self.models.push(model);
                }
            }
            Some("parse") => {
                let outcome = text(&d["outcome"]);
                bump(&mut self.outcomes, &outcome);
                let reason = match outcome.as_str() {
                    "invalid" => text(&d["error"]),
                    "duplicate" => format!("repeats {}", text(&d["arch"])),
                    _ => return,
                };
                self.issues.push(Issue {
                    after,
                    stage,
                    outcome,
                    reason,
                });
            }
            Some("fallback") => {
                bump(&mut self.outcomes, "fallback");
                self.issues.push(Issue {
                    after,
                    stage,
                    outcome: "fallback".into(),
                    reason: text(&d["reason"]),
                });
            }
            _ => {}
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
    use serde_json::json;

    fn strategy(detail: Value) -> Event {
        Event::Strategy { detail }
    }

    #[test]
    fn llm_calls_add_up_per_stage() {
        let mut a = Activity::default();
        let call = |stage: &str, p: u64, c: u64, cost: Value| {
            strategy(
                json!({"kind": "llm", "stage": stage, "model": "m", "response": {
                "usage": {"prompt_tokens": p, "completion_tokens": c},
                "latency_seconds": 0.5, "cost_usd": cost, "model": "m"}}),
            )
        };
        a.observe(&call("evolution_arch", 100, 10, json!(0.001)), 1);
        a.observe(&call("evolution_strategy", 50, 5, Value::Null), 1);
        a.observe(&call("evolution_arch", 100, 20, json!(0.002)), 2);
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
        for _ in 0..2 {
            a.observe(
                &strategy(json!({"kind": "parse", "stage": "evolution_arch", "outcome": "invalid", "error": "unknown op 'conv_7x7'"})),
                3,
            );
        }
        a.observe(
            &strategy(json!({"kind": "parse", "stage": "evolution_arch", "outcome": "parsed", "arch": "x"})),
            3,
        );
        a.observe(
            &strategy(json!({"kind": "fallback", "stage": "evolution_arch", "reason": "unparsable after 2 repairs"})),
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
