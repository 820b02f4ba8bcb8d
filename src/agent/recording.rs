//! Recorded LLM replies: read from a session's journal (to replay it) or from
//! a file of replies (to drive the agent exactly in tests).

use super::events::AgentEvent;
use crate::llm::{ChatResponse, FinishReason, Recorded, Usage};
use crate::session::Event;
use crate::store::{read_jsonl, StoreError};
use std::path::Path;

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Line {
    Full(Recorded),
    Short { text: String },
}

/// Read a recording: JSON Lines, each a full `{"prompt": ..., "response":
/// {...}}` record or just `{"text": "..."}`.
pub fn load_recording(path: &Path) -> Result<Vec<Recorded>, StoreError> {
    let (rows, _) = read_jsonl::<Line>(path, false, |_| Ok(()))?;
    Ok(rows
        .into_iter()
        .map(|(_, l)| match l {
            Line::Full(r) => r,
            Line::Short { text } => Recorded {
                prompt: None,
                response: ChatResponse {
                    text,
                    usage: Usage::default(),
                    latency_seconds: 0.0,
                    finish: FinishReason::Stop,
                    model: "recording".into(),
                    cost_usd: None,
                },
            },
        })
        .collect())
}

/// The LLM exchanges a session journalled, in order.
pub fn recording_from_journal(events: &[Event]) -> Vec<Recorded> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Strategy { detail } => match AgentEvent::from_detail(detail)? {
                AgentEvent::Llm {
                    messages, response, ..
                } => Some(Recorded {
                    prompt: messages.last().map(|m| m.content.clone()),
                    response,
                }),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// How many LLM exchanges a resumed session has already used: those
/// journalled before its last evaluation, submission or duplicate (the ones after it
/// belong to a proposal the kill interrupted, which the resumed session makes again).
pub fn used_before_resume(events: &[Event]) -> usize {
    let last_state = events
        .iter()
        .rposition(|e| {
            matches!(
                e,
                Event::Evaluation(_) | Event::Submitted(_) | Event::Duplicate { .. }
            )
        })
        .unwrap_or(0);
    events[..last_state]
        .iter()
        .filter(|e| {
            matches!(e, Event::Strategy { detail }
                if matches!(AgentEvent::from_detail(detail), Some(AgentEvent::Llm { .. })))
        })
        .count()
}

/// The strategy state a session started from.
pub fn initial_state(events: &[Event]) -> serde_json::Value {
    match events.first() {
        Some(Event::Start { initial_state, .. }) => initial_state.clone(),
        _ => serde_json::Value::Null,
    }
}
