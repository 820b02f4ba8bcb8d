//! A deterministic byte mutator: the same seed gives the same inputs.

/// SplitMix64.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A stream from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True once in `n` times.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// FNV-1a of a string (to derive per-target streams).
pub fn hash_str(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

const INTERESTING_U8: [u8; 9] = [0, 1, 0x7f, 0x80, 0xff, b'\n', b'"', b'\\', b'0'];

const INTERESTING_U32: [u32; 10] = [
    0,
    1,
    2,
    4,
    32,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x0001_0000,
    1 << 30,
];

const INTERESTING_U64: [u64; 7] = [
    0,
    1,
    u64::MAX,
    i64::MAX as u64,
    1 << 32,
    1 << 62,
    0x8000_0000_0000_0000,
];

const NUMBERS: [&str; 16] = [
    "0",
    "-1",
    "1",
    "2",
    "7",
    "255",
    "256",
    "65536",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "1e309",
    "NaN",
    "-0.0",
];

/// Apply 1, 2, 4 or 8 random mutations (fewer more often) to `data`, drawing splices from
/// `seeds` and tokens from `dict`; the result is at most `max_len` bytes.
pub fn mutate(
    rng: &mut Rng,
    data: &mut Vec<u8>,
    seeds: &[Vec<u8>],
    dict: &[Vec<u8>],
    max_len: usize,
) {
    // Mostly one or two edits (to stay near valid input), sometimes many.
    let rounds = match rng.below(8) {
        0..=3 => 1,
        4 | 5 => 2,
        6 => 4,
        _ => 8,
    };
    for _ in 0..rounds {
        mutate_once(rng, data, seeds, dict);
    }
    data.truncate(max_len);
}

fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, seeds: &[Vec<u8>], dict: &[Vec<u8>]) {
    let len = data.len();
    let pos = |rng: &mut Rng, extra: usize| rng.below(len + extra);
    match rng.below(14) {
        // flip a bit
        0 if len > 0 => {
            let i = pos(rng, 0);
            data[i] ^= 1 << rng.below(8);
        }
        // a random byte
        1 if len > 0 => {
            let i = pos(rng, 0);
            data[i] = rng.next_u64() as u8;
        }
        // an interesting byte
        2 if len > 0 => {
            let i = pos(rng, 0);
            data[i] = INTERESTING_U8[rng.below(INTERESTING_U8.len())];
        }
        // insert random bytes
        3 => {
            let i = pos(rng, 1);
            let n = 1 + rng.below(8);
            let b = rng.bytes(n);
            data.splice(i..i, b);
        }
        // delete a block
        4 if len > 0 => {
            let i = pos(rng, 0);
            let cap = if rng.one_in(8) { len } else { 32 };
            let n = 1 + rng.below((len - i).min(cap));
            data.drain(i..i + n);
        }
        // duplicate a block elsewhere
        5 if len > 0 => {
            let i = pos(rng, 0);
            let n = 1 + rng.below((len - i).min(256));
            let block = data[i..i + n].to_vec();
            let j = pos(rng, 1);
            data.splice(j..j, block);
        }
        // splice: our head, another seed's tail
        6 if !seeds.is_empty() => {
            let other = &seeds[rng.below(seeds.len())];
            let i = pos(rng, 1);
            let j = rng.below(other.len() + 1);
            data.truncate(i);
            data.extend_from_slice(&other[j..]);
        }
        // insert a dictionary token
        7 | 8 if !dict.is_empty() => {
            let tok = dict[rng.below(dict.len())].clone();
            let i = pos(rng, 1);
            if rng.one_in(2) && i < len {
                let n = tok.len().min(len - i);
                data.splice(i..i + n, tok);
            } else {
                data.splice(i..i, tok);
            }
        }
        // an interesting 32- or 64-bit integer, little or big endian
        9 if len >= 4 => {
            let wide = len >= 8 && rng.one_in(2);
            let bytes: Vec<u8> = if wide {
                let v = INTERESTING_U64[rng.below(INTERESTING_U64.len())];
                if rng.one_in(2) {
                    v.to_le_bytes().to_vec()
                } else {
                    v.to_be_bytes().to_vec()
                }
            } else {
                let v = INTERESTING_U32[rng.below(INTERESTING_U32.len())];
                if rng.one_in(2) {
                    v.to_le_bytes().to_vec()
                } else {
                    v.to_be_bytes().to_vec()
                }
            };
            let i = rng.below(len - bytes.len() + 1);
            data[i..i + bytes.len()].copy_from_slice(&bytes);
        }
        // nudge a byte
        10 if len > 0 => {
            let i = pos(rng, 0);
            let d = 1 + rng.below(16) as u8;
            data[i] = if rng.one_in(2) {
                data[i].wrapping_add(d)
            } else {
                data[i].wrapping_sub(d)
            };
        }
        // replace a run of ASCII digits with an interesting number
        11 if len > 0 => {
            let start = pos(rng, 0);
            if let Some(off) = data[start..].iter().position(u8::is_ascii_digit) {
                let a = start + off;
                let b = data[a..]
                    .iter()
                    .position(|c| !c.is_ascii_digit())
                    .map_or(data.len(), |e| a + e);
                let num = NUMBERS[rng.below(NUMBERS.len())].as_bytes().to_vec();
                data.splice(a..b, num);
            }
        }
        // truncate
        12 if len > 0 => {
            let i = pos(rng, 0);
            data.truncate(i);
        }
        // swap two bytes
        _ if len > 1 => {
            let (i, j) = (pos(rng, 0), pos(rng, 0));
            data.swap(i, j);
        }
        _ => data.push(rng.next_u64() as u8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_mutations() {
        let seeds = vec![b"hello world".to_vec(), b"{\"a\": 1}".to_vec()];
        let dict = vec![b"null".to_vec()];
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..200)
                .map(|_| {
                    let mut d = seeds[rng.below(2)].clone();
                    mutate(&mut rng, &mut d, &seeds, &dict, 64);
                    d
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        assert!(run(7).iter().all(|d| d.len() <= 64));
        // The mutations change the inputs.
        assert!(run(7).iter().filter(|d| !seeds.contains(d)).count() > 150);
    }
}
