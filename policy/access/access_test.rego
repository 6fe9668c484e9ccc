package access

import rego.v1

actor(roles) := {"sub": "alice@company", "tenant": "acme", "roles": roles}

req(roles, act) := {
	"actor": actor(roles),
	"action": act,
	"execution": {"id": "exec_123", "state": "failed"},
}

test_operator_may_cancel if {
	d := decision with input as req(["operator"], "cancel")
	d.allow
	d.step_up_required
}

test_operator_may_retry if {
	d := decision with input as req(["operator"], "retry")
	d.allow
	d.reasons == ["step-up required for retry"]
}

test_operator_may_replay if {
	allow with input as req(["operator"], "replay")
}

test_viewer_may_not_cancel if {
	d := decision with input as req(["viewer"], "cancel")
	not d.allow
	d.reasons == [`actor alice@company with roles ["viewer"] may not cancel`]
}

test_viewer_may_not_retry_or_replay if {
	not allow with input as req(["viewer"], "retry")
	not allow with input as req(["viewer"], "replay")
}

test_viewer_may_view_without_step_up if {
	d := decision with input as req(["viewer"], "view")
	d.allow
	not d.step_up_required
	d.reasons == []
}

test_every_write_requires_step_up if {
	every act in write_actions {
		step_up_required with input as req(["operator"], act)
	}
}

test_no_roles_is_denied if {
	not allow with input as req([], "cancel")
}

test_unknown_role_is_denied if {
	not allow with input as req(["auditor"], "cancel")
}

test_unknown_action_is_denied_and_needs_step_up if {
	d := decision with input as req(["operator"], "delete")
	not d.allow
	d.step_up_required
	"unknown action delete" in d.reasons
}

test_missing_subject_is_denied if {
	d := decision with input as {"actor": {"tenant": "acme", "roles": ["operator"]}, "action": "cancel"}
	not d.allow
	"actor.sub is required" in d.reasons
}

test_blank_tenant_is_denied if {
	"actor.tenant is required" in deny_tenant with input as {"actor": {"sub": "a", "tenant": "  ", "roles": ["operator"]}, "action": "cancel"}
}

test_admin_is_break_glass if {
	count(warn_break_glass) == 1 with input as req(["admin"], "cancel")
	allow with input as req(["admin"], "cancel")
}

test_operator_admin_is_not_break_glass if {
	count(warn_break_glass) == 0 with input as req(["admin", "operator"], "cancel")
}

test_empty_input_is_denied if {
	d := decision with input as {}
	not d.allow
	d.step_up_required
}

test_malformed_roles_are_no_roles if {
	d := decision with input as {"actor": {"sub": "a", "tenant": "t", "roles": "operator"}, "action": "cancel"}
	not d.allow
}

test_non_object_input_is_denied if {
	d := decision with input as "cancel"
	not d.allow
	d.step_up_required
}
