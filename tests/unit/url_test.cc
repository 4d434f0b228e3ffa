#include "common/url.h"

#include <gtest/gtest.h>

namespace ember {
namespace {

TEST(Url, PartsOfAUrl) {
  auto u = Url::parse("https://pyro.example:4443/base/path");
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(u->host(), "pyro.example");
  EXPECT_EQ(u->explicit_port(), "4443");
  EXPECT_EQ(u->port(), "4443");
  EXPECT_EQ(u->authority(), "pyro.example:4443");

  auto d = Url::parse("http://h/x");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->explicit_port(), "");
  EXPECT_EQ(d->port(), "80");  // the scheme's default
  EXPECT_EQ(d->authority(), "h");
}

TEST(Url, Ipv6HostsKeepTheirBrackets) {
  auto u = Url::parse("https://[::1]:8443/ingest");
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(u->host(), "[::1]");
  EXPECT_EQ(u->authority(), "[::1]:8443");
  ASSERT_TRUE(u->set_host("fd00::2").ok());  // bare: bracketed for us
  EXPECT_EQ(u->str(), "https://[fd00::2]:8443/ingest");
  ASSERT_TRUE(u->set_host("name.test").ok());
  EXPECT_EQ(u->str(), "https://name.test:8443/ingest");
}

TEST(Url, QueryValuesAreEscaped) {
  auto u = Url::parse("https://k:6443/api/v1/pods");
  ASSERT_TRUE(u.ok());
  ASSERT_TRUE(u->append_query("fieldSelector", "spec.nodeName=node-a").ok());
  ASSERT_TRUE(u->append_query("continue", "eyJ2Ijo+/=x &%").ok());
  // libcurl prints the escapes of a URL in lower case (RFC 3986 6.2.2.1:
  // the same URL).
  EXPECT_EQ(u->str(),
            "https://k:6443/api/v1/pods?fieldSelector=spec.nodeName%3dnode-a"
            "&continue=eyJ2Ijo%2b%2f%3dx%20%26%25");
}

TEST(Url, EscapeKeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(url_escape("AZaz09-._~ /\xc3\xbc"), "AZaz09-._~%20%2F%C3%BC");
  EXPECT_EQ(url_escape(""), "");
  EXPECT_EQ(url_escape(std::string_view("a\0b", 3)), "a%00b");
}

TEST(Url, BadUrlsAreErrors) {
  EXPECT_FALSE(Url::parse("").ok());
  EXPECT_FALSE(Url::parse("not a url").ok());
  EXPECT_FALSE(Url::parse("https://").ok());
  auto u = Url::parse("https://ok.test/");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->set_host("bad host").ok());
}

}  // namespace
}  // namespace ember
