"""Many recorded sessions at once: inputs, the local pool or a Dask cluster, and the cohort report."""
