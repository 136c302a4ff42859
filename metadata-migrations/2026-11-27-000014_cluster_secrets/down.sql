DROP TABLE cluster_secrets;
