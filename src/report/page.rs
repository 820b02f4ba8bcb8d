//! The self-contained HTML page both reports are written into: one file with
//! its stylesheet, a few lines of script (sortable tables, an architecture
//! viewer, error capture) and every diagram inline. It loads nothing: no
//! fonts, images, scripts or styles from anywhere.
//!
//! Diagrams of architectures that are only shown on demand live in
//! `<template>` elements, one per distinct architecture; any element with
//! `data-arch="KEY"` opens the viewer dialog on that template.

use crate::markup::{escape, num};
use crate::space::{diagram, Arch};
use std::collections::BTreeMap;
use std::fmt::Write as _;

const STYLE: &str = r##"
:root{--ink:#1d232b;--mute:#5d6673;--line:#dde2e8;--bg:#f6f7f9;--card:#fff;--accent:#1f5fa8;--best:#d62728}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif}
header.top{background:#1d2733;color:#fff;padding:18px 28px}
header.top h1{margin:0;font-size:22px}
header.top p{margin:4px 0 0;color:#c8d1dc}
nav.toc{position:sticky;top:0;z-index:5;background:#fff;border-bottom:1px solid var(--line);padding:6px 28px;font-size:13px}
nav.toc a{margin-right:14px;color:var(--accent);text-decoration:none}
main{max-width:1320px;margin:0 auto;padding:10px 28px 40px}
section.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 18px;margin:16px 0}
section.card>h2,section.run>h2{margin:0 0 8px;font-size:18px}
section.run{border-top:3px solid var(--accent);margin-top:28px;padding-top:6px}
h3{font-size:15px;margin:14px 0 6px}
.meta{color:var(--mute);margin:0 0 8px}
.figs{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{margin:0;background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px;max-width:100%;overflow-x:auto}
figure.arch-fig{width:min-content}
figure.arch-fig svg{max-width:none}
figcaption{font-size:13px;color:var(--mute);margin:2px 2px 6px}
figcaption b{color:var(--ink)}
svg{max-width:100%;height:auto;display:block}
code,pre,.mono{font-family:Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12px}
pre.arch{white-space:pre-wrap;word-break:break-all;background:#f3f5f8;border-radius:4px;padding:6px 8px;margin:6px 0 0;max-width:780px}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:13px;margin:4px 0 8px}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
table.sortable thead th{cursor:pointer;user-select:none}
table.sortable thead th::after{content:" \2195";color:#aab}
table.sortable th[aria-sort=ascending]::after{content:" \2191";color:var(--ink)}
table.sortable th[aria-sort=descending]::after{content:" \2193";color:var(--ink)}
tbody tr:nth-child(even){background:#fafbfc}
tr:target{outline:2px solid var(--accent);background:#eaf2fc!important}
tr.best-path{background:#fdeeee!important}
tr.best-path td:first-child{box-shadow:inset 3px 0 0 var(--best)}
.up{color:#1a7f37}.down{color:#b42318}
.op{display:inline-block;padding:0 7px;border-radius:9px;color:#fff;font-size:12px;white-space:nowrap}
.tree{font-family:Menlo,Consolas,monospace;color:#9aa3ad;white-space:pre}
.status{font-size:12px;padding:0 6px;border-radius:8px;background:#eee}
.status.contradicted,.status.failed,.status.diverged,.status.timed_out,.status.too_large{background:#fde2e1;color:#8a1c14}
.status.active,.status.ok{background:#dcf3e1;color:#1a5c2b}
button.view{font:inherit;font-size:12px;border:1px solid #c5cdd8;background:#fff;border-radius:4px;padding:0 6px;cursor:pointer;color:var(--accent)}
button.view:hover{background:#eef4fb}
.path{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:6px 0}
.path .step{border:1px solid var(--line);border-radius:6px;padding:2px 8px;background:#fff}
.muted{color:var(--mute)}
td.prov{min-width:280px;max-width:460px}
td.prov .mono{word-break:break-all}
.stats{display:flex;flex-wrap:wrap;gap:10px;margin:6px 0 10px}
.stat{background:#fff;border:1px solid var(--line);border-radius:6px;padding:6px 12px;min-width:120px}
.stat b{display:block;font-size:18px}
.stat span{font-size:12px;color:var(--mute)}
dialog#viewer{border:1px solid var(--line);border-radius:8px;padding:12px 16px;max-width:94vw;max-height:92vh;overflow:auto}
dialog#viewer::backdrop{background:rgba(20,25,35,.45)}
#js-errors{background:#fde2e1;color:#8a1c14;padding:8px;margin:8px 28px;white-space:pre-wrap}
@media print{nav.toc,button.view{display:none}section.card{break-inside:avoid}}
"##;

const SCRIPT: &str = r##"
(function () {
  "use strict";
  var errors = document.getElementById("js-errors");
  window.addEventListener("error", function (e) {
    errors.hidden = false;
    errors.textContent += (e.message || "script error") + "\n";
  });
  function key(cell) {
    if (!cell) return "";
    var v = cell.getAttribute("data-v");
    return v === null ? cell.textContent.trim() : v;
  }
  function isNum(s) { return s !== "" && isFinite(Number(s)); }
  function sortBy(table, col, desc) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var a = key(r1.cells[col]), b = key(r2.cells[col]);
      if (a === "" || b === "") return (a === "") - (b === "");
      var c = isNum(a) && isNum(b) ? Number(a) - Number(b) : a.localeCompare(b);
      return desc ? -c : c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      if (i === col) th.setAttribute("aria-sort", desc ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    });
  }
  function wire(root) {
    root.querySelectorAll("table.sortable").forEach(function (table) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
        th.tabIndex = 0;
        th.title = "sort";
        var go = function () { sortBy(table, i, th.getAttribute("aria-sort") === "ascending"); };
        th.addEventListener("click", go);
        th.addEventListener("keydown", function (e) { if (e.key === "Enter") go(); });
      });
    });
  }
  wire(document);
  // For the live dashboard (seki serve), which swaps new tables in.
  window.sekiWire = wire;
  var viewer = document.getElementById("viewer");
  function show(el) {
    var tpl = document.getElementById(el.getAttribute("data-arch"));
    if (!tpl) return false;
    document.getElementById("viewer-caption").textContent = el.getAttribute("data-caption") || "";
    var body = document.getElementById("viewer-body");
    while (body.firstChild) body.removeChild(body.firstChild);
    body.appendChild(tpl.content.cloneNode(true));
    if (!viewer.open) viewer.showModal();
    return true;
  }
  document.addEventListener("click", function (e) {
    var el = e.target.closest ? e.target.closest("[data-arch]") : null;
    if (el && show(el)) e.preventDefault();
  });
  document.getElementById("viewer-close").addEventListener("click", function () { viewer.close(); });
  if (/[?&]selftest\b/.test(location.search)) {
    var t = document.querySelector("table.sortable[data-selftest-col]");
    if (t) {
      sortBy(t, Number(t.getAttribute("data-selftest-col")), true);
      document.body.setAttribute("data-selftest-first", t.tBodies[0].rows[0].getAttribute("data-n"));
    }
    var b = document.querySelector("[data-arch]");
    if (b) {
      b.click();
      document.body.setAttribute("data-selftest-viewer",
        String(document.querySelectorAll("#viewer-body svg.cell-diagram").length));
    }
  }
  document.body.setAttribute("data-ready", "1");
})();
"##;

/// A page being written.
#[derive(Debug, Default)]
pub struct Page {
    body: String,
    nav: Vec<(String, String)>,
    templates: BTreeMap<String, String>,
}

/// The template key of an architecture.
pub fn arch_key(arch: &Arch) -> String {
    format!("arch-{}-{}", arch.space().name(), arch.hash())
}

impl Page {
    /// An empty page.
    pub fn new() -> Page {
        Page::default()
    }

    /// Append HTML to the body.
    pub fn push(&mut self, html: &str) {
        self.body.push_str(html);
    }

    /// Add an entry to the navigation bar.
    pub fn nav(&mut self, anchor: &str, label: &str) {
        self.nav.push((anchor.to_string(), label.to_string()));
    }

    /// Register an architecture's diagram as a template; returns its key.
    pub fn template(&mut self, arch: &Arch) -> String {
        let key = arch_key(arch);
        if !self.templates.contains_key(&key) {
            let html = format!(
                "{}<pre class=\"arch\">{}</pre><p class=\"muted\">hash <code>{}</code></p>",
                diagram::svg(arch),
                escape(&arch.to_text()),
                arch.hash()
            );
            self.templates.insert(key.clone(), html);
        }
        key
    }

    /// A small button that opens the architecture's diagram in the viewer.
    pub fn view_button(&mut self, arch: &Arch, caption: &str) -> String {
        let key = self.template(arch);
        format!(
            r#"<button type="button" class="view" data-arch="{key}" data-caption="{}" title="show the cell diagram">cell</button>"#,
            escape(caption)
        )
    }

    /// The whole document.
    pub fn finish(self, title: &str, subtitle: &str) -> String {
        let mut s = String::with_capacity(self.body.len() + 16_000);
        let _ = write!(
            s,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"seki {}\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
            env!("CARGO_PKG_VERSION"),
            escape(title)
        );
        let _ = writeln!(
            s,
            "<header class=\"top\"><h1>{}</h1><p>{}</p></header>",
            escape(title),
            escape(subtitle)
        );
        if !self.nav.is_empty() {
            s.push_str("<nav class=\"toc\">");
            for (a, l) in &self.nav {
                let _ = write!(s, "<a href=\"#{}\">{}</a>", escape(a), escape(l));
            }
            s.push_str("</nav>\n");
        }
        s.push_str("<pre id=\"js-errors\" hidden></pre>\n<main>\n");
        s.push_str(&self.body);
        s.push_str("</main>\n");
        s.push_str("<dialog id=\"viewer\"><p><b id=\"viewer-caption\"></b> <button type=\"button\" class=\"view\" id=\"viewer-close\">close</button></p><div id=\"viewer-body\"></div></dialog>\n");
        for (key, html) in &self.templates {
            let _ = writeln!(s, "<template id=\"{key}\">{html}</template>");
        }
        let _ = write!(s, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
        s
    }
}

/// A table cell holding a number (`-` when absent), sortable by its value.
pub fn td_num(v: Option<f64>, digits: usize) -> String {
    match v.filter(|x| x.is_finite()) {
        Some(x) => format!(r#"<td class="num" data-v="{}">{x:.digits$}</td>"#, x),
        None => r#"<td class="num" data-v="">-</td>"#.to_string(),
    }
}

/// A table cell holding a count.
pub fn td_int(v: impl std::fmt::Display) -> String {
    format!(r#"<td class="num">{v}</td>"#)
}

/// A cell with a signed change, coloured.
pub fn td_delta(v: Option<f64>) -> String {
    match v.filter(|x| x.is_finite()) {
        Some(x) => format!(
            r#"<td class="num {}" data-v="{x}">{x:+.2}</td>"#,
            if x > 0.0 {
                "up"
            } else if x < 0.0 {
                "down"
            } else {
                ""
            }
        ),
        None => r#"<td class="num" data-v="">-</td>"#.to_string(),
    }
}

/// A table header row: `(label, numeric)` columns.
pub fn thead(cols: &[(&str, bool)]) -> String {
    let mut s = String::from("<thead><tr>");
    for (label, numeric) in cols {
        let _ = write!(
            s,
            "<th{}>{}</th>",
            if *numeric { " class=\"num\"" } else { "" },
            escape(label)
        );
    }
    s.push_str("</tr></thead>");
    s
}

/// A labelled figure.
pub fn figure(caption_html: &str, content: &str) -> String {
    format!("<figure><figcaption>{caption_html}</figcaption>{content}</figure>")
}

/// A labelled figure of a cell diagram, as wide as the diagram.
pub fn arch_figure(caption_html: &str, content: &str) -> String {
    format!("<figure class=\"arch-fig\"><figcaption>{caption_html}</figcaption>{content}</figure>")
}

/// A headline number.
pub fn stat(value: &str, label: &str) -> String {
    format!(
        "<div class=\"stat\"><b>{}</b><span>{}</span></div>",
        escape(value),
        escape(label)
    )
}

/// An operator badge in the operator's colour.
pub fn op_badge(label: &str, color: &str) -> String {
    format!(
        "<span class=\"op\" style=\"background:{}\">{}</span>",
        escape(color),
        escape(label)
    )
}

/// A status badge (`ok`, `failed`, `active`, `contradicted`, ...).
pub fn status_badge(status: &str) -> String {
    let s = escape(status);
    format!("<span class=\"status {s}\">{s}</span>")
}

/// `x` with at most `digits` decimals, or `-`.
pub fn fmt(v: Option<f64>, digits: usize) -> String {
    v.filter(|x| x.is_finite())
        .map_or("-".into(), |x| format!("{x:.digits$}"))
}

/// A parameter count as `1.23M` / `45.6k`.
pub fn fmt_count(v: Option<f64>) -> String {
    match v.filter(|x| x.is_finite()) {
        Some(x) if x.abs() >= 1e6 => format!("{}M", num(x / 1e6)),
        Some(x) if x.abs() >= 1e4 => format!("{}k", num(x / 1e3)),
        Some(x) => num(x),
        None => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::Space;

    #[test]
    fn a_page_is_one_self_contained_document() {
        let mut p = Page::new();
        let a = Space::Nb201.random(&mut crate::rng::Rng::seed(3));
        let b1 = p.view_button(&a, "evaluation <1>");
        let b2 = p.view_button(&a, "again");
        p.push(&b1);
        p.push(&b2);
        p.nav("x", "X & Y");
        let html = p.finish("t <i>", "sub");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<title>t &lt;i&gt;</title>"));
        assert!(html.contains("evaluation &lt;1&gt;") && html.contains("X &amp; Y"));
        assert_eq!(
            html.matches("<template id=").count(),
            1,
            "one per architecture"
        );
        assert!(html.contains(&format!("<template id=\"{}\">", arch_key(&a))));
        for bad in ["src=", "href=\"http", "href=\"//", "@import", "url("] {
            assert!(!html.contains(bad), "{bad}");
        }
    }

    #[test]
    fn cells_format_numbers_and_gaps() {
        assert_eq!(
            td_num(Some(1.234), 2),
            r#"<td class="num" data-v="1.234">1.23</td>"#
        );
        assert!(td_num(None, 2).contains(">-<"));
        assert!(td_delta(Some(-0.5)).contains("down") && td_delta(Some(0.5)).contains("+0.50"));
        assert_eq!(fmt_count(Some(1_234_567.0)), "1.23M");
        assert_eq!(fmt_count(Some(45_600.0)), "45.6k");
        assert_eq!(fmt(Some(f64::NAN), 2), "-");
    }
}
