DROP TABLE txn_log;
