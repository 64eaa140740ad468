#include "cli/flags.h"

#include <cstdlib>

#include "common/strings.h"
#include "gtest/gtest.h"

namespace galley::cli {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Parses `args` (after the program name) with `app`; the CLI11 error's message, or "".
std::string Parse(CLI::App& app, std::vector<std::string> args) {
  std::vector<const char*> argv{"galley"};
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return "";
}

TEST(DurationFlagTest, BindsTheTypedValueInTheUnitItsNameSays) {
  CLI::App app;
  milliseconds timeout{5'000};
  std::chrono::nanoseconds fine{0};
  seconds ttl{60};
  DurationFlag(&app, "try-timeout-ms", timeout, "");
  DurationFlag(&app, "probe-ms", fine, "");  // nanoseconds held, milliseconds given
  DurationFlag<seconds>(&app, "ttl-s", ttl, "");
  ASSERT_EQ(Parse(app, {"--try-timeout-ms", "250", "--probe-ms", "3", "--ttl-s", "7"}), "");
  EXPECT_EQ(timeout, milliseconds(250));
  EXPECT_EQ(fine, milliseconds(3));
  EXPECT_EQ(ttl, seconds(7));
}

TEST(DurationFlagTest, KeepsTheDefaultAndShowsItInTheHelp) {
  CLI::App app;
  milliseconds timeout{5'000};
  DurationFlag(&app, "try-timeout-ms", timeout, "deadline of one attempt");
  ASSERT_EQ(Parse(app, {}), "");
  EXPECT_EQ(timeout, milliseconds(5'000));
  EXPECT_NE(app.help().find("5000"), std::string::npos) << app.help();
}

TEST(DurationFlagTest, ReadsTheEnvironmentTwin) {
  CLI::App app;
  milliseconds timeout{5'000};
  DurationFlag(&app, "flags-test-timeout-ms", timeout, "");
  setenv("GALLEY_FLAGS_TEST_TIMEOUT_MS", "42", 1);
  const std::string err = Parse(app, {});
  unsetenv("GALLEY_FLAGS_TEST_TIMEOUT_MS");
  ASSERT_EQ(err, "");
  EXPECT_EQ(timeout, milliseconds(42));
}

TEST(DurationFlagTest, RefusesWhatIsNotAWholeNumber) {
  CLI::App app;
  milliseconds timeout{5'000};
  DurationFlag(&app, "try-timeout-ms", timeout, "")->check(CLI::PositiveNumber);
  EXPECT_NE(Parse(app, {"--try-timeout-ms", "1.5s"}), "");
  EXPECT_EQ(timeout, milliseconds(5'000));  // untouched
  CLI::App app2;
  DurationFlag(&app2, "try-timeout-ms", timeout, "")->check(CLI::PositiveNumber);
  EXPECT_NE(Parse(app2, {"--try-timeout-ms", "-3"}), "");
  EXPECT_EQ(timeout, milliseconds(5'000));
}

TEST(HttpFlagsTest, ValidateNamesTheFlagThatIsWrong) {
  HttpFlags f;
  EXPECT_TRUE(f.Validate().ok());
  f.log_level = "loud";
  EXPECT_EQ(f.Validate().message(), "--log-level: expected debug, info, warn or error, got 'loud'");
  f.log_level = "warn";
  f.listen = "nohost";
  EXPECT_TRUE(StartsWith(std::string(f.Validate().message()), "--listen: ")) << f.Validate();
  f.listen = "127.0.0.1:0";
  f.metrics_listen = "127.0.0.1:notaport";
  EXPECT_TRUE(StartsWith(std::string(f.Validate().message()), "--metrics-listen: "))
      << f.Validate();
}

TEST(HttpFlagsTest, ApplyFillsBothListenersFromTypedFlags) {
  CLI::App app;
  HttpFlags f;
  f.Add(&app);
  ASSERT_EQ(
      Parse(app, {"--listen", "127.0.0.1:8123", "--idle-timeout-ms", "1500", "--write-timeout-ms",
                  "900", "--metrics-listen", "127.0.0.1:9123", "--drain-delay-ms", "0"}),
      "");
  http::ServerOptions api;
  std::optional<http::ServerOptions> ops;
  ASSERT_TRUE(f.Apply(api, ops).ok());
  EXPECT_EQ(api.host, "127.0.0.1");
  EXPECT_EQ(api.port, 8123);
  EXPECT_EQ(api.idle_timeout, milliseconds(1'500));
  EXPECT_EQ(api.write_timeout, milliseconds(900));
  EXPECT_EQ(f.drain_delay, milliseconds(0));
  ASSERT_TRUE(ops.has_value());
  EXPECT_EQ(ops->port, 9123);
  EXPECT_EQ(ops->idle_timeout, milliseconds(1'500));  // the API listener's limits
}

TEST(HttpFlagsTest, ApplyRefusesTlsFilesThatDoNotLoad) {
  HttpFlags f;
  f.tls_cert = "/nonexistent/cert.pem";
  f.tls_key = "/nonexistent/key.pem";
  http::ServerOptions api;
  std::optional<http::ServerOptions> ops;
  const absl::Status st = f.Apply(api, ops);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(StartsWith(std::string(st.message()), "--tls-cert/--tls-key/--tls-client-ca: "))
      << st;
}

}  // namespace
}  // namespace galley::cli
