# Execution budget: an execution's cost estimate, added to what the tenant has spent
# this period, must fit the tenant's budget; at 80 % of the budget the console warns.
#
# Input: {"tenant": {"id", "budget": {"limit", "spent", "overrun_approval"?}},
#         "execution": {"id", "cost_estimate"}}
package budget

import rego.v1

# Warn threshold, percent of the budget (spec: warn at 80 %).
near_limit_percent := 80

tenant := field(input, "tenant", {})

tenant_id := field(tenant, "id", "<unknown tenant>")

budget := field(tenant, "budget", {})

limit := field(budget, "limit", 0)

spent := field(budget, "spent", 0)

execution := field(input, "execution", {})

execution_id := field(execution, "id", "?")

estimate := field(execution, "cost_estimate", null)

valid_estimate if {
	is_number(estimate)
	estimate >= 0
}

valid_budget if {
	is_number(limit)
	limit > 0
	is_number(spent)
}

projected := spent + estimate if {
	valid_budget
	valid_estimate
}

percent := round((projected * 100) / limit) if projected

# A named, approved overrun (e.g. a quarter-end backfill) waives the over-budget denial.
exception contains ["over_budget"] if {
	approval := field(budget, "overrun_approval", "")
	is_string(approval)
	approval != ""
}

deny_no_budget contains msg if {
	not valid_budget
	msg := sprintf("tenant %v has no valid budget (limit must be > 0, spent a number)", [tenant_id])
}

deny_invalid_estimate contains msg if {
	not valid_estimate
	msg := sprintf("execution %v has no valid cost estimate (got %v)", [execution_id, estimate])
}

deny_over_budget contains msg if {
	projected > limit
	msg := sprintf("execution %v would bring tenant %v to %v of %v (%v%%)", [execution_id, tenant_id, projected, limit, percent])
}

warn_near_budget contains msg if {
	projected <= limit
	projected * 100 >= limit * near_limit_percent
	msg := sprintf("execution %v brings tenant %v to %v%% of its budget", [execution_id, tenant_id, percent])
}

# Input documents are untrusted: this reads a field of anything, falling back to a
# default when the document is not an object.
field(o, k, d) := object.get(o, k, d) if {
	is_object(o)
} else := d
