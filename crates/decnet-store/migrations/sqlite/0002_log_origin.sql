-- Issue 8: who vouches for a log row's decky and service. Rows written before this
-- migration came from the local collector. Keep in step with ../postgres.
ALTER TABLE logs ADD COLUMN origin TEXT NOT NULL DEFAULT 'local'
    CHECK (origin IN ('local', 'forwarded', 'imported'));
