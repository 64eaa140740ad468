#include "gateway/balancer.h"

namespace galley::gateway {

std::optional<size_t> PickTwoChoices(const std::vector<Candidate>& candidates,
                                     std::mt19937_64& rng) {
  std::vector<size_t> eligible;
  eligible.reserve(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (candidates[i].eligible) eligible.push_back(i);
  }
  if (eligible.empty()) return std::nullopt;
  if (eligible.size() == 1) return eligible[0];
  std::uniform_int_distribution<size_t> first(0, eligible.size() - 1);
  const size_t a = first(rng);
  std::uniform_int_distribution<size_t> second(0, eligible.size() - 2);
  size_t b = second(rng);
  if (b >= a) ++b;  // distinct from a
  const size_t ia = eligible[a];
  const size_t ib = eligible[b];
  return candidates[ib].outstanding < candidates[ia].outstanding ? ib : ia;
}

}  // namespace galley::gateway
