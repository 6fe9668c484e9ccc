package quotas

import rego.v1

limits := {"max_concurrent_executions": 10, "max_actions_per_minute": 60, "max_pack_size_bytes": 1000}

inp(concurrent, actions, size) := {
	"tenant": {"id": "acme", "quotas": limits},
	"usage": {"concurrent_executions": concurrent, "actions_last_minute": actions, "pack_size_bytes": size},
}

failures(i) := f if {
	f := ((deny_quota_missing | deny_concurrent_executions) | deny_actions_per_minute) | deny_pack_size with input as i
}

test_low_usage_is_allowed if {
	count(failures(inp(1, 1, 10))) == 0
	count(warn_near_quota) == 0 with input as inp(1, 1, 10)
}

test_concurrent_quota_is_enforced if {
	deny_concurrent_executions == {"tenant acme is at its concurrent execution quota (10 running, max 10)"} with input as inp(10, 1, 10)
	count(deny_concurrent_executions) == 0 with input as inp(9, 1, 10)
}

test_action_rate_is_enforced if {
	count(deny_actions_per_minute) == 1 with input as inp(1, 60, 10)
	count(deny_actions_per_minute) == 0 with input as inp(1, 59, 10)
}

test_pack_size_is_enforced if {
	deny_pack_size == {"evidence pack of 1001 bytes exceeds tenant acme quota of 1000 bytes"} with input as inp(1, 1, 1001)
	count(deny_pack_size) == 0 with input as inp(1, 1, 1000)
}

test_missing_quota_fails_closed if {
	i := {"tenant": {"id": "acme", "quotas": {"max_concurrent_executions": 10, "max_actions_per_minute": 0}}, "usage": {}}
	deny_quota_missing == {
		"tenant acme has no max_actions_per_minute quota configured",
		"tenant acme has no max_pack_size_bytes quota configured",
	} with input as i
}

test_near_quota_warns if {
	warn_near_quota == {"tenant acme uses 8 of 10 (max_concurrent_executions)"} with input as inp(7, 1, 10)
}

test_non_numeric_usage_fails_closed if {
	i := object.union(inp(1, 1, 10), {"usage": {"concurrent_executions": "many"}})
	deny_invalid_usage == {"usage concurrent_executions of tenant acme is not a number"} with input as i
	count(deny_concurrent_executions) == 0 with input as i
}
