//! # mc-webauthn — passkey step-up for console write actions
//!
//! Spec §3.1 (MC-UI-1102) and §7: a console write action (cancel, retry, replay)
//! needs proof that the actor *just* re-authenticated, for *that* action on *that*
//! execution. This crate provides it over [webauthn-rs](webauthn_rs):
//!
//! 1. **registration** — an actor enrols a passkey
//!    ([`WebauthnStepUp::start_registration`] → [`WebauthnStepUp::finish_registration`]);
//! 2. **challenge** — per action request, a challenge bound to tenant, actor, action
//!    and execution, expiring (default 5 min) and single-use
//!    ([`WebauthnStepUp::start_challenge`] → [`WebauthnStepUp::finish_challenge`]);
//! 3. **grant** — a successful assertion yields a short-lived (default 5 min),
//!    HMAC-signed, single-use [`StepUpGrant`](mc_core::StepUpGrant) that
//!    `mc-actions` checks through mc-core's [`StepUpVerifier`](mc_core::StepUpVerifier),
//!    which [`WebauthnStepUp`] implements.
//!
//! State (passkeys, pending ceremonies, used grant ids) lives in a [`StepUpStore`]:
//! [`MemoryStepUpStore`] for one process, [`PgStepUpStore`] for replicas (single use
//! is an atomic `DELETE … RETURNING` / unique insert there). When the store is down,
//! challenge start and grant verification fail with
//! [`StepUpError::Unavailable`](mc_core::StepUpError::Unavailable) — "step-up
//! unavailable, console is read-only" (spec §8); [`SwitchableStore`] rehearses it.
//!
//! ```
//! use std::sync::Arc;
//! use mc_core::{ActionKind, ActorId, ExecutionId, ManualClock, StepUpBinding,
//!               StepUpError, StepUpVerifier, TenantId};
//! use mc_webauthn::{api::*, GrantKey, MemoryStepUpStore, StepUpConfig, WebauthnStepUp};
//! use time::macros::datetime;
//! use url::Url;
//! use webauthn_authenticator_rs::{softpasskey::SoftPasskey, WebauthnAuthenticator};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let origin = Url::parse("https://console.example.com").unwrap();
//! let config = StepUpConfig::new("example.com", origin.clone(), GrantKey::new(vec![9u8; 32]).unwrap());
//! let clock = Arc::new(ManualClock::new(datetime!(2025-12-10 18:00 UTC)));
//! let stepup = WebauthnStepUp::new(config, Arc::new(MemoryStepUpStore::new()), clock.clone()).unwrap();
//! let (tenant, alice) = (TenantId::new("acme").unwrap(), ActorId::new("alice@acme").unwrap());
//!
//! // 1. Alice enrols a passkey (a software authenticator stands in for the browser).
//! let mut authenticator = SoftPasskey::new(true);
//! let reg = stepup.start_registration(&tenant, &alice, RegistrationStartRequest::default()).await.unwrap();
//! let credential = authenticator.do_registration(origin.clone(), reg.options).unwrap();
//! stepup.finish_registration(&tenant, &alice,
//!     RegistrationFinishRequest { registration_id: reg.registration_id, credential }).await.unwrap();
//!
//! // 2. She asks to cancel exec_1 and answers the challenge.
//! let execution_id = ExecutionId::new("exec_1").unwrap();
//! let ch = stepup.start_challenge(&tenant, &alice,
//!     ChallengeStartRequest { action: ActionKind::Cancel, execution_id: execution_id.clone() }).await.unwrap();
//! let credential = authenticator.do_authentication(origin, ch.options).unwrap();
//! let granted = stepup.finish_challenge(&tenant, &alice,
//!     ChallengeFinishRequest { challenge_id: ch.challenge_id, credential }).await.unwrap();
//!
//! // 3. The action verifies (and consumes) the grant; a second use is refused.
//! let binding = StepUpBinding { tenant, actor: alice, action: ActionKind::Cancel, execution_id };
//! let now = datetime!(2025-12-10 18:01 UTC);
//! stepup.verify_and_consume(&granted.grant, &binding, now).await.unwrap();
//! assert_eq!(stepup.verify_and_consume(&granted.grant, &binding, now).await,
//!            Err(StepUpError::AlreadyUsed));
//! # });
//! ```
//!
//! Modules: [`api`] (JSON bodies of the four routes), [`grant`] (token format and
//! pure verification), [`store`] (the store trait and records), and — behind the
//! `testkit` feature — `testkit` (the store conformance suite).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
mod config;
mod error;
pub mod grant;
mod memory;
mod outage;
mod postgres;
mod service;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use config::{
    DEFAULT_CHALLENGE_TTL, DEFAULT_GRANT_TTL, GrantKey, MAX_TTL, MIN_GRANT_KEY_LEN, StepUpConfig,
};
pub use error::{StoreError, WebauthnStepUpError};
pub use grant::{GrantClaims, GrantSigner};
pub use memory::MemoryStepUpStore;
pub use outage::{OutageSwitch, SwitchableStore};
pub use postgres::PgStepUpStore;
pub use service::WebauthnStepUp;
pub use store::{PendingChallenge, PendingRegistration, StepUpStore, StoredPasskey};
/// Re-export of the webauthn-rs types that appear in this crate's API.
pub use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};
