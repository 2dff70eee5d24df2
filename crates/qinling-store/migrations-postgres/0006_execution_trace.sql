-- The trace an execution belongs to (qinling_types::trace::TraceContext's stored form:
-- trace id, the caller's span, sampled flag, when admission began). NULL: older rows.
ALTER TABLE executions ADD COLUMN trace TEXT;
