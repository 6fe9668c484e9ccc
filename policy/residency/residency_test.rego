package residency

import rego.v1

base := {
	"tenant": {"id": "acme", "allowed_regions": ["eu-west-1", "eu-central-1"]},
	"execution": {"id": "exec_1", "region": "eu-west-1"},
	"data": [{"name": "logs", "region": "eu-west-1"}],
}

all_failures(inp) := f if {
	f := (((deny_no_allowed_regions | deny_execution_region) | deny_data_region) | deny_backfill_source) | deny_backfill_target with input as inp
}

test_in_region_execution_is_allowed if {
	count(all_failures(base)) == 0
	count(warn_cross_region) == 0 with input as base
}

test_execution_outside_allowed_regions_is_denied if {
	inp := object.union(base, {"execution": {"id": "exec_1", "region": "us-east-1"}})
	deny_execution_region == {"execution exec_1 runs in us-east-1, outside the allowed regions of tenant acme"} with input as inp
}

test_execution_without_region_is_denied if {
	inp := {"tenant": base.tenant, "execution": {"id": "exec_1"}}
	deny_execution_region == {"execution exec_1 has no region"} with input as inp
}

test_data_outside_allowed_regions_is_denied if {
	inp := object.union(base, {"data": [{"name": "dump", "region": "ap-south-1"}]})
	count(deny_data_region) == 1 with input as inp
}

test_tenant_without_regions_is_denied if {
	inp := object.union(base, {"tenant": {"id": "acme", "allowed_regions": []}})
	"tenant acme has no allowed regions" in deny_no_allowed_regions with input as inp
}

test_backfill_within_regions_is_allowed if {
	inp := object.union(base, {"backfill": {"source_region": "eu-central-1", "target_region": "eu-west-1"}})
	count(all_failures(inp)) == 0
}

test_backfill_target_outside_is_denied if {
	inp := object.union(base, {"backfill": {"source_region": "eu-west-1", "target_region": "us-east-1"}})
	deny_backfill_target == {"backfill target region us-east-1 is not allowed for tenant acme"} with input as inp
	count(deny_backfill_source) == 0 with input as inp
}

test_backfill_source_outside_is_denied if {
	inp := object.union(base, {"backfill": {"source_region": "us-east-1", "target_region": "eu-west-1"}})
	count(deny_backfill_source) == 1 with input as inp
	count(deny_backfill_target) == 0 with input as inp
}

test_cross_region_read_warns if {
	inp := object.union(base, {"data": [{"name": "archive", "region": "eu-central-1"}]})
	warn_cross_region == {"data archive in eu-central-1 is read from an execution in eu-west-1"} with input as inp
}

test_only_waivable_rules_can_be_excepted if {
	inp := object.union(base, {"tenant": {"id": "acme", "allowed_regions": ["eu-west-1"], "residency_exceptions": ["backfill_source", "execution_region"]}})
	exception == {["backfill_source"]} with input as inp
}

test_malformed_backfill_fails_closed if {
	inp := object.union(base, {"backfill": "yes"})
	count(deny_backfill_source) == 1 with input as inp
	count(deny_backfill_target) == 1 with input as inp
}

test_data_item_without_region_is_denied if {
	inp := object.union(base, {"data": [{"name": "orphan"}]})
	deny_data_region == {"data orphan is stored in <no region>, outside the allowed regions of tenant acme"} with input as inp
}
