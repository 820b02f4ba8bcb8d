//! The binary format of CIFAR-10 (`data_batch_1.bin` .. `data_batch_5.bin`,
//! `test_batch.bin`: label byte + 3072 pixel bytes per image) and CIFAR-100
//! (`train.bin`, `test.bin`: coarse and fine label bytes + 3072 pixels).

use super::idx::read_maybe_gz;
use super::{DataError, Images};
use std::path::{Path, PathBuf};

const PIXELS: usize = 3 * 32 * 32;

/// Parse one file of records with `label_bytes` leading label bytes (the
/// last one is the label used) and `classes` classes.
pub fn parse_file(path: &Path, label_bytes: usize, classes: usize) -> Result<Images, DataError> {
    decode(path, &read_maybe_gz(path)?, label_bytes, classes)
}

/// Decode the (gunzipped) bytes of one file of records, as [`parse_file`]
/// does; `path` names the file in errors.
pub fn decode(
    path: &Path,
    bytes: &[u8],
    label_bytes: usize,
    classes: usize,
) -> Result<Images, DataError> {
    if label_bytes == 0 || classes == 0 {
        return Err(DataError::malformed(
            path,
            format!(
                "a record format needs label bytes and classes (found {label_bytes} and {classes})"
            ),
        ));
    }
    let rec = label_bytes.saturating_add(PIXELS);
    if bytes.is_empty() {
        return Err(DataError::malformed(path, "empty file: no records"));
    }
    if !bytes.len().is_multiple_of(rec) {
        return Err(DataError::malformed(
            path,
            format!(
                "truncated: {} bytes is not a whole number of {rec}-byte records ({} whole, {} bytes left over)",
                bytes.len(),
                bytes.len() / rec,
                bytes.len() % rec
            ),
        ));
    }
    let n = bytes.len() / rec;
    let mut pixels = Vec::with_capacity(n * PIXELS);
    let mut labels = Vec::with_capacity(n);
    for (i, r) in bytes.chunks(rec).enumerate() {
        let label = r[label_bytes - 1];
        if label as usize >= classes {
            return Err(DataError::malformed(
                path,
                format!(
                    "label {label} of record {i} is out of range 0..={}",
                    classes - 1
                ),
            ));
        }
        labels.push(label);
        pixels.extend_from_slice(&r[label_bytes..]);
    }
    Ok(Images {
        pixels,
        labels,
        channels: 3,
        size: 32,
    })
}

fn concat(parts: Vec<Images>) -> Images {
    let mut out = Images {
        pixels: Vec::new(),
        labels: Vec::new(),
        channels: 3,
        size: 32,
    };
    for p in parts {
        out.pixels.extend(p.pixels);
        out.labels.extend(p.labels);
    }
    out
}

/// `dir` itself, or its subfolder `sub` when the files are there.
fn base(dir: &Path, sub: &str, probe: &str) -> PathBuf {
    let nested = dir.join(sub);
    if !dir.join(probe).exists() && nested.join(probe).exists() {
        nested
    } else {
        dir.to_path_buf()
    }
}

/// CIFAR-10 from `dir` (or `dir/cifar-10-batches-bin`).
pub fn load_cifar10(dir: &Path) -> Result<(Images, Images), DataError> {
    let d = base(dir, "cifar-10-batches-bin", "test_batch.bin");
    let mut parts = Vec::new();
    for i in 1..=5 {
        parts.push(parse_file(&d.join(format!("data_batch_{i}.bin")), 1, 10)?);
    }
    Ok((concat(parts), parse_file(&d.join("test_batch.bin"), 1, 10)?))
}

/// CIFAR-100 (fine labels) from `dir` (or `dir/cifar-100-binary`).
pub fn load_cifar100(dir: &Path) -> Result<(Images, Images), DataError> {
    let d = base(dir, "cifar-100-binary", "test.bin");
    Ok((
        parse_file(&d.join("train.bin"), 2, 100)?,
        parse_file(&d.join("test.bin"), 2, 100)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(labels: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, l) in labels.iter().enumerate() {
            out.extend_from_slice(l);
            out.extend((0..PIXELS).map(|p| ((p + i) % 256) as u8));
        }
        out
    }

    #[test]
    fn cifar10_loads_and_rejects_broken_files() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("cifar-10-batches-bin");
        std::fs::create_dir(&sub).unwrap();
        for i in 1..=5 {
            std::fs::write(
                sub.join(format!("data_batch_{i}.bin")),
                records(&[&[i as u8], &[9]]),
            )
            .unwrap();
        }
        std::fs::write(sub.join("test_batch.bin"), records(&[&[3]])).unwrap();
        let (train, test) = load_cifar10(d.path()).unwrap();
        assert_eq!(
            (train.len(), test.len(), train.channels, train.size),
            (10, 1, 3, 32)
        );
        assert_eq!(&train.labels[..4], &[1, 9, 2, 9]);
        assert_eq!(train.pixels[PIXELS], 1);

        let mut cut = records(&[&[1]]);
        cut.pop();
        std::fs::write(sub.join("data_batch_3.bin"), cut).unwrap();
        let e = load_cifar10(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("data_batch_3.bin") && e.contains("truncated"),
            "{e}"
        );
        std::fs::write(sub.join("data_batch_3.bin"), records(&[&[10]])).unwrap();
        let e = load_cifar10(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("data_batch_3.bin") && e.contains("label 10"),
            "{e}"
        );
        std::fs::remove_file(sub.join("test_batch.bin")).unwrap();
        let e = load_cifar10(d.path()).unwrap_err().to_string();
        assert!(e.contains("cannot read"), "{e}");
    }

    #[test]
    fn cifar100_uses_fine_labels() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("train.bin"), records(&[&[1, 99], &[2, 5]])).unwrap();
        std::fs::write(d.path().join("test.bin"), records(&[&[1, 100]])).unwrap();
        let e = load_cifar100(d.path()).unwrap_err().to_string();
        assert!(e.contains("test.bin") && e.contains("label 100"), "{e}");
        std::fs::write(d.path().join("test.bin"), records(&[&[1, 42]])).unwrap();
        let (train, test) = load_cifar100(d.path()).unwrap();
        assert_eq!(train.labels, vec![99, 5]);
        assert_eq!(test.labels, vec![42]);
    }
}
