//! A strategy's journalled state: written after every step so that a resumed
//! session continues exactly, and read by reports for what the strategy knew.

use super::agent::KnowledgeState;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A strategy's whole state, as the journal keeps it. Its form is the
/// strategy's own (each strategy encodes and decodes its state type); what
/// other readers may look at is typed: [`knowledge`](Self::knowledge).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StrategyState(serde_json::Value);

/// A state that does not decode as the strategy's.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StateError(String);

impl StrategyState {
    /// No state (a strategy that keeps none, like random search).
    pub fn none() -> Self {
        StrategyState(serde_json::Value::Null)
    }

    /// Whether it is empty.
    pub fn is_none(&self) -> bool {
        self.0.is_null()
    }

    /// Encode a strategy's state.
    pub fn encode<T: Serialize>(state: &T) -> Result<Self, StateError> {
        serde_json::to_value(state)
            .map(StrategyState)
            .map_err(|e| StateError(e.to_string()))
    }

    /// Decode it as a strategy's state type.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, StateError> {
        T::deserialize(&self.0).map_err(|e| StateError(e.to_string()))
    }

    /// What the strategy knew (empty for strategies without knowledge).
    pub fn knowledge(&self) -> KnowledgeState {
        if self.0.is_object() {
            self.decode().unwrap_or_default()
        } else {
            KnowledgeState::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Own {
        population: Vec<u32>,
    }

    #[test]
    fn encodes_decodes_and_reads_no_knowledge_from_other_strategies() {
        let s = StrategyState::encode(&Own {
            population: vec![1, 2],
        })
        .unwrap();
        assert_eq!(
            s.decode::<Own>().unwrap(),
            Own {
                population: vec![1, 2]
            }
        );
        assert_eq!(s.knowledge(), KnowledgeState::default());
        assert!(StrategyState::none().is_none());
        assert!(StrategyState::none().decode::<Own>().is_err());
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(text, r#"{"population":[1,2]}"#);
    }
}
