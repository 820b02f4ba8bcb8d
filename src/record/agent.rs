//! What the agent journals: the events of its proposals (LLM exchanges, how
//! each reply was read, fallbacks, screens, new insights), and the part of
//! its state that reports read (the architectures it was shown, its
//! insights and their support). The agent owns their meaning; the record
//! names their form, so a renamed field is a compile error in every reader
//! rather than data silently missing from a report.

use crate::knowledge::Insight;
use crate::llm::{ChatResponse, Message};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An architecture the agent knows with its score.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PoolEntry {
    /// Knowledge-base record id (for the session's own: the id its record gets).
    pub id: String,
    /// The architecture in its space's text form.
    pub arch: String,
    /// Its score.
    pub score: f64,
    /// What the score is.
    pub score_label: String,
    /// Parameter count, if known.
    pub params: Option<f64>,
    /// Evaluated in this session.
    pub own: bool,
    /// The standard error of the score, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub se: Option<f64>,
    /// Scored under another evaluation protocol than the session's (e.g. a
    /// published CIFAR-10 test accuracy): shown to the LLM as labelled
    /// context, never ranked together with the session's own scores.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub other_protocol: bool,
    /// The canonical hash of the architecture it was derived from (a
    /// mutation's or refinement's parent), when it has one: claims are
    /// also judged within these lineages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// What the agent knows, as its journalled state holds it: the
/// architectures it can show the LLM, the insights it distilled, and how
/// many later designs supported each insight.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct KnowledgeState {
    /// Architectures with scores (the knowledge base's and the session's own).
    pub pool: Vec<PoolEntry>,
    /// Insights distilled so far.
    pub insights: Vec<Insight>,
    /// For each insight id, the later designs that supported it.
    pub supports: BTreeMap<String, u32>,
}

/// One stage's LLM use.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StageUsage {
    /// Calls made.
    pub calls: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Prompt tokens served from a cache (prefix reuse).
    #[serde(default)]
    pub cached_prompt_tokens: u64,
    /// Cost in US dollars.
    pub cost_usd: f64,
    /// Seconds spent waiting for replies.
    pub seconds: f64,
}

/// The sampling settings of one LLM call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallOptions {
    /// Sampling temperature.
    pub temperature: f64,
    /// Most tokens in the reply.
    pub max_tokens: usize,
    /// Sampling seed, drawn from the session's random stream.
    pub seed: Option<u64>,
    /// Whether decoding was constrained to the space's notation.
    pub constrained: bool,
}

/// How a reply was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParseOutcome {
    /// An architecture, first time.
    Parsed,
    /// An architecture, after repair prompts.
    Repaired,
    /// An architecture evaluated already.
    Duplicate,
    /// An architecture over the session's hard budgets.
    OverBudget,
    /// No architecture could be read.
    Invalid,
}

/// A candidate a screen scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScreenedCandidate {
    /// The architecture in its space's text form.
    pub arch: String,
    /// Its untrained proxy score; absent when the screen could not score it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_score: Option<f64>,
}

/// One thing the agent did while proposing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentEvent {
    /// An LLM exchange.
    Llm {
        /// The call's stage (`evolution_strategy`, `evolution_arch`, ...).
        stage: String,
        /// The model's name.
        model: String,
        /// The messages sent.
        messages: Vec<Message>,
        /// The sampling settings.
        options: CallOptions,
        /// The reply.
        response: ChatResponse,
    },
    /// How a reply was read.
    Parse {
        /// The call's stage.
        stage: String,
        /// The outcome.
        outcome: ParseOutcome,
        /// Repair prompts sent before it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repairs: Option<usize>,
        /// The architecture read, in its space's text form.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        arch: Option<String>,
        /// Why nothing could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The LLM gave nothing usable; a mutation was evaluated instead.
    Fallback {
        /// The call's stage.
        stage: String,
        /// Why.
        reason: String,
        /// The architecture used instead.
        arch: String,
    },
    /// Untrained-network proxy scores chose which of several candidates to
    /// train; the others were dropped. The scores are the screen's, never
    /// shown to the LLM nor mixed with trained scores.
    Screen {
        /// The call's stage (`evolution_arch`, `crossover`, ...).
        stage: String,
        /// What the screen ranks by (e.g. `synflow`).
        screen: String,
        /// The architecture chosen, in its space's text form.
        chosen: String,
        /// Every candidate with its proxy score, in the order proposed.
        candidates: Vec<ScreenedCandidate>,
    },
    /// A new insight from knowledge inspiration.
    Insight {
        /// Its id.
        id: String,
        /// Its text.
        text: String,
        /// The records it was distilled from.
        evidence: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_form_round_trips_and_keeps_its_kind_tag() {
        let e = AgentEvent::Parse {
            stage: "evolution_arch".into(),
            outcome: ParseOutcome::Repaired,
            repairs: Some(1),
            arch: Some("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|".into()),
            error: None,
        };
        let d = serde_json::to_value(&e).unwrap();
        assert_eq!(d["kind"], "parse");
        assert_eq!(d["outcome"], "repaired");
        assert_eq!(serde_json::from_value::<AgentEvent>(d).unwrap(), e);
        assert!(
            serde_json::from_value::<AgentEvent>(serde_json::json!({"kind": "other"})).is_err()
        );
    }
}
