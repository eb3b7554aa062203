#pragma once
// Estimated Shannon entropy of the source distribution of one destination's SYNs over a window,
// normalised to [0, 1]: about 0 when one source sends everything, about 1 when every SYN comes
// from a different source (the spoofed random flood).
//
// Estimator. Inputs are the heavy sources from a SpaceSaving summary, the window's SYN count N
// and the HyperLogLog distinct-source estimate D.
//   - each heavy source with a guaranteed (lower-bound) count g > 0 contributes -p log p
//     with p = g / N;
//   - the remaining mass r = 1 - sum p is taken as spread evenly over n = max(D - k, 1) sources,
//     k being the number of heavy sources used, contributing r log(n / r). n is further capped at
//     r N, the SYNs left for them, since no seen source can have sent less than one SYN;
//   - the sum is divided by log N (N <= 1 gives 0) and clamped to [0, 1].
// Bias: the estimate is biased upwards. Lower-bound counts move some heavy-hitter mass into the
// remainder, and the even spread is the largest entropy that remainder can have. For a spoofed
// flood (a long tail of one-SYN sources) that assumption is close to exact; for a skewed tail of
// medium sources just below the summary's reach it overstates the entropy by up to
// r log(n / r) minus the tail's true entropy. The HyperLogLog error in D (3.25 %) moves the
// result by at most r log(1.0325) / log N, under 0.003 for N >= 100.
// Not for the packet path: called once per destination per evaluation.
// Thread safety: a pure function of its arguments.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>

#include "aggregate/space_saving.hpp"

namespace synwatch {

[[nodiscard]] inline double normalized_source_entropy(std::span<const HeavySource> heavy_sources,
                                                      std::uint64_t total_syns,
                                                      double distinct_sources) noexcept {
  if (total_syns <= 1) return 0.0;
  const auto syns = static_cast<double>(total_syns);
  double entropy = 0.0;
  double heavy_mass = 0.0;
  double heavy_count = 0.0;
  for (const HeavySource& source : heavy_sources) {
    // Clamped so inconsistent inputs (counts above N) cannot push the remainder negative.
    const double p =
        std::min(static_cast<double>(source.guaranteed_count()) / syns, 1.0 - heavy_mass);
    if (p <= 0.0) continue;
    entropy -= p * std::log(p);
    heavy_mass += p;
    heavy_count += 1.0;
  }
  const double rest = 1.0 - heavy_mass;
  if (rest > 0.0) {
    const double distinct = distinct_sources >= 0.0 ? distinct_sources : 0.0;  // NaN too
    const double spread = std::max(std::min(distinct - heavy_count, rest * syns), 1.0);
    entropy += rest * std::log(spread / rest);
  }
  return std::clamp(entropy / std::log(syns), 0.0, 1.0);
}

}  // namespace synwatch
