-- paceline: requires superuser
--
-- The login functions of migration 0007 move from the dashboard's role to a
-- role of their own, paceline_login.
--
-- paceline_login_lookup returns an account's argon2 hash and e-mail, and
-- paceline_login_outcome can lock any account or replace its hash. Granted
-- to paceline_dashboard they were in reach of any SQL injected into a person
-- session: `RESET ROLE` returns such a session to paceline_dashboard. No
-- dashboard role can become paceline_login (it is a member of nothing and
-- nobody is a member of it); the dashboard opens a separate connection as it
-- for password checks only, which runs nothing but the two parameterised
-- login calls. The role is new on the server, so a superuser applies this
-- migration (`paceline db migrate` as the administrator creates the role
-- first); everything granted below is the owner's to grant.
REVOKE ALL ON FUNCTION paceline_login_lookup(text) FROM paceline_dashboard;
REVOKE ALL ON FUNCTION paceline_login_outcome(bigint, boolean, timestamptz, integer, interval, text)
    FROM paceline_dashboard;
GRANT USAGE ON SCHEMA public TO paceline_login;
GRANT EXECUTE ON FUNCTION paceline_login_lookup(text) TO paceline_login;
GRANT EXECUTE ON FUNCTION paceline_login_outcome(bigint, boolean, timestamptz, integer, interval, text)
    TO paceline_login;
