//! Byte classes of up to 64 bytes at a time as bitmasks (bit `i` = byte `i`), in
//! safe, portable code: eight bytes are tested at once inside a `u64` (SWAR, "SIMD
//! within a register"). The redactor uses the masks to jump from one candidate
//! position to the next with `trailing_zeros` instead of branching on every byte
//! (ADR 0205).

/// The classes the redactor's scanners start from, for one block of ≤ 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Classes {
    /// `[A-Za-z0-9_]`.
    pub word: u64,
    /// `[0-9]`.
    pub digit: u64,
    /// `@` (email), `:` (IPv6), `+` or `(` (phone numbers), and `)` `*` (the
    /// range test that finds `(` and `+` costs less than two exact ones; the
    /// caller skips them).
    pub special: u64,
}

const HIGH: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;

#[inline(always)]
const fn splat(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

/// High bit of each byte set iff `lo <= byte <= hi` (`hi < 0x80`). Bytes with the
/// high bit set are never in range, so adding to the low seven bits cannot carry
/// into the next byte.
#[inline(always)]
fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    let low = x & LOW7;
    let ge = low.wrapping_add(splat(0x80 - lo));
    let gt = low.wrapping_add(splat(0x7F - hi));
    ge & !gt & !x & HIGH
}

/// High bit of each byte set iff the byte is not zero (exact: no borrow between
/// bytes, unlike the classic `(v - 0x01..) & !v` zero test).
#[inline(always)]
fn nonzero(v: u64) -> u64 {
    (((v & LOW7).wrapping_add(LOW7)) | v) & HIGH
}

/// High bit of each byte set iff the byte equals `b`.
#[inline(always)]
fn equal(x: u64, b: u8) -> u64 {
    !nonzero(x ^ splat(b)) & HIGH
}

/// High bit of each byte set iff the byte equals `a` or `b`.
#[inline(always)]
fn equal2(x: u64, a: u8, b: u8) -> u64 {
    !(nonzero(x ^ splat(a)) & nonzero(x ^ splat(b))) & HIGH
}

/// The high bits of the eight bytes as an 8-bit mask, byte 0 in bit 0.
#[inline(always)]
fn pack(m: u64) -> u64 {
    ((m >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

#[inline(always)]
fn classify8(x: u64) -> (u64, u64, u64) {
    let digit = in_range(x, b'0', b'9');
    let letter = in_range(x | splat(0x20), b'a', b'z');
    let word = digit | letter | equal(x, b'_');
    let special = in_range(x, b'(', b'+') | equal2(x, b'@', b':');
    (pack(word), pack(digit), pack(special))
}

/// The classes of `block` (at most 64 bytes; bits past its end are 0).
#[inline]
pub(crate) fn classify(block: &[u8]) -> Classes {
    debug_assert!(block.len() <= 64);
    let mut c = Classes::default();
    let mut shift = 0;
    let mut words = block.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        let (word, digit, special) = classify8(u64::from_le_bytes(b));
        c.word |= word << shift;
        c.digit |= digit << shift;
        c.special |= special << shift;
        shift += 8;
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        // Zero padding (NUL is in no class), assembled byte by byte: a
        // variable-length copy into an array is a `memcpy` call per line.
        let (word, digit, special) = classify8(load_partial(rest));
        c.word |= word << shift;
        c.digit |= digit << shift;
        c.special |= special << shift;
    }
    c
}

/// Up to eight bytes as a little-endian `u64`, zero-padded.
#[inline(always)]
fn load_partial(bytes: &[u8]) -> u64 {
    match bytes.first_chunk::<8>() {
        Some(eight) => u64::from_le_bytes(*eight),
        None => bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
    }
}

/// How many ASCII digits `bytes` starts with (eight bytes per step).
#[inline]
pub(crate) fn digit_run(bytes: &[u8]) -> usize {
    let mut n = 0;
    loop {
        let rest = &bytes[n.min(bytes.len())..];
        let run = pack(in_range(load_partial(rest), b'0', b'9')).trailing_ones() as usize;
        n += run;
        if run < 8 {
            return n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(block: &[u8]) -> Classes {
        let mut c = Classes::default();
        for (i, &b) in block.iter().enumerate() {
            let bit = 1u64 << i;
            if b.is_ascii_alphanumeric() || b == b'_' {
                c.word |= bit;
            }
            if b.is_ascii_digit() {
                c.digit |= bit;
            }
            if b"@:+()*".contains(&b) {
                c.special |= bit;
            }
        }
        c
    }

    #[test]
    fn every_byte_value_in_every_position() {
        for b in 0..=255u8 {
            for len in 1..=64 {
                for pos in [0, len / 2, len - 1] {
                    let mut block = vec![b'.'; len];
                    block[pos] = b;
                    assert_eq!(
                        classify(&block),
                        reference(&block),
                        "byte {b} at {pos}/{len}"
                    );
                }
            }
        }
        assert_eq!(classify(&[]), Classes::default());
    }

    #[test]
    fn digit_runs() {
        assert_eq!(digit_run(b""), 0);
        assert_eq!(digit_run(b"x1"), 0);
        assert_eq!(digit_run(b"0123456789a"), 10);
        assert_eq!(digit_run(b"01234567"), 8);
        assert_eq!(digit_run(b"0123456789012345678"), 19);
        assert_eq!(digit_run(b"9/"), 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn digit_run_counts_leading_digits(bytes in proptest::collection::vec(
            prop_oneof![3 => proptest::char::range('0', '9').prop_map(|c| c as u8), 1 => any::<u8>()],
            0..40,
        )) {
            let want = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
            prop_assert_eq!(digit_run(&bytes), want);
        }

        #[test]
        fn equals_the_byte_by_byte_classes(block in proptest::collection::vec(any::<u8>(), 0..=64)) {
            prop_assert_eq!(classify(&block), reference(&block));
        }
    }
}
