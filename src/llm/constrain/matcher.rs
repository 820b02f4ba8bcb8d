//! One interface over the two kinds of constraint: a JSON schema's
//! automaton and a regular expression's DFA. Decoding and masks see only
//! this.

use super::automaton::{Automaton, State};
use super::grammar::{Grammar, SchemaError};
use super::regex::{PatternError, RegexDfa};
use crate::llm::Constraint;
use regex_automata::util::primitives::StateID;

/// A constraint that cannot be compiled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConstraintError {
    /// A JSON schema outside the supported subset.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// A pattern that does not compile.
    #[error(transparent)]
    Pattern(#[from] PatternError),
    /// llguidance refused the constraint or a token.
    #[error("llguidance: {0}")]
    Guidance(String),
}

/// A compiled constraint.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// A JSON schema.
    Json(Automaton),
    /// A regular expression.
    Regex(Box<RegexDfa>),
}

/// Where a [`Matcher`] is in the output.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MatchState {
    /// In a JSON schema's automaton.
    Json(State),
    /// In a regular expression's DFA.
    Regex(StateID),
}

impl Matcher {
    /// Compile `c`.
    pub fn compile(c: &Constraint) -> Result<Self, ConstraintError> {
        Ok(match c {
            Constraint::JsonSchema(s) => Matcher::Json(Automaton::new(Grammar::compile(s)?)),
            Constraint::Regex(p) => Matcher::Regex(Box::new(RegexDfa::new(p)?)),
        })
    }

    /// The state before any output.
    pub fn start(&self) -> MatchState {
        match self {
            Matcher::Json(a) => MatchState::Json(a.start()),
            Matcher::Regex(d) => MatchState::Regex(d.start()),
        }
    }

    /// Feed one byte in place; false when it leaves the language (the state
    /// is then unspecified).
    pub fn step_in_place(&self, state: &mut MatchState, b: u8) -> bool {
        match (self, state) {
            (Matcher::Json(a), MatchState::Json(s)) => a.step_in_place(s, b),
            (Matcher::Regex(d), MatchState::Regex(s)) => d.step(s, b),
            _ => false,
        }
    }

    /// Feed bytes; `None` when they leave the language.
    pub fn feed(&self, state: &MatchState, bytes: &[u8]) -> Option<MatchState> {
        let mut s = state.clone();
        bytes
            .iter()
            .all(|&b| self.step_in_place(&mut s, b))
            .then_some(s)
    }

    /// Whether the output so far is complete.
    pub fn is_complete(&self, state: &MatchState) -> bool {
        match (self, state) {
            (Matcher::Json(a), MatchState::Json(s)) => a.is_complete(s),
            (Matcher::Regex(d), MatchState::Regex(s)) => d.is_complete(*s),
            _ => false,
        }
    }

    /// Whether any further byte is accepted.
    pub fn can_continue(&self, state: &MatchState) -> bool {
        match (self, state) {
            (Matcher::Json(a), MatchState::Json(s)) => a.can_continue(s),
            (Matcher::Regex(d), MatchState::Regex(s)) => d.can_continue(*s),
            _ => false,
        }
    }
}
