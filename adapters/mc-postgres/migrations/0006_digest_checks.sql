-- Hex-digest CHECK constraints that cost ~0.5 µs instead of ~10 µs per row.
--
-- 0001 and 0002 checked every SHA-256 column with `col ~ '^[0-9a-f]{64}$'`.
-- PostgreSQL's regex engine runs an anchored bounded repetition slowly: about 10 µs
-- per value on this machine, and an action writes ~7 such values (the execution row
-- is re-checked on every UPDATE, the idempotency record, two per audit event, the
-- chain head), which made CHECK evaluation ~15 % of the server's CPU per action in
-- `perf`. `octet_length(col) = 64 AND col !~ '[^0-9a-f]'` accepts exactly the same
-- values (64 bytes, each one of 0-9a-f) at ~0.5 µs. Existing rows are re-validated
-- by ADD CONSTRAINT; names are kept.

ALTER TABLE mc_executions
    DROP CONSTRAINT mc_executions_manifest_digest_check,
    DROP CONSTRAINT mc_executions_inputs_digest_check,
    ADD CONSTRAINT mc_executions_manifest_digest_check
        CHECK (octet_length(manifest_digest) = 64 AND manifest_digest !~ '[^0-9a-f]'),
    ADD CONSTRAINT mc_executions_inputs_digest_check
        CHECK (octet_length(inputs_digest) = 64 AND inputs_digest !~ '[^0-9a-f]');

ALTER TABLE mc_idempotency
    DROP CONSTRAINT mc_idempotency_fingerprint_check,
    ADD CONSTRAINT mc_idempotency_fingerprint_check
        CHECK (octet_length(fingerprint) = 64 AND fingerprint !~ '[^0-9a-f]');

ALTER TABLE mc_audit_events
    DROP CONSTRAINT mc_audit_events_prev_check,
    DROP CONSTRAINT mc_audit_events_hash_check,
    ADD CONSTRAINT mc_audit_events_prev_check
        CHECK (octet_length(prev) = 64 AND prev !~ '[^0-9a-f]'),
    ADD CONSTRAINT mc_audit_events_hash_check
        CHECK (octet_length(hash) = 64 AND hash !~ '[^0-9a-f]');

ALTER TABLE mc_audit_heads
    DROP CONSTRAINT mc_audit_heads_hash_check,
    ADD CONSTRAINT mc_audit_heads_hash_check
        CHECK (octet_length(hash) = 64 AND hash !~ '[^0-9a-f]');
