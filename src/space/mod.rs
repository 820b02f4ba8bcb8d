//! Search spaces: what an architecture is, how it is written, parsed,
//! canonicalised, sampled and mutated.
//!
//! [`Space`] names a search space; [`Arch`] is one architecture in it. Each
//! space lives in its own file ([`darts`], [`nb201`]); [`diagram`] draws
//! an architecture's cells as SVG.

pub mod darts;
pub mod diagram;
mod error;
mod genotype;
pub mod nb201;
pub mod notation;

pub use darts::Genotype;
pub use error::ArchError;
pub use nb201::Nb201Cell;

use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// A search space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Space {
    /// The DARTS cell space (normal + reduction cell, 8 ops).
    Darts,
    /// The NAS-Bench-201 cell space (6 edges, 5 ops).
    Nb201,
}

/// A space name that is not known.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown search space '{0}'; valid spaces: darts, nb201")]
pub struct UnknownSpace(pub String);

impl FromStr for Space {
    type Err = UnknownSpace;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "darts" => Ok(Space::Darts),
            "nb201" => Ok(Space::Nb201),
            other => Err(UnknownSpace(other.to_string())),
        }
    }
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a search space says about itself, for help texts and prompts.
#[derive(Debug, Clone, Serialize)]
pub struct SpaceDescription {
    /// Short name.
    pub name: &'static str,
    /// Candidate operations.
    pub ops: Vec<&'static str>,
    /// The structural rules an architecture must follow.
    pub rules: &'static str,
    /// The text format an architecture is written in.
    pub format: &'static str,
    /// One valid architecture in that format.
    pub example: String,
}

impl Space {
    /// Every space.
    pub const ALL: [Space; 2] = [Space::Darts, Space::Nb201];

    /// The space's short name.
    pub fn name(&self) -> &'static str {
        match self {
            Space::Darts => "darts",
            Space::Nb201 => "nb201",
        }
    }

    /// Parse an architecture written in any of the space's text forms (the
    /// compact notation of [`notation`] included).
    pub fn parse(&self, text: &str) -> Result<Arch, ArchError> {
        let t = text.trim();
        match self {
            Space::Darts if t.get(..6).is_some_and(|h| h.eq_ignore_ascii_case("normal")) => {
                notation::parse_compact(*self, t)
            }
            Space::Darts => Genotype::parse(text).map(Arch::Darts),
            Space::Nb201 if !t.contains('~') && !t.starts_with('{') => {
                notation::parse_compact(*self, t)
            }
            Space::Nb201 => Nb201Cell::parse(text).map(Arch::Nb201),
        }
    }

    /// A uniformly random architecture.
    pub fn random(&self, rng: &mut Rng) -> Arch {
        match self {
            Space::Darts => Arch::Darts(Genotype::random(rng)),
            Space::Nb201 => Arch::Nb201(Nb201Cell::random(rng)),
        }
    }

    /// The space's self-description.
    pub fn describe(&self) -> SpaceDescription {
        match self {
            Space::Darts => SpaceDescription {
                name: "darts",
                ops: darts::OPS.to_vec(),
                rules: "Two cells, `normal` (keeps resolution) and `reduce` (halves it). Each cell has 4 intermediate nodes, numbered 2, 3, 4, 5; nodes 0 and 1 are the outputs of the two previous cells. Each intermediate node sums exactly two edges, each edge an (op, input) pair whose input is an earlier node: node 2 reads from 0-1, node 3 from 0-2, node 4 from 0-3, node 5 from 0-4. A cell lists its 8 edges in node order (two for node 2, then two for node 3, ...). The cell output concatenates nodes 2-5.",
                format: notation::format_hint(Space::Darts),
                example: notation::to_llm(&Arch::Darts(Genotype::random(&mut Rng::seed(0)))),
            },
            Space::Nb201 => SpaceDescription {
                name: "nb201",
                ops: nb201::OPS.to_vec(),
                rules: "One cell with 4 nodes (0 is the input, 3 the output). Every pair of nodes j < i is joined by an edge carrying one op, 6 edges in all: node 1 reads node 0; node 2 reads nodes 0 and 1; node 3 reads nodes 0, 1 and 2. `none` removes an edge.",
                format: notation::format_hint(Space::Nb201),
                example: "conv3 | conv3 avg | skip conv3 skip".to_string(),
            },
        }
    }
}

/// One architecture of some search space.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Arch {
    /// A DARTS genotype.
    Darts(Genotype),
    /// A NAS-Bench-201 cell.
    Nb201(Nb201Cell),
}

impl Arch {
    /// The space the architecture belongs to.
    pub fn space(&self) -> Space {
        match self {
            Arch::Darts(_) => Space::Darts,
            Arch::Nb201(_) => Space::Nb201,
        }
    }

    /// The space's primary text form (the DARTS `Genotype(...)` string, the NB201 string).
    pub fn to_text(&self) -> String {
        match self {
            Arch::Darts(g) => g.to_genotype_string(),
            Arch::Nb201(c) => c.to_text(),
        }
    }

    /// A JSON rendering (DARTS: the JSON form; NB201: the string).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Arch::Darts(g) => g.to_json(),
            Arch::Nb201(c) => serde_json::Value::String(c.to_text()),
        }
    }

    /// The canonical form: equal for networks that compute the same function.
    pub fn canonical(&self) -> String {
        match self {
            Arch::Darts(g) => g.canonical(),
            Arch::Nb201(c) => c.canonical(),
        }
    }

    /// The canonical hash: 16 hex digits of SHA-256 over the space and canonical form.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.space().name().as_bytes());
        h.update(b"\n");
        h.update(self.canonical().as_bytes());
        h.finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A single-step random mutation.
    pub fn mutate(&self, rng: &mut Rng) -> Arch {
        match self {
            Arch::Darts(g) => Arch::Darts(g.mutate(rng)),
            Arch::Nb201(c) => Arch::Nb201(c.mutate(rng)),
        }
    }

    /// A child taking each unit from one parent or the other at random:
    /// an NB201 edge, or a DARTS node (its two edges, so it stays valid).
    /// `None` when the parents are of different spaces.
    pub fn crossover(&self, other: &Arch, rng: &mut Rng) -> Option<Arch> {
        match (self, other) {
            (Arch::Nb201(a), Arch::Nb201(b)) => {
                let mut c = *a;
                for (k, op) in c.ops.iter_mut().enumerate() {
                    if rng.below(2) == 1 {
                        *op = b.ops[k];
                    }
                }
                Some(Arch::Nb201(c))
            }
            (Arch::Darts(a), Arch::Darts(b)) => {
                let mut c = a.clone();
                for (cell, other) in [(&mut c.normal, &b.normal), (&mut c.reduce, &b.reduce)] {
                    for node in 0..darts::NODES {
                        if rng.below(2) == 1 {
                            cell[2 * node] = other[2 * node];
                            cell[2 * node + 1] = other[2 * node + 1];
                        }
                    }
                }
                Some(Arch::Darts(c))
            }
            _ => None,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_parse_their_own_examples_and_hash_stably() {
        for s in Space::ALL {
            let d = s.describe();
            let a = s.parse(&d.example).unwrap();
            assert_eq!(a.space(), s);
            assert_eq!(a.hash().len(), 16);
            assert_eq!(s.parse(&a.to_text()).unwrap().hash(), a.hash());
            assert_eq!(s.name().parse::<Space>().unwrap(), s);
        }
        assert!("resnet"
            .parse::<Space>()
            .unwrap_err()
            .to_string()
            .contains("darts, nb201"));
    }

    #[test]
    fn crossover_takes_every_unit_from_a_parent_and_stays_valid() {
        let mut rng = Rng::seed(8);
        for s in Space::ALL {
            for _ in 0..50 {
                let (a, b) = (s.random(&mut rng), s.random(&mut rng));
                let c = a.crossover(&b, &mut rng).unwrap();
                // Valid: it parses back from its text.
                assert_eq!(s.parse(&c.to_text()).unwrap(), c);
                if let (Arch::Nb201(x), Arch::Nb201(y), Arch::Nb201(z)) = (&a, &b, &c) {
                    for k in 0..6 {
                        assert!(z.ops[k] == x.ops[k] || z.ops[k] == y.ops[k]);
                    }
                }
            }
        }
        let d = Space::Darts.random(&mut rng);
        let n = Space::Nb201.random(&mut rng);
        assert!(d.crossover(&n, &mut rng).is_none());
    }

    #[test]
    fn hashes_differ_across_spaces_and_architectures() {
        let mut rng = Rng::seed(4);
        let mut archs: Vec<Arch> = Vec::new();
        for s in Space::ALL {
            for _ in 0..20 {
                archs.push(s.random(&mut rng));
            }
        }
        // An NB201 cell and its copy with an unused edge changed compute
        // the same function: the same hash (checked, not assumed).
        let same = Space::Nb201
            .parse("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
            .unwrap();
        let twin = Space::Nb201
            .parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
            .unwrap();
        assert_eq!(same.hash(), twin.hash());
        let mut differing = 0;
        for (i, a) in archs.iter().enumerate() {
            for b in &archs[i + 1..] {
                let equal = a.space() == b.space() && a.canonical() == b.canonical();
                assert_eq!(equal, a.hash() == b.hash(), "{a} vs {b}");
                differing += usize::from(!equal);
            }
        }
        assert!(differing > 700, "{differing} differing pairs");
    }
}
