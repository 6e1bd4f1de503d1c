"""People's accounts beyond signing in: the groups they belong to, the models they may use, their
quotas."""
