//! Language models behind one provider-agnostic interface.
//!
//! A backend implements [`ChatModel`]: messages in, a [`ChatResponse`] out
//! (text, token usage, latency, why generation stopped). Options carry the
//! sampling settings and an optional output [`Constraint`] (a JSON schema)
//! that backends enforce (grammar-constrained decoding) or pass on (a
//! server's JSON-schema response format, or the schema stated in the prompt).

pub mod blind;
pub mod constrain;
pub mod hub;
pub mod local;
pub mod openai;
pub mod profile;
pub mod replay;
pub mod retry;

pub use local::LocalModel;
pub use openai::OpenaiModel;
pub use profile::{from_profile, LlmConfig, Profile};
pub use replay::{Recorded, ReplayModel};

use serde::{Deserialize, Serialize};

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions.
    System,
    /// The user (here: the agent).
    User,
    /// The model.
    Assistant,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Speaker.
    pub role: Role,
    /// Text.
    pub content: String,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Message {
            role: Role::System,
            content: content.into(),
        }
    }
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }
    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// A constraint on the form of the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Constraint {
    /// The reply must be JSON satisfying this schema.
    JsonSchema(serde_json::Value),
    /// The whole reply must match this regular expression (regex-syntax, as
    /// in the `regex` crate). Local models enforce it while decoding; remote
    /// servers get it as an instruction only (OpenAI's API has no such
    /// response format), and the reply is checked after.
    Regex(String),
}

/// Sampling and output options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatOptions {
    /// Sampling temperature (0: greedy).
    pub temperature: f64,
    /// Nucleus sampling mass.
    pub top_p: f64,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Seed, for backends that honour one.
    pub seed: Option<u64>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Required output form.
    pub constraint: Option<Constraint>,
}

impl Default for ChatOptions {
    fn default() -> Self {
        ChatOptions {
            temperature: 0.7,
            top_p: 0.95,
            max_tokens: 512,
            seed: None,
            stop: Vec::new(),
            constraint: None,
        }
    }
}

/// Tokens used by one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Generated tokens.
    pub completion_tokens: u64,
    /// Prompt tokens whose keys and values came from a cache instead of
    /// being run again (included in `prompt_tokens`): seki's engine's
    /// prefix reuse, or what an OpenAI-compatible server reports
    /// (`prompt_tokens_details.cached_tokens`, DeepSeek's
    /// `prompt_cache_hit_tokens`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cached_prompt_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
        self.cached_prompt_tokens += o.cached_prompt_tokens;
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its reply.
    Stop,
    /// `max_tokens` was reached.
    Length,
    /// A stop sequence was produced.
    StopSequence,
    /// The output constraint was completed.
    ConstraintComplete,
    /// Anything else the backend reported.
    Other(String),
}

/// A model's reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The text.
    pub text: String,
    /// Tokens used.
    pub usage: Usage,
    /// Seconds the call took.
    pub latency_seconds: f64,
    /// Why generation stopped.
    pub finish: FinishReason,
    /// The model that answered.
    pub model: String,
    /// Cost in US dollars, when the profile gives prices.
    #[serde(default)]
    pub cost_usd: Option<f64>,
}

/// An LLM failure.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The server answered with an error status.
    #[error("{backend}: HTTP {status}: {message}")]
    Http {
        /// Backend name.
        backend: String,
        /// Status code.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The call failed after every retry.
    #[error("{backend}: gave up after {attempts} attempts: {last}")]
    Exhausted {
        /// Backend name.
        backend: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: String,
    },
    /// The server kept answering 429 (rate limited) until the retries ran
    /// out. Sessions stop cleanly on it, with the reason, and can be resumed.
    #[error("{backend}: rate limited: still HTTP 429 after {attempts} attempts: {last}")]
    RateLimited {
        /// Backend name.
        backend: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: String,
    },
    /// The reply could not be understood.
    #[error("{backend}: malformed reply: {message}")]
    BadReply {
        /// Backend name.
        backend: String,
        /// What is wrong.
        message: String,
    },
    /// Setup is wrong (missing key, model file, unknown profile, ...).
    #[error("{0}")]
    Setup(String),
    /// A replayed session asked for a reply the recording does not have.
    #[error("replay: {0}")]
    Replay(String),
    /// The local model failed.
    #[error("local model: {0}")]
    Local(String),
}

impl LlmError {
    /// Whether the backend is rate limiting us (a reason to stop and come
    /// back later rather than a failure).
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, LlmError::RateLimited { .. })
    }
}

/// A chat-completion backend.
#[async_trait::async_trait]
pub trait ChatModel: Send + Sync {
    /// The backend and model, for provenance (never includes secrets).
    fn name(&self) -> String;
    /// Complete a conversation.
    async fn chat(
        &self,
        messages: &[Message],
        options: &ChatOptions,
    ) -> Result<ChatResponse, LlmError>;
}
