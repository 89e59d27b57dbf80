"""`datacap run`: the metering loop and the plugins that ride on it."""
