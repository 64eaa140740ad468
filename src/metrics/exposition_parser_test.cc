#include "metrics/exposition_parser.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"
#include "metrics/registry.h"
#include "prometheus/gauge.h"

namespace galley::metrics {
namespace {

struct SampleCase {
  std::string name;
  std::string line;
  std::string metric;
  std::vector<std::pair<std::string, std::string>> labels;
  double value;
  std::optional<int64_t> timestamp_ms;
};

TEST(ExpositionParserTest, Samples) {
  const double kInf = std::numeric_limits<double>::infinity();
  const std::vector<SampleCase> cases = {
      {"plain", "up 1", "up", {}, 1, std::nullopt},
      {"colons and digits", "job:rate5m_2 0.25", "job:rate5m_2", {}, 0.25, std::nullopt},
      {"labels",
       R"(galley_queue_length{model="vader"} 3)",
       "galley_queue_length",
       {{"model", "vader"}},
       3,
       std::nullopt},
      {"two labels, trailing comma",
       R"(x{a="1",b="2",} 7)",
       "x",
       {{"a", "1"}, {"b", "2"}},
       7,
       std::nullopt},
      {"blanks inside braces",
       "x{ a = \"1\" , b=\"2\" } 7",
       "x",
       {{"a", "1"}, {"b", "2"}},
       7,
       std::nullopt},
      {"empty braces", "x{} 2", "x", {}, 2, std::nullopt},
      {"escaped quote, backslash, newline",
       R"(x{path="C:\\dir\"q\"\nz"} 1)",
       "x",
       {{"path", "C:\\dir\"q\"\nz"}},
       1,
       std::nullopt},
      {"comma and brace inside a value",
       R"(x{v="a,b}c"} 1)",
       "x",
       {{"v", "a,b}c"}},
       1,
       std::nullopt},
      {"timestamp", "x 1.5 1395066363000", "x", {}, 1.5, 1395066363000},
      {"negative timestamp", "x 1 -5", "x", {}, 1, -5},
      {"exponent", "x 1.458255915e9", "x", {}, 1.458255915e9, std::nullopt},
      {"negative", "x -0.5", "x", {}, -0.5, std::nullopt},
      {"plus sign", "x +3", "x", {}, 3, std::nullopt},
      {"+Inf", R"(h_bucket{le="+Inf"} +Inf)", "h_bucket", {{"le", "+Inf"}}, kInf, std::nullopt},
      {"-Inf", "x -Inf", "x", {}, -kInf, std::nullopt},
      {"Inf lower case", "x inf", "x", {}, kInf, std::nullopt},
      {"tabs", "x\t{a=\"1\"}\t4\t10", "x", {{"a", "1"}}, 4, 10},
      {"leading blanks", "   x 4", "x", {}, 4, std::nullopt},
      {"CRLF", "x 4\r", "x", {}, 4, std::nullopt},
  };
  for (const SampleCase& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<ParsedExposition> p = ParseExposition(c.line);
    ASSERT_TRUE(p.ok()) << p.status();
    ASSERT_EQ(p->samples.size(), 1u);
    const ParsedSample& s = p->samples[0];
    EXPECT_EQ(s.name, c.metric);
    EXPECT_EQ(s.labels, c.labels);
    EXPECT_EQ(s.value, c.value);
    EXPECT_EQ(s.timestamp_ms, c.timestamp_ms);
  }
}

TEST(ExpositionParserTest, NaN) {
  for (const char* text : {"x NaN", "x nan", "x{a=\"b\"} NaN 12"}) {
    SCOPED_TRACE(text);
    absl::StatusOr<ParsedExposition> p = ParseExposition(text);
    ASSERT_TRUE(p.ok()) << p.status();
    ASSERT_EQ(p->samples.size(), 1u);
    EXPECT_TRUE(std::isnan(p->samples[0].value));
  }
}

struct ErrorCase {
  std::string name;
  std::string text;
  std::string message;  // a part of the error message
};

TEST(ExpositionParserTest, Errors) {
  const std::vector<ErrorCase> cases = {
      {"no value", "x", "no value after metric name x"},
      {"no value after labels", "x{a=\"b\"}", "'' is not a number"},
      {"value not a number", "x abc", "'abc' is not a number"},
      {"digit first", "1x 2", "expected a metric name"},
      {"bad char in name", "x-y 2", "unexpected character"},
      {"label name", R"(x{1a="b"} 1)", "expected a label name"},
      {"no equals", R"(x{a "b"} 1)", "expected '='"},
      {"unquoted value", "x{a=b} 1", "expected '\"'"},
      {"unterminated value", R"(x{a="b} 1)", "unterminated"},
      {"bad escape", R"(x{a="\t"} 1)", "invalid escape"},
      {"missing comma", R"(x{a="1" b="2"} 1)", "expected ',' or '}'"},
      {"duplicate label", R"(x{a="1",a="2"} 1)", "duplicate label a"},
      {"bad timestamp", "x 1 1.5", "timestamp '1.5'"},
      {"trailing text", "x 1 2 3", "after the timestamp"},
      {"unknown type", "# TYPE x widget", "unknown metric type 'widget'"},
      {"second TYPE", "# TYPE x gauge\n# TYPE x counter", "line 2: second TYPE"},
      {"second HELP", "# HELP x a\n# HELP x b", "second HELP"},
      {"line number", "a 1\n\nb 2\nc\n", "line 4"},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<ParsedExposition> p = ParseExposition(c.text);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(p.status().message()).find(c.message), std::string::npos)
        << p.status().message();
  }
}

// The example from the Prometheus documentation of the text format.
TEST(ExpositionParserTest, PrometheusDocumentationExample) {
  const char* kText = R"(# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf -3982045

# A histogram, which has a pretty complex representation in the text format:
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="0.2"} 100392
http_request_duration_seconds_bucket{le="0.5"} 129389
http_request_duration_seconds_bucket{le="1"} 133988
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320

# Finally a summary, which has a complex representation, too:
# HELP rpc_duration_seconds A summary of the RPC duration in seconds.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.01"} 3102
rpc_duration_seconds{quantile="0.05"} 3272
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds{quantile="0.9"} 9001
rpc_duration_seconds{quantile="0.99"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
)";
  absl::StatusOr<ParsedExposition> p = ParseExposition(kText);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->samples.size(), 20u);
  EXPECT_EQ(p->types.at("http_requests_total"), "counter");
  EXPECT_EQ(p->types.at("http_request_duration_seconds"), "histogram");
  EXPECT_EQ(p->types.at("rpc_duration_seconds"), "summary");
  EXPECT_EQ(p->help.at("http_requests_total"), "The total number of HTTP requests.");
  const ParsedSample& msdos = p->samples[2];
  EXPECT_EQ(*msdos.Label("path"), "C:\\DIR\\FILE.TXT");
  EXPECT_EQ(*msdos.Label("error"), "Cannot find file:\n\"FILE.TXT\"");
  EXPECT_EQ(p->samples[4].timestamp_ms, -3982045);
  EXPECT_EQ(SumSamples(*p, "http_requests_total"), 1030);
  EXPECT_EQ(SumSamples(*p, "absent"), std::nullopt);
}

TEST(ExpositionParserTest, HelpEscapesAndPlainComments) {
  absl::StatusOr<ParsedExposition> p =
      ParseExposition("# HELP x a \\\\ b\\nc \\q\n# just a comment\n#\n# HELP\nx 1\n");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->help.at("x"), "a \\ b\nc \\q");
  EXPECT_EQ(p->samples.size(), 1u);
}

TEST(ExpositionParserTest, SumSkipsNaN) {
  absl::StatusOr<ParsedExposition> p =
      ParseExposition("x{m=\"a\"} 2\nx{m=\"b\"} NaN\nx{m=\"c\"} 3");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(SumSamples(*p, "x"), 5);
}

// What our own registry writes (prometheus-cpp's serializer) reads back.
TEST(ExpositionParserTest, RoundTripsOurRegistry) {
  Registry registry;
  auto& family = prometheus::BuildGauge()
                     .Name("galley_queue_length")
                     .Help("Requests waiting in the model's queue.")
                     .Register(registry.prom());
  family.Add({{"model", "va\"der\\x\ny"}}).Set(4);
  family.Add({{"model", "other"}}).Set(std::numeric_limits<double>::quiet_NaN());
  absl::StatusOr<ParsedExposition> p = ParseExposition(registry.Exposition());
  ASSERT_TRUE(p.ok()) << p.status() << "\n" << registry.Exposition();
  EXPECT_EQ(p->types.at("galley_queue_length"), "gauge");
  ASSERT_EQ(p->samples.size(), 2u);
  bool found = false;
  for (const ParsedSample& s : p->samples) {
    if (s.Label("model") && *s.Label("model") == "va\"der\\x\ny") found = s.value == 4;
  }
  EXPECT_TRUE(found) << registry.Exposition();
  EXPECT_EQ(SumSamples(*p, "galley_queue_length"), 4);
}

}  // namespace
}  // namespace galley::metrics
