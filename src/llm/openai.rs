//! A backend for any server that speaks the OpenAI chat-completions API
//! (OpenAI, vLLM, llama.cpp's server, Ollama, ...).
//!
//! Requests are built from async-openai's typed request structs and sent
//! with reqwest, so that this module controls timeouts and retries itself:
//! 429, 5xx, connection failures, timeouts and malformed replies are retried
//! with exponential backoff and jitter (honouring `Retry-After`); any other
//! 4xx fails at once with the server's message. Replies are read leniently
//! (only `choices[0].message.content`, `finish_reason`, `usage` and `model`
//! matter), because compatible servers differ in the optional fields.
//!
//! The API key is read from the environment variable the profile names, kept
//! in a [`Secret`] whose `Debug` and `Display` print `<redacted>`, and only
//! ever sent in the `Authorization` header.

use super::retry::{parse_retry_after, Backoff, Failure, Jitter};
use super::{ChatModel, ChatOptions, ChatResponse, Constraint, FinishReason, LlmError, Message};
use super::{Role, Usage};
use crate::duration::secs;
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequest, ResponseFormat, ResponseFormatJsonSchema, StopConfiguration,
};

use std::time::{Duration, Instant};

pub mod settings;

use settings::{JsonMode, OpenaiProfile};

/// A secret string that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(s: String) -> Self {
        Secret(s)
    }
    /// The value, for the one place that sends it.
    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Check a base URL: absolute, `http` or `https`, with a host.
pub fn check_base_url(url: &str) -> Result<reqwest::Url, String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("'{url}' is not a valid URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!(
            "'{url}' must start with http:// or https:// (found scheme '{}')",
            u.scheme()
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("'{url}' has no host"));
    }
    Ok(u)
}

/// An OpenAI-compatible chat backend.
pub struct OpenaiModel {
    profile_name: String,
    profile: OpenaiProfile,
    url: reqwest::Url,
    key: Option<Secret>,
    client: reqwest::Client,
    jitter: Jitter,
}

impl std::fmt::Debug for OpenaiModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenaiModel")
            .field("profile", &self.profile_name)
            .field("url", &self.url.as_str())
            .field("model", &self.profile.model)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl OpenaiModel {
    /// A backend for `profile` (called `name` in the config); reads the API
    /// key variable now.
    pub fn new(name: &str, profile: &OpenaiProfile) -> Result<Self, LlmError> {
        let base = check_base_url(&profile.base_url)
            .map_err(|e| LlmError::Setup(format!("LLM profile '{name}': base_url: {e}")))?;
        let url = reqwest::Url::parse(&format!(
            "{}/chat/completions",
            base.as_str().trim_end_matches('/')
        ))
        .map_err(|e| LlmError::Setup(format!("LLM profile '{name}': base_url: {e}")))?;
        let key = match &profile.api_key_env {
            None => None,
            Some(var) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Some(Secret::new(v.trim().to_string())),
                Ok(_) => {
                    return Err(LlmError::Setup(format!(
                        "LLM profile '{name}': the environment variable {var} (api_key_env) is empty; set it to the API key"
                    )))
                }
                Err(_) => {
                    return Err(LlmError::Setup(format!(
                        "LLM profile '{name}': the environment variable {var} (api_key_env) is not set; export {var}=<your API key>"
                    )))
                }
            },
        };
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &profile.headers {
            let hn = reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                LlmError::Setup(format!(
                    "LLM profile '{name}': headers: '{k}' is not a valid header name"
                ))
            })?;
            let mut hv = reqwest::header::HeaderValue::from_str(v).map_err(|_| {
                LlmError::Setup(format!(
                    "LLM profile '{name}': headers: the value of '{k}' is not a valid header value"
                ))
            })?;
            hv.set_sensitive(true);
            headers.insert(hn, hv);
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(secs(profile.timeout_seconds.min(30.0)))
            .build()
            .map_err(|e| LlmError::Setup(format!("LLM profile '{name}': HTTP client: {e}")))?;
        Ok(OpenaiModel {
            profile_name: name.to_string(),
            profile: profile.clone(),
            url,
            key,
            client,
            jitter: Jitter::default(),
        })
    }

    fn backend(&self) -> String {
        format!("openai:{}", self.profile_name)
    }

    /// The request body for `messages` and `options`.
    ///
    /// `max_tokens` and `seed` are deprecated by OpenAI but are what most
    /// compatible servers (llama.cpp, vLLM, Ollama) read, and OpenAI still
    /// accepts them.
    #[allow(deprecated)]
    pub fn request(
        &self,
        messages: &[Message],
        options: &ChatOptions,
    ) -> Result<CreateChatCompletionRequest, LlmError> {
        let (schema, pattern) = match &options.constraint {
            Some(Constraint::JsonSchema(s)) => (Some(s), None),
            Some(Constraint::Regex(p)) => (None, Some(p)),
            None => (None, None),
        };
        let mut msgs: Vec<ChatCompletionRequestMessage> = Vec::with_capacity(messages.len() + 1);
        for m in messages {
            msgs.push(match m.role {
                Role::System => ChatCompletionRequestSystemMessage::from(m.content.as_str()).into(),
                Role::User => ChatCompletionRequestUserMessage::from(m.content.as_str()).into(),
                Role::Assistant => {
                    ChatCompletionRequestAssistantMessage::from(m.content.as_str()).into()
                }
            });
        }
        let mut response_format = None;
        if let Some(schema) = schema {
            let in_prompt = match self.profile.json_mode {
                JsonMode::JsonSchema => {
                    response_format = Some(ResponseFormat::JsonSchema {
                        json_schema: ResponseFormatJsonSchema {
                            description: None,
                            name: "reply".to_string(),
                            schema: schema.clone(),
                            strict: Some(true),
                        },
                    });
                    false
                }
                JsonMode::JsonObject => {
                    response_format = Some(ResponseFormat::JsonObject);
                    true
                }
                JsonMode::Prompt => true,
            };
            if in_prompt {
                msgs.push(
                    ChatCompletionRequestSystemMessage::from(schema_instruction(schema)).into(),
                );
            }
        }
        // No response format takes a pattern: it is an instruction, and the
        // caller checks the reply.
        if let Some(p) = pattern {
            msgs.push(
                ChatCompletionRequestSystemMessage::from(format!(
                    "Reply with exactly one line matching this regular expression, and nothing else: {p}"
                ))
                .into(),
            );
        }
        Ok(CreateChatCompletionRequest {
            messages: msgs,
            model: self.profile.model.clone(),
            temperature: Some(options.temperature as f32),
            top_p: Some(options.top_p as f32),
            max_tokens: Some(u32::try_from(options.max_tokens).unwrap_or(u32::MAX)),
            seed: options.seed.map(|s| s as i64),
            stop: (!options.stop.is_empty())
                .then(|| StopConfiguration::StringArray(options.stop.clone())),
            response_format,
            ..Default::default()
        })
    }

    async fn try_once(&self, body: &CreateChatCompletionRequest) -> Result<ChatResponse, Failure> {
        let timeout = secs(self.profile.timeout_seconds);
        let mut req = self.client.post(self.url.clone()).json(body);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k.expose());
        }
        let started = Instant::now();
        let exchange = async {
            let resp = req.send().await.map_err(|e| classify(&e, timeout))?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, now_unix()));
            let text = resp.text().await.map_err(|e| classify(&e, timeout))?;
            Ok::<_, Failure>((status, retry_after, text))
        };
        let (status, retry_after, text) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| Failure::Timeout(timeout))??;
        if !status.is_success() {
            return Err(Failure::Status {
                status: status.as_u16(),
                message: server_message(&text),
                retry_after,
            });
        }
        let mut r = parse_reply(&text).map_err(Failure::BadReply)?;
        r.latency_seconds = started.elapsed().as_secs_f64();
        if r.model.is_empty() {
            r.model = self.profile.model.clone();
        }
        r.cost_usd = self.cost(&r.usage);
        Ok(r)
    }

    /// The cost of `usage` in US dollars, when the profile gives prices.
    pub fn cost(&self, usage: &Usage) -> Option<f64> {
        let p = self.profile.price_prompt_per_million;
        let c = self.profile.price_completion_per_million;
        if p.is_none() && c.is_none() {
            return None;
        }
        Some(
            (usage.prompt_tokens as f64 * p.unwrap_or(0.0)
                + usage.completion_tokens as f64 * c.unwrap_or(0.0))
                / 1e6,
        )
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The instruction that states a schema in the prompt.
pub fn schema_instruction(schema: &serde_json::Value) -> String {
    format!(
        "Reply with one JSON value only (no prose, no code fences) that satisfies this JSON schema:\n{schema}"
    )
}

fn classify(e: &reqwest::Error, timeout: Duration) -> Failure {
    if e.is_timeout() {
        Failure::Timeout(timeout)
    } else if e.is_decode() {
        Failure::BadReply(error_chain(e))
    } else {
        Failure::Connection(error_chain(e))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

/// The server's error message: `error.message` of a JSON error body, else
/// the body itself (shortened).
fn server_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        if let Some(m) = v
            .pointer("/error/message")
            .or_else(|| v.get("error"))
            .or_else(|| v.get("message"))
            .and_then(|m| m.as_str())
        {
            return m.to_string();
        }
    }
    let t = body.trim();
    if t.is_empty() {
        return "(empty body)".to_string();
    }
    let mut s: String = t.chars().take(300).collect();
    if t.chars().count() > 300 {
        s.push('…');
    }
    s
}

/// Read a chat-completion reply.
fn parse_reply(body: &str) -> Result<ChatResponse, String> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| {
        format!(
            "not JSON ({e}); body starts {:?}",
            body.chars().take(80).collect::<String>()
        )
    })?;
    let choice = v
        .pointer("/choices/0")
        .ok_or_else(|| "no choices in the reply".to_string())?;
    let message = choice
        .get("message")
        .filter(|m| m.is_object())
        .ok_or_else(|| "choices[0].message is missing".to_string())?;
    // `content: null` (or absent) is a reply without text: a refusal, or a
    // reasoning model that spent its tokens thinking. The caller gets an
    // empty text (the agent repairs or falls back); retrying would only
    // get the same again.
    let text = match message.get("content") {
        Some(serde_json::Value::String(s)) => s.clone(),
        None | Some(serde_json::Value::Null) => String::new(),
        Some(other) => {
            return Err(format!(
                "choices[0].message.content is neither text nor null: {}",
                other.to_string().chars().take(80).collect::<String>()
            ))
        }
    };
    let refusal = message.get("refusal").and_then(|r| r.as_str());
    let finish = match (
        choice.get("finish_reason").and_then(|f| f.as_str()),
        refusal,
    ) {
        (_, Some(r)) if text.is_empty() => FinishReason::Other(format!("refusal: {r}")),
        (Some("stop") | None, _) => FinishReason::Stop,
        (Some("length"), _) => FinishReason::Length,
        (Some(other), _) => FinishReason::Other(other.to_string()),
    };
    let n = |p: &str| v.pointer(p).and_then(|x| x.as_u64()).unwrap_or(0);
    Ok(ChatResponse {
        text,
        usage: Usage {
            prompt_tokens: n("/usage/prompt_tokens"),
            completion_tokens: n("/usage/completion_tokens"),
            cached_prompt_tokens: n("/usage/prompt_tokens_details/cached_tokens")
                .max(n("/usage/prompt_cache_hit_tokens")),
        },
        latency_seconds: 0.0,
        finish,
        model: v
            .get("model")
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_string(),
        cost_usd: None,
    })
}

#[async_trait::async_trait]
impl ChatModel for OpenaiModel {
    fn name(&self) -> String {
        format!("openai:{}:{}", self.profile_name, self.profile.model)
    }

    async fn chat(
        &self,
        messages: &[Message],
        options: &ChatOptions,
    ) -> Result<ChatResponse, LlmError> {
        let body = self.request(messages, options)?;
        let backoff = Backoff {
            initial: secs(self.profile.backoff_initial_seconds),
            max: secs(self.profile.backoff_max_seconds),
        };
        let started = Instant::now();
        let attempts = self.profile.max_retries.saturating_add(1);
        let mut retry = 0u32;
        loop {
            match self.try_once(&body).await {
                Ok(mut r) => {
                    r.latency_seconds = started.elapsed().as_secs_f64();
                    return Ok(r);
                }
                Err(f) if !f.retryable() => {
                    return Err(match f {
                        Failure::Status {
                            status, message, ..
                        } => LlmError::Http {
                            backend: self.backend(),
                            status,
                            message,
                        },
                        other => LlmError::BadReply {
                            backend: self.backend(),
                            message: other.to_string(),
                        },
                    })
                }
                Err(f) => {
                    if retry + 1 >= attempts {
                        if matches!(f, Failure::Status { status: 429, .. }) {
                            return Err(LlmError::RateLimited {
                                backend: self.backend(),
                                attempts,
                                last: f.to_string(),
                            });
                        }
                        return Err(LlmError::Exhausted {
                            backend: self.backend(),
                            attempts,
                            last: f.to_string(),
                        });
                    }
                    let wait = backoff.delay(retry, &f, self.jitter.unit());
                    tracing::warn!(
                        "{}: try {} of {} failed ({f}); retrying in {:.2} s",
                        self.backend(),
                        retry + 1,
                        attempts,
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn profile(mode: JsonMode) -> OpenaiProfile {
        OpenaiProfile {
            base_url: "http://127.0.0.1:9/v1/".into(),
            model: "m".into(),
            api_key_env: None,
            headers: BTreeMap::new(),
            timeout_seconds: 1.0,
            max_retries: 0,
            backoff_initial_seconds: 0.0,
            backoff_max_seconds: 0.0,
            json_mode: mode,
            price_prompt_per_million: Some(2.0),
            price_completion_per_million: Some(10.0),
        }
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_base_url("http://127.0.0.1:8080/v1").is_ok());
        assert!(check_base_url("ftp://x/v1")
            .unwrap_err()
            .contains("http://"));
        assert!(check_base_url("not a url")
            .unwrap_err()
            .contains("not a valid URL"));
        let m = OpenaiModel::new("p", &profile(JsonMode::Prompt)).unwrap();
        assert_eq!(m.url.as_str(), "http://127.0.0.1:9/v1/chat/completions");
    }

    #[test]
    fn schema_goes_to_response_format_or_prompt() {
        let schema = serde_json::json!({"type": "object"});
        let o = ChatOptions {
            constraint: Some(Constraint::JsonSchema(schema)),
            ..Default::default()
        };
        let m = OpenaiModel::new("p", &profile(JsonMode::JsonSchema)).unwrap();
        let r = serde_json::to_value(m.request(&[Message::user("hi")], &o).unwrap()).unwrap();
        assert_eq!(r["response_format"]["type"], "json_schema");
        assert_eq!(r["messages"].as_array().unwrap().len(), 1);
        let m = OpenaiModel::new("p", &profile(JsonMode::Prompt)).unwrap();
        let r = serde_json::to_value(m.request(&[Message::user("hi")], &o).unwrap()).unwrap();
        assert!(r.get("response_format").is_none());
        assert!(r["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("JSON schema"));
        let m = OpenaiModel::new("p", &profile(JsonMode::JsonObject)).unwrap();
        let r = serde_json::to_value(m.request(&[Message::user("hi")], &o).unwrap()).unwrap();
        assert_eq!(r["response_format"]["type"], "json_object");
    }

    #[test]
    fn replies_parse_and_cost() {
        let r = parse_reply(
            r#"{"model":"x","choices":[{"message":{"role":"assistant","content":"hey"},"finish_reason":"length"}],"usage":{"prompt_tokens":1000,"completion_tokens":500}}"#,
        )
        .unwrap();
        assert_eq!(r.text, "hey");
        assert_eq!(r.finish, FinishReason::Length);
        assert_eq!(r.usage.cached_prompt_tokens, 0);
        // Cached prompt tokens, as OpenAI and vLLM report them, and as
        // DeepSeek does.
        for usage in [
            r#"{"prompt_tokens":900,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":768}}"#,
            r#"{"prompt_tokens":900,"completion_tokens":5,"prompt_cache_hit_tokens":768}"#,
        ] {
            let body =
                format!(r#"{{"choices":[{{"message":{{"content":"x"}}}}],"usage":{usage}}}"#);
            assert_eq!(parse_reply(&body).unwrap().usage.cached_prompt_tokens, 768);
        }
        let m = OpenaiModel::new("p", &profile(JsonMode::Prompt)).unwrap();
        let c = m.cost(&r.usage).unwrap();
        assert!((c - (1000.0 * 2.0 + 500.0 * 10.0) / 1e6).abs() < 1e-12);
        assert!(parse_reply("{\"choices\": [")
            .unwrap_err()
            .contains("not JSON"));
        assert!(parse_reply("{\"choices\": []}").is_err());
        // content: null is an empty reply (with the refusal, when given).
        let r = parse_reply(r#"{"choices":[{"message":{"role":"assistant","content":null},"finish_reason":"length"}]}"#).unwrap();
        assert_eq!((r.text.as_str(), r.finish), ("", FinishReason::Length));
        let r =
            parse_reply(r#"{"choices":[{"message":{"content":null,"refusal":"no"}}]}"#).unwrap();
        assert_eq!(r.finish, FinishReason::Other("refusal: no".into()));
        assert!(parse_reply(r#"{"choices":[{"message":{"content":[1]}}]}"#)
            .unwrap_err()
            .contains("neither text nor null"));
        assert_eq!(
            server_message(r#"{"error":{"message":"bad key"}}"#),
            "bad key"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("sk-123".into());
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
    }

    #[test]
    fn missing_key_variable_is_named() {
        let mut p = profile(JsonMode::Prompt);
        p.api_key_env = Some("SEKI_TEST_SURELY_UNSET_KEY".into());
        let e = OpenaiModel::new("remote", &p).unwrap_err().to_string();
        assert!(
            e.contains("SEKI_TEST_SURELY_UNSET_KEY") && e.contains("not set"),
            "{e}"
        );
    }
}
