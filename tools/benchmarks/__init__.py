"""The benchmark suite: per-operation UART/APDU counts against the IoT SAFE lower bounds, modeled time on
real hardware, wall time and heap on the simulated bench, and many boards at once (docs/benchmarks.md)."""
