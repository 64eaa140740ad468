// API keys at the gateway: who may call, which models, how often. Keys are stored only as their
// SHA-256 (a file of `name sha256-hex [rate=R] [burst=B] [models=a,b]` lines, `#` comments), a
// presented key (`Authorization: Bearer KEY` or `X-API-Key: KEY`) is hashed and compared with
// every stored hash in constant time (CRYPTO_memcmp, no early exit), and each key has a token
// bucket (rate per second, burst) as Envoy's local rate limit. Answers carry no detail: 401 for a
// missing or unknown key, 403 for a model the key may not use, 429 past the key's rate.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "http/message.h"

namespace galley::gateway {

struct ApiKey {
  std::string name;
  std::array<uint8_t, 32> sha256{};
  double rate = 0;                  // requests per second; 0: unlimited
  double burst = 0;                 // bucket size; defaults to max(1, rate)
  std::vector<std::string> models;  // empty: every model
};

enum class AuthOutcome { kAllowed, kMissing, kInvalid, kForbidden, kRateLimited };
std::string_view AuthOutcomeName(AuthOutcome o);

struct AuthDecision {
  AuthOutcome outcome = AuthOutcome::kAllowed;
  double retry_after_s = 0;  // when rate limited
};

class ApiKeys {
 public:
  // Parses the key file's text; InvalidArgument naming the line for a bad one.
  static absl::StatusOr<std::unique_ptr<ApiKeys>> Parse(std::string_view text);
  static absl::StatusOr<std::unique_ptr<ApiKeys>> Load(const std::string& path);

  // Decides for one request to `model` (empty: not a model's endpoint). Thread-safe.
  AuthDecision Check(const http::Request& request, std::string_view model, TimePoint now);
  size_t size() const { return keys_.size(); }

 private:
  struct Bucket {
    double tokens = 0;
    TimePoint last{};
    bool started = false;
  };
  std::vector<ApiKey> keys_;
  absl::Mutex mu_;
  std::vector<Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

// The answer for a decision that is not kAllowed: JSON error with no detail about keys.
http::Response AuthErrorResponse(const AuthDecision& d);

}  // namespace galley::gateway
