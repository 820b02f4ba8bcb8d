//! The DARTS cell search space (Liu et al., ICLR 2019).
//!
//! A genotype has a normal and a reduction cell. Each cell has 4 intermediate
//! nodes (numbered 2..=5; 0 and 1 are the outputs of the two previous cells);
//! each intermediate node sums two `(op, input)` edges whose input is an
//! earlier node. The cell's output concatenates nodes 2..=5.
//!
//! Two text forms are read and written: JSON
//! `{"normal": [["sep_conv_3x3", 0], ...], "reduce": [...]}` and the
//! `Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2, 6), ...)`
//! string of the DARTS family of PyTorch code.

use super::error::{quoted, ArchError};
use crate::rng::Rng;

pub(super) const SPACE: &str = "darts";

/// The eight candidate operations, in the DARTS `PRIMITIVES` order.
pub const OPS: [&str; 8] = [
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
];

/// One of the eight candidate operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// `none`: the zero op.
    None,
    /// `max_pool_3x3`.
    MaxPool3x3,
    /// `avg_pool_3x3`.
    AvgPool3x3,
    /// `skip_connect`: identity (a factorized reduction at stride 2).
    SkipConnect,
    /// `sep_conv_3x3`: two stacked separable 3x3 convolutions.
    SepConv3x3,
    /// `sep_conv_5x5`.
    SepConv5x5,
    /// `dil_conv_3x3`: a dilated separable 3x3 convolution.
    DilConv3x3,
    /// `dil_conv_5x5`.
    DilConv5x5,
}

impl Op {
    /// Every op, in [`OPS`] order.
    pub const ALL: [Op; 8] = [
        Op::None,
        Op::MaxPool3x3,
        Op::AvgPool3x3,
        Op::SkipConnect,
        Op::SepConv3x3,
        Op::SepConv5x5,
        Op::DilConv3x3,
        Op::DilConv5x5,
    ];

    /// The op's name in the DARTS notation.
    pub fn name(self) -> &'static str {
        OPS[self as usize]
    }

    /// The op of a name, if it is one.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.name() == name)
    }
}

/// Intermediate nodes per cell.
pub const NODES: usize = 4;
/// Edges per cell (two per intermediate node).
pub const EDGES: usize = 2 * NODES;

/// One edge of a cell: an op and the input node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Edge {
    /// The operation.
    pub op: Op,
    /// Input node: 0 and 1 are the cell inputs, 2.. the intermediate nodes.
    pub input: u8,
}

impl Edge {
    /// The op's name.
    pub fn op_name(&self) -> &'static str {
        self.op.name()
    }
}

/// A cell: 8 edges, edges `2i` and `2i+1` feeding intermediate node `i + 2`.
pub type Cell = [Edge; EDGES];

/// A DARTS genotype: a normal and a reduction cell.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Genotype {
    /// The normal cell (stride 1).
    pub normal: Cell,
    /// The reduction cell (stride 2 on the cell inputs).
    pub reduce: Cell,
}

fn op_index(name: &str, at: &str) -> Result<Op, ArchError> {
    Op::from_name(name).ok_or_else(|| {
        ArchError::new(
            SPACE,
            at,
            format!("unknown op {}; valid ops: {}", quoted(name), OPS.join(", ")),
        )
    })
}

pub(super) fn edge_location(cell: &str, i: usize) -> String {
    format!("{cell} cell, node {}, edge {}", i / 2 + 2, i % 2 + 1)
}

/// Build and validate one cell from `(op, input)` pairs.
pub(super) fn build_cell(cell: &str, pairs: &[(String, i64)]) -> Result<Cell, ArchError> {
    if pairs.len() != EDGES {
        return Err(ArchError::new(
            SPACE,
            format!("{cell} cell"),
            format!(
                "expected {EDGES} (op, input) pairs (2 for each of the {NODES} nodes), found {}",
                pairs.len()
            ),
        ));
    }
    let mut out = [Edge {
        op: Op::None,
        input: 0,
    }; EDGES];
    for (i, (name, input)) in pairs.iter().enumerate() {
        let at = edge_location(cell, i);
        let op = op_index(name, &at)?;
        let node = i / 2 + 2;
        if *input < 0 || *input >= node as i64 {
            return Err(ArchError::new(
                SPACE,
                at,
                format!(
                    "input {input} is out of range: node {node} takes inputs from nodes 0..={}",
                    node - 1
                ),
            ));
        }
        out[i] = Edge {
            op,
            input: *input as u8,
        };
    }
    Ok(out)
}

pub(super) fn check_concat(cell: &str, concat: Option<Vec<i64>>) -> Result<(), ArchError> {
    match concat {
        None => Ok(()),
        Some(v) if v == [2, 3, 4, 5] => Ok(()),
        Some(v) => Err(ArchError::new(
            SPACE,
            format!("{cell}_concat"),
            format!("only range(2, 6) (nodes 2, 3, 4, 5) is supported, found {v:?}"),
        )),
    }
}

impl Genotype {
    /// Parse either text form (JSON or `Genotype(...)`).
    pub fn parse(text: &str) -> Result<Self, ArchError> {
        let t = text.trim();
        if t.starts_with('{') {
            Self::parse_json(t)
        } else if t.starts_with("Genotype") {
            Self::parse_genotype(t)
        } else {
            Err(ArchError::new(
                SPACE,
                "",
                format!(
                    "expected JSON {{\"normal\": [...], \"reduce\": [...]}} or Genotype(normal=[...], ...), found {}",
                    quoted(t)
                ),
            ))
        }
    }

    /// Parse the JSON form.
    pub fn parse_json(text: &str) -> Result<Self, ArchError> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ArchError::new(SPACE, "", format!("not valid JSON: {e}")))?;
        Self::from_json(&v)
    }

    /// Read the JSON form from an already parsed value.
    pub fn from_json(v: &serde_json::Value) -> Result<Self, ArchError> {
        let obj = v.as_object().ok_or_else(|| {
            ArchError::new(
                SPACE,
                "",
                "expected a JSON object with keys \"normal\" and \"reduce\"",
            )
        })?;
        for key in obj.keys() {
            if !["normal", "reduce", "normal_concat", "reduce_concat"].contains(&key.as_str()) {
                return Err(ArchError::new(
                    SPACE,
                    "",
                    format!("unknown key {}; expected normal, reduce (and optionally normal_concat, reduce_concat)", quoted(key)),
                ));
            }
        }
        let cell = |name: &str| -> Result<Cell, ArchError> {
            let list = obj
                .get(name)
                .ok_or_else(|| ArchError::new(SPACE, "", format!("missing key \"{name}\"")))?
                .as_array()
                .ok_or_else(|| {
                    ArchError::new(
                        SPACE,
                        format!("{name} cell"),
                        "expected a list of [op, input] pairs",
                    )
                })?;
            let mut pairs = Vec::with_capacity(list.len());
            for (i, item) in list.iter().enumerate() {
                let at = edge_location(name, i);
                let pair = item.as_array().filter(|p| p.len() == 2).ok_or_else(|| {
                    ArchError::new(
                        SPACE,
                        at.clone(),
                        format!("expected [op, input], found {item}"),
                    )
                })?;
                let op = pair[0].as_str().ok_or_else(|| {
                    ArchError::new(
                        SPACE,
                        at.clone(),
                        format!("op must be a string, found {}", pair[0]),
                    )
                })?;
                let input = pair[1].as_i64().ok_or_else(|| {
                    ArchError::new(
                        SPACE,
                        at.clone(),
                        format!("input must be an integer, found {}", pair[1]),
                    )
                })?;
                pairs.push((op.to_string(), input));
            }
            build_cell(name, &pairs)
        };
        let concat = |name: &str| -> Result<Option<Vec<i64>>, ArchError> {
            match obj.get(name) {
                None => Ok(None),
                Some(v) => v
                    .as_array()
                    .and_then(|a| a.iter().map(|x| x.as_i64()).collect::<Option<Vec<_>>>())
                    .map(Some)
                    .ok_or_else(|| {
                        ArchError::new(
                            SPACE,
                            name,
                            format!("expected a list of node numbers, found {v}"),
                        )
                    }),
            }
        };
        let g = Genotype {
            normal: cell("normal")?,
            reduce: cell("reduce")?,
        };
        check_concat("normal", concat("normal_concat")?)?;
        check_concat("reduce", concat("reduce_concat")?)?;
        Ok(g)
    }

    /// Parse the `Genotype(normal=[...], normal_concat=..., reduce=[...], reduce_concat=...)` form
    /// (see [`super::genotype`]).
    pub fn parse_genotype(text: &str) -> Result<Self, ArchError> {
        super::genotype::parse(text)
    }

    /// The `Genotype(...)` text form.
    pub fn to_genotype_string(&self) -> String {
        let cell = |c: &Cell| {
            c.iter()
                .map(|e| format!("('{}', {})", e.op_name(), e.input))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "Genotype(normal=[{}], normal_concat=range(2, 6), reduce=[{}], reduce_concat=range(2, 6))",
            cell(&self.normal),
            cell(&self.reduce)
        )
    }

    /// The JSON text form.
    pub fn to_json(&self) -> serde_json::Value {
        let cell = |c: &Cell| {
            serde_json::Value::Array(
                c.iter()
                    .map(|e| serde_json::json!([e.op_name(), e.input]))
                    .collect(),
            )
        };
        serde_json::json!({"normal": cell(&self.normal), "reduce": cell(&self.reduce)})
    }

    /// Canonical form: the same network written any way gives the same string.
    ///
    /// The two edges of a node are summed, so their order does not matter, and
    /// intermediate nodes that do not depend on each other can be renumbered
    /// without changing the function (the concatenation order is absorbed by
    /// the next cell's 1x1 preprocessing). The canonical cell is the smallest
    /// rendering over all valid renumberings.
    pub fn canonical(&self) -> String {
        format!(
            "normal:{};reduce:{}",
            canonical_cell(&self.normal),
            canonical_cell(&self.reduce)
        )
    }

    /// A uniformly random genotype in the DARTS convention: each node has two
    /// distinct inputs and non-`none` ops.
    pub fn random(rng: &mut Rng) -> Self {
        Genotype {
            normal: random_cell(rng),
            reduce: random_cell(rng),
        }
    }

    /// One random single-step change: one edge's op or one edge's input.
    pub fn mutate(&self, rng: &mut Rng) -> Self {
        let mut child = self.clone();
        let cell = if rng.below(2) == 0 {
            &mut child.normal
        } else {
            &mut child.reduce
        };
        let i = rng.below(EDGES);
        let node = i / 2 + 2;
        let sibling = cell[i ^ 1].input;
        // Inputs the edge may move to: any earlier node except its current input and its sibling's.
        let inputs: Vec<u8> = (0..node as u8)
            .filter(|&x| x != cell[i].input && x != sibling)
            .collect();
        if rng.below(2) == 0 || inputs.is_empty() {
            let ops: Vec<Op> = Op::ALL[1..]
                .iter()
                .copied()
                .filter(|&o| o != cell[i].op)
                .collect();
            if let Some(&op) = rng.choose(&ops) {
                cell[i].op = op;
            }
        } else if let Some(&input) = rng.choose(&inputs) {
            cell[i].input = input;
        }
        child
    }
}

fn random_cell(rng: &mut Rng) -> Cell {
    let mut cell = [Edge {
        op: Op::None,
        input: 0,
    }; EDGES];
    for n in 0..NODES {
        let inputs = rng.sample_indices(n + 2, 2);
        for (k, &input) in inputs.iter().enumerate() {
            cell[2 * n + k] = Edge {
                op: Op::ALL[1 + rng.below(Op::ALL.len() - 1)],
                input: input as u8,
            };
        }
    }
    cell
}

/// All permutations of the 4 intermediate nodes.
fn permutations() -> Vec<[u8; NODES]> {
    let mut out = Vec::with_capacity(24);
    for a in 0..4u8 {
        for b in 0..4u8 {
            for c in 0..4u8 {
                for d in 0..4u8 {
                    let p = [a, b, c, d];
                    if a != b && a != c && a != d && b != c && b != d && c != d {
                        out.push(p);
                    }
                }
            }
        }
    }
    out
}

fn canonical_cell(cell: &Cell) -> String {
    let mut best: Option<String> = None;
    'perm: for perm in permutations() {
        // perm[old node index] = new node index (both 0..4, i.e. node - 2).
        let mut nodes: [[Edge; 2]; NODES] = [[Edge {
            op: Op::None,
            input: 0,
        }; 2]; NODES];
        for old in 0..NODES {
            let new = perm[old] as usize;
            for k in 0..2 {
                let e = cell[2 * old + k];
                let input = if e.input >= 2 {
                    perm[(e.input - 2) as usize] + 2
                } else {
                    e.input
                };
                if input as usize >= new + 2 {
                    continue 'perm; // not a valid topological numbering
                }
                nodes[new][k] = Edge { op: e.op, input };
            }
            nodes[new].sort();
        }
        let s = nodes
            .iter()
            .map(|n| {
                format!(
                    "{}~{},{}~{}",
                    n[0].op_name(),
                    n[0].input,
                    n[1].op_name(),
                    n[1].input
                )
            })
            .collect::<Vec<_>>()
            .join("|");
        if best.as_ref().is_none_or(|b| s < *b) {
            best = Some(s);
        }
    }
    best.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2: &str = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";

    #[test]
    fn a_huge_concat_range_is_an_error_not_an_allocation() {
        // Found by the fuzz harness (kb target): range(i64::MIN, 6) panicked
        // with a capacity overflow; range(0, 4000000000) would exhaust memory.
        for r in ["range(-9223372036854775808, 6)", "range(0, 4000000000)"] {
            let text = V2.replacen(
                "normal_concat=[2, 3, 4, 5]",
                &format!("normal_concat={r}"),
                1,
            );
            let e = Genotype::parse(&text).unwrap_err().to_string();
            assert!(e.contains("only range(2, 6)") && e.contains(r), "{e}");
        }
    }

    #[test]
    fn genotype_string_roundtrips_through_both_forms() {
        let g = Genotype::parse(V2).unwrap();
        let s = g.to_genotype_string();
        assert!(s.contains("normal_concat=range(2, 6)"));
        assert_eq!(Genotype::parse(&s).unwrap(), g);
        let j = g.to_json().to_string();
        assert_eq!(Genotype::parse(&j).unwrap(), g);
    }

    #[test]
    fn edge_order_within_a_node_does_not_change_canonical_form() {
        let g = Genotype::parse(V2).unwrap();
        let mut h = g.clone();
        h.normal.swap(4, 5);
        h.reduce.swap(0, 1);
        assert_ne!(g, h);
        assert_eq!(g.canonical(), h.canonical());
        let mut k = g.clone();
        k.normal[0].op = Op::SepConv5x5;
        assert_ne!(g.canonical(), k.canonical());
    }

    #[test]
    fn independent_nodes_renumbered_share_canonical_form() {
        // Nodes 2 and 3 both read only cell inputs: swapping them is the same network.
        let a = r#"{"normal":[["sep_conv_3x3",0],["sep_conv_5x5",1],["dil_conv_3x3",0],["max_pool_3x3",1],["skip_connect",2],["skip_connect",3],["avg_pool_3x3",4],["sep_conv_3x3",0]],
                   "reduce":[["max_pool_3x3",0],["max_pool_3x3",1],["skip_connect",2],["max_pool_3x3",1],["max_pool_3x3",0],["skip_connect",2],["skip_connect",2],["max_pool_3x3",1]]}"#;
        let b = r#"{"normal":[["dil_conv_3x3",0],["max_pool_3x3",1],["sep_conv_3x3",0],["sep_conv_5x5",1],["skip_connect",3],["skip_connect",2],["avg_pool_3x3",4],["sep_conv_3x3",0]],
                   "reduce":[["max_pool_3x3",0],["max_pool_3x3",1],["skip_connect",2],["max_pool_3x3",1],["max_pool_3x3",0],["skip_connect",2],["skip_connect",2],["max_pool_3x3",1]]}"#;
        let ga = Genotype::parse(a).unwrap();
        let gb = Genotype::parse(b).unwrap();
        assert_ne!(ga, gb);
        assert_eq!(ga.canonical(), gb.canonical());
    }

    #[test]
    fn errors_name_the_place_and_the_problem() {
        let bad_op = V2.replacen("dil_conv_3x3", "sep_conv_7x7", 1);
        let e = Genotype::parse(&bad_op).unwrap_err().to_string();
        assert!(e.contains("normal cell, node 5, edge 2"), "{e}");
        assert!(
            e.contains("'sep_conv_7x7'") && e.contains("dil_conv_5x5"),
            "{e}"
        );

        let bad_input = V2.replacen("('sep_conv_3x3', 1)", "('sep_conv_3x3', 4)", 1);
        let e = Genotype::parse(&bad_input).unwrap_err().to_string();
        assert!(
            e.contains("normal cell, node 2, edge 2") && e.contains("input 4 is out of range"),
            "{e}"
        );

        let short = r#"{"normal": [["sep_conv_3x3", 0]], "reduce": []}"#;
        let e = Genotype::parse(short).unwrap_err().to_string();
        assert!(
            e.contains("expected 8 (op, input) pairs") && e.contains("found 1"),
            "{e}"
        );

        let concat = V2.replacen("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 5)", 1);
        let e = Genotype::parse(&concat).unwrap_err().to_string();
        assert!(e.contains("normal_concat"), "{e}");

        for junk in [
            "",
            "Genotype(",
            "Genotype(normal=[('a'",
            "{\"normal\": 3}",
            "hello",
            "Genotype(normal=[], reduce=[]) trailing",
        ] {
            assert!(Genotype::parse(junk).is_err(), "{junk}");
        }
    }

    #[test]
    fn random_and_mutated_genotypes_are_valid() {
        let mut rng = Rng::seed(1);
        for _ in 0..200 {
            let g = Genotype::random(&mut rng);
            let m = g.mutate(&mut rng);
            assert_ne!(g, m);
            for c in [&g.normal, &g.reduce, &m.normal, &m.reduce] {
                for (i, e) in c.iter().enumerate() {
                    assert!((e.input as usize) < i / 2 + 2);
                }
            }
            assert_eq!(Genotype::parse(&m.to_genotype_string()).unwrap(), m);
        }
    }
}
