package budget

import rego.v1

inp(limit_, spent_, estimate_) := {
	"tenant": {"id": "acme", "budget": {"limit": limit_, "spent": spent_}},
	"execution": {"id": "exec_1", "cost_estimate": estimate_},
}

test_within_budget_is_allowed if {
	count(deny_over_budget) == 0 with input as inp(1000, 100, 100)
	count(warn_near_budget) == 0 with input as inp(1000, 100, 100)
}

test_over_budget_is_denied if {
	deny_over_budget == {"execution exec_1 would bring tenant acme to 1100 of 1000 (110%)"} with input as inp(1000, 900, 200)
}

test_exactly_at_budget_warns_but_is_allowed if {
	count(deny_over_budget) == 0 with input as inp(1000, 900, 100)
	warn_near_budget == {"execution exec_1 brings tenant acme to 100% of its budget"} with input as inp(1000, 900, 100)
}

test_warns_at_80_percent if {
	count(warn_near_budget) == 1 with input as inp(1000, 700, 100)
	count(warn_near_budget) == 0 with input as inp(1000, 700, 99)
}

test_negative_estimate_is_invalid if {
	deny_invalid_estimate == {"execution exec_1 has no valid cost estimate (got -5)"} with input as inp(1000, 0, -5)
}

test_missing_estimate_is_invalid if {
	count(deny_invalid_estimate) == 1 with input as {"tenant": {"id": "acme", "budget": {"limit": 10, "spent": 0}}, "execution": {"id": "e"}}
}

test_missing_budget_is_denied if {
	count(deny_no_budget) == 1 with input as {"tenant": {"id": "acme"}, "execution": {"id": "e", "cost_estimate": 1}}
	count(deny_no_budget) == 1 with input as inp(0, 0, 1)
}

test_approved_overrun_is_an_exception if {
	i := object.union(inp(1000, 900, 200), {"tenant": {"id": "acme", "budget": {"limit": 1000, "spent": 900, "overrun_approval": "CHG-42"}}})
	exception == {["over_budget"]} with input as i
	count(exception) == 0 with input as inp(1000, 900, 200)
}
