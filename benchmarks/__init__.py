"""Speed and memory benchmarks: `python -m benchmarks.NAME`, each prints a table."""
