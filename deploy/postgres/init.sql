-- Veritrace's database for the distributed mode (`veritrace serve`), run once by the postgres
-- image on an empty data directory (/docker-entrypoint-initdb.d/), as its superuser, with psql.
--
-- One database, `veritrace`; one schema per service, owned by the service's own role, which
-- creates its tables there through its migrations. The only cross-schema access is reading
-- `identity` (every service checks API keys against identity.api_keys), and the audit role
-- reads everything.
--
-- Passwords come from the postgres container's environment (compose.yaml sets them, with
-- dev-only defaults that a deployment must override). psql's \getenv needs psql 15 or later.

\set ON_ERROR_STOP on

\getenv identity_password VERITRACE_IDENTITY_DB_PASSWORD
\getenv evidence_password VERITRACE_EVIDENCE_DB_PASSWORD
\getenv cases_password VERITRACE_CASES_DB_PASSWORD
\getenv provenance_password VERITRACE_PROVENANCE_DB_PASSWORD
\getenv anchor_password VERITRACE_ANCHOR_DB_PASSWORD
\getenv audit_password VERITRACE_AUDIT_DB_PASSWORD

-- A missing variable would otherwise surface as a puzzling syntax error further down.
\if :{?identity_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'VERITRACE_IDENTITY_DB_PASSWORD is not set'; END $$;
\endif
\if :{?evidence_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'VERITRACE_EVIDENCE_DB_PASSWORD is not set'; END $$;
\endif
\if :{?cases_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'VERITRACE_CASES_DB_PASSWORD is not set'; END $$;
\endif
\if :{?provenance_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'VERITRACE_PROVENANCE_DB_PASSWORD is not set'; END $$;
\endif
\if :{?anchor_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'VERITRACE_ANCHOR_DB_PASSWORD is not set'; END $$;
\endif
\if :{?audit_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'VERITRACE_AUDIT_DB_PASSWORD is not set'; END $$;
\endif

CREATE ROLE veritrace_identity LOGIN PASSWORD :'identity_password';
CREATE ROLE veritrace_evidence LOGIN PASSWORD :'evidence_password';
CREATE ROLE veritrace_cases LOGIN PASSWORD :'cases_password';
CREATE ROLE veritrace_provenance LOGIN PASSWORD :'provenance_password';
CREATE ROLE veritrace_anchor LOGIN PASSWORD :'anchor_password';
-- `veritrace audit`: reads every schema, writes nothing.
CREATE ROLE veritrace_audit LOGIN PASSWORD :'audit_password';

CREATE DATABASE veritrace;
REVOKE ALL ON DATABASE veritrace FROM PUBLIC;
GRANT CONNECT ON DATABASE veritrace
    TO veritrace_identity, veritrace_evidence, veritrace_cases, veritrace_provenance, veritrace_anchor, veritrace_audit;
-- Each service's migrations start with `CREATE SCHEMA IF NOT EXISTS <its schema>`, and
-- PostgreSQL checks the database's CREATE privilege before it notices that the schema exists.
GRANT CREATE ON DATABASE veritrace
    TO veritrace_identity, veritrace_evidence, veritrace_cases, veritrace_provenance, veritrace_anchor;

\connect veritrace

CREATE SCHEMA identity AUTHORIZATION veritrace_identity;
CREATE SCHEMA evidence AUTHORIZATION veritrace_evidence;
CREATE SCHEMA cases AUTHORIZATION veritrace_cases;
CREATE SCHEMA provenance AUTHORIZATION veritrace_provenance;
CREATE SCHEMA anchor AUTHORIZATION veritrace_anchor;

-- API-key checks: the domains and the anchor read identity's tables, including those its later
-- migrations create (default privileges of the role that creates them).
GRANT USAGE ON SCHEMA identity
    TO veritrace_evidence, veritrace_cases, veritrace_provenance, veritrace_anchor, veritrace_audit;
GRANT SELECT ON ALL TABLES IN SCHEMA identity
    TO veritrace_evidence, veritrace_cases, veritrace_provenance, veritrace_anchor, veritrace_audit;
ALTER DEFAULT PRIVILEGES FOR ROLE veritrace_identity IN SCHEMA identity
    GRANT SELECT ON TABLES TO veritrace_evidence, veritrace_cases, veritrace_provenance, veritrace_anchor, veritrace_audit;

-- The audit reads the event stores and the anchor's leaves and batches.
GRANT USAGE ON SCHEMA evidence, cases, provenance, anchor TO veritrace_audit;
GRANT SELECT ON ALL TABLES IN SCHEMA evidence, cases, provenance, anchor TO veritrace_audit;
ALTER DEFAULT PRIVILEGES FOR ROLE veritrace_evidence IN SCHEMA evidence
    GRANT SELECT ON TABLES TO veritrace_audit;
ALTER DEFAULT PRIVILEGES FOR ROLE veritrace_cases IN SCHEMA cases
    GRANT SELECT ON TABLES TO veritrace_audit;
ALTER DEFAULT PRIVILEGES FOR ROLE veritrace_provenance IN SCHEMA provenance
    GRANT SELECT ON TABLES TO veritrace_audit;
ALTER DEFAULT PRIVILEGES FOR ROLE veritrace_anchor IN SCHEMA anchor
    GRANT SELECT ON TABLES TO veritrace_audit;
