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

tenant := object.get(input, "tenant", {})

tenant_id := object.get(tenant, "id", "<unknown tenant>")

quotas := object.get(tenant, "quotas", {})

usage := object.get(input, "usage", {})

# Usage after admitting the request, per quota.
demand := {
	"max_concurrent_executions": object.get(usage, "concurrent_executions", 0) + 1,
	"max_actions_per_minute": object.get(usage, "actions_last_minute", 0) + 1,
	"max_pack_size_bytes": object.get(usage, "pack_size_bytes", 0),
}

# Fail closed: a tenant without a positive number for a quota gets nothing.
deny_quota_missing contains msg if {
	some name, _ in demand
	q := object.get(quotas, name, 0)
	not positive(q)
	msg := sprintf("tenant %v has no %v quota configured", [tenant_id, name])
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
	q := quotas[name]
	positive(q)
	used <= q
	used * 100 >= q * near_limit_percent
	msg := sprintf("tenant %v uses %v of %v (%v)", [tenant_id, used, q, name])
}

over(name) if {
	q := quotas[name]
	positive(q)
	demand[name] > q
}

positive(n) if {
	is_number(n)
	n > 0
}
