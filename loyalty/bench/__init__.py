"""Benchmarks on the real stack. Every figure is reported next to a baseline measured in the
same run, because on a shared 2-core machine only ratios are stable (DESIGN.md §8)."""
