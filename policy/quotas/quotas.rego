# Per-tenant quotas: concurrent executions, console actions per minute and evidence-pack
# size. Usage is the tenant's current usage *before* the request; a request that would
# take it past a quota is denied, and at 80 % of a quota the console warns.
#
# Input: {"tenant": {"id", "quotas": {"max_concurrent_executions", "max_actions_per_minute",
#         "max_pack_size_bytes"}}, "usage": {"concurrent_executions", "actions_last_minute",
#         "pack_size_bytes"}}
package quotas

import rego.v1

near_limit_percent := 80

tenant := field(input, "tenant", {})

tenant_id := field(tenant, "id", "<unknown tenant>")

quotas := field(tenant, "quotas", {})

usage := field(input, "usage", {})

# Per quota: the usage field it limits and what the request adds to it.
usage_of := {
	"max_concurrent_executions": {"key": "concurrent_executions", "adds": 1},
	"max_actions_per_minute": {"key": "actions_last_minute", "adds": 1},
	"max_pack_size_bytes": {"key": "pack_size_bytes", "adds": 0},
}

# Usage after admitting the request, per quota (numeric usage only).
demand[name] := used + spec.adds if {
	some name, spec in usage_of
	used := field(usage, spec.key, 0)
	is_number(used)
}

# Fail closed: a tenant without a positive number for a quota gets nothing.
deny_quota_missing contains msg if {
	some name, _ in usage_of
	not positive(field(quotas, name, 0))
	msg := sprintf("tenant %v has no %v quota configured", [tenant_id, name])
}

# Fail closed: usage that is not a number cannot be checked.
deny_invalid_usage contains msg if {
	some _, spec in usage_of
	not is_number(field(usage, spec.key, 0))
	msg := sprintf("usage %v of tenant %v is not a number", [spec.key, tenant_id])
}

deny_concurrent_executions contains msg if {
	over("max_concurrent_executions")
	msg := sprintf("tenant %v is at its concurrent execution quota (%v running, max %v)", [tenant_id, usage.concurrent_executions, quotas.max_concurrent_executions])
}

deny_actions_per_minute contains msg if {
	over("max_actions_per_minute")
	msg := sprintf("tenant %v is at its console action rate quota (%v in the last minute, max %v)", [tenant_id, usage.actions_last_minute, quotas.max_actions_per_minute])
}

deny_pack_size contains msg if {
	over("max_pack_size_bytes")
	msg := sprintf("evidence pack of %v bytes exceeds tenant %v quota of %v bytes", [usage.pack_size_bytes, tenant_id, quotas.max_pack_size_bytes])
}

warn_near_quota contains msg if {
	some name, used in demand
	q := field(quotas, name, 0)
	positive(q)
	used <= q
	used * 100 >= q * near_limit_percent
	msg := sprintf("tenant %v uses %v of %v (%v)", [tenant_id, used, q, name])
}

over(name) if {
	q := field(quotas, name, 0)
	positive(q)
	demand[name] > q
}

positive(n) if {
	is_number(n)
	n > 0
}

# Input documents are untrusted: this reads a field of anything, falling back to a
# default when the document is not an object.
field(o, k, d) := object.get(o, k, d) if {
	is_object(o)
} else := d
