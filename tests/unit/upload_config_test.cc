// Config for uploads: servers (list and single form), auth, TLS, metrics,
// their errors with file:line: key, and secrets masked in the rendering.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/config/config.h"

namespace ember {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

TEST(UploadConfig, DefaultsHaveNoServerAndLoopbackMetrics) {
  auto c = parse_config("", "e.yaml");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->servers.empty());
  EXPECT_EQ(c->metrics.listen, "127.0.0.1:9799");
  EXPECT_EQ(c->shutdown_timeout, 10s);
}

TEST(UploadConfig, ParsesEveryServerKey) {
  const char* yaml = R"(
servers:
  - url: https://pyroscope.example.com:4443/prefix/
    name: main
    api: ingest
    bearer_token_file: /etc/ember/token
    tenant_id: team-a
    headers:
      X-Custom: yes please
    tls:
      ca_file: /etc/ember/ca.pem
      cert_file: /etc/ember/client.pem
      key_file: /etc/ember/client.key
      server_name: pyroscope.internal
      insecure_skip_verify: false
    timeout: 3s
    queue_max_bytes: 16MiB
    min_backoff: 100ms
    max_backoff: 1m
  - url: http://pyroscope:4040
    basic_auth:
      username: bob
      password: hunter2
shutdown_timeout: 30s
metrics:
  listen: "[::1]:9000"
)";
  auto c = parse_config(yaml, "s.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->servers.size(), 2u);
  const auto& a = c->servers[0];
  EXPECT_EQ(a.url, "https://pyroscope.example.com:4443/prefix/");
  EXPECT_EQ(a.display_name(), "main");
  EXPECT_EQ(a.api, ServerConfig::Api::kIngest);
  EXPECT_EQ(a.bearer_token_file, "/etc/ember/token");
  EXPECT_EQ(a.tenant_id, "team-a");
  ASSERT_EQ(a.headers.size(), 1u);
  EXPECT_EQ(a.headers[0], (std::pair<std::string, std::string>{"X-Custom", "yes please"}));
  EXPECT_EQ(a.tls.ca_file, "/etc/ember/ca.pem");
  EXPECT_EQ(a.tls.cert_file, "/etc/ember/client.pem");
  EXPECT_EQ(a.tls.key_file, "/etc/ember/client.key");
  EXPECT_EQ(a.tls.server_name, "pyroscope.internal");
  EXPECT_EQ(a.timeout, 3s);
  EXPECT_EQ(a.queue_max_bytes, 16u << 20);
  EXPECT_EQ(a.min_backoff, 100ms);
  EXPECT_EQ(a.max_backoff, 60s);
  const auto& b = c->servers[1];
  EXPECT_EQ(b.api, ServerConfig::Api::kPush);  // the default
  EXPECT_EQ(b.display_name(), "http://pyroscope:4040");
  EXPECT_TRUE(b.has_basic_auth);
  EXPECT_EQ(b.basic_auth.username, "bob");
  EXPECT_EQ(b.basic_auth.password, "hunter2");
  EXPECT_EQ(c->shutdown_timeout, 30s);
  EXPECT_EQ(c->metrics.listen, "[::1]:9000");
}

TEST(UploadConfig, TheSingleServerFormStillWorks) {
  auto c = parse_config("server:\n  url: http://pyroscope:4040\n  api: push\n", "s.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->servers.size(), 1u);
  EXPECT_EQ(c->servers[0].url, "http://pyroscope:4040");
  auto both = parse_config("server: {url: http://a:1}\nservers: [{url: http://b:2}]\n", "s.yaml");
  ASSERT_FALSE(both.ok());
  EXPECT_THAT(both.error().message, HasSubstr("s.yaml:2: servers: use either server"));
}

TEST(UploadConfig, ErrorsNameFileLineAndKey) {
  const char* yaml = R"(servers:
  - url: ftp://x
  - url: http://user:pw@host:1
  - url: http://h:1
    api: graphql
  - url: http://h:1
    bearer_token: a
    bearer_token_file: /b
  - url: http://h:1
    tls:
      ca_file: /ca.pem
  - url: https://h:1
    tls:
      cert_file: /c.pem
  - url: http://h:1
    headers:
      Content-Type: text/plain
  - url: http://h:1
    basic_auth: {username: u}
  - api: push
  - url: http://h:1
    timout: 1s
metrics:
  listen: "nowhere"
)";
  auto c = parse_config(yaml, "bad.yaml");
  ASSERT_FALSE(c.ok());
  const std::string& e = c.error().message;
  EXPECT_THAT(e, HasSubstr("bad.yaml:2: servers[0].url: the scheme must be http or https"));
  EXPECT_THAT(e, HasSubstr("bad.yaml:3: servers[1].url: credentials in the URL are not allowed"));
  EXPECT_THAT(e, HasSubstr("bad.yaml:5: servers[2].api: expected push, ingest or otlp, got 'graphql'"));
  EXPECT_THAT(e, HasSubstr("bad.yaml:7: servers[3].bearer_token, bearer_token_file and basic_auth: use only one"));
  EXPECT_THAT(e, HasSubstr("bad.yaml:10: servers[4].tls: TLS options need an https:// url"));
  EXPECT_THAT(e, HasSubstr("bad.yaml:13: servers[5].tls: cert_file and key_file go together"));
  EXPECT_THAT(e, HasSubstr("bad.yaml:16: servers[6].headers.Content-Type: Ember sets this header itself"));
  EXPECT_THAT(e, HasSubstr("bad.yaml:19: servers[7].basic_auth: set exactly one of password and password_file"));
  EXPECT_THAT(e, HasSubstr("bad.yaml:20: servers[8].url: is required"));
  EXPECT_THAT(e, HasSubstr("bad.yaml:22: servers[9].timout: unknown key (did you mean 'servers[9].timeout'?)"));
  EXPECT_THAT(e, HasSubstr("bad.yaml:24: metrics.listen: expected host:port"));
}

TEST(UploadConfig, ServerNamesAreUnique) {
  auto c = parse_config("servers:\n  - url: http://p:4040\n  - url: http://p:4040/\n    api: ingest\n",
                        "n.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message,
              HasSubstr("n.yaml:3: servers[1].name: 'http://p:4040' is already the name of servers[0]"));
  auto ok = parse_config(
      "servers:\n  - url: http://p:4040\n  - url: http://p:4040\n    name: legacy\n    api: ingest\n",
      "n.yaml");
  EXPECT_TRUE(ok.ok()) << ok.error().message;
}

TEST(UploadConfig, RenderMasksEverySecretAndParsesBack) {
  const char* yaml = R"(
servers:
  - url: http://pyroscope:4040
    bearer_token: very-secret-token
    headers:
      X-Api-Key: header-secret
  - url: https://other:443
    api: ingest
    basic_auth:
      username: alice
      password: password-secret
    tenant_id: tenant-1
)";
  auto c = parse_config(yaml, "s.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  std::string out = render_config(*c);
  EXPECT_THAT(out, Not(HasSubstr("very-secret-token")));
  EXPECT_THAT(out, Not(HasSubstr("header-secret")));
  EXPECT_THAT(out, Not(HasSubstr("password-secret")));
  EXPECT_THAT(out, HasSubstr("bearer_token: \"<redacted>\""));
  EXPECT_THAT(out, HasSubstr("username: \"alice\""));
  EXPECT_THAT(out, HasSubstr("tenant_id: \"tenant-1\""));
  EXPECT_THAT(out, HasSubstr("api: ingest"));
  auto back = parse_config(out, "rendered");
  ASSERT_TRUE(back.ok()) << back.error().message << "\n" << out;
  ASSERT_EQ(back->servers.size(), 2u);
  EXPECT_EQ(back->servers[1].url, "https://other:443");
  EXPECT_EQ(back->servers[1].api, ServerConfig::Api::kIngest);
  EXPECT_EQ(back->servers[0].timeout, c->servers[0].timeout);
  EXPECT_EQ(back->metrics.listen, c->metrics.listen);
}

TEST(UploadConfig, ServerUrls) {
  auto u = parse_server_url("HTTPS://[::1]:4040/base/");
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 4040);
  EXPECT_EQ(u->path, "/base");
  EXPECT_EQ(u->origin(), "https://[::1]:4040");
  auto d = parse_server_url("http://pyroscope");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->port, 80);
  EXPECT_EQ(d->origin(), "http://pyroscope");
  EXPECT_FALSE(parse_server_url("pyroscope:4040").ok());
  EXPECT_FALSE(parse_server_url("http://h:99999").ok());
  EXPECT_FALSE(parse_server_url("http://h:1/x?y=1").ok());
  EXPECT_FALSE(parse_server_url("http://:1").ok());
}

TEST(UploadConfig, ListenAddresses) {
  auto a = parse_listen_address("127.0.0.1:9799");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9799);
  EXPECT_EQ(parse_listen_address(":9799")->host, "");
  EXPECT_EQ(parse_listen_address("localhost:0")->host, "127.0.0.1");
  EXPECT_EQ(parse_listen_address("[::]:1")->host, "::");
  EXPECT_FALSE(parse_listen_address("9799").ok());
  EXPECT_FALSE(parse_listen_address("example.com:80").ok());
  EXPECT_FALSE(parse_listen_address("1.2.3.4:70000").ok());
  auto off = parse_config("metrics:\n  listen: \"\"\n", "m.yaml");
  ASSERT_TRUE(off.ok()) << off.error().message;
  EXPECT_EQ(off->metrics.listen, "");
}

}  // namespace
}  // namespace ember
