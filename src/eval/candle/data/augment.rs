//! Training-time augmentation on normalised NCHW images: random crop with
//! zero padding, horizontal flip, cutout.

use crate::rng::Rng;

/// Augmentation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Augment {
    /// Pad by this many pixels and crop back at a random offset (0: off).
    pub crop_pad: usize,
    /// Flip left-right with probability 1/2.
    pub flip: bool,
    /// Zero a square of this side at a random centre (0: off).
    pub cutout: usize,
}

impl Augment {
    /// Augment one image `[channels, size, size]` in place.
    pub fn apply(&self, img: &mut [f32], channels: usize, size: usize, rng: &mut Rng) {
        let hw = size * size;
        if self.crop_pad > 0 {
            let p = self.crop_pad as isize;
            let dy = rng.below(2 * self.crop_pad + 1) as isize - p;
            let dx = rng.below(2 * self.crop_pad + 1) as isize - p;
            if dy != 0 || dx != 0 {
                let src = img.to_vec();
                for c in 0..channels {
                    for y in 0..size {
                        for x in 0..size {
                            let (sy, sx) = (y as isize + dy, x as isize + dx);
                            let inside =
                                sy >= 0 && sx >= 0 && (sy as usize) < size && (sx as usize) < size;
                            img[c * hw + y * size + x] = if inside {
                                src[c * hw + sy as usize * size + sx as usize]
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
        }
        if self.flip && rng.below(2) == 1 {
            for row in img.chunks_mut(size) {
                row.reverse();
            }
        }
        if self.cutout > 0 {
            let cy = rng.below(size) as isize;
            let cx = rng.below(size) as isize;
            let half = (self.cutout / 2) as isize;
            let y0 = (cy - half).max(0) as usize;
            let y1 = ((cy + half) as usize).min(size);
            let x0 = (cx - half).max(0) as usize;
            let x1 = ((cx + half) as usize).min(size);
            for c in 0..channels {
                for y in y0..y1 {
                    for v in &mut img[c * hw + y * size + x0..c * hw + y * size + x1] {
                        *v = 0.0;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flip_crop_and_cutout_move_pixels() {
        let img: Vec<f32> = (0..16).map(|v| v as f32 + 1.0).collect();
        let mut rng = Rng::seed(1);
        let flip = Augment {
            crop_pad: 0,
            flip: true,
            cutout: 0,
        };
        let mut seen_flip = false;
        for _ in 0..20 {
            let mut a = img.clone();
            flip.apply(&mut a, 1, 4, &mut rng);
            if a != img {
                assert_eq!(&a[..4], &[4.0, 3.0, 2.0, 1.0]);
                seen_flip = true;
            }
        }
        assert!(seen_flip);
        let crop = Augment {
            crop_pad: 1,
            flip: false,
            cutout: 0,
        };
        let mut shifted = false;
        for _ in 0..20 {
            let mut a = img.clone();
            crop.apply(&mut a, 1, 4, &mut rng);
            let sum: f32 = a.iter().sum();
            assert!(sum <= img.iter().sum::<f32>());
            shifted |= a != img;
        }
        assert!(shifted);
        let cut = Augment {
            crop_pad: 0,
            flip: false,
            cutout: 2,
        };
        let mut a = img.clone();
        cut.apply(&mut a, 1, 4, &mut rng);
        assert!(a.iter().filter(|v| **v == 0.0).count() >= 1);
    }
}
