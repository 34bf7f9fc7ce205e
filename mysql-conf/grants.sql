-- grants.sql: the least-privilege account spokesync connects with.
--
-- Run as an administrator. The variables below have defaults; set any of them
-- first to override (values set beforehand win). Piped, the client stops at the first error:
--
--   { echo "SET @spokesync_password = 'a long random secret', @app_schema = 'openmrs';"; cat grants.sql; } | sudo mariadb
--
--   @spokesync_user      account name                  (default 'spokesync')
--   @spokesync_host      host it connects from         (default '127.0.0.1': spokesync runs beside
--                        the database and connects over TCP; use '%' or an address otherwise)
--   @spokesync_password  its password                  (required: there is no default; put it in the
--                        node's environment as SPOKESYNC_DB_PASSWORD, referenced from the config)
--   @app_schema          database.schema: the application schema   (default 'openmrs')
--   @state_schema        database.stateSchema: spokesync's tables  (default 'spokesync')
--
-- What is granted, and why (`spokesync check` verifies exactly this):
--   REPLICATION SLAVE ON *.*        read the binlog (MySQL also calls it REPLICATION REPLICA)
--   REPLICATION CLIENT ON *.*       list binlog files and positions (BINLOG MONITOR on MariaDB 10.5+)
--   SELECT, INSERT, UPDATE, DELETE  on the application schema: snapshots and applying changes
--   ALL PRIVILEGES                  on the state schema: spokesync creates and migrates its own tables
-- `spokesync clone` (a new child) also needs, while it runs: CREATE and DROP on the application schema
-- (it creates the tables from the snapshot), and BINLOG ADMIN on *.* (MariaDB; SUPER on MySQL) so its
-- load runs with sql_log_bin = 0 and is never captured as changes. Grant them for the clone and
-- revoke them afterwards:
--   GRANT CREATE, DROP ON `openmrs`.* TO 'spokesync'@'127.0.0.1'; GRANT BINLOG ADMIN ON *.* TO 'spokesync'@'127.0.0.1';
--
-- Optional for a running node: BINLOG ADMIN on *.* (MariaDB; SUPER on MySQL) lets capture write its
-- journal with sql_log_bin = 0, so its own state writes stay out of the binlog (less binlog, a little
-- faster capture). Without it they are binlogged and capture skips them when it reads them back.
--
-- Statements are built with PREPARE so the names come from the variables; schema names have their
-- _ and % escaped, which are wildcards in GRANT ... ON `db`.*.

SET @spokesync_user = COALESCE(@spokesync_user, 'spokesync');
SET @spokesync_host = COALESCE(@spokesync_host, '127.0.0.1');
SET @app_schema = COALESCE(@app_schema, 'openmrs');
SET @state_schema = COALESCE(@state_schema, 'spokesync');

SET @spokesync_account = CONCAT(QUOTE(@spokesync_user), '@', QUOTE(@spokesync_host));
SET @app_target = CONCAT('`', REPLACE(REPLACE(REPLACE(@app_schema, '`', '``'), '_', '\\_'), '%', '\\%'), '`.*');
SET @state_target = CONCAT('`', REPLACE(REPLACE(REPLACE(@state_schema, '`', '``'), '_', '\\_'), '%', '\\%'), '`.*');

-- Without @spokesync_password this statement is a syntax error that says so, and nothing is granted.
SET @sql = CONCAT('CREATE USER IF NOT EXISTS ', @spokesync_account, ' IDENTIFIED BY ',
  IF(COALESCE(@spokesync_password, '') = '', '<missing password: SET @spokesync_password first>', QUOTE(@spokesync_password)));
PREPARE stmt FROM @sql;
EXECUTE stmt;
DEALLOCATE PREPARE stmt;

SET @sql = CONCAT('GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ', @spokesync_account);
PREPARE stmt FROM @sql;
EXECUTE stmt;
DEALLOCATE PREPARE stmt;

SET @sql = CONCAT('GRANT SELECT, INSERT, UPDATE, DELETE ON ', @app_target, ' TO ', @spokesync_account);
PREPARE stmt FROM @sql;
EXECUTE stmt;
DEALLOCATE PREPARE stmt;

SET @sql = CONCAT('GRANT ALL PRIVILEGES ON ', @state_target, ' TO ', @spokesync_account);
PREPARE stmt FROM @sql;
EXECUTE stmt;
DEALLOCATE PREPARE stmt;

SET @sql = NULL, @spokesync_password = NULL;
