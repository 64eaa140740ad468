#include "delivery/model_fetch.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <random>
#include <system_error>

#include "boost/asio/connect.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/ssl/ssl_stream.hpp"
#include "boost/json/object.hpp"
#include "boost/json/serialize.hpp"
#include "common/strings.h"
#include "http/tls.h"

namespace galley::delivery {
namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

absl::Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(std::string(what));
}

bool IsHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A relative path inside a claim, or an absolute file path: no "..", no empty segment.
bool SafePath(std::string_view p) {
  for (std::string_view seg : Split(p, '/')) {
    if (seg == "..") return false;
  }
  return true;
}

std::string RandomSuffix() {
  std::random_device rd;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 4; ++i) {
    for (uint32_t v = rd(), n = 0; n < 8; ++n, v >>= 4) out.push_back(kHex[v & 15]);
  }
  return out;
}

absl::Status Io(std::string_view what, const fs::path& p, const std::error_code& ec) {
  return absl::InternalError(StrCat(what, " ", p.string(), ": ", ec.message()));
}

// Removes `p` (file or folder) unless released: what a failed fetch wrote does not stay.
class Cleanup {
 public:
  explicit Cleanup(fs::path p) : p_(std::move(p)) {}
  ~Cleanup() {
    if (p_.empty()) return;
    std::error_code ec;
    fs::remove_all(p_, ec);
  }
  void Release() { p_.clear(); }

 private:
  fs::path p_;
};

// Copies a file into `to` (which must not exist), counting its bytes against `max_bytes`.
absl::Status CopyFile(const fs::path& from, const fs::path& to, uint64_t max_bytes,
                      uint64_t& bytes) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(from, ec);
  if (ec) return Io("cannot read", from, ec);
  if (size > max_bytes) {
    return absl::ResourceExhaustedError(
        StrCat(from.string(), " is ", size, " bytes, over the limit of ", max_bytes));
  }
  if (!fs::copy_file(from, to, fs::copy_options::none, ec) || ec)
    return Io("cannot copy to", to, ec);
  bytes = size;
  return absl::OkStatus();
}

// One GET; `redirect` gets the Location of a 3xx answer.
template <class Stream>
absl::Status Get(Stream& stream, const Source& src, const fs::path& to, uint64_t max_bytes,
                 std::string& redirect, uint64_t& bytes) {
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, src.path, 11};
  req.set(bhttp::field::host, src.host);
  req.set(bhttp::field::user_agent, "galley-model-fetch");
  req.set(bhttp::field::connection, "close");
  beast::error_code ec;
  bhttp::write(stream, req, ec);
  if (ec) return absl::UnavailableError(StrCat("GET ", src.host, src.path, ": ", ec.message()));
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::file_body> parser;
  parser.body_limit(max_bytes);
  parser.get().body().open(to.c_str(), beast::file_mode::write_new, ec);
  if (ec) return absl::InternalError(StrCat("cannot write ", to.string(), ": ", ec.message()));
  bhttp::read(stream, buffer, parser, ec);
  if (ec == bhttp::error::body_limit) {
    return absl::ResourceExhaustedError(
        StrCat("the model is over the limit of ", max_bytes, " bytes"));
  }
  if (ec) return absl::UnavailableError(StrCat("GET ", src.host, src.path, ": ", ec.message()));
  const auto& res = parser.get();
  const unsigned status = res.result_int();
  if (status >= 300 && status < 400) {
    auto loc = res.find(bhttp::field::location);
    if (loc == res.end())
      return absl::UnavailableError(StrCat("HTTP ", status, " without a Location"));
    redirect = std::string(loc->value());
    return absl::OkStatus();
  }
  if (status != 200) {
    const std::string what =
        StrCat("GET ", src.host, src.path, ": HTTP ", status, " ", std::string(res.reason()));
    return status == 404 ? absl::NotFoundError(what) : absl::UnavailableError(what);
  }
  parser.get().body().close();
  std::error_code fec;
  bytes = fs::file_size(to, fec);
  if (fec) return Io("cannot read back", to, fec);
  return absl::OkStatus();
}

absl::Status Download(Source src, const FetchOptions& o, const fs::path& to, uint64_t& bytes) {
  std::shared_ptr<asio::ssl::context> tls;
  for (int hop = 0; hop <= 5; ++hop) {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    beast::error_code ec;
    auto endpoints = resolver.resolve(src.host, std::to_string(src.port), ec);
    if (ec) return absl::UnavailableError(StrCat("cannot resolve ", src.host, ": ", ec.message()));
    std::string redirect;
    std::error_code fec;
    fs::remove(to, fec);  // a redirect's body
    absl::Status st;
    if (src.scheme == Scheme::kHttps) {
      if (!tls) {
        auto ctx = http::MakeTlsClientContext(o.ca_file, "", "");
        if (!ctx.ok()) return ctx.status();
        tls = *ctx;
      }
      beast::ssl_stream<beast::tcp_stream> stream(io, *tls);
      beast::get_lowest_layer(stream).expires_after(o.timeout);
      beast::get_lowest_layer(stream).connect(endpoints, ec);
      if (ec)
        return absl::UnavailableError(StrCat("cannot connect to ", src.host, ": ", ec.message()));
      // SNI, and the certificate must name the host (RFC 6125).
      SSL_set_tlsext_host_name(stream.native_handle(), src.host.c_str());
      stream.set_verify_callback(asio::ssl::host_name_verification(src.host));
      stream.handshake(asio::ssl::stream_base::client, ec);
      if (ec) return absl::UnavailableError(StrCat("TLS with ", src.host, ": ", ec.message()));
      st = Get(stream, src, to, o.max_bytes, redirect, bytes);
    } else {
      beast::tcp_stream stream(io);
      stream.expires_after(o.timeout);
      stream.connect(endpoints, ec);
      if (ec)
        return absl::UnavailableError(StrCat("cannot connect to ", src.host, ": ", ec.message()));
      st = Get(stream, src, to, o.max_bytes, redirect, bytes);
    }
    if (!st.ok() || redirect.empty()) return st;
    if (redirect.front() == '/') {
      src.path = redirect;
    } else {
      auto next = ParseSource(redirect);
      if (!next.ok() || (next->scheme != Scheme::kHttp && next->scheme != Scheme::kHttps)) {
        return absl::UnavailableError(
            StrCat("redirected to '", redirect, "', which is not http(s)"));
      }
      if (src.scheme == Scheme::kHttps && next->scheme == Scheme::kHttp) {
        return absl::UnavailableError(
            StrCat("redirected from https to plain http ('", redirect, "')"));
      }
      src = *next;
    }
  }
  return absl::UnavailableError("more than 5 redirects");
}

// Places the model folder `staged` (complete) as dest/name, replacing an older one.
absl::Status Place(const fs::path& staged, const fs::path& final_dir) {
  std::error_code ec;
  if (fs::exists(final_dir, ec)) {
    const fs::path old = fs::path(final_dir).concat(".old-" + RandomSuffix());
    fs::rename(final_dir, old, ec);
    if (ec) return Io("cannot move aside", final_dir, ec);
    fs::rename(staged, final_dir, ec);
    fs::remove_all(old, ec);
    return absl::OkStatus();
  }
  fs::rename(staged, final_dir, ec);
  if (ec) return Io("cannot place", final_dir, ec);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Source> ParseSource(std::string_view uri) {
  const size_t colon = uri.find("://");
  if (colon == std::string_view::npos) {
    return Invalid(StrCat("source '", uri, "' is not a URI (file://, pvc://, http://, https://)"));
  }
  const std::string_view scheme = uri.substr(0, colon);
  std::string_view rest = uri.substr(colon + 3);
  Source s;
  if (scheme == "file") {
    s.scheme = Scheme::kFile;
    if (rest.empty() || rest.front() != '/')
      return Invalid(StrCat("file source '", uri, "' needs an absolute path (file:///PATH)"));
    s.path = std::string(rest);
  } else if (scheme == "pvc") {
    s.scheme = Scheme::kPvc;
    const size_t slash = rest.find('/');
    s.host = std::string(rest.substr(0, slash));
    s.path = slash == std::string_view::npos ? "" : std::string(rest.substr(slash + 1));
    if (s.host.empty() || s.path.empty())
      return Invalid(StrCat("pvc source '", uri, "' must be pvc://CLAIM/PATH"));
  } else if (scheme == "http" || scheme == "https") {
    s.scheme = scheme == "http" ? Scheme::kHttp : Scheme::kHttps;
    s.port = scheme == "http" ? 80 : 443;
    const size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    s.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    if (authority.find('@') != std::string_view::npos)
      return Invalid("a source must not carry credentials");
    if (const size_t p = authority.rfind(':');
        p != std::string_view::npos && authority.find(']') == std::string_view::npos) {
      const std::string_view port = authority.substr(p + 1);
      unsigned v = 0;
      const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
      if (ec != std::errc() || end != port.data() + port.size() || v == 0 || v > 65535) {
        return Invalid(StrCat("source '", uri, "' has a bad port"));
      }
      s.port = static_cast<uint16_t>(v);
      authority = authority.substr(0, p);
    }
    if (authority.size() > 2 && authority.front() == '[' && authority.back() == ']') {
      authority = authority.substr(1, authority.size() - 2);
    }
    if (authority.empty()) return Invalid(StrCat("source '", uri, "' has no host"));
    s.host = std::string(authority);
    if (const size_t hash = s.path.find('#'); hash != std::string::npos) s.path.resize(hash);
  } else {
    return Invalid(StrCat("source scheme '", scheme, "' is not one of file, pvc, http, https"));
  }
  if (s.scheme != Scheme::kHttp && s.scheme != Scheme::kHttps && !SafePath(s.path)) {
    return Invalid(StrCat("source '", uri, "' must not contain '..'"));
  }
  return s;
}

absl::StatusOr<std::string> Sha256File(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot read ", file.string()));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    return absl::InternalError("SHA-256 unavailable");
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return absl::InternalError(StrCat("error reading ", file.string()));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

std::string GeneratedConfig(int max_batch_size, int64_t max_queue_delay_us) {
  boost::json::object c{{"platform", "onnxruntime_onnx"}, {"max_batch_size", max_batch_size}};
  if (max_batch_size > 0) {
    c["dynamic_batching"] =
        boost::json::object{{"max_queue_delay_microseconds", max_queue_delay_us}};
  }
  return boost::json::serialize(c) + "\n";
}

absl::StatusOr<FetchResult> FetchModel(const FetchOptions& o) {
  if (o.name.empty() || o.name == "." || o.name == ".." || o.name.find('/') != std::string::npos) {
    return Invalid(StrCat("model name '", o.name, "' is not a folder name"));
  }
  if (o.version.empty() || o.version.find_first_not_of("0123456789") != std::string::npos) {
    return Invalid(StrCat("model version '", o.version, "' is not a number"));
  }
  if (!o.sha256.empty() && !IsHex64(o.sha256))
    return Invalid("sha256 must be 64 lower-case hex digits");
  if (o.dest.empty()) return Invalid("no destination folder");
  auto src = ParseSource(o.source);
  if (!src.ok()) return src.status();

  std::error_code ec;
  fs::create_directories(o.dest, ec);
  if (ec) return Io("cannot create", o.dest, ec);
  const fs::path final_dir = o.dest / o.name;
  const fs::path staged = o.dest / StrCat(".", o.name, ".fetch-", RandomSuffix());
  Cleanup cleanup(staged);
  FetchResult result;
  result.model_dir = final_dir;

  // A local source that is a folder: a whole model folder, copied as it is.
  fs::path local;
  if (src->scheme == Scheme::kFile) local = src->path;
  if (src->scheme == Scheme::kPvc) local = o.pvc_root / src->path;
  if (!local.empty() && fs::is_directory(local, ec)) {
    if (!o.sha256.empty()) {
      return Invalid(
          StrCat("sha256 applies to a single model file, and ", o.source, " is a folder"));
    }
    if (!fs::is_regular_file(local / "config.json", ec)) {
      return absl::NotFoundError(
          StrCat(o.source, " is a folder without config.json (not a model folder)"));
    }
    fs::copy(local, staged, fs::copy_options::recursive, ec);
    if (ec) return Io("cannot copy", local, ec);
    if (absl::Status st = Place(staged, final_dir); !st.ok()) return st;
    cleanup.Release();
    return result;
  }

  const fs::path version_dir = staged / o.version;
  fs::create_directories(version_dir, ec);
  if (ec) return Io("cannot create", version_dir, ec);
  const fs::path model_file = version_dir / "model.onnx";

  // The node's cache, by content: a file whose SHA-256 is the one asked for.
  const fs::path cached =
      o.cache.empty() || o.sha256.empty() ? fs::path() : o.cache / "sha256" / o.sha256;
  if (!cached.empty() && fs::is_regular_file(cached, ec)) {
    auto sum = Sha256File(cached);
    if (sum.ok() && *sum == o.sha256 &&
        CopyFile(cached, model_file, o.max_bytes, result.bytes).ok()) {
      result.from_cache = true;
    } else {
      fs::remove(cached, ec);  // damaged: fetch again
    }
  }
  if (!result.from_cache) {
    if (!local.empty() && !fs::exists(local, ec)) {
      return absl::NotFoundError(
          StrCat(o.source, ": no such file (looked at ", local.string(), ")"));
    }
    absl::Status st = local.empty() ? Download(*src, o, model_file, result.bytes)
                                    : CopyFile(local, model_file, o.max_bytes, result.bytes);
    if (!st.ok()) return st;
  }
  auto sum = Sha256File(model_file);
  if (!sum.ok()) return sum.status();
  if (!o.sha256.empty() && *sum != o.sha256) {
    return absl::FailedPreconditionError(
        StrCat("sha256 of ", o.source, " is ", *sum, ", the resource says ", o.sha256));
  }
  result.sha256 = *sum;
  {
    std::ofstream cfg(staged / "config.json", std::ios::trunc);
    cfg << GeneratedConfig(o.max_batch_size, o.max_queue_delay_us);
    if (!cfg)
      return Io("cannot write", staged / "config.json", std::make_error_code(std::errc::io_error));
  }
  if (!cached.empty() && !result.from_cache) {
    // Into the cache under a temporary name, then renamed: a reader never sees half a file. A
    // cache that cannot be written is not a failure of the fetch.
    fs::create_directories(cached.parent_path(), ec);
    const fs::path tmp = fs::path(cached).concat(".tmp-" + RandomSuffix());
    if (!ec && fs::copy_file(model_file, tmp, ec) && !ec) {
      fs::rename(tmp, cached, ec);
    }
    if (ec) fs::remove(tmp, ec);
  }
  if (absl::Status st = Place(staged, final_dir); !st.ok()) return st;
  cleanup.Release();
  return result;
}

}  // namespace galley::delivery
