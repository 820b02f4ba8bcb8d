//! The PyTorch `Genotype(...)` form of DARTS cells, as the DARTS family of
//! papers prints them: `Genotype(normal=[('sep_conv_3x3', 0), ...],
//! normal_concat=range(2, 6), reduce=[...], reduce_concat=[2, 3, 4, 5])`.
//! A small recursive-descent parser with located errors.

use super::darts::{build_cell, check_concat, edge_location, Genotype, SPACE};
use super::error::{quoted, ArchError};

/// Parse the `Genotype(normal=[...], normal_concat=..., reduce=[...], reduce_concat=...)` form.
pub fn parse(text: &str) -> Result<Genotype, ArchError> {
    let mut p = PyParser::new(text);
    p.expect_word("Genotype")?;
    p.expect('(')?;
    let mut normal = None;
    let mut reduce = None;
    let mut normal_concat = None;
    let mut reduce_concat = None;
    loop {
        p.skip_ws();
        if p.eat(')') {
            break;
        }
        let key = p.ident()?;
        p.expect('=')?;
        match key.as_str() {
                "normal" => normal = Some(p.pair_list(&key)?),
                "reduce" => reduce = Some(p.pair_list(&key)?),
                "normal_concat" => normal_concat = Some(p.concat(&key)?),
                "reduce_concat" => reduce_concat = Some(p.concat(&key)?),
                other => {
                    return Err(ArchError::new(
                        SPACE,
                        "",
                        format!("unknown Genotype field {}; expected normal, normal_concat, reduce, reduce_concat", quoted(other)),
                    ))
                }
            }
        p.skip_ws();
        if p.eat(',') {
            continue;
        }
        p.expect(')')?;
        break;
    }
    p.skip_ws();
    if !p.at_end() {
        return Err(p.err(format!(
            "unexpected text after Genotype(...): {}",
            quoted(p.rest())
        )));
    }
    let normal = normal.ok_or_else(|| ArchError::new(SPACE, "", "missing field normal=[...]"))?;
    let reduce = reduce.ok_or_else(|| ArchError::new(SPACE, "", "missing field reduce=[...]"))?;
    let g = Genotype {
        normal: build_cell("normal", &normal)?,
        reduce: build_cell("reduce", &reduce)?,
    };
    check_concat("normal", normal_concat)?;
    check_concat("reduce", reduce_concat)?;
    Ok(g)
}

/// A tiny recursive-descent reader for the Python literal subset in `Genotype(...)`.
struct PyParser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> PyParser<'a> {
    fn new(text: &'a str) -> Self {
        PyParser { text, pos: 0 }
    }
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }
    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }
    fn err(&self, msg: impl Into<String>) -> ArchError {
        ArchError::new(SPACE, format!("character {}", self.pos + 1), msg)
    }
    fn skip_ws(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start().len();
    }
    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: char) -> Result<(), ArchError> {
        if self.eat(c) {
            Ok(())
        } else {
            let found = self
                .rest()
                .chars()
                .next()
                .map_or("end of text".to_string(), |ch| format!("'{ch}'"));
            Err(self.err(format!("expected '{c}', found {found}")))
        }
    }
    fn ident(&mut self) -> Result<String, ArchError> {
        self.skip_ws();
        let r = self.rest();
        let n = r
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(r.len());
        if n == 0 {
            return Err(self.err(format!("expected a name, found {}", quoted(r))));
        }
        self.pos += n;
        Ok(r[..n].to_string())
    }
    fn expect_word(&mut self, w: &str) -> Result<(), ArchError> {
        let got = self.ident()?;
        if got == w {
            Ok(())
        } else {
            Err(self.err(format!("expected {w}, found {}", quoted(&got))))
        }
    }
    fn int(&mut self) -> Result<i64, ArchError> {
        self.skip_ws();
        let r = self.rest();
        let n = r
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
            .map_or(r.len(), |(i, _)| i);
        let v = r[..n]
            .parse::<i64>()
            .map_err(|_| self.err(format!("expected an integer, found {}", quoted(r))))?;
        self.pos += n;
        Ok(v)
    }
    fn string(&mut self) -> Result<String, ArchError> {
        self.skip_ws();
        let r = self.rest();
        let q = r
            .chars()
            .next()
            .filter(|c| *c == '\'' || *c == '"')
            .ok_or_else(|| self.err(format!("expected a quoted op name, found {}", quoted(r))))?;
        let body = &r[1..];
        let end = body
            .find(q)
            .ok_or_else(|| self.err("unterminated string"))?;
        self.pos += end + 2;
        Ok(body[..end].to_string())
    }
    fn pair_list(&mut self, cell: &str) -> Result<Vec<(String, i64)>, ArchError> {
        self.expect('[')?;
        let mut out = Vec::new();
        loop {
            if self.eat(']') {
                break;
            }
            self.expect('(')?;
            let op = self.string()?;
            self.expect(',')?;
            let input = self.int()?;
            self.expect(')').map_err(|e| {
                ArchError::new(
                    SPACE,
                    edge_location(cell, out.len()),
                    format!("each edge is ('op', input): {}", e.message),
                )
            })?;
            out.push((op, input));
            if self.eat(',') {
                continue;
            }
            self.expect(']')?;
            break;
        }
        Ok(out)
    }
    fn concat(&mut self, key: &str) -> Result<Vec<i64>, ArchError> {
        self.skip_ws();
        if self.rest().starts_with("range") {
            self.expect_word("range")?;
            self.expect('(')?;
            let a = self.int()?;
            self.expect(',')?;
            let b = self.int()?;
            self.expect(')')?;
            // Only range(2, 6) is valid; never build a long range to say so.
            if b.saturating_sub(a) > 8 {
                return Err(ArchError::new(
                    SPACE,
                    key,
                    format!(
                        "only range(2, 6) (nodes 2, 3, 4, 5) is supported, found range({a}, {b})"
                    ),
                ));
            }
            Ok((a..b).collect())
        } else if self.eat('[') {
            let mut v = Vec::new();
            loop {
                if self.eat(']') {
                    break;
                }
                v.push(self.int()?);
                if self.eat(',') {
                    continue;
                }
                self.expect(']')?;
                break;
            }
            Ok(v)
        } else {
            Err(self.err(format!(
                "{key} must be range(2, 6) or [2, 3, 4, 5], found {}",
                quoted(self.rest())
            )))
        }
    }
}
