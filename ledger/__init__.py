"""Write side: the eventsourcing application, commands, persistence wiring, mapper, chain."""
