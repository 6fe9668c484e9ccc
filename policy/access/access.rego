# Console action access (spec §3.1, MC-UI-1101/1102): which roles may perform which
# console action on an execution, and whether a step-up grant is required first.
#
# Input: {"actor": {"sub", "tenant", "roles"}, "action", "execution": {"id", "state"}}.
# `decision` is the document hosts consume (mc-policy's AccessPolicy, mc-actions'
# ActionPolicy); the deny_*/warn_* rules are its conftest-style explanation.
package access

import rego.v1

# Console writes; every one needs a fresh step-up grant.
write_actions := {"cancel", "retry", "replay"}

# Reads that the console gates by role but that need no step-up.
read_actions := {"view"}

role_permissions := {
	"admin": {"view", "cancel", "retry", "replay"},
	"operator": {"view", "cancel", "retry", "replay"},
	"viewer": {"view"},
}

# Input documents are untrusted: every field is read through a type guard so that no
# shape of input makes evaluation fail. (Complete rules, not helper functions: rules are
# evaluated once per decision, which keeps a decision in the tens of microseconds.)
doc := input if {
	is_object(input)
} else := {}

action := object.get(doc, "action", "")

actor := a if {
	a := object.get(doc, "actor", {})
	is_object(a)
} else := {}

roles := r if {
	r := object.get(actor, "roles", [])
	is_array(r)
} else := []

sub := object.get(actor, "sub", "?")

known_actions := write_actions | read_actions

permitted contains act if {
	some role in roles
	some act in role_permissions[role]
}

valid_subject if {
	is_string(actor.sub)
	trim_space(actor.sub) != ""
}

valid_tenant if {
	is_string(actor.tenant)
	trim_space(actor.tenant) != ""
}

deny_subject contains "actor.sub is required" if not valid_subject

deny_tenant contains "actor.tenant is required" if not valid_tenant

deny_unknown_action contains msg if {
	not action in known_actions
	msg := sprintf("unknown action %v", [action])
}

deny_role contains msg if {
	action in known_actions
	not action in permitted
	msg := sprintf("actor %v with roles %v may not %v", [sub, roles, action])
}

# Admin is break-glass: allowed, but worth a second look in the audit trail.
warn_break_glass contains msg if {
	"admin" in roles
	not "operator" in roles
	action in write_actions
	msg := sprintf("actor %v used the admin role to %v", [sub, action])
}

failures := ((deny_subject | deny_tenant) | deny_unknown_action) | deny_role

default allow := false

# Allowed only with a positive permission *and* no failure: a deny rule that cannot
# evaluate must never turn into an allow.
allow if {
	action in permitted
	count(failures) == 0
}

# Fail safe: anything that is not a known read needs step-up.
default step_up_required := true

step_up_required := false if action in read_actions

reasons := sort(failures) if {
	count(failures) > 0
} else := [sprintf("step-up required for %v", [action])] if {
	step_up_required
} else := []

decision := {
	"allow": allow,
	"step_up_required": step_up_required,
	"reasons": reasons,
}
