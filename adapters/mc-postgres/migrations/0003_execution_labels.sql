-- Label search as an ordered index range (ADR 0303).
--
-- A GIN index on `labels` finds the executions carrying a label, but not in
-- newest-first order: a rare label on a large tenant had to fetch and sort every
-- match. This side table holds one row per (execution, label) keyed so that
-- `WHERE tenant AND key AND value AND (created, id) < cursor ORDER BY created DESC`
-- is a backward index range scan, like the unfiltered search. `mc_executions.labels`
-- stays the source of truth; triggers keep this table in step with it, so it is
-- correct whatever writes the executions (the adapter, a bulk load, hand-written SQL).

CREATE TABLE mc_execution_labels (
    tenant          text COLLATE "C" NOT NULL,
    key             text COLLATE "C" NOT NULL,
    value           text COLLATE "C" NOT NULL,
    created_at      timestamptz NOT NULL,
    created_sub_ns  smallint NOT NULL,
    id              text COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant, key, value, created_at, created_sub_ns, id)
);

INSERT INTO mc_execution_labels (tenant, key, value, created_at, created_sub_ns, id)
SELECT e.tenant, l.key, l.value, e.created_at, e.created_sub_ns, e.id
  FROM mc_executions e, jsonb_each_text(e.labels) AS l;

CREATE FUNCTION mc_execution_labels_sync() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM mc_execution_labels x
         USING jsonb_each_text(OLD.labels) AS l
         WHERE x.tenant = OLD.tenant AND x.key = l.key AND x.value = l.value
           AND x.created_at = OLD.created_at AND x.created_sub_ns = OLD.created_sub_ns
           AND x.id = OLD.id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO mc_execution_labels (tenant, key, value, created_at, created_sub_ns, id)
        SELECT NEW.tenant, l.key, l.value, NEW.created_at, NEW.created_sub_ns, NEW.id
          FROM jsonb_each_text(NEW.labels) AS l;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER mc_executions_labels_insert
    AFTER INSERT ON mc_executions
    FOR EACH ROW WHEN (NEW.labels <> '{}'::jsonb)
    EXECUTE FUNCTION mc_execution_labels_sync();

-- State transitions do not name these columns, so they never fire it.
CREATE TRIGGER mc_executions_labels_update
    AFTER UPDATE OF tenant, id, labels, created_at, created_sub_ns ON mc_executions
    FOR EACH ROW EXECUTE FUNCTION mc_execution_labels_sync();

CREATE TRIGGER mc_executions_labels_delete
    AFTER DELETE ON mc_executions
    FOR EACH ROW WHEN (OLD.labels <> '{}'::jsonb)
    EXECUTE FUNCTION mc_execution_labels_sync();

DROP INDEX mc_executions_labels;
