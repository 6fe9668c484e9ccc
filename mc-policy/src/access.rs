//! The typed decision API over the `access` pack, for hosts such as `mc-actions` to use
//! as their action policy: who may cancel, retry or replay an execution, and whether a
//! step-up grant is required.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::RegoVM;
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Rc, Value};
use serde::{Deserialize, Serialize};

use crate::error::PolicyError;
use crate::eval::{classify_engine_error, value_to_json};
use crate::pack::{LoadOptions, Pack};

/// The rule the access pack must define: `{"allow", "step_up_required", "reasons"}`.
pub const DECISION_RULE: &str = "data.access.decision";

/// The actor asking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessActor {
    /// Subject, e.g. `alice@company`.
    pub sub: String,
    /// The tenant the actor acts in.
    pub tenant: String,
    /// Role names, e.g. `operator`, `viewer`.
    pub roles: Vec<String>,
}

/// The execution acted upon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessExecution {
    /// Execution id.
    pub id: String,
    /// Its state (`pending`, `running`, `succeeded`, `failed`, `cancelled`).
    pub state: String,
}

/// The input document of an access decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessInput {
    /// Who.
    pub actor: AccessActor,
    /// `cancel`, `retry` or `replay`.
    pub action: String,
    /// On what.
    pub execution: AccessExecution,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessDecision {
    /// Whether the action is allowed.
    pub allow: bool,
    /// Whether a step-up grant is required before it runs.
    pub step_up_required: bool,
    /// Why not (deny messages), or notes why yes; sorted.
    pub reasons: Vec<String>,
}

/// The `access` pack, prepared once and shared (`Send + Sync`).
///
/// The `decision` rule is compiled once to a regorus RVM program (bytecode), several
/// times faster per decision than the tree-walking interpreter; a pack the RVM compiler
/// cannot handle falls back to the interpreter. Evaluations are serialised on the one
/// prepared evaluator (see `docs/policy.md` for measured figures).
#[derive(Debug)]
pub struct AccessPolicy {
    evaluator: Mutex<Evaluator>,
    timeout: Duration,
}

enum Evaluator {
    Vm(Box<RegoVM>),
    Interpreter(Box<Engine>),
}

impl std::fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Evaluator::Vm(_) => "Evaluator::Vm",
            Evaluator::Interpreter(_) => "Evaluator::Interpreter",
        })
    }
}

/// Instruction budget per RVM decision; the time limit is the real guard.
const MAX_INSTRUCTIONS: usize = 1_000_000;

impl Evaluator {
    fn prepare(pack: &Pack) -> Evaluator {
        let mut engine = pack.engine();
        let program = engine
            .compile_with_entrypoint(&Rc::from(DECISION_RULE))
            .ok()
            .and_then(|compiled| {
                Compiler::compile_from_policy(&compiled, &[DECISION_RULE])
                    .ok()
                    .map(|program| (compiled, program))
            });
        if let Some((compiled, program)) = program {
            let mut vm = RegoVM::new_with_policy(compiled);
            vm.load_program(program);
            vm.set_max_instructions(MAX_INSTRUCTIONS);
            if vm.set_data(Value::new_object()).is_ok() {
                return Evaluator::Vm(Box::new(vm));
            }
        }
        Evaluator::Interpreter(Box::new(pack.engine()))
    }

    fn set_timeout(&mut self, timeout: Duration) {
        let config = ExecutionTimerConfig {
            limit: timeout,
            check_interval: NonZeroU32::MIN,
        };
        match self {
            Evaluator::Vm(vm) => vm.set_execution_timer_config(Some(config)),
            Evaluator::Interpreter(engine) => engine.set_execution_timer_config(config),
        }
    }

    fn eval(&mut self, input: Value) -> Result<Value, String> {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match self {
            Evaluator::Vm(vm) => {
                vm.set_input(input);
                vm.execute_entry_point_by_name(DECISION_RULE)
                    .map_err(|e| e.to_string())
            }
            Evaluator::Interpreter(engine) => {
                engine.set_input(input);
                engine
                    .eval_rule(DECISION_RULE.to_owned())
                    .map_err(|e| e.to_string())
            }
        }));
        result.unwrap_or_else(|_| Err("the engine panicked".into()))
    }
}

impl AccessPolicy {
    /// Default time limit for one decision.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

    /// Loads the pack in `dir` (e.g. `policy/access`), without its tests and fixtures.
    ///
    /// # Errors
    /// Every load error of [`Pack::load_with`], and [`PolicyError::UnknownNamespace`]
    /// when the pack has no `access` package with a `decision` rule.
    pub fn load(dir: &Path) -> Result<AccessPolicy, PolicyError> {
        let pack = Pack::load_with(
            dir,
            LoadOptions {
                include_tests: false,
                include_fixtures: false,
            },
        )?;
        AccessPolicy::from_pack(&pack)
    }

    /// Uses an already loaded pack.
    ///
    /// # Errors
    /// [`PolicyError::UnknownNamespace`] when the pack has no `access.decision` rule.
    pub fn from_pack(pack: &Pack) -> Result<AccessPolicy, PolicyError> {
        if !pack.rule_names("access").iter().any(|r| r == "decision") {
            return Err(PolicyError::UnknownNamespace {
                namespace: "access (with rule `decision`)".into(),
                available: pack.namespaces().join(", "),
            });
        }
        let mut policy = AccessPolicy {
            evaluator: Mutex::new(Evaluator::prepare(pack)),
            timeout: AccessPolicy::DEFAULT_TIMEOUT,
        };
        policy.set_timeout(AccessPolicy::DEFAULT_TIMEOUT)?;
        Ok(policy)
    }

    /// Whether decisions run on the compiled RVM program (false: interpreter fallback).
    pub fn is_compiled(&self) -> bool {
        let evaluator = self.evaluator.lock().unwrap_or_else(|e| e.into_inner());
        matches!(*evaluator, Evaluator::Vm(_))
    }

    /// Changes the per-decision time limit.
    ///
    /// # Errors
    /// [`PolicyError::InvalidOption`] for a zero duration.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), PolicyError> {
        if timeout.is_zero() {
            return Err(PolicyError::InvalidOption {
                option: "timeout",
                reason: "must be greater than zero".into(),
            });
        }
        self.timeout = timeout;
        self.evaluator
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .set_timeout(timeout);
        Ok(())
    }

    /// Decides `input`.
    ///
    /// # Errors
    /// [`PolicyError::InvalidInput`] naming an empty `actor.sub`, `actor.tenant`,
    /// `action` or `execution.id`; [`PolicyError::Eval`]/[`PolicyError::Timeout`] when
    /// evaluation fails; [`PolicyError::DecisionShape`] when the pack returns a decision
    /// of the wrong shape. A caller should treat any error as *deny*.
    pub fn decide(&self, input: &AccessInput) -> Result<AccessDecision, PolicyError> {
        for (field, value) in [
            ("actor.sub", &input.actor.sub),
            ("actor.tenant", &input.actor.tenant),
            ("action", &input.action),
            ("execution.id", &input.execution.id),
        ] {
            if value.trim().is_empty() {
                return Err(PolicyError::InvalidInput {
                    field: field.into(),
                    reason: "must not be empty".into(),
                });
            }
        }
        let json = serde_json::to_string(input).map_err(|e| PolicyError::InvalidInput {
            field: "input".into(),
            reason: e.to_string(),
        })?;
        let value = Value::from_json_str(&json).map_err(|e| PolicyError::InvalidInput {
            field: "input".into(),
            reason: e.to_string(),
        })?;
        let result = {
            // A panic elsewhere while holding the lock leaves the evaluator usable: its
            // evaluation state is reset by the next `set_input`.
            let mut evaluator = self.evaluator.lock().unwrap_or_else(|e| e.into_inner());
            evaluator.eval(value)
        };
        let value = result.map_err(|e| classify_engine_error(DECISION_RULE, &e))?;
        let json =
            value_to_json(DECISION_RULE, &value)?.ok_or_else(|| PolicyError::DecisionShape {
                field: "decision".into(),
                reason: "undefined".into(),
            })?;
        parse_decision(&json)
    }
}

fn parse_decision(json: &serde_json::Value) -> Result<AccessDecision, PolicyError> {
    let shape = |field: &str, reason: &str| PolicyError::DecisionShape {
        field: field.into(),
        reason: reason.into(),
    };
    let allow = json
        .get("allow")
        .and_then(serde_json::Value::as_bool)
        .ok_or_else(|| shape("allow", "expected a boolean"))?;
    let step_up_required = json
        .get("step_up_required")
        .and_then(serde_json::Value::as_bool)
        .ok_or_else(|| shape("step_up_required", "expected a boolean"))?;
    let reasons = json
        .get("reasons")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| shape("reasons", "expected an array or set of strings"))?
        .iter()
        .map(|r| {
            r.as_str()
                .map(str::to_owned)
                .ok_or_else(|| shape("reasons", "expected strings"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AccessDecision {
        allow,
        step_up_required,
        reasons,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_shape_is_checked() {
        let ok = parse_decision(
            &serde_json::json!({"allow": true, "step_up_required": true, "reasons": ["x"]}),
        )
        .expect("ok");
        assert!(ok.allow && ok.step_up_required);
        assert_eq!(ok.reasons, ["x"]);
        let err = parse_decision(
            &serde_json::json!({"allow": "yes", "step_up_required": true, "reasons": []}),
        )
        .expect_err("bad allow");
        assert!(matches!(err, PolicyError::DecisionShape { ref field, .. } if field == "allow"));
        let err = parse_decision(
            &serde_json::json!({"allow": true, "step_up_required": true, "reasons": [1]}),
        )
        .expect_err("bad reasons");
        assert!(matches!(err, PolicyError::DecisionShape { ref field, .. } if field == "reasons"));
    }

    #[test]
    fn pack_without_decision_rule_is_refused() {
        let pack = Pack::from_sources(
            "x",
            &[("x.rego".into(), "package access\n\nallow := true\n".into())],
        )
        .expect("loads");
        assert!(matches!(
            AccessPolicy::from_pack(&pack),
            Err(PolicyError::UnknownNamespace { .. })
        ));
    }
}
