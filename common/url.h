// Url: an absolute http(s) URL held, parsed, changed and printed by
// libcurl's URL API (CURLU). Every URL Ember builds or reroutes goes through
// it or through url_escape(): the uploaders' server URLs (TLS server_name
// rerouting) and the Kubernetes API requests, so that ports, IPv6 hosts and
// escaping follow one well-tested parser instead of string slicing.
//
// Move-only; not thread-safe (each user owns its own).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace ember {

class Url {
 public:
  // An absolute URL with a scheme and a host.
  static Result<Url> parse(const std::string& text);
  Url(Url&&) noexcept = default;
  Url& operator=(Url&&) noexcept = default;

  // As written in the URL; an IPv6 address keeps its brackets.
  std::string host() const;
  // The explicit port, or "" when the URL has none.
  std::string explicit_port() const;
  // The port a connection goes to: explicit, else the scheme's default.
  std::string port() const;
  // host[:port] as written: what a Host header says for this URL.
  std::string authority() const;
  // Replaces the host; a bare IPv6 address is bracketed.
  Status set_host(const std::string& host);
  // Appends "name=value" to the query, both escaped (url_escape()).
  Status append_query(std::string_view name, std::string_view value);
  std::string str() const;

 private:
  struct Deleter {
    void operator()(void* h) const;
  };
  explicit Url(void* h) : h_(h) {}
  std::string get(int part, unsigned flags) const;
  std::unique_ptr<void, Deleter> h_;  // CURLU*
};

// Percent-encodes everything but RFC 3986's unreserved characters
// (A-Z a-z 0-9 - . _ ~), with upper-case hex: a query value or path segment.
std::string url_escape(std::string_view s);

}  // namespace ember
