//! A regular expression compiled to a byte DFA: the constraint of notations
//! that are not JSON (the spaces' compact architecture notations).
//!
//! The whole output must match: the pattern is anchored at the start (an
//! anchored start state) and at the end (`$`, checked through the DFA's
//! end-of-input transition). The DFA is minimized, so equal futures share
//! one state and the per-state mask cache hits often.

use regex_automata::dfa::{dense, Automaton as _, StartKind};
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};

/// A pattern that cannot be used as a constraint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid constraint pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The DFA of a pattern.
#[derive(Debug, Clone)]
pub struct RegexDfa {
    dfa: dense::DFA<Vec<u32>>,
    start: StateID,
}

/// Largest DFA built for a constraint (bytes of transition table).
const SIZE_LIMIT: usize = 16 << 20;

impl RegexDfa {
    /// Compile `pattern` (regex-syntax, as in the `regex` crate).
    pub fn new(pattern: &str) -> Result<Self, PatternError> {
        let err = |reason: String| PatternError {
            pattern: pattern.to_string(),
            reason,
        };
        let dfa = dense::Builder::new()
            .configure(
                dense::DFA::config()
                    .start_kind(StartKind::Anchored)
                    .match_kind(MatchKind::All)
                    .minimize(true)
                    .dfa_size_limit(Some(SIZE_LIMIT))
                    .determinize_size_limit(Some(SIZE_LIMIT)),
            )
            .build(&format!("(?:{pattern})$"))
            .map_err(|e| err(e.to_string()))?;
        let start = dfa
            .start_state(&start::Config::new().anchored(Anchored::Yes))
            .map_err(|e| err(e.to_string()))?;
        Ok(RegexDfa { dfa, start })
    }

    /// The state before any output.
    pub fn start(&self) -> StateID {
        self.start
    }

    /// Feed one byte; false (state unchanged) when no match can follow.
    pub fn step(&self, state: &mut StateID, b: u8) -> bool {
        let next = self.dfa.next_state(*state, b);
        if self.dfa.is_dead_state(next) || self.dfa.is_quit_state(next) {
            return false;
        }
        *state = next;
        true
    }

    /// Whether the output so far matches the whole pattern.
    pub fn is_complete(&self, state: StateID) -> bool {
        self.dfa.is_match_state(self.dfa.next_eoi_state(state))
    }

    /// Whether some byte can follow.
    pub fn can_continue(&self, state: StateID) -> bool {
        (0..=255u8).any(|b| {
            let next = self.dfa.next_state(state, b);
            !(self.dfa.is_dead_state(next) || self.dfa.is_quit_state(next))
        })
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        let mut s = self.start;
        text.bytes().all(|b| self.step(&mut s, b)) && self.is_complete(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_output_must_match() {
        let d = RegexDfa::new("(?:ab|abc)( [0-2])?").unwrap();
        assert!(d.matches("ab"));
        assert!(d.matches("abc 2"));
        assert!(!d.matches("abc 3"));
        assert!(!d.matches("abcd"));
        assert!(!d.matches("a"));
        let mut s = d.start();
        assert!(d.step(&mut s, b'a'));
        assert!(!d.is_complete(s) && d.can_continue(s));
        assert!(d.step(&mut s, b'b'));
        assert!(d.is_complete(s) && d.can_continue(s));
        let before = s;
        assert!(!d.step(&mut s, b'x'));
        assert_eq!(s, before);
        for b in b"c 1" {
            assert!(d.step(&mut s, *b));
        }
        assert!(d.is_complete(s) && !d.can_continue(s));
    }

    #[test]
    fn a_bad_pattern_is_an_error_naming_it() {
        let e = RegexDfa::new("(unclosed").unwrap_err();
        assert!(e.to_string().contains("(unclosed"), "{e}");
    }
}
