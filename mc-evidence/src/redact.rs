//! PII redaction (MC-DATA-1152): a small, streaming, length-preserving redactor.
//!
//! Built-in rules, in priority order: `email`, `card` (13–19 digits, optional
//! space/dash separators, **Luhn-valid**), `phone` (separated national formats and
//! `+` international numbers), `ipv4`, `ipv6` (the grammar of the standard parser),
//! `bearer_token` (`Bearer <token>`), `api_key` (`api_key=…`, `token: …`,
//! `secret=…`, `password=…` and well-known key prefixes such as `sk_live_`, `AKIA`,
//! `ghp_`, `xoxb-`), plus tenant-supplied named regular expressions.
//!
//! A match is replaced **byte for byte** by a mask of the same length — `[email***]`
//! (the rule name in brackets, padded with `*`) or `*…` when the match is shorter
//! than the label. Keeping the length lets the pack builder write a tar header
//! before it has read the artifact, which is what makes the pack streaming (see
//! ADR 0200).
//!
//! Redaction works on whole lines: a [`RedactStream`] holds back the bytes after the
//! last newline until more data arrives, so a match split across chunk boundaries
//! is found exactly as if the artifact were one buffer (property-tested). No rule
//! matches across a newline. A line longer than [`MAX_LINE`] is cut at the last
//! delimiter byte (`"` `'` `,` `;` `<` `>` `{` `}` `[` `]` `|`) before the limit.
//!
//! ```
//! use mc_evidence::redact::Redactor;
//!
//! let r = Redactor::builtin();
//! let (out, counts) = r.redact(b"mail bob@example.com card 4111 1111 1111 1111\n");
//! assert_eq!(out.len(), 46);
//! assert_eq!(&out[..], &b"mail [email********] card [card*************]\n"[..]);
//! assert_eq!(counts.get("email"), 1);
//! assert_eq!(counts.get("card"), 1);
//! assert!(r.find(&out).is_empty());
//! ```

use std::collections::BTreeMap;
#[cfg(test)]
use std::net::Ipv6Addr;
#[cfg(test)]
use std::str::FromStr;

use aho_corasick::automaton::Automaton as _;
use aho_corasick::{MatchKind, StartKind};
use regex_automata::dfa::Automaton as _;
use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input};
use serde::{Deserialize, Serialize};

/// Longest run of bytes without a newline that is redacted as one unit.
pub const MAX_LINE: usize = 1 << 20;

/// Passes over one segment before redaction stops looking for matches that masks
/// expose (see [`Redactor::redact`]); a match still there after them is reported by
/// [`RedactStream::check_leaks`].
pub const MAX_PASSES: usize = 4;

/// Names of the built-in rules, in priority order.
pub const BUILTIN_RULES: [&str; 7] = [
    "email",
    "card",
    "phone",
    "ipv4",
    "ipv6",
    "bearer_token",
    "api_key",
];

/// Words that start a bearer token (index 0) or an API key (the rest), matched
/// ASCII case-insensitively at word starts.
const KEYWORDS: [&str; 21] = [
    "bearer",
    "api_key",
    "api-key",
    "apikey",
    "token",
    "secret",
    "password",
    "passwd",
    "sk_live_",
    "sk_test_",
    "pk_live_",
    "rk_live_",
    "akia",
    "ghp_",
    "gho_",
    "ghs_",
    "ghu_",
    "github_pat_",
    "xoxb-",
    "xoxp-",
    "xoxa-",
];

const EMAIL: usize = 0;
const CARD: usize = 1;
const PHONE: usize = 2;
const IPV4: usize = 3;
const IPV6: usize = 4;
const BEARER: usize = 5;
const API_KEY: usize = 6;

/// Why a tenant-supplied pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedactError {
    /// The rule name is empty, too long, not `[a-z0-9_-]`, or already taken.
    #[error("redaction rule name {name:?}: {reason}")]
    BadName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The pattern does not compile.
    #[error("redaction rule {name}: invalid pattern: {reason}")]
    BadPattern {
        /// The rule.
        name: String,
        /// The compiler's message.
        reason: String,
    },
    /// The pattern matches the empty string, a newline or a mask, so redaction could
    /// never converge (a mask would be redacted again).
    #[error("redaction rule {name}: pattern {reason}")]
    Unusable {
        /// The rule.
        name: String,
        /// What it matches.
        reason: &'static str,
    },
}

/// A tenant-supplied rule: a name (used in masks and counts) and a regular expression
/// (Rust `regex` syntax, matched against bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomRule {
    /// `[a-z0-9_-]{1,32}`, unique.
    pub name: String,
    /// The pattern.
    pub pattern: String,
}

/// Matches per rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RedactionCounts(pub BTreeMap<String, u64>);

impl RedactionCounts {
    /// Matches of `rule` (0 when none).
    pub fn get(&self, rule: &str) -> u64 {
        self.0.get(rule).copied().unwrap_or(0)
    }

    /// Total matches.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &RedactionCounts) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_default() += v;
        }
    }

    /// Adds `tally` (matches per rule index of `names`) and zeroes it.
    fn drain_tally(&mut self, names: &[String], tally: &mut [u64]) {
        for (name, n) in names.iter().zip(tally.iter_mut()) {
            if *n > 0 {
                *self.0.entry(name.clone()).or_default() += *n;
                *n = 0;
            }
        }
    }
}

/// One match found by [`Redactor::find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule.
    pub rule: String,
    /// Byte offset of the start.
    pub start: usize,
    /// Byte offset one past the end.
    pub end: usize,
}

/// Where each built-in scanner may next report a match (the end of its last one).
#[derive(Debug, Default)]
struct Cursors {
    email: usize,
    number: usize,
    keyword: usize,
    ipv6: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Span {
    start: usize,
    end: usize,
    rule: usize,
}

/// Buffers one redaction loop reuses from segment to segment.
#[derive(Debug, Default)]
struct Scratch {
    /// Matches of the current pass.
    spans: Vec<Span>,
    /// `(start, end)` of the masks the last pass wrote (merged, in order).
    runs: Vec<(usize, usize)>,
    /// `(start, end)` of the parts of the segment the next pass scans.
    windows: Vec<(usize, usize)>,
}

/// The redaction engine: built-in rules plus tenant rules. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Redactor {
    names: Vec<String>,
    labels: Vec<Vec<u8>>,
    card: NumberDfa,
    phone: NumberDfa,
    ipv4: NumberDfa,
    api_key: Regex,
    /// The key words as an anchored Aho-Corasick DFA, called directly (no dynamic
    /// dispatch or input checks per word start).
    keywords: aho_corasick::dfa::DFA,
    custom: Option<Regex>,
}

/// Cards: 13–19 digits with optional single space/dash separators (Luhn is checked
/// apart).
const CARD_PATTERN: &str = r"(?-u)(?:\d[ \-]?){12,18}\d\b";
/// Phone numbers: separated national formats and `+` international numbers.
const PHONE_PATTERN: &str = r"(?-u)(?:\+\d{1,3}[ .\-]?)?(?:\(\d{3}\)[ .\-]?|\d{3}[ .\-])\d{3}[ .\-]\d{4}\b|\+\d{1,3}(?:[ .\-]\d{2,4}){2,5}\b|\+\d{8,15}\b";
/// Dotted-quad IPv4 addresses.
const IPV4_PATTERN: &str =
    r"(?-u)(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b";

/// Emails as a regular expression: the reference `email_end` is tested against.
#[cfg(test)]
const EMAIL_PATTERN: &str = r"(?-u)[A-Za-z0-9._%+\-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,10}[A-Za-z]{2,24}\b";
/// Bearer tokens as a regular expression: the reference `bearer_end` is tested
/// against.
#[cfg(test)]
const BEARER_PATTERN: &str = r"(?-u)(?i:bearer)[ \t]{1,8}[A-Za-z0-9\-._~+/]{6,4096}=*";

/// The end of the email match anchored at `s`, searching `seg[s..end]`
/// (look-ahead for `\b` may read `seg[end]`), where `s..at` are 1 to 64 local-part
/// bytes and `seg[at]` is `@` (as the scanner finds them). The rule, as a regular
/// expression: `[A-Za-z0-9._%+\-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,10}[A-Za-z]{2,24}\b`
/// (ASCII). The same result as that regex — property-tested — in a few comparisons
/// per byte: the regex's counted,
/// nested repetitions cost its lazy DFA about a thousand instructions a call.
///
/// Leftmost-first semantics spelled out: labels end at a `.` (label bytes exclude
/// it), so the domain's labels are forced by the text; the greedy `{1,10}` tries
/// the most valid labels first and gives one back at a time until the rest starts
/// with a top-level domain — a run of 2 to 24 letters not followed by a word byte
/// (a shorter run followed by a letter fails `\b`).
fn email_end(seg: &[u8], s: usize, at: usize, end: usize) -> Option<usize> {
    debug_assert!(s < at && at - s <= 64 && seg[at] == b'@');
    if at >= end {
        return None;
    }
    let mut labels = [0usize; 10];
    let mut k = 0;
    let mut p = at + 1;
    while k < 10 {
        let mut q = p;
        while q < end && (seg[q].is_ascii_alphanumeric() || seg[q] == b'-') {
            q += 1;
        }
        let valid = q < end
            && seg[q] == b'.'
            && (1..=63).contains(&(q - p))
            && seg[p].is_ascii_alphanumeric()
            && seg[q - 1].is_ascii_alphanumeric();
        if !valid {
            break;
        }
        p = q + 1;
        labels[k] = p;
        k += 1;
    }
    labels[..k].iter().rev().find_map(|&t| {
        let run = seg[t..]
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        let e = t + run;
        ((2..=24).contains(&run) && e <= end && seg.get(e).is_none_or(|&b| !is_word(b)))
            .then_some(e)
    })
}

/// The end of the bearer-token match anchored at `at` (where `bearer` starts,
/// in any case), searching `seg[at..end]` — the rule as a regular expression:
/// `(?i:bearer)[ \t]{1,8}[A-Za-z0-9\-._~+/]{6,4096}=*` — : 1 to 8 spaces or tabs (a longer run
/// cannot match: the token may not start with one), at least 6 token bytes (at most
/// 4,096), then any `=` padding. Property-tested against the regex.
fn bearer_end(seg: &[u8], at: usize, end: usize) -> Option<usize> {
    let mut p = at + 6;
    if p > end || !seg[at..p].eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let blanks = seg[p..end]
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    if !(1..=8).contains(&blanks) {
        return None;
    }
    p += blanks;
    let token = crate::byteclass::token_run(&seg[p..end.min(p + 4096)]);
    if token < 6 {
        return None;
    }
    p += token;
    // After 4,096 token bytes the next byte may still be `=` padding.
    p += seg[p..end].iter().take_while(|&&b| b == b'=').count();
    Some(p)
}

/// A fully compiled, anchored-only DFA for a number rule: these are tried at every
/// plausible number token, and a dense DFA needs neither a cache nor the meta
/// regex's dispatch per call (a few hundred instructions less per try).
type NumberDfa = regex_automata::dfa::dense::DFA<Vec<u32>>;

fn number_dfa(pattern: &str) -> NumberDfa {
    use regex_automata::dfa::{StartKind, dense};
    dense::Builder::new()
        .configure(dense::Config::new().start_kind(StartKind::Anchored))
        .syntax(
            regex_automata::util::syntax::Config::new()
                .unicode(false)
                .utf8(false),
        )
        .build(pattern)
        // Constants covered by every test run, as in `anchored`.
        .unwrap_or_else(|e| panic!("built-in number pattern: {e}"))
}

fn anchored(pattern: &str) -> Regex {
    // Built-in patterns are constants covered by tests; failing to compile one is a
    // programming error caught by every test run.
    Regex::new(pattern).unwrap_or_else(|e| panic!("built-in redaction pattern: {e}"))
}

/// `[A-Za-z0-9_]` as a lookup table (one load per byte in the scanning loops).
static WORD: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || b == b'_';
        i += 1;
    }
    t
};

#[inline]
fn is_word(b: u8) -> bool {
    WORD[b as usize]
}

#[inline]
fn is_email_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn luhn_ok(span: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut double = false;
    let mut n = 0;
    for &b in span.iter().rev() {
        if !b.is_ascii_digit() {
            continue;
        }
        let mut d = u32::from(b - b'0');
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
        n += 1;
    }
    (13..=19).contains(&n) && sum.is_multiple_of(10)
}

impl Redactor {
    /// The built-in rules only.
    pub fn builtin() -> Self {
        // Keyword index -> rule: 0 => bearer, 1.. => api_key.
        let keywords = aho_corasick::dfa::DFA::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .start_kind(StartKind::Anchored)
            .prefilter(false)
            .build(KEYWORDS)
            .unwrap_or_else(|e| panic!("built-in keyword set: {e}"));
        let names: Vec<String> = BUILTIN_RULES.iter().map(|s| s.to_string()).collect();
        Redactor {
            labels: names
                .iter()
                .map(|n| format!("[{n}]").into_bytes())
                .collect(),
            names,
            card: number_dfa(CARD_PATTERN),
            phone: number_dfa(PHONE_PATTERN),
            ipv4: number_dfa(IPV4_PATTERN),
            api_key: anchored(
                r#"(?-u)(?i:api[_\-]?key|token|secret|password|passwd)["']?[ \t]{0,3}[:=][ \t]{0,3}["']?[A-Za-z0-9\-._~+/]{6,4096}=*|(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{10,255}|(?i:akia)[0-9A-Z]{16}\b|gh[opsu]_[A-Za-z0-9]{20,255}|github_pat_[A-Za-z0-9_]{20,255}|xox[bpa]-[A-Za-z0-9\-]{10,255}"#,
            ),
            keywords,
            custom: None,
        }
    }

    /// The built-in rules plus `rules` (tenant-supplied).
    ///
    /// # Errors
    /// [`RedactError`] naming the rule whose name or pattern is unusable.
    pub fn with_rules(rules: &[CustomRule]) -> Result<Self, RedactError> {
        let mut r = Self::builtin();
        if rules.is_empty() {
            return Ok(r);
        }
        let mut pats = Vec::with_capacity(rules.len());
        for rule in rules {
            let bad = |reason| RedactError::BadName {
                name: rule.name.clone(),
                reason,
            };
            if rule.name.is_empty() || rule.name.len() > 32 {
                return Err(bad("must be 1 to 32 characters"));
            }
            if !rule
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            {
                return Err(bad("allowed characters are a-z 0-9 _ -"));
            }
            if r.names.contains(&rule.name) {
                return Err(bad("is already a rule"));
            }
            let single = Regex::new(&rule.pattern).map_err(|e| RedactError::BadPattern {
                name: rule.name.clone(),
                reason: e.to_string(),
            })?;
            let unusable = |reason| RedactError::Unusable {
                name: rule.name.clone(),
                reason,
            };
            if single.is_match(Input::new("").anchored(Anchored::Yes)) {
                return Err(unusable("matches the empty string"));
            }
            if single.is_match("\n") {
                return Err(unusable("matches a newline"));
            }
            r.names.push(rule.name.clone());
            r.labels.push(format!("[{}]", rule.name).into_bytes());
            pats.push(rule.pattern.clone());
        }
        // A mask must never be redacted again, or the post-pack scan could not pass.
        let custom = Regex::new_many(&pats).map_err(|e| RedactError::BadPattern {
            name: "custom".into(),
            reason: e.to_string(),
        })?;
        for (i, label) in r.labels.iter().enumerate() {
            let mut builtin = Vec::new();
            for len in 1..=80 {
                let mut mask = vec![0u8; len];
                let _ = write_mask(&mut mask, label);
                if let Some(m) = custom.find(&mask[..]) {
                    return Err(RedactError::Unusable {
                        name: rules[m.pattern().as_usize()].name.clone(),
                        reason: "matches a redaction mask",
                    });
                }
                // A tenant rule's name is written into its masks: a name such as
                // `sk_live_abcdefghij` would make an API-key match inside every one.
                r.builtin_spans(&mask, &mut builtin);
                if i >= BUILTIN_RULES.len() && !builtin.is_empty() {
                    return Err(RedactError::BadName {
                        name: r.names[i].clone(),
                        reason: "a built-in rule would match its masks",
                    });
                }
            }
        }
        r.custom = Some(custom);
        Ok(r)
    }

    /// Every rule name (built-in first), as used in counts and masks.
    pub fn rule_names(&self) -> &[String] {
        &self.names
    }

    /// Redacts a whole buffer; the same result as streaming it in any chunking.
    pub fn redact(&self, bytes: &[u8]) -> (Vec<u8>, RedactionCounts) {
        let mut out = bytes.to_vec();
        let mut tally = vec![0; self.names.len()];
        let mut scratch = Scratch::default();
        for seg in segments(bytes) {
            self.redact_segment(&mut out[seg.0..seg.1], &mut scratch, &mut tally);
        }
        let mut counts = RedactionCounts::default();
        counts.drain_tally(&self.names, &mut tally);
        (out, counts)
    }

    /// Every match in `bytes`, in order of position (line by line). Empty on
    /// correctly redacted output.
    pub fn find(&self, bytes: &[u8]) -> Vec<Finding> {
        let mut spans = Vec::new();
        let mut out = Vec::new();
        for (s, e) in segments(bytes) {
            spans.clear();
            self.spans(&bytes[s..e], &mut spans);
            spans.sort_unstable();
            out.extend(spans.iter().map(|sp| Finding {
                rule: self.names[sp.rule].clone(),
                start: s + sp.start,
                end: s + sp.end,
            }));
        }
        out
    }

    /// A streaming redactor over this engine.
    pub fn stream(self: &std::sync::Arc<Self>) -> RedactStream {
        RedactStream {
            redactor: self.clone(),
            carry: Vec::new(),
            counts: RedactionCounts::default(),
            tally: vec![0; self.names.len()],
            scratch: Scratch::default(),
            check: false,
            leak: None,
            emitted: 0,
        }
    }

    /// Masks every match in `seg` until none is left: a mask can expose a match that
    /// was not one before (in `bob@example.com(415) 555-0123` the phone only starts
    /// a number once the email before it ends in `]`), so a masked segment is
    /// scanned again and its new matches masked, up to [`MAX_PASSES`] passes. Returns
    /// whether a match is still there — one that no pass could remove (it lies on
    /// masks only) or one left after the last pass; [`RedactStream::check_leaks`]
    /// reports it.
    ///
    /// A pass after the first scans only the windows around the masks the pass
    /// before wrote (see [`Redactor::rescan`]), which finds exactly what a scan of
    /// the whole segment would find.
    fn redact_segment(&self, seg: &mut [u8], scratch: &mut Scratch, tally: &mut [u64]) -> bool {
        scratch.spans.clear();
        self.spans(seg, &mut scratch.spans);
        for _ in 0..MAX_PASSES {
            if scratch.spans.is_empty() {
                return false;
            }
            if !self.mask_spans(seg, &mut scratch.spans, tally, &mut scratch.runs) {
                // Every match lies on masks already: another pass would find it again.
                return true;
            }
            self.rescan(seg, scratch);
        }
        !scratch.spans.is_empty()
    }

    /// Every match in `seg` after the masks in `scratch.runs` were written, into
    /// `scratch.spans` — the same spans as `self.spans(seg)`, found by scanning only
    /// the windows around the masks (built-in rules only; with tenant rules, whose
    /// patterns may span anything, the whole segment is scanned).
    ///
    /// Why the windows suffice: the segment before the masks (`S`) was scanned
    /// whole and every match in it lies inside a mask. A window reaches from a mask
    /// out to the nearest *cut* on each side (see [`cut_at`]): a boundary that no
    /// match and no scanner token (number token, email, IPv6 token, key word and its
    /// value) contains, in `S` or in the masked segment, and at which every scanner
    /// cursor is behind the boundary. Between two windows the bytes are unchanged,
    /// no scanner there reads past the cuts, and each scanner enters the stretch in
    /// the same state as in the scan of `S`, which found nothing there; inside a
    /// window, a scan started at its left cut (with the whole segment as haystack,
    /// so look-ahead and `\b` see real context) does exactly what the whole scan
    /// does. The property test `rescanning_windows_equals_rescanning_the_segment`
    /// checks this against whole rescans.
    fn rescan(&self, seg: &[u8], scratch: &mut Scratch) {
        scratch.spans.clear();
        if self.custom.is_some() {
            self.spans(seg, &mut scratch.spans);
            return;
        }
        rescan_windows(seg, &scratch.runs, &mut scratch.windows);
        for &(from, to) in &scratch.windows {
            self.builtin_spans_in(seg, from, to, &mut scratch.spans);
        }
    }

    /// Masks the union of `spans` in `seg`; the first span of each merged run names
    /// it and is counted when its mask changes a byte. Returns whether a byte
    /// changed; `runs` gets the `(start, end)` of every merged run (all of them, so
    /// that every match of the scan lies in one: the windows of `rescan` rely on it).
    fn mask_spans(
        &self,
        seg: &mut [u8],
        spans: &mut [Span],
        tally: &mut [u64],
        runs: &mut Vec<(usize, usize)>,
    ) -> bool {
        spans.sort_unstable_by_key(|s| (s.start, std::cmp::Reverse(s.end), s.rule));
        runs.clear();
        let mut changed = false;
        let mut i = 0;
        while i < spans.len() {
            let first = spans[i];
            let mut end = first.end;
            let mut j = i + 1;
            while j < spans.len() && spans[j].start < end {
                end = end.max(spans[j].end);
                j += 1;
            }
            let run_changed = write_mask(&mut seg[first.start..end], &self.labels[first.rule]);
            if run_changed {
                tally[first.rule] += 1;
                changed = true;
            }
            runs.push((first.start, end));
            i = j;
        }
        changed
    }

    /// All matches of every rule in one line-free segment.
    fn spans(&self, seg: &[u8], out: &mut Vec<Span>) {
        self.builtin_spans(seg, out);
        self.custom_spans(seg, out);
    }

    fn custom_spans(&self, seg: &[u8], out: &mut Vec<Span>) {
        if let Some(custom) = &self.custom {
            for m in custom.find_iter(seg) {
                out.push(Span {
                    start: m.start(),
                    end: m.end(),
                    rule: BUILTIN_RULES.len() + m.pattern().as_usize(),
                });
            }
        }
    }

    /// The end of the match of a number rule anchored at `at` (within `window`
    /// bytes): what `anchored_at` with the same pattern as a `Regex` gives.
    fn number_at_dfa(dfa: &NumberDfa, seg: &[u8], at: usize, window: usize) -> Option<usize> {
        let end = seg.len().min(at + window);
        let input = Input::new(seg).range(at..end).anchored(Anchored::Yes);
        // A dense DFA only fails on a quit byte or a size limit; ours have neither.
        dfa.try_search_fwd(&input)
            .ok()
            .flatten()
            .map(|m| m.offset())
    }

    fn anchored_at(re: &Regex, seg: &[u8], at: usize, window: usize) -> Option<usize> {
        let end = seg.len().min(at + window);
        // The span keeps the whole segment as haystack so `\b` sees real context.
        let input = Input::new(seg).range(at..end).anchored(Anchored::Yes);
        re.search(&input).map(|m| m.end())
    }

    /// The built-in rules in one pass over the segment, 64 bytes at a time: the
    /// byte classes of a block (see `byteclass`) give the candidate positions of
    /// each scanner as bits — numbers (a digit at a word start, or `+`/`(` before a
    /// digit), key words (a word start on a letter that can begin one), `@` and
    /// `:` — and only those positions are visited. Each scanner keeps its own
    /// cursor, so a match of one never hides a match of another; the union of all
    /// spans is masked. The result equals the byte-by-byte scanners
    /// (`builtin_spans_reference`, property-tested).
    fn builtin_spans(&self, seg: &[u8], out: &mut Vec<Span>) {
        self.builtin_spans_in(seg, 0, seg.len(), out);
    }

    /// [`Redactor::builtin_spans`] for the candidates in `seg[from..to]` only, as a
    /// scan of the whole segment that reaches `from` with every cursor behind it
    /// would find them (the caller's windows guarantee that; see `rescan`).
    fn builtin_spans_in(&self, seg: &[u8], from: usize, to: usize, out: &mut Vec<Span>) {
        let n = seg.len();
        let mut cur = Cursors::default();
        let mut prev_word = u64::from(from > 0 && is_word(seg[from - 1]));
        // Colons seen, whether two were adjacent, and whether the last byte of the
        // previous block was one. An IPv6 token `ipv6_at` accepts needs `::` or at
        // least seven colons, so a stretch with fewer colons and no two adjacent
        // has none (every log timestamp's `12:34:56` was a token scan both ways
        // before this test; the tokens of candidates here stay inside the stretch,
        // see `rescan`). IPv6 candidates are visited after the blocks: the IPv6
        // scanner has its own cursor and reads nothing the others write, so it
        // finds the same spans.
        let (mut colons, mut double, mut colon_carry) = (0u32, false, 0u64);
        // The colon masks of the first blocks, to visit them afterwards.
        let mut colon_masks = [0u64; 8];
        let mut base = from;
        while base < to {
            let end = to.min(base + 64);
            let c = crate::byteclass::classify(&seg[base..end]);
            let last = end - base - 1;
            let starts = c.word & !((c.word << 1) | prev_word);
            prev_word = (c.word >> last) & 1;
            let mut bits = c.at;
            while bits != 0 {
                let p = base + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                self.email_at(seg, p, &mut cur.email, out);
            }
            if let Some(m) = colon_masks.get_mut((base - from) / 64) {
                *m = c.colon;
            }
            colons += c.colon.count_ones();
            double |= c.colon & ((c.colon << 1) | colon_carry) != 0;
            colon_carry = (c.colon >> last) & 1;
            let plus_paren = c.plus_paren;
            let next_digit =
                (c.digit >> 1) | (u64::from(end < n && seg[end].is_ascii_digit()) << last);
            // Bytes no number token holds (letters, `_`, `@`, `:`), for
            // `hopeless_number`.
            let stop = (c.word & !c.digit) | c.at | c.colon;
            // Digits with a stop byte fewer than 7 bytes ahead are the short case of
            // `hopeless_number`: dropped for the whole block at once instead of one
            // candidate at a time — most of every timestamp's fields.
            let mut bits = (starts & c.digit & !stop_within_7(stop)) | (plus_paren & next_digit);
            while bits != 0 {
                let i = bits.trailing_zeros();
                let p = base + i as usize;
                bits &= bits - 1;
                if p >= cur.number && !hopeless_number(c.digit, stop, i) {
                    cur.number = self.number_start(seg, p, out);
                }
            }
            let mut bits = starts & !c.digit;
            while bits != 0 {
                let p = base + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                // `keyword_prefix` in two steps: the first letter alone rules out
                // most words, before the second byte is read.
                let seconds = keyword_seconds(seg[p]);
                if seconds != 0
                    && p >= cur.keyword
                    && p + 1 < n
                    && seconds & LETTER_BIT[usize::from(seg[p + 1])] != 0
                    && let Some(e) = self.keyword_at(seg, p, out)
                {
                    cur.keyword = e;
                }
            }
            base = end;
        }
        if double || colons >= 7 {
            let kept = (colon_masks.len() * 64).min(to - from);
            for (k, &mask) in colon_masks.iter().enumerate() {
                let mut bits = mask;
                while bits != 0 {
                    let p = from + 64 * k + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    Self::ipv6_at(seg, p, &mut cur.ipv6, out);
                }
            }
            for i in memchr::memchr_iter(b':', &seg[from + kept..to]) {
                Self::ipv6_at(seg, from + kept + i, &mut cur.ipv6, out);
            }
        }
    }

    /// A number candidate at `p` (a digit at a word start, or `+`/`(` before a
    /// digit); returns the new number cursor.
    fn number_start(&self, seg: &[u8], p: usize, out: &mut Vec<Span>) -> usize {
        if !seg[p].is_ascii_digit() && p > 0 && is_word(seg[p - 1]) {
            // `a+1`, `f(2`: the word after is not a number start.
            let mut q = p + 1;
            while q < seg.len() && is_word(seg[q]) {
                q += 1;
            }
            return q;
        }
        // Every number rule needs a token of at least 7 bytes (`1.2.3.4`; 10 digits;
        // `+` and 8 digits), all digits or separators. A shorter token has no match,
        // and neither has any token that starts inside it (a suffix has no more
        // digits or dots), so the cursor may stay at `p + 1` instead of the token's
        // end — the scan to that end, at every timestamp field, is what this saves.
        if !seg
            .get(p..p + 7)
            .is_some_and(|w| w.iter().all(|&b| NUMBER_BYTE[usize::from(b)]))
        {
            return p + 1;
        }
        self.number_at(seg, p, out).max(p + 1)
    }

    /// An email whose `@` is at `at`; `done` is the end of the last email found.
    fn email_at(&self, seg: &[u8], at: usize, done: &mut usize, out: &mut Vec<Span>) {
        if at < *done {
            return;
        }
        let mut s = at;
        while s > *done && at - s < 64 && is_email_local(seg[s - 1]) {
            s -= 1;
        }
        if s == at {
            return;
        }
        if let Some(e) = email_end(seg, s, at, seg.len().min(s + 400)) {
            out.push(Span {
                start: s,
                end: e,
                rule: EMAIL,
            });
            *done = e;
        }
    }

    /// The scanners before the block classes (kept as the reference the fast path
    /// is tested against): `memchr` for `@` and `:`, and a byte-by-byte word walk.
    #[cfg(test)]
    fn builtin_spans_reference(&self, seg: &[u8], out: &mut Vec<Span>) {
        let mut done = 0;
        for at in memchr::memchr_iter(b'@', seg) {
            self.email_at(seg, at, &mut done, out);
        }
        self.word_spans(seg, out);
        let mut done = 0;
        for at in memchr::memchr_iter(b':', seg) {
            Self::ipv6_at_reference(seg, at, &mut done, out);
        }
    }

    /// `number_at` as it was: one byte per step.
    #[cfg(test)]
    fn number_at_reference(&self, seg: &[u8], s: usize, out: &mut Vec<Span>) -> usize {
        let n = seg.len();
        let b = seg[s];
        let mut j = s + 1;
        let mut digits = usize::from(b.is_ascii_digit());
        let mut dots = 0;
        while j < n {
            let c = seg[j];
            if c.is_ascii_digit() {
                digits += 1;
                j += 1;
            } else if matches!(c, b' ' | b'.' | b'-' | b'(' | b')')
                && j + 1 < n
                && (seg[j + 1].is_ascii_digit() || (c == b')' && seg[j + 1] == b' '))
            {
                dots += usize::from(c == b'.');
                j += 1;
            } else {
                break;
            }
        }
        let plausible = digits >= 10 || (dots >= 3 && digits >= 4) || (b == b'+' && digits >= 8);
        if plausible {
            self.number_token(seg, s, j, digits, dots, out);
        }
        j
    }

    /// `ipv6_at` as it was: closures and three passes over the token.
    #[cfg(test)]
    fn ipv6_at_reference(seg: &[u8], at: usize, done: &mut usize, out: &mut Vec<Span>) {
        if at < *done {
            return;
        }
        let is_v6 = |b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.';
        let mut s = at;
        while s > *done && at - s < 45 && (seg[s - 1].is_ascii_hexdigit() || seg[s - 1] == b':') {
            s -= 1;
        }
        let mut e = at + 1;
        while e < seg.len() && e - s < 60 && is_v6(seg[e]) {
            e += 1;
        }
        *done = e;
        while e > at + 1 && seg[e - 1] == b'.' {
            e -= 1;
        }
        let tok = &seg[s..e];
        let colons = tok.iter().filter(|&&c| c == b':').count();
        let double = tok.windows(2).any(|w| w == b"::");
        if colons < 2 || !(double || colons >= 7) {
            return;
        }
        if !tok.iter().any(u8::is_ascii_hexdigit) {
            return;
        }
        if (s > 0 && is_word(seg[s - 1])) || (e < seg.len() && is_word(seg[e])) {
            return;
        }
        let ok = std::str::from_utf8(tok)
            .ok()
            .is_some_and(|t| Ipv6Addr::from_str(t).is_ok());
        if ok {
            out.push(Span {
                start: s,
                end: e,
                rule: IPV6,
            });
        }
    }

    /// One pass over the words of a segment for the two word-anchored scanners:
    /// numbers (cards, phones, IPv4 — they start at a digit, `+` or `(` with no
    /// word byte before it) and keywords (bearer tokens, API keys — they start at a
    /// word start). Each scanner keeps its own cursor (`num_until`, `kw_until`), so
    /// a match of one never hides a match of the other; the union of both is
    /// masked. Runs with too few digits to be any number rule are skipped without
    /// running a regex, which keeps timestamps and ids cheap.
    #[cfg(test)]
    fn word_spans(&self, seg: &[u8], out: &mut Vec<Span>) {
        let n = seg.len();
        let mut p = 0;
        let mut num_until = 0;
        let mut kw_until = 0;
        while p < n {
            let b = seg[p];
            if !is_word(b) {
                if (b == b'+' || b == b'(')
                    && p >= num_until
                    && p + 1 < n
                    && seg[p + 1].is_ascii_digit()
                {
                    if p > 0 && is_word(seg[p - 1]) {
                        // `a+1`, `f(2`: the word after is not a number start.
                        let mut q = p + 1;
                        while q < n && is_word(seg[q]) {
                            q += 1;
                        }
                        num_until = q;
                    } else {
                        num_until = self.number_at_reference(seg, p, out).max(p + 1);
                    }
                }
                p += 1;
                continue;
            }
            // `p` is a word start: the loop only stops on word bytes here.
            if b.is_ascii_digit() && p >= num_until {
                num_until = self.number_at_reference(seg, p, out).max(p + 1);
            }
            if p >= kw_until
                && p + 1 < n
                && keyword_prefix(b, seg[p + 1])
                && let Some(e) = self.keyword_at(seg, p, out)
            {
                kw_until = e;
            }
            p += 1;
            while p < n && is_word(seg[p]) {
                p += 1;
            }
        }
    }

    /// The number token starting at `s` (digits joined by single separators): tries
    /// the number rules in it when it has enough digits; returns its end.
    fn number_at(&self, seg: &[u8], s: usize, out: &mut Vec<Span>) -> usize {
        let n = seg.len();
        let b = seg[s];
        let mut j = s + 1;
        let mut digits = usize::from(b.is_ascii_digit());
        let mut dots = 0;
        loop {
            // A run of digits at once, then at most one separator before a digit.
            let run = crate::byteclass::digit_run(&seg[j..]);
            digits += run;
            j += run;
            let Some(&c) = seg.get(j) else { break };
            if matches!(c, b' ' | b'.' | b'-' | b'(' | b')')
                && j + 1 < n
                && (seg[j + 1].is_ascii_digit() || (c == b')' && seg[j + 1] == b' '))
            {
                dots += usize::from(c == b'.');
                j += 1;
            } else {
                break;
            }
        }
        let plausible = digits >= 10 || (dots >= 3 && digits >= 4) || (b == b'+' && digits >= 8);
        if plausible {
            self.number_token(seg, s, j, digits, dots, out);
        }
        j
    }

    /// A bearer token or API key starting at the word start `at`; returns its end.
    fn keyword_at(&self, seg: &[u8], at: usize, out: &mut Vec<Span>) -> Option<usize> {
        // Most words that share two letters with a key word (`session`, `payment`,
        // `to`) differ in the third byte: one look-up instead of an automaton run.
        if !keyword_third(seg[at], seg.get(at + 2).copied()) {
            return None;
        }
        let input = aho_corasick::Input::new(seg)
            .range(at..)
            .anchored(aho_corasick::Anchored::Yes);
        // An anchored DFA built for anchored searches cannot fail.
        let m = self.keywords.try_find(&input).ok()??;
        let (e, rule) = if m.pattern().as_usize() == 0 {
            (bearer_end(seg, at, seg.len().min(at + 8192))?, BEARER)
        } else {
            (Self::anchored_at(&self.api_key, seg, at, 8192)?, API_KEY)
        };
        out.push(Span {
            start: at,
            end: e,
            rule,
        });
        Some(e)
    }

    /// The longest end `e <= greedy` at a digit-group boundary such that `p..e` is a
    /// Luhn-valid card. The card pattern is greedy: in `4111 1111 1111 1111 4` it takes
    /// the trailing group too and the 17 digits fail Luhn, yet the first 16 digits are a
    /// card that must not survive (found by the chunking proptest).
    fn luhn_end(seg: &[u8], p: usize, greedy: usize) -> Option<usize> {
        (p + 1..=greedy).rev().find(|&e| {
            let at_boundary = e == greedy || matches!(seg[e], b' ' | b'-');
            at_boundary && seg[e - 1].is_ascii_digit() && luhn_ok(&seg[p..e])
        })
    }

    /// Tries card, phone and IPv4 at each possible start inside the token `s..j`.
    /// `digits` and `dots` are upper bounds for every sub-start, so rules that need
    /// more digits (card ≥ 13, phone ≥ 7) or dots (IPv4: 3) are not even tried.
    fn number_token(
        &self,
        seg: &[u8],
        s: usize,
        j: usize,
        digits: usize,
        dots: usize,
        out: &mut Vec<Span>,
    ) {
        let try_card = digits >= 13;
        let try_phone = digits >= 7;
        let try_ipv4 = dots >= 3;
        let mut p = s;
        while p < j {
            let c = seg[p];
            let boundary = p == 0 || !is_word(seg[p - 1]);
            let candidate =
                boundary && (c.is_ascii_digit() || ((c == b'+' || c == b'(') && p + 1 < j));
            if candidate {
                let hit = try_card
                    .then(|| Self::number_at_dfa(&self.card, seg, p, 64))
                    .flatten()
                    .and_then(|g| Self::luhn_end(seg, p, g))
                    .map(|e| (e, CARD))
                    .or_else(|| {
                        (try_phone && phone_may_start(seg, p))
                            .then(|| Self::number_at_dfa(&self.phone, seg, p, 64))
                            .flatten()
                            .map(|e| (e, PHONE))
                    })
                    .or_else(|| {
                        try_ipv4
                            .then(|| Self::number_at_dfa(&self.ipv4, seg, p, 24))
                            .flatten()
                            .map(|e| (e, IPV4))
                    });
                if let Some((e, rule)) = hit {
                    out.push(Span {
                        start: p,
                        end: e,
                        rule,
                    });
                    p = e;
                    continue;
                }
            }
            p += 1;
        }
    }

    /// An IPv6 address around the `:` at `at`; `done` is the end of the last
    /// token examined.
    fn ipv6_at(seg: &[u8], at: usize, done: &mut usize, out: &mut Vec<Span>) {
        if at < *done {
            return;
        }
        // One pass each way that also counts the colons, notices a `::` and any hex
        // digit (trailing dots, trimmed below, change none of the three).
        let (mut colons, mut double, mut hex, mut dot) = (1, false, false, false);
        let mut right = COLON;
        let mut s = at;
        while s > *done && at - s < 45 {
            let class = V6[usize::from(seg[s - 1])];
            if class & (HEX | COLON) == 0 {
                break;
            }
            colons += usize::from(class == COLON);
            double |= class == COLON && right == COLON;
            hex |= class == HEX;
            right = class;
            s -= 1;
        }
        let mut left = COLON;
        let mut e = at + 1;
        while e < seg.len() && e - s < 60 {
            let class = V6[usize::from(seg[e])];
            if class == 0 {
                break;
            }
            colons += usize::from(class == COLON);
            double |= class == COLON && left == COLON;
            hex |= class == HEX;
            dot |= class == DOT;
            left = class;
            e += 1;
        }
        *done = e;
        // Trailing sentence punctuation is not part of an address.
        while e > at + 1 && seg[e - 1] == b'.' {
            e -= 1;
        }
        let tok = &seg[s..e];
        if colons < 2 || !(double || colons >= 7) || !hex {
            return;
        }
        if (s > 0 && is_word(seg[s - 1])) || (e < seg.len() && is_word(seg[e])) {
            return;
        }
        // Without a dot (the left walk takes none) no group can be dotted IPv4.
        if is_ipv6_with(tok, dot) {
            out.push(Span {
                start: s,
                end: e,
                rule: IPV6,
            });
        }
    }
}

/// Whether the phone rule can match at `p`: from a digit only its first branch
/// can, which starts with exactly three digits and a space, dot or dash
/// (`\d{3}[ .\-]`); `+` and `(` starts are always tried. Saves the DFA run at every
/// IPv4 address (`10.1.2.3`) and long digit run.
#[inline]
fn phone_may_start(seg: &[u8], p: usize) -> bool {
    match seg.get(p..p + 4) {
        Some([a, b, c, sep]) if a.is_ascii_digit() => {
            b.is_ascii_digit() && c.is_ascii_digit() && matches!(sep, b' ' | b'.' | b'-')
        }
        Some(_) => true,
        None => !seg[p].is_ascii_digit(),
    }
}

/// Bit `i` set iff one of bits `i..=i + 6` of `stop` is: the candidates of a block
/// whose number token ends within 7 bytes, the short case of [`hopeless_number`]
/// (`r < 7`), for all 64 positions in six instructions.
#[inline(always)]
fn stop_within_7(stop: u64) -> u64 {
    let near = stop | (stop >> 1);
    let near = near | (near >> 2);
    near | (near >> 3)
}

/// Whether the number candidate at bit `i` of a block is a digit whose number
/// token cannot match any number rule, told from the block's masks alone: `digit`
/// and `stop` (bytes no number token holds: letters, `_`, `@`, `:`). When a stop
/// byte lies `r` bytes ahead, the token ends before it and has at most the block's
/// digits before the stop byte and the rest as separators, which must reach 10
/// digits, or 3 dots and 4 digits (see `number_at`). With `r < 7` the token is
/// shorter than any number rule needs (what [`Redactor::number_start`] checks byte
/// by byte) and the count says so too (fewer than 4 digits, or at most 2
/// separators); the block scanner drops those candidates for a whole block first
/// ([`stop_within_7`]). Every log timestamp's fields (`2025-12-10T18:04:05.123Z`) end
/// here without a byte read. Skipping such a candidate finds the same spans:
/// `number_start` would find none in the token, nor in any token that starts
/// inside it (a suffix has no more digits or dots), and a later candidate is
/// visited either way. `+` and `(` candidates, and digits with no stop byte ahead
/// in the block, are left to `number_start`.
#[inline(always)]
fn hopeless_number(digit: u64, stop: u64, i: u32) -> bool {
    let ahead = stop >> i;
    if ahead == 0 || (digit >> i) & 1 == 0 {
        return false;
    }
    let r = ahead.trailing_zeros();
    // `r < 64`: a stop bit lies ahead.
    let digits = ((digit >> i) & ((1u64 << r) - 1)).count_ones();
    digits < 10 && (r - digits < 3 || digits < 4)
}

/// Whether `t` is an IPv6 address as `std`'s `Ipv6Addr::from_str` reads it: its
/// grammar ported to bytes (property-tested against it; std's parser, with a UTF-8
/// check and closures per digit, cost about a thousand instructions per token). Up
/// to eight groups of 1–4 hex digits; `::` (at most once, for one or more zero
/// groups) when there are fewer; the last two groups may be a dotted IPv4 address,
/// but not before `::`; the whole token must be read. `dotted`: whether `t` may hold
/// a `.` (`true` when unsure) — without one no group can be an IPv4 address, and the
/// IPv4 attempt std makes at every group is skipped.
fn is_ipv6_with(t: &[u8], dotted: bool) -> bool {
    let mut p = 0;
    let (head, head_v4) = v6_groups(t, &mut p, 8, dotted);
    if head == 8 {
        return p == t.len();
    }
    // Two byte tests: a two-byte slice comparison is a `memcmp` call.
    if head_v4 || t.get(p) != Some(&b':') || t.get(p + 1) != Some(&b':') {
        return false;
    }
    p += 2;
    v6_groups(t, &mut p, 8 - (head + 1), dotted);
    p == t.len()
}

/// [`is_ipv6_with`], telling `dotted` from the bytes (the tests' reference form).
#[cfg(test)]
fn is_ipv6(t: &[u8]) -> bool {
    is_ipv6_with(t, t.contains(&b'.'))
}

/// std's `read_groups`: up to `limit` groups, `:` between them, where the last two
/// may be an IPv4 address (tried first at each group but the last). Advances `p`
/// past what it read; returns the groups read and whether they ended in IPv4.
fn v6_groups(t: &[u8], p: &mut usize, limit: usize, dotted: bool) -> (usize, bool) {
    for i in 0..limit {
        let sep = usize::from(i > 0);
        if i > 0 && t.get(*p) != Some(&b':') {
            return (i, false);
        }
        let rest = &t[*p + sep..];
        if dotted
            && i + 1 < limit
            && let Some(n) = ipv4_len(rest)
        {
            *p += sep + n;
            return (i + 2, true);
        }
        // More than four digits fail the group (std's `read_number`), as do none.
        let digits = rest.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if !(1..=4).contains(&digits) {
            return (i, false);
        }
        *p += sep + digits;
    }
    (limit, false)
}

/// The length of the dotted IPv4 address `rest` starts with, as std's
/// `read_ipv4_addr` reads it: four decimal octets of 1–3 digits, at most 255,
/// without a leading zero.
fn ipv4_len(rest: &[u8]) -> Option<usize> {
    let mut p = 0;
    for i in 0..4 {
        if i > 0 {
            if rest.get(p) != Some(&b'.') {
                return None;
            }
            p += 1;
        }
        let d = rest[p..].iter().take_while(|b| b.is_ascii_digit()).count();
        let octet = &rest[p..p + d];
        let value = octet
            .iter()
            .try_fold(0u8, |v, &b| v.checked_mul(10)?.checked_add(b - b'0'));
        if !(1..=3).contains(&d) || value.is_none() || (d > 1 && octet[0] == b'0') {
            return None;
        }
        p += d;
    }
    Some(p)
}

/// Bytes a number token can hold: digits, its separators (` . - ( )`) and `+`.
static NUMBER_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_digit() || matches!(b, b' ' | b'.' | b'-' | b'(' | b')' | b'+');
        i += 1;
    }
    t
};

const HEX: u8 = 1;
const COLON: u8 = 2;
const DOT: u8 = 4;

/// The bytes of an IPv6 token: hex digits, `:` and `.` (dotted IPv4 tail).
static V6: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if b.is_ascii_hexdigit() {
            HEX
        } else if b == b':' {
            COLON
        } else if b == b'.' {
            DOT
        } else {
            0
        };
        i += 1;
    }
    t
};

/// Second letters (bit `c - b'a'`) that can follow each first letter of a key word,
/// indexed by the byte: `be`, `ap`/`ak`, `to`, `se`/`sk`, `pa`/`pk`, `rk`,
/// `gh`/`gi`, `xo`, in either case (see the keyword list in [`Redactor::builtin`]).
static KEYWORD_PAIRS: [u32; 256] = {
    const fn bit(c: u8) -> u32 {
        1 << (c - b'a')
    }
    let mut t = [0u32; 256];
    let pairs: [(u8, u32); 8] = [
        (b'b', bit(b'e')),
        (b'a', bit(b'p') | bit(b'k')),
        (b't', bit(b'o')),
        (b's', bit(b'e') | bit(b'k')),
        (b'p', bit(b'a') | bit(b'k')),
        (b'r', bit(b'k')),
        (b'g', bit(b'h') | bit(b'i')),
        (b'x', bit(b'o')),
    ];
    let mut i = 0;
    while i < pairs.len() {
        let (first, seconds) = pairs[i];
        t[first as usize] = seconds;
        t[first.to_ascii_uppercase() as usize] = seconds;
        i += 1;
    }
    t
};

/// The class of each byte in [`KEYWORD_THIRDS`]: letters (either case) 0–25, `_`
/// 26, `-` 27, any other byte 31.
static THIRD_CLASS: [u8; 256] = {
    let mut t = [31u8; 256];
    let mut i = 0;
    while i < 256 {
        let l = (i as u8).to_ascii_lowercase();
        t[i] = match l {
            b'a'..=b'z' => l - b'a',
            b'_' => 26,
            b'-' => 27,
            _ => 31,
        };
        i += 1;
    }
    t
};

/// The third bytes ([`THIRD_CLASS`] bits) of the key words, by the class of their
/// first letter (the second is checked by [`KEYWORD_PAIRS`] before): a word whose
/// third byte no key word with its first letter has cannot start one.
static KEYWORD_THIRDS: [u32; 32] = {
    let mut t = [0u32; 32];
    let mut i = 0;
    while i < KEYWORDS.len() {
        let k = KEYWORDS[i].as_bytes();
        t[THIRD_CLASS[k[0] as usize] as usize] |= 1 << THIRD_CLASS[k[2] as usize];
        i += 1;
    }
    t
};

/// Whether some key word starts with the letter `first` and has `third` as its
/// third byte (ASCII case-insensitive; `None`: the segment ends before it).
#[inline]
fn keyword_third(first: u8, third: Option<u8>) -> bool {
    let third = third.map_or(31, |c| THIRD_CLASS[usize::from(c)]);
    KEYWORD_THIRDS[usize::from(THIRD_CLASS[usize::from(first)])] & (1 << third) != 0
}

/// The bit of each letter (either case) in [`KEYWORD_PAIRS`]' masks; 0 for every
/// other byte.
static LETTER_BIT: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut c = b'a';
    while c <= b'z' {
        t[c as usize] = 1 << (c - b'a');
        t[c.to_ascii_uppercase() as usize] = 1 << (c - b'a');
        c += 1;
    }
    t
};

/// The second letters ([`LETTER_BIT`] bits) a key word starting with the byte `a`
/// can have; 0 when none starts with it. The block scanner tests this first at
/// every word start on a letter (most words, `INFO`, `user`, `worker`, end here)
/// and then `seconds & LETTER_BIT[b]` — [`keyword_prefix`], exhaustively tested.
#[inline(always)]
fn keyword_seconds(a: u8) -> u32 {
    KEYWORD_PAIRS[usize::from(a)]
}

/// Whether a keyword can start with the bytes `a b` (ASCII case-insensitive): two
/// look-ups, no case folding. The block scanner inlines it in two steps; the
/// byte-by-byte reference scanner and the exhaustive test call it.
#[cfg(test)]
fn keyword_prefix(a: u8, b: u8) -> bool {
    keyword_seconds(a) & LETTER_BIT[usize::from(b)] != 0
}

/// Bytes that no built-in match and no scanner token contains: everything but
/// letters, digits and `. _ % + - @ ( ) : ~ / = " '` space and tab (the bytes of
/// emails, number tokens, IPv6 tokens, key words and their values). No scanner
/// reads across one of them: each stops on the first byte it cannot take.
static HARD: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = !(b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'.' | b'_'
                    | b'%'
                    | b'+'
                    | b'-'
                    | b'@'
                    | b'('
                    | b')'
                    | b':'
                    | b'~'
                    | b'/'
                    | b'='
                    | b'"'
                    | b'\''
                    | b' '
                    | b'\t'
            ));
        i += 1;
    }
    t
};

/// [`HARD`] bytes, space and tab: the bytes before a boundary that can make it a
/// cut in a left walk (see [`rescan_windows`]).
static SPACE_OR_HARD: [bool; 256] = {
    let mut t = HARD;
    t[b' ' as usize] = true;
    t[b'\t' as usize] = true;
    t
};

/// Whether the boundary before `seg[c]` is a *cut* for a rescan after masks were
/// written over `runs` (sorted, disjoint): no match and no scanner token contains
/// the bytes on both sides of it, before or after the masking, and no scanner
/// reads across it any byte the masking changed. The ends of the segment are cuts,
/// and so is each side of a [`HARD`] byte outside the masks. So is a space or tab
/// before a letter (`ok user`), both outside the masks, unless the byte before the
/// space could continue a match through it: a space, tab, `:` or `=` (a key word's
/// value may follow), or the end of the word `bearer` (a bearer token may follow).
/// No number token or number rule takes a space that is not followed by a digit or
/// `(`, and no other rule takes a space at all. In the segment before masking, a
/// match containing the space would have been masked, so the space would lie in a
/// mask.
fn cut_at(seg: &[u8], c: usize, in_run: impl Fn(usize) -> bool) -> bool {
    if c == 0 || c >= seg.len() {
        return true;
    }
    let (x, y) = (seg[c - 1], seg[c]);
    if (HARD[usize::from(x)] && !in_run(c - 1)) || (HARD[usize::from(y)] && !in_run(c)) {
        return true;
    }
    if !matches!(x, b' ' | b'\t') || !y.is_ascii_alphabetic() || in_run(c - 1) || in_run(c) {
        return false;
    }
    let Some(&w) = seg.get(c.wrapping_sub(2)) else {
        return true;
    };
    if matches!(w, b' ' | b'\t' | b':' | b'=') {
        return false;
    }
    // `bearer` ending right before the space may take it and the letter as a token
    // (a mask ends in `]` or `*`, so these bytes hold no mask byte).
    !(w.eq_ignore_ascii_case(&b'r')
        && c >= 7
        && seg[c - 7..c - 1].eq_ignore_ascii_case(b"bearer")
        && (c == 7 || !is_word(seg[c - 8])))
}

/// The windows a rescan must cover after masks were written over `runs` (sorted,
/// disjoint, within `seg`): each run widened to the nearest cut on both sides
/// ([`cut_at`]), overlapping or touching windows merged, into `windows`.
fn rescan_windows(seg: &[u8], runs: &[(usize, usize)], windows: &mut Vec<(usize, usize)>) {
    windows.clear();
    let mut k = 0;
    while k < runs.len() {
        let (a, mut b) = runs[k];
        k += 1;
        // Left: bytes from the end of the last window up to `a` lie in no run.
        let floor = windows.last().map_or(0, |w| w.1);
        let mut from = a;
        while from > floor {
            // The byte after the boundary (`seg[from]`) lies in the run or is no
            // HARD byte (the step that passed it would have cut there), so a
            // boundary after a byte that is neither HARD nor a space or tab is no
            // cut: one look-up per byte of the word being walked.
            if SPACE_OR_HARD[usize::from(seg[from - 1])] && cut_at(seg, from, |p| p >= a) {
                break;
            }
            from -= 1;
        }
        // Right: bytes from `b` up to the next run's start lie in no run; a next
        // run reached before a cut joins this window.
        let mut to = b;
        loop {
            let next = runs.get(k).map_or(usize::MAX, |r| r.0);
            if to >= next {
                b = runs[k].1;
                to = to.max(b);
                k += 1;
                continue;
            }
            if cut_at(seg, to, |p| p < b || p >= next) {
                break;
            }
            to += 1;
        }
        match windows.last_mut() {
            Some(last) if from <= last.1 => last.1 = to,
            _ => windows.push((from, to)),
        }
    }
}

/// Fills `dst` with `label` minus its `]`, `*` padding and a closing `]`, or all `*`
/// when the label does not fit; returns whether a byte changed.
fn write_mask(dst: &mut [u8], label: &[u8]) -> bool {
    let n = dst.len();
    if n < label.len() {
        let changed = dst.iter().any(|&b| b != b'*');
        dst.fill(b'*');
        return changed;
    }
    let head = label.len() - 1;
    let (text, rest) = dst.split_at_mut(head);
    let (stars, close) = rest.split_at_mut(rest.len() - 1);
    // Byte loops, not a slice comparison: a few bytes, and `memcmp` is a call.
    let changed = text.iter().zip(&label[..head]).any(|(a, b)| a != b)
        || stars.iter().any(|&b| b != b'*')
        || close[0] != b']';
    text.copy_from_slice(&label[..head]);
    stars.fill(b'*');
    close[0] = b']';
    changed
}

/// Splits `bytes` into `(start, end)` ranges without newlines (over-long lines are cut
/// at a delimiter, see [`MAX_LINE`]).
fn segments(bytes: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= bytes.len() {
            return None;
        }
        let (s, e, next) = next_segment(bytes, pos);
        pos = next;
        Some((s, e))
    })
}

/// The segment starting at `pos` (`pos < bytes.len()`): `(start, end, next start)`.
#[inline]
fn next_segment(bytes: &[u8], pos: usize) -> (usize, usize, usize) {
    let rest = &bytes[pos..];
    let line_end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
    let (len, skip) = if line_end <= MAX_LINE {
        (line_end, usize::from(line_end < rest.len()))
    } else {
        (long_line_cut(&rest[..MAX_LINE]), 0)
    };
    (pos, pos + len, pos + len + skip)
}

fn long_line_cut(window: &[u8]) -> usize {
    window
        .iter()
        .rposition(|b| b"\"',;<>{}[]|".contains(b))
        .map_or(window.len(), |p| p + 1)
}

/// Streaming redaction: push chunks of any size, get redacted bytes out. Bytes after
/// the last newline are held back (up to [`MAX_LINE`]) so no match is split.
#[derive(Debug)]
pub struct RedactStream {
    redactor: std::sync::Arc<Redactor>,
    carry: Vec<u8>,
    counts: RedactionCounts,
    /// Matches per rule index not yet added to `counts` (no string per match).
    tally: Vec<u64>,
    scratch: Scratch,
    check: bool,
    leak: Option<Finding>,
    emitted: usize,
}

impl RedactStream {
    /// With `on`, the first match that redaction could not remove (by position) is
    /// kept for [`RedactStream::leak`].
    ///
    /// Redaction scans every masked segment (line) again and masks what a mask
    /// exposed, until a scan finds nothing; what can survive is a match lying
    /// entirely on masks (a tenant pattern that matches the masks themselves), or
    /// one still there after [`MAX_PASSES`] passes. This is exactly
    /// [`Redactor::find`] over the stream's output, segment by segment: a segment
    /// with no match was left untouched, and scanning the same bytes with the same
    /// rules finds nothing again. The check reuses redaction's last scan, so it
    /// costs nothing on segments redaction cleaned.
    #[must_use]
    pub fn check_leaks(mut self, on: bool) -> Self {
        self.check = on;
        self
    }

    /// The first match that survived redaction (only with [`RedactStream::check_leaks`]);
    /// offsets count from the start of the stream's output.
    pub fn leak(&self) -> Option<&Finding> {
        self.leak.as_ref()
    }

    /// Redacts what can be redacted of `carry + chunk` and appends it to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.carry.is_empty() {
            // Fast path: process the chunk in place in `out`.
            let tail_start = match memchr::memrchr(b'\n', chunk) {
                Some(nl) => nl + 1,
                None => 0,
            };
            let base = out.len();
            out.extend_from_slice(&chunk[..tail_start]);
            self.redact_into(out, base);
            self.carry.extend_from_slice(&chunk[tail_start..]);
        } else {
            let Some(nl) = memchr::memrchr(b'\n', chunk) else {
                self.carry.extend_from_slice(chunk);
                self.flush_long(out);
                return;
            };
            // Held-back bytes and the chunk's complete lines go straight to `out`
            // (copying the whole chunk into `carry` first cost a second copy).
            let base = out.len();
            out.extend_from_slice(&self.carry);
            out.extend_from_slice(&chunk[..=nl]);
            self.carry.clear();
            self.carry.extend_from_slice(&chunk[nl + 1..]);
            self.redact_into(out, base);
        }
        self.flush_long(out);
    }

    /// Redacts and emits whatever is held back; call once at the end.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let base = out.len();
        out.append(&mut self.carry);
        self.redact_into(out, base);
    }

    /// Matches per rule so far.
    pub fn counts(&self) -> &RedactionCounts {
        &self.counts
    }

    fn flush_long(&mut self, out: &mut Vec<u8>) {
        while self.carry.len() > MAX_LINE {
            let cut = long_line_cut(&self.carry[..MAX_LINE]);
            let base = out.len();
            out.extend_from_slice(&self.carry[..cut]);
            self.carry.drain(..cut);
            self.redact_into(out, base);
        }
    }

    fn redact_into(&mut self, out: &mut [u8], base: usize) {
        let region = &mut out[base..];
        self.redactor.redact_region(
            region,
            &mut self.scratch,
            &mut self.tally,
            self.check,
            self.emitted,
            &mut self.leak,
        );
        self.emitted += region.len();
        self.counts
            .drain_tally(&self.redactor.names, &mut self.tally);
    }
}

impl Redactor {
    /// Redacts `region` (whole segments: it starts where a segment starts and ends
    /// where one ends) segment by segment, adding matches to `tally`; with `check`,
    /// keeps the first match that redaction could not remove in `leak` (offsets plus
    /// `offset`). Redaction itself rescans every masked segment (see
    /// `redact_segment`), so the check costs nothing more. The one loop behind [`RedactStream`] and [`RegionTask`].
    fn redact_region(
        &self,
        region: &mut [u8],
        scratch: &mut Scratch,
        tally: &mut [u64],
        check: bool,
        offset: usize,
        leak: &mut Option<Finding>,
    ) {
        let mut pos = 0;
        while pos < region.len() {
            let (s, e, next) = next_segment(region, pos);
            pos = next;
            let seg = &mut region[s..e];
            let residual = self.redact_segment(seg, scratch, tally);
            if residual && check && leak.is_none() {
                let spans = &mut scratch.spans;
                spans.clear();
                self.spans(seg, spans);
                if let Some(sp) = spans.iter().min() {
                    let at = offset + s;
                    *leak = Some(Finding {
                        rule: self.names[sp.rule].clone(),
                        start: at + sp.start,
                        end: at + sp.end,
                    });
                }
            }
        }
    }
}

/// Cuts a byte stream into regions of whole segments (blocks of lines of at least
/// [`RegionSplitter::MIN_REGION`] bytes where the stream allows, and the same
/// over-long-line cuts as [`RedactStream`]), so that each region can be redacted on
/// its own — in parallel — with the same result as redacting the stream. Redaction
/// is line-local, so any cut at a segment boundary gives the same bytes (the
/// chunking property tests).
#[derive(Debug)]
pub(crate) struct RegionSplitter {
    carry: Vec<u8>,
    min_region: usize,
}

impl Default for RegionSplitter {
    fn default() -> Self {
        Self::with_min_region(Self::MIN_REGION)
    }
}

impl RegionSplitter {
    /// Regions shorter than this are held back while they can still grow, so a
    /// stream of tiny chunks does not become a task per chunk.
    pub(crate) const MIN_REGION: usize = 64 * 1024;

    /// A splitter that holds back regions shorter than `min_region` (tests use small
    /// values to cut often).
    pub(crate) fn with_min_region(min_region: usize) -> Self {
        RegionSplitter {
            carry: Vec::new(),
            min_region,
        }
    }

    /// Adds an owned `chunk` (as a blob store hands it over); calls `emit` with every
    /// region that is complete. Where the chunk alone fills a region, its bytes from
    /// its first line break to its last stay in the chunk's own buffer — a region
    /// that starts at an offset, not a copy: one region is what was held back plus
    /// the chunk's first line, the next the chunk up to its last line break. Either
    /// way every region is whole segments, so the redacted bytes are the stream's.
    pub(crate) fn push_owned(&mut self, chunk: Vec<u8>, emit: &mut impl FnMut(Region)) {
        if chunk.len() >= self.min_region
            && let Some(first) = memchr::memchr(b'\n', &chunk)
            && let Some(last) = memchr::memrchr(b'\n', &chunk)
            && first < last
            // The line across the boundary stays within `MAX_LINE` (no cut in it).
            && self.carry.len() + first < MAX_LINE
        {
            let mut head = Vec::with_capacity(self.carry.len() + first + 1);
            head.extend_from_slice(&self.carry);
            head.extend_from_slice(&chunk[..=first]);
            self.carry.clear();
            self.carry.extend_from_slice(&chunk[last + 1..]);
            let mut body = chunk;
            body.truncate(last + 1);
            emit(head.into());
            emit(Region {
                bytes: body,
                start: first + 1,
            });
            self.cut_long_carry(&mut |bytes| emit(bytes.into()));
            return;
        }
        self.push(&chunk, &mut |bytes| emit(bytes.into()));
    }

    /// Adds `chunk`; calls `emit` with every region that is complete.
    pub(crate) fn push(&mut self, chunk: &[u8], emit: &mut impl FnMut(Vec<u8>)) {
        let nl = memchr::memrchr(b'\n', chunk);
        match nl {
            Some(nl) if self.carry.len() + nl + 1 >= self.min_region => {
                let mut region = Vec::with_capacity(self.carry.len() + nl + 1);
                region.extend_from_slice(&self.carry);
                region.extend_from_slice(&chunk[..=nl]);
                self.carry.clear();
                self.carry.extend_from_slice(&chunk[nl + 1..]);
                emit(region);
            }
            _ => self.carry.extend_from_slice(chunk),
        }
        self.cut_long_carry(emit);
    }

    /// Emits what is held back once it exceeds [`MAX_LINE`].
    fn cut_long_carry(&mut self, emit: &mut impl FnMut(Vec<u8>)) {
        if self.carry.len() > MAX_LINE {
            // Complete lines first (held back while short), then the cuts of an
            // over-long last line exactly where `RedactStream` makes them.
            if let Some(nl) = memchr::memrchr(b'\n', &self.carry) {
                let rest = self.carry.split_off(nl + 1);
                emit(std::mem::replace(&mut self.carry, rest));
            }
            while self.carry.len() > MAX_LINE {
                let cut = long_line_cut(&self.carry[..MAX_LINE]);
                let rest = self.carry.split_off(cut);
                emit(std::mem::replace(&mut self.carry, rest));
            }
        }
    }

    /// The last region (whatever is held back), if any.
    pub(crate) fn finish(&mut self) -> Option<Vec<u8>> {
        (!self.carry.is_empty()).then(|| std::mem::take(&mut self.carry))
    }
}

/// A region from [`RegionSplitter`]: `bytes[start..]` (a chunk's own buffer keeps
/// the bytes before `start`, which belong to the region before).
#[derive(Debug)]
pub(crate) struct Region {
    /// The buffer holding the region.
    pub(crate) bytes: Vec<u8>,
    /// Where the region starts in `bytes`.
    pub(crate) start: usize,
}

impl From<Vec<u8>> for Region {
    fn from(bytes: Vec<u8>) -> Self {
        Region { bytes, start: 0 }
    }
}

/// What redacting one region produced.
#[derive(Debug)]
pub(crate) struct RegionTask {
    /// The buffer whose `bytes[start..]` are the redacted region.
    pub(crate) bytes: Vec<u8>,
    /// Where the region starts in `bytes`.
    pub(crate) start: usize,
    /// Matches per rule index ([`Redactor::rule_names`]).
    pub(crate) tally: Vec<u64>,
    /// The first match that survived in a masked segment (offsets in the region).
    pub(crate) leak: Option<Finding>,
}

impl RegionTask {
    /// Redacts `region` (from [`RegionSplitter`]) with `redactor`.
    pub(crate) fn run(redactor: &Redactor, region: Region, check: bool) -> Self {
        let Region { mut bytes, start } = region;
        let mut tally = vec![0; redactor.names.len()];
        let mut leak = None;
        redactor.redact_region(
            &mut bytes[start..],
            &mut Scratch::default(),
            &mut tally,
            check,
            0,
            &mut leak,
        );
        RegionTask {
            bytes,
            start,
            tally,
            leak,
        }
    }

    /// The redacted region.
    pub(crate) fn redacted(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// Whether redaction changed a byte of the region (a mask is counted exactly
    /// when it changes a byte, see `mask_spans`).
    pub(crate) fn changed(&self) -> bool {
        self.tally.iter().any(|&n| n > 0)
    }
}

impl RedactionCounts {
    /// Counts from matches per rule index of `redactor`'s rules.
    pub(crate) fn from_tally(redactor: &Redactor, tally: &[u64]) -> Self {
        let mut counts = RedactionCounts::default();
        counts.drain_tally(&redactor.names, &mut tally.to_vec());
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn red(s: &str) -> (String, RedactionCounts) {
        let (o, c) = Redactor::builtin().redact(s.as_bytes());
        (String::from_utf8(o).unwrap(), c)
    }

    #[test]
    fn each_rule_hits_and_misses() {
        let cases: &[(&str, &str, bool)] = &[
            (
                "contact alice.smith+x@mail.example.co.uk now",
                "email",
                true,
            ),
            ("no at sign here example.com", "email", false),
            ("pay 4111-1111-1111-1111 ok", "card", true),
            ("pay 4111111111111111 ok", "card", true),
            ("pay 4111 1111 1111 1112 ok", "card", false),
            ("call +1 415-555-0123 now", "phone", true),
            ("call (415) 555-0123 now", "phone", true),
            ("call 415.555.0123 now", "phone", true),
            ("call +442079460958 now", "phone", true),
            ("from 10.0.12.255 port", "ipv4", true),
            ("version 1.2.3 only", "ipv4", false),
            ("from 256.1.1.1 x", "ipv4", false),
            ("peer 2001:db8::1 up", "ipv6", true),
            ("peer fe80:0:0:0:200:f8ff:fe21:67cf up", "ipv6", true),
            ("at 18:00:01 and mc_core::blob", "ipv6", false),
            ("x+1 a(2 b+12345678901", "phone", false),
            (
                "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc",
                "bearer_token",
                true,
            ),
            ("api_key=abcd1234efgh5678", "api_key", true),
            ("key AKIAIOSFODNN7EXAMPLE used", "api_key", true),
            ("token_count=5", "api_key", false),
            (
                "date 2025-12-10T18:00:01.123Z took 1733856000ms",
                "phone",
                false,
            ),
        ];
        for (text, rule, hit) in cases {
            let (out, c) = red(text);
            assert_eq!(c.get(rule) > 0, *hit, "{rule} on {text:?} -> {out:?} {c:?}");
            assert_eq!(out.len(), text.len());
            assert!(Redactor::builtin().find(out.as_bytes()).is_empty(), "{out}");
        }
    }

    #[test]
    fn masks_are_the_label_padded_with_stars_or_all_stars() {
        for label in [&b"[email]"[..], b"[bearer_token]", b"[x]"] {
            for n in 0..40 {
                // The definition byte by byte.
                let want: Vec<u8> = (0..n)
                    .map(|i| {
                        if n < label.len() || (i + 1 < n && i + 1 >= label.len()) {
                            b'*'
                        } else if i + 1 == n {
                            b']'
                        } else {
                            label[i]
                        }
                    })
                    .collect();
                let mut dst = vec![b'a'; n];
                assert_eq!(write_mask(&mut dst, label), n > 0);
                assert_eq!(dst, want);
                assert!(
                    !write_mask(&mut dst, label),
                    "a mask written again changes nothing"
                );
            }
        }
    }

    #[test]
    fn bearer_end_at_the_token_limit() {
        let re = anchored(BEARER_PATTERN);
        for len in [4095, 4096, 4097, 5000] {
            for tail in ["", "=", "==x", "!"] {
                let seg = format!("Bearer  {}{tail}", "a".repeat(len)).into_bytes();
                for window in [8192, 4100, 4104, 4105] {
                    assert_eq!(
                        bearer_end(&seg, 0, seg.len().min(window)),
                        Redactor::anchored_at(&re, &seg, 0, window),
                        "token {len}, tail {tail:?}, window {window}"
                    );
                }
            }
        }
    }

    /// Tokens of IPv6 bytes built from groups, separators and dotted quads.
    fn v6_like() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[0-9a-fA-F]{1,5}",
            Just(":".to_string()),
            Just("::".to_string()),
            Just(":::".to_string()),
            "(25[0-6]|[0-9]{1,4})\\.(0|01|255|[0-9]{1,3})\\.[0-9]{1,3}\\.[0-9]{1,3}",
            Just(".".to_string()),
            "[0-9]{1,3}",
        ];
        prop_oneof![
            proptest::collection::vec(piece, 0..14).prop_map(|v| v.concat()),
            "[0-9a-fA-F:.]{0,45}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8192))]

        /// `is_ipv6` reads exactly what `std`'s parser reads.
        #[test]
        fn is_ipv6_equals_the_std_parser(t in v6_like()) {
            let std_ok = Ipv6Addr::from_str(&t).is_ok();
            prop_assert_eq!(is_ipv6(t.as_bytes()), std_ok, "{:?}", t);
            prop_assert_eq!(is_ipv6_with(t.as_bytes(), true), std_ok, "{:?}", t);
        }
    }

    #[test]
    fn ipv6_examples() {
        for ok in [
            "::",
            "::1",
            "1::",
            "2001:db8::8a2e:370:7334",
            "1:2:3:4:5:6:7:8",
            "::ffff:192.168.1.1",
            "1:2:3:4:5:6:1.2.3.4",
            "fe80::1:2",
        ] {
            assert!(is_ipv6(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            ":",
            "1:2",
            "1:2:3:4:5:6:7:8:9",
            "12345::",
            "1::2::3",
            "::1.2.3",
            "1.2.3.4::",
            "::01.2.3.4",
            "::256.1.1.1",
            "1:2:3:4:5:6:7:1.2.3.4",
            "g::",
        ] {
            assert!(!is_ipv6(bad.as_bytes()), "{bad}");
        }
    }

    /// Text around an `@` that exercises every branch of the email rule: labels of
    /// every length class, hyphens at the ends, dots, digits and `_` after the
    /// top-level domain, and long runs.
    fn email_like() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            "[a-z0-9.%+_-]{1,6}",
            "[a-zA-Z]{1,30}",
            "[a-z0-9-]{1,8}",
            Just(".".to_string()),
            Just("..".to_string()),
            Just("-".to_string()),
            Just("_".to_string()),
            Just("@".to_string()),
            Just("x".repeat(62)),
            Just("y".repeat(64)),
            Just(" ".to_string()),
            Just("2".to_string()),
        ];
        proptest::collection::vec(piece, 1..14).prop_map(|v| v.concat().into_bytes())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// `email_end` gives what the regex gives, for the starts the scanner uses.
        #[test]
        fn email_end_equals_the_regex(local in "[a-z0-9._%+-]{1,70}", rest in email_like(), window in prop_oneof![Just(400usize), 2usize..80]) {
            static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
            let re = RE.get_or_init(|| anchored(EMAIL_PATTERN));
            let mut seg = local.into_bytes();
            let at = seg.len();
            seg.push(b'@');
            seg.extend(rest);
            let s = at.saturating_sub(64);
            let end = seg.len().min(s + window);
            prop_assert_eq!(
                email_end(&seg, s, at, end),
                Redactor::anchored_at(re, &seg, s, window),
                "{:?} window {}", String::from_utf8_lossy(&seg), window
            );
        }

        /// `bearer_end` gives what the regex gives (token lengths near the 4,096
        /// limit: `bearer_end_at_the_token_limit`).
        #[test]
        fn bearer_end_equals_the_regex(
            word in prop_oneof![Just("bearer"), Just("Bearer"), Just("BEARER"), Just("bearex"), Just("beare")],
            blanks in "[ \t]{0,10}",
            token in "[A-Za-z0-9._~+/=-]{0,40}",
            tail in "[=a!]{0,4}",
            window in prop_oneof![Just(8192usize), 1usize..70],
        ) {
            static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
            let re = RE.get_or_init(|| anchored(BEARER_PATTERN));
            let seg = format!("{word}{blanks}{token}{tail}").into_bytes();
            prop_assert_eq!(
                bearer_end(&seg, 0, seg.len().min(window)),
                Redactor::anchored_at(re, &seg, 0, window),
                "{:?} window {}", String::from_utf8_lossy(&seg), window
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// The number rules' dense DFAs end where the same patterns as regexes end,
        /// at every start and window.
        #[test]
        fn number_dfas_equal_the_regexes(
            text in "[0-9 .()+\\-a:]{0,40}",
            at in 0usize..40,
            window in prop_oneof![Just(24usize), Just(64), 1usize..48],
        ) {
            let r = shared();
            let seg = text.as_bytes();
            let at = at.min(seg.len());
            for (dfa, pattern) in [
                (&r.card, CARD_PATTERN),
                (&r.phone, PHONE_PATTERN),
                (&r.ipv4, IPV4_PATTERN),
            ] {
                static RES: std::sync::OnceLock<Vec<(&str, Regex)>> = std::sync::OnceLock::new();
                let res = RES.get_or_init(|| {
                    [CARD_PATTERN, PHONE_PATTERN, IPV4_PATTERN]
                        .map(|p| (p, anchored(p)))
                        .to_vec()
                });
                let re = &res.iter().find(|(p, _)| *p == pattern).expect("compiled above").1;
                prop_assert_eq!(
                    Redactor::number_at_dfa(dfa, seg, at, window),
                    Redactor::anchored_at(re, seg, at, window),
                    "{} at {} in {:?}", pattern, at, text
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn phone_is_only_skipped_where_it_cannot_match(
            t in prop_oneof![
                "[0-9]{2,4}[ .-][0-9]{2,4}[ .-][0-9]{3,5}",
                "[+]?[0-9]{1,3}[ .-]?[(]?[0-9]{3}[)]?[ .-]?[0-9]{3}[ .-][0-9]{4}",
                "[0-9 .()+-]{0,24}",
            ],
            prefix in "[0-9]{0,4}[ .-]?",
        ) {
            let r = shared();
            let seg = format!("{prefix}{t}").into_bytes();
            for p in 0..seg.len() {
                if !phone_may_start(&seg, p) {
                    prop_assert_eq!(Redactor::number_at_dfa(&r.phone, &seg, p, 64), None);
                }
            }
        }
    }

    /// Asserts that `admits(a, b)` holds exactly when some key word has `a` at byte
    /// `i` and `b` at byte `j` (ASCII case-insensitively), for all byte pairs.
    fn assert_admits_key_word_bytes(i: usize, j: usize, admits: impl Fn(u8, u8) -> bool) {
        let pairs: std::collections::BTreeSet<(u8, u8)> = KEYWORDS
            .iter()
            .map(|k| (k.as_bytes()[i], k.as_bytes()[j]))
            .collect();
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let want = pairs.contains(&(a.to_ascii_lowercase(), b.to_ascii_lowercase()));
                assert_eq!(admits(a, b), want, "{a} {b}");
            }
        }
    }

    #[test]
    fn keyword_thirds_admit_exactly_the_key_words_first_and_third_bytes() {
        assert_admits_key_word_bytes(0, 2, |a, c| keyword_third(a, Some(c)));
        for a in 0..=255u8 {
            assert!(!keyword_third(a, None), "{a}");
        }
        for k in KEYWORDS {
            for word in [k.to_string(), k.to_ascii_uppercase()] {
                let w = word.as_bytes();
                assert!(keyword_third(w[0], Some(w[2])), "{word}");
            }
        }
    }

    proptest! {
        /// The block-wide filter drops exactly the digit candidates whose stop byte
        /// is fewer than 7 bytes ahead, all of which `hopeless_number` skips.
        #[test]
        fn stop_within_7_is_the_short_case_of_hopeless_number(
            stop in any::<u64>(),
            digit in any::<u64>(),
            sparse in any::<u64>(),
        ) {
            // Sparse stop masks too: most blocks have few stop bytes.
            for stop in [stop, stop & sparse, stop & sparse & (sparse >> 7)] {
                let digit = digit & !stop;
                let near = stop_within_7(stop);
                for i in 0..64 {
                    let ahead = stop >> i;
                    let short = ahead != 0 && ahead.trailing_zeros() < 7;
                    prop_assert_eq!((near >> i) & 1 == 1, short, "bit {}", i);
                    if short && (digit >> i) & 1 == 1 {
                        prop_assert!(hopeless_number(digit, stop, i));
                    }
                }
            }
        }
    }

    #[test]
    fn keyword_prefix_admits_exactly_the_key_word_starts() {
        assert_admits_key_word_bytes(0, 1, keyword_prefix);
    }

    #[test]
    fn masks_carry_the_rule_name() {
        let (out, c) = red("x 10.1.2.3 y\nz bob@example.com\n");
        assert_eq!(out, "x [ipv4**] y\nz [email********]\n");
        assert_eq!(c.total(), 2);
        let (out, _) = red("1.2.3.4");
        assert_eq!(out, "[ipv4*]");
    }

    #[test]
    fn custom_rules_are_validated() {
        let ok = Redactor::with_rules(&[CustomRule {
            name: "employee".into(),
            pattern: r"EMP-\d{6}".into(),
        }])
        .unwrap();
        let (out, c) = ok.redact(b"id EMP-123456 done");
        assert_eq!(c.get("employee"), 1);
        assert_eq!(&out[..], b"id [employee] done");
        let bad = |name: &str, pattern: &str| {
            Redactor::with_rules(&[CustomRule {
                name: name.into(),
                pattern: pattern.into(),
            }])
            .unwrap_err()
        };
        assert!(matches!(bad("Bad Name", "x"), RedactError::BadName { .. }));
        assert!(matches!(bad("email", "x"), RedactError::BadName { .. }));
        assert!(matches!(bad("r", "("), RedactError::BadPattern { .. }));
        assert!(matches!(bad("r", "a*"), RedactError::Unusable { .. }));
        assert!(matches!(bad("r", r"\*+"), RedactError::Unusable { .. }));
        assert!(matches!(bad("r", r"\s+x?"), RedactError::Unusable { .. }));
        // Names a built-in rule would find inside the masks that carry them.
        for name in [
            "sk_live_abcdefghij",
            "akia1234567890123456",
            "xoxb-0123456789",
        ] {
            assert_eq!(
                bad(name, "ZZZ"),
                RedactError::BadName {
                    name: name.into(),
                    reason: "a built-in rule would match its masks"
                }
            );
        }
    }

    fn pii() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("alice@example.com".to_string()),
            Just("4111 1111 1111 1111".to_string()),
            Just("5500-0000-0000-0004".to_string()),
            Just("+1 415-555-0123".to_string()),
            Just("192.168.1.20".to_string()),
            Just("2001:db8::8a2e:370:7334".to_string()),
            Just("Bearer abcDEF123456.xyz".to_string()),
            Just("api_key=sk_live_0123456789abcdef".to_string()),
            "[a-z ]{0,12}",
            "[0-9:. -]{0,12}",
            Just("\n".to_string()),
        ]
    }

    fn shared() -> Arc<Redactor> {
        static R: std::sync::OnceLock<Arc<Redactor>> = std::sync::OnceLock::new();
        R.get_or_init(|| Arc::new(Redactor::builtin())).clone()
    }

    #[test]
    fn card_followed_by_another_digit_group_is_still_redacted() {
        let r = shared();
        for text in [
            "4111 1111 1111 1111 4::",
            "4111 1111 1111 1111 4",
            "x 4111-1111-1111-1111-42 y",
        ] {
            let (out, counts) = r.redact(text.as_bytes());
            assert!(
                r.find(&out).is_empty(),
                "{text:?} -> {:?}",
                String::from_utf8_lossy(&out)
            );
            assert_eq!(counts.get("card"), 1, "{text:?}: {counts:?}");
            assert!(!String::from_utf8_lossy(&out).contains("4111 1111 1111 1111"));
        }
    }

    /// Pieces that exercise every scanner and the block edges: PII, near misses,
    /// separators, key words in both cases, multi-byte UTF-8 and raw bytes.
    fn piiish() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            pii().prop_map(String::into_bytes),
            proptest::sample::select(vec![
                "bob@example.com",
                "a.b@c",
                "@x.io",
                "x@",
                "4111111111111111",
                "4012888888881881",
                "378282246310005",
                "(415) 555-0123",
                "+44 20 7946 0958",
                "+12345678",
                "a+1",
                "f(2",
                "10.0.0.1",
                "1.2.3",
                "256.1.1.1",
                "::1",
                "fe80::1%",
                "1:2:3:4:5:6:7:8",
                "18:00:01",
                "2025-12-10T18:04:05.123Z",
                "4111 1111 1111 1111x",
                "4111-1111-1111-1111_",
                "1.2.3.4a",
                "123.45 EUR",
                "10.0.0.1:8080",
                "415-555-0123@",
                "Bearer",
                "bearer x",
                "BEARER abcdef123",
                "token: abcdef1234",
                "Token=x",
                "secret=\"hunter22x\"",
                "password=passw0rd!",
                "passwd:abcdefgh",
                "sk_live_0123456789",
                "pk_test_abcdefghij",
                "AKIAIOSFODNN7EXAMPLE",
                "ghp_0123456789abcdefghij",
                "github_pat_0123456789abcdefghijkl",
                "xoxb-1234567890",
                "api-key = 'abcdef12'",
                "apikey:zzzzzzzz",
                "é",
                "\u{1F600}",
                "_",
                "-",
                ".",
                " ",
                "  ",
                "\t",
                ")",
                "(",
                "+",
                ":",
                "@",
                "=",
                "\"",
            ])
            .prop_map(|s| s.as_bytes().to_vec()),
            "[a-zA-Z0-9_]{1,70}".prop_map(String::into_bytes),
            "[0-9 .:()+-]{1,30}".prop_map(String::into_bytes),
            // Number tokens up to a byte no token holds (`hopeless_number`).
            "[0-9][0-9 .()-]{5,24}[a-zA-Z@:_][0-9]{0,12}".prop_map(String::into_bytes),
            "[0-9a-fA-F:.]{1,48}".prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 1..20),
        ]
    }

    /// The pieces joined into one segment (newlines dropped).
    fn one_line(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat().into_iter().filter(|&b| b != b'\n').collect()
    }

    fn sorted(mut v: Vec<Span>) -> Vec<Span> {
        v.sort_unstable();
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn block_scanner_equals_the_byte_by_byte_scanners(
            parts in proptest::collection::vec(piiish(), 0..40),
        ) {
            let r = shared();
            let seg = one_line(&parts);
            let mut fast = Vec::new();
            r.builtin_spans(&seg, &mut fast);
            let mut reference = Vec::new();
            r.builtin_spans_reference(&seg, &mut reference);
            prop_assert_eq!(sorted(fast), sorted(reference), "{:?}", String::from_utf8_lossy(&seg));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn chunking_never_changes_the_result(
            parts in proptest::collection::vec(pii(), 1..40),
            cuts in proptest::collection::vec(0usize..400, 0..12),
        ) {
            let text = parts.join(" ");
            let r = shared();
            let (whole, counts) = r.redact(text.as_bytes());
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (text.len() + 1)).collect();
            cuts.sort_unstable();
            let mut stream = r.stream();
            let mut out = Vec::new();
            let mut prev = 0;
            for c in cuts {
                stream.push(&text.as_bytes()[prev..c], &mut out);
                prev = c;
            }
            stream.push(&text.as_bytes()[prev..], &mut out);
            stream.finish(&mut out);
            prop_assert_eq!(&out, &whole);
            prop_assert_eq!(stream.counts(), &counts);
            prop_assert!(r.find(&out).is_empty(), "survived: {:?}", r.find(&out));
        }

        #[test]
        fn one_byte_chunks_equal_whole(parts in proptest::collection::vec(pii(), 1..12)) {
            let text = parts.concat();
            let r = shared();
            let (whole, _) = r.redact(text.as_bytes());
            let mut s = r.stream();
            let mut out = Vec::new();
            for b in text.as_bytes() {
                s.push(std::slice::from_ref(b), &mut out);
            }
            s.finish(&mut out);
            prop_assert_eq!(out, whole);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Fuzz-style: arbitrary bytes mixed with PII-ish pieces and newlines, in random
        /// chunks. Streaming equals the whole buffer, nothing panics, the inline check
        /// reports exactly the first match `find` sees in the output, and output the
        /// check passes is a fixed point (redacting it again changes nothing).
        ///
        /// It does not claim that every output passes: a mask can expose a new match
        /// (see `inline_check_catches_a_phone_exposed_by_a_mask`), which is why the
        /// check exists.
        #[test]
        fn arbitrary_bytes_stream_like_the_whole_and_redact_to_a_fixed_point(
            parts in proptest::collection::vec(
                prop_oneof![piiish(), Just(b"\n".to_vec()), proptest::collection::vec(any::<u8>(), 0..64)],
                0..60,
            ),
            cuts in proptest::collection::vec(any::<usize>(), 0..10),
        ) {
            let text = parts.concat();
            let r = shared();
            let (whole, counts) = r.redact(&text);
            prop_assert_eq!(whole.len(), text.len());
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (text.len() + 1)).collect();
            cuts.sort_unstable();
            let mut stream = r.stream().check_leaks(true);
            let mut out = Vec::new();
            let mut prev = 0;
            for c in cuts {
                stream.push(&text[prev..c], &mut out);
                prev = c;
            }
            stream.push(&text[prev..], &mut out);
            stream.finish(&mut out);
            prop_assert_eq!(&out, &whole);
            prop_assert_eq!(stream.counts(), &counts);
            let found = r.find(&out);
            prop_assert_eq!(stream.leak(), found.first(), "{:?}", String::from_utf8_lossy(&out));
            if found.is_empty() {
                let (again, recount) = r.redact(&out);
                prop_assert_eq!(again, out);
                prop_assert_eq!(recount.total(), 0);
            }
        }
    }

    /// Pieces that put masks next to what a mask can expose: key words and their
    /// separators, spaces before letters and digits, `(`, `+`, and the bytes of masks.
    fn next_to_masks() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            3 => piiish(),
            2 => proptest::sample::select(vec![
                "bearer ", "Bearer\t", "BEARER  ", "token ", "token: ", "secret =", "api_key",
                "= ", ": ", "\"", "'", " ", "  ", "\t", "ok ", " ok", "x", "Q", "a1", "_",
                "(", ")", "+", "+1 ", "0", "7", "12", "415", "555-0123", " 555", "-", ".",
                "@", "a@", "@b.io", "bob@example.com", "]", "[", "*", "[x]", ",", ";",
                "4111", " 1111", "1111 1111 1111", "10.0", ".0.1", "::", ":1", "fe80",
                "bearer", "abcdefgh", "=abcdefgh", "ghp_", "AKIA", "0123456789ABCDEF",
            ])
            .prop_map(|s| s.as_bytes().to_vec()),
        ]
    }

    impl Redactor {
        /// `redact_segment` as it was before windows: every pass scans the whole
        /// segment (the reference the windowed rescans are tested against).
        fn redact_segment_whole(&self, seg: &mut [u8], tally: &mut [u64]) -> bool {
            let mut spans = Vec::new();
            let mut runs = Vec::new();
            for _ in 0..MAX_PASSES {
                spans.clear();
                self.spans(seg, &mut spans);
                if spans.is_empty() {
                    return false;
                }
                if !self.mask_spans(seg, &mut spans, tally, &mut runs) {
                    return true;
                }
            }
            spans.clear();
            self.spans(seg, &mut spans);
            !spans.is_empty()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// The claim behind `rescan`: after the matches of a whole scan are masked,
        /// scanning the windows finds exactly what scanning the whole segment finds.
        #[test]
        fn rescanning_windows_equals_rescanning_the_segment(
            parts in proptest::collection::vec(next_to_masks(), 1..30),
        ) {
            let r = shared();
            let mut seg = one_line(&parts);
            let mut scratch = Scratch::default();
            let mut tally = vec![0; r.names.len()];
            for _ in 0..MAX_PASSES {
                scratch.spans.clear();
                r.spans(&seg, &mut scratch.spans);
                if scratch.spans.is_empty()
                    || !r.mask_spans(&mut seg, &mut scratch.spans, &mut tally, &mut scratch.runs)
                {
                    break;
                }
                let mut whole = Vec::new();
                r.spans(&seg, &mut whole);
                r.rescan(&seg, &mut scratch);
                prop_assert_eq!(
                    sorted(scratch.spans.clone()),
                    sorted(whole),
                    "{:?} windows {:?}",
                    String::from_utf8_lossy(&seg),
                    scratch.windows
                );
            }
        }

        /// Redaction with windowed rescans gives the same bytes, counts and
        /// residual as rescanning whole segments.
        #[test]
        fn windowed_redaction_equals_whole_rescans(
            parts in proptest::collection::vec(next_to_masks(), 1..30),
        ) {
            let r = shared();
            let seg = one_line(&parts);
            let (mut fast, mut slow) = (seg.clone(), seg.clone());
            let (mut t1, mut t2) = (vec![0; r.names.len()], vec![0; r.names.len()]);
            let a = r.redact_segment(&mut fast, &mut Scratch::default(), &mut t1);
            let b = r.redact_segment_whole(&mut slow, &mut t2);
            prop_assert_eq!(&fast, &slow, "{:?}", String::from_utf8_lossy(&seg));
            prop_assert_eq!(t1, t2);
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn windows_stop_at_cuts_and_keep_what_a_mask_can_expose() {
        let r = shared();
        let window_text = |text: &str| {
            let mut seg = text.as_bytes().to_vec();
            let mut scratch = Scratch::default();
            let mut tally = vec![0; r.names.len()];
            r.spans(&seg, &mut scratch.spans);
            assert!(r.mask_spans(&mut seg, &mut scratch.spans, &mut tally, &mut scratch.runs));
            r.rescan(&seg, &mut scratch);
            scratch
                .windows
                .iter()
                .map(|&(a, b)| String::from_utf8_lossy(&seg[a..b]).into_owned())
                .collect::<Vec<_>>()
        };
        // A log line: the timestamp and the words around stay out of the window.
        assert_eq!(
            window_text("2025-12-10T18:01:02.003Z INFO ok user=bob@example.com session=ab12"),
            ["user=[email********] "]
        );
        // `Bearer` right before a mask could take what follows: no cut there.
        assert_eq!(
            window_text("x Authorization: Bearer abcdefgh1234 next"),
            ["Authorization: [bearer_token*****] "]
        );
        // A digit or `(` after the space may continue a number: the window goes on.
        assert_eq!(window_text("ok 10.0.0.1 5 up"), ["ok [ipv4**] 5 "]);
        assert_eq!(window_text("a;10.0.0.1;b"), ["[ipv4**]"]);
    }

    #[test]
    fn a_phone_exposed_by_a_mask_is_redacted_too() {
        // Found by the fuzz-style property test. `(` right after a word byte is not
        // a number start (`f(2`), so the phone after the email is not a candidate
        // until the email is masked and ends in `]`. Redaction scans a masked line
        // again and masks what the mask exposed — with the check off as well.
        let r = shared();
        let text = b"x bob@example.com(415) 555-0123-\n";
        for check in [true, false] {
            let mut s = r.stream().check_leaks(check);
            let mut out = Vec::new();
            s.push(text, &mut out);
            s.finish(&mut out);
            assert_eq!(&out[..], &b"x [email********][phone*******]-\n"[..]);
            assert!(s.leak().is_none());
            assert!(r.find(&out).is_empty());
            assert_eq!((s.counts().get("email"), s.counts().get("phone")), (1, 1));
        }
        let (whole, counts) = r.redact(text);
        assert_eq!(&whole[..], &b"x [email********][phone*******]-\n"[..]);
        assert_eq!(counts.get("phone"), 1);
    }

    #[test]
    fn a_mask_that_forms_a_new_match_is_masked_again() {
        // `];` only appears once the email is masked: the second pass masks it.
        let r = Arc::new(
            Redactor::with_rules(&[CustomRule {
                name: "semi".into(),
                pattern: r"\];".into(),
            }])
            .unwrap(),
        );
        let text = b"ok line\nmail bob@example.com;x\n";
        let mut out = Vec::new();
        let mut s = r.stream().check_leaks(true);
        s.push(text, &mut out);
        s.finish(&mut out);
        assert!(s.leak().is_none(), "{:?}", s.leak());
        assert!(r.find(&out).is_empty(), "{}", String::from_utf8_lossy(&out));
        assert_eq!((s.counts().get("email"), s.counts().get("semi")), (1, 1));
        assert_eq!(out.len(), text.len(), "masks keep the length");
    }

    #[test]
    fn a_pattern_matching_the_masks_themselves_is_refused_up_front() {
        // Masking again could never remove such a match, so it is refused when the
        // rule is made (the check would otherwise report it as a leak).
        let err = Redactor::with_rules(&[CustomRule {
            name: "stars".into(),
            pattern: r"\*\*\*".into(),
        }])
        .unwrap_err();
        assert!(matches!(err, RedactError::Unusable { .. }), "{err}");
    }

    /// Regions from the splitter, redacted apart: the stream's bytes and counts.
    /// Chunks pushed borrowed (`push`) or owned (`push_owned`, chunk `k` when bit
    /// `k % 64` of `owned` is set).
    fn by_regions(
        r: &Redactor,
        text: &[u8],
        cuts: &[usize],
        min_region: usize,
        owned: u64,
    ) -> (Vec<u8>, RedactionCounts, usize) {
        let mut splitter = RegionSplitter::with_min_region(min_region);
        let mut regions: Vec<Region> = Vec::new();
        let mut prev = 0;
        for (k, &c) in cuts.iter().chain(std::iter::once(&text.len())).enumerate() {
            if owned >> (k % 64) & 1 == 1 {
                splitter.push_owned(text[prev..c].to_vec(), &mut |reg| regions.push(reg));
            } else {
                splitter.push(&text[prev..c], &mut |reg| regions.push(reg.into()));
            }
            prev = c;
        }
        regions.extend(splitter.finish().map(Region::from));
        let largest = regions
            .iter()
            .map(|reg| reg.bytes.len() - reg.start)
            .max()
            .unwrap_or(0);
        let mut out = Vec::new();
        let mut tally = vec![0; r.rule_names().len()];
        for reg in regions {
            let done = RegionTask::run(r, reg, true);
            assert!(done.leak.is_none());
            for (t, n) in tally.iter_mut().zip(&done.tally) {
                *t += n;
            }
            out.extend_from_slice(done.redacted());
        }
        (out, RedactionCounts::from_tally(r, &tally), largest)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn regions_redacted_apart_equal_the_whole(
            parts in proptest::collection::vec(pii(), 1..400),
            cuts in proptest::collection::vec(0usize..20_000, 0..40),
            min_region in 1usize..300,
            owned in any::<u64>(),
        ) {
            let text = parts.join(" ");
            let r = shared();
            let (whole, counts) = r.redact(text.as_bytes());
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (text.len() + 1)).collect();
            cuts.sort_unstable();
            let (out, by_region, _) = by_regions(&r, text.as_bytes(), &cuts, min_region, owned);
            prop_assert_eq!(out, whole);
            prop_assert_eq!(by_region, counts);
        }
    }

    #[test]
    fn regions_cut_long_lines_like_the_stream() {
        let r = shared();
        // Lines longer than MAX_LINE, with delimiters to cut at and PII around them.
        let mut text = Vec::new();
        for i in 0..3 {
            text.extend_from_slice(b"mail bob@example.com card 4111 1111 1111 1111\n");
            let mut long = vec![b'a'; MAX_LINE + 300_000 * i];
            for (j, b) in long.iter_mut().enumerate() {
                if j % 70_001 == 0 {
                    *b = b',';
                }
            }
            long[100..118].copy_from_slice(b"x bob@example.com ");
            text.extend_from_slice(&long);
            text.extend_from_slice(b" 10.1.2.3\nshort line 192.168.0.1\n");
        }
        let (whole, counts) = r.redact(&text);
        let cuts: Vec<usize> = (1..text.len() / 100_000).map(|k| k * 100_000).collect();
        let (out, by_region, largest) =
            by_regions(&r, &text, &cuts, RegionSplitter::MIN_REGION, 0b1010);
        assert!(out == whole, "regions differ from the whole");
        assert_eq!(by_region, counts);
        assert!(largest <= MAX_LINE + 100_000, "region of {largest} bytes");
        let (out, _, _) = by_regions(&r, &text, &[], RegionSplitter::MIN_REGION, 1);
        assert!(out == whole);

        // Short lines held back, then an over-long line: the cut counts from the
        // long line's start, not from the held-back bytes (an email sits where the
        // wrong cut would split it).
        let mut text = b"ab\n".repeat(1000);
        let mut long = vec![b'a'; MAX_LINE + 50_000];
        let at = MAX_LINE - text.len() - 8;
        long[at - 1..at + 16].copy_from_slice(b" bob@example.com ");
        text.extend_from_slice(&long);
        text.push(b'\n');
        let (whole, counts) = r.redact(&text);
        assert_eq!(counts.get("email"), 1);
        let cuts: Vec<usize> = (1..text.len() / 4096).map(|k| k * 4096).collect();
        let (out, by_region, _) = by_regions(&r, &text, &cuts, RegionSplitter::MIN_REGION, 0b1010);
        assert!(out == whole, "held-back lines changed the long-line cut");
        assert_eq!(by_region, counts);
    }

    #[test]
    fn long_lines_are_bounded() {
        let r = Arc::new(Redactor::builtin());
        let mut line = vec![b'a'; MAX_LINE * 2 + 100];
        line[10..28].copy_from_slice(b"x bob@example.com ");
        let mut s = r.stream();
        let mut out = Vec::new();
        for c in line.chunks(4096) {
            s.push(c, &mut out);
            assert!(s.carry.len() <= MAX_LINE + 4096);
        }
        s.finish(&mut out);
        assert_eq!(out.len(), line.len());
        assert_eq!(s.counts().get("email"), 1);
    }
}
