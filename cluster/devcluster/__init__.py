"""A whole multi-node Tradewind cluster on one machine, on loopback addresses."""
