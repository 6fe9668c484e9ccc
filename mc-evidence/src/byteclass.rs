//! Byte classes of up to 64 bytes at a time as bitmasks (bit `i` = byte `i`), in
//! safe, portable code: sixteen bytes are tested at once with `wide`'s portable
//! SIMD types (SSE2 on x86-64), and digit runs eight bytes at a time inside a `u64`
//! (SWAR). The redactor uses the masks to jump from one candidate position to the
//! next with `trailing_zeros` instead of branching on every byte (ADR 0205).

use wide::u8x16;

/// The classes the redactor's scanners start from, for one block of ≤ 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Classes {
    /// `[A-Za-z0-9_]`.
    pub word: u64,
    /// `[0-9]`.
    pub digit: u64,
    /// `@` (emails).
    pub at: u64,
    /// `:` (IPv6).
    pub colon: u64,
    /// `+` or `(` (phone numbers).
    pub plus_paren: u64,
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

/// The high bits of the eight bytes as an 8-bit mask, byte 0 in bit 0.
#[inline(always)]
fn pack(m: u64) -> u64 {
    ((m >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// All ones in the lanes of `v` with `lo <= byte <= hi`, zero elsewhere.
#[inline(always)]
fn between(v: u8x16, lo: u8, hi: u8) -> u8x16 {
    v.max(u8x16::splat(lo)).cmp_eq(v) & v.min(u8x16::splat(hi)).cmp_eq(v)
}

/// The class masks of 16 bytes, bit `i` = byte `i`, in the order of [`Classes`]'
/// fields. `wide` lowers each step to one SSE2 instruction on x86-64 (NEON on
/// aarch64, plain loops elsewhere) — about a quarter of the instructions of the
/// SWAR steps it replaced, with no `unsafe` here.
#[inline(always)]
fn classify16(bytes: [u8; 16]) -> [u64; 5] {
    let v = u8x16::from(bytes);
    let eq = |b: u8| v.cmp_eq(u8x16::splat(b));
    let digit = between(v, b'0', b'9');
    let letter = between(v | u8x16::splat(0x20), b'a', b'z');
    let word = digit | letter | eq(b'_');
    let bits = |m: u8x16| u64::from(m.move_mask() as u16);
    [
        bits(word),
        bits(digit),
        bits(eq(b'@')),
        bits(eq(b':')),
        bits(eq(b'+') | eq(b'(')),
    ]
}

/// The classes of `block` (at most 64 bytes; bits past its end are 0).
#[inline]
pub(crate) fn classify(block: &[u8]) -> Classes {
    debug_assert!(block.len() <= 64);
    let mut m = [0u64; 5];
    let mut add = |lane: [u8; 16], shift: u32| {
        for (acc, bits) in m.iter_mut().zip(classify16(lane)) {
            *acc |= bits << shift;
        }
    };
    let mut shift = 0;
    let mut lanes = block.chunks_exact(16);
    for lane in &mut lanes {
        let mut b = [0u8; 16];
        b.copy_from_slice(lane);
        add(b, shift);
        shift += 16;
    }
    let rest = lanes.remainder();
    if !rest.is_empty() {
        // Zero padding: NUL is in no class.
        add(padded16(rest), shift);
    }
    let [word, digit, at, colon, plus_paren] = m;
    Classes {
        word,
        digit,
        at,
        colon,
        plus_paren,
    }
}

/// How many bearer-token bytes (`[A-Za-z0-9\-._~+/]`) `bytes` starts with, sixteen
/// bytes per step: a bearer token runs to dozens or hundreds of bytes, and a test per
/// byte cost about ten instructions.
#[inline]
pub(crate) fn token_run(bytes: &[u8]) -> usize {
    let mut n = 0;
    loop {
        // Zero padding: NUL is no token byte.
        let run = token16(padded16(&bytes[n..])).trailing_ones() as usize;
        n += run;
        if run < 16 {
            return n;
        }
    }
}

/// Bit `i` set iff byte `i` is a bearer-token byte: `- . /` and the digits are the
/// one range `0x2D..=0x39`, then letters, `+`, `_` and `~`.
#[inline(always)]
fn token16(bytes: [u8; 16]) -> u32 {
    let v = u8x16::from(bytes);
    let m = between(v, b'-', b'9')
        | between(v | u8x16::splat(0x20), b'a', b'z')
        | v.cmp_eq(u8x16::splat(b'+'))
        | v.cmp_eq(u8x16::splat(b'_'))
        | v.cmp_eq(u8x16::splat(b'~'));
    u32::from(m.move_mask() as u16)
}

/// The first sixteen bytes of `bytes`, zero-padded when there are fewer — from two
/// partial eight-byte loads: a variable-length copy into an array is a `memcpy`
/// call.
#[inline(always)]
fn padded16(bytes: &[u8]) -> [u8; 16] {
    match bytes.first_chunk::<16>() {
        Some(sixteen) => *sixteen,
        None => {
            let (lo, hi) = bytes.split_at(bytes.len().min(8));
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&load_partial(lo).to_le_bytes());
            b[8..].copy_from_slice(&load_partial(hi).to_le_bytes());
            b
        }
    }
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
            match b {
                b'@' => c.at |= bit,
                b':' => c.colon |= bit,
                b'+' | b'(' => c.plus_paren |= bit,
                _ => {}
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

    #[test]
    fn token_runs() {
        assert_eq!(token_run(b""), 0);
        assert_eq!(token_run(b"abc"), 3);
        assert_eq!(token_run(b"eyJhbGciOiJIUzI1NiJ9.ab-c_d~e+f/g=="), 33);
        assert_eq!(token_run(&[b'a'; 16]), 16);
        assert_eq!(token_run(&[b'Z'; 40]), 40);
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            for pos in [0, 7, 8, 15, 16, 17, 31, 40] {
                let mut t = vec![b'x'; 41];
                t[pos] = b;
                let got = token_run(&t);
                assert_eq!(got, if want { 41 } else { pos }, "byte {b} at {pos}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn token_run_counts_leading_token_bytes(bytes in proptest::collection::vec(
            prop_oneof![6 => proptest::sample::select(b"aZ09-._~+/".to_vec()), 1 => any::<u8>()],
            0..80,
        )) {
            let want = bytes
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(b))
                .count();
            prop_assert_eq!(token_run(&bytes), want);
        }

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
