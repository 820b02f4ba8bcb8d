//! The records a knowledge base holds: evaluated architectures and distilled
//! insights, each with its provenance.

use crate::space::Space;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which evaluator produced a record's figures, and with what settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluatorInfo {
    /// `published`, `nb201-table`, `candle`, ...
    pub kind: String,
    /// The dataset the figures are on (`cifar10`, `fashion-mnist`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Evaluator settings (epochs, channels, protocol, ...).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// Where a record came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// `paper`, `session` or `user`.
    pub source: String,
    /// Citation of the publication, for `paper` records.
    #[serde(default)]
    pub citation: Option<String>,
    /// Where the figures or genotype can be checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The session (run directory name) that produced it.
    #[serde(default)]
    pub session: Option<String>,
    /// The LLM (profile and model) that proposed it, if any.
    #[serde(default)]
    pub llm: Option<String>,
    /// The prompt template that produced it, if any.
    #[serde(default)]
    pub prompt_template: Option<String>,
    /// The strategy that proposed it, for session records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
}

/// One evaluated architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchRecord {
    /// Unique id within the knowledge base.
    pub id: String,
    /// A human name (e.g. `DARTS_V2`), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The search space.
    pub space: Space,
    /// The architecture in its space's text form.
    pub arch: String,
    /// The headline figure under this record's evaluator (higher is better):
    /// validation accuracy (%) for search evaluators, test accuracy (%) for
    /// published results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Further figures: `test_accuracy`, `params`, `flops`, `test_error`, ...
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// The evaluator and its settings.
    pub evaluator: EvaluatorInfo,
    /// Where the record came from.
    pub provenance: Provenance,
    /// When the record was made (RFC 3339).
    pub created: String,
}

impl ArchRecord {
    /// The value of a metric: `score` or a key of `metrics`.
    pub fn metric(&self, name: &str) -> Option<f64> {
        if name == "score" {
            self.score
        } else {
            self.metrics.get(name).copied()
        }
    }

    /// The evaluator's identity, for telling apart records of the same
    /// architecture measured different ways.
    pub fn evaluator_key(&self) -> String {
        format!(
            "{}|{}|{}",
            self.evaluator.kind,
            self.evaluator.dataset.as_deref().unwrap_or(""),
            serde_json::Value::Object(self.evaluator.settings.clone())
        )
    }
}

/// Whether a larger value of the metric is better.
///
/// Errors, losses, sizes and costs are minimised; everything else (scores,
/// accuracies) maximised.
pub fn higher_is_better(metric: &str) -> bool {
    ![
        "error", "loss", "params", "flops", "latency", "seconds", "memory", "cost",
    ]
    .iter()
    .any(|w| metric.contains(w))
}

/// Whether later evidence has contradicted an insight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InsightStatus {
    /// Stands.
    #[default]
    Active,
    /// Later evidence contradicts it; kept for the record, not fed to prompts.
    Contradicted,
}

/// A distilled design insight and the architectures that support it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Insight {
    /// Unique id within the knowledge base.
    pub id: String,
    /// The search space it is about.
    pub space: Space,
    /// The insight, in words.
    pub text: String,
    /// Ids of the architecture records that support it.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// Active or contradicted.
    #[serde(default)]
    pub status: InsightStatus,
    /// Ids of records that contradict it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contradicted_by: Vec<String>,
    /// The checkable claim it states, when it states one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<super::claim::Claim>,
    /// How the claim fares on the evaluated architectures, as last scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<super::claim::ClaimStats>,
    /// Where it came from.
    pub provenance: Provenance,
    /// When it was made (RFC 3339).
    pub created: String,
}

/// The current time in RFC 3339, UTC, whole seconds.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    now.format(&fmt)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_direction() {
        assert!(higher_is_better("score"));
        assert!(higher_is_better("test_accuracy"));
        assert!(!higher_is_better("test_error"));
        assert!(!higher_is_better("params"));
    }

    #[test]
    fn timestamps_look_like_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z'));
    }
}
