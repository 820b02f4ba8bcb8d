//! The key/value cache: per layer, the rotated keys and the values of every
//! position so far (`positions x kv_heads x head_dim`), and the token ids
//! they came from.

/// Keys and values of the positions run so far.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    /// Values per position and layer (`kv_heads * head_dim`).
    row: usize,
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    tokens: Vec<u32>,
}

impl KvCache {
    /// An empty cache for `layers` layers of `row` values per position.
    pub fn new(layers: usize, row: usize) -> Self {
        KvCache {
            row,
            keys: vec![Vec::new(); layers],
            values: vec![Vec::new(); layers],
            tokens: Vec::new(),
        }
    }

    /// Positions held.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether no position is held.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The token ids of the positions held.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Keep the first `len` positions only.
    pub fn truncate(&mut self, len: usize) {
        self.tokens.truncate(len);
        let keep = self.tokens.len() * self.row;
        for v in self.keys.iter_mut().chain(self.values.iter_mut()) {
            v.truncate(keep);
        }
    }

    /// How many leading tokens of `tokens` the cache holds already.
    pub fn common_prefix(&self, tokens: &[u32]) -> usize {
        self.tokens
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count()
    }

    /// Put the keys and values of new positions of `layer` after the
    /// committed ones (replacing what an unfinished pass left there), and
    /// return the layer's keys and values of all positions.
    pub fn extend(&mut self, layer: usize, k: &[f32], v: &[f32]) -> (&[f32], &[f32]) {
        let keep = self.tokens.len() * self.row;
        let (Some(kc), Some(vc)) = (self.keys.get_mut(layer), self.values.get_mut(layer)) else {
            return (&[], &[]);
        };
        kc.truncate(keep);
        vc.truncate(keep);
        kc.extend_from_slice(k);
        vc.extend_from_slice(v);
        (kc, vc)
    }

    /// Record that the positions of `tokens` are now in every layer.
    pub fn commit(&mut self, tokens: &[u32]) {
        self.tokens.extend_from_slice(tokens);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_and_prefixes() {
        let mut c = KvCache::new(2, 3);
        for l in 0..2 {
            let (k, v) = c.extend(l, &[1.0; 6], &[2.0; 6]);
            assert_eq!((k.len(), v.len()), (6, 6));
        }
        c.commit(&[5, 6]);
        assert_eq!(c.common_prefix(&[5, 7, 8]), 1);
        assert_eq!(c.common_prefix(&[5, 6, 8]), 2);
        // An unfinished pass (layer 0 only) is replaced by the next one.
        c.extend(0, &[9.0; 3], &[9.0; 3]);
        let (k, _) = c.extend(0, &[3.0; 3], &[3.0; 3]);
        assert_eq!(k.len(), 9);
        assert_eq!(k[6..], [3.0; 3]);
        c.truncate(1);
        assert_eq!(c.len(), 1);
        let (k, v) = c.extend(1, &[4.0; 3], &[4.0; 3]);
        assert_eq!((k.len(), v.len()), (6, 6));
        assert_eq!(c.extend(7, &[], &[]).0.len(), 0);
    }
}
