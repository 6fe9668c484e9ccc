//! The crate's typed error.

use std::path::PathBuf;

/// Everything that can go wrong while loading, testing or evaluating policy packs.
///
/// Each variant names the file, field or rule at fault so that a caller (and the
/// `mc policy` command, which maps every variant to exit code 2) can say exactly
/// what to fix. Nothing in this crate panics on bad input.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A Rego file is not UTF-8 text.
    #[error("{path}: not UTF-8 text")]
    NotUtf8 {
        /// The offending file.
        path: PathBuf,
    },
    /// A Rego file does not parse (or is refused by the engine, e.g. too long).
    #[error("{file}:{line}:{col}: rego syntax error: {message}")]
    Syntax {
        /// The file, as loaded.
        file: String,
        /// 1-based line of the error (0 when the engine gave none).
        line: u32,
        /// 1-based column of the error (0 when the engine gave none).
        col: u32,
        /// The engine's message.
        message: String,
    },
    /// A call to a function that is neither a builtin of the engine nor defined in the pack.
    #[error("{file}:{line}:{col}: unknown builtin or function `{name}`")]
    UnknownFunction {
        /// The file holding the call.
        file: String,
        /// 1-based line of the call.
        line: u32,
        /// 1-based column of the call.
        col: u32,
        /// The function path as written.
        name: String,
    },
    /// A directory holds no `.rego` file at all.
    #[error("no policy pack (directory with .rego files) under {dir}")]
    NoPacks {
        /// The directory searched.
        dir: PathBuf,
    },
    /// A golden fixture (input or expectation) is malformed.
    #[error("fixture {path}: {reason}")]
    InvalidFixture {
        /// The fixture file.
        path: PathBuf,
        /// What is wrong, including line and column for JSON errors.
        reason: String,
    },
    /// An input document (for `eval` or a typed decision) is malformed.
    #[error("invalid input field `{field}`: {reason}")]
    InvalidInput {
        /// The field at fault (`input` for the whole document).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A namespace (Rego package) asked for does not exist in the pack.
    #[error("namespace `{namespace}` not found (have: {available})")]
    UnknownNamespace {
        /// The namespace asked for.
        namespace: String,
        /// The namespaces the pack defines, comma separated.
        available: String,
    },
    /// Evaluating a rule failed in the engine.
    #[error("evaluating {rule}: {message}")]
    Eval {
        /// The rule path, e.g. `data.access.decision`.
        rule: String,
        /// The engine's message.
        message: String,
    },
    /// Evaluating a rule took longer than allowed.
    #[error("evaluating {rule}: timed out after {limit_ms} ms")]
    Timeout {
        /// The rule path.
        rule: String,
        /// The limit in milliseconds.
        limit_ms: u64,
    },
    /// A policy returned a value of the wrong shape for a typed decision.
    #[error("decision field `{field}`: {reason}")]
    DecisionShape {
        /// The field of the decision document at fault.
        field: String,
        /// What was expected.
        reason: String,
    },
    /// A line of a flake-history file is malformed.
    #[error("{path}:{line}: bad history record: {reason}")]
    History {
        /// The history file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// An option passed to the runner is out of range.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option name.
        option: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl PolicyError {
    /// Maps an error from `Engine::add_policy` to [`PolicyError::Syntax`], pulling the
    /// `--> file:line:col` location out of regorus' rendered message.
    pub(crate) fn from_parse(file: &str, err: &dyn std::fmt::Display) -> Self {
        let rendered = err.to_string();
        let (line, col) = location_of(&rendered).unwrap_or((0, 0));
        let message = rendered
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("error: ").map(str::to_owned))
            .unwrap_or_else(|| rendered.trim().to_owned());
        PolicyError::Syntax {
            file: file.to_owned(),
            line,
            col,
            message,
        }
    }
}

/// Finds `--> path:line:col` in a regorus diagnostic.
pub(crate) fn location_of(rendered: &str) -> Option<(u32, u32)> {
    let loc = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> "))?;
    let mut parts = loc.rsplitn(3, ':');
    let col = parts.next()?.trim().parse().ok()?;
    let line = parts.next()?.trim().parse().ok()?;
    Some((line, col))
}

/// Short, single-paragraph form of an engine error for reports.
pub(crate) fn engine_message(err: &dyn std::fmt::Display) -> String {
    let rendered = err.to_string();
    let text = rendered
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: ").map(str::to_owned))
        .unwrap_or_else(|| rendered.trim().to_owned());
    match location_of(&rendered) {
        Some((line, col)) => {
            let file = rendered
                .lines()
                .find_map(|l| l.trim().strip_prefix("--> "))
                .and_then(|l| l.rsplitn(3, ':').nth(2))
                .unwrap_or("");
            format!("{file}:{line}:{col}: {text}")
        }
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_location_is_extracted() {
        let msg = "\n--> bad.rego:5:1\n  |\n5 | }\n  | ^\nerror: expecting expression";
        match PolicyError::from_parse("bad.rego", &msg) {
            PolicyError::Syntax {
                file,
                line,
                col,
                message,
            } => {
                assert_eq!(file, "bad.rego");
                assert_eq!((line, col), (5, 1));
                assert_eq!(message, "expecting expression");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn engine_message_keeps_location() {
        let msg =
            "\n--> a/b.rego:25:10\n   |\n25 |   x := 1 / 0\n   |          ^\nerror: divide by zero";
        assert_eq!(engine_message(&msg), "a/b.rego:25:10: divide by zero");
        assert_eq!(engine_message(&"plain"), "plain");
    }
}
