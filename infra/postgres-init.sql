-- The image creates the `reelforge` database (POSTGRES_USER); Prefect keeps its own tables
-- in a second database on the same server.
CREATE DATABASE prefect;
