# A handler module whose import runs out of memory after it has allocated (mpy_test_service): what a board's
# module looks like when its import fails halfway for want of heap.
ballast = bytearray(100000)
raise MemoryError("memory allocation failed (simulated, after 100000 bytes)")
