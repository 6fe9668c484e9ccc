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

action := field(input, "action", "")

actor := field(input, "actor", {})

roles := array_field(actor, "roles")

permitted contains act if {
	some role in roles
	some act in role_permissions[role]
}

deny_subject contains "actor.sub is required" if {
	not is_nonempty_string(field(actor, "sub", ""))
}

deny_tenant contains "actor.tenant is required" if {
	not is_nonempty_string(field(actor, "tenant", ""))
}

deny_unknown_action contains msg if {
	not action in (write_actions | read_actions)
	msg := sprintf("unknown action %v", [action])
}

deny_role contains msg if {
	action in (write_actions | read_actions)
	not action in permitted
	msg := sprintf("actor %v with roles %v may not %v", [field(actor, "sub", "?"), roles, action])
}

# Admin is break-glass: allowed, but worth a second look in the audit trail.
warn_break_glass contains msg if {
	"admin" in roles
	not "operator" in roles
	action in write_actions
	msg := sprintf("actor %v used the admin role to %v", [field(actor, "sub", "?"), action])
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

is_nonempty_string(s) if {
	is_string(s)
	trim_space(s) != ""
}

# Input documents are untrusted: these read a field of anything, falling back to a
# default when the document is not an object or the field has the wrong type.
field(o, k, d) := object.get(o, k, d) if {
	is_object(o)
} else := d

array_field(o, k) := v if {
	v := field(o, k, [])
	is_array(v)
} else := []
