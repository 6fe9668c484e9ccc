# PII handling (spec §3.6, MC-DATA-1152): artifacts and outputs tagged as PII must be
# redacted and may not leave the tenant's home region.
#
# Input: {"tenant": {"id", "home_region"},
#         "artifacts": [{"name", "tags", "redacted", "region", "destination_region"?}]?,
#         "outputs": [...same shape...]?}
package pii

import rego.v1

tenant := field(input, "tenant", {})

home_region := field(tenant, "home_region", "")

items contains {"kind": kind, "item": item} if {
	some kind in ["artifact", "output"]
	some item in array_field(input, sprintf("%vs", [kind]))
}

tags(item) := {lower(t) | some t in array_field(item, "tags"); is_string(t)}

is_pii(item) if "pii" in tags(item)

name_of(item) := field(item, "name", "<unnamed>")

# Where the bytes end up: an explicit destination, else where they are stored.
destination(item) := field(item, "destination_region", field(item, "region", ""))

deny_unredacted contains msg if {
	some entry in items
	is_pii(entry.item)
	not field(entry.item, "redacted", false) == true
	msg := sprintf("%v %v is tagged PII and is not redacted", [entry.kind, name_of(entry.item)])
}

deny_leaves_region contains msg if {
	some entry in items
	is_pii(entry.item)
	home_region != ""
	destination(entry.item) != home_region
	msg := sprintf("%v %v is tagged PII and may not leave %v (destination %v)", [entry.kind, name_of(entry.item), home_region, destination(entry.item)])
}

deny_no_home_region contains msg if {
	some entry in items
	is_pii(entry.item)
	home_region == ""
	msg := sprintf("%v %v is tagged PII but tenant %v has no home region", [entry.kind, name_of(entry.item), field(tenant, "id", "?")])
}

warn_unclassified contains msg if {
	some entry in items
	count(tags(entry.item)) == 0
	msg := sprintf("%v %v has no data classification tags", [entry.kind, name_of(entry.item)])
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
