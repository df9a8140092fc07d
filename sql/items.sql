-- Named queries of the catalog door (recsys_db/ingest/items.py): staged rows are judged
-- set-based with the id rules of sql/functions/event_rules.sql, then stored in one statement.

-- name: stage
CREATE TEMP TABLE recsys_item_stage (
    line_no      bigint NOT NULL,
    item_id      text,
    category_id  text,
    active       text,
    attributes   text,
    problem      text,
    raw          text,
    active_value boolean
) ON COMMIT DROP;

-- name: copy
COPY pg_temp.recsys_item_stage (line_no, item_id, category_id, active, attributes, problem, raw)
FROM STDIN

-- name: judge
-- Normalises ids, reads `active`, names each bad row's problem.
UPDATE pg_temp.recsys_item_stage s
SET item_id = recsys.normalize_id(s.item_id),
    category_id = recsys.normalize_id(s.category_id),
    active_value = CASE lower(btrim(s.active))
                       WHEN 'true' THEN true WHEN 't' THEN true WHEN 'yes' THEN true
                       WHEN 'y' THEN true WHEN '1' THEN true
                       WHEN 'false' THEN false WHEN 'f' THEN false WHEN 'no' THEN false
                       WHEN 'n' THEN false WHEN '0' THEN false END,
    problem = coalesce(s.problem, CASE
        WHEN recsys.normalize_id(s.item_id) IS NULL THEN 'missing item_id'
        WHEN length(recsys.normalize_id(s.item_id)) > recsys.max_id_length()
            THEN format('item_id longer than %s characters', recsys.max_id_length())
        WHEN length(recsys.normalize_id(s.category_id)) > recsys.max_id_length()
            THEN format('category_id longer than %s characters', recsys.max_id_length())
        WHEN nullif(btrim(s.active), '') IS NOT NULL
             AND lower(btrim(s.active)) NOT IN ('true', 't', 'yes', 'y', '1',
                                                 'false', 'f', 'no', 'n', '0')
            THEN format('active must be true or false, got %s',
                        quote_literal(left(s.active, 40)))
    END);

-- name: repeated
-- An item listed twice: every later line is a problem.
UPDATE pg_temp.recsys_item_stage s
SET problem = format('item_id repeated (first on line %s)', r.first_line)
FROM (SELECT x.line_no, min(x.line_no) OVER (PARTITION BY x.item_id) AS first_line
      FROM pg_temp.recsys_item_stage x WHERE x.problem IS NULL) r
WHERE r.line_no = s.line_no AND r.first_line < r.line_no;

-- name: check
SELECT count(*) FROM pg_temp.recsys_item_stage WHERE problem IS NOT NULL;

-- name: problems
SELECT line_no, problem FROM pg_temp.recsys_item_stage
WHERE problem IS NOT NULL ORDER BY line_no LIMIT %(limit)s;

-- name: load
-- One statement: new categories, listed items updated (attributes replaced; category and active
-- set when given), new items inserted (active unless told otherwise; first_seen stays NULL until
-- their first event). Returns (updated items, new items, new categories).
WITH s AS (
    SELECT st.item_id, st.category_id, st.active_value AS active,
           coalesce(st.attributes::jsonb, '{}'::jsonb) AS attributes
    FROM pg_temp.recsys_item_stage st),
new_categories AS (
    INSERT INTO recsys.categories (category_id)
    SELECT DISTINCT s.category_id FROM s WHERE s.category_id IS NOT NULL
    ON CONFLICT (category_id) DO NOTHING
    RETURNING category_key, category_id),
cat AS (
    SELECT n.category_key, n.category_id FROM new_categories n
    UNION ALL
    SELECT c.category_key, c.category_id FROM recsys.categories c
    WHERE c.category_id IN (SELECT s.category_id FROM s)),
updated AS (
    UPDATE recsys.items i
    SET category_key = coalesce(cat.category_key, i.category_key),
        attributes = s.attributes,
        active = coalesce(s.active, i.active)
    FROM s LEFT JOIN cat ON cat.category_id = s.category_id
    WHERE i.item_id = s.item_id
    RETURNING i.item_key),
inserted AS (
    INSERT INTO recsys.items (item_id, category_key, attributes, active)
    SELECT s.item_id, cat.category_key, s.attributes, coalesce(s.active, true)
    FROM s LEFT JOIN cat ON cat.category_id = s.category_id
    WHERE NOT EXISTS (SELECT 1 FROM recsys.items i WHERE i.item_id = s.item_id)
    ON CONFLICT (item_id) DO NOTHING
    RETURNING item_key)
SELECT (SELECT count(*) FROM updated), (SELECT count(*) FROM inserted),
       (SELECT count(*) FROM new_categories);
