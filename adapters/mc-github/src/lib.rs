//! # mc-github — remediation pull requests on GitHub
//!
//! [`GitHubProposer`] implements `mc_core::ChangeProposer` over the GitHub REST API
//! with octocrab: a proposal becomes a branch `drift/{fingerprint}` from the base
//! branch's head, one commit per file (the contents API), a pull request, and its
//! labels. `find_open` asks GitHub for an open pull request from that branch, so one
//! drift has one pull request however many detectors run. Merging stays a human's
//! decision (protect the base branch with required reviews).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let gh = octocrab::Octocrab::builder()
//!     .personal_token(std::env::var("GITHUB_TOKEN")?)
//!     .build()?;
//! let proposer = mc_github::GitHubProposer::new(gh, "acme", "platform-config", "main")?;
//! # let _ = proposer; Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use base64::Engine as _;
use mc_core::{ChangeProposal, ChangeProposer, ProposalRef, StoreError};
use octocrab::Octocrab;
use serde::Deserialize;

/// Opens proposals as pull requests in one repository.
#[derive(Debug, Clone)]
pub struct GitHubProposer {
    gh: Octocrab,
    owner: String,
    repo: String,
    base: String,
}

/// A bad owner, repository or branch name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {value:?} is not a valid GitHub name")]
pub struct NameError {
    /// `owner`, `repo` or `base`.
    pub field: &'static str,
    /// The value.
    pub value: String,
}

fn check_name(field: &'static str, value: &str, allow_slash: bool) -> Result<(), NameError> {
    let ok = !value.is_empty()
        && value.len() <= 255
        && !value.starts_with(['.', '/', '-'])
        && !value.contains("..")
        && value.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'_' | b'.')
                || (allow_slash && b == b'/')
        });
    if ok {
        Ok(())
    } else {
        Err(NameError {
            field,
            value: value.to_string(),
        })
    }
}

#[derive(Deserialize)]
struct PullLite {
    number: u64,
    html_url: String,
}

#[derive(Deserialize)]
struct RefLite {
    object: RefObject,
}

#[derive(Deserialize)]
struct RefObject {
    sha: String,
}

#[derive(Deserialize)]
struct ContentLite {
    sha: String,
}

fn status(e: &octocrab::Error) -> Option<u16> {
    match e {
        octocrab::Error::GitHub { source, .. } => Some(source.status_code.as_u16()),
        _ => None,
    }
}

/// GitHub's errors as store errors: 5xx, rate limits and transport failures are
/// `Unavailable` (retry later); the rest `Backend`. Tokens never appear: octocrab's
/// errors carry GitHub's message, not the request.
fn store_err(what: &str, e: &octocrab::Error) -> StoreError {
    let msg = match e {
        octocrab::Error::GitHub { source, .. } => {
            format!("{what}: GitHub {} {}", source.status_code, source.message)
        }
        other => format!("{what}: {other}"),
    };
    match status(e) {
        Some(s) if s >= 500 || s == 429 || (s == 403 && msg.contains("rate limit")) => {
            StoreError::Unavailable(msg)
        }
        Some(_) => StoreError::Backend(msg),
        None => StoreError::Unavailable(msg),
    }
}

impl GitHubProposer {
    /// A proposer for `owner/repo`, branching from and proposing into `base`.
    ///
    /// # Errors
    /// [`NameError`] for a name GitHub would not accept (checked so that no name can
    /// change the request's path).
    pub fn new(gh: Octocrab, owner: &str, repo: &str, base: &str) -> Result<Self, NameError> {
        check_name("owner", owner, false)?;
        check_name("repo", repo, false)?;
        check_name("base", base, true)?;
        Ok(GitHubProposer {
            gh,
            owner: owner.into(),
            repo: repo.into(),
            base: base.into(),
        })
    }

    fn route(&self, rest: &str) -> String {
        format!("/repos/{}/{}/{rest}", self.owner, self.repo)
    }
}

fn branch_ok(branch: &str) -> Result<(), StoreError> {
    check_name("branch", branch, true).map_err(|e| StoreError::InvalidInput {
        field: "branch",
        reason: e.to_string(),
    })
}

fn path_ok(path: &str) -> Result<(), StoreError> {
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidInput {
            field: "file path",
            reason: format!("{path:?} is not a plain repository path"),
        })
    }
}

#[async_trait::async_trait]
impl ChangeProposer for GitHubProposer {
    async fn find_open(&self, fingerprint: &str) -> Result<Option<ProposalRef>, StoreError> {
        let branch = format!("drift/{fingerprint}");
        branch_ok(&branch)?;
        let params = serde_json::json!({
            "state": "open",
            "head": format!("{}:{branch}", self.owner),
            "base": self.base,
        });
        let pulls: Vec<PullLite> = self
            .gh
            .get(self.route("pulls"), Some(&params))
            .await
            .map_err(|e| store_err("listing pull requests", &e))?;
        Ok(pulls.into_iter().next().map(|p| ProposalRef {
            number: p.number,
            url: p.html_url,
        }))
    }

    async fn propose(&self, p: &ChangeProposal) -> Result<ProposalRef, StoreError> {
        branch_ok(&p.branch)?;
        for (path, _) in &p.files {
            path_ok(path)?;
        }
        if let Some(open) = self.find_open(&p.fingerprint).await?
            && p.branch == format!("drift/{}", p.fingerprint)
        {
            return Ok(open);
        }
        // The branch, from the base's head (an existing branch, left by an attempt
        // that stopped halfway, is reused).
        let base: RefLite = self
            .gh
            .get(
                self.route(&format!("git/ref/heads/{}", self.base)),
                None::<&()>,
            )
            .await
            .map_err(|e| store_err("reading the base branch", &e))?;
        let created: Result<serde_json::Value, _> = self
            .gh
            .post(
                self.route("git/refs"),
                Some(&serde_json::json!({
                    "ref": format!("refs/heads/{}", p.branch),
                    "sha": base.object.sha,
                })),
            )
            .await;
        match created {
            Ok(_) => {}
            Err(e) if status(&e) == Some(422) => {
                tracing::info!(branch = %p.branch, "branch exists; reusing it");
            }
            Err(e) => return Err(store_err("creating the branch", &e)),
        }
        for (path, content) in &p.files {
            let existing: Result<ContentLite, _> = self
                .gh
                .get(
                    self.route(&format!("contents/{path}")),
                    Some(&serde_json::json!({ "ref": p.branch })),
                )
                .await;
            let sha = match existing {
                Ok(c) => Some(c.sha),
                Err(e) if status(&e) == Some(404) => None,
                Err(e) => return Err(store_err("reading a file", &e)),
            };
            let mut body = serde_json::json!({
                "message": format!("{}\n\nfingerprint: {}", p.title, p.fingerprint),
                "content": base64::engine::general_purpose::STANDARD.encode(content),
                "branch": p.branch,
            });
            if let Some(sha) = sha {
                body["sha"] = sha.into();
            }
            let _: serde_json::Value = self
                .gh
                .put(self.route(&format!("contents/{path}")), Some(&body))
                .await
                .map_err(|e| store_err("writing a file", &e))?;
        }
        let pr: PullLite = self
            .gh
            .post(
                self.route("pulls"),
                Some(&serde_json::json!({
                    "title": p.title,
                    "head": p.branch,
                    "base": self.base,
                    "body": p.body,
                })),
            )
            .await
            .map_err(|e| store_err("opening the pull request", &e))?;
        if !p.labels.is_empty() {
            let _: serde_json::Value = self
                .gh
                .post(
                    self.route(&format!("issues/{}/labels", pr.number)),
                    Some(&serde_json::json!({ "labels": p.labels })),
                )
                .await
                .map_err(|e| store_err("labelling the pull request", &e))?;
        }
        Ok(ProposalRef {
            number: pr.number,
            url: pr.html_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_cannot_escape_the_route() {
        assert!(check_name("owner", "acme", false).is_ok());
        assert!(check_name("base", "release/1.2", true).is_ok());
        for bad in ["", "../x", "a/b", "a?b", "a b", ".hidden"] {
            assert!(check_name("repo", bad, false).is_err(), "{bad}");
        }
        assert!(path_ok("deploy/prod.yaml").is_ok());
        for bad in ["/etc/passwd", "a/../b", "a//b", "a?x=1", "a/./b", ""] {
            assert!(path_ok(bad).is_err(), "{bad}");
        }
    }
}
