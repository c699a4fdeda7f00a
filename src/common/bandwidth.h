// The machine's read bandwidth: what decode speed is bounded by, since a batch-1 decode
// reads every weight byte once per token. Measured by n_threads threads streaming over a
// buffer much larger than the last-level cache, best of a few passes (the host's memory
// is shared and noisy, so the best pass is the least disturbed one).
#pragma once

#include <cstddef>

namespace lcx {

// GB/s (1e9 bytes/s). `bytes` is the buffer size (default 1 GiB), `passes` how many
// timed passes to take the best of. Allocates and frees the buffer inside the call.
double measure_read_bandwidth_gbs(int n_threads, size_t bytes = size_t(1) << 30, int passes = 3);

}  // namespace lcx
