"""Voice broadcasts (seed 003): the jobs REST API on top of the dialer, and its postbacks."""
