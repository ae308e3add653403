"""The benchmark harness (``relay bench``): load generators, scenarios and reports."""
