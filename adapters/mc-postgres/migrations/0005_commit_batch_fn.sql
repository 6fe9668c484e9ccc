-- Group commit (ADR 0305): several units of work in one statement, one transaction,
-- one WAL flush.
--
-- `mc_commit_batch` runs `mc_commit` (migration 0004) once per unit, in order, each in
-- its own subtransaction (a PL/pgSQL block with an EXCEPTION clause): a unit that fails
-- rolls back alone — its idempotency claim, transition, created execution and audit
-- events — and the units before and after it are unaffected. Every unit is therefore
-- still all-or-nothing (DESIGN rule 2); what the units of one call share is the
-- transaction's commit, so a queue of concurrent actions costs one round trip and one
-- fsync instead of one each, and a tenant's chain-head row is locked once per batch
-- instead of once per action.
--
-- Parameters are parallel arrays with one element per unit (the parameters of
-- `mc_commit`, NULL where that unit has no such part); `p_legal_from[i]` is unit i's
-- list of legal source states joined with ','; `p_ev_count[i]` says how many of the
-- flattened event arrays belong to unit i (events of unit 1 first).
--
-- One row per unit comes back, `o_idx` = its position (1-based): `o_kind` is
-- 'committed' or 'replayed' as from `mc_commit`; 'failed' with the error's SQLSTATE,
-- message, DETAIL and constraint name; or 'deferred'. A unit that fails in a way that
-- sending it again resolves — MCC05, its events were sealed onto a stale head (another
-- replica moved the chain, or an earlier unit of the batch that was predicted to move
-- it did not commit); 40001 / 40P01, a lost race — is sent again by the caller in the
-- next batch, so every later unit of the same tenant in this batch is 'deferred'
-- (not run) and sent again after it: a tenant's units are applied in their order.
--
-- Lock order: the caller sorts the units by tenant, so two batches take chain heads in
-- the same order. A deadlock with other writers (40P01) is caught like any other error
-- and fails only the unit that waited.

CREATE FUNCTION mc_commit_batch(
    p_tenant          text[],
    p_key             text[],
    p_fingerprint     text[],
    p_outcome         text[],
    p_key_at          timestamptz[],
    p_key_sub_ns      smallint[],
    p_tr_id           text[],
    p_tr_to           text[],
    p_tr_attempt_inc  bigint[],
    p_tr_expected     bigint[],
    p_legal_from      text[],
    p_at              timestamptz[],
    p_at_sub_ns       smallint[],
    p_new_id          text[],
    p_new_state       text[],
    p_new_attempt     bigint[],
    p_new_manifest    text[],
    p_new_inputs      text[],
    p_new_parent      text[],
    p_new_root        text[],
    p_new_labels      text[],
    p_new_version     bigint[],
    p_new_created_at  timestamptz[],
    p_new_created_sub smallint[],
    p_new_updated_at  timestamptz[],
    p_new_updated_sub smallint[],
    p_head_seq        bigint[],
    p_head_hash       text[],
    p_ev_count        integer[],
    p_seqs            bigint[],
    p_ids             text[],
    p_kinds           text[],
    p_subs            text[],
    p_execs           text[],
    p_resources       text[],
    p_datas           text[],
    p_tss             timestamptz[],
    p_prevs           text[],
    p_hashes          text[]
)
RETURNS TABLE (
    o_idx            integer,
    o_kind           text,
    o_sqlstate       text,
    o_message        text,
    o_detail         text,
    o_constraint     text,
    o_fingerprint    text,
    o_outcome        text,
    o_tenant         text,
    o_id             text,
    o_state          text,
    o_attempt        bigint,
    o_manifest       text,
    o_inputs         text,
    o_parent         text,
    o_root           text,
    o_labels         jsonb,
    o_version        bigint,
    o_created_at     timestamptz,
    o_created_sub_ns smallint,
    o_updated_at     timestamptz,
    o_updated_sub_ns smallint
)
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
DECLARE
    n       integer := coalesce(cardinality(p_tenant), 0);
    ev_from integer := 0;
    ev_to   integer;
    r       record;
    blocked text[] := '{}';
BEGIN
    IF coalesce(cardinality(p_seqs), 0)
       <> (SELECT coalesce(sum(c), 0) FROM unnest(p_ev_count) AS c) THEN
        RAISE EXCEPTION 'mc_commit_batch: % events but counts add up to %',
            coalesce(cardinality(p_seqs), 0),
            (SELECT coalesce(sum(c), 0) FROM unnest(p_ev_count) AS c)
            USING ERRCODE = '22023';
    END IF;
    FOR i IN 1 .. n LOOP
        ev_to := ev_from + p_ev_count[i];
        o_idx := i;
        o_sqlstate := NULL; o_message := NULL; o_detail := NULL; o_constraint := NULL;
        o_fingerprint := NULL; o_outcome := NULL; o_tenant := NULL; o_id := NULL;
        o_state := NULL; o_attempt := NULL; o_manifest := NULL; o_inputs := NULL;
        o_parent := NULL; o_root := NULL; o_labels := NULL; o_version := NULL;
        o_created_at := NULL; o_created_sub_ns := NULL; o_updated_at := NULL;
        o_updated_sub_ns := NULL;
        IF p_tenant[i] = ANY (blocked) THEN
            -- An earlier unit of this tenant is to be sent again: so is this one, after
            -- it, so a tenant's units keep their order.
            o_kind := 'deferred';
            RETURN NEXT;
            ev_from := ev_to;
            CONTINUE;
        END IF;
        BEGIN
            SELECT * INTO STRICT r FROM mc_commit(
                p_tenant[i], p_key[i], p_fingerprint[i], p_outcome[i], p_key_at[i],
                p_key_sub_ns[i], p_tr_id[i], p_tr_to[i], p_tr_attempt_inc[i],
                p_tr_expected[i], string_to_array(p_legal_from[i], ','), p_at[i],
                p_at_sub_ns[i], p_new_id[i], p_new_state[i], p_new_attempt[i],
                p_new_manifest[i], p_new_inputs[i], p_new_parent[i], p_new_root[i],
                p_new_labels[i]::jsonb, p_new_version[i], p_new_created_at[i],
                p_new_created_sub[i], p_new_updated_at[i], p_new_updated_sub[i],
                p_head_seq[i], p_head_hash[i],
                coalesce(p_seqs[ev_from + 1 : ev_to], '{}'),
                coalesce(p_ids[ev_from + 1 : ev_to], '{}'),
                coalesce(p_kinds[ev_from + 1 : ev_to], '{}'),
                coalesce(p_subs[ev_from + 1 : ev_to], '{}'),
                coalesce(p_execs[ev_from + 1 : ev_to], '{}'),
                coalesce(p_resources[ev_from + 1 : ev_to], '{}'),
                coalesce(p_datas[ev_from + 1 : ev_to], '{}'),
                coalesce(p_tss[ev_from + 1 : ev_to], '{}'),
                coalesce(p_prevs[ev_from + 1 : ev_to], '{}'),
                coalesce(p_hashes[ev_from + 1 : ev_to], '{}'));
            o_kind := r.o_kind;
            o_fingerprint := r.o_fingerprint; o_outcome := r.o_outcome;
            o_tenant := r.o_tenant; o_id := r.o_id; o_state := r.o_state;
            o_attempt := r.o_attempt; o_manifest := r.o_manifest; o_inputs := r.o_inputs;
            o_parent := r.o_parent; o_root := r.o_root; o_labels := r.o_labels;
            o_version := r.o_version; o_created_at := r.o_created_at;
            o_created_sub_ns := r.o_created_sub_ns; o_updated_at := r.o_updated_at;
            o_updated_sub_ns := r.o_updated_sub_ns;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS o_sqlstate = RETURNED_SQLSTATE,
                                    o_message = MESSAGE_TEXT,
                                    o_detail = PG_EXCEPTION_DETAIL,
                                    o_constraint = CONSTRAINT_NAME;
            o_kind := 'failed';
            IF o_sqlstate IN ('MCC05', '40001', '40P01') THEN
                blocked := blocked || p_tenant[i];
            END IF;
        END;
        RETURN NEXT;
        ev_from := ev_to;
    END LOOP;
END
$$;
