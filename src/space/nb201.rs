//! The NAS-Bench-201 cell search space (Dong & Yang, ICLR 2020).
//!
//! A cell is a DAG over 4 nodes; each of the 6 edges `j -> i` (`j < i`) carries
//! one of 5 ops. Text form:
//! `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|` (node 1's edge, node 2's, node 3's).

use super::error::{quoted, ArchError};
use crate::rng::Rng;

const SPACE: &str = "nb201";

/// The five candidate operations.
pub const OPS: [&str; 5] = [
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
];

/// One of the five operations on an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `none`: the zero op (the edge is absent).
    None,
    /// `skip_connect`: identity.
    SkipConnect,
    /// `nor_conv_1x1`: ReLU, 1x1 convolution, batch norm.
    Conv1x1,
    /// `nor_conv_3x3`: ReLU, 3x3 convolution, batch norm.
    Conv3x3,
    /// `avg_pool_3x3`: 3x3 average pooling.
    AvgPool3x3,
}

impl Op {
    /// Every op, in [`OPS`] order.
    pub const ALL: [Op; 5] = [
        Op::None,
        Op::SkipConnect,
        Op::Conv1x1,
        Op::Conv3x3,
        Op::AvgPool3x3,
    ];

    /// The op's name in the benchmark's notation.
    pub fn name(self) -> &'static str {
        OPS[self.index()]
    }

    /// Its position in [`OPS`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The op of a name, if it is one.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.name() == name)
    }
}

/// Edges in text order, as `(to, from)`.
pub const EDGES: [(usize, usize); 6] = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)];

/// Number of cells in the space (5^6).
pub const SIZE: usize = 15_625;

/// A NAS-Bench-201 cell: the op of each edge in [`EDGES`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nb201Cell {
    /// Op per edge.
    pub ops: [Op; 6],
}

impl Nb201Cell {
    /// Parse the benchmark's string form.
    pub fn parse(text: &str) -> Result<Self, ArchError> {
        let t = text.trim();
        let nodes: Vec<&str> = t.split('+').collect();
        if nodes.len() != 3 {
            return Err(ArchError::new(
                SPACE,
                "",
                format!(
                    "expected 3 nodes separated by '+' like |op~0|+|op~0|op~1|+|op~0|op~1|op~2|, found {} in {}",
                    nodes.len(),
                    quoted(t)
                ),
            ));
        }
        let mut ops = [Op::None; 6];
        let mut k = 0;
        for (n, node) in nodes.iter().enumerate() {
            let to = n + 1;
            let node = node.trim();
            let inner = node
                .strip_prefix('|')
                .and_then(|s| s.strip_suffix('|'))
                .ok_or_else(|| {
                    ArchError::new(
                        SPACE,
                        format!("node {to}"),
                        format!("each node is written |op~j|...|, found {}", quoted(node)),
                    )
                })?;
            let edges: Vec<&str> = inner.split('|').collect();
            if edges.len() != to {
                return Err(ArchError::new(
                    SPACE,
                    format!("node {to}"),
                    format!(
                        "node {to} takes {to} inputs (from nodes 0..={}), found {} in {}",
                        to - 1,
                        edges.len(),
                        quoted(node)
                    ),
                ));
            }
            for (from, edge) in edges.iter().enumerate() {
                let at = format!("node {to}, edge from node {from}");
                let (op, idx) = edge.split_once('~').ok_or_else(|| {
                    ArchError::new(
                        SPACE,
                        at.clone(),
                        format!("expected op~{from}, found {}", quoted(edge)),
                    )
                })?;
                let op = op.trim();
                let o = Op::from_name(op).ok_or_else(|| {
                    ArchError::new(
                        SPACE,
                        at.clone(),
                        format!("unknown op {}; valid ops: {}", quoted(op), OPS.join(", ")),
                    )
                })?;
                let idx: usize = idx.trim().parse().map_err(|_| {
                    ArchError::new(
                        SPACE,
                        at.clone(),
                        format!("input index must be a number, found {}", quoted(idx)),
                    )
                })?;
                if idx != from {
                    return Err(ArchError::new(
                        SPACE,
                        at,
                        format!("edge {} of node {to} must read node {from} (written ~{from}), found ~{idx}", from + 1),
                    ));
                }
                ops[k] = o;
                k += 1;
            }
        }
        Ok(Nb201Cell { ops })
    }

    /// The benchmark's string form.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let mut k = 0;
        for to in 1..=3 {
            if to > 1 {
                s.push('+');
            }
            s.push('|');
            for from in 0..to {
                s.push_str(self.ops[k].name());
                s.push('~');
                s.push_str(&from.to_string());
                s.push('|');
                k += 1;
            }
        }
        s
    }

    /// A dense code in `0..SIZE` (base-5 digits, first edge most significant).
    pub fn code(&self) -> usize {
        self.ops.iter().fold(0, |acc, &o| acc * 5 + o.index())
    }

    /// The cell with the given [`code`](Self::code); `None` when out of range.
    pub fn from_code(code: usize) -> Option<Self> {
        if code >= SIZE {
            return None;
        }
        let mut ops = [Op::None; 6];
        let mut c = code;
        for i in (0..6).rev() {
            ops[i] = Op::ALL[c % Op::ALL.len()];
            c /= 5;
        }
        Some(Nb201Cell { ops })
    }

    /// Canonical form: cells computing the same function share it.
    ///
    /// This follows the benchmark's own equivalence (the one behind its count
    /// of 6,466 distinct cells among 15,625): each node is written as the
    /// sorted, `+`-joined list of its incoming terms. An edge with `none`, or
    /// one reading a node written `#`, is the zero term `#`; `skip_connect`
    /// passes its input's text through as one term; any other op `o` on input
    /// `e` is `(e)@o`. The input node is `0`; the form is node 3's text.
    pub fn canonical(&self) -> String {
        let mut nodes: [String; 4] = ["0".to_string(), String::new(), String::new(), String::new()];
        for to in 1..4 {
            let mut terms: Vec<String> = EDGES
                .iter()
                .enumerate()
                .filter(|(_, &(t, _))| t == to)
                .map(|(k, &(_, from))| {
                    let op = self.ops[k].name();
                    let input = &nodes[from];
                    if op == "none" || input == "#" {
                        "#".to_string()
                    } else if op == "skip_connect" {
                        input.clone()
                    } else {
                        format!("({input})@{op}")
                    }
                })
                .collect();
            terms.sort();
            nodes[to] = terms.join("+");
        }
        nodes[3].clone()
    }

    /// A uniformly random cell.
    pub fn random(rng: &mut Rng) -> Self {
        let mut ops = [Op::None; 6];
        for o in ops.iter_mut() {
            *o = Op::ALL[rng.below(Op::ALL.len())];
        }
        Nb201Cell { ops }
    }

    /// Change one edge to a different op.
    pub fn mutate(&self, rng: &mut Rng) -> Self {
        let mut child = *self;
        let e = rng.below(6);
        let choices: Vec<Op> = Op::ALL.into_iter().filter(|&o| o != self.ops[e]).collect();
        if let Some(&o) = rng.choose(&choices) {
            child.ops[e] = o;
        }
        child
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const A: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";

    #[test]
    fn parse_print_roundtrip_and_codes() {
        let c = Nb201Cell::parse(A).unwrap();
        assert_eq!(c.to_text(), A);
        assert_eq!(Nb201Cell::from_code(c.code()), Some(c));
        for code in [0, 1, 777, SIZE - 1] {
            let c = Nb201Cell::from_code(code).unwrap();
            assert_eq!(Nb201Cell::parse(&c.to_text()).unwrap().code(), code);
        }
        assert_eq!(Nb201Cell::from_code(SIZE), None);
    }

    #[test]
    fn canonical_forms_count_6466_distinct_functions() {
        let distinct: HashSet<String> = (0..SIZE)
            .map(|c| Nb201Cell::from_code(c).unwrap().canonical())
            .collect();
        assert_eq!(distinct.len(), 6466);
    }

    #[test]
    fn disconnected_edges_do_not_change_the_canonical_form() {
        // Node 1 is unreachable (edge 0->1 is none), so what node 1 feeds does not matter.
        let a = Nb201Cell::parse("|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|").unwrap();
        let b = Nb201Cell::parse(
            "|none~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        )
        .unwrap();
        assert_ne!(a, b);
        assert_eq!(a.canonical(), b.canonical());
        let c = Nb201Cell::parse(A).unwrap();
        assert_ne!(a.canonical(), c.canonical());
    }

    #[test]
    fn errors_say_where_and_what() {
        let cases = [
            ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "expected 3 nodes"),
            ("|conv_5x5~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "unknown op 'conv_5x5'"),
            ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~2|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "node 2, edge from node 1"),
            ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "node 2 takes 2 inputs"),
            ("|nor_conv_3x3|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "expected op~0"),
            ("", "expected 3 nodes"),
        ];
        for (text, want) in cases {
            let e = Nb201Cell::parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
        let e = Nb201Cell::parse(cases[1].0).unwrap_err().to_string();
        assert!(e.contains("nor_conv_1x1"), "lists valid ops: {e}");
    }

    #[test]
    fn mutation_changes_exactly_one_edge() {
        let mut rng = Rng::seed(9);
        for _ in 0..100 {
            let c = Nb201Cell::random(&mut rng);
            let m = c.mutate(&mut rng);
            let diff = c
                .ops
                .iter()
                .zip(m.ops.iter())
                .filter(|(a, b)| a != b)
                .count();
            assert_eq!(diff, 1);
        }
    }
}
