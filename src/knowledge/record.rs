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

/// Images in NAS-Bench-201's `cifar10-valid` validation split, behind its
/// 12-epoch validation accuracies.
pub const NB201_VALID_IMAGES: usize = 25_000;

/// Settings that only pick one random draw of a protocol: a repeat with
/// another value measures the same quantity.
const DRAW_SETTINGS: [&str; 2] = ["seed", "noise_seed"];

impl EvaluatorInfo {
    /// The evaluation protocol (evaluator, dataset, settings): scores are
    /// only ranked against scores of the same protocol. Settings that only
    /// pick a random draw (`seed`, `noise_seed`) are left out; published
    /// results of one dataset form one protocol (their settings describe
    /// each paper's own training in words).
    pub fn protocol(&self) -> String {
        let dataset = self.dataset.as_deref().unwrap_or("");
        if self.kind == "published" {
            return format!("published|{dataset}");
        }
        let mut settings = self.settings.clone();
        for k in DRAW_SETTINGS {
            settings.remove(k);
        }
        format!(
            "{}|{dataset}|{}",
            self.kind,
            serde_json::Value::Object(settings)
        )
    }

    /// The standard error (points) that a score under this protocol
    /// carries from its validation set's size alone (and any noise the
    /// evaluator adds): its `valid_size` setting, or for the NAS-Bench-201
    /// CIFAR-10 table (which has none) its 25,000 validation images. `None`
    /// when unknown.
    pub fn implied_se(&self, score: f64) -> Option<f64> {
        let noise = self
            .settings
            .get("noise_sd")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0);
        let valid_size = self
            .settings
            .get("valid_size")
            .and_then(|v| v.as_u64())
            .map(|v| v as usize);
        let n = match self.kind.as_str() {
            "nb201-table" => valid_size.or(Some(NB201_VALID_IMAGES)),
            _ => valid_size,
        }?;
        let b = crate::stats::binomial_se(score, n)?;
        Some((b * b + noise * noise).sqrt())
    }

    /// The protocol in words, for people and prompts (e.g. `candle on
    /// fashion-mnist: epochs 1, train_subset 5000, ...`).
    pub fn protocol_label(&self) -> String {
        let dataset = self.dataset.as_deref().unwrap_or("?");
        match self.kind.as_str() {
            "published" => format!("published {dataset} test accuracy"),
            "nb201-table" => {
                let noise = self
                    .settings
                    .get("noise_sd")
                    .and_then(|v| v.as_f64())
                    .map_or(String::new(), |sd| format!(", noise sd {sd}"));
                format!("NAS-Bench-201 table, {dataset} 12-epoch validation{noise}")
            }
            kind => {
                let keys = [
                    "epochs",
                    "train_subset",
                    "valid_size",
                    "cells",
                    "channels",
                    "stage_cells",
                ];
                let parts: Vec<String> = keys
                    .iter()
                    .filter_map(|k| Some(format!("{k} {}", self.settings.get(*k)?)))
                    .collect();
                if parts.is_empty() {
                    format!("{kind} on {dataset}")
                } else {
                    format!("{kind} on {dataset}: {}", parts.join(", "))
                }
            }
        }
    }
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
    /// The uncertainty of `score`: its standard error, and over how many
    /// evaluations (seeds) it is the mean. Absent when unknown (e.g.
    /// published results and records made before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncertainty: Option<crate::stats::Uncertainty>,
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

    /// The standard error of `score`, when known: as recorded, else as its
    /// protocol implies ([`EvaluatorInfo::implied_se`]).
    pub fn score_se(&self) -> Option<f64> {
        self.uncertainty
            .as_ref()
            .map(|u| u.se)
            .or_else(|| self.evaluator.implied_se(self.score?))
    }

    /// The record's evaluation protocol ([`EvaluatorInfo::protocol`]).
    pub fn protocol(&self) -> String {
        self.evaluator.protocol()
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
    fn protocols_ignore_seeds_and_group_published_results() {
        let info = |kind: &str, ds: &str, settings: serde_json::Value| EvaluatorInfo {
            kind: kind.into(),
            dataset: Some(ds.into()),
            settings: settings.as_object().cloned().unwrap_or_default(),
        };
        let a = info(
            "candle",
            "fashion-mnist",
            serde_json::json!({"epochs": 1, "seed": 0}),
        );
        let b = info(
            "candle",
            "fashion-mnist",
            serde_json::json!({"epochs": 1, "seed": 3}),
        );
        let c = info(
            "candle",
            "fashion-mnist",
            serde_json::json!({"epochs": 5, "seed": 0}),
        );
        let d = info(
            "candle",
            "mnist",
            serde_json::json!({"epochs": 1, "seed": 0}),
        );
        assert_eq!(a.protocol(), b.protocol());
        assert_ne!(a.protocol(), c.protocol());
        assert_ne!(a.protocol(), d.protocol());
        let p1 = info(
            "published",
            "cifar10",
            serde_json::json!({"protocol": "600 epochs"}),
        );
        let p2 = info(
            "published",
            "cifar10",
            serde_json::json!({"protocol": "other words"}),
        );
        assert_eq!(p1.protocol(), p2.protocol());
        assert_eq!(p1.protocol_label(), "published cifar10 test accuracy");
        assert_eq!(a.protocol_label(), "candle on fashion-mnist: epochs 1");
    }

    #[test]
    fn timestamps_look_like_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z'));
    }
}
