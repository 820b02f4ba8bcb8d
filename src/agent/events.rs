//! What the agent journals while it proposes: LLM exchanges, how each reply
//! was read, fallbacks and new insights. One serde enum, so the journal's
//! `strategy` lines of a seki session have a typed form that replays,
//! resumes and reports read back.

use crate::llm::{ChatResponse, Message};
use serde::{Deserialize, Serialize};

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

impl AgentEvent {
    /// The event a journal `strategy` line holds, if it is one of the agent's.
    pub fn from_detail(detail: &serde_json::Value) -> Option<AgentEvent> {
        serde_json::from_value(detail.clone()).ok()
    }

    /// The journal form.
    pub fn to_detail(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
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
        let d = e.to_detail();
        assert_eq!(d["kind"], "parse");
        assert_eq!(d["outcome"], "repaired");
        assert_eq!(AgentEvent::from_detail(&d), Some(e));
        assert_eq!(
            AgentEvent::from_detail(&serde_json::json!({"kind": "other"})),
            None
        );
    }
}
