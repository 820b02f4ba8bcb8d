//! Image classification data: loaders (IDX for MNIST and Fashion-MNIST,
//! CIFAR-10/100 binary), the train/validation split, shuffling,
//! augmentation and normalisation into batches.

pub mod augment;
pub mod cifar;
pub mod idx;

pub use augment::Augment;

use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A data problem, always naming the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file's content is wrong.
    #[error("{path}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl DataError {
    pub(crate) fn malformed(path: &Path, message: impl Into<String>) -> Self {
        DataError::Malformed {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// The datasets the loaders read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// Fashion-MNIST (IDX files).
    FashionMnist,
    /// MNIST (IDX files).
    Mnist,
    /// CIFAR-10 (binary batches).
    Cifar10,
    /// CIFAR-100 (binary files `train.bin`, `test.bin`).
    Cifar100,
}

impl DatasetKind {
    /// The name used in config files and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Mnist => "mnist",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
        }
    }

    /// Images in the dataset's training set (the validation set is held out
    /// of it).
    pub fn train_images(&self) -> usize {
        match self {
            DatasetKind::FashionMnist | DatasetKind::Mnist => 60_000,
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => 50_000,
        }
    }

    /// Whether a horizontal flip keeps the label (not for digits).
    pub fn flips(&self) -> bool {
        !matches!(self, DatasetKind::Mnist)
    }

    /// Per-channel mean and standard deviation of the training images (0..1 scale).
    pub fn normalisation(&self) -> (&'static [f32], &'static [f32]) {
        match self {
            DatasetKind::FashionMnist => (&[0.2860], &[0.3530]),
            DatasetKind::Mnist => (&[0.1307], &[0.3081]),
            DatasetKind::Cifar10 => (&[0.4914, 0.4822, 0.4465], &[0.2470, 0.2435, 0.2616]),
            DatasetKind::Cifar100 => (&[0.5071, 0.4865, 0.4409], &[0.2673, 0.2564, 0.2762]),
        }
    }
}

impl std::str::FromStr for DatasetKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fashion-mnist" => Ok(DatasetKind::FashionMnist),
            "mnist" => Ok(DatasetKind::Mnist),
            "cifar10" => Ok(DatasetKind::Cifar10),
            "cifar100" => Ok(DatasetKind::Cifar100),
            o => Err(format!(
                "unknown dataset '{o}'; valid datasets: fashion-mnist, mnist, cifar10, cifar100"
            )),
        }
    }
}

/// Images (`u8`, NCHW) and labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Images {
    /// Pixels, `len * channels * size * size`.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
    /// Image channels.
    pub channels: usize,
    /// Height and width.
    pub size: usize,
}

impl Images {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// No images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image.
    pub fn image_len(&self) -> usize {
        self.channels * self.size * self.size
    }

    /// The images at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Images {
        let n = self.image_len();
        let mut pixels = Vec::with_capacity(idx.len() * n);
        let mut labels = Vec::with_capacity(idx.len());
        for &i in idx {
            pixels.extend_from_slice(&self.pixels[i * n..(i + 1) * n]);
            labels.push(self.labels[i]);
        }
        Images {
            pixels,
            labels,
            channels: self.channels,
            size: self.size,
        }
    }
}

/// A dataset's training and test sets.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Which dataset.
    pub kind: DatasetKind,
    /// Training set (split further into train and validation).
    pub train: Images,
    /// Test set.
    pub test: Images,
    /// Number of classes.
    pub classes: usize,
}

impl Dataset {
    /// Load `kind` from `dir`.
    pub fn load(kind: DatasetKind, dir: &Path) -> Result<Dataset, DataError> {
        match kind {
            DatasetKind::FashionMnist | DatasetKind::Mnist => {
                let (train, test) = idx::load_dir(dir)?;
                Ok(Dataset {
                    kind,
                    train,
                    test,
                    classes: 10,
                })
            }
            DatasetKind::Cifar10 => {
                let (train, test) = cifar::load_cifar10(dir)?;
                Ok(Dataset {
                    kind,
                    train,
                    test,
                    classes: 10,
                })
            }
            DatasetKind::Cifar100 => {
                let (train, test) = cifar::load_cifar100(dir)?;
                Ok(Dataset {
                    kind,
                    train,
                    test,
                    classes: 100,
                })
            }
        }
    }
}

/// Train, validation and test sets of one evaluation.
#[derive(Debug, Clone)]
pub struct Splits {
    /// Images to train on.
    pub train: Images,
    /// Held out from the training set; the search signal.
    pub valid: Images,
    /// The test set (reported only).
    pub test: Images,
}

/// Split the training set by `seed`: `valid` images held out, then at most
/// `train_subset` (0: all) of the rest to train on; at most `test_subset`
/// (0: all) test images, also chosen by `seed`.
pub fn split(
    d: &Dataset,
    valid: usize,
    train_subset: usize,
    test_subset: usize,
    seed: u64,
) -> Splits {
    let mut rng = Rng::seed(seed ^ 0xDA7A);
    let n = d.train.len();
    let order = rng.sample_indices(n, n);
    let valid = valid.min(n.saturating_sub(1));
    let (v, rest) = order.split_at(valid);
    let t = if train_subset == 0 {
        rest.len()
    } else {
        train_subset.min(rest.len())
    };
    let test = if test_subset == 0 || test_subset >= d.test.len() {
        d.test.clone()
    } else {
        let mut idx = rng.sample_indices(d.test.len(), test_subset);
        idx.sort_unstable();
        d.test.select(&idx)
    };
    Splits {
        train: d.train.select(&rest[..t]),
        valid: d.train.select(v),
        test,
    }
}

/// Turn images into normalised `f32` NCHW data, applying `aug` when given.
pub fn to_f32(
    images: &Images,
    idx: &[usize],
    kind: DatasetKind,
    aug: Option<(&Augment, &mut Rng)>,
) -> Vec<f32> {
    let (mean, std) = kind.normalisation();
    let n = images.image_len();
    let hw = images.size * images.size;
    let mut out = Vec::with_capacity(idx.len() * n);
    let mut aug = aug;
    for &i in idx {
        let start = out.len();
        for (j, &p) in images.pixels[i * n..(i + 1) * n].iter().enumerate() {
            let c = (j / hw).min(mean.len() - 1);
            out.push((p as f32 / 255.0 - mean[c]) / std[c]);
        }
        if let Some((a, rng)) = aug.as_mut() {
            a.apply(&mut out[start..], images.channels, images.size, rng);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize) -> Dataset {
        let imgs = Images {
            pixels: (0..n * 4).map(|i| (i % 251) as u8).collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
            channels: 1,
            size: 2,
        };
        Dataset {
            kind: DatasetKind::Mnist,
            train: imgs.clone(),
            test: imgs,
            classes: 10,
        }
    }

    #[test]
    fn split_is_deterministic_disjoint_and_sized() {
        let d = toy(100);
        let a = split(&d, 20, 30, 10, 7);
        let b = split(&d, 20, 30, 10, 7);
        let c = split(&d, 20, 30, 10, 8);
        assert_eq!((a.train.len(), a.valid.len(), a.test.len()), (30, 20, 10));
        assert_eq!(a.train, b.train);
        assert_ne!(a.train, c.train);
        // Pixels identify images here (first pixel = 4 * index mod 251).
        let ids = |x: &Images| -> Vec<u8> { x.pixels.chunks(4).map(|p| p[0]).collect() };
        let (t, v) = (ids(&a.train), ids(&a.valid));
        assert!(t.iter().all(|p| !v.contains(p)));
        let all = split(&d, 10, 0, 0, 1);
        assert_eq!(
            (all.train.len(), all.valid.len(), all.test.len()),
            (90, 10, 100)
        );
    }

    #[test]
    fn normalises() {
        let d = toy(3);
        let v = to_f32(&d.train, &[0], DatasetKind::Mnist, None);
        assert!((v[0] - (0.0 - 0.1307) / 0.3081).abs() < 1e-6);
    }
}
