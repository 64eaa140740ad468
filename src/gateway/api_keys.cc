#include "gateway/api_keys.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "common/strings.h"

namespace galley::gateway {
namespace {

bool HexByte(char hi, char lo, uint8_t& out) {
  auto v = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  const int h = v(hi), l = v(lo);
  if (h < 0 || l < 0) return false;
  out = static_cast<uint8_t>(h * 16 + l);
  return true;
}

bool ParsePositive(std::string_view s, double& out) {
  try {
    size_t used = 0;
    out = std::stod(std::string(s), &used);
    return used == s.size() && std::isfinite(out) && out > 0;
  } catch (...) {
    return false;
  }
}

// The key a request presents, or empty.
std::string_view PresentedKey(const http::Request& req) {
  namespace bhttp = boost::beast::http;
  if (auto it = req.find(bhttp::field::authorization); it != req.end()) {
    std::string_view v(it->value().data(), it->value().size());
    if (v.size() > 7 && (v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer ")) {
      return StripWhitespace(v.substr(7));
    }
    return {};
  }
  if (auto it = req.find("X-API-Key"); it != req.end()) {
    return StripWhitespace(std::string_view(it->value().data(), it->value().size()));
  }
  return {};
}

}  // namespace

std::string_view AuthOutcomeName(AuthOutcome o) {
  switch (o) {
    case AuthOutcome::kAllowed:
      return "allowed";
    case AuthOutcome::kMissing:
      return "missing";
    case AuthOutcome::kInvalid:
      return "invalid";
    case AuthOutcome::kForbidden:
      return "forbidden";
    case AuthOutcome::kRateLimited:
      return "rate_limited";
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<ApiKeys>> ApiKeys::Parse(std::string_view text) {
  auto keys = std::unique_ptr<ApiKeys>(new ApiKeys());
  int line_no = 0;
  std::string spaced(text);
  std::replace(spaced.begin(), spaced.end(), '\t', ' ');
  for (std::string_view line : Split(spaced, '\n')) {
    ++line_no;
    if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = StripWhitespace(line);
    if (line.empty()) continue;
    std::vector<std::string_view> words;
    for (std::string_view w : Split(line, ' ')) {
      w = StripWhitespace(w);
      if (!w.empty()) words.push_back(w);
    }
    auto bad = [&](std::string_view why) {
      return absl::InvalidArgumentError(StrCat("api keys line ", line_no, ": ", why));
    };
    if (words.size() < 2) return bad("expected NAME SHA256-HEX [rate=R] [burst=B] [models=a,b]");
    ApiKey k;
    k.name = std::string(words[0]);
    if (words[1].size() != 64) return bad("the key's SHA-256 must be 64 hex digits");
    for (size_t i = 0; i < 32; ++i) {
      if (!HexByte(words[1][2 * i], words[1][2 * i + 1], k.sha256[i])) return bad("not hex");
    }
    for (size_t i = 2; i < words.size(); ++i) {
      const size_t eq = words[i].find('=');
      if (eq == std::string_view::npos)
        return bad(StrCat("expected key=value, got '", words[i], "'"));
      const std::string_view name = words[i].substr(0, eq), value = words[i].substr(eq + 1);
      if (name == "rate") {
        if (!ParsePositive(value, k.rate)) return bad("rate must be a positive number");
      } else if (name == "burst") {
        if (!ParsePositive(value, k.burst) || k.burst < 1)
          return bad("burst must be a number of at least 1");
      } else if (name == "models") {
        for (std::string_view m : Split(value, ',')) {
          if (!m.empty()) k.models.emplace_back(m);
        }
      } else {
        return bad(StrCat("unknown setting '", name, "'"));
      }
    }
    if (k.burst == 0) k.burst = std::max(1.0, k.rate);
    for (const ApiKey& other : keys->keys_) {
      if (other.name == k.name) return bad(StrCat("key name '", k.name, "' appears twice"));
    }
    keys->keys_.push_back(std::move(k));
  }
  if (keys->keys_.empty()) return absl::InvalidArgumentError("api keys: the file holds no key");
  {
    absl::MutexLock lock(&keys->mu_);  // not shared yet; the lock satisfies the analysis
    keys->buckets_.resize(keys->keys_.size());
  }
  return keys;
}

absl::StatusOr<std::unique_ptr<ApiKeys>> ApiKeys::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot read the api keys file ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str());
}

AuthDecision ApiKeys::Check(const http::Request& request, std::string_view model, TimePoint now) {
  AuthDecision d;
  const std::string_view presented = PresentedKey(request);
  if (presented.empty()) {
    d.outcome = AuthOutcome::kMissing;
    return d;
  }
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(presented.data()), presented.size(), digest);
  // Every stored hash is compared, whatever matched before: the time taken does not depend on
  // which key (if any) matched.
  size_t found = keys_.size();
  for (size_t i = 0; i < keys_.size(); ++i) {
    const bool match = CRYPTO_memcmp(digest, keys_[i].sha256.data(), sizeof(digest)) == 0;
    found = match ? i : found;
  }
  if (found == keys_.size()) {
    d.outcome = AuthOutcome::kInvalid;
    return d;
  }
  const ApiKey& key = keys_[found];
  if (!model.empty() && !key.models.empty() &&
      std::find(key.models.begin(), key.models.end(), model) == key.models.end()) {
    d.outcome = AuthOutcome::kForbidden;
    return d;
  }
  if (key.rate > 0) {
    absl::MutexLock lock(&mu_);
    Bucket& b = buckets_[found];
    if (!b.started) {
      b.tokens = key.burst;
      b.last = now;
      b.started = true;
    }
    const double elapsed = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(key.burst, b.tokens + std::max(0.0, elapsed) * key.rate);
    b.last = now;
    if (b.tokens < 1.0) {
      d.outcome = AuthOutcome::kRateLimited;
      d.retry_after_s = (1.0 - b.tokens) / key.rate;
      return d;
    }
    b.tokens -= 1.0;
  }
  return d;
}

http::Response AuthErrorResponse(const AuthDecision& d) {
  namespace bhttp = boost::beast::http;
  switch (d.outcome) {
    case AuthOutcome::kMissing:
    case AuthOutcome::kInvalid: {
      http::Response res = http::JsonError(http::Status::unauthorized, "authentication required");
      res.set(bhttp::field::www_authenticate, "Bearer");
      return res;
    }
    case AuthOutcome::kForbidden:
      return http::JsonError(http::Status::forbidden, "this key may not use this model");
    case AuthOutcome::kRateLimited: {
      http::Response res =
          http::JsonError(http::Status::too_many_requests, "rate limit of this key exceeded");
      res.set(bhttp::field::retry_after,
              std::to_string(std::max(1, static_cast<int>(std::ceil(d.retry_after_s)))));
      return res;
    }
    case AuthOutcome::kAllowed:
      break;
  }
  return http::JsonError(http::Status::internal_server_error, "no error");
}

}  // namespace galley::gateway
