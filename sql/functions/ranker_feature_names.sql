-- Names of the features recsys.candidate_features returns, in order. Feature 16, repeat_score:
-- every item of the user's history, weighted by behavior and halving every 25 events back.
-- Rankers trained on fewer features read the first ones only.
CREATE OR REPLACE FUNCTION recsys.ranker_feature_names() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ARRAY['vector_score', 'cf_score', 'session_score', 'trend_score', 'log_pop_1d',
                   'log_pop_7d', 'log_pop_total', 'category_long_share',
                   'category_recent_share', 'category_predicted_share', 'hours_since_item',
                   'hours_since_category', 'max_behavior_weight_on_item', 'item_age_days',
                   'n_sources', 'repeat_score'] $$;
