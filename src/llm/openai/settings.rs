//! The settings of the OpenAI-compatible backend (`kind = "openai"`
//! profiles): the server, the model, the key variable, timeouts, retries,
//! the JSON mode and prices.
//!
//! The backend owns them; `llm::profile` only names profiles and holds one
//! of these per `openai` profile.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a server is asked for JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonMode {
    /// `response_format: {"type": "json_schema", ...}` (and the schema in the prompt).
    JsonSchema,
    /// `response_format: {"type": "json_object"}` and the schema in the prompt.
    JsonObject,
    /// No response format; the schema goes into the prompt only.
    Prompt,
}

/// `kind = "openai"`
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenaiProfile {
    /// Base URL, e.g. `https://api.openai.com/v1` (`/chat/completions` is appended).
    pub base_url: String,
    /// Model name.
    pub model: String,
    /// Environment variable holding the API key (none: no key is sent).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Seconds one request may take.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: f64,
    /// Retries after the first try (429, 5xx, connection errors, timeouts).
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// First backoff delay in seconds (doubles each retry, with jitter).
    #[serde(default = "default_backoff")]
    pub backoff_initial_seconds: f64,
    /// Longest backoff delay in seconds (also caps `Retry-After`).
    #[serde(default = "default_backoff_max")]
    pub backoff_max_seconds: f64,
    /// How JSON output is requested when a call has a schema constraint.
    #[serde(default = "default_json_mode")]
    pub json_mode: JsonMode,
    /// US dollars per million prompt tokens.
    #[serde(default)]
    pub price_prompt_per_million: Option<f64>,
    /// US dollars per million completion tokens.
    #[serde(default)]
    pub price_completion_per_million: Option<f64>,
}

fn default_timeout() -> f64 {
    120.0
}
fn default_retries() -> u32 {
    4
}
fn default_backoff() -> f64 {
    1.0
}
fn default_backoff_max() -> f64 {
    60.0
}
fn default_json_mode() -> JsonMode {
    JsonMode::JsonSchema
}

impl std::fmt::Debug for OpenaiProfile {
    // Header values may carry credentials: only their names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenaiProfile")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key_env", &self.api_key_env)
            .field(
                "headers",
                &self
                    .headers
                    .keys()
                    .map(|k| format!("{k}: <redacted>"))
                    .collect::<Vec<_>>(),
            )
            .field("timeout_seconds", &self.timeout_seconds)
            .field("max_retries", &self.max_retries)
            .field("json_mode", &self.json_mode)
            .finish_non_exhaustive()
    }
}

impl OpenaiProfile {
    /// Problems with the settings, as (key within the profile, message)
    /// pairs.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Err(e) = super::check_base_url(&self.base_url) {
            out.push(("base_url", e));
        }
        if !(self.timeout_seconds.is_finite() && self.timeout_seconds > 0.0) {
            out.push(("timeout_seconds", "must be a positive number".into()));
        }
        if !(self.backoff_initial_seconds.is_finite() && self.backoff_initial_seconds >= 0.0) {
            out.push((
                "backoff_initial_seconds",
                "must be 0 or a positive number".into(),
            ));
        }
        if !(self.backoff_max_seconds.is_finite()
            && self.backoff_max_seconds >= self.backoff_initial_seconds)
        {
            out.push((
                "backoff_max_seconds",
                "must be at least backoff_initial_seconds".into(),
            ));
        }
        for (k, v) in [
            ("price_prompt_per_million", self.price_prompt_per_million),
            (
                "price_completion_per_million",
                self.price_completion_per_million,
            ),
        ] {
            if let Some(v) = v {
                if !(v.is_finite() && v >= 0.0) {
                    out.push((k, "must be 0 or a positive number".into()));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_header_values() {
        let mut headers = BTreeMap::new();
        headers.insert("Authorization".to_string(), "Bearer sk-secret".to_string());
        let p = OpenaiProfile {
            base_url: "http://127.0.0.1:1/v1".into(),
            model: "m".into(),
            api_key_env: Some("K".into()),
            headers,
            timeout_seconds: 1.0,
            max_retries: 0,
            backoff_initial_seconds: 0.0,
            backoff_max_seconds: 0.0,
            json_mode: JsonMode::Prompt,
            price_prompt_per_million: None,
            price_completion_per_million: None,
        };
        let d = format!("{p:?}");
        assert!(
            !d.contains("sk-secret") && d.contains("Authorization"),
            "{d}"
        );
        assert!(p.problems().is_empty());
    }
}
