//! GitHubProposer passes the same ChangeProposer conformance suite as the in-memory
//! proposer (DESIGN.md rule 5), against a stateful fake of the GitHub REST endpoints
//! it uses (served by wiremock, shaped like GitHub's responses).

use std::sync::Mutex;

use mc_core::testkit;
use mc_github::GitHubProposer;
use octocrab::Octocrab;
use serde_json::json;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const REPO: &str = "/repos/acme/platform-config";

/// Branches and pull requests, kept between requests.
#[derive(Default)]
struct FakeGitHub {
    branches: Mutex<Vec<String>>,
    pulls: Mutex<Vec<(u64, String)>>,
}

fn pull(number: u64, head: &str) -> serde_json::Value {
    json!({
        "id": 5000 + number, "number": number, "state": "open",
        "html_url": format!("https://github.com/acme/platform-config/pull/{number}"),
        "head": {"ref": head}, "base": {"ref": "main"}
    })
}

impl Respond for FakeGitHub {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let path = req.url.path().to_string();
        let query = |k: &str| {
            req.url
                .query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.to_string())
        };
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let not_found = ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"}));
        let Some(rest) = path.strip_prefix(REPO) else {
            return not_found;
        };
        match (req.method.as_str(), rest) {
            ("GET", "/pulls") => {
                let head = query("head").unwrap_or_default();
                let branch = head.strip_prefix("acme:").unwrap_or("");
                let open: Vec<_> = self
                    .pulls
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(_, h)| h == branch)
                    .map(|(n, h)| pull(*n, h))
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!(open))
            }
            ("GET", "/git/ref/heads/main") => ResponseTemplate::new(200).set_body_json(
                json!({"ref": "refs/heads/main", "object": {"sha": "aaaa", "type": "commit"}}),
            ),
            ("POST", "/git/refs") => {
                let name = body["ref"].as_str().unwrap_or("").to_string();
                let mut b = self.branches.lock().unwrap();
                if b.contains(&name) {
                    return ResponseTemplate::new(422)
                        .set_body_json(json!({"message": "Reference already exists"}));
                }
                b.push(name.clone());
                ResponseTemplate::new(201)
                    .set_body_json(json!({"ref": name, "object": {"sha": "aaaa"}}))
            }
            ("GET", p) if p.starts_with("/contents/") => not_found,
            ("PUT", p) if p.starts_with("/contents/") => {
                let branch = format!("refs/heads/{}", body["branch"].as_str().unwrap_or(""));
                if !self.branches.lock().unwrap().contains(&branch) {
                    return ResponseTemplate::new(404)
                        .set_body_json(json!({"message": "Branch not found"}));
                }
                ResponseTemplate::new(201)
                    .set_body_json(json!({"content": {"sha": "bbbb"}, "commit": {"sha": "cccc"}}))
            }
            ("POST", "/pulls") => {
                let head = body["head"].as_str().unwrap_or("").to_string();
                let mut pulls = self.pulls.lock().unwrap();
                if pulls.iter().any(|(_, h)| *h == head) {
                    return ResponseTemplate::new(422)
                        .set_body_json(json!({"message": "A pull request already exists"}));
                }
                let n = pulls.len() as u64 + 1;
                pulls.push((n, head.clone()));
                ResponseTemplate::new(201).set_body_json(pull(n, &head))
            }
            ("POST", p) if p.starts_with("/issues/") && p.ends_with("/labels") => {
                ResponseTemplate::new(200).set_body_json(json!([]))
            }
            _ => not_found,
        }
    }
}

#[tokio::test]
async fn github_proposer_passes_the_change_proposer_conformance_suite() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(FakeGitHub::default())
        .mount(&server)
        .await;
    let gh = Octocrab::builder()
        .base_uri(server.uri())
        .unwrap()
        .personal_token("ghp_test_token".to_string())
        .build()
        .unwrap();
    let proposer = GitHubProposer::new(gh, "acme", "platform-config", "main").unwrap();
    testkit::change_proposer_conformance(&proposer).await;
}
