"""Domain model of the customs ledger: aggregates, events, rules, reference data, errors."""
