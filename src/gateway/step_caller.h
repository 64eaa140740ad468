// Private to galley_gateway: how the pipelines of ChatService (chat.cc) call their models: each
// model step through Gateway::Forward behind a circuit breaker of its own, and, for a traced run,
// each call in a client span.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "gateway/circuit_breaker.h"
#include "gateway/gateway.h"
#include "pipeline/executor.h"
#include "tracing/tracer.h"

namespace galley::gateway {

// Model steps go to the replicas through the gateway, behind one breaker per step.
class StepCaller final : public pipeline::ModelCaller {
 public:
  StepCaller(Gateway& gateway, const Clock& clock, CircuitBreakerOptions breaker)
      : gateway_(gateway), clock_(clock), breaker_options_(breaker) {}

  void Call(const std::string& key, const std::string& model, std::string body, TimePoint deadline,
            pipeline::CallDone done) override;

  // As Call, with a `traceparent` header for the replica when not empty.
  void Send(const std::string& key, const std::string& model, std::string body, TimePoint deadline,
            const std::string& traceparent, pipeline::CallDone done);

 private:
  CircuitBreaker& Breaker(const std::string& key);

  Gateway& gateway_;
  const Clock& clock_;
  const CircuitBreakerOptions breaker_options_;
  absl::Mutex mu_;  // also guards every breaker in breakers_
  std::map<std::string, std::unique_ptr<CircuitBreaker>> breakers_ ABSL_GUARDED_BY(mu_);
};

// One run's model calls, each in a client span under the run's span; the replica continues the
// trace from the `traceparent` it is sent.
class TracedCaller final : public pipeline::ModelCaller {
 public:
  TracedCaller(StepCaller& inner, tracing::Tracer& tracer, tracing::TraceContext parent,
               const Clock& clock)
      : inner_(inner), tracer_(tracer), parent_(parent), clock_(clock) {}

  void Call(const std::string& key, const std::string& model, std::string body, TimePoint deadline,
            pipeline::CallDone done) override;
  // A span of no length, `step NAME` with galley.status "set", under the turn's span.
  void StepSet(const std::string& step) override;

 private:
  StepCaller& inner_;
  tracing::Tracer& tracer_;
  const tracing::TraceContext parent_;
  const Clock& clock_;
};

}  // namespace galley::gateway
