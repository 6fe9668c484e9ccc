package pii

import rego.v1

tenant_eu := {"id": "acme", "home_region": "eu-west-1"}

test_redacted_pii_in_region_is_allowed if {
	inp := {"tenant": tenant_eu, "artifacts": [{"name": "customers.csv", "tags": ["PII"], "redacted": true, "region": "eu-west-1"}]}
	count(deny_unredacted) == 0 with input as inp
	count(deny_leaves_region) == 0 with input as inp
	count(warn_unclassified) == 0 with input as inp
}

test_unredacted_pii_is_denied if {
	inp := {"tenant": tenant_eu, "artifacts": [{"name": "customers.csv", "tags": ["pii"], "redacted": false, "region": "eu-west-1"}]}
	deny_unredacted == {"artifact customers.csv is tagged PII and is not redacted"} with input as inp
}

test_missing_redacted_flag_counts_as_unredacted if {
	inp := {"tenant": tenant_eu, "outputs": [{"name": "report.json", "tags": ["pii"], "region": "eu-west-1"}]}
	deny_unredacted == {"output report.json is tagged PII and is not redacted"} with input as inp
}

test_pii_leaving_region_is_denied if {
	inp := {"tenant": tenant_eu, "outputs": [{"name": "export.parquet", "tags": ["pii"], "redacted": true, "region": "eu-west-1", "destination_region": "us-east-1"}]}
	deny_leaves_region == {"output export.parquet is tagged PII and may not leave eu-west-1 (destination us-east-1)"} with input as inp
}

test_non_pii_may_leave_region if {
	inp := {"tenant": tenant_eu, "outputs": [{"name": "metrics.json", "tags": ["public"], "region": "eu-west-1", "destination_region": "us-east-1"}]}
	count(deny_leaves_region) == 0 with input as inp
	count(deny_unredacted) == 0 with input as inp
}

test_pii_without_home_region_is_denied if {
	inp := {"tenant": {"id": "acme"}, "artifacts": [{"name": "a", "tags": ["pii"], "redacted": true, "region": "eu-west-1"}]}
	deny_no_home_region == {"artifact a is tagged PII but tenant acme has no home region"} with input as inp
}

test_untagged_artifact_warns if {
	inp := {"tenant": tenant_eu, "artifacts": [{"name": "blob.bin", "region": "eu-west-1"}]}
	warn_unclassified == {"artifact blob.bin has no data classification tags"} with input as inp
}
