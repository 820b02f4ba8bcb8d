//! An LLM backend of your own: implement `seki::llm::ChatModel` and anything
//! that takes a model (the agent, `seki llm chat`-style code) can use it.
//!
//! This one needs no model at all: asked for output that follows a JSON
//! schema, it builds the simplest value the schema allows (first enum
//! option, smallest integer, ...); asked for output matching a regular
//! expression (the agent's architecture replies, in the spaces' compact
//! notation), the shortest text it matches; otherwise it echoes the last
//! message.
//! Run it:
//!
//! ```sh
//! cargo run --example custom_llm
//! ```

use seki::llm::constrain::{MatchState, Matcher};
use seki::llm::{
    constrain, ChatModel, ChatOptions, ChatResponse, Constraint, FinishReason, LlmError, Message,
    Usage,
};
use seki::space::notation::{arch_from_json, arch_pattern, arch_schema, parse_compact};
use seki::space::Space;
use serde_json::{json, Value};
use std::time::Instant;

/// A rule-based "model".
struct Simplest;

/// The simplest value a (supported-subset) schema allows.
fn simplest(schema: &Value) -> Value {
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(first) = schema.get("enum").and_then(|e| e.get(0)) {
        return first.clone();
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            let mut out = serde_json::Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, v) in props {
                    out.insert(k.clone(), simplest(v));
                }
            }
            Value::Object(out)
        }
        Some("array") => {
            let prefix: Vec<Value> = schema
                .get("prefixItems")
                .and_then(Value::as_array)
                .map(|p| p.iter().map(simplest).collect())
                .unwrap_or_default();
            let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
            let mut items = prefix;
            if let Some(item) = schema.get("items") {
                while items.len() < min {
                    items.push(simplest(item));
                }
            }
            Value::Array(items)
        }
        Some("integer") => json!(schema.get("minimum").and_then(Value::as_i64).unwrap_or(0)),
        Some("boolean") => json!(false),
        Some("string") => json!(""),
        _ => Value::Null,
    }
}

/// The shortest text a constraint accepts: a breadth-first walk of its
/// automaton over printable ASCII.
fn shortest(m: &Matcher) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    let mut queue = std::collections::VecDeque::from([(m.start(), Vec::<u8>::new())]);
    while let Some((state, text)) = queue.pop_front() {
        if m.is_complete(&state) {
            return String::from_utf8(text).ok();
        }
        for b in b' '..=b'~' {
            let mut next: MatchState = state.clone();
            if m.step_in_place(&mut next, b) && seen.insert(next.clone()) {
                let mut t = text.clone();
                t.push(b);
                queue.push_back((next, t));
            }
        }
    }
    None
}

#[async_trait::async_trait]
impl ChatModel for Simplest {
    fn name(&self) -> String {
        "example:simplest".into()
    }

    async fn chat(
        &self,
        messages: &[Message],
        options: &ChatOptions,
    ) -> Result<ChatResponse, LlmError> {
        let started = Instant::now();
        let text =
            match &options.constraint {
                Some(Constraint::JsonSchema(s)) => simplest(s).to_string(),
                Some(c @ Constraint::Regex(_)) => {
                    let m = Matcher::compile(c).map_err(|e| LlmError::Setup(e.to_string()))?;
                    shortest(&m).ok_or_else(|| LlmError::BadReply {
                        backend: self.name(),
                        message: "the pattern matches nothing".into(),
                    })?
                }
                None => messages.last().map(|m| m.content.clone()).ok_or_else(|| {
                    LlmError::BadReply {
                        backend: self.name(),
                        message: "no messages to answer".into(),
                    }
                })?,
            };
        let words = |s: &str| s.split_whitespace().count() as u64;
        Ok(ChatResponse {
            usage: Usage {
                prompt_tokens: messages.iter().map(|m| words(&m.content)).sum(),
                completion_tokens: words(&text),
                ..Default::default()
            },
            text,
            latency_seconds: started.elapsed().as_secs_f64(),
            finish: FinishReason::Stop,
            model: self.name(),
            cost_usd: None,
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model: Box<dyn ChatModel> = Box::new(Simplest);
    for space in Space::ALL {
        let schema = arch_schema(space);
        let reply = model
            .chat(
                &[Message::user(format!("Propose a {space} architecture."))],
                &ChatOptions {
                    constraint: Some(Constraint::JsonSchema(schema.clone())),
                    ..Default::default()
                },
            )
            .await?;
        let value = constrain::validate(&schema, &reply.text)?;
        let arch = arch_from_json(space, &value)?;
        println!("{space}: {}\n  as text: {}", reply.text, arch.to_text());
        // What the agent asks for: the compact notation, by pattern.
        let reply = model
            .chat(
                &[Message::user(format!("Propose a {space} architecture."))],
                &ChatOptions {
                    constraint: Some(Constraint::Regex(arch_pattern(space, 1))),
                    ..Default::default()
                },
            )
            .await?;
        let arch = parse_compact(space, &reply.text)?;
        println!(
            "{space} (notation): {}\n  as text: {}",
            reply.text,
            arch.to_text()
        );
    }
    let echo = model
        .chat(&[Message::user("hello, backend")], &ChatOptions::default())
        .await?;
    println!(
        "echo: {} ({} words)",
        echo.text, echo.usage.completion_tokens
    );
    Ok(())
}
