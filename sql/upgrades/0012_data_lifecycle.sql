-- Revision 0012 (data lifecycle): new tables and columns. Each part of issue 14 adds its
-- statements in its own section below, and the same DDL to sql/schema.sql.
SELECT 1;
