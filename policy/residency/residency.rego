# Data residency: an execution, the data it touches and any backfill it performs must
# stay within the tenant's allowed regions. A backfill is checked at both ends: copying
# data *from* a forbidden region is as much a breach as copying it *to* one.
#
# Input: {"tenant": {"id", "allowed_regions", "residency_exceptions"?},
#         "execution": {"id", "region"}, "data": [{"name", "region"}]?,
#         "backfill": {"source_region", "target_region"}?}
package residency

import rego.v1

tenant := field(input, "tenant", {})

tenant_id := field(tenant, "id", "<unknown tenant>")

allowed := {r | some r in array_field(tenant, "allowed_regions"); is_string(r)}

execution := field(input, "execution", {})

execution_id := field(execution, "id", "?")

execution_region := field(execution, "region", "")

# A backfill, when present, is checked at both ends; a malformed one fails closed.
backfill := field(input, "backfill", null)

# Only these rules may be waived, and only through an approved tenant exception
# (e.g. draining a region that is being retired into an allowed one).
waivable := {"backfill_source"}

exception contains [name] if {
	some name in array_field(tenant, "residency_exceptions")
	name in waivable
}

deny_no_allowed_regions contains msg if {
	count(allowed) == 0
	msg := sprintf("tenant %v has no allowed regions", [tenant_id])
}

deny_execution_region contains msg if {
	execution_region == ""
	msg := sprintf("execution %v has no region", [execution_id])
}

deny_execution_region contains msg if {
	execution_region != ""
	not execution_region in allowed
	msg := sprintf("execution %v runs in %v, outside the allowed regions of tenant %v", [execution_id, execution_region, tenant_id])
}

deny_data_region contains msg if {
	some item in array_field(input, "data")
	region := field(item, "region", "<no region>")
	not region in allowed
	msg := sprintf("data %v is stored in %v, outside the allowed regions of tenant %v", [field(item, "name", "?"), region, tenant_id])
}

deny_backfill_source contains msg if {
	backfill != null
	source := field(backfill, "source_region", "<no region>")
	not source in allowed
	msg := sprintf("backfill source region %v is not allowed for tenant %v", [source, tenant_id])
}

deny_backfill_target contains msg if {
	backfill != null
	target := field(backfill, "target_region", "<no region>")
	not target in allowed
	msg := sprintf("backfill target region %v is not allowed for tenant %v", [target, tenant_id])
}

# Allowed, but a cross-region read costs egress and latency.
warn_cross_region contains msg if {
	execution_region in allowed
	some item in array_field(input, "data")
	region := field(item, "region", "")
	region in allowed
	region != execution_region
	msg := sprintf("data %v in %v is read from an execution in %v", [field(item, "name", "?"), region, execution_region])
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
