"""Read side: views built from the log by batched, tracked catch-up runners."""
