-- Release 0007 -> 0008, after the functions of sql/functions/ it names were applied: recommend
-- sheds its hnsw.ef_search setting (only a superuser may name pgvector's setting in a SET clause
-- before the library is loaded: sql/functions/hnsw.sql), and only recsys-db's own functions may
-- raise it.
ALTER FUNCTION recsys.recommend(text, integer, text, boolean) RESET hnsw.ef_search;
REVOKE ALL ON FUNCTION recsys.raise_hnsw_ef_search(integer) FROM PUBLIC;
