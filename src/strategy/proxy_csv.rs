//! The zero-cost proxy scores file that `seki proxy zc --out FILE.csv`
//! writes, checked against the NAS-Bench-201 table and used as a [`Screen`].
//!
//! The header is `index,arch`, then proxy columns (names among
//! [`PROXIES`]), then `seconds,note`. An empty proxy value means that proxy
//! could not score the cell (the `note` says why); rows may cover every cell
//! or a sample. Every row must be the table's: its `index` exists there and
//! its `arch` is the table's architecture at that index.
//!
//! A screen ranks by the mean, over the chosen proxies, of each proxy's
//! percentile rank among all the file's rows (0 to 100, ties sharing the mid
//! rank), computed once at load.

use super::screen::{Screen, ScreenError};
use crate::eval::Nb201Table;
use crate::space::nb201::{Nb201Cell, SIZE};
use crate::space::Arch;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The proxy columns a scores file may have.
pub const PROXIES: [&str; 7] = [
    "synflow",
    "naswot",
    "jacob_cov",
    "snip",
    "grad_norm",
    "params",
    "flops",
];

/// One row of the file.
#[derive(Debug, Clone)]
struct ProxyRow {
    /// Each proxy column's percentile rank (0 to 100), `None` where empty.
    percentiles: Vec<Option<f64>>,
    /// CPU seconds the row's scores cost.
    seconds: f64,
}

#[derive(Debug)]
struct ProxyData {
    path: PathBuf,
    /// Proxy column names, in file order.
    proxies: Vec<String>,
    rows: Vec<ProxyRow>,
    /// Cell code → row.
    by_code: Vec<Option<usize>>,
}

/// A zero-cost proxy scores file, checked against the NAS-Bench-201 table.
#[derive(Debug, Clone)]
pub struct ProxyCsv {
    data: Arc<ProxyData>,
}

/// Shared count of a [`ProxyScreen`]'s CPU seconds, readable after the
/// screen was handed to a strategy.
#[derive(Debug, Clone, Default)]
pub struct CpuMeter(Arc<AtomicU64>);

impl CpuMeter {
    /// CPU seconds counted so far.
    pub fn seconds(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    fn set(&self, seconds: f64) {
        self.0.store(seconds.to_bits(), Ordering::Relaxed);
    }
}

/// A [`Screen`] over some of a [`ProxyCsv`]'s proxies.
#[derive(Debug, Clone)]
pub struct ProxyScreen {
    data: Arc<ProxyData>,
    /// The chosen proxy columns.
    cols: Vec<usize>,
    name: String,
    /// Rows whose seconds are counted already.
    counted: Vec<bool>,
    seconds: f64,
    meter: CpuMeter,
}

impl ProxyCsv {
    /// Load a scores file and check every row against `table`.
    pub fn load(path: &Path, table: &Nb201Table) -> Result<Self, ScreenError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScreenError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text, table)
    }

    /// Parse scores text (`path` only names it in errors) and check every
    /// row against `table`.
    pub fn parse(path: &Path, text: &str, table: &Nb201Table) -> Result<Self, ScreenError> {
        let err = |line: usize, column: String, message: String| ScreenError::Line {
            path: path.to_path_buf(),
            line,
            column,
            message,
        };
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        let Some((_, header)) = lines.next() else {
            return Err(err(
                1,
                "1".into(),
                "the file is empty; expected a header line".into(),
            ));
        };
        let cols: Vec<&str> = header.split(',').map(str::trim).collect();
        let col_name = |k: usize| match cols.get(k) {
            Some(c) => format!("{} ({c})", k + 1),
            None => format!("{}", k + 1),
        };
        let (mut index, mut arch, mut seconds) = (None, None, None);
        let mut proxy_cols: Vec<(usize, String)> = Vec::new();
        for (k, &c) in cols.iter().enumerate() {
            if cols[..k].contains(&c) {
                return Err(err(1, col_name(k), format!("column '{c}' appears twice")));
            }
            match c {
                "index" => index = Some(k),
                "arch" => arch = Some(k),
                "seconds" => seconds = Some(k),
                "note" => {}
                p if PROXIES.contains(&p) => proxy_cols.push((k, p.to_string())),
                other => {
                    return Err(err(
                        1,
                        col_name(k),
                        format!(
                            "unknown column '{other}'; expected index, arch, proxies among {}, seconds, note",
                            PROXIES.join(", ")
                        ),
                    ))
                }
            }
        }
        let missing = |name: &str| {
            err(
                1,
                format!("{}", cols.len() + 1),
                format!(
                    "missing column '{name}'; the header has: {}",
                    cols.join(", ")
                ),
            )
        };
        let index = index.ok_or_else(|| missing("index"))?;
        let arch = arch.ok_or_else(|| missing("arch"))?;
        let seconds = seconds.ok_or_else(|| missing("seconds"))?;
        if proxy_cols.is_empty() {
            return Err(err(
                1,
                format!("{}", cols.len() + 1),
                format!("no proxy column; expected some of {}", PROXIES.join(", ")),
            ));
        }
        // The table's cell code at each benchmark index.
        let by_index: HashMap<usize, usize> = table
            .rows()
            .iter()
            .enumerate()
            .map(|(code, r)| (r.index, code))
            .collect();
        let mut by_code: Vec<Option<usize>> = vec![None; SIZE];
        let mut first_line: HashMap<usize, usize> = HashMap::new();
        let mut values: Vec<Vec<Option<f64>>> = Vec::new();
        let mut secs: Vec<f64> = Vec::new();
        for (line, l) in lines {
            if l.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = l.split(',').map(str::trim).collect();
            if fields.len() != cols.len() {
                return Err(err(
                    line,
                    col_name(fields.len().min(cols.len())),
                    format!(
                        "expected {} fields like the header, found {}",
                        cols.len(),
                        fields.len()
                    ),
                ));
            }
            let number = |k: usize| -> Result<Option<f64>, ScreenError> {
                let f = fields[k];
                if f.is_empty() {
                    return Ok(None);
                }
                f.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .map(Some)
                    .ok_or_else(|| err(line, col_name(k), format!("'{f}' is not a finite number")))
            };
            let idx_text = fields[index];
            let idx: usize = idx_text.parse().map_err(|_| {
                err(
                    line,
                    col_name(index),
                    format!("'{idx_text}' is not a whole number"),
                )
            })?;
            let Some(&code) = by_index.get(&idx) else {
                return Err(err(
                    line,
                    col_name(index),
                    format!(
                        "index {idx} is not in the NAS-Bench-201 table {}",
                        table.path().display()
                    ),
                ));
            };
            if let Some(first) = first_line.insert(idx, line) {
                return Err(err(
                    line,
                    col_name(index),
                    format!("duplicate index {idx} (first at line {first})"),
                ));
            }
            let found = fields[arch];
            let expected = Nb201Cell::from_code(code).map(|c| c.to_text());
            let same = Nb201Cell::parse(found).is_ok_and(|c| c.code() == code);
            if !same {
                return Err(ScreenError::Mismatch {
                    path: path.to_path_buf(),
                    line,
                    index: idx,
                    expected: expected.unwrap_or_default(),
                    found: found.to_string(),
                });
            }
            let mut row = Vec::with_capacity(proxy_cols.len());
            for &(k, _) in &proxy_cols {
                row.push(number(k)?);
            }
            by_code[code] = Some(values.len());
            values.push(row);
            secs.push(number(seconds)?.unwrap_or(0.0));
        }
        let mut rows: Vec<ProxyRow> = secs
            .into_iter()
            .map(|seconds| ProxyRow {
                percentiles: vec![None; proxy_cols.len()],
                seconds,
            })
            .collect();
        for j in 0..proxy_cols.len() {
            let column: Vec<Option<f64>> = values.iter().map(|r| r[j]).collect();
            for (r, p) in percentile_ranks(&column).into_iter().enumerate() {
                rows[r].percentiles[j] = p;
            }
        }
        Ok(ProxyCsv {
            data: Arc::new(ProxyData {
                path: path.to_path_buf(),
                proxies: proxy_cols.into_iter().map(|(_, p)| p).collect(),
                rows,
                by_code,
            }),
        })
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.data.path
    }

    /// The proxy columns, in file order.
    pub fn proxies(&self) -> &[String] {
        &self.data.proxies
    }

    /// Rows (cells scored).
    pub fn len(&self) -> usize {
        self.data.rows.len()
    }

    /// Whether the file has no rows.
    pub fn is_empty(&self) -> bool {
        self.data.rows.is_empty()
    }

    /// The percentile rank (0 to 100) of an architecture's `proxy` score
    /// among the file's rows; `None` when the file lacks the proxy, the
    /// architecture or its value.
    pub fn percentile(&self, arch: &Arch, proxy: &str) -> Option<f64> {
        let j = self.data.proxies.iter().position(|p| p == proxy)?;
        self.data.row_of(arch)?.percentiles[j]
    }

    /// A screen ranking by the mean percentile rank of `proxies` (each
    /// named once; at least one, each a column of the file).
    pub fn screen(&self, proxies: &[String]) -> Result<ProxyScreen, ScreenError> {
        let mut cols: Vec<usize> = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for p in proxies.iter().map(|p| p.trim()) {
            let Some(j) = self.data.proxies.iter().position(|c| c == p) else {
                return Err(ScreenError::UnknownProxy {
                    path: self.data.path.clone(),
                    proxy: p.to_string(),
                    available: self.data.proxies.join(", "),
                });
            };
            if !cols.contains(&j) {
                cols.push(j);
                names.push(p);
            }
        }
        let name = match names.as_slice() {
            [] => return Err(ScreenError::NoProxies),
            [one] => (*one).to_string(),
            many => format!("vote({})", many.join(",")),
        };
        Ok(ProxyScreen {
            counted: vec![false; self.data.rows.len()],
            data: self.data.clone(),
            cols,
            name,
            seconds: 0.0,
            meter: CpuMeter::default(),
        })
    }
}

impl ProxyData {
    fn row_index(&self, arch: &Arch) -> Option<usize> {
        match arch {
            Arch::Nb201(cell) => self.by_code.get(cell.code()).copied().flatten(),
            Arch::Darts(_) => None,
        }
    }

    fn row_of(&self, arch: &Arch) -> Option<&ProxyRow> {
        self.rows.get(self.row_index(arch)?)
    }
}

/// Each value's percentile rank (0 to 100) among the present values: the
/// share below it plus half the share equal to it (itself included).
fn percentile_ranks(values: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut present: Vec<(f64, usize)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (v, i)))
        .collect();
    present.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = present.len() as f64;
    let mut out = vec![None; values.len()];
    let mut start = 0;
    while start < present.len() {
        let mut end = start + 1;
        while end < present.len() && present[end].0 == present[start].0 {
            end += 1;
        }
        let p = 100.0 * (start as f64 + 0.5 * (end - start) as f64) / n;
        for &(_, i) in &present[start..end] {
            out[i] = Some(p);
        }
        start = end;
    }
    out
}

impl ProxyScreen {
    /// A handle on the screen's CPU seconds that stays readable after the
    /// screen was handed to a strategy.
    pub fn meter(&self) -> CpuMeter {
        self.meter.clone()
    }
}

impl Screen for ProxyScreen {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn scores(&mut self, archs: &[Arch]) -> Result<Vec<Option<f64>>, ScreenError> {
        let mut out = Vec::with_capacity(archs.len());
        for a in archs {
            let Some(r) = self.data.row_index(a) else {
                out.push(None);
                continue;
            };
            let Some(row) = self.data.rows.get(r) else {
                out.push(None);
                continue;
            };
            if let Some(c) = self.counted.get_mut(r) {
                if !*c {
                    *c = true;
                    self.seconds += row.seconds;
                }
            }
            let ps: Vec<f64> = self
                .cols
                .iter()
                .filter_map(|&j| row.percentiles.get(j).copied().flatten())
                .collect();
            out.push((!ps.is_empty()).then(|| ps.iter().sum::<f64>() / ps.len() as f64));
        }
        self.meter.set(self.seconds);
        Ok(out)
    }

    fn cpu_seconds(&self) -> f64 {
        self.seconds
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::space::Space;

    /// A full table whose benchmark index of cell code `c` is `SIZE - 1 - c`
    /// (so indices and codes differ).
    pub(crate) fn table() -> Nb201Table {
        let mut s =
            String::from("index,arch,cifar10_valid_12ep,cifar10_test_12ep,cifar10_test_200ep\n");
        for c in 0..SIZE {
            let cell = Nb201Cell::from_code(c).unwrap();
            s.push_str(&format!(
                "{},{},{}.5,{}.0,{}.25\n",
                SIZE - 1 - c,
                cell.to_text(),
                c % 90,
                c % 91,
                c % 92
            ));
        }
        Nb201Table::parse(Path::new("t.csv"), &s).unwrap()
    }

    pub(crate) fn arch(code: usize) -> Arch {
        Arch::Nb201(Nb201Cell::from_code(code).unwrap())
    }

    /// A scores file over cell codes `codes` whose synflow is the code and
    /// snip the negated code (empty for code 0), 0.5 s each.
    pub(crate) fn csv(codes: &[usize]) -> String {
        let mut s = String::from("index,arch,synflow,snip,seconds,note\n");
        for &c in codes {
            let snip = if c == 0 {
                String::new()
            } else {
                format!("{}", -(c as f64))
            };
            let note = if c == 0 { "constant output" } else { "" };
            s.push_str(&format!(
                "{},{},{c}e3,{snip},0.5,{note}\n",
                SIZE - 1 - c,
                arch(c).to_text()
            ));
        }
        s
    }

    fn names(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn loads_and_screens_by_mean_percentile() {
        let t = table();
        let p = ProxyCsv::parse(Path::new("p.csv"), &csv(&[0, 10, 20, 30]), &t).unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p.proxies(), ["synflow", "snip"]);
        // synflow: 0 < 10 < 20 < 30 → 12.5, 37.5, 62.5, 87.5.
        assert_eq!(p.percentile(&arch(30), "synflow"), Some(87.5));
        assert_eq!(p.percentile(&arch(0), "snip"), None);
        let mut s = p.screen(&names(&["synflow"])).unwrap();
        assert_eq!(s.name(), "synflow");
        let meter = s.meter();
        let got = s.scores(&[arch(20), arch(5), arch(30), arch(20)]).unwrap();
        assert_eq!(got, vec![Some(62.5), None, Some(87.5), Some(62.5)]);
        // Each architecture in the file counted once.
        assert_eq!(s.cpu_seconds(), 1.0);
        assert_eq!(meter.seconds(), 1.0);
        // snip: -30 < -20 < -10 (code 0 empty) → 30 at 100/6, 10 at 500/6.
        let mut v = p.screen(&names(&["synflow", "snip", "synflow"])).unwrap();
        assert_eq!(v.name(), "vote(synflow,snip)");
        let got = v.scores(&[arch(0), arch(10), arch(30)]).unwrap();
        assert_eq!(
            got[0],
            Some(12.5),
            "a missing value is left out of the mean"
        );
        assert!((got[1].unwrap() - (37.5 + 500.0 / 6.0) / 2.0).abs() < 1e-9);
        assert!((got[2].unwrap() - (87.5 + 100.0 / 6.0) / 2.0).abs() < 1e-9);
        assert!(matches!(
            p.screen(&names(&["naswot"])),
            Err(ScreenError::UnknownProxy { .. })
        ));
        assert!(matches!(p.screen(&[]), Err(ScreenError::NoProxies)));
        // Other spaces are not scored.
        let darts = Space::Darts.random(&mut crate::rng::Rng::seed(1));
        assert_eq!(s.scores(&[darts]).unwrap(), vec![None]);
    }

    #[test]
    fn ties_share_the_mid_rank() {
        let r = percentile_ranks(&[Some(1.0), Some(1.0), None, Some(3.0)]);
        assert_eq!(
            r,
            vec![
                Some(100.0 / 3.0),
                Some(100.0 / 3.0),
                None,
                Some(250.0 / 3.0)
            ]
        );
    }

    #[test]
    fn rows_must_match_the_table() {
        let t = table();
        let good = csv(&[0, 10, 20]);
        // Line 3 has index 15614 (code 10) but the arch of code 11.
        let bad = good.replacen(&arch(10).to_text(), &arch(11).to_text(), 1);
        let e = ProxyCsv::parse(Path::new("p.csv"), &bad, &t).unwrap_err();
        assert!(matches!(e, ScreenError::Mismatch { line: 3, .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.starts_with("p.csv:3: index 15614"), "{msg}");
        assert!(msg.contains(&arch(10).to_text()) && msg.contains(&arch(11).to_text()));
        let cases: Vec<(String, &str)> = vec![
            (
                good.replacen("snip", "zen", 1),
                "p.csv:1:4 (zen): unknown column 'zen'",
            ),
            (
                good.replacen(",seconds", ",secs", 1),
                "p.csv:1:5 (secs): unknown column",
            ),
            (
                good.replacen(",seconds,note", ",note", 1),
                "missing column 'seconds'",
            ),
            (
                good.replacen("0e3,", "abc,", 1),
                "p.csv:2:3 (synflow): 'abc' is not a finite number",
            ),
            (
                good.replacen("10e3,", "NaN,", 1),
                "p.csv:3:3 (synflow): 'NaN'",
            ),
            (
                format!("{good}{}\n", good.lines().nth(2).unwrap()),
                "p.csv:5:1 (index): duplicate index 15614 (first at line 3)",
            ),
            (
                good.replacen("15624,", "99999,", 1),
                "p.csv:2:1 (index): index 99999 is not in",
            ),
            (
                good.replacen("15624,", "x,", 1),
                "p.csv:2:1 (index): 'x' is not a whole number",
            ),
            (
                good.replacen(",0.5,", ",", 1),
                "p.csv:2:6 (note): expected 6 fields",
            ),
            (
                good.replacen("synflow,snip", "synflow,synflow", 1),
                "appears twice",
            ),
            ("index,arch,seconds,note\n".into(), "no proxy column"),
            (String::new(), "empty"),
        ];
        for (text, want) in cases {
            let e = ProxyCsv::parse(Path::new("p.csv"), &text, &t)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "want {want:?} in {e}");
        }
        // A garbled arch is a mismatch too.
        let e = ProxyCsv::parse(
            Path::new("p.csv"),
            &good.replacen("|none~0|", "|conv~0|", 1),
            &t,
        )
        .unwrap_err();
        assert!(matches!(e, ScreenError::Mismatch { line: 2, .. }), "{e}");
        let e = ProxyCsv::load(Path::new("/nonexistent/p.csv"), &t).unwrap_err();
        assert!(matches!(e, ScreenError::Io { .. }));
    }
}
