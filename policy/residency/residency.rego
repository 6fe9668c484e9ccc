# Data residency: an execution, the data it touches and any backfill it performs must
# stay within the tenant's allowed regions. A backfill is checked at both ends: copying
# data *from* a forbidden region is as much a breach as copying it *to* one.
#
# Input: {"tenant": {"id", "allowed_regions", "residency_exceptions"?},
#         "execution": {"id", "region"}, "data": [{"name", "region"}]?,
#         "backfill": {"source_region", "target_region"}?}
package residency

import rego.v1

tenant := object.get(input, "tenant", {})

tenant_id := object.get(tenant, "id", "<unknown tenant>")

allowed := {r | some r in object.get(tenant, "allowed_regions", [])}

execution := object.get(input, "execution", {})

# Only these rules may be waived, and only through an approved tenant exception
# (e.g. draining a region that is being retired into an allowed one).
waivable := {"backfill_source"}

exception contains [name] if {
	some name in object.get(tenant, "residency_exceptions", [])
	name in waivable
}

deny_no_allowed_regions contains msg if {
	count(allowed) == 0
	msg := sprintf("tenant %v has no allowed regions", [tenant_id])
}

deny_execution_region contains msg if {
	region := object.get(execution, "region", "")
	region == ""
	msg := sprintf("execution %v has no region", [object.get(execution, "id", "?")])
}

deny_execution_region contains msg if {
	region := object.get(execution, "region", "")
	region != ""
	not region in allowed
	msg := sprintf("execution %v runs in %v, outside the allowed regions of tenant %v", [execution.id, region, tenant_id])
}

deny_data_region contains msg if {
	some item in object.get(input, "data", [])
	not item.region in allowed
	msg := sprintf("data %v is stored in %v, outside the allowed regions of tenant %v", [item.name, item.region, tenant_id])
}

deny_backfill_source contains msg if {
	source := input.backfill.source_region
	not source in allowed
	msg := sprintf("backfill source region %v is not allowed for tenant %v", [source, tenant_id])
}

deny_backfill_target contains msg if {
	target := input.backfill.target_region
	not target in allowed
	msg := sprintf("backfill target region %v is not allowed for tenant %v", [target, tenant_id])
}

# Allowed, but a cross-region read costs egress and latency.
warn_cross_region contains msg if {
	region := object.get(execution, "region", "")
	region in allowed
	some item in object.get(input, "data", [])
	item.region in allowed
	item.region != region
	msg := sprintf("data %v in %v is read from an execution in %v", [item.name, item.region, region])
}
