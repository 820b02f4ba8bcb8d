//! Recorded LLM replies: read from a session's journal (to replay it) or from
//! a file of replies (to drive the agent exactly in tests).

use crate::llm::{ChatResponse, FinishReason, Recorded, Usage};
use crate::record::{AgentEvent, Event, StrategyState};
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

/// The journal's LLM exchanges that count, in order: those of proposals a
/// step (an evaluation, a submission or a duplicate) followed. The exchanges
/// of a proposal a kill interrupted are dropped: the resumed session made
/// that proposal again, with the same replies, journalled after its
/// `resume` line (or will make it, when they are the journal's last).
fn counted_exchanges(events: &[Event]) -> Vec<Recorded> {
    let mut kept = Vec::new();
    let mut open = Vec::new();
    for e in events {
        match e {
            Event::Strategy {
                detail:
                    AgentEvent::Llm {
                        messages, response, ..
                    },
            } => open.push(Recorded {
                prompt: messages.last().map(|m| m.content.clone()),
                response: response.clone(),
            }),
            Event::Evaluation(_)
            | Event::Submitted(_)
            | Event::Duplicate { .. }
            | Event::Refused { .. } => {
                kept.append(&mut open);
            }
            Event::Resume { .. } => open.clear(),
            _ => {}
        }
    }
    kept.append(&mut open);
    kept
}

/// The LLM exchanges a session journalled, in order (without those of a
/// proposal a kill interrupted and the resumed session made again).
pub fn recording_from_journal(events: &[Event]) -> Vec<Recorded> {
    counted_exchanges(events)
}

/// How many LLM exchanges a resumed session has already used: those of the
/// proposals a step followed (the ones after the last step belong to a
/// proposal the kill interrupted, which the resumed session makes again; so
/// do those before an earlier `resume` line with no step between).
pub fn used_before_resume(events: &[Event]) -> usize {
    let last_state = events
        .iter()
        .rposition(|e| {
            matches!(
                e,
                Event::Evaluation(_)
                    | Event::Submitted(_)
                    | Event::Duplicate { .. }
                    | Event::Refused { .. }
            )
        })
        .map_or(0, |i| i + 1);
    counted_exchanges(&events[..last_state]).len()
}

/// The strategy state a session started from.
pub fn initial_state(events: &[Event]) -> StrategyState {
    match events.first() {
        Some(Event::Start { initial_state, .. }) => initial_state.clone(),
        _ => StrategyState::none(),
    }
}
