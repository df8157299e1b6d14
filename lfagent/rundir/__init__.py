"""The run directory: the run store (sqlite), the files a run writes and reads, and LF export."""
