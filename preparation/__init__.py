"""Datasets: the canonical prepared layout, the synthetic scene generator and adapters for the
public benchmarks' upstream layouts."""
