//! The IDX format of MNIST and Fashion-MNIST (gzipped or not).

use super::{DataError, Images};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Read a whole file, gunzipping it when it starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    gunzip_if_gz(path, raw)
}

/// `raw` gunzipped when it starts with the gzip magic, else `raw` itself
/// (`path` names the file in errors).
pub fn gunzip_if_gz(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>, DataError> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::malformed(path, format!("corrupt gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parse an IDX file of unsigned bytes with `ndims` dimensions; returns the
/// dimensions and the data.
fn parse(path: &Path, bytes: &[u8], ndims: usize) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let header = 4 + 4 * ndims;
    if bytes.len() < 4 {
        return Err(DataError::malformed(
            path,
            "truncated: shorter than the 4-byte IDX magic",
        ));
    }
    let expected = [0, 0, 0x08, ndims as u8];
    if bytes[..4] != expected {
        return Err(DataError::malformed(
            path,
            format!(
                "bad magic {:02x}{:02x}{:02x}{:02x}: expected {:02x}{:02x}{:02x}{:02x} (unsigned bytes, {ndims} dimensions)",
                bytes[0], bytes[1], bytes[2], bytes[3], expected[0], expected[1], expected[2], expected[3]
            ),
        ));
    }
    if bytes.len() < header {
        return Err(DataError::malformed(
            path,
            format!(
                "truncated: header needs {header} bytes, file has {}",
                bytes.len()
            ),
        ));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let len = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let Some(len) = len else {
        return Err(DataError::malformed(
            path,
            format!("dimensions {dims:?} overflow"),
        ));
    };
    let body = &bytes[header..];
    if body.len() < len {
        return Err(DataError::malformed(
            path,
            format!(
                "truncated: dimensions {dims:?} need {len} data bytes, file has {}",
                body.len()
            ),
        ));
    }
    if body.len() > len {
        return Err(DataError::malformed(
            path,
            format!(
                "{} trailing bytes after the {len} data bytes of dimensions {dims:?}",
                body.len() - len
            ),
        ));
    }
    Ok((dims, body.to_vec()))
}

/// Load an image file and its label file.
pub fn load_pair(images: &Path, labels: &Path) -> Result<Images, DataError> {
    decode_pair(
        images,
        &read_maybe_gz(images)?,
        labels,
        &read_maybe_gz(labels)?,
    )
}

/// Decode an image file's and a label file's (gunzipped) bytes; the paths
/// name the files in errors.
pub fn decode_pair(
    images: &Path,
    image_bytes: &[u8],
    labels: &Path,
    label_bytes: &[u8],
) -> Result<Images, DataError> {
    let (idims, pixels) = parse(images, image_bytes, 3)?;
    let (ldims, labels_v) = parse(labels, label_bytes, 1)?;
    if idims[1] != idims[2] || idims[1] == 0 {
        return Err(DataError::malformed(
            images,
            format!("images must be square, found {}x{}", idims[1], idims[2]),
        ));
    }
    if idims[0] != ldims[0] {
        return Err(DataError::malformed(
            labels,
            format!(
                "count mismatch: {} labels for {} images in {}",
                ldims[0],
                idims[0],
                images.display()
            ),
        ));
    }
    if let Some((i, l)) = labels_v.iter().enumerate().find(|(_, l)| **l >= 10) {
        return Err(DataError::malformed(
            labels,
            format!("label {l} of item {i} is out of range 0..=9"),
        ));
    }
    Ok(Images {
        pixels,
        labels: labels_v,
        channels: 1,
        size: idims[1],
    })
}

/// `dir/name` or `dir/name.gz`, whichever exists (the plain name if neither).
fn find(dir: &Path, name: &str) -> PathBuf {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    if !plain.exists() && gz.exists() {
        gz
    } else {
        plain
    }
}

/// Load `train-*` and `t10k-*` from a folder.
pub fn load_dir(dir: &Path) -> Result<(Images, Images), DataError> {
    let train = load_pair(
        &find(dir, "train-images-idx3-ubyte"),
        &find(dir, "train-labels-idx1-ubyte"),
    )?;
    let test = load_pair(
        &find(dir, "t10k-images-idx3-ubyte"),
        &find(dir, "t10k-labels-idx1-ubyte"),
    )?;
    Ok((train, test))
}

/// Write an IDX file (for tests and tools): images `[n, size, size]` or labels `[n]`.
pub fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&(*d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, bytes: &[u8], gz: bool) -> PathBuf {
        let p = dir.join(if gz {
            format!("{name}.gz")
        } else {
            name.to_string()
        });
        if gz {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(bytes).unwrap();
            std::fs::write(&p, e.finish().unwrap()).unwrap();
        } else {
            std::fs::write(&p, bytes).unwrap();
        }
        p
    }

    fn good_set(dir: &Path, gz: bool) {
        let px: Vec<u8> = (0..3 * 16).map(|i| i as u8).collect();
        for pre in ["train", "t10k"] {
            write(
                dir,
                &format!("{pre}-images-idx3-ubyte"),
                &encode(&[3, 4, 4], &px),
                gz,
            );
            write(
                dir,
                &format!("{pre}-labels-idx1-ubyte"),
                &encode(&[3], &[0, 9, 4]),
                gz,
            );
        }
    }

    #[test]
    fn loads_plain_and_gzipped() {
        for gz in [false, true] {
            let d = tempfile::tempdir().unwrap();
            good_set(d.path(), gz);
            let (train, test) = load_dir(d.path()).unwrap();
            assert_eq!((train.len(), train.size, train.channels), (3, 4, 1));
            assert_eq!(train.labels, vec![0, 9, 4]);
            assert_eq!(test.pixels[17], 17);
        }
    }

    fn err(dir: &Path, name: &str, bytes: &[u8]) -> String {
        good_set(dir, false);
        write(dir, name, bytes, false);
        load_dir(dir).unwrap_err().to_string()
    }

    #[test]
    fn malformed_files_name_file_and_fault() {
        let d = tempfile::tempdir().unwrap();
        let e = err(
            d.path(),
            "train-images-idx3-ubyte",
            &encode(&[3, 4], &[0; 12]),
        );
        assert!(
            e.contains("train-images-idx3-ubyte") && e.contains("bad magic"),
            "{e}"
        );
        let mut short = encode(&[3, 4, 4], &[0; 48]);
        short.truncate(40);
        let e = err(d.path(), "train-images-idx3-ubyte", &short);
        assert!(e.contains("truncated"), "{e}");
        let e = err(
            d.path(),
            "t10k-labels-idx1-ubyte",
            &encode(&[3], &[0, 10, 1]),
        );
        assert!(
            e.contains("t10k-labels-idx1-ubyte")
                && e.contains("label 10")
                && e.contains("out of range"),
            "{e}"
        );
        let e = err(d.path(), "train-labels-idx1-ubyte", &encode(&[2], &[0, 1]));
        assert!(e.contains("count mismatch"), "{e}");
        let e = err(d.path(), "train-images-idx3-ubyte", &[1, 2]);
        assert!(e.contains("truncated"), "{e}");
        good_set(d.path(), false);
        std::fs::write(
            d.path().join("t10k-images-idx3-ubyte"),
            [0x1f, 0x8b, 1, 2, 3],
        )
        .unwrap();
        let e = load_dir(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("t10k-images-idx3-ubyte") && e.contains("gzip"),
            "{e}"
        );
        let e = load_dir(&d.path().join("missing")).unwrap_err().to_string();
        assert!(e.contains("cannot read") && e.contains("missing"), "{e}");
    }
}
