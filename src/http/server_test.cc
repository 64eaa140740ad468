// The HTTP server on a loopback port with a real socket client: keep-alive, the drain's
// Connection: close, the connection cap's eviction of the longest-idle connection, the per-address
// cap, the first-byte timeout and the methods no route implements.
#include "http/server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace galley::http {
namespace {

using std::chrono::milliseconds;

class Conn {
 public:
  explicit Conn(uint16_t port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    timeval tv{10, 0};  // bounds a wait that must end much sooner
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~Conn() { close(fd_); }
  void Send(const std::string& s) {
    ASSERT_EQ(send(fd_, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
  }
  // One whole response (Content-Length framed), or "" if the server closed first.
  std::string Response() {
    while (true) {
      const size_t head_end = buf_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t length = 0;
        const size_t cl = buf_.find("Content-Length: ");
        if (cl != std::string::npos && cl < head_end) length = std::stoul(buf_.substr(cl + 16));
        if (buf_.size() >= head_end + 4 + length) {
          std::string r = buf_.substr(0, head_end + 4 + length);
          buf_.erase(0, r.size());
          return r;
        }
      }
      char chunk[4096];
      const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) return "";
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }
  bool ClosedByServer() {
    char c;
    const ssize_t n = recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

 private:
  int fd_;
  std::string buf_;
};

constexpr char kGet[] = "GET /x HTTP/1.1\r\nHost: t\r\n\r\n";

class ServerTest : public ::testing::Test {
 protected:
  void Start(ServerOptions o) {
    o.host = "127.0.0.1";
    o.port = 0;
    auto s = Server::Create(o, [](Request&& req, Responder respond) {
      respond(JsonResponse(Status::ok, "{\"path\":\"" + std::string(req.target()) + "\"}"));
    });
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(s).value();
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, KeepAliveThenCloseAfterEachAnswerOnceTheDrainStarts) {
  Start({});
  Conn c(server_->port());
  c.Send(kGet);
  std::string r = c.Response();
  EXPECT_NE(r.find("200 OK"), std::string::npos);
  EXPECT_EQ(r.find("Connection: close"), std::string::npos);
  server_->CloseAfterEachAnswer();
  c.Send(kGet);
  r = c.Response();
  EXPECT_NE(r.find("200 OK"), std::string::npos);
  EXPECT_NE(r.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(c.ClosedByServer());
}

TEST_F(ServerTest, AtTheCapTheLongestIdleConnectionMakesRoom) {
  ServerOptions o;
  o.max_connections = 2;
  o.first_byte_timeout = milliseconds(20'000);
  Start(o);
  Conn oldest(server_->port()), newer(server_->port());
  newer.Send(kGet);
  ASSERT_NE(newer.Response().find("200 OK"), std::string::npos);  // both registered by now
  Conn newcomer(server_->port());
  newcomer.Send(kGet);
  EXPECT_NE(newcomer.Response().find("200 OK"), std::string::npos);
  EXPECT_TRUE(oldest.ClosedByServer());
  EXPECT_EQ(server_->stats().evicted_connections.load(), 1);
  newer.Send(kGet);
  EXPECT_NE(newer.Response().find("200 OK"), std::string::npos);
}

TEST_F(ServerTest, OneAddressCannotTakeEveryConnection) {
  ServerOptions o;
  o.max_connections_per_peer = 1;
  Start(o);
  Conn first(server_->port());
  first.Send(kGet);
  ASSERT_NE(first.Response().find("200 OK"), std::string::npos);
  Conn second(server_->port());
  const std::string r = second.Response();
  EXPECT_NE(r.find("503"), std::string::npos);
  EXPECT_NE(r.find("from this address"), std::string::npos);
  EXPECT_EQ(server_->stats().rejected_connections.load(), 1);
}

TEST_F(ServerTest, SilentConnectionIsClosedAfterTheFirstByteTimeout) {
  ServerOptions o;
  o.first_byte_timeout = milliseconds(50);
  Start(o);
  Conn silent(server_->port());
  EXPECT_TRUE(silent.ClosedByServer());
}

TEST_F(ServerTest, MethodsNoRouteImplements) {
  Start({});
  for (const char* wire :
       {"TRACE / HTTP/1.1\r\nHost: t\r\n\r\n", "BREW / HTTP/1.1\r\nHost: t\r\n\r\n"}) {
    Conn c(server_->port());
    c.Send(wire);
    EXPECT_NE(c.Response().find("501 Not Implemented"), std::string::npos) << wire;
  }
  Conn c(server_->port());
  c.Send("OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n");
  const std::string r = c.Response();
  EXPECT_NE(r.find("405"), std::string::npos);
  EXPECT_NE(r.find("Allow: GET, POST"), std::string::npos);
  c.Send(kGet);  // the connection stays usable
  EXPECT_NE(c.Response().find("200 OK"), std::string::npos);
}

}  // namespace
}  // namespace galley::http
