-- Each capture job, by who captured and in capture order: what GET /capture lists (the job
-- itself is read from its stream).
CREATE TABLE capture_jobs (
    capture_id   TEXT PRIMARY KEY,
    organisation TEXT NOT NULL,
    position     BIGINT NOT NULL
);
CREATE INDEX capture_jobs_by_organisation ON capture_jobs (organisation, position);
