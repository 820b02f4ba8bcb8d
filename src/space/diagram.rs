//! Cell diagrams: an architecture drawn as an SVG graph, the way papers of
//! the DARTS family show their cells.
//!
//! A cell becomes a [`CellGraph`]: its nodes on one horizontal line, in
//! topological order (inputs, intermediate nodes, output), and one labelled
//! edge per op, drawn as a half-ellipse above or below the line, so that no
//! edge passes through a node. Edges are coloured by op; an arrowhead marks
//! the node that reads the edge. A DARTS genotype gives two graphs (normal
//! and reduction cell) whose intermediate nodes are concatenated into the
//! output; a NAS-Bench-201 cell gives one graph of 4 nodes and 6 edges.
//!
//! The SVG uses presentation attributes only (no stylesheet, no ids), so it
//! looks the same as a standalone file and inline in a page, several times
//! over.

use super::{darts, nb201, Arch};
use crate::markup::{escape, num};
use std::fmt::Write as _;

/// What a node of a cell is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// An input of the cell (the previous cells' outputs, or the cell input).
    Input,
    /// An intermediate node (the sum of its incoming edges).
    Intermediate,
    /// The cell's output.
    Output,
}

/// One node of a cell graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Main label (`c`, `2`, `0`, ...).
    pub label: String,
    /// Subscript of the label (`k-2` for DARTS inputs), if any.
    pub sub: Option<String>,
    /// What it is.
    pub kind: NodeKind,
}

/// One op edge: `to` reads `from` through `op`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpEdge {
    /// Index of the input node.
    pub from: usize,
    /// Index of the node that reads it.
    pub to: usize,
    /// The op's name.
    pub op: &'static str,
}

/// One cell as a graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellGraph {
    /// `normal`, `reduce` or `cell`.
    pub name: &'static str,
    /// A caption (`normal cell`, ...).
    pub title: &'static str,
    /// Nodes in topological order.
    pub nodes: Vec<Node>,
    /// Op edges, in the space's text order.
    pub edges: Vec<OpEdge>,
    /// Nodes concatenated into the output node (DARTS), else empty.
    pub concat: Vec<usize>,
}

impl CellGraph {
    /// Nodes of a kind.
    pub fn count(&self, kind: NodeKind) -> usize {
        self.nodes.iter().filter(|n| n.kind == kind).count()
    }
}

fn node(label: &str, sub: Option<&str>, kind: NodeKind) -> Node {
    Node {
        label: label.into(),
        sub: sub.map(str::to_string),
        kind,
    }
}

fn darts_cell(name: &'static str, title: &'static str, cell: &darts::Cell) -> CellGraph {
    let mut nodes = vec![
        node("c", Some("k-2"), NodeKind::Input),
        node("c", Some("k-1"), NodeKind::Input),
    ];
    for i in 0..darts::NODES {
        nodes.push(node(&(i + 2).to_string(), None, NodeKind::Intermediate));
    }
    nodes.push(node("c", Some("k"), NodeKind::Output));
    let edges = cell
        .iter()
        .enumerate()
        .map(|(i, e)| OpEdge {
            from: e.input as usize,
            to: i / 2 + 2,
            op: e.op_name(),
        })
        .collect();
    CellGraph {
        name,
        title,
        nodes,
        edges,
        concat: (2..2 + darts::NODES).collect(),
    }
}

fn nb201_cell(cell: &nb201::Nb201Cell) -> CellGraph {
    let nodes = vec![
        node("0", None, NodeKind::Input),
        node("1", None, NodeKind::Intermediate),
        node("2", None, NodeKind::Intermediate),
        node("3", None, NodeKind::Output),
    ];
    let edges = nb201::EDGES
        .iter()
        .zip(cell.ops)
        .map(|(&(to, from), op)| OpEdge {
            from,
            to,
            op: op.name(),
        })
        .collect();
    CellGraph {
        name: "cell",
        title: "NAS-Bench-201 cell",
        nodes,
        edges,
        concat: Vec::new(),
    }
}

/// The graphs of an architecture's cells (DARTS: normal then reduction cell).
pub fn cells(arch: &Arch) -> Vec<CellGraph> {
    match arch {
        Arch::Darts(g) => vec![
            darts_cell("normal", "normal cell", &g.normal),
            darts_cell("reduce", "reduction cell", &g.reduce),
        ],
        Arch::Nb201(c) => vec![nb201_cell(c)],
    }
}

/// The colour an op's edges are drawn in, and whether the edge is dashed
/// (`none`: the edge is absent in the network).
pub fn op_color(op: &str) -> (&'static str, bool) {
    match op {
        "sep_conv_3x3" | "nor_conv_3x3" => ("#1f5fa8", false),
        "sep_conv_5x5" | "nor_conv_1x1" => ("#138d9c", false),
        "dil_conv_3x3" => ("#7a4fb0", false),
        "dil_conv_5x5" => ("#b8489a", false),
        "max_pool_3x3" => ("#c0392b", false),
        "avg_pool_3x3" => ("#d2691e", false),
        "skip_connect" => ("#2e8b3a", false),
        _ => ("#9a9a9a", true),
    }
}

// Layout constants (pixels).
const SPACING: f64 = 108.0;
const MARGIN_X: f64 = 56.0;
const RADIUS: f64 = 16.0;
const INPUT_HALF_WIDTH: f64 = 24.0;
const LEVEL_BASE: f64 = 30.0;
const LEVEL_STEP: f64 = 21.0;
const CHAR_WIDTH: f64 = 6.7;
const TITLE_HEIGHT: f64 = 26.0;

/// Where an edge is drawn: above (`true`) or below the node line, and at
/// which level (its label's height step).
#[derive(Debug, Clone, Copy)]
struct Placement {
    above: bool,
    level: usize,
}

fn label_width(op: &str) -> f64 {
    op.len() as f64 * CHAR_WIDTH + 8.0
}

fn node_x(i: usize) -> f64 {
    MARGIN_X + i as f64 * SPACING
}

fn arc_height(level: usize) -> f64 {
    LEVEL_BASE + LEVEL_STEP * level.saturating_sub(1) as f64
}

/// Put each edge above or below the line, at a level at least its span,
/// so that no two labels overlap. The edges into a node alternate sides
/// (the first above), so a node's inputs arrive from both; an edge whose
/// side is taken goes to the other side, or one level further out if both
/// are.
fn place(graph: &CellGraph) -> Vec<Placement> {
    let mut placed: Vec<(Placement, f64, f64)> = Vec::new(); // placement, centre x, width
    let mut out = Vec::with_capacity(graph.edges.len());
    for (k, e) in graph.edges.iter().enumerate() {
        let nth = graph.edges[..k].iter().filter(|x| x.to == e.to).count();
        let prefer_above = nth % 2 == 0;
        let (a, b) = (e.from.min(e.to), e.from.max(e.to));
        let cx = (node_x(a) + node_x(b)) / 2.0;
        let w = label_width(e.op);
        let mut level = (b - a).max(1);
        let mut return_placement = None;
        let p = loop {
            let free = |above: bool| {
                !placed.iter().any(|(p, x, w2)| {
                    p.above == above && p.level == level && (x - cx).abs() < (w + w2) / 2.0 + 4.0
                })
            };
            for above in [prefer_above, !prefer_above] {
                if free(above) {
                    return_placement = Some(Placement { above, level });
                    break;
                }
            }
            if let Some(p) = return_placement.take() {
                break p;
            }
            level += 1;
        };
        placed.push((p, cx, w));
        out.push(p);
    }
    out
}

fn node_svg(out: &mut String, n: &Node, x: f64, y: f64) {
    let (fill, stroke) = match n.kind {
        NodeKind::Input => ("#dceefb", "#3c6e9e"),
        NodeKind::Intermediate => ("#fff6d6", "#9c7a1c"),
        NodeKind::Output => ("#dff3df", "#3b7d3b"),
    };
    let kind = match n.kind {
        NodeKind::Input => "input",
        NodeKind::Intermediate => "intermediate",
        NodeKind::Output => "output",
    };
    let _ = write!(out, r#"<g class="node" data-kind="{kind}">"#);
    if n.sub.is_some() {
        let _ = write!(
            out,
            r#"<rect x="{}" y="{}" width="{}" height="{}" rx="9" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>"#,
            num(x - INPUT_HALF_WIDTH),
            num(y - RADIUS),
            num(2.0 * INPUT_HALF_WIDTH),
            num(2.0 * RADIUS)
        );
    } else {
        let _ = write!(
            out,
            r#"<circle cx="{}" cy="{}" r="{}" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>"#,
            num(x),
            num(y),
            num(RADIUS)
        );
    }
    let _ = write!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle" font-family="Helvetica, Arial, sans-serif" font-size="14" font-weight="bold" fill="#222">{}"##,
        num(x - if n.sub.is_some() { 5.0 } else { 0.0 }),
        num(y + 5.0),
        escape(&n.label)
    );
    if let Some(s) = &n.sub {
        let _ = write!(
            out,
            r#"<tspan dy="4" font-size="10" font-weight="normal">{}</tspan>"#,
            escape(s)
        );
    }
    out.push_str("</text></g>");
}

/// A point on the edge's half-ellipse where it meets the reading node's
/// outline, and the direction of travel there (unit vector).
fn arrow_at(x_from: f64, x_to: f64, y: f64, h: f64, above: bool, inset: f64) -> [(f64, f64); 2] {
    let cx = (x_from + x_to) / 2.0;
    let rx = (x_to - x_from) / 2.0; // signed: negative when drawn leftwards
    let s = (inset / h).clamp(0.0, 0.95);
    let c = (1.0 - s * s).sqrt();
    let sign = if above { -1.0 } else { 1.0 };
    let px = cx + rx * c;
    let py = y + sign * h * s;
    // Moving towards the end point: x grows with rx's sign, |y - line| shrinks.
    let (dx, dy) = (rx * s, -sign * h * c);
    let len = (dx * dx + dy * dy).sqrt().max(1e-9);
    [(px, py), (dx / len, dy / len)]
}

fn edge_svg(out: &mut String, g: &CellGraph, e: &OpEdge, p: Placement, y: f64) {
    let (color, dashed) = op_color(e.op);
    let (x1, x2) = (node_x(e.from), node_x(e.to));
    let h = arc_height(p.level);
    let rx = ((x2 - x1) / 2.0).abs();
    // Sweep 1 goes clockwise on screen: over the top when drawn rightwards.
    let sweep = u8::from(p.above == (x2 >= x1));
    let from_label = node_name(&g.nodes[e.from]);
    let to_label = node_name(&g.nodes[e.to]);
    let _ = write!(
        out,
        r#"<g class="op-edge" data-op="{op}" data-from="{}" data-to="{}"><title>{op}: node {} → node {}</title>"#,
        e.from,
        e.to,
        escape(&from_label),
        escape(&to_label),
        op = escape(e.op)
    );
    let _ = write!(
        out,
        r#"<path d="M{} {} A{} {} 0 0 {sweep} {} {}" fill="none" stroke="{color}" stroke-width="{}"{}/>"#,
        num(x1),
        num(y),
        num(rx),
        num(h),
        num(x2),
        num(y),
        if dashed { "1.2" } else { "1.8" },
        if dashed {
            r#" stroke-dasharray="4 3""#
        } else {
            ""
        }
    );
    let [(tx, ty), (dx, dy)] = arrow_at(x1, x2, y, h, p.above, RADIUS + 1.0);
    let (len, half) = (9.0, 4.0);
    let (bx, by) = (tx - dx * len, ty - dy * len);
    let _ = write!(
        out,
        r#"<polygon points="{},{} {},{} {},{}" fill="{color}"/>"#,
        num(tx),
        num(ty),
        num(bx - dy * half),
        num(by + dx * half),
        num(bx + dy * half),
        num(by - dx * half)
    );
    let ly = if p.above { y - h - 4.0 } else { y + h + 12.0 };
    let _ = write!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle" font-family="Menlo, Consolas, monospace" font-size="11" fill="{color}" stroke="#fff" stroke-width="4" stroke-linejoin="round" paint-order="stroke">{}</text></g>"##,
        num((x1 + x2) / 2.0),
        num(ly),
        escape(e.op)
    );
}

fn node_name(n: &Node) -> String {
    match &n.sub {
        Some(s) => format!("{}_{{{s}}}", n.label),
        None => n.label.clone(),
    }
}

/// Draw one cell at vertical offset `top`; returns its height.
fn cell_svg(out: &mut String, g: &CellGraph, top: f64) -> f64 {
    let placements = place(g);
    let up = placements
        .iter()
        .filter(|p| p.above)
        .map(|p| arc_height(p.level))
        .fold(RADIUS, f64::max);
    let down = placements
        .iter()
        .filter(|p| !p.above)
        .map(|p| arc_height(p.level) + 12.0)
        .fold(RADIUS, f64::max);
    let y = top + TITLE_HEIGHT + up + 14.0;
    let _ = write!(
        out,
        r##"<g class="cell" data-cell="{}"><text x="8" y="{}" font-family="Helvetica, Arial, sans-serif" font-size="14" font-weight="bold" fill="#333">{}</text>"##,
        g.name,
        num(top + 17.0),
        escape(g.title)
    );
    let mut bottom = y + down + 8.0;
    if let (false, Some(last)) = (g.concat.is_empty(), g.nodes.len().checked_sub(1)) {
        // The concatenation: a dashed bus below every edge, into the output.
        let bus = y + down + 14.0;
        let xs: Vec<f64> = g.concat.iter().map(|&i| node_x(i)).collect();
        let x_out = node_x(last);
        let _ = write!(
            out,
            r##"<g class="concat" fill="none" stroke="#8a8a8a" stroke-width="1.2" stroke-dasharray="2 3">"##
        );
        for x in &xs {
            let _ = write!(
                out,
                r#"<path d="M{} {} V{}"/>"#,
                num(*x),
                num(y + RADIUS),
                num(bus)
            );
        }
        let x_min = xs.iter().cloned().fold(x_out, f64::min);
        let _ = write!(
            out,
            r#"<path d="M{} {} H{} V{}"/></g>"#,
            num(x_min),
            num(bus),
            num(x_out),
            num(y + RADIUS + 2.0)
        );
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end" font-family="Helvetica, Arial, sans-serif" font-size="11" fill="#666">concat</text>"##,
            num(x_out - 6.0),
            num(bus + 13.0)
        );
        bottom = bus + 20.0;
    }
    for (e, p) in g.edges.iter().zip(&placements) {
        edge_svg(out, g, e, *p, y);
    }
    for (i, n) in g.nodes.iter().enumerate() {
        node_svg(out, n, node_x(i), y);
    }
    if let (Some(first), Some(last)) = (g.nodes.first(), g.nodes.last()) {
        if first.sub.is_none() {
            let _ = write!(
                out,
                r##"<text x="{}" y="{}" text-anchor="end" font-family="Helvetica, Arial, sans-serif" font-size="11" fill="#666">input</text>"##,
                num(node_x(0) - RADIUS - 4.0),
                num(y + 4.0)
            );
        }
        if last.kind == NodeKind::Output && g.concat.is_empty() {
            let _ = write!(
                out,
                r##"<text x="{}" y="{}" font-family="Helvetica, Arial, sans-serif" font-size="11" fill="#666">output</text>"##,
                num(node_x(g.nodes.len() - 1) + RADIUS + 4.0),
                num(y + 4.0)
            );
        }
    }
    out.push_str("</g>");
    bottom - top
}

/// The architecture's cells as one SVG document (standalone, or inline in
/// HTML). Its root carries `class="cell-diagram"` and `data-space`; each
/// cell is a `g.cell`, each op edge a `g.op-edge` with `data-op`.
pub fn svg(arch: &Arch) -> String {
    let graphs = cells(arch);
    let width = graphs
        .iter()
        .map(|g| 2.0 * MARGIN_X + SPACING * g.nodes.len().saturating_sub(1) as f64)
        .fold(0.0, f64::max);
    let mut body = String::new();
    let mut top = 0.0;
    for g in &graphs {
        top += cell_svg(&mut body, g, top) + 6.0;
    }
    let height = top.max(1.0);
    let mut out = String::with_capacity(body.len() + 300);
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="cell-diagram" data-space="{space}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{space} cell diagram"><title>{}</title><rect width="100%" height="100%" fill="#fff"/>"##,
        escape(&arch.to_text()),
        space = arch.space().name(),
        w = num(width),
        h = num(height)
    );
    out.push_str(&body);
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::space::Space;

    const DARTS_V2: &str = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";

    #[test]
    fn darts_cells_have_two_inputs_four_nodes_eight_edges() {
        let a = Space::Darts.parse(DARTS_V2).unwrap();
        let gs = cells(&a);
        assert_eq!(gs.len(), 2);
        for g in &gs {
            assert_eq!(g.count(NodeKind::Input), 2);
            assert_eq!(g.count(NodeKind::Intermediate), 4);
            assert_eq!(g.count(NodeKind::Output), 1);
            assert_eq!(g.edges.len(), 8);
            assert_eq!(g.concat, vec![2, 3, 4, 5]);
            for e in &g.edges {
                assert!(e.from < e.to && (2..=5).contains(&e.to), "{e:?}");
            }
        }
        assert_eq!(gs[0].edges[7].op, "dil_conv_3x3");
        assert_eq!((gs[0].edges[7].from, gs[0].edges[7].to), (2, 5));
        let s = svg(&a);
        assert_eq!(s.matches(r#"<g class="cell""#).count(), 2);
        assert_eq!(s.matches(r#"<g class="op-edge""#).count(), 16);
        assert_eq!(s.matches(r#"data-op="sep_conv_3x3""#).count(), 5);
        assert_eq!(s.matches(r#"data-kind="intermediate""#).count(), 8);
        assert!(s.contains(">normal cell<") && s.contains(">reduction cell<"));
        assert!(s.starts_with("<svg xmlns=") && s.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn nb201_cell_has_four_nodes_and_six_edges() {
        let a = Space::Nb201
            .parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|skip_connect~2|")
            .unwrap();
        let gs = cells(&a);
        assert_eq!(gs.len(), 1);
        let g = &gs[0];
        assert_eq!(g.nodes.len(), 4);
        assert_eq!(g.edges.len(), 6);
        assert_eq!(
            g.edges
                .iter()
                .map(|e| (e.from, e.to, e.op))
                .collect::<Vec<_>>()[4],
            (1, 3, "none")
        );
        let s = svg(&a);
        assert_eq!(s.matches(r#"<g class="op-edge""#).count(), 6);
        assert_eq!(
            s.matches(r#"stroke-dasharray="4 3""#).count(),
            1,
            "none is dashed"
        );
        assert!(s.contains(">input<") && s.contains(">output<"));
    }

    #[test]
    fn labels_never_overlap_and_arcs_stay_in_the_picture() {
        let mut rng = Rng::seed(7);
        for _ in 0..200 {
            for space in Space::ALL {
                let a = space.random(&mut rng);
                for g in cells(&a) {
                    let ps = place(&g);
                    for i in 0..ps.len() {
                        for j in 0..i {
                            let (ei, ej) = (&g.edges[i], &g.edges[j]);
                            let xi = (node_x(ei.from) + node_x(ei.to)) / 2.0;
                            let xj = (node_x(ej.from) + node_x(ej.to)) / 2.0;
                            let same_row = ps[i].above == ps[j].above && ps[i].level == ps[j].level;
                            let apart =
                                (xi - xj).abs() >= (label_width(ei.op) + label_width(ej.op)) / 2.0;
                            assert!(!same_row || apart, "{a}: edges {i} and {j} overlap");
                        }
                    }
                }
                let s = svg(&a);
                assert!(!s.contains("NaN"), "{s}");
            }
        }
    }

    #[test]
    fn the_title_is_escaped() {
        // Architecture text never holds markup, but the title must be escaped anyway.
        let a = Space::Nb201.random(&mut Rng::seed(1));
        let s = svg(&a);
        let title = &s[s.find("<title>").unwrap() + 7..s.find("</title>").unwrap()];
        assert_eq!(title, escape(&a.to_text()));
        assert!(!title.contains('<'));
    }

    #[test]
    fn arrowheads_sit_on_the_arc() {
        // The tip lies on the ellipse, RADIUS + 1 from the line, moving towards the node.
        let [(x, y), (dx, dy)] = arrow_at(0.0, 100.0, 50.0, 40.0, true, 17.0);
        let (cx, rx) = (50.0, 50.0);
        let on = ((x - cx) / rx).powi(2) + ((y - 50.0) / 40.0).powi(2);
        assert!((on - 1.0).abs() < 1e-9, "{on}");
        assert!((y - 33.0).abs() < 1e-9);
        assert!(dx > 0.0 && dy > 0.0, "moves right and down into the node");
        let [(_, y2), (_, dy2)] = arrow_at(0.0, 100.0, 50.0, 40.0, false, 17.0);
        assert!(y2 > 50.0 && dy2 < 0.0);
    }
}
