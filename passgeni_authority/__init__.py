"""PassGeni integration package (see README)."""
