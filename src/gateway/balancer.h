// Replica choice: power of two choices on outstanding requests (Mitzenmacher, "The Power of Two
// Choices in Randomized Load Balancing", 2001; as Envoy's LEAST_REQUEST and Finagle's P2C). Pure:
// the caller passes the candidates and a seeded random source.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

namespace galley::gateway {

struct Candidate {
  int64_t outstanding = 0;  // requests in flight to this replica
  bool eligible = true;     // ready, not ejected, breaker lets a call through, not yet tried
};

// Picks two distinct eligible candidates at random and returns the index of the one with fewer
// outstanding requests (ties: the first drawn). One eligible: that one. None: nullopt.
std::optional<size_t> PickTwoChoices(const std::vector<Candidate>& candidates,
                                     std::mt19937_64& rng);

}  // namespace galley::gateway
