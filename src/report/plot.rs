//! Small SVG charts: a plotting frame with axes and ticks, and the charts
//! drawn in it (best score so far, score against size with the Pareto
//! front, the lineage over time). Inline in the HTML pages every point is a
//! link to its row and carries a tooltip; [`best_so_far_file`] and
//! [`pareto_file`] draw the same charts as the standalone `.svg` files that
//! `report.md` shows.

use crate::markup::{escape, num};
use std::fmt::Write as _;

/// Series colours (colour-blind-safe order).
pub const COLORS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// The colour of series `i`.
pub fn color(i: usize) -> &'static str {
    COLORS[i % COLORS.len()]
}

/// "Nice" tick values covering `lo..=hi`, about `n` of them.
pub fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut out = Vec::new();
    let mut v = (lo / step).ceil() * step;
    while v <= hi + step * 1e-9 && out.len() < 50 {
        out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        v += step;
    }
    out
}

fn tick_label(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{}M", num(v / 1e6))
    } else if v.abs() >= 1e4 {
        format!("{}k", num(v / 1e3))
    } else {
        num(v)
    }
}

/// A chart's plotting area and its linear scales.
#[derive(Debug, Clone)]
pub struct Frame {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    x: (f64, f64),
    y: (f64, f64),
}

fn padded(lo: f64, hi: f64, frac: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let span = (hi - lo).abs().max(1e-6 * hi.abs().max(1.0));
    (lo - span * frac, hi + span * frac)
}

impl Frame {
    /// A `width` × `height` chart whose data span `xs` and `ys` (padded a little).
    pub fn new(width: f64, height: f64, xs: (f64, f64), ys: (f64, f64)) -> Frame {
        Frame {
            width,
            height,
            left: 62.0,
            right: 16.0,
            top: 34.0,
            bottom: 44.0,
            x: padded(xs.0, xs.1, 0.03),
            y: padded(ys.0, ys.1, 0.06),
        }
    }

    /// Screen x of a data x.
    pub fn px(&self, x: f64) -> f64 {
        let w = self.width - self.left - self.right;
        self.left + (x - self.x.0) / (self.x.1 - self.x.0) * w
    }

    /// Screen y of a data y.
    pub fn py(&self, y: f64) -> f64 {
        let h = self.height - self.top - self.bottom;
        self.top + h - (y - self.y.0) / (self.y.1 - self.y.0) * h
    }

    /// The bottom of the plotting area.
    pub fn floor(&self) -> f64 {
        self.height - self.bottom
    }

    /// The opening `<svg>`, the title, grid, axes, ticks and axis labels.
    pub fn open(&self, kind: &str, title: &str, x_label: &str, y_label: &str) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            r##"<svg class="chart" data-chart="{kind}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}" font-family="Helvetica, Arial, sans-serif"><rect width="100%" height="100%" fill="#fff"/><text x="{cx}" y="20" text-anchor="middle" font-size="15" font-weight="bold" fill="#222">{t}</text>"##,
            kind = escape(kind),
            w = num(self.width),
            h = num(self.height),
            cx = num(self.width / 2.0),
            t = escape(title)
        );
        s.push_str(r##"<g font-size="11" fill="#555">"##);
        let (x0, x1, y0, y1) = (self.left, self.width - self.right, self.top, self.floor());
        for v in ticks(self.y.0, self.y.1, 6) {
            let y = self.py(v);
            let _ = write!(
                s,
                r##"<line x1="{}" x2="{}" y1="{y}" y2="{y}" stroke="#e6e6e6"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
                num(x0),
                num(x1),
                num(x0 - 6.0),
                num(self.py(v) + 4.0),
                tick_label(v),
                y = num(y)
            );
        }
        for v in ticks(self.x.0, self.x.1, 8) {
            let x = self.px(v);
            let _ = write!(
                s,
                r##"<line x1="{x}" x2="{x}" y1="{}" y2="{}" stroke="#f0f0f0"/><text x="{x}" y="{}" text-anchor="middle">{}</text>"##,
                num(y0),
                num(y1),
                num(y1 + 16.0),
                tick_label(v),
                x = num(x)
            );
        }
        let _ = write!(
            s,
            r##"<path d="M{x0} {y0} V{y1} H{x1}" fill="none" stroke="#888"/><text x="{}" y="{}" text-anchor="middle" font-size="12" fill="#333">{}</text><text transform="translate(14 {}) rotate(-90)" text-anchor="middle" font-size="12" fill="#333">{}</text></g>"##,
            num((x0 + x1) / 2.0),
            num(self.height - 8.0),
            escape(x_label),
            num((y0 + y1) / 2.0),
            escape(y_label),
            x0 = num(x0),
            y0 = num(y0),
            x1 = num(x1),
            y1 = num(y1)
        );
        s
    }

    /// A legend of (colour, label) entries in the top-left corner of the plot.
    pub fn legend(&self, entries: &[(&str, String)], at_bottom: bool) -> String {
        let mut s = String::from(r#"<g class="legend" font-size="12">"#);
        let line_h = 17.0;
        let widest = entries
            .iter()
            .map(|(_, l)| l.chars().count())
            .max()
            .unwrap_or(0) as f64;
        let (w, h) = (widest * 6.6 + 34.0, entries.len() as f64 * line_h + 8.0);
        let x = self.width - self.right - w - 8.0;
        let y = if at_bottom {
            self.floor() - h - 8.0
        } else {
            self.top + 6.0
        };
        let _ = write!(
            s,
            r##"<rect x="{}" y="{}" width="{}" height="{}" fill="#fff" fill-opacity="0.88" stroke="#ccc"/>"##,
            num(x),
            num(y),
            num(w),
            num(h)
        );
        for (i, (c, label)) in entries.iter().enumerate() {
            let ly = y + 4.0 + line_h * (i as f64 + 0.5);
            let _ = write!(
                s,
                r##"<rect x="{}" y="{}" width="14" height="4" fill="{}"/><text x="{}" y="{}" fill="#222">{}</text>"##,
                num(x + 8.0),
                num(ly - 2.0),
                escape(c),
                num(x + 28.0),
                num(ly + 4.0),
                escape(label)
            );
        }
        s.push_str("</g>");
        s
    }
}

/// One series of a line chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Its label.
    pub label: String,
    /// (x, y) points in x order.
    pub points: Vec<(f64, f64)>,
    /// Each point's standard error, where known (empty: none drawn): a
    /// band of ± one standard error around the step line, so a step within
    /// noise looks like one.
    pub errors: Vec<Option<f64>>,
}

/// Best score so far against evaluations: one step line per run.
pub fn best_so_far(series: &[Series]) -> String {
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    let err = |s: &Series, k: usize| s.errors.get(k).copied().flatten().unwrap_or(0.0);
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .enumerate()
                .flat_map(move |(k, p)| [p.1 - err(s, k), p.1 + err(s, k)])
        })
        .collect();
    let f = Frame::new(
        760.0,
        380.0,
        (1.0, xs.iter().cloned().fold(2.0, f64::max)),
        (
            ys.iter().cloned().fold(f64::INFINITY, f64::min),
            ys.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        ),
    );
    let mut s = f.open(
        "best-so-far",
        "Best score so far",
        "evaluations",
        "best score (validation accuracy, %)",
    );
    for (i, se) in series.iter().enumerate() {
        if se.errors.iter().any(Option::is_some) && !se.points.is_empty() {
            // The band: the upper edge forward, the lower edge back, each a
            // step held until the next point (the last one a little on).
            let last = se.points.last().map_or(1.0, |p| p.0);
            let end = |k: usize| se.points.get(k + 1).map_or(last + 0.5, |p| p.0);
            let mut d = String::new();
            for (k, &(x, y)) in se.points.iter().enumerate() {
                let top = f.py(y + err(se, k));
                let _ = write!(
                    d,
                    "{}{} {} H{}",
                    if k == 0 { "M" } else { " L" },
                    num(f.px(x)),
                    num(top),
                    num(f.px(end(k)))
                );
            }
            for (k, &(x, y)) in se.points.iter().enumerate().rev() {
                let low = f.py(y - err(se, k));
                let _ = write!(d, " L{} {} H{}", num(f.px(end(k))), num(low), num(f.px(x)));
            }
            let _ = write!(
                s,
                r#"<path class="se-band" d="{d} Z" fill="{}" fill-opacity="0.15" stroke="none"><title>± one standard error</title></path>"#,
                color(i)
            );
        }
        let mut d = String::new();
        for (k, &(x, y)) in se.points.iter().enumerate() {
            if k == 0 {
                let _ = write!(d, "M{} {}", num(f.px(x)), num(f.py(y)));
            } else {
                let _ = write!(d, " H{} V{}", num(f.px(x)), num(f.py(y)));
            }
        }
        let _ = write!(
            s,
            r#"<path class="series" d="{d}" fill="none" stroke="{}" stroke-width="2.2"><title>{}</title></path>"#,
            color(i),
            escape(&se.label)
        );
    }
    let entries: Vec<(&str, String)> = series
        .iter()
        .enumerate()
        .map(|(i, se)| (color(i), se.label.clone()))
        .collect();
    s.push_str(&f.legend(&entries, true));
    s.push_str("</svg>");
    s
}

/// A point of a scatter chart.
#[derive(Debug, Clone)]
pub struct Point {
    /// x.
    pub x: f64,
    /// y.
    pub y: f64,
    /// Its colour.
    pub color: String,
    /// Link target (`#...`) of the point.
    pub href: String,
    /// Tooltip.
    pub tip: String,
    /// Drawn larger, with a dark outline.
    pub highlight: bool,
}

/// Score against parameters, the Pareto front (indices into `points`,
/// fewest parameters first) joined by a line.
pub fn pareto(points: &[Point], front: &[usize], title: &str) -> String {
    let f = Frame::new(
        760.0,
        380.0,
        (
            points.iter().map(|p| p.x).fold(f64::INFINITY, f64::min),
            points.iter().map(|p| p.x).fold(f64::NEG_INFINITY, f64::max),
        ),
        (
            points.iter().map(|p| p.y).fold(f64::INFINITY, f64::min),
            points.iter().map(|p| p.y).fold(f64::NEG_INFINITY, f64::max),
        ),
    );
    let mut s = f.open("pareto", title, "parameters", "score");
    let line: Vec<String> = front
        .iter()
        .filter_map(|&i| points.get(i))
        .map(|p| format!("{},{}", num(f.px(p.x)), num(f.py(p.y))))
        .collect();
    if line.len() >= 2 {
        let _ = write!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
            line.join(" "),
            color(3)
        );
    }
    for (i, p) in points.iter().enumerate() {
        let on_front = front.contains(&i);
        point(&mut s, &f, p, if on_front { color(3) } else { color(0) });
    }
    s.push_str(&f.legend(
        &[
            (color(0), "evaluated".into()),
            (color(3), "Pareto front".into()),
        ],
        true,
    ));
    s.push_str("</svg>");
    s
}

/// A standalone scatter chart (`xmlns` set, so it opens as an `.svg` file)
/// of `points` with the diagonal y = x drawn when `diagonal` and both axes
/// share a range; points without `href` are not links.
pub fn scatter(
    points: &[Point],
    title: &str,
    x_label: &str,
    y_label: &str,
    diagonal: bool,
) -> String {
    let span = |v: &mut dyn Iterator<Item = f64>| {
        v.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        })
    };
    let xs = span(&mut points.iter().map(|p| p.x));
    let ys = span(&mut points.iter().map(|p| p.y));
    let f = Frame::new(640.0, 480.0, xs, ys);
    let mut s = f.open("scatter", title, x_label, y_label).replacen(
        "<svg ",
        r#"<svg xmlns="http://www.w3.org/2000/svg" "#,
        1,
    );
    if diagonal {
        let lo = xs.0.max(ys.0);
        let hi = xs.1.min(ys.1);
        if hi > lo {
            let _ = write!(
                s,
                r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#bbb" stroke-dasharray="4 3"/>"##,
                num(f.px(lo)),
                num(f.py(lo)),
                num(f.px(hi)),
                num(f.py(hi))
            );
        }
    }
    for p in points {
        let fill = if p.color.is_empty() {
            color(0)
        } else {
            p.color.as_str()
        };
        let r = if p.highlight { 5.0 } else { 3.2 };
        let circle = format!(
            r#"<circle cx="{}" cy="{}" r="{}" fill="{}" fill-opacity="0.75"><title>{}</title></circle>"#,
            num(f.px(p.x)),
            num(f.py(p.y)),
            num(r),
            escape(fill),
            escape(&p.tip)
        );
        if p.href.is_empty() {
            s.push_str(&circle);
        } else {
            let _ = write!(s, r#"<a href="{}">{circle}</a>"#, escape(&p.href));
        }
    }
    s.push_str("</svg>\n");
    s
}

/// A chart drawn for the HTML pages as the text of a standalone `.svg`
/// file: the XML declaration, and the SVG namespace on the root element, so
/// that viewers and Markdown renderers open it on its own (the chart
/// already carries its width and height).
pub fn standalone(svg: &str) -> String {
    let body = match svg.strip_prefix("<svg ") {
        Some(rest) if !rest.starts_with("xmlns=") => {
            format!(r#"<svg xmlns="http://www.w3.org/2000/svg" {rest}"#)
        }
        _ => svg.to_string(),
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}\n",
        body.trim_end()
    )
}

/// `best_so_far.svg`: the best score so far against evaluations, one line
/// per run, as a standalone file.
pub fn best_so_far_file(runs: &[super::Run]) -> String {
    let series: Vec<Series> = runs
        .iter()
        .map(|r| {
            let b = r.best_so_far_se();
            Series {
                label: r.label.clone(),
                points: b.iter().map(|&(n, y, _)| (n as f64, y)).collect(),
                errors: b.iter().map(|&(_, _, e)| e).collect(),
            }
        })
        .collect();
    standalone(&best_so_far(&series))
}

/// `pareto.svg`: `run`'s score against parameters (`points` as
/// (parameters, score, evaluation)), the Pareto front (indices into
/// `points`) joined by a line, as a standalone file whose points carry
/// tooltips but no links.
pub fn pareto_file(run: &super::Run, points: &[(f64, f64, usize)], front: &[usize]) -> String {
    let pts: Vec<Point> = points
        .iter()
        .map(|&(x, y, n)| Point {
            x,
            y,
            color: String::new(),
            href: String::new(),
            tip: format!("#{n}: {} parameters, score {y:.2}", num(x)),
            highlight: false,
        })
        .collect();
    standalone(&pareto(
        &pts,
        front,
        &format!("Score against size: {}", run.label),
    ))
}

fn point(s: &mut String, f: &Frame, p: &Point, fill: &str) {
    let r = if p.highlight { 6.0 } else { 4.2 };
    let stroke = if p.highlight {
        r##" stroke="#111" stroke-width="1.6""##
    } else {
        r##" stroke="#fff" stroke-width="0.8""##
    };
    let circle = format!(
        r#"<circle class="pt" cx="{}" cy="{}" r="{}" fill="{}"{stroke}><title>{}</title></circle>"#,
        num(f.px(p.x)),
        num(f.py(p.y)),
        num(r),
        escape(fill),
        escape(&p.tip)
    );
    if p.href.is_empty() {
        s.push_str(&circle);
    } else {
        let _ = write!(s, r#"<a href="{}">{circle}</a>"#, escape(&p.href));
    }
}

/// The lineage over time: each evaluation at (evaluation number, score),
/// coloured by operator (`legend` gives (colour, name) pairs), a grey line
/// from each parent to its child, the path to the best in red. Failed
/// evaluations sit as crosses on the bottom edge.
pub fn lineage(
    points: &[Option<Point>],
    failed: &[(f64, String, String)],
    edges: &[(usize, usize)],
    best_path: &[usize],
    legend: &[(String, String)],
) -> String {
    let ok: Vec<&Point> = points.iter().flatten().collect();
    let xs = ok.iter().map(|p| p.x).chain(failed.iter().map(|f| f.0));
    let (xl, xh) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let f = Frame::new(
        1000.0,
        420.0,
        (xl.min(1.0), xh.max(2.0)),
        (
            ok.iter().map(|p| p.y).fold(f64::INFINITY, f64::min),
            ok.iter().map(|p| p.y).fold(f64::NEG_INFINITY, f64::max),
        ),
    );
    let mut s = f.open(
        "lineage",
        "Lineage: every evaluation, linked to its parent",
        "evaluation",
        "score",
    );
    s.push_str(r##"<g class="edges" fill="none" stroke="#b8b8b8" stroke-width="1.1">"##);
    let on_path = |a: usize, b: usize| {
        best_path
            .windows(2)
            .any(|w| w.first() == Some(&a) && w.get(1) == Some(&b))
    };
    let mut path_d = String::new();
    for &(a, b) in edges {
        if let (Some(Some(p)), Some(Some(c))) = (points.get(a), points.get(b)) {
            let seg = format!(
                "M{} {} L{} {}",
                num(f.px(p.x)),
                num(f.py(p.y)),
                num(f.px(c.x)),
                num(f.py(c.y))
            );
            if on_path(a, b) {
                path_d.push_str(&seg);
                path_d.push(' ');
            } else {
                let _ = write!(s, r#"<path d="{seg}"/>"#);
            }
        }
    }
    s.push_str("</g>");
    if !path_d.is_empty() {
        let _ = write!(
            s,
            r#"<path class="best-path" d="{}" fill="none" stroke="{}" stroke-width="3"/>"#,
            path_d.trim_end(),
            color(3)
        );
    }
    for p in &ok {
        point(&mut s, &f, p, &p.color);
    }
    for (x, href, tip) in failed {
        let (cx, cy) = (f.px(*x), f.floor() - 6.0);
        let _ = write!(
            s,
            r##"<a href="{}"><path class="failed" d="M{} {} l8 8 m0 -8 l-8 8" stroke="#999" stroke-width="2"><title>{}</title></path></a>"##,
            escape(href),
            num(cx - 4.0),
            num(cy - 4.0),
            escape(tip)
        );
    }
    let mut entries: Vec<(&str, String)> = legend
        .iter()
        .map(|(c, g)| (c.as_str(), g.clone()))
        .collect();
    if !path_d.is_empty() {
        entries.push((color(3), "path to the best".into()));
    }
    s.push_str(&f.legend(&entries, true));
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(61.3, 84.9, 6), vec![65.0, 70.0, 75.0, 80.0]);
        assert_eq!(ticks(0.0, 1e6, 4), vec![0.0, 250e3, 500e3, 750e3, 1e6]);
        assert_eq!(ticks(5.0, 5.0, 4), vec![5.0]);
        assert_eq!(ticks(f64::NAN, 1.0, 4).len(), 1);
    }

    #[test]
    fn frames_map_data_into_the_plot_area() {
        let f = Frame::new(500.0, 300.0, (0.0, 10.0), (50.0, 100.0));
        assert!(f.px(0.0) > 62.0 && f.px(10.0) < 500.0 - 16.0);
        assert!(f.py(100.0) > 34.0 && f.py(50.0) < f.floor());
        assert!(f.py(100.0) < f.py(50.0), "up is better");
    }

    #[test]
    fn charts_escape_labels_and_link_points() {
        let s = best_so_far(&[Series {
            label: "<b>run</b>".into(),
            points: vec![(1.0, 50.0), (2.0, 60.0)],
            errors: vec![Some(1.3), None],
        }]);
        assert!(s.contains(r#"class="se-band""#), "{s}");
        assert!(s.contains("&lt;b&gt;run") && !s.contains("<b>"));
        assert!(s.contains(r#"data-chart="best-so-far""#));
        let p = Point {
            x: 1.0,
            y: 2.0,
            color: "#123456".into(),
            href: "#r0-e1".into(),
            tip: "a \"tip\"".into(),
            highlight: true,
        };
        let s = lineage(
            &[
                Some(p.clone()),
                Some(Point {
                    x: 2.0,
                    ..p.clone()
                }),
            ],
            &[(3.0, "#r0-e3".into(), "failed".into())],
            &[(0, 1)],
            &[0, 1],
            &[("#123456".into(), "seed".into())],
        );
        assert!(s.contains(r##"<a href="#r0-e1">"##) && s.contains("a &quot;tip&quot;"));
        assert!(s.contains(r#"class="best-path""#) && s.contains(r#"class="failed""#));
        assert!(!s.contains("NaN") && !s.contains("inf"));
        // A single point or none still draws.
        let s = pareto(&[p], &[0], "t");
        assert!(!s.contains("NaN"));
        let s = best_so_far(&[]);
        assert!(!s.contains("NaN"));
    }

    #[test]
    fn standalone_files_declare_xml_and_the_svg_namespace_once() {
        let s = standalone(&best_so_far(&[Series {
            label: "run".into(),
            points: vec![(1.0, 50.0), (2.0, 60.0)],
            errors: Vec::new(),
        }]));
        assert!(!s.contains("se-band"));
        assert!(s.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "));
        assert!(s.contains(r#"width="760" height="380""#), "{s}");
        assert!(s.ends_with("</svg>\n"));
        let already = scatter(&[], "t", "x", "y", false);
        assert_eq!(standalone(&already).matches("xmlns=").count(), 1);
        // Points without a link are drawn bare.
        let p = Point {
            x: 1.0,
            y: 2.0,
            color: String::new(),
            href: String::new(),
            tip: "t".into(),
            highlight: false,
        };
        let s = pareto(
            &[
                p.clone(),
                Point {
                    x: 2.0,
                    y: 3.0,
                    ..p
                },
            ],
            &[0, 1],
            "t",
        );
        assert!(!s.contains("<a ") && s.contains("<circle"), "{s}");
    }
}
