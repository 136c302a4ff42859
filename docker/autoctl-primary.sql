\getenv pw REPLICATION_PASSWORD
\getenv mon AUTOCTL_MONITOR_PASSWORD
\getenv app SHARDGATE_DB_PASSWORD
\getenv admin SHARDGATE_ADMIN_PASSWORD
ALTER ROLE pgautofailover_replicator PASSWORD :'pw';
ALTER ROLE pgautofailover_monitor PASSWORD :'mon';
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'shardgate') AS no_role \gset
\if :no_role
CREATE ROLE shardgate WITH LOGIN CREATEDB PASSWORD :'app';
\else
ALTER ROLE shardgate WITH LOGIN CREATEDB PASSWORD :'app';
\endif
SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') AS no_db \gset
\if :no_db
CREATE DATABASE :"db";
\endif
ALTER DATABASE :"db" OWNER TO shardgate;
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'shardgate_admin') AS no_admin \gset
\if :no_admin
CREATE ROLE shardgate_admin WITH LOGIN PASSWORD :'admin';
\else
ALTER ROLE shardgate_admin WITH LOGIN PASSWORD :'admin';
\endif
GRANT pg_read_all_stats TO shardgate_admin;
GRANT ALTER SYSTEM ON PARAMETER default_transaction_read_only TO shardgate_admin;
GRANT EXECUTE ON FUNCTION pg_reload_conf() TO shardgate_admin;
\c :"db"
GRANT EXECUTE ON FUNCTION pg_reload_conf() TO shardgate_admin;
\c template1
GRANT EXECUTE ON FUNCTION pg_reload_conf() TO shardgate_admin;
