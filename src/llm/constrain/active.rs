//! A reply in progress under a constraint, by either implementation of the
//! masks: what the decoding loop sees.

use super::{ConstraintError, Guided, Masker, MatchState};

/// The constraint of one reply.
#[derive(Debug)]
pub enum Active {
    /// seki's own automaton, walked over the vocabulary's trie (masks
    /// cached per state).
    Seki {
        /// The automaton and its mask cache.
        masker: Masker,
        /// Where the output is.
        state: MatchState,
    },
    /// llguidance.
    Guidance(Box<Guided>),
}

impl Active {
    /// seki's own: start at the automaton's start.
    pub fn seki(masker: Masker) -> Self {
        let state = masker.automaton.start();
        Active::Seki { masker, state }
    }

    /// The text tokens allowed next (`true` at their ids; no
    /// end-of-sequence token: see [`Active::is_complete`]).
    pub fn mask(&mut self) -> Result<Vec<bool>, ConstraintError> {
        match self {
            Active::Seki { masker, state } => Ok(masker.mask(state).as_ref().clone()),
            Active::Guidance(g) => g.mask(),
        }
    }

    /// [`Active::mask`] without either implementation's mask cache (for
    /// measuring what a mask costs).
    pub fn mask_uncached(&mut self) -> Result<Vec<bool>, ConstraintError> {
        match self {
            Active::Seki { masker, state } => Ok(masker.mask_uncached(state)),
            Active::Guidance(g) => {
                g.invalidate_cache();
                g.mask()
            }
        }
    }

    /// Whether the output so far is a whole reply.
    pub fn is_complete(&mut self) -> bool {
        match self {
            Active::Seki { masker, state } => masker.automaton.is_complete(state),
            Active::Guidance(g) => g.is_complete(),
        }
    }

    /// Whether the reply is whole and nothing may follow.
    pub fn is_finished(&mut self) -> bool {
        match self {
            Active::Seki { masker, state } => {
                masker.automaton.is_complete(state) && !masker.automaton.can_continue(state)
            }
            Active::Guidance(g) => g.is_finished(),
        }
    }

    /// Take `token` (whose text is `bytes`) as the next one; false when it
    /// leaves the constraint.
    pub fn advance(&mut self, token: u32, bytes: &[u8]) -> bool {
        match self {
            Active::Seki { masker, state } => bytes
                .iter()
                .all(|&b| masker.automaton.step_in_place(state, b)),
            Active::Guidance(g) => g.advance(token).is_ok(),
        }
    }
}
