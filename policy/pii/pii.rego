# PII handling (spec §3.6, MC-DATA-1152): artifacts and outputs tagged as PII must be
# redacted and may not leave the tenant's home region.
#
# Input: {"tenant": {"id", "home_region"},
#         "artifacts": [{"name", "tags", "redacted", "region", "destination_region"?}]?,
#         "outputs": [...same shape...]?}
package pii

import rego.v1

tenant := object.get(input, "tenant", {})

home_region := object.get(tenant, "home_region", "")

items contains {"kind": kind, "item": item} if {
	some kind in ["artifact", "output"]
	some item in object.get(input, sprintf("%vs", [kind]), [])
}

tags(item) := {lower(t) | some t in object.get(item, "tags", [])}

is_pii(item) if "pii" in tags(item)

# Where the bytes end up: an explicit destination, else where they are stored.
destination(item) := object.get(item, "destination_region", object.get(item, "region", ""))

deny_unredacted contains msg if {
	some entry in items
	is_pii(entry.item)
	not object.get(entry.item, "redacted", false) == true
	msg := sprintf("%v %v is tagged PII and is not redacted", [entry.kind, entry.item.name])
}

deny_leaves_region contains msg if {
	some entry in items
	is_pii(entry.item)
	home_region != ""
	destination(entry.item) != home_region
	msg := sprintf("%v %v is tagged PII and may not leave %v (destination %v)", [entry.kind, entry.item.name, home_region, destination(entry.item)])
}

deny_no_home_region contains msg if {
	some entry in items
	is_pii(entry.item)
	home_region == ""
	msg := sprintf("%v %v is tagged PII but tenant %v has no home region", [entry.kind, entry.item.name, object.get(tenant, "id", "?")])
}

warn_unclassified contains msg if {
	some entry in items
	count(tags(entry.item)) == 0
	msg := sprintf("%v %v has no data classification tags", [entry.kind, entry.item.name])
}
