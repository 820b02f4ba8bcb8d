//! A backend that answers from recorded replies, in order, without calling any
//! model: how sessions are replayed and how tests pin the agent exactly.

use super::{ChatModel, ChatOptions, ChatResponse, LlmError, Message};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// One recorded exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// The prompt's last message, to check the replay stays in step
    /// (`None`: not checked).
    #[serde(default)]
    pub prompt: Option<String>,
    /// The reply.
    pub response: ChatResponse,
}

/// Replays recorded replies in order.
#[derive(Debug)]
pub struct ReplayModel {
    name: String,
    replies: Mutex<std::collections::VecDeque<Recorded>>,
    strict: bool,
}

impl ReplayModel {
    /// Replay `replies`; with `strict`, each prompt must equal the recorded one.
    pub fn new(name: impl Into<String>, replies: Vec<Recorded>, strict: bool) -> Self {
        ReplayModel {
            name: name.into(),
            replies: Mutex::new(replies.into()),
            strict,
        }
    }

    /// Replies not yet used.
    pub fn remaining(&self) -> usize {
        self.replies.lock().map(|q| q.len()).unwrap_or(0)
    }
}

#[async_trait::async_trait]
impl ChatModel for ReplayModel {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn chat(
        &self,
        messages: &[Message],
        _options: &ChatOptions,
    ) -> Result<ChatResponse, LlmError> {
        let mut q = self.replies.lock().map_err(|_| {
            LlmError::Replay("the recording is poisoned by an earlier panic".into())
        })?;
        let next = q
            .pop_front()
            .ok_or_else(|| LlmError::Replay("the recording has no more replies".into()))?;
        if self.strict {
            if let (Some(want), Some(got)) = (&next.prompt, messages.last()) {
                if *want != got.content {
                    return Err(LlmError::Replay(format!(
                        "the prompt differs from the recorded one (recorded {} chars, now {} chars); the session no longer matches its recording",
                        want.len(),
                        got.content.len()
                    )));
                }
            }
        }
        Ok(next.response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{FinishReason, Usage};

    fn resp(t: &str) -> ChatResponse {
        ChatResponse {
            text: t.into(),
            usage: Usage {
                prompt_tokens: 3,
                completion_tokens: 1,
                ..Default::default()
            },
            latency_seconds: 0.0,
            finish: FinishReason::Stop,
            model: "m".into(),
            cost_usd: None,
        }
    }

    #[tokio::test]
    async fn replays_in_order_and_checks_prompts() {
        let m = ReplayModel::new(
            "replay",
            vec![
                Recorded {
                    prompt: Some("a".into()),
                    response: resp("one"),
                },
                Recorded {
                    prompt: Some("b".into()),
                    response: resp("two"),
                },
            ],
            true,
        );
        let o = ChatOptions::default();
        assert_eq!(m.chat(&[Message::user("a")], &o).await.unwrap().text, "one");
        assert!(m.chat(&[Message::user("zzz")], &o).await.is_err());
        assert!(m
            .chat(&[Message::user("a")], &o)
            .await
            .unwrap_err()
            .to_string()
            .contains("no more"));
    }
}
