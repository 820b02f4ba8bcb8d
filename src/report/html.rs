//! The HTML report of one or more runs (`report.html`): an overview
//! comparing the runs (their best-so-far curves on one chart), then for
//! each run its best and seed architectures drawn as cells, the lineage
//! (chart, path to the best, tree of every evaluation with its parent,
//! operator and change), score against size, statistics per operator,
//! insights with their evidence, LLM usage, failures, and a sortable table
//! of all evaluations. Any architecture in a table opens as a diagram.

use super::lineage::{operator, operator_label, operator_stats, Lineage};
use super::page::{
    fmt, fmt_count, op_badge, stat, status_badge, td_delta, td_int, td_num, thead, Page,
};
use super::{pareto_front, plot, Run};
use crate::knowledge::InsightStatus;
use crate::markup::escape;
use crate::record::{PoolEntry, Step};
use crate::space::{diagram, Arch, Space};
use std::fmt::Write as _;

/// Operator colours (no red: red marks the path to the best).
const OP_COLORS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
];

/// Operators of all runs, in order of first use, so that an operator has one
/// colour across the page.
struct Operators(Vec<String>);

impl Operators {
    fn of(runs: &[Run]) -> Operators {
        let mut v: Vec<String> = Vec::new();
        for r in runs {
            let dups = r.activity.duplicates.iter().map(|d| d.origin.as_str());
            for o in r
                .steps
                .iter()
                .map(|s| s.proposal.origin.as_str())
                .chain(dups)
            {
                let op = operator(o);
                if !v.iter().any(|x| x == op) {
                    v.push(op.to_string());
                }
            }
        }
        Operators(v)
    }

    fn color(&self, op: &str) -> &'static str {
        let i = self.0.iter().position(|x| x == op).unwrap_or(0);
        OP_COLORS[i % OP_COLORS.len()]
    }

    fn badge(&self, op: &str) -> String {
        op_badge(operator_label(op), self.color(op))
    }
}

/// One run with what the page derives from it.
struct View<'a> {
    k: usize,
    run: &'a Run,
    space: Option<Space>,
    archs: Vec<Option<Arch>>,
    lineage: Lineage,
}

impl<'a> View<'a> {
    fn new(k: usize, run: &'a Run) -> View<'a> {
        let space: Option<Space> = run.space.parse().ok();
        let archs = run
            .steps
            .iter()
            .map(|s| space.and_then(|sp| sp.parse(&s.proposal.arch).ok()))
            .collect();
        View {
            k,
            run,
            space,
            archs,
            lineage: Lineage::of(&run.steps),
        }
    }

    fn row_id(&self, n: usize) -> String {
        format!("r{}-e{n}", self.k)
    }

    fn best_index(&self) -> Option<usize> {
        self.run
            .returned()
            .map(|b| b.index)
            .or_else(|| self.lineage.best_path.last().copied())
    }

    /// The returned architecture's score with its standard error.
    fn best_text(&self) -> String {
        self.run.returned().map_or("-".into(), |b| {
            crate::stats::with_se(b.score, b.se)
                + &if b.repeats > 1 {
                    format!(" (mean of {})", b.repeats)
                } else {
                    String::new()
                }
        })
    }

    fn caption(&self, s: &Step) -> String {
        format!(
            "{}: evaluation {} · score {} · {}",
            self.run.label,
            s.n,
            fmt(s.result.score, 2),
            operator_label(operator(&s.proposal.origin))
        )
    }

    fn view_button(&self, page: &mut Page, i: usize) -> String {
        match (
            self.archs.get(i).and_then(Option::as_ref),
            self.run.steps.get(i),
        ) {
            (Some(a), Some(s)) => page.view_button(a, &self.caption(s)),
            _ => String::new(),
        }
    }

    /// A link to an evaluation's row.
    fn eval_link(&self, i: usize) -> String {
        match self.run.steps.get(i) {
            Some(s) => format!("<a href=\"#{}\">#{}</a>", self.row_id(s.n), s.n),
            None => "-".into(),
        }
    }
}

/// Render the report page for `runs` (the first is the subject).
pub fn render(runs: &[Run]) -> String {
    let ops = Operators::of(runs);
    let views: Vec<View> = runs
        .iter()
        .enumerate()
        .map(|(k, r)| View::new(k, r))
        .collect();
    let mut page = Page::new();
    page.nav("overview", "Overview");
    overview(&mut page, &views);
    for v in &views {
        if views.len() == 1 {
            for (a, l) in [
                ("archs", "Architectures"),
                ("lineage", "Lineage"),
                ("operators", "Operators"),
                ("insights", "Insights"),
                ("llm", "LLM usage"),
                ("failures", "Failures"),
                ("evaluations", "Evaluations"),
            ] {
                page.nav(&format!("r0-{a}"), l);
            }
        } else {
            page.nav(&format!("run-{}", v.k), &v.run.label);
        }
        run_section(&mut page, v, &ops, &views);
    }
    let title = match runs {
        [one] => format!("seki report: {}", one.label),
        _ => format!("seki report: {} runs compared", runs.len()),
    };
    let subtitle = match runs.first() {
        Some(r) => format!(
            "{} space · {} · {} evaluations · {}",
            r.space,
            if r.evaluator.is_empty() {
                "evaluator unknown"
            } else {
                &r.evaluator
            },
            r.steps.len(),
            r.dir.display()
        ),
        None => String::new(),
    };
    page.finish(&title, &subtitle)
}

fn overview(page: &mut Page, views: &[View]) {
    let mut s = String::from("<section class=\"card\" id=\"overview\"><h2>Overview</h2>");
    if let Some(v) = views.first() {
        let r = v.run;
        let best = v.best_index().and_then(|i| r.steps.get(i));
        let failed = r.steps.iter().filter(|s| s.result.score.is_none()).count();
        let llm = r.activity.total();
        s.push_str("<div class=\"stats\">");
        s.push_str(&stat(&r.steps.len().to_string(), "evaluations"));
        s.push_str(&stat(&v.best_text(), "best score ± SE"));
        s.push_str(&stat(
            &fmt(best.and_then(|b| b.result.test_accuracy), 2),
            "test accuracy of the best (reported only)",
        ));
        s.push_str(&stat(
            &best.map_or("-".into(), |b| format!("#{}", b.n)),
            "best found at",
        ));
        s.push_str(&stat(&failed.to_string(), "failed"));
        s.push_str(&stat(
            &r.activity.duplicates.len().to_string(),
            "duplicates skipped",
        ));
        if llm.calls > 0 {
            s.push_str(&stat(&llm.calls.to_string(), "LLM calls"));
            s.push_str(&stat(
                &(llm.prompt_tokens + llm.completion_tokens).to_string(),
                "LLM tokens",
            ));
            s.push_str(&stat(&format!("${:.4}", llm.cost_usd), "LLM cost"));
        }
        if let Some(screen) = r
            .summary
            .as_ref()
            .and_then(|sum| sum.strategy_stats.screen.as_ref())
        {
            s.push_str(&stat(
                &format!("{:.1} s", screen.proxy_cpu_seconds),
                &format!("zero-cost proxy CPU ({})", screen.screen),
            ));
        }
        s.push_str(&stat(&format!("{:.1} s", r.elapsed), "session time"));
        s.push_str("</div>");
    }
    s.push_str("<div class=\"scroll\"><table class=\"runs\">");
    s.push_str(&thead(&[
        ("run", false),
        ("space", false),
        ("strategy", false),
        ("evaluator", false),
        ("evaluations", true),
        ("best score ± SE", true),
        ("test acc. of best", true),
        ("best at", true),
        ("failed", true),
        ("duplicates", true),
        ("LLM calls", true),
        ("tokens", true),
        ("cost (USD)", true),
        ("stopped", false),
    ]));
    s.push_str("<tbody>");
    for v in views {
        let r = v.run;
        let best = v.best_index().and_then(|i| r.steps.get(i));
        let llm = r.activity.total();
        let best_cell = format!(
            "<td class=\"num\" data-v=\"{}\">{}</td>",
            r.returned().map_or(String::new(), |b| b.score.to_string()),
            escape(&v.best_text())
        );
        let _ = write!(
            s,
            "<tr><td><a href=\"#run-{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td>{}{}{}{}{}{}{}{}{}<td>{}</td></tr>",
            v.k,
            escape(&r.label),
            escape(&r.space),
            escape(&r.strategy),
            escape(&r.evaluator),
            td_int(r.steps.len()),
            best_cell,
            td_num(best.and_then(|b| b.result.test_accuracy), 2),
            td_int(best.map_or("-".into(), |b| b.n.to_string())),
            td_int(r.steps.iter().filter(|s| s.result.score.is_none()).count()),
            td_int(r.activity.duplicates.len()),
            td_int(llm.calls),
            td_int(llm.prompt_tokens + llm.completion_tokens),
            td_num(Some(llm.cost_usd), 4),
            escape(r.end_reason.as_deref().unwrap_or("not ended (resume with seki search --resume)"))
        );
    }
    s.push_str("</tbody></table></div>");
    let series: Vec<plot::Series> = views
        .iter()
        .map(|v| {
            let b = v.run.best_so_far_se();
            plot::Series {
                label: v.run.label.clone(),
                points: b.iter().map(|&(n, y, _)| (n as f64, y)).collect(),
                errors: b.iter().map(|&(_, _, e)| e).collect(),
            }
        })
        .collect();
    s.push_str("<div class=\"figs\">");
    s.push_str(&super::page::figure(
        "<b>Best score so far</b> against evaluations, one line per run",
        &plot::best_so_far(&series),
    ));
    s.push_str("</div>");
    if views.len() > 1 {
        s.push_str("<h3>Best architecture of each run</h3><div class=\"figs\">");
        for v in views {
            if let Some(i) = v.best_index() {
                s.push_str(&arch_figure(v, i, "best"));
            }
        }
        s.push_str("</div>");
    }
    s.push_str("</section>\n");
    page.push(&s);
}

/// A figure with an evaluation's cell diagram and its text.
fn arch_figure(v: &View, i: usize, what: &str) -> String {
    let (Some(step), Some(Some(arch))) = (v.run.steps.get(i), v.archs.get(i)) else {
        return String::new();
    };
    let caption = format!(
        "<b>{}</b> — {} · evaluation <a href=\"#{}\">#{}</a> · score {} · test {} · {}",
        escape(what),
        escape(&v.run.label),
        v.row_id(step.n),
        step.n,
        fmt(step.result.score, 2),
        fmt(step.result.test_accuracy, 2),
        escape(operator_label(operator(&step.proposal.origin)))
    );
    super::page::arch_figure(
        &caption,
        &format!(
            "{}<pre class=\"arch\">{}</pre>",
            diagram::svg(arch),
            escape(&step.proposal.arch)
        ),
    )
}

fn run_section(page: &mut Page, v: &View, ops: &Operators, views: &[View]) {
    let r = v.run;
    let k = v.k;
    let mut s = format!(
        "<section class=\"run\" id=\"run-{k}\"><h2>{}</h2><p class=\"meta\">run directory <code>{}</code> · space {} · strategy {} · evaluator {} · started {} · {}</p>",
        escape(&r.label),
        escape(&r.dir.display().to_string()),
        escape(&r.space),
        escape(&r.strategy),
        escape(if r.evaluator.is_empty() { "unknown" } else { &r.evaluator }),
        escape(&r.started),
        escape(r.end_reason.as_deref().unwrap_or("not ended"))
    );
    if views.len() > 1 {
        let links: Vec<String> = [
            ("archs", "architectures"),
            ("lineage", "lineage"),
            ("operators", "operators"),
            ("insights", "insights"),
            ("llm", "LLM usage"),
            ("failures", "failures"),
            ("evaluations", "evaluations"),
        ]
        .iter()
        .map(|(a, l)| format!("<a href=\"#r{k}-{a}\">{l}</a>"))
        .collect();
        let _ = write!(s, "<p class=\"meta\">{}</p>", links.join(" · "));
    }
    // Architectures.
    let _ = write!(
        s,
        "<section class=\"card\" id=\"r{k}-archs\"><h2>Architectures</h2><div class=\"figs\">"
    );
    let best = v.best_index();
    if let Some(b) = best {
        s.push_str(&arch_figure(
            v,
            b,
            if b == 0 { "best (and seed)" } else { "best" },
        ));
    }
    if best != Some(0) && !r.steps.is_empty() {
        s.push_str(&arch_figure(v, 0, "seed (first evaluation)"));
    }
    if v.space.is_none() {
        let _ = write!(
            s,
            "<p class=\"muted\">No diagrams: unknown space {}.</p>",
            escape(&r.space)
        );
    }
    s.push_str("</div><p class=\"muted\">Every architecture in the tables below opens as a diagram with its <b>cell</b> button.</p></section>\n");
    contenders_section(&mut s, v);
    budget_section(&mut s, v);
    s.push_str(&super::rungs::html(v.run, v.k));
    page.push(&s);
    lineage_section(page, v, ops);
    size_section(page, v);
    operators_section(page, v, ops);
    insights_section(page, v, views);
    llm_section(page, v);
    failures_section(page, v, ops);
    evaluations_section(page, v, ops);
    page.push("</section>\n");
}

/// The re-evaluated contenders (from the summary), when there are any.
/// The session's hard budgets and its Pareto front, when it had them.
fn budget_section(s: &mut String, v: &View) {
    let Some(summary) = v.run.summary.as_ref() else {
        return;
    };
    if let Some(b) = &summary.budget {
        let _ = write!(
            s,
            "<section class=\"card\" id=\"r{}-budget\"><h2>Budget</h2><p>{} (costs of {}); every evaluated architecture is within it; {} proposals over it were refused without an evaluation.</p></section>",
            v.k,
            escape(&b.constraints.describe()),
            escape(&b.measured_on),
            b.refused
        );
    }
    if let Some(f) = &summary.front {
        let _ = write!(
            s,
            "<section class=\"card\" id=\"r{}-front\"><h2>Pareto front</h2><p class=\"meta\">{} non-dominated of {} evaluations ({}); hypervolume {:.4} of the reference box (every coordinate minimised: error %, then the costs) {}.</p><table class=\"front\"><tr><th>evaluation</th><th>score ± SE</th><th>cost</th><th>test accuracy (reported only)</th></tr>",
            v.k,
            f.points.len(),
            summary.evaluations,
            escape(&f.objectives.join(", ")),
            f.hypervolume,
            escape(&format!("{:?}", f.reference))
        );
        for p in &f.points {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                p.evaluation,
                escape(&crate::stats::with_se(p.score, p.score_se)),
                escape(&p.cost.describe()),
                p.test_accuracy.map_or("-".into(), |t| format!("{t:.2}"))
            );
        }
        s.push_str("</table></section>");
    }
}

fn contenders_section(s: &mut String, v: &View) {
    let Some(summary) = v.run.summary.as_ref() else {
        return;
    };
    let cs = &summary.contenders;
    if cs.is_empty() {
        return;
    }
    let _ = write!(
        s,
        "<section class=\"card\" id=\"r{}-contenders\"><h2>Contenders re-evaluated</h2><p class=\"meta\">The best few were trained again with other seeds; the session returns the best by the mean. ± is one standard error.</p><table class=\"contenders\">",
        v.k
    );
    s.push_str(&thead(&[
        ("evaluation", true),
        ("first score", true),
        ("mean ± SE", true),
        ("evaluations", true),
        ("sd over seeds", true),
        ("test acc. (reported only)", true),
    ]));
    s.push_str("<tbody>");
    for c in cs {
        let u = c.uncertainty.as_ref();
        let se = u.map(|u| u.se);
        let n = c.evaluation;
        let _ = write!(
            s,
            "<tr><td class=\"num\" data-v=\"{n}\"><a href=\"#{}\">#{n}</a></td>{}<td class=\"num\" data-v=\"{}\">{}</td>{}{}{}</tr>",
            v.row_id(n),
            td_num(Some(c.first_score), crate::stats::decimals(se)),
            c.mean,
            escape(&crate::stats::with_se(c.mean, se)),
            td_int(u.map_or(1, |u| u.repeats)),
            td_num(u.and_then(|u| u.sd), crate::stats::decimals(se)),
            td_num(c.test_accuracy, 2)
        );
    }
    s.push_str("</tbody></table>");
    if let Some(note) = &summary.contenders_note {
        let _ = write!(s, "<p>{}.</p>", escape(note));
    }
    s.push_str("</section>\n");
}

fn lineage_section(page: &mut Page, v: &View, ops: &Operators) {
    let (r, l, k) = (v.run, &v.lineage, v.k);
    let mut s = format!("<section class=\"card\" id=\"r{k}-lineage\"><h2>Lineage</h2>");
    if !l.has_edges() {
        s.push_str("<p class=\"muted\">No evaluation of this run names a parent from the run (a journal written before seki recorded parents, or a strategy that only samples): every evaluation is shown as a root.</p>");
    }
    // The path to the best.
    if !l.best_path.is_empty() {
        s.push_str("<h3>Path to the best</h3><div class=\"path\">");
        for (j, &i) in l.best_path.iter().enumerate() {
            let Some(st) = r.steps.get(i) else { continue };
            if j > 0 {
                s.push_str("<span class=\"muted\">→</span>");
            }
            let _ = write!(
                s,
                "<span class=\"step\">{} {} score {}{}</span>",
                v.eval_link(i),
                ops.badge(operator(&st.proposal.origin)),
                fmt(st.result.score, 2),
                match l.delta.get(i).copied().flatten() {
                    Some(d) => format!(
                        " <span class=\"{}\">({d:+.2})</span>",
                        if d >= 0.0 { "up" } else { "down" }
                    ),
                    None => String::new(),
                }
            );
        }
        s.push_str("</div>");
    }
    // The chart.
    let points: Vec<Option<plot::Point>> = r
        .steps
        .iter()
        .enumerate()
        .map(|(i, st)| {
            st.result.score.map(|y| plot::Point {
                x: st.n as f64,
                y,
                color: ops.color(operator(&st.proposal.origin)).to_string(),
                href: format!("#{}", v.row_id(st.n)),
                tip: format!(
                    "#{} {} score {:.2}{}",
                    st.n,
                    operator_label(operator(&st.proposal.origin)),
                    y,
                    l.parent
                        .get(i)
                        .copied()
                        .flatten()
                        .and_then(|p| r.steps.get(p))
                        .map_or(String::new(), |p| format!(" (parent #{})", p.n))
                ),
                highlight: l.on_best_path(i),
            })
        })
        .collect();
    let failed: Vec<(f64, String, String)> = r
        .steps
        .iter()
        .filter(|st| st.result.score.is_none())
        .map(|st| {
            (
                st.n as f64,
                format!("#{}", v.row_id(st.n)),
                format!("#{} {}", st.n, st.result.status.name()),
            )
        })
        .collect();
    let edges: Vec<(usize, usize)> = l
        .parent
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|p| (p, i)))
        .collect();
    let mut present: Vec<&str> = Vec::new();
    for st in &r.steps {
        let op = operator(&st.proposal.origin);
        if !present.contains(&op) {
            present.push(op);
        }
    }
    let legend: Vec<(String, String)> = present
        .iter()
        .map(|op| (ops.color(op).to_string(), operator_label(op).to_string()))
        .collect();
    if points.iter().any(Option::is_some) {
        s.push_str("<div class=\"figs\">");
        s.push_str(&super::page::figure(
            "Each dot is an evaluation (click to find its row), coloured by the operator that made it; grey lines join parents to children, the red line is the path to the best; crosses are failed evaluations.",
            &plot::lineage(&points, &failed, &edges, &l.best_path, &legend),
        ));
        s.push_str("</div>");
    }
    // The tree.
    s.push_str("<h3>Tree</h3><div class=\"scroll\" style=\"max-height:620px;overflow-y:auto\"><table class=\"lineage\">");
    s.push_str(&thead(&[
        ("evaluation", false),
        ("operator", false),
        ("parent", false),
        ("score", true),
        ("change vs parent", true),
        ("status", false),
        ("cell", false),
    ]));
    s.push_str("<tbody>");
    for &i in &l.order {
        let Some(st) = r.steps.get(i) else { continue };
        let depth = l.depth.get(i).copied().unwrap_or(0);
        let indent = if depth == 0 {
            String::new()
        } else {
            format!("{}└ ", "   ".repeat(depth - 1))
        };
        let parent = match (
            l.parent.get(i).copied().flatten(),
            l.outside_parent.get(i).and_then(Option::as_ref),
        ) {
            (Some(p), _) => v.eval_link(p),
            (None, Some(h)) => format!(
                "<span class=\"muted\" title=\"not evaluated in this run\">outside <code>{}</code></span>",
                escape(h)
            ),
            (None, None) => "<span class=\"muted\">root</span>".into(),
        };
        let button = v.view_button(page, i);
        let _ = write!(
            s,
            "<tr class=\"lineage-row{}\" data-n=\"{}\"><td><span class=\"tree\">{}</span>{}</td><td>{}</td><td>{}</td>{}{}<td>{}</td><td>{}</td></tr>",
            if l.on_best_path(i) { " best-path" } else { "" },
            st.n,
            indent,
            v.eval_link(i),
            ops.badge(operator(&st.proposal.origin)),
            parent,
            td_num(st.result.score, 2),
            td_delta(l.delta.get(i).copied().flatten()),
            status_badge(st.result.status.name()),
            button
        );
    }
    s.push_str("</tbody></table></div></section>\n");
    page.push(&s);
}

fn size_section(page: &mut Page, v: &View) {
    let r = v.run;
    let points = r.size_points();
    if points.len() < 2 {
        return;
    }
    let front = pareto_front(&points);
    let best = v.best_index().and_then(|i| r.steps.get(i)).map(|s| s.n);
    let pts: Vec<plot::Point> = points
        .iter()
        .map(|&(p, sc, n)| plot::Point {
            x: p,
            y: sc,
            color: String::new(),
            href: format!("#{}", v.row_id(n)),
            tip: format!("#{n}: {} parameters, score {sc:.2}", fmt_count(Some(p))),
            highlight: Some(n) == best,
        })
        .collect();
    let mut s = format!(
        "<section class=\"card\" id=\"r{}-size\"><h2>Score against size</h2><div class=\"figs\">",
        v.k
    );
    s.push_str(&super::page::figure(
        "Score against parameters; the Pareto front (no other evaluation is both smaller and better) in red.",
        &plot::pareto(&pts, &front, &format!("Score against size: {}", r.label)),
    ));
    s.push_str("</div><table>");
    s.push_str(&thead(&[
        ("evaluation", false),
        ("parameters", true),
        ("score", true),
    ]));
    s.push_str("<tbody>");
    for i in front {
        if let Some(&(p, sc, n)) = points.get(i) {
            let _ = write!(
                s,
                "<tr><td><a href=\"#{}\">#{n}</a></td><td class=\"num\">{}</td>{}</tr>",
                v.row_id(n),
                fmt_count(Some(p)),
                td_num(Some(sc), 2)
            );
        }
    }
    s.push_str("</tbody></table></section>\n");
    page.push(&s);
}

fn operators_section(page: &mut Page, v: &View, ops: &Operators) {
    let r = v.run;
    let dups: Vec<&str> = r
        .activity
        .duplicates
        .iter()
        .map(|d| d.origin.as_str())
        .collect();
    let stats = operator_stats(&r.steps, &v.lineage, &dups);
    let mut s = format!(
        "<section class=\"card\" id=\"r{}-operators\"><h2>Operators</h2><p class=\"meta\">How each way of making an architecture did: its evaluations, their scores, how often a child beat its parent, and how often it set a new best.</p><table class=\"sortable operators\">",
        v.k
    );
    s.push_str(&thead(&[
        ("operator", false),
        ("evaluations", true),
        ("scored", true),
        ("failed", true),
        ("duplicates", true),
        ("mean score", true),
        ("best score", true),
        ("beat parent", true),
        ("mean change vs parent", true),
        ("new bests", true),
    ]));
    s.push_str("<tbody>");
    for o in stats {
        let beat = if o.with_parent == 0 {
            "<td class=\"num\" data-v=\"\">-</td>".to_string()
        } else {
            format!(
                "<td class=\"num\" data-v=\"{}\">{} of {}</td>",
                o.improved as f64 / o.with_parent as f64,
                o.improved,
                o.with_parent
            )
        };
        let _ = write!(
            s,
            "<tr><td data-v=\"{}\">{}</td>{}{}{}{}{}{}{beat}{}{}</tr>",
            escape(&o.operator),
            ops.badge(&o.operator),
            td_int(o.evaluations),
            td_int(o.scored),
            td_int(o.failed),
            td_int(o.duplicates),
            td_num(o.mean_score, 2),
            td_num(o.best_score, 2),
            td_delta(o.mean_delta),
            td_int(o.new_best)
        );
    }
    s.push_str("</tbody></table></section>\n");
    page.push(&s);
}

/// Where an insight's evidence id points: an evaluation of a run on the
/// page, or an architecture of the pool the strategy was shown.
fn evidence_html(page: &mut Page, id: &str, v: &View, views: &[View]) -> (String, Option<f64>) {
    for w in views {
        let Some(rest) = id.strip_prefix(&format!("{}-", w.run.session)) else {
            continue;
        };
        let Ok(n) = rest.parse::<usize>() else {
            continue;
        };
        if let Some(i) = w.run.steps.iter().position(|s| s.n == n) {
            let st = &w.run.steps[i];
            return (
                format!(
                    "<a href=\"#{}\" title=\"{}\">{}</a>{}",
                    w.row_id(n),
                    escape(&format!("score {}", fmt(st.result.score, 2))),
                    escape(id),
                    w.view_button(page, i)
                ),
                st.result.score,
            );
        }
    }
    if let Some(PoolEntry { arch, score, .. }) = v.run.pool.iter().find(|p| p.id == id) {
        let score = &Some(*score);
        let button = match v.space.and_then(|sp| sp.parse(arch).ok()) {
            Some(a) => page.view_button(
                &a,
                &format!("{id} (knowledge base) · score {}", fmt(*score, 2)),
            ),
            None => String::new(),
        };
        return (
            format!(
                "<code title=\"{}\">{}</code>{button}",
                escape(&format!("knowledge base record, score {}", fmt(*score, 2))),
                escape(id)
            ),
            *score,
        );
    }
    (format!("<code>{}</code>", escape(id)), None)
}

fn insights_section(page: &mut Page, v: &View, views: &[View]) {
    let r = v.run;
    let mut s = format!(
        "<section class=\"card\" id=\"r{}-insights\"><h2>Insights</h2>",
        v.k
    );
    if r.insights.is_empty() {
        s.push_str("<p class=\"muted\">No insights were distilled in this session (only the seki strategy distils them).</p></section>\n");
        page.push(&s);
        return;
    }
    s.push_str("<p class=\"meta\">Design patterns the LLM stated from the best known architectures, with the architectures it cited. <b>Support</b>: later designs from the insight that scored at least the session's median; <b>against</b>: those that scored below it.</p><div class=\"scroll\"><table class=\"insights\">");
    s.push_str(&thead(&[
        ("id", false),
        ("insight", false),
        ("status", false),
        ("evidence", false),
        ("cited", true),
        ("mean score of evidence", true),
        ("support", true),
        ("against", true),
    ]));
    s.push_str("<tbody>");
    for i in &r.insights {
        let id = i.id.as_str();
        let mut ev = Vec::new();
        let mut scores = Vec::new();
        for e in &i.evidence {
            let (html, sc) = evidence_html(page, e, v, views);
            ev.push(html);
            scores.extend(sc);
        }
        let against: Vec<String> = i
            .contradicted_by
            .iter()
            .map(|x| evidence_html(page, x, v, views).0)
            .collect();
        let mean = (!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64);
        let _ = write!(
            s,
            "<tr class=\"insight\" id=\"r{}-{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td>{}{}{}<td class=\"num\">{}{}</td></tr>",
            v.k,
            escape(id),
            escape(id),
            escape(&i.text),
            status_badge(match i.status {
                InsightStatus::Active => "active",
                InsightStatus::Contradicted => "contradicted",
            }),
            ev.join(", "),
            td_int(ev.len()),
            td_num(mean, 2),
            td_int(r.supports.get(id).copied().unwrap_or(0)),
            against.len(),
            if against.is_empty() {
                String::new()
            } else {
                format!(": {}", against.join(", "))
            }
        );
    }
    s.push_str("</tbody></table></div></section>\n");
    page.push(&s);
}

fn llm_section(page: &mut Page, v: &View) {
    let a = &v.run.activity;
    let mut s = format!(
        "<section class=\"card\" id=\"r{}-llm\"><h2>LLM usage</h2>",
        v.k
    );
    if a.llm.is_empty() {
        s.push_str("<p class=\"muted\">This strategy made no LLM calls.</p></section>\n");
        page.push(&s);
        return;
    }
    let t = a.total();
    s.push_str("<div class=\"stats\">");
    s.push_str(&stat(&t.calls.to_string(), "calls"));
    s.push_str(&stat(&t.prompt_tokens.to_string(), "prompt tokens"));
    s.push_str(&stat(&t.completion_tokens.to_string(), "completion tokens"));
    s.push_str(&stat(&format!("{:.1} s", t.seconds), "waiting for replies"));
    s.push_str(&stat(&format!("${:.4}", t.cost_usd), "cost"));
    s.push_str("</div>");
    if !a.models.is_empty() {
        let _ = write!(
            s,
            "<p class=\"meta\">model: {}</p>",
            escape(&a.models.join(", "))
        );
    }
    s.push_str("<table class=\"sortable llm\">");
    s.push_str(&thead(&[
        ("stage", false),
        ("calls", true),
        ("prompt tokens", true),
        ("completion tokens", true),
        ("seconds", true),
        ("cost (USD)", true),
    ]));
    s.push_str("<tbody>");
    for st in &a.llm {
        let _ = write!(
            s,
            "<tr><td>{}</td>{}{}{}{}{}</tr>",
            escape(&st.stage),
            td_int(st.calls),
            td_int(st.prompt_tokens),
            td_int(st.completion_tokens),
            td_num(Some(st.seconds), 2),
            td_num(Some(st.cost_usd), 4)
        );
    }
    let _ = write!(
        s,
        "</tbody><tfoot><tr><th>total</th>{}{}{}{}{}</tr></tfoot></table>",
        td_int(t.calls),
        td_int(t.prompt_tokens),
        td_int(t.completion_tokens),
        td_num(Some(t.seconds), 2),
        td_num(Some(t.cost_usd), 4)
    );
    if !a.outcomes.is_empty() {
        s.push_str("<h3>Architecture replies</h3><table>");
        s.push_str(&thead(&[("outcome", false), ("count", true)]));
        s.push_str("<tbody>");
        for (o, n) in &a.outcomes {
            let what = match o.as_str() {
                "parsed" => "parsed first time",
                "repaired" => "parsed after a repair prompt",
                "invalid" => "unusable (answered with a repair prompt)",
                "duplicate" => "repeated an evaluated architecture (re-asked)",
                "fallback" => "gave up: fell back to a mutation",
                other => other,
            };
            let _ = write!(s, "<tr><td>{}</td>{}</tr>", escape(what), td_int(n));
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</section>\n");
    page.push(&s);
}

fn failures_section(page: &mut Page, v: &View, ops: &Operators) {
    let r = v.run;
    let mut s = format!(
        "<section class=\"card\" id=\"r{}-failures\"><h2>Failures</h2>",
        v.k
    );
    let failed: Vec<usize> = (0..r.steps.len())
        .filter(|&i| r.steps.get(i).is_some_and(|st| st.result.score.is_none()))
        .collect();
    if failed.is_empty() {
        s.push_str("<p class=\"muted\">Every evaluation was scored.</p>");
    } else {
        s.push_str("<h3>Evaluations</h3><table class=\"failed-evals\">");
        s.push_str(&thead(&[
            ("evaluation", false),
            ("status", false),
            ("reason", false),
            ("operator", false),
            ("cell", false),
        ]));
        s.push_str("<tbody>");
        for i in failed {
            let Some(st) = r.steps.get(i) else { continue };
            let reason = st.result.status.reason().unwrap_or_default().to_string();
            let button = v.view_button(page, i);
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                v.eval_link(i),
                status_badge(st.result.status.name()),
                escape(&reason),
                ops.badge(operator(&st.proposal.origin)),
                button
            );
        }
        s.push_str("</tbody></table>");
    }
    let groups = r.activity.issue_groups();
    if !groups.is_empty() {
        s.push_str("<h3>LLM replies that could not be used as given</h3><table class=\"issues\">");
        s.push_str(&thead(&[
            ("outcome", false),
            ("reason", false),
            ("times", true),
        ]));
        s.push_str("<tbody>");
        for (o, reason, n) in groups {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td>{}</tr>",
                status_badge(&o),
                escape(&reason),
                td_int(n)
            );
        }
        s.push_str("</tbody></table>");
    }
    if !r.activity.duplicates.is_empty() {
        let _ = write!(
            s,
            "<h3>Duplicates</h3><p class=\"meta\">{} proposal(s) repeated an evaluated architecture and were not evaluated again.</p><table>",
            r.activity.duplicates.len()
        );
        s.push_str(&thead(&[
            ("after evaluation", true),
            ("operator", false),
            ("repeats", false),
        ]));
        s.push_str("<tbody>");
        for d in &r.activity.duplicates {
            let _ = write!(
                s,
                "<tr>{}<td>{}</td><td><a href=\"#{}\">#{}</a></td></tr>",
                td_int(d.after),
                ops.badge(operator(&d.origin)),
                v.row_id(d.of),
                d.of
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</section>\n");
    page.push(&s);
}

fn evaluations_section(page: &mut Page, v: &View, ops: &Operators) {
    let r = v.run;
    let has = |key: &str| r.steps.iter().any(|s| s.result.metrics.contains_key(key));
    let (params, flops) = (has("params"), has("flops"));
    let mut cols: Vec<(&str, bool)> = vec![
        ("#", true),
        ("score", true),
        ("± SE", true),
        ("repeats: mean ± SE", true),
        ("test acc.", true),
        ("change vs parent", true),
        ("parent", true),
        ("operator", false),
        ("origin", false),
    ];
    if params {
        cols.push(("params", true));
    }
    if flops {
        cols.push(("FLOPs", true));
    }
    cols.extend([
        ("seconds", true),
        ("status", false),
        ("hash", false),
        ("cell", false),
    ]);
    let mut s = format!(
        "<section class=\"card\" id=\"r{k}-evaluations\"><h2>All evaluations</h2><p class=\"meta\">Click a column header to sort.</p><div class=\"scroll\"><table class=\"sortable evals\" id=\"evals-{k}\" data-selftest-col=\"1\">",
        k = v.k
    );
    s.push_str(&thead(&cols));
    s.push_str("<tbody>");
    for (i, st) in r.steps.iter().enumerate() {
        let parent = v.lineage.parent.get(i).copied().flatten();
        let parent_cell = match parent.and_then(|p| r.steps.get(p)) {
            Some(p) => format!(
                "<td class=\"num\" data-v=\"{}\"><a href=\"#{}\">#{}</a></td>",
                p.n,
                v.row_id(p.n),
                p.n
            ),
            None => "<td class=\"num\" data-v=\"\">-</td>".into(),
        };
        let op = operator(&st.proposal.origin);
        let repeats = match r.estimate(st) {
            Some((m, Some(u))) if u.repeats > 1 => format!(
                "<td class=\"num\" data-v=\"{m}\">{} <span class=\"muted\">({} evaluations)</span></td>",
                escape(&crate::stats::with_se(m, Some(u.se))),
                u.repeats
            ),
            _ => "<td class=\"num\" data-v=\"\">-</td>".into(),
        };
        let digits = crate::stats::decimals(st.result.score_se);
        let _ = write!(
            s,
            "<tr id=\"{}\" data-n=\"{}\"{}><td class=\"num\" data-v=\"{}\">{}</td>{}{}{repeats}{}{}{parent_cell}<td data-v=\"{}\">{}</td><td class=\"origin\">{}</td>",
            v.row_id(st.n),
            st.n,
            if v.lineage.on_best_path(i) {
                " class=\"best-path\""
            } else {
                ""
            },
            st.n,
            st.n,
            td_num(st.result.score, digits),
            td_num(st.result.score_se, digits),
            td_num(st.result.test_accuracy, 2),
            td_delta(v.lineage.delta.get(i).copied().flatten()),
            escape(op),
            ops.badge(op),
            escape(&st.proposal.origin)
        );
        if params {
            let p = st.result.metrics.get("params").copied();
            let _ = write!(
                s,
                "<td class=\"num\" data-v=\"{}\">{}</td>",
                p.map_or(String::new(), |x| x.to_string()),
                fmt_count(p)
            );
        }
        if flops {
            let p = st.result.metrics.get("flops").copied();
            let _ = write!(
                s,
                "<td class=\"num\" data-v=\"{}\">{}</td>",
                p.map_or(String::new(), |x| x.to_string()),
                fmt_count(p)
            );
        }
        let button = v.view_button(page, i);
        let _ = write!(
            s,
            "{}<td>{}</td><td><code title=\"{}\">{}</code></td><td>{}</td></tr>",
            td_num(Some(st.eval_seconds), 2),
            status_badge(st.result.status.name()),
            escape(&st.proposal.arch),
            escape(&st.proposal.hash),
            button
        );
    }
    s.push_str("</tbody></table></div></section>\n");
    page.push(&s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::lineage::tests::step;
    use std::path::PathBuf;

    fn run(steps: Vec<Step>) -> Run {
        Run {
            dir: PathBuf::from("/tmp/<run>"),
            label: "s (seki)".into(),
            strategy: "seki".into(),
            space: "nb201".into(),
            steps,
            summary: None,
            insights: vec![serde_json::from_value(serde_json::json!({
                "id": "s-i001", "space": "nb201", "text": "<script>alert(1)</script> convs first",
                "evidence": ["s-0002", "kb-7", "elsewhere"], "status": "contradicted",
                "contradicted_by": ["s-0003"],
                "provenance": {"source": "test"}, "created": "2026-01-01T00:00:00Z"}))
            .unwrap()],
            session: "s".into(),
            evaluator: "NAS-Bench-201 table (CIFAR-10)".into(),
            started: "2026-01-01T00:00:00Z".into(),
            end_reason: Some("budget".into()),
            elapsed: 1.0,
            activity: Default::default(),
            pool: vec![PoolEntry {
                id: "kb-7".into(),
                arch: "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|".into(),
                score: 80.0,
                score_label: "validation accuracy".into(),
                params: None,
                own: false,
                se: None,
                other_protocol: false,
                parent: None,
            }],
            supports: [("s-i001".to_string(), 1)].into_iter().collect(),
            reevaluations: Vec::new(),
        }
    }

    fn nb(ops: [&str; 6]) -> String {
        format!(
            "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|",
            ops[0], ops[1], ops[2], ops[3], ops[4], ops[5]
        )
    }

    fn steps() -> Vec<Step> {
        let archs = [
            nb([
                "nor_conv_3x3",
                "nor_conv_3x3",
                "skip_connect",
                "none",
                "nor_conv_1x1",
                "avg_pool_3x3",
            ]),
            nb([
                "nor_conv_3x3",
                "nor_conv_3x3",
                "nor_conv_3x3",
                "none",
                "nor_conv_1x1",
                "avg_pool_3x3",
            ]),
            nb([
                "nor_conv_1x1",
                "nor_conv_3x3",
                "skip_connect",
                "none",
                "nor_conv_1x1",
                "avg_pool_3x3",
            ]),
            nb([
                "nor_conv_3x3",
                "nor_conv_3x3",
                "nor_conv_3x3",
                "none",
                "nor_conv_3x3",
                "avg_pool_3x3",
            ]),
        ];
        let hashes: Vec<String> = archs
            .iter()
            .map(|a| Space::Nb201.parse(a).unwrap().hash())
            .collect();
        let mut v = vec![
            step(
                1,
                &hashes[0],
                "seed: kb-7 from the knowledge base",
                Some("kbhash"),
                Some(80.0),
            ),
            step(
                2,
                &hashes[1],
                "evolution (parsed)",
                Some(&hashes[0]),
                Some(82.0),
            ),
            step(3, &hashes[2], "evolution (parsed)", Some(&hashes[0]), None),
            step(
                4,
                &hashes[3],
                "inspiration (parsed)",
                Some(&hashes[1]),
                Some(84.0),
            ),
        ];
        for (s, a) in v.iter_mut().zip(archs) {
            s.proposal.arch = a;
        }
        v
    }

    #[test]
    fn the_page_has_every_part_and_escapes_llm_text() {
        let html = render(&[run(steps())]);
        assert!(!html.contains("<script>alert"), "insight text is escaped");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; convs first"));
        assert!(html.contains("/tmp/&lt;run&gt;"));
        for id in [
            "overview",
            "r0-archs",
            "r0-lineage",
            "r0-operators",
            "r0-insights",
            "r0-llm",
            "r0-failures",
            "r0-evaluations",
        ] {
            assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
        }
        assert_eq!(html.matches("class=\"lineage-row").count(), 4);
        assert_eq!(
            html.matches("lineage-row best-path").count(),
            3,
            "1 → 2 → 4"
        );
        assert!(
            html.contains(r#"data-chart="lineage""#)
                && html.contains(r#"data-chart="best-so-far""#)
        );
        // Best and seed drawn inline, each architecture once as a template.
        let inline = html.split("<template").next().unwrap();
        assert_eq!(inline.matches("class=\"cell-diagram\"").count(), 2);
        assert_eq!(
            html.matches("<template id=").count(),
            5,
            "4 evaluations and a pool record"
        );
        // Evidence: own evaluations link to rows; pool records get their score; unknown ids stay text.
        assert!(html.contains(r##"<a href="#r0-e2" title="score 82.00">s-0002</a>"##));
        assert!(html.contains("knowledge base record, score 80.00"));
        assert!(html.contains("<code>elsewhere</code>"));
        assert!(html.contains("outside <code>kbhash</code>"));
        assert!(html.contains(">+2.00<") && html.contains("self-evolution"));
        for bad in ["src=", "href=\"http", "href=\"//", "url(", "@import"] {
            assert!(!html.contains(bad), "{bad}");
        }
    }

    #[test]
    fn several_runs_share_one_curve_chart() {
        let mut b = run(steps());
        b.label = "t (rea)".into();
        b.session = "t".into();
        let html = render(&[run(steps()), b]);
        assert_eq!(html.matches(r#"data-chart="best-so-far""#).count(), 1);
        assert_eq!(html.matches(r#"<path class="series""#).count(), 2);
        assert!(html.contains("id=\"run-1\"") && html.contains("id=\"evals-1\""));
        assert!(html.contains("Best architecture of each run"));
    }

    #[test]
    fn darts_runs_draw_normal_and_reduction_cells() {
        let mut rng = crate::rng::Rng::seed(11);
        let mut s = steps();
        for x in &mut s {
            let a = Space::Darts.random(&mut rng);
            x.proposal.arch = a.to_text();
            x.proposal.hash = a.hash();
            x.proposal.parent = None;
        }
        s[1].proposal.parent = Some(s[0].proposal.hash.clone());
        let mut r = run(s);
        r.space = "darts".into();
        r.pool.clear();
        let html = render(&[r]);
        let inline = html.split("<template").next().unwrap();
        assert_eq!(
            inline.matches("data-space=\"darts\"").count(),
            2,
            "best and seed"
        );
        assert_eq!(inline.matches("data-cell=\"reduce\"").count(), 2);
        assert_eq!(html.matches("<template id=\"arch-darts-").count(), 4);
        assert!(html.contains("Genotype(normal=[("));
    }

    #[test]
    fn a_run_without_parents_or_scores_still_renders() {
        let mut s = steps();
        for x in &mut s {
            x.proposal.parent = None;
            x.result.score = None;
        }
        let html = render(&[run(s)]);
        assert!(html.contains("every evaluation is shown as a root"));
        assert!(!html.contains("NaN"));
        assert!(render(&[]).contains("<!DOCTYPE html>"));
    }
}
