//! The fidelity rungs of a run, for both reports: what each rung was and
//! what reached it, each promoted architecture's path through the rungs, and
//! how the answer compares with the seed.

use super::Run;
use crate::markup::escape;
use crate::stats;
use std::fmt::Write as _;

/// One promoted architecture's scores, rung by rung.
struct Path {
    evaluation: usize,
    /// Per rung from 1: mean ± SE, or "–" where it was not scored.
    cells: Vec<String>,
}

/// The rows of the paths table: every architecture evaluated above rung 1.
fn paths(run: &Run, top: u32) -> Vec<Path> {
    let mut out = Vec::new();
    for s in &run.steps {
        let above: Vec<_> = run
            .reevaluations
            .iter()
            .filter(|r| r.of == s.n && r.rung > 1)
            .collect();
        if above.is_empty() {
            continue;
        }
        let mut cells = Vec::new();
        for rung in 1..=top {
            let tried = rung == 1 || above.iter().any(|r| r.rung == rung);
            cells.push(
                match crate::record::score_at_rung(s, &run.reevaluations, rung) {
                    Some((mean, se)) => stats::with_se(mean, se),
                    None if tried => "failed".into(),
                    None => "–".into(),
                },
            );
        }
        out.push(Path {
            evaluation: s.n,
            cells,
        });
    }
    out
}

/// The rungs section in markdown (empty for a run with one rung).
pub fn markdown(run: &Run) -> String {
    let mut md = String::new();
    let Some(sum) = run.summary.as_ref() else {
        return md;
    };
    if let Some(r) = &sum.rungs {
        let _ = writeln!(
            md,
            "## Fidelity rungs\n\nThe best {:.0} % of each rung's results were promoted to the next; scores are compared within a rung only. Highest rung reached: {}.\n",
            r.promote * 100.0,
            r.highest_reached
        );
        let _ = writeln!(
            md,
            "| rung | settings | architectures | evaluations | mean seconds |\n| ---: | --- | ---: | ---: | ---: |"
        );
        for g in &r.rungs {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.1} |",
                g.rung, g.settings, g.architectures, g.evaluations, g.mean_seconds
            );
        }
        let top = r.rungs.len() as u32;
        let rows = paths(run, top);
        if !rows.is_empty() {
            let head: Vec<String> = (1..=top).map(|k| format!("rung {k}")).collect();
            let _ = writeln!(
                md,
                "\nPaths through the rungs (mean ± SE at each):\n\n| evaluation | {} |\n| ---: |{}",
                head.join(" | "),
                " ---: |".repeat(top as usize)
            );
            for p in rows {
                let _ = writeln!(md, "| {} | {} |", p.evaluation, p.cells.join(" | "));
            }
        }
        md.push('\n');
    }
    if let Some(c) = &sum.against_seed {
        let _ = writeln!(md, "## Against the seed\n\n{}.\n", c.text);
    }
    md
}

/// The rungs section as an HTML card (empty for a run with one rung).
pub fn html(run: &Run, k: usize) -> String {
    let mut s = String::new();
    let Some(sum) = run.summary.as_ref() else {
        return s;
    };
    if let Some(r) = &sum.rungs {
        let _ = write!(
            s,
            "<section class=\"card\" id=\"r{k}-rungs\"><h2>Fidelity rungs</h2><p class=\"meta\">The best {:.0} % of each rung's results were promoted to the next; scores are compared within a rung only. Highest rung reached: {}.</p><table class=\"rungs\"><tr><th>rung</th><th>settings</th><th>architectures</th><th>evaluations</th><th>mean seconds</th></tr>",
            r.promote * 100.0,
            r.highest_reached
        );
        for g in &r.rungs {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td></tr>",
                g.rung,
                escape(&g.settings),
                g.architectures,
                g.evaluations,
                g.mean_seconds
            );
        }
        s.push_str("</table>");
        let top = r.rungs.len() as u32;
        let rows = paths(run, top);
        if !rows.is_empty() {
            s.push_str("<p>Paths through the rungs (mean ± SE at each):</p><table class=\"paths\"><tr><th>evaluation</th>");
            for k in 1..=top {
                let _ = write!(s, "<th>rung {k}</th>");
            }
            s.push_str("</tr>");
            for p in rows {
                let _ = write!(s, "<tr><td>{}</td>", p.evaluation);
                for c in &p.cells {
                    let _ = write!(s, "<td>{}</td>", escape(c));
                }
                s.push_str("</tr>");
            }
            s.push_str("</table>");
        }
        s.push_str("</section>");
    }
    if let Some(c) = &sum.against_seed {
        let _ = write!(
            s,
            "<section class=\"card\" id=\"r{k}-seed\"><h2>Against the seed</h2><p>{}.</p></section>",
            escape(&c.text)
        );
    }
    s
}
