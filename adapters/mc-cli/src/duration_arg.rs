//! Durations given on the command line: `30s`, `2m`, `1h`.

use std::time::Duration;

use anyhow::{anyhow, bail};

/// Parses `s` as a whole number of seconds, minutes or hours (`30s`, `2m`, `1h`);
/// errors name `flag`. Never panics: the unit is taken as a character and the
/// multiplication is checked.
pub fn parse(flag: &str, s: &str) -> anyhow::Result<Duration> {
    let Some(unit) = s.chars().last() else {
        bail!("{flag} is empty: write 30s or 2m");
    };
    let n: u64 = s[..s.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| anyhow!("{flag} {s:?}: write 30s or 2m"))?;
    let secs = match unit {
        's' => Some(n),
        'm' => n.checked_mul(60),
        'h' => n.checked_mul(3600),
        _ => bail!("{flag} {s:?}: the unit must be s, m or h"),
    }
    .ok_or_else(|| anyhow!("{flag} {s:?} is too long"))?;
    if secs == 0 {
        bail!("{flag} must be longer than zero");
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn durations() {
        assert_eq!(parse("--x", "2m").unwrap().as_secs(), 120);
        assert_eq!(parse("--x", "30s").unwrap().as_secs(), 30);
        assert_eq!(parse("--x", "1h").unwrap().as_secs(), 3600);
        for bad in [
            "",
            "2",
            "m",
            "0m",
            "2µ",
            "µ",
            "-1m",
            "99999999999999999999h",
            "18446744073709551615h",
        ] {
            let err = parse("--max-lifetime", bad).unwrap_err().to_string();
            assert!(err.contains("--max-lifetime"), "{bad}: {err}");
        }
    }
}
