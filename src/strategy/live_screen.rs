//! A screen that computes zero-cost proxies as a session goes: each
//! architecture it is asked about is scored once, in a zero-cost worker
//! process (`seki zc-worker`, the evaluator's isolation and time limit), on
//! the network the evaluator would train, and the scores are cached by
//! canonical hash. The proxies are deterministic for a seed, so a resumed
//! or replayed session makes the same choices, unless a scoring fails or
//! runs past `search.screen.timeout_seconds` (it then ranks last, with a
//! warning in the log).

use super::screen::{Screen, ScreenError};
use crate::eval::zero_cost::worker::{run_children, Outcome};
use crate::eval::zero_cost::{Proxy, ZcConfig};
use crate::space::Arch;
use std::collections::HashMap;
use std::path::PathBuf;

/// Proxies computed on demand by worker processes.
pub struct LiveScreen {
    program: PathBuf,
    cfg: ZcConfig,
    proxies: Vec<Proxy>,
    /// Canonical hash → each chosen proxy's value.
    cache: HashMap<String, Vec<Option<f64>>>,
    seconds: f64,
}

impl LiveScreen {
    /// Rank by `proxies` (one: its value; several: the mean of their ranks
    /// among the candidates of a call), computed by `program zc-worker`
    /// with `cfg` (which also names what the workers compute).
    pub fn new(
        program: PathBuf,
        mut cfg: ZcConfig,
        proxies: Vec<Proxy>,
    ) -> Result<Self, ScreenError> {
        if proxies.is_empty() {
            return Err(ScreenError::NoProxies);
        }
        cfg.proxies = proxies.clone();
        Ok(LiveScreen {
            program,
            cfg,
            proxies,
            cache: HashMap::new(),
            seconds: 0.0,
        })
    }

    fn compute(&mut self, archs: &[Arch]) -> Result<(), ScreenError> {
        let mut todo: Vec<Arch> = Vec::new();
        for a in archs {
            if !self.cache.contains_key(&a.hash()) && !todo.iter().any(|t| t.hash() == a.hash()) {
                todo.push(a.clone());
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        let mut got: Vec<(usize, Outcome)> = Vec::new();
        run_children(&self.program, &todo, &self.cfg, &mut |i, o| {
            got.push((i, o))
        })
        .map_err(|e| ScreenError::Worker(e.to_string()))?;
        for (i, o) in got {
            let Some(a) = todo.get(i) else { continue };
            let values = match o.scores() {
                Some(s) => {
                    self.seconds += s.total_seconds();
                    self.proxies.iter().map(|&p| s.get(p)).collect()
                }
                None => {
                    tracing::warn!("zero-cost scoring of {} failed: {o:?}", a.hash());
                    vec![None; self.proxies.len()]
                }
            };
            self.cache.insert(a.hash(), values);
        }
        Ok(())
    }
}

impl Screen for LiveScreen {
    fn name(&self) -> String {
        let names: Vec<&str> = self.proxies.iter().map(Proxy::name).collect();
        if names.len() == 1 {
            names[0].to_string()
        } else {
            format!("vote({})", names.join(","))
        }
    }

    fn scores(&mut self, archs: &[Arch]) -> Result<Vec<Option<f64>>, ScreenError> {
        self.compute(archs)?;
        let values: Vec<Vec<Option<f64>>> = archs
            .iter()
            .map(|a| {
                self.cache
                    .get(&a.hash())
                    .cloned()
                    .unwrap_or_else(|| vec![None; self.proxies.len()])
            })
            .collect();
        if self.proxies.len() == 1 {
            return Ok(values.into_iter().map(|v| v[0]).collect());
        }
        // Several proxies: the mean of each one's rank among these
        // candidates (unscored ones left out of that proxy's mean).
        let mut sums = vec![(0.0, 0usize); archs.len()];
        for k in 0..self.proxies.len() {
            let col: Vec<Option<f64>> = values.iter().map(|v| v[k]).collect();
            let scored: Vec<f64> = col.iter().flatten().copied().collect();
            for (i, v) in col.iter().enumerate() {
                if let Some(v) = v {
                    let below = scored.iter().filter(|&&o| o < *v).count() as f64;
                    let equal = scored.iter().filter(|&&o| o == *v).count() as f64;
                    sums[i].0 += below + (equal - 1.0) / 2.0;
                    sums[i].1 += 1;
                }
            }
        }
        Ok(sums
            .into_iter()
            .map(|(s, n)| (n > 0).then(|| s / n as f64))
            .collect())
    }

    fn cpu_seconds(&self) -> f64 {
        self.seconds
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::eval::candle::CandleConfig;
    use crate::space::Nb201Cell;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in worker that scores each architecture by its position in
    /// the request (synflow = 10 * (index + 1), naswot = -index).
    fn fake_worker(dir: &std::path::Path) -> PathBuf {
        let p = dir.join("w.sh");
        let body = r#"#!/bin/sh
n=$(cat | grep -o '"archs":\[[^]]*\]' | grep -o '|+|' | wc -l)
i=0
while [ $i -lt $((n / 2)) ]; do
  echo "{\"index\":$i,\"status\":\"ok\",\"scores\":{\"values\":{\"synflow\":$(( (i + 1) * 10 )),\"naswot\":-$i},\"seconds\":{\"build\":0.5},\"notes\":[]}}"
  i=$((i + 1))
done
"#;
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn archs() -> Vec<Arch> {
        [
            "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|",
            "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|",
        ]
        .iter()
        .map(|s| Arch::Nb201(Nb201Cell::parse(s).unwrap()))
        .collect()
    }

    #[test]
    fn scores_come_from_the_worker_once_per_architecture() {
        let d = tempfile::tempdir().unwrap();
        let cfg = ZcConfig::new(CandleConfig::default());
        let mut s =
            LiveScreen::new(fake_worker(d.path()), cfg.clone(), vec![Proxy::Synflow]).unwrap();
        assert_eq!(s.scores(&archs()).unwrap(), vec![Some(10.0), Some(20.0)]);
        assert_eq!(s.cpu_seconds(), 1.0);
        // Cached: the same scores, no new cost, whatever the order.
        let rev: Vec<Arch> = archs().into_iter().rev().collect();
        assert_eq!(s.scores(&rev).unwrap(), vec![Some(20.0), Some(10.0)]);
        assert_eq!(s.cpu_seconds(), 1.0);
        // A vote of two disagreeing proxies: mean ranks tie.
        let mut v = LiveScreen::new(
            fake_worker(d.path()),
            cfg,
            vec![Proxy::Synflow, Proxy::Naswot],
        )
        .unwrap();
        assert_eq!(v.name(), "vote(synflow,naswot)");
        assert_eq!(v.scores(&archs()).unwrap(), vec![Some(0.5), Some(0.5)]);
    }
}
