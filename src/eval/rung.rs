//! Fidelity rungs: the settings a session evaluates at, cheapest first.
//!
//! Rung 1 is the search's own evaluation (`[evaluator.candle]` or the
//! table); each further rung (`[[search.rungs]]`) overrides some of its
//! settings with costlier ones: more epochs, more training images, a larger
//! validation set (a smaller standard error), a larger network; for the
//! NAS-Bench-201 table, less added noise. Rung 0, when a session has one, is
//! the zero-cost screen (`[search.screen]`). Scores are compared only within
//! a rung: each rung is its own evaluation protocol.

use super::settings::{EvaluatorConfig, EvaluatorKind};
use serde::{Deserialize, Serialize};

/// One `[[search.rungs]]` table: a rung above the ones before it, with the
/// settings it changes from the rung below (left out: the same).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RungConfig {
    /// Training epochs (Candle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
    /// Training images (Candle; 0: all the rest after the validation set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_subset: Option<usize>,
    /// Validation images (Candle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_size: Option<usize>,
    /// Cells of the network (Candle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cells: Option<usize>,
    /// Channels of the first cell (Candle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
    /// Standard deviation of the noise added to the table's validation
    /// accuracy (NAS-Bench-201 table).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise_sd: Option<f64>,
}

/// A rung the session can evaluate at.
#[derive(Debug, Clone, PartialEq)]
pub struct Rung {
    /// Its number, from 1 (the search's own evaluation).
    pub index: u32,
    /// The evaluator's settings at this rung.
    pub settings: EvaluatorConfig,
}

/// The search's rungs and how many of each rung's results move up.
#[derive(Debug, Clone, PartialEq)]
pub struct Rungs {
    /// The evaluator the rungs set.
    pub kind: EvaluatorKind,
    /// From rung 1 up; one entry: a single fidelity.
    pub rungs: Vec<Rung>,
    /// The fraction of a rung's results promoted to the next
    /// (`search.promote`).
    pub promote: f64,
}

/// A rung list that cannot work: the key (below `search.`) and why.
pub type RungProblem = (String, String);

impl Rungs {
    /// One rung: the evaluator's own settings.
    pub fn single(kind: EvaluatorKind, base: &EvaluatorConfig) -> Self {
        Rungs {
            kind,
            rungs: vec![Rung {
                index: 1,
                settings: base.clone(),
            }],
            promote: 1.0 / 3.0,
        }
    }

    /// The rungs of `list` over `base` (rung 1 is `base`; entry k is rung
    /// k + 1), checked: every rung must cost more than the one before it
    /// and fit the data.
    pub fn build(
        kind: EvaluatorKind,
        base: &EvaluatorConfig,
        list: &[RungConfig],
        promote: f64,
    ) -> Result<Self, RungProblem> {
        if !(promote > 0.0 && promote < 1.0) {
            return Err((
                "promote".into(),
                format!("must be a fraction between 0 and 1 (exclusive), not {promote}"),
            ));
        }
        let mut rungs: Vec<Rung> = vec![Rung {
            index: 1,
            settings: base.clone(),
        }];
        let mut current = base.clone();
        for (i, rc) in list.iter().enumerate() {
            // The k-th `[[search.rungs]]` table is rung k + 1.
            let entry = i + 1;
            let index = entry as u32 + 1;
            let key = |k: &str| format!("rungs[{entry}].{k}");
            current = rc.apply(kind, &current).map_err(|(k, m)| (key(k), m))?;
            // The table's noise at this rung is its own draw, not the rung
            // below's scaled.
            current.nb201.noise_seed = noise_seed(base.nb201.noise_seed, index);
            // Training draws its own validation split and initialisation at
            // each rung, so a cell promoted for a lucky split is measured
            // on another.
            current.candle.seed = noise_seed(base.candle.seed, index);
            if kind == EvaluatorKind::Candle {
                if let Err((k, m)) = current.candle.check() {
                    return Err((key(k), m));
                }
                let c = &current.candle;
                let available = c.dataset.train_images();
                if c.valid_size >= available {
                    return Err((
                        key("valid_size"),
                        format!(
                            "{} validation images leave none to train on: {} has {available} training images",
                            c.valid_size,
                            c.dataset.name()
                        ),
                    ));
                }
                if c.train_subset > 0 && c.valid_size + c.train_subset > available {
                    return Err((
                        key("valid_size"),
                        format!(
                            "{} validation + {} training images is more than the {available} training images of {}",
                            c.valid_size,
                            c.train_subset,
                            c.dataset.name()
                        ),
                    ));
                }
            }
            if let Some(prev) = rungs.last() {
                if let Err((k, m)) = costlier(kind, &prev.settings, &current) {
                    return Err((
                        key(k),
                        format!("{m} (rung {index} must cost more than rung {})", index - 1),
                    ));
                }
            }
            rungs.push(Rung {
                index,
                settings: current.clone(),
            });
        }
        Ok(Rungs {
            kind,
            rungs,
            promote,
        })
    }

    /// What an agent is told of the scores it sees (rung 1's), in a
    /// session with more than one rung.
    pub fn note(&self) -> Option<String> {
        let top = self.rungs.last().filter(|_| self.rungs.len() > 1)?;
        let first = self.rungs.first()?;
        Some(format!(
            "every score shown is from rung 1 of {} ({}), a cheap evaluation with its noise (± its standard error); the session evaluates the best {:.0} % again at higher rungs, up to rung {} ({}), and judges the answer there. Compare scores with each other, within this rung.",
            self.rungs.len(),
            describe(self.kind, &first.settings),
            self.promote * 100.0,
            top.index,
            describe(self.kind, &top.settings)
        ))
    }

    /// How many rungs (at least 1).
    pub fn len(&self) -> usize {
        self.rungs.len()
    }

    /// Whether there is no rung (never: [`Rungs::single`] has one).
    pub fn is_empty(&self) -> bool {
        self.rungs.is_empty()
    }

    /// The top rung's number.
    pub fn top(&self) -> u32 {
        self.rungs.len() as u32
    }

    /// Rung `index` (from 1).
    pub fn get(&self, index: u32) -> Option<&Rung> {
        self.rungs.get((index as usize).checked_sub(1)?)
    }

    /// How many of `n` results at a rung are promoted (ASHA's ⌊n·f⌋).
    pub fn promoted_of(&self, n: usize) -> usize {
        (n as f64 * self.promote + 1e-9).floor() as usize
    }
}

impl RungConfig {
    /// `base` with this entry's settings.
    fn apply(
        &self,
        kind: EvaluatorKind,
        base: &EvaluatorConfig,
    ) -> Result<EvaluatorConfig, (&'static str, String)> {
        let mut s = base.clone();
        match kind {
            EvaluatorKind::Candle => {
                if self.noise_sd.is_some() {
                    return Err((
                        "noise_sd",
                        "applies to the NAS-Bench-201 table; a training rung sets epochs, train_subset, valid_size, cells or channels".into(),
                    ));
                }
                let c = &mut s.candle;
                if let Some(v) = self.epochs {
                    c.epochs = v;
                }
                if let Some(v) = self.train_subset {
                    c.train_subset = v;
                }
                if let Some(v) = self.valid_size {
                    c.valid_size = v;
                }
                if let Some(v) = self.cells {
                    c.cells = v;
                }
                if let Some(v) = self.channels {
                    c.channels = v;
                }
            }
            EvaluatorKind::Nb201 => {
                let named = [
                    ("epochs", self.epochs),
                    ("train_subset", self.train_subset),
                    ("valid_size", self.valid_size),
                    ("cells", self.cells),
                    ("channels", self.channels),
                ];
                if let Some((k, _)) = named.iter().find(|(_, v)| v.is_some()) {
                    return Err((
                        k,
                        "the NAS-Bench-201 table's figures are fixed; its rungs differ by noise_sd"
                            .into(),
                    ));
                }
                if let Some(v) = self.noise_sd {
                    if !(v >= 0.0 && v.is_finite()) {
                        return Err(("noise_sd", format!("must be 0 or positive, not {v}")));
                    }
                    s.nb201.noise_sd = v;
                }
            }
        }
        Ok(s)
    }
}

/// Whether `next` costs more than `prev`: no setting lower (noise higher),
/// one at least higher (noise lower). The first setting that breaks it.
fn costlier(
    kind: EvaluatorKind,
    prev: &EvaluatorConfig,
    next: &EvaluatorConfig,
) -> Result<(), (&'static str, String)> {
    match kind {
        EvaluatorKind::Nb201 => {
            let (a, b) = (prev.nb201.noise_sd, next.nb201.noise_sd);
            if b >= a {
                return Err((
                    "noise_sd",
                    format!("noise sd {b} is not below the rung before's {a}"),
                ));
            }
            Ok(())
        }
        EvaluatorKind::Candle => {
            let (a, b) = (&prev.candle, &next.candle);
            // 0 training images means all of them: the most.
            let images = |c: &crate::eval::candle::CandleConfig| {
                if c.train_subset == 0 {
                    usize::MAX
                } else {
                    c.train_subset
                }
            };
            let pairs: [(&'static str, usize, usize); 5] = [
                ("epochs", a.epochs, b.epochs),
                ("train_subset", images(a), images(b)),
                ("valid_size", a.valid_size, b.valid_size),
                ("cells", a.cells, b.cells),
                ("channels", a.channels, b.channels),
            ];
            if let Some((k, x, y)) = pairs.iter().find(|(_, x, y)| y < x) {
                return Err((k, format!("{k} {y} is below the rung before's {x}")));
            }
            if pairs.iter().all(|(_, x, y)| x == y) {
                return Err((
                    "epochs",
                    "the same settings as the rung before: raise epochs, train_subset, valid_size, cells or channels".into(),
                ));
            }
            Ok(())
        }
    }
}

impl Rung {
    /// The evaluation protocol of this rung: `base` (rung 1's, as the
    /// evaluator states it) with this rung's settings.
    pub fn info(
        &self,
        kind: EvaluatorKind,
        base: &crate::knowledge::EvaluatorInfo,
    ) -> crate::knowledge::EvaluatorInfo {
        let mut info = base.clone();
        let set = &mut info.settings;
        match kind {
            EvaluatorKind::Candle => {
                let c = &self.settings.candle;
                set.insert("epochs".into(), c.epochs.into());
                set.insert("train_subset".into(), c.train_subset.into());
                set.insert("valid_size".into(), c.valid_size.into());
                set.insert("cells".into(), c.cells.into());
                set.insert("channels".into(), c.channels.into());
            }
            EvaluatorKind::Nb201 => {
                let t = &self.settings.nb201;
                if t.noise_sd > 0.0 {
                    set.insert("noise_sd".into(), t.noise_sd.into());
                    set.insert("noise_seed".into(), t.noise_seed.into());
                } else {
                    set.remove("noise_sd");
                    set.remove("noise_seed");
                }
            }
        }
        info
    }
}

/// The seed at rung `index` (the table's noise seed, the training seed) of
/// a session whose rung 1 draws with `base`: rung 1's own, another for
/// every rung above it (so that a promoted cell's error is not its rung-1
/// error again).
pub fn noise_seed(base: u64, index: u32) -> u64 {
    if index <= 1 {
        base
    } else {
        base ^ u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

/// One rung's settings in words (`2 epochs, 6000 images, 5000 validation`).
pub fn describe(kind: EvaluatorKind, s: &EvaluatorConfig) -> String {
    match kind {
        EvaluatorKind::Nb201 => {
            if s.nb201.noise_sd > 0.0 {
                format!("table, noise sd {}", s.nb201.noise_sd)
            } else {
                "table".into()
            }
        }
        EvaluatorKind::Candle => {
            let c = &s.candle;
            let train = if c.train_subset == 0 {
                "all training images".to_string()
            } else {
                format!("{} training images", c.train_subset)
            };
            format!(
                "{} epoch{}, {train}, {} validation, {} cells × {} channels",
                c.epochs,
                if c.epochs == 1 { "" } else { "s" },
                c.valid_size,
                c.cells,
                c.channels
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candle_base() -> EvaluatorConfig {
        let mut b = EvaluatorConfig::default();
        b.candle.epochs = 1;
        b.candle.train_subset = 5000;
        b.candle.valid_size = 1000;
        b
    }

    #[test]
    fn rungs_inherit_and_rise() {
        let list = vec![RungConfig {
            epochs: Some(2),
            valid_size: Some(5000),
            ..Default::default()
        }];
        let r = Rungs::build(EvaluatorKind::Candle, &candle_base(), &list, 0.5)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(r.top(), 2);
        let top = r.get(2).map(|r| &r.settings.candle);
        assert_eq!(
            top.map(|c| (c.epochs, c.train_subset, c.valid_size)),
            Some((2, 5000, 5000))
        );
        assert_eq!(r.promoted_of(3), 1);
        assert_eq!(r.promoted_of(4), 2);
    }

    #[test]
    fn bad_rung_lists_are_refused_with_their_key() {
        let cheaper = vec![
            RungConfig {
                epochs: Some(2),
                ..Default::default()
            },
            RungConfig {
                epochs: Some(1),
                train_subset: Some(6000),
                ..Default::default()
            },
        ];
        let e = Rungs::build(EvaluatorKind::Candle, &candle_base(), &cheaper, 0.5);
        assert!(
            matches!(&e, Err((k, m)) if k == "rungs[2].epochs" && m.contains("below")),
            "{e:?}"
        );
        let same = vec![RungConfig::default()];
        let e = Rungs::build(EvaluatorKind::Candle, &candle_base(), &same, 0.5);
        assert!(
            matches!(&e, Err((k, m)) if k == "rungs[1].epochs" && m.contains("same")),
            "{e:?}"
        );
        let too_big = vec![RungConfig {
            valid_size: Some(58_000),
            ..Default::default()
        }];
        let e = Rungs::build(EvaluatorKind::Candle, &candle_base(), &too_big, 0.5);
        assert!(
            matches!(&e, Err((k, m)) if k == "rungs[1].valid_size" && m.contains("60000")),
            "{e:?}"
        );
        for f in [0.0, 1.0, -0.5, f64::NAN] {
            let e = Rungs::build(EvaluatorKind::Candle, &candle_base(), &[], f);
            assert!(matches!(&e, Err((k, _)) if k == "promote"), "{f}: {e:?}");
        }
        let table = vec![RungConfig {
            epochs: Some(3),
            ..Default::default()
        }];
        let e = Rungs::build(
            EvaluatorKind::Nb201,
            &EvaluatorConfig::default(),
            &table,
            0.5,
        );
        assert!(matches!(&e, Err((k, _)) if k == "rungs[1].epochs"), "{e:?}");
        let mut noisy = EvaluatorConfig::default();
        noisy.nb201.noise_sd = 2.0;
        let noisier = vec![
            RungConfig {
                noise_sd: Some(1.0),
                ..Default::default()
            },
            RungConfig {
                noise_sd: Some(1.5),
                ..Default::default()
            },
        ];
        let e = Rungs::build(EvaluatorKind::Nb201, &noisy, &noisier, 0.5);
        assert!(
            matches!(&e, Err((k, m)) if k == "rungs[2].noise_sd" && m.contains("rung 3")),
            "{e:?}"
        );
    }
}
