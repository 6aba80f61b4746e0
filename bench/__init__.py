"""`python -m bench`: throughput, latency, isolation, memory and page weight of the app, as ratios in one run."""
