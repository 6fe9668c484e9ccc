//! GitHubProposer against wiremock serving GitHub's REST shapes (no GitHub-compatible
//! forge installs here; DEPENDENCIES.md).

use mc_core::{ChangeProposal, ChangeProposer, StoreError};
use mc_github::GitHubProposer;
use octocrab::Octocrab;
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const FP: &str = "5f1c2a9e0b7d4c33";

fn proposal() -> ChangeProposal {
    ChangeProposal {
        fingerprint: FP.into(),
        branch: format!("drift/{FP}"),
        title: "drift(prod): Deployment/prod/web differs from desired".into(),
        body: "| field | desired | live |".into(),
        labels: vec!["drift:auto".into()],
        files: vec![("deploy/prod.yaml".into(), "replicas: 5\n".into())],
    }
}

async fn proposer(server: &MockServer) -> GitHubProposer {
    let gh = Octocrab::builder()
        .base_uri(server.uri())
        .unwrap()
        .personal_token("ghp_test_token".to_string())
        .build()
        .unwrap();
    GitHubProposer::new(gh, "acme", "platform-config", "main").unwrap()
}

fn pull(number: u64) -> serde_json::Value {
    json!({
        "url": format!("https://api.github.com/repos/acme/platform-config/pulls/{number}"),
        "id": 1000 + number, "number": number, "state": "open", "title": "drift",
        "html_url": format!("https://github.com/acme/platform-config/pull/{number}"),
        "head": {"ref": format!("drift/{FP}"), "sha": "c0ffee"},
        "base": {"ref": "main", "sha": "aaaa"}
    })
}

async fn no_open_pull(server: &MockServer, times: u64) {
    Mock::given(method("GET"))
        .and(path("/repos/acme/platform-config/pulls"))
        .and(query_param("state", "open"))
        .and(query_param("head", format!("acme:drift/{FP}")))
        .and(query_param("base", "main"))
        .and(header("authorization", "Bearer ghp_test_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(times)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_proposal_becomes_branch_commit_pull_request_and_labels() {
    let server = MockServer::start().await;
    no_open_pull(&server, 2).await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/platform-config/git/ref/heads/main"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ref": "refs/heads/main", "node_id": "x",
            "url": "https://api.github.com/repos/acme/platform-config/git/refs/heads/main",
            "object": {"sha": "aaaa1111", "type": "commit", "url": "u"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/platform-config/git/refs"))
        .and(body_partial_json(
            json!({"ref": format!("refs/heads/drift/{FP}"), "sha": "aaaa1111"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "ref": format!("refs/heads/drift/{FP}"), "object": {"sha": "aaaa1111", "type": "commit"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(
            "/repos/acme/platform-config/contents/deploy/prod.yaml",
        ))
        .and(query_param("ref", format!("drift/{FP}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "file", "name": "prod.yaml", "path": "deploy/prod.yaml", "sha": "bbbb2222",
            "size": 12, "encoding": "base64", "content": "cmVwbGljYXM6IDMK"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/repos/acme/platform-config/contents/deploy/prod.yaml"))
        .and(body_partial_json(json!({
            "branch": format!("drift/{FP}"), "sha": "bbbb2222", "content": "cmVwbGljYXM6IDUK"
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "content": {"path": "deploy/prod.yaml", "sha": "cccc3333"}, "commit": {"sha": "dddd4444"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/platform-config/pulls"))
        .and(body_partial_json(
            json!({"head": format!("drift/{FP}"), "base": "main",
            "title": "drift(prod): Deployment/prod/web differs from desired"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(pull(7)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/platform-config/issues/7/labels"))
        .and(body_partial_json(json!({"labels": ["drift:auto"]})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([{"id": 1, "name": "drift:auto"}])),
        )
        .expect(1)
        .mount(&server)
        .await;

    let gh = proposer(&server).await;
    assert_eq!(gh.find_open(FP).await.unwrap(), None);
    let r = gh.propose(&proposal()).await.unwrap();
    assert_eq!(r.number, 7);
    assert_eq!(r.url, "https://github.com/acme/platform-config/pull/7");
    server.verify().await;
}

#[tokio::test]
async fn an_open_pull_request_is_found_and_not_opened_twice() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/platform-config/pulls"))
        .and(query_param("head", format!("acme:drift/{FP}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([pull(3)])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let gh = proposer(&server).await;
    let found = gh.find_open(FP).await.unwrap().unwrap();
    assert_eq!(found.number, 3);
    assert_eq!(gh.propose(&proposal()).await.unwrap(), found);
    server.verify().await;
}

#[tokio::test]
async fn a_branch_left_by_an_earlier_attempt_is_reused_and_new_files_are_created() {
    let server = MockServer::start().await;
    no_open_pull(&server, 1).await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/platform-config/git/ref/heads/main"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"ref": "refs/heads/main", "object": {"sha": "aaaa1111", "type": "commit"}}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/platform-config/git/refs"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "Reference already exists",
            "documentation_url": "https://docs.github.com/rest/git/refs#create-a-reference"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/platform-config/contents/deploy/prod.yaml"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "message": "Not Found", "documentation_url": "https://docs.github.com/rest/repos/contents"
        })))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path(
            "/repos/acme/platform-config/contents/deploy/prod.yaml",
        ))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"content": {"sha": "eeee"}, "commit": {"sha": "ffff"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/platform-config/pulls"))
        .respond_with(ResponseTemplate::new(201).set_body_json(pull(9)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/platform-config/issues/9/labels"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    let r = proposer(&server).await.propose(&proposal()).await.unwrap();
    assert_eq!(r.number, 9);
    // The new file was written without a sha (GitHub rejects a sha for a new file).
    let puts: Vec<_> = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "PUT")
        .collect();
    let body: serde_json::Value = serde_json::from_slice(&puts[0].body).unwrap();
    assert!(body.get("sha").is_none(), "{body}");
    server.verify().await;
}

#[tokio::test]
async fn github_errors_are_typed_and_bad_paths_never_reach_it() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/platform-config/pulls"))
        .respond_with(
            ResponseTemplate::new(503).set_body_json(json!({"message": "Service Unavailable"})),
        )
        .mount(&server)
        .await;
    let gh = proposer(&server).await;
    let e = gh.find_open(FP).await.unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    assert!(!e.to_string().contains("ghp_test_token"));
    let mut bad = proposal();
    bad.files[0].0 = "../../etc/passwd".into();
    assert!(matches!(
        gh.propose(&bad).await,
        Err(StoreError::InvalidInput {
            field: "file path",
            ..
        })
    ));
    let mut bad = proposal();
    bad.branch = "drift/../../main".into();
    assert!(matches!(
        gh.propose(&bad).await,
        Err(StoreError::InvalidInput { .. })
    ));
    assert!(GitHubProposer::new(Octocrab::default(), "acme", "../x", "main").is_err());
}
