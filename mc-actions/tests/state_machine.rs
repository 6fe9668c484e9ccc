//! Property test: random sequences of actions and runtime transitions never reach an
//! illegal state; audit events equal accepted actions; the chain always verifies.

mod common;

use common::*;
use mc_core::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Action {
        exec: usize,
        kind: ActionKind,
        with_grant: bool,
        viewer: bool,
    },
    Host {
        exec: usize,
        to: ExecutionState,
    },
    /// Repeat the last accepted request with its key.
    Repeat,
}

fn step() -> impl Strategy<Value = Step> {
    let kind = prop_oneof![
        Just(ActionKind::Cancel),
        Just(ActionKind::Retry),
        Just(ActionKind::Replay)
    ];
    let state = prop::sample::select(ExecutionState::ALL.to_vec());
    prop_oneof![
        (
            0..3usize,
            kind.clone(),
            any::<bool>(),
            prop::bool::weighted(0.2)
        )
            .prop_map(|(exec, kind, with_grant, viewer)| Step::Action {
                exec,
                kind,
                with_grant,
                viewer
            }),
        (0..3usize, state).prop_map(|(exec, to)| Step::Host { exec, to }),
        Just(Step::Repeat),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn random_sequences_keep_every_invariant(steps in prop::collection::vec(step(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let f = Fixture::new().await;
            let ids: Vec<ExecutionId> =
                (0..3).map(|i| ExecutionId::new(format!("exec_{i}")).unwrap()).collect();
            for (i, s) in [ExecutionState::Pending, ExecutionState::Running, ExecutionState::Failed].into_iter().enumerate() {
                f.execution(&format!("exec_{i}"), s).await;
            }
            let mut accepted = 0usize;
            let mut last_key: Option<(usize, ActionKind, String)> = None;
            for (n, st) in steps.iter().enumerate() {
                let before: Vec<_> = {
                    let mut v = Vec::new();
                    for id in &ids { v.push(f.store.get(&f.tenant, id).await.unwrap()); }
                    v
                };
                match st {
                    Step::Action { exec, kind, with_grant, viewer: as_viewer } => {
                        let actor = if *as_viewer { viewer() } else { operator() };
                        let key = format!("key-{n}");
                        let mut req = f.request(&actor, *kind, &ids[*exec], &key);
                        if !with_grant { req.step_up = None; }
                        let res = f.service.perform(req).await;
                        let b = &before[*exec];
                        let legal = mc_actions::legal_in_state(*kind, b.state);
                        match &res {
                            Ok(o) => {
                                prop_assert!(legal, "accepted {kind} in {}", b.state);
                                prop_assert!(*with_grant && !*as_viewer);
                                accepted += 1;
                                last_key = Some((*exec, *kind, key));
                                if *kind == ActionKind::Replay {
                                    let child = o.replay.as_ref().unwrap();
                                    prop_assert_eq!(&child.parent, &ids[*exec]);
                                }
                            }
                            Err(_) => {
                                prop_assert!(!legal || !*with_grant || *as_viewer, "refused a legal, authorised action: {res:?}");
                            }
                        }
                    }
                    Step::Host { exec, to } => {
                        let r = f.host_transition(&ids[*exec], *to).await;
                        let from = before[*exec].state;
                        prop_assert_eq!(r.is_ok(), from.can_transition_to(*to));
                    }
                    Step::Repeat => {
                        if let Some((exec, kind, key)) = &last_key {
                            let mut req = f.request(&operator(), *kind, &ids[*exec], key);
                            req.step_up = None;
                            let o = f.service.perform(req).await;
                            prop_assert!(o.map(|o| o.idempotent_replay).unwrap_or(false), "a repeat is answered from the record");
                        }
                    }
                }
                // Every state change was a legal transition (or a retry's Failed -> Pending).
                for (i, id) in ids.iter().enumerate() {
                    let now = f.store.get(&f.tenant, id).await.unwrap();
                    let was = before[i].state;
                    prop_assert!(now.state == was || was.can_transition_to(now.state),
                        "illegal move {} -> {}", was, now.state);
                    prop_assert!(now.version >= before[i].version);
                }
            }
            let audit = f.audit().await;
            prop_assert_eq!(audit.len(), accepted, "audit events = accepted actions");
            prop_assert!(verify_chain(&audit).is_ok());
            Ok(())
        })?;
    }
}
